"""FIDs that start whole sampling points late or early (``pipeline/fitting/time_offset.py``):
found from the conditions' first-order phase and undone before the series is fitted again."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from pipeline.fitting.time_offset import (on_input_grid, one_point_phase1_deg_per_ppm,
                                          started_on_time, whole_point_delay)
from pipeline.spectra import fid_to_spectrum, ppm_axis

DWELL_S, CF_MHZ, N_POINTS = 1 / 3000, 298.0, 1024


def singlet_fid(ppm: float, n_points: int = N_POINTS) -> np.ndarray:
    """A Lorentzian singlet at ``ppm`` in the project's convention (CONTRIBUTING.md)."""
    t = np.arange(n_points) * DWELL_S
    return np.exp(-2j * np.pi * (ppm - 4.65) * CF_MHZ * t - 20.0 * t)


def test_one_point_late_is_the_first_order_phase_the_fits_report():
    """Analytic: a FID that lost its first point carries exp(2i pi f dwell); between two
    singlets 1 ppm apart its phase changes by the fits' phase1 of one point (sign included)."""
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    phases = []
    for centre in (2.0, 3.0):
        fid = singlet_fid(centre, N_POINTS + 1)
        on_time, late = fid_to_spectrum(fid[:-1]), fid_to_spectrum(fid[1:])
        peak = int(np.argmin(np.abs(ppm - centre)))
        phases.append(np.angle(late[peak] / on_time[peak]))
    per_ppm = np.rad2deg(np.angle(np.exp(1j * (phases[1] - phases[0]))))
    assert per_ppm == pytest.approx(one_point_phase1_deg_per_ppm(DWELL_S, CF_MHZ), abs=1e-6)


def test_delay_is_read_in_whole_points_from_the_median():
    point = one_point_phase1_deg_per_ppm(DWELL_S, CF_MHZ)
    rng = np.random.default_rng(0)
    for delay in (-2, -1, 1, 2):
        phases = delay * point + rng.normal(0, 3, 9)
        phases[0] = 0.0  # one condition in another minimum does not move the median
        assert whole_point_delay(phases, DWELL_S, CF_MHZ) == delay
    assert whole_point_delay(0.5 * point + rng.normal(0, 1, 9), DWELL_S, CF_MHZ) == 0
    assert whole_point_delay(1.5 * point + rng.normal(0, 1, 9), DWELL_S, CF_MHZ) == 0
    # two conditions, or one spectrum: not read off a median ...
    assert whole_point_delay([point, point], DWELL_S, CF_MHZ) == 0
    # ... unless the fits ended at the search limit (a lower bound: at least one point)
    limit = 1.3 * abs(point)
    assert whole_point_delay([-limit], DWELL_S, CF_MHZ, limit) == 1
    assert whole_point_delay([limit, limit, limit], DWELL_S, CF_MHZ, limit) == -1


def test_moving_restores_the_fid_but_for_the_lost_points():
    fid = singlet_fid(2.0) + 0.5 * singlet_fid(3.0)
    for n in (1, 2):
        late = np.concatenate([fid[n:], np.zeros(n)])
        restored = started_on_time(late, n)
        assert np.array_equal(restored[:n], np.zeros(n))
        assert np.allclose(restored[n:], fid[n:], atol=0, rtol=0)
        back = on_input_grid(restored, n)
        assert np.array_equal(back, late)  # the lost points were 0: the circular move undoes
        model = fid_to_spectrum(fid)
        turned = fid_to_spectrum(on_input_grid(fid, n))  # a model's spectrum: turned exactly
        assert np.allclose(turned, model * np.exp(2j * np.pi * n * np.fft.fftshift(
            np.fft.fftfreq(N_POINTS))), atol=1e-9 * np.abs(model).max())
        early = np.concatenate([np.zeros(n), fid[:-n]])
        assert np.array_equal(started_on_time(early, -n)[:-n], fid[:-n])


