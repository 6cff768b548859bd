"""End to end: the real CLI on BIDS datasets built from the pregame 7 T DW-STEAM data.

Synthetic set: 9 b-values x 32 transients, no water, published LCModel basis via --basis, plus
a second participant whose file is empty (0 bytes): it must fail clearly without stopping the
first; the same set zero-filled must give its results, with a warning. In-vivo set: b = 0 and
3 b-values x 3 directions with a water reference. Each is run twice with the same work
directory: the rerun reuses finished nodes and gives identical files.
"""

import json
import shutil

import numpy as np
import pytest

from datasets import make_invivo_bids, make_synthetic_bids, zero_fill_svs
from e2e_support import (FAST_CONFIG, check_participant_outputs, nifti_mrs_header,
                              outputs_snapshot, parameter, read_tsv, run_app, series,
                              shell_means)

pytestmark = pytest.mark.slow
STEM = "sub-01_acq-dwsteam"


@pytest.fixture(scope="module")
def synthetic_run(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_synthetic")
    bids = make_synthetic_bids(root / "bids", shared_data)
    bad = bids / "sub-02" / "mrs"
    bad.mkdir(parents=True)
    (bad / "sub-02_acq-dwsteam_svs.nii.gz").write_bytes(b"")
    shutil.copyfile(bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.json",
                    bad / "sub-02_acq-dwsteam_svs.json")
    with open(bids / "participants.tsv", "a") as fh:
        fh.write("sub-02\n")
    config = root / "config.toml"
    config.write_text(FAST_CONFIG)
    out, work = root / "out", root / "work"
    args = (bids, out, "participant", "-w", work, "--nprocs", "2", "--config", config,
            "--basis", shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS")
    first, first_s = run_app(*args)
    snapshot = outputs_snapshot(out)
    second, second_s = run_app(*args, "--skip-bids-validation")
    group, _ = run_app(bids, out, "group")
    return {"out": out, "first": first, "second": second, "group": group,
            "first_s": first_s, "second_s": second_s, "snapshot": snapshot}


@pytest.fixture(scope="module")
def invivo_run(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_invivo")
    bids = make_invivo_bids(root / "bids", shared_data)
    config = root / "config.toml"
    config.write_text(FAST_CONFIG)
    out, work = root / "out", root / "work"
    args = (bids, out, "participant", "--participant-label", "sub-01", "-w", work,
            "--nprocs", "2", "--config", config, "--skip-bids-validation",
            "--basis", shared_data / "dmrs_7t_steam_invivo" / "basis_STEAM_TE45_TM60.BASIS")
    first, first_s = run_app(*args)
    snapshot = outputs_snapshot(out)
    second, second_s = run_app(*args)
    return {"out": out, "first": first, "second": second, "first_s": first_s,
            "second_s": second_s, "snapshot": snapshot}


def test_synthetic_bad_participant_fails_clearly_and_alone(synthetic_run):
    run = synthetic_run["first"]
    assert run.returncode == 1, run.stderr[-3000:]
    summary = json.loads((synthetic_run["out"] / "logs" / "run_summary.json").read_text())
    assert summary["succeeded"] == ["01"] and summary["failed"] == ["02"]
    errors = " ".join(summary["participants"]["02"]["errors"])
    assert "sub-02_acq-dwsteam_svs.nii.gz" in errors and "empty" in errors
    assert "Traceback" not in run.stderr
    # the validator's per-file error is logged too
    assert "EMPTY_FILE" in (synthetic_run["out"] / "logs" / "dmrs-bids.log").read_text()


def test_synthetic_outputs_and_physiology(synthetic_run):
    tables = check_participant_outputs(synthetic_run["out"], "01", STEM, n_conditions=9)
    b, naa = series(tables["amplitudes"], "tNAA")
    assert np.allclose(b, [0, 1000, 3000, 6000, 10000, 20000, 30000, 40000, 50000])
    assert np.all(np.diff(naa) < 0), naa
    _, cr = series(tables["amplitudes"], "tCr")
    assert 1.0 < naa[0] / cr[0] < 2.2
    adc = parameter(tables["diffusion"], "tNAA", "monoexponential", "ADC")
    assert 0.08 < adc < 0.25  # um^2/ms, brain metabolites at low b
    assert len(tables["transients"]) == 9 * 32
    qc = tables["qc"]["summary"]
    assert qc["snr_tnaa_b0"] > 20 and 2 < qc["linewidth_tnaa_hz"] < 25


def test_synthetic_rerun_reuses_work_and_is_identical(synthetic_run):
    assert synthetic_run["second"].returncode == 1  # sub-02 still empty
    assert synthetic_run["second_s"] < synthetic_run["first_s"]
    after = outputs_snapshot(synthetic_run["out"])
    before = synthetic_run["snapshot"]
    for key in before:
        if key.startswith("sub-01"):
            assert after[key] == before[key], key


def test_zero_filled_copy_gives_the_same_results_with_a_warning(synthetic_run, shared_data,
                                                                tmp_path):
    """The synthetic set zero-filled to 2048 points is processed on its 1024 acquired points:
    the amplitudes and CRLBs of the set itself, and a warning naming the file."""
    bids = make_synthetic_bids(tmp_path / "bids", shared_data)
    zero_fill_svs(bids)
    config = tmp_path / "config.toml"
    config.write_text(FAST_CONFIG)
    run, _ = run_app(bids, tmp_path / "out", "participant", "-w", tmp_path / "work",
                     "--nprocs", "2", "--config", config, "--skip-bids-validation", "--basis",
                     shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS")
    assert run.returncode == 0, run.stderr[-3000:]
    warning = ("zero-filled input: bids::sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz: the last "
               "1024 of 2048 points are 0 in every FID (not acquired); processed on the first "
               "1024")
    assert warning in run.stderr
    tables = check_participant_outputs(tmp_path / "out", "01", STEM, n_conditions=9)
    assert warning in tables["qc"]["warnings"]
    for kind in ("desc-preproc_svs", "desc-fit_svs"):  # the header states the points kept
        path = tmp_path / "out" / "sub-01" / "mrs" / f"{STEM}_{kind}.nii.gz"
        assert nifti_mrs_header(path)["NumberOfSpectralPoints"]["Value"] == 1024, kind
    reference = check_participant_outputs(synthetic_run["out"], "01", STEM, n_conditions=9)
    for key in ("amplitude", "crlb"):  # digit for digit
        assert ([r[key] for r in tables["amplitudes"]]
                == [r[key] for r in reference["amplitudes"]]), key


def test_reports_only_rebuilds_the_report(synthetic_run, shared_data):
    out = synthetic_run["out"]
    html = out / "sub-01.html"
    html.unlink()
    shutil.rmtree(out / "sub-01" / "figures")
    bids = out.parent / "bids"
    run, _ = run_app(bids, out, "participant", "--participant-label", "01", "--reports-only")
    assert run.returncode == 0, run.stderr[-3000:]
    after = outputs_snapshot(out)
    for key, content in synthetic_run["snapshot"].items():
        if key.startswith("sub-01"):
            assert after[key] == content, key


def test_group_level_tables(synthetic_run):
    out = synthetic_run["out"]
    assert synthetic_run["group"].returncode == 1  # sub-02 has no outputs: named, exit != 0
    amps = read_tsv(out / "group_amplitudes.tsv")
    assert {r["participant_id"] for r in amps} == {"sub-01"}
    assert all(r["session_id"] == "n/a" for r in amps)
    assert len(read_tsv(out / "group_diffusion.tsv")) > 0
    (qc,) = read_tsv(out / "group_qc.tsv")
    assert qc["participant_id"] == "sub-01" and float(qc["snr_tnaa_b0"]) > 0
    assert "sub-02" in (out / "group.html").read_text()


def test_invivo_outputs_and_physiology(invivo_run):
    run = invivo_run["first"]
    assert run.returncode == 0, run.stderr[-3000:]
    tables = check_participant_outputs(invivo_run["out"], "01", STEM, n_conditions=10)
    b, naa = series(tables["amplitudes"], "tNAA")
    shells, naa_shell = shell_means(b, naa)
    assert len(shells) == 4 and np.all(np.diff(naa_shell) < 0), naa_shell
    _, cr = series(tables["amplitudes"], "tCr")
    assert 1.0 < naa[0] / cr[0] < 2.5
    for name in ("tNAA", "tCr"):
        adc = parameter(tables["diffusion"], name, "monoexponential", "ADC")
        assert 0.05 < adc < 0.3, (name, adc)
    directions = {r["direction"] for r in tables["transients"]}
    assert "n/a" in directions and len(directions) == 4
    qc = tables["qc"]["summary"]
    assert qc["linewidth_water_hz"] is not None and 5 < qc["linewidth_water_hz"] < 30
    # water-scaled with the defaults: concentrations exist (7 T water relaxation from the
    # literature table, so no field warning), and the report says no metabolite T2 was given
    b0 = {r["metabolite"]: r for r in tables["amplitudes"] if r["condition"] == "0"}
    assert float(b0["tNAA"]["concentration_mm"]) > 0
    warnings = " ".join(map(str, tables["qc"]["warnings"]))
    assert "water T2/T1" not in warnings and "metabolite T2" in warnings
    # the published basis' measured MM entry against this human spectrum: when the fit gives
    # it 0 at every b-value, the QC says so (its MM row would otherwise read as a measurement)
    _, mac = series(tables["amplitudes"], "Mac")
    assert ("macromolecule entries (Mac) are 0 in every condition" in warnings) == bool(
        np.all(mac == 0))


def test_invivo_rerun_reuses_work_and_is_identical(invivo_run):
    assert invivo_run["second"].returncode == 0
    assert invivo_run["second_s"] < invivo_run["first_s"]
    assert outputs_snapshot(invivo_run["out"]) == invivo_run["snapshot"]
