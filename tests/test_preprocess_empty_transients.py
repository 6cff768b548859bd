"""Transients that are exactly zero (averages a scan did not acquire, filled with zeros by the
scanner or an export) are left out of alignment, outlier statistics and the average, with a
flag. Before, 12 zero transients of 24 were averaged in with no flag and took 40 % off that
condition's signal (in-vivo 7 T set), and 20 of 24 moved the alignment of the other 4 by 46 Hz.

Truth: the same real data with none of its transients zeroed.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master  # noqa: E402,F401

from pipeline.acquisition import Acquisition
from pipeline.preprocess.pipeline import PreprocessOptions, preprocess_acquisition
from pipeline.preprocess.steps import empty_transients, outlier_step
from pipeline.spectra import fid_to_spectrum, ppm_axis

CONDITION = 3


def test_empty_transients_are_exactly_zero_ones():
    fids = np.ones((2, 3, 8), dtype=complex)
    fids[1, 2] = 0
    fids[0, 1, :7] = 0  # one non-zero point: a measurement, however small
    assert empty_transients(fids).tolist() == [[False, False, False], [False, False, True]]


def _synthetic(n_transients=8, seed=0) -> Acquisition:
    """Two conditions of noisy singlets (NAA, Cr, Cho at 3 T)."""
    rng = np.random.default_rng(seed)
    dwell_s, cf_mhz, n = 2.5e-4, 123.2, 1024
    t = np.arange(n) * dwell_s
    line = sum(a * np.exp(-2j * np.pi * (ppm - 4.65) * cf_mhz * t - 20 * t)
               for ppm, a in ((2.008, 1.0), (3.027, 0.8), (3.185, 0.6)))
    fids = line + 0.02 * (rng.standard_normal((2, n_transients, 1, n))
                          + 1j * rng.standard_normal((2, n_transients, 1, n)))
    return Acquisition(fids, dwell_s, cf_mhz, np.array([0.0, 1000.0]),
                       np.array([[np.nan] * 3, [1.0, 0.0, 0.0]]), source="sub-01_svs.nii.gz")


@pytest.mark.parametrize("outliers", [True, False])
def test_zero_transients_are_rejected_and_flagged_with_or_without_outlier_rejection(outliers):
    acq = _synthetic()
    fids = acq.fids[:, :, 0, :].copy()
    fids[1, :3] = 0
    options = PreprocessOptions.from_dict({"outliers": outliers})
    step = outlier_step(fids, acq, options)
    assert step.rejected[1, :3].all() and not step.rejected[0].any()
    assert any(f.startswith("empty transients: condition 1") and "3 of 8" in f
               for f in step.flags)


def test_a_condition_of_zeros_only_is_refused_naming_the_file():
    acq = _synthetic()
    fids = acq.fids.copy()
    fids[1] = 0
    with pytest.raises(ValueError, match=r"sub-01_svs\.nii\.gz: condition 1 .*all 8 "
                                         r"transients are exactly zero"):
        preprocess_acquisition(acq.with_fids(fids))


@pytest.fixture(scope="module")
def invivo(shared_data):
    from pipeline.io.nifti_mrs import read_nifti_mrs
    folder = shared_data / "dmrs_7t_steam_invivo" / "nifti"
    sidecar = {"DiffusionBValueUnits": "s/mm2"}
    acq = read_nifti_mrs(folder / "metab.nii.gz", sidecar=sidecar, b_value_units="s/mm2")
    water = read_nifti_mrs(folder / "water.nii.gz", sidecar=sidecar, b_value_units="s/mm2")
    return acq, water, preprocess_acquisition(acq, water)


def _singlet_window(result, acq, condition=CONDITION) -> np.ndarray:
    ppm = ppm_axis(acq.n_points, acq.dwell_s, acq.cf_mhz)
    window = (ppm > 1.8) & (ppm < 3.4)
    return fid_to_spectrum(result.averaged.fids[condition].ravel())[window]


@pytest.mark.parametrize("n_zero", [12, 20])
def test_zero_transients_leave_the_condition_average_as_acquired(invivo, n_zero):
    acq, water, untouched = invivo
    fids = acq.fids.copy()
    fids[CONDITION, :n_zero] = 0
    result = preprocess_acquisition(acq.with_fids(fids), water)
    rows = [r for r in result.transients if r["condition"] == CONDITION]
    assert [r["rejected"] for r in rows[:n_zero]] == [1] * n_zero
    assert any(f.startswith(f"empty transients: condition {CONDITION}") for f in result.flags)
    # the singlets of the condition's average: the same signal as from all 24 (averaged in,
    # the zeros took it to 0.60 and 0.30 of that)
    reference = _singlet_window(untouched, acq)
    ratio = np.real(np.vdot(reference, _singlet_window(result, acq))) / np.vdot(
        reference, reference).real
    assert 0.88 < ratio < 1.12
    # the acquired transients keep their alignment (20 zeros had moved them by 46 Hz)
    before = {r["transient"]: r["freq_shift_hz"] for r in untouched.transients
              if r["condition"] == CONDITION}
    shifts = [abs(r["freq_shift_hz"] - before[r["transient"]]) for r in rows[n_zero:]]
    assert max(shifts) < 3.0


@pytest.mark.parametrize("condition", [0, 1])
@pytest.mark.parametrize("n_acquired", [1, 2])
def test_one_or_two_acquired_transients_keep_their_frequency(condition, n_acquired):
    """With fewer than 3 acquired transients there is no leave-one-out template; the all-zero
    one walked the only transient to the search edge at every pass (NAA at 1.70 ppm)."""
    acq = _synthetic()
    fids = acq.fids.copy()
    fids[condition, n_acquired:] = 0
    result = preprocess_acquisition(acq.with_fids(fids))
    shifts = [r["freq_shift_hz"] for r in result.transients if r["condition"] == condition]
    assert max(abs(s) for s in shifts) < 1.0  # the synthetic data do not drift
    ppm = ppm_axis(acq.n_points, acq.dwell_s, acq.cf_mhz)
    spectrum = np.abs(fid_to_spectrum(result.averaged.fids[condition].ravel()))
    near = (ppm > 1.5) & (ppm < 2.5)
    assert abs(ppm[near][np.argmax(spectrum[near])] - 2.008) < 0.02


@pytest.mark.parametrize("condition", [0, CONDITION])
def test_a_single_acquired_transient_leaves_the_other_conditions_as_they_were(invivo, condition):
    """23 of 24 zero in the lowest-b condition (whose mean starts every other condition's
    alignment) or in condition 3: every average keeps its singlets (before: the others were
    anti-correlated with their truth, -0.07 to -0.03)."""
    acq, water, untouched = invivo
    fids = acq.fids.copy()
    fids[condition, :23] = 0
    result = preprocess_acquisition(acq.with_fids(fids), water)
    for c in range(acq.n_conditions):
        reference = _singlet_window(untouched, acq, c)
        ratio = np.real(np.vdot(reference, _singlet_window(result, acq, c))) / np.vdot(
            reference, reference).real
        assert ratio > 0.75, (c, ratio)


def test_zero_water_transients_do_not_scale_the_water_signal(invivo):
    """The water reference's zero transients are left out of its averages: its lowest-b
    signal (water scaling) is the acquired transients' mean, with a flag (before: 2 zero of 4
    halved it, doubling every concentration)."""
    from pipeline.fitting.quantification import water_amplitude
    from pipeline.preprocess.steps import combine_step, lowest_b_fid
    acq, water, _ = invivo
    fids = water.fids.copy()
    fids[0, 2:] = 0  # lowest b: 2 of its 4 transients not acquired
    zeroed = water.with_fids(fids)
    acquired = water.with_fids(water.fids[:, :2])
    assert water_amplitude(lowest_b_fid(zeroed), water.dwell_s) == pytest.approx(
        water_amplitude(lowest_b_fid(acquired), water.dwell_s), rel=1e-9)
    assert any("2 of 40 transients exactly zero" in f for f in combine_step(acq, zeroed).flags)


def _zero_transients(path, condition: int, transients: slice) -> None:
    """Set some transients of one condition of a demo NIfTI-MRS file (..., points, DYN, USER_0)
    to exactly zero, as an export fills averages a scan did not acquire."""
    import nibabel as nib
    image = nib.load(path)
    data = np.asarray(image.dataobj).copy()
    data[..., transients, condition] = 0
    nib.save(type(image)(data, image.affine, header=image.header), path)


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_the_workflow_leaves_zero_transients_out(demo, tmp_path):
    """Through the app's nodes (combination, alignment, outliers, averaging read the transients
    table): half the transients of one condition zero, the amplitudes stay those of the
    untouched data (averaged in, the zeros would halve them)."""
    import csv
    import json
    import shutil

    from bids_app import cli

    def run(bids, name):
        out = tmp_path / f"out-{name}"
        status = cli.main([str(bids), str(out), "participant", "--participant-label", "01",
                           "-w", str(tmp_path / f"work-{name}"), "--skip-bids-validation",
                           "--nprocs", "2"])
        assert status == cli.EXIT_OK
        return out / "sub-01" / "mrs"

    def amplitude(folder, condition, name="tNAA"):
        with open(folder / "sub-01_acq-dwpress_amplitudes.tsv", newline="") as fh:
            return next(float(r["amplitude"]) for r in csv.DictReader(fh, delimiter="\t")
                        if r["metabolite"] == name and int(r["condition"]) == condition)

    untouched = run(demo, "untouched")
    zeroed_bids = tmp_path / "zeroed"
    shutil.copytree(demo, zeroed_bids, symlinks=True)
    _zero_transients(zeroed_bids / "sub-01" / "mrs" / "sub-01_acq-dwpress_svs.nii.gz", 1,
                     slice(0, 4))
    zeroed = run(zeroed_bids, "zeroed")
    assert amplitude(zeroed, 1) == pytest.approx(amplitude(untouched, 1), rel=0.15)
    with open(zeroed / "sub-01_acq-dwpress_transients.tsv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if int(r["condition"]) == 1]
    assert [int(r["rejected"]) for r in rows[:4]] == [1, 1, 1, 1]
    qc = json.loads((zeroed / "sub-01_acq-dwpress_qc.json").read_text())
    assert "empty transients: condition 1" in json.dumps(qc["stages"]["outliers.json"]["flags"])