@pytest.fixture(scope="module")
def published(shared_data):
    """The published 7 T set (someone else's simulator) as the app preprocesses it, its basis
    with the app's lipids, the app's default fit options and the set's truth."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_published_b0 as bench
    from test_fitting_support import truncated

    from bids_app.config import load_config
    from pipeline.fitting import FitOptions
    from pipeline.io.basis_formats import read_basis
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.preprocess.pipeline import preprocess_acquisition
    from pipeline.simulate.macromolecules import with_lipids

    folder = shared_data / "dmrs_7t_steam_synthetic"
    basis = with_lipids(truncated(read_basis(folder / "basis_STEAM_TE45_TM60.BASIS"), 1024))
    acq = read_nifti_mrs(folder / "nifti" / "synthetic.nii.gz")
    averages = preprocess_acquisition(acq).averaged.fids[:, 0, 0, :]
    return averages, basis, acq, FitOptions.from_dict(load_config()["fitting"]), bench


@pytest.mark.slow
@pytest.mark.parametrize("points", [1, 2])
def test_published_set_late_by_whole_points_is_fitted_as_on_time(published, points):
    """The published set's condition averages with their first ``points`` lost. Before: one
    point late moved the b = 0 Ins/tCr to -5.7 % and the MM decay error from 0.005 to 0.018;
    two points took the first-order phase to its search limit and gave tCho/tCr -30 %, Glu/tCr
    -16 % and an MM decay error of 0.13, exit 0. Now the series is found late, said so, fitted
    moved back, and its b = 0 ratios stay within 2 % (one point) and 5 % (two) of the truth."""
    from test_fitting_accuracy import PREGAME_GT_DECAY_MINOR

    from pipeline.fitting import fit_conditions

    averages, basis, acq, options, bench = published
    late = np.concatenate([averages[:, points:], np.zeros((averages.shape[0], points))], axis=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = fit_conditions(late, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                              options)
    notes = [str(w.message) for w in caught if "point(s) late" in str(w.message)]
    assert len(notes) == 1 and f"starting {points} point(s) late" in notes[0], notes
    assert fits.extra["fid_delay_points"] == points
    truth = bench.truth_ratios()
    b0 = bench.ratios(bench.fitted(fits.fits[0]))
    deviation = {k: b0[k] / truth[k] - 1 for k in bench.REPORTED}
    assert all(abs(v) <= (0.02 if points == 1 else 0.05) for v in deviation.values()), deviation
    mm = fits.series("Mac")[0]
    mm_error = np.sqrt(np.mean((mm / mm[0] - PREGAME_GT_DECAY_MINOR["Mac"])[1:] ** 2))
    assert mm_error < 0.01, mm_error
    # the fitted FIDs are on the input's time grid: over the fit window they leave a residual
    # of the late data as small as the on-time fit leaves of the on-time data
    on_time = on_time_fits(published)
    window = fit_window(acq, options)
    for c in (0, late.shape[0] - 1):
        moved = fid_to_spectrum(late[c] - fits.fits[c].fitted_fid)[window]
        reference = fid_to_spectrum(averages[c] - on_time.fits[c].fitted_fid)[window]
        assert np.std(moved) < 1.2 * np.std(reference), (c, np.std(moved), np.std(reference))


def fit_window(acq, options) -> np.ndarray:
    ppm = ppm_axis(acq.n_points, acq.dwell_s, acq.cf_mhz)
    return (ppm >= options.ppm_range[0]) & (ppm <= options.ppm_range[1])


ON_TIME = {}


def on_time_fits(published):
    """The app's default series fit of the published set as stored (computed once)."""
    from pipeline.fitting import fit_conditions

    if "fits" not in ON_TIME:
        averages, basis, acq, options, _ = published
        ON_TIME["fits"] = fit_conditions(averages, basis, acq.dwell_s, acq.cf_mhz,
                                         acq.b_values_s_mm2, options)
    return ON_TIME["fits"]


@pytest.mark.slow
def test_published_set_on_time_is_not_moved(published):
    assert "fid_delay_points" not in on_time_fits(published).extra


