"""One orchestration of preprocessing: ``preprocess_acquisition`` (in memory) and the
workflow's preprocessing stage (nipype nodes exchanging files) call the same step functions
of ``pipeline.preprocess.steps``, so on the demo data they give identical spectra, drift
tables and flags."""

import json

import numpy as np
import pytest

from bids_app.config import load_default_config
from bids_app.demo import write_demo_dataset
from pipeline.io.files import tsv_text
from pipeline.preprocess.pipeline import preprocess_acquisition
from workflows.derivatives import TRANSIENTS_COLUMNS
from workflows.fileio import load_acquisition
from workflows.participant import init_preproc_wf


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root / "demo", small=True)
    return root


def _sidecar(path):
    return json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())


@pytest.mark.parametrize("stem", ["sub-01/mrs/sub-01_acq-dwpress",
                                  "sub-02/mrs/sub-02_acq-dwsteam"])
def test_in_memory_and_workflow_preprocessing_are_identical(demo, stem, tmp_path,
                                                            monkeypatch):
    from workflows.fileio import save_acquisition

    pre = load_default_config()["preprocessing"]
    svs, ref = (demo / "demo" / f"{stem}_{s}.nii.gz" for s in ("svs", "mrsref"))
    acq, water = load_acquisition(svs, _sidecar(svs)), load_acquisition(ref, _sidecar(ref))
    # the workflow's inputs: the canonical files its conversion stage writes
    (tmp_path / "in").mkdir()
    monkeypatch.chdir(tmp_path / "in")
    svs_file = save_acquisition(acq, "svs.nii", "Conversion", "test input")
    water_file = save_acquisition(water, "water.nii", "Conversion", "test input")
    wf = init_preproc_wf(pre, has_water=True)
    wf.base_dir = str(tmp_path / "work")
    wf.inputs.inputnode.svs = svs_file
    wf.inputs.inputnode.water = water_file
    outputs = {}
    result = wf.run(plugin="Linear")
    for node in result.nodes():
        outputs[node.name] = node.result.outputs

    in_memory = preprocess_acquisition(load_acquisition(svs_file), load_acquisition(water_file),
                                       {k: v for k, v in pre.items()
                                        if k not in ("powder_average", "powder_method")})
    workflow_preproc = load_acquisition(outputs["residual_water"].out_file)
    assert workflow_preproc.fids.shape == in_memory.averaged.fids.shape
    assert np.array_equal(workflow_preproc.fids, in_memory.averaged.fids)
    table = outputs["outliers"].out_transients
    assert open(table).read() == tsv_text(in_memory.transients, TRANSIENTS_COLUMNS)
    workflow_flags = [f for name in ("eddy_current", "outliers")
                      for f in json.loads(open(outputs[name].out_report).read())["flags"]]
    # the motion check runs in the QC node (on the preprocessed spectra compared above)
    assert [f for f in in_memory.flags if not f.startswith("motion")] == workflow_flags
    weights = json.loads(open(outputs["coils"].out_report).read()).get("weights", [])
    assert json.loads(json.dumps(in_memory.coil_weights)) == weights
