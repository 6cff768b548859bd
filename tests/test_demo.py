"""The demo dataset of ``dmrs-bids-simulate``: valid MRS-BIDS, readable, and true to its truth."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bids_app import demo
from bids_app.convert import bids_validator_errors
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
    assert bids_validator_errors(dataset) == []


def test_full_size_demo_passes_the_bids_validator(tmp_path, basis_cache):
    """The default (not --small) dataset, 3 participants so both designs and the cycle show."""
    out = tmp_path / "full"
    assert main([str(out), "--participants", "3", "--cache-dir", basis_cache]) == 0
    assert sorted(p.name for p in out.glob("sub-*")) == ["sub-01", "sub-02", "sub-03"]
    assert bids_validator_errors(out) == []


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


def test_demo_is_bit_identical_for_a_seed_across_processes(dataset, basis_cache, tmp_path):
    """A fresh interpreter (other hash seed, cold imports) writes the same bytes, file by file;
    another seed changes the data."""
    def run(out, seed):
        env = dict(os.environ, PYTHONHASHSEED="12345")
        done = subprocess.run([sys.executable, "-m", "bids_app.simulate_cli", str(out), "--small",
                               "--seed", str(seed), "--cache-dir", basis_cache],
                              capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr

    run(tmp_path / "again", 5)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again")
                           for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert len(files) >= 10
    for rel in files:
        assert (tmp_path / "again" / rel).read_bytes() == (dataset / rel).read_bytes(), rel
    svs = f"sub-01/mrs/{STEMS['01']}_svs.nii.gz"
    assert main([str(tmp_path / "other"), "--small", "--participants", "1", "--seed", "6",
                 "--cache-dir", basis_cache]) == 0
    assert (tmp_path / "other" / svs).read_bytes() != (dataset / svs).read_bytes()


@pytest.mark.parametrize("argv, problem", [
    (["--participants", "0"], "need at least one participant, got 0"),
    (["--seed", "-3"], "seed must be a non-negative integer, got -3"),
    (["--participants", "x"], "invalid int value: 'x'"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, problem):
    out = tmp_path / "out"
    try:
        code = main([str(out), "--small"] + argv)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and problem in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("dmrs-bids-simulate: error:")
    assert not out.exists()


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "below"):
        assert main([str(out), "--small"]) == 2
        err = capsys.readouterr().err
        assert str(blocker) in err and "Traceback" not in err and len(err.splitlines()) == 1


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
