"""The app's fit against LCModel on the very same real spectra (issue 13, item 2): the parts
that hold (full table: ``benchmarks/bench_real_vs_lcmodel.py``).

Both programs fit the ISMRM 2016 challenge spectra 1-21 (no lipid artifacts), prepared once by
the project's preprocessing (mirror check, HLSVD residual water from 4.0 ppm), with the same
basis and window; LCModel reads the app's FID as ``.RAW``; likewise the CMRR human STEAM
spectra at 7 T (TE 6 ms) and 4 T (TE 4 ms) with the app's simulated STEAM basis. Peer values
come from running LCModel here, never from stored numbers.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from lcmodel_support import lcmodel_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

CLEAN = range(1, 22)


@pytest.fixture(scope="module")
def rows(shared_data, tmp_path_factory):
    if not lcmodel_available():
        pytest.skip("LCModel binary not built (set LCMODEL_BINARY or build "
                    "../shared/peers/lcmodel into /tmp/lcmodel)")
    import bench_real_vs_lcmodel as bench
    table = bench.default_fit_table()
    workdir = tmp_path_factory.mktemp("lcmodel")
    out = []
    for item in bench.challenge_items():
        if int(item[0][-2:]) in CLEAN:
            out.append(bench.run_one(*item, table, workdir))
    return out


def _median_abs_difference(rows, name):
    import bench_real_vs_lcmodel as bench
    return float(np.median([abs(bench.relative_difference(r, name)) for r in rows]))


@pytest.mark.slow
def test_challenge_singlet_ratios_agree_with_lcmodel(rows):
    assert _median_abs_difference(rows, "tNAA") <= 0.05
    assert _median_abs_difference(rows, "tCho") <= 0.05


@pytest.mark.slow
def test_challenge_fit_residual_qc_passes_and_matches_lcmodel(rows):
    for row in rows:
        assert row["qc"] == "pass", f"{row['dataset']}: residual {row['app_res']:.2f} x noise"
        assert row["app_res"] <= 1.2 * row["lcm_res"], row["dataset"]
        assert row["at_bounds"] == [], f"{row['dataset']}: {row['at_bounds']}"
        assert row["orientation"] == "as_is"


def test_siemens_7t_is_fitted_with_a_basis_of_its_own_echo_time(shared_data):
    """The Siemens 7 T STEAM header says TE 11 ms: the benchmark takes the published 7 T basis
    nearest that (Osprey SPECIAL, its header ECHOT = 9 ms), not the TE 45 ms STEAM basis."""
    import re

    import bench_real_vs_lcmodel as bench
    from pipeline.io.nifti_mrs import read_nifti_mrs

    acq = read_nifti_mrs(shared_data / "siemens_7t_steam_coils" / "metab.nii.gz")
    assert acq.metadata["EchoTime"] == pytest.approx(0.011)
    path = bench.nearest_te_basis(float(acq.metadata["EchoTime"]))
    header = path.read_text(errors="replace")[:2000]
    echo_ms = float(re.search(r"ECHOT\s*=\s*([0-9.]+)", header).group(1))
    assert abs(echo_ms - 11.0) <= 2.0
    assert bench.nearest_te_basis(0.040) == bench.STEAM_7T


def _item(bench, source, name):
    return next(item for item in bench.SOURCES[source]() if item[0] == name)


@pytest.mark.slow
def test_siemens_7t_residual_qc_does_not_fail(shared_data, tmp_path):
    """With its own-TE basis and the noise taken off the filter roll-off, the Siemens 7 T fit
    is no longer a QC failure, and its residual stays near LCModel's on the same FID."""
    if not lcmodel_available():
        pytest.skip("LCModel binary not built (set LCMODEL_BINARY)")
    import bench_real_vs_lcmodel as bench
    row = bench.run_one(*_item(bench, "siemens", "siemens_7t_steam"), bench.default_fit_table(),
                        tmp_path)
    assert row["qc"] != "fail", row["app_res"]
    assert row["app_res"] <= 1.5 * row["lcm_res"], (row["app_res"], row["lcm_res"])


@pytest.mark.slow
def test_default_fit_lowers_the_osprey_residual_below_the_fail_line(shared_data, tmp_path):
    """Osprey sub-01 (real 3 T PRESS): the default fit (0.1 ppm spline, per-metabolite shifts
    with LCModel's prior SD) takes the residual below the QC fail line (2.5 x noise) and at
    least 20 % below the previous default, a quadratic baseline with one shift for all
    (1.87 against 2.69 x noise when this was written; LCModel 1.42)."""
    import bench_real_vs_lcmodel as bench
    item = _item(bench, "osprey", "osprey_sub-01")
    table = bench.default_fit_table()
    previous = {**table, "baseline": "poly", "baseline_order": 2, "metabolite_shift_sd_ppm": 0.0}
    before = bench.run_one(*item, previous, tmp_path / "previous")
    now = bench.run_one(*item, table, tmp_path / "default")
    assert now["app_res"] < 0.8 * before["app_res"]
    assert now["qc"] != "fail" and before["qc"] == "fail"