@pytest.mark.slow
def test_single_spectrum_moves_only_off_the_limit(published):
    """One spectrum (the published b = 0 average): three points late its fit ends at the phase's
    search limit (before: tCho/tCr -65 %), so it is moved until it no longer does (two points;
    the last point is not read off one spectrum)."""
    from pipeline.fitting import fit_conditions

    averages, basis, acq, options, bench = published
    late = np.concatenate([averages[:1, 3:], np.zeros((1, 3))], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = fit_conditions(late, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2[:1],
                              options)
    assert fits.extra.get("fid_delay_points") == 2
    b0 = bench.ratios(bench.fitted(fits.fits[0]))
    truth = bench.truth_ratios()
    assert abs(b0["tCho"] / truth["tCho"] - 1) < 0.06, b0


@pytest.mark.slow
def test_moves_that_never_leave_the_limit_are_undone(published, monkeypatch):
    """Fits whose first-order phase stays at the search limit whatever the move (here made so:
    every fit's phase replaced by the limit) are not a delay the moves undo: after the moves
    (up to 8 points, each followed by a refit) the input is fitted as it came, no warning."""
    import dataclasses

    from pipeline.fitting import conditions, fit_conditions

    averages, basis, acq, options, _ = published
    real = conditions._fitted_each
    calls = []

    def at_limit(fids, *args):
        spectra, scale, fits = real(fids, *args)
        calls.append((fids.copy(), fits))
        problem = fits[0].extra["problem"]
        limit = 360.0 * problem.upper[problem.n_base_theta - 1] * problem.cf_mhz
        return spectra, scale, [dataclasses.replace(f, phase1_deg_per_ppm=-limit) for f in fits]

    monkeypatch.setattr(conditions, "_fitted_each", at_limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = fit_conditions(averages[:1], basis, acq.dwell_s, acq.cf_mhz,
                              acq.b_values_s_mm2[:1], options)
    assert len(calls) == 9  # the input, then moves of 1-8 points
    assert "fid_delay_points" not in fits.extra
    assert not [w for w in caught if "point(s)" in str(w.message)]
    assert np.array_equal(calls[0][0], averages[:1])  # the input as it came ...
    assert np.array_equal(fits.fits[0].fitted_fid, calls[0][1][0].fitted_fid)  # ... its fit


@pytest.mark.slow
def test_fixed_shape_mm_is_taken_from_the_fids_as_moved(published):
    """``mm_mode = "fixed_shape_from_highest_b"``: the MM shape is fitted at the highest b on
    the FIDs moved back on time, so one point late gives the on-time series' results. Before,
    the shape was taken from the late FIDs before the delay was found: b = 0 Ins/tCr 1.2 % and
    tCho/tCr -0.75 % from the on-time fit's, MM decay 0.005 (RMS) from it; now within 0.05 %
    and 0.0003."""
    import dataclasses

    from pipeline.fitting import fit_conditions

    averages, basis, acq, options, bench = published
    fixed = dataclasses.replace(options, mm_mode="fixed_shape_from_highest_b")
    late = np.concatenate([averages[:, 1:], np.zeros((averages.shape[0], 1))], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_time, moved = (fit_conditions(f, basis, acq.dwell_s, acq.cf_mhz,
                                         acq.b_values_s_mm2, fixed) for f in (averages, late))
    assert "fid_delay_points" not in on_time.extra and moved.extra["fid_delay_points"] == 1
    ratios = [bench.ratios(bench.fitted(f.fits[0])) for f in (moved, on_time)]
    change = {k: ratios[0][k] / ratios[1][k] - 1 for k in bench.REPORTED}
    assert all(abs(v) < 0.003 for v in change.values()), change
    decays = [f.series("MM")[0] / f.series("MM")[0][0] for f in (moved, on_time)]
    assert np.sqrt(np.mean((decays[0] - decays[1]) ** 2)) < 0.002, decays
