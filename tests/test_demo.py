"""The demo dataset of ``dmrs-bids-simulate``: valid MRS-BIDS, readable, and true to its truth."""

import json

import numpy as np
import pytest

from bids_app import demo
from bids_app.simulate_cli import main
from pipeline.io.nifti_mrs import read_nifti_mrs
from pipeline.simulate.synthetic import SyntheticSpec, simulate_acquisition

STEMS = {"01": "sub-01_acq-dwpress", "02": "sub-02_acq-dwsteam"}


@pytest.fixture(scope="module")
def basis_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("basis_cache"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, basis_cache):
    out = tmp_path_factory.mktemp("demo") / "bids"
    assert main([str(out), "--small", "--seed", "5", "--cache-dir", basis_cache]) == 0
    return out


def _truth(dataset, label):
    path = dataset / "derivatives" / "truth" / f"sub-{label}" / "mrs" / \
        f"{STEMS[label]}_desc-truth_svs.json"
    return json.loads(path.read_text())


def test_demo_passes_the_bids_validator(dataset):
    from datasets import bids_validator_errors

    assert bids_validator_errors(dataset) == []


@pytest.mark.parametrize("label", ["01", "02"])
def test_demo_reads_back_to_the_simulated_data(dataset, basis_cache, label):
    truth = _truth(dataset, label)
    mrs = dataset / f"sub-{label}" / "mrs"
    sidecar = json.loads((mrs / f"{STEMS[label]}_svs.json").read_text())
    acq = read_nifti_mrs(mrs / f"{STEMS[label]}_svs.nii.gz", sidecar=sidecar)
    np.testing.assert_array_equal(acq.b_values_s_mm2, truth["b_values_s_mm2"])
    for read, stated in zip(acq.directions, truth["directions"]):
        if stated is None:
            assert np.all(np.isnan(read))
        else:
            np.testing.assert_allclose(read, stated, atol=1e-12)
            assert np.linalg.norm(read) == pytest.approx(1.0)
    # the truth's spec regenerates the stored data exactly (seeded, no hidden state)
    design = demo.demo_designs(small=True)[int(label) - 1]
    basis = demo.demo_basis(design, demo.SMALL_METABOLITES, basis_cache)
    again = simulate_acquisition(basis, SyntheticSpec.from_dict(truth["spec"]))
    np.testing.assert_allclose(acq.fids, again.metabolite.fids, rtol=0, atol=1e-9 * np.abs(acq.fids).max())
    water_path = dataset / sidecar["ReferenceSignal"].removeprefix("bids::")
    water = read_nifti_mrs(water_path, sidecar=json.loads(
        water_path.with_name(water_path.name.replace(".nii.gz", ".json")).read_text()))
    np.testing.assert_array_equal(water.b_values_s_mm2, acq.b_values_s_mm2)
    np.testing.assert_allclose(water.fids, again.water.fids, atol=1e-9 * np.abs(water.fids).max())
    assert water.n_coils == acq.n_coils == design.n_coils
    assert water.metadata["EchoTime"] == pytest.approx(design.echo_time_s)


def test_demo_acquisitions_are_realistic(dataset):
    sub1, sub2 = _truth(dataset, "01"), _truth(dataset, "02")
    assert sub1["basis"]["cf_mhz"] == pytest.approx(123.2)
    assert sub2["basis"]["cf_mhz"] == pytest.approx(298.06)
    assert sub2["spec"]["echo_time_s"] == 0.045
    for truth in (sub1, sub2):
        b_ms_um2 = np.array(truth["b_values_s_mm2"]) / 1000
        assert b_ms_um2[0] == 0 and 10 <= b_ms_um2.max() <= 25 and len(set(b_ms_um2)) >= 5
        assert 10 <= truth["concentrations_mm"]["NAA"] <= 12
        assert truth["mm_source"] == "parametric"
        assert truth["water_reference"]["shape"] == "basis entry H2O"  # same sequence scaling
        # apparent NAA diffusivity from the two lowest b-values: published range 0.1-0.2 um^2/ms
        low = np.argsort(b_ms_um2)[:2]
        decay = np.array(truth["decays"]["NAA"])[low]
        adc = -np.log(decay[1] / decay[0]) / (b_ms_um2[low[1]] - b_ms_um2[low[0]])
        assert 0.12 <= adc <= 0.2
        mm = [n for n in truth["decays"] if n.startswith("MM")]
        assert mm and all(truth["decays"][n][-1] > 0.8 for n in mm)


def test_demo_truth_is_a_bids_derivative(dataset):
    truth_root = dataset / "derivatives" / "truth"
    description = json.loads((truth_root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "dmrs-bids-simulate"
    rows = (truth_root / "sub-01" / "mrs" / f"{STEMS['01']}_desc-truth_amplitudes.tsv"
            ).read_text().splitlines()
    truth = _truth(dataset, "01")
    assert rows[0].split("\t") == ["condition", "b_value_s_mm2", "direction", "metabolite",
                                   "amplitude", "decay"]
    assert len(rows) - 1 == len(truth["amplitudes"]) * len(truth["b_values_s_mm2"])


def test_demo_refuses_a_non_empty_folder_without_overwrite(tmp_path, basis_cache, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    assert main([str(out), "--small", "--participants", "1", "--cache-dir", basis_cache]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main([str(out), "--small", "--participants", "1", "--overwrite",
                 "--cache-dir", basis_cache]) == 0
    first = (out / "sub-01" / "mrs" / f"{STEMS['01']}_svs.nii.gz").read_bytes()
    assert main([str(out), "--small", "--participants", "1", "--overwrite",
                 "--cache-dir", basis_cache]) == 0
    assert (out / "sub-01" / "mrs" / f"{STEMS['01']}_svs.nii.gz").read_bytes() == first
    assert (out / "keep.txt").exists() and not (out / "sub-02").exists()


def test_help_states_units_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for phrase in ("s/mm^2", "ms/um^2", "default: 2", "--overwrite", "SNR", "derivatives/truth"):
        assert phrase in text