def test_cmrr_spectra_are_read_with_naa_at_2_ppm_and_no_left_shift(shared_data):
    """The CMRR human STEAM spectra (Varian) as the benchmark reads them: procpar TE/TM, the
    orientation check keeps them as they are, NAA at 2.01 ppm. The stored FID starts at the
    echo top: at 7 T the NAA and Cr singlets have the same phase within 20 deg (4 deg measured);
    with procpar's ``lsfid`` (3 points) applied they are 54 deg apart."""
    import bench_real_vs_lcmodel as bench
    from pipeline.spectra import fid_to_spectrum, ppm_axis

    timings = {"7t": (0.006, 0.032, 295.10), "4t": (0.004, 0.042, 169.29)}
    for field, (te_s, tm_s, cf) in timings.items():
        fid, dwell_s, cf_mhz, echo_s, mixing_s = bench.read_cmrr(bench.CMRR_SPECTRA[field])
        assert (echo_s, mixing_s) == (te_s, tm_s) and cf_mhz == pytest.approx(cf, abs=0.01)
        prepared, verdict = bench.prepare(fid, dwell_s, cf_mhz)
        assert verdict == "as_is", field
        ppm = ppm_axis(fid.size, dwell_s, cf_mhz)
        spectrum = np.abs(fid_to_spectrum(prepared))
        window = (ppm > 1.8) & (ppm < 2.2)
        assert ppm[window][np.argmax(spectrum[window])] == pytest.approx(2.01, abs=0.03), field

    def naa_cr_phase_difference_deg(fid, dwell_s, cf_mhz):
        ppm = ppm_axis(fid.size, dwell_s, cf_mhz)
        spectrum = fid_to_spectrum(fid * np.exp(-np.pi * 3.0 * dwell_s * np.arange(fid.size)))
        phases = [np.angle(spectrum[np.argmax(np.abs(spectrum) * (np.abs(ppm - c) < 0.04))])
                  for c in (2.01, 3.03)]
        return abs(np.degrees(np.angle(np.exp(1j * (phases[0] - phases[1])))))

    fid, dwell_s, cf_mhz, *_ = bench.read_cmrr(bench.CMRR_SPECTRA["7t"])
    assert naa_cr_phase_difference_deg(fid, dwell_s, cf_mhz) < 20
    shifted = np.concatenate([fid[3:], np.zeros(3, complex)])
    assert naa_cr_phase_difference_deg(shifted, dwell_s, cf_mhz) > 40


@pytest.fixture(scope="module")
def cmrr_rows(shared_data, tmp_path_factory):
    if not lcmodel_available():
        pytest.skip("LCModel binary not built (set LCMODEL_BINARY or build "
                    "../shared/peers/lcmodel into /tmp/lcmodel)")
    import bench_real_vs_lcmodel as bench
    table, workdir = bench.default_fit_table(), tmp_path_factory.mktemp("cmrr")
    return {item[0]: bench.run_one(*item, table, workdir) for item in bench.cmrr_items()}


@pytest.mark.slow
def test_cmrr_ultrashort_te_steam_agrees_with_lcmodel(cmrr_rows):
    """CMRR human STEAM at 7 T (TE 6 ms) and 4 T (TE 4 ms), both programs on the same FID and
    basis (README, item 2 table; measured 2026-12-07). tNAA/tCr within the 5 % target of issue
    13 on every basis (largest 4.1 %); with the group's measured MM of the same sequence, where
    the MM model is no free parametric set, Ins/tCr within 5 % (3.3 %, 1.9 %) and Glx/tCr
    within 10 % (2.3 %, 6.0 %). The app's residual is not above LCModel's (ratios 0.87-0.96;
    margin 10 %)."""
    import bench_real_vs_lcmodel as bench
    assert len(cmrr_rows) == 5
    for name, row in cmrr_rows.items():
        assert abs(bench.relative_difference(row, "tNAA")) <= 0.05, name
        assert row["app_res"] <= 1.1 * row["lcm_res"], (name, row["app_res"], row["lcm_res"])
        assert row["orientation"] == "as_is"
    for name in ("cmrr_7t_te6_sim+MM", "cmrr_4t_te4_sim+MM"):
        assert abs(bench.relative_difference(cmrr_rows[name], "Ins")) <= 0.05, name
        assert abs(bench.relative_difference(cmrr_rows[name], "Glx")) <= 0.10, name


@pytest.mark.slow
def test_cmrr_7t_residual_fail_is_the_published_basis_not_the_fit(cmrr_rows):
    """With the nearest-TE published 7 T basis (SPECIAL TE 9 ms, its own measured MM) both
    programs leave more than the QC fail line (2.5 x noise) on the STEAM TE 6 ms spectrum
    (app 3.19, LCModel 3.55); the app's simulated STEAM basis at the data's TE/TM takes the
    app below it (2.14; with the measured MM 1.95), no parameter at a search limit there."""
    from pipeline.qc.flags import THRESHOLDS
    fail = THRESHOLDS["fit_quality_max"].fail
    published = cmrr_rows["cmrr_7t_te6"]
    assert published["qc"] == "fail" and published["lcm_res"] > fail
    for name in ("cmrr_7t_te6_sim", "cmrr_7t_te6_sim+MM", "cmrr_4t_te4_sim",
                 "cmrr_4t_te4_sim+MM"):
        assert cmrr_rows[name]["qc"] != "fail", (name, cmrr_rows[name]["app_res"])
    for name in ("cmrr_7t_te6_sim", "cmrr_7t_te6_sim+MM"):
        assert cmrr_rows[name]["app_res"] < 0.75 * published["app_res"], name
    assert cmrr_rows["cmrr_7t_te6_sim"]["at_bounds"] == []
