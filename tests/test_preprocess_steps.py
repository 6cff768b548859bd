"""Preprocessing steps on simulated signals with known truth and on the shared Siemens data."""

import numpy as np
import pytest

from pipeline.preprocess.average import average_transients, powder_average, shells
from pipeline.preprocess.coils import combine_coils, matched_filter_weights
from pipeline.preprocess.eddy import eddy_current_correct, residual_phase_rad
from pipeline.preprocess.motion import mm_amplitude_check
from pipeline.preprocess.outliers import detect_outliers
from pipeline.preprocess.water import hlsvd, remove_residual_water
from pipeline.spectra import (fid_to_spectrum, ppm_axis, ppm_to_hz,
                              ppm_window_mask, time_axis_s)

DWELL_S = 1 / 3000.0
CF_MHZ = 298.06
N_POINTS = 1024
T_S = time_axis_s(N_POINTS, DWELL_S)


def singlets(peaks, n_points=N_POINTS, dwell_s=DWELL_S):
    """Sum of Lorentzian singlets [(ppm, amplitude, fwhm_hz)]."""
    t = time_axis_s(n_points, dwell_s)
    return sum(a * np.exp(2j * np.pi * ppm_to_hz(p, CF_MHZ) * t - np.pi * w * t)
               for p, a, w in peaks)


BRAIN = [(2.01, 3.0, 6), (3.03, 2.4, 6), (3.21, 1.3, 6), (3.92, 1.6, 8), (3.56, 1.5, 14),
         (2.35, 1.2, 16), (0.90, 1.5, 25), (1.39, 1.0, 25)]


def _noise(rng, shape, sd):
    return sd * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


# --- coil combination ---------------------------------------------------------------------

def _snr(fid, dwell_s=DWELL_S, cf_mhz=CF_MHZ):
    ppm = ppm_axis(fid.size, dwell_s, cf_mhz)
    spectrum = fid_to_spectrum(fid)
    noise = np.std(spectrum[ppm_window_mask(ppm, 8.5, 9.5)].real)
    return np.abs(spectrum[ppm_window_mask(ppm, 1.9, 2.1)]).max() / noise


def test_coil_combination_reaches_optimal_snr_with_correlated_noise():
    rng = np.random.default_rng(3)
    n_coils, n_trans = 4, 32
    sens = np.array([1.0, 0.6 * np.exp(1j), 0.4 * np.exp(-2j), 0.8 * np.exp(2.5j)])
    corr = 0.5 ** np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    scales = np.array([1.0, 1.5, 0.8, 1.2])
    cov = corr * np.outer(scales, scales) * 2 * 0.02 ** 2
    chol = np.linalg.cholesky(cov)
    signal = singlets(BRAIN)
    white = _noise(rng, (n_trans, N_POINTS, n_coils), np.sqrt(0.5))
    fids = sens[None, :, None] * signal + np.swapaxes(white @ chol.T, 1, 2)
    water = sens[:, None] * singlets([(4.65, 200.0, 5)]) + np.swapaxes(
        _noise(rng, (N_POINTS, n_coils), np.sqrt(0.5)) @ chol.T, 0, 1)
    result = combine_coils(fids, water)
    optimal = np.einsum("k,tkn->tn", matched_filter_weights(sens, cov).conj(), fids)
    snr, snr_optimal = _snr(result.combined.mean(0)), _snr(optimal.mean(0))
    assert result.whitened and result.source == "reference"
    assert snr >= 0.95 * snr_optimal
    assert snr > max(_snr(fids[:, k].mean(0) / sens[k]) for k in range(n_coils))
    rows = result.weights_table()
    assert sum(r["weight"] for r in rows) == pytest.approx(1.0)
    # unit gain: the combined signal has the simulated amplitude
    assert np.abs(result.combined.mean(0)[:8].mean()) == pytest.approx(
        np.abs(signal[:8].mean()), rel=0.05)


def test_coil_combination_on_siemens_data_beats_best_coil_and_plain_sum(shared_data):
    from pipeline.io.nifti_mrs import read_nifti_mrs
    folder = shared_data / "siemens_7t_steam_coils"
    metab = read_nifti_mrs(folder / "metab_raw.nii.gz")
    wref = read_nifti_mrs(folder / "wref_raw.nii.gz")
    fids = metab.fids[0]
    snr = lambda f: _snr(f, metab.dwell_s, metab.cf_mhz)
    result = combine_coils(fids, wref.fids[0])
    combined = snr(result.combined.mean(0))
    best_coil = max(snr(fids[:, k].mean(0)) for k in range(fids.shape[1]))
    plain_sum = snr(fids.sum(axis=1).mean(0))
    assert combined >= best_coil
    assert combined >= plain_sum
    assert len(result.weights_table()) == 4


# --- outliers -----------------------------------------------------------------------------

@pytest.mark.parametrize("noise_sd", [0.02, 0.1])
def test_outliers_sensitivity_and_false_positives(noise_sd):
    rng = np.random.default_rng(7)
    n_cond, n_trans = 6, 40
    truth, found = [], []
    for _ in range(n_cond):
        bad = np.zeros(n_trans, bool)
        bad[rng.choice(n_trans, n_trans // 10, replace=False)] = True
        spread = np.deg2rad(rng.uniform(180, 400, n_trans)) / 2
        gain = np.where(bad, np.abs(np.sin(spread) / spread), 1.0)
        fids = gain[:, None] * singlets(BRAIN) + _noise(rng, (n_trans, N_POINTS), noise_sd)
        result = detect_outliers(fids, DWELL_S, CF_MHZ)
        truth.append(bad)
        found.append(result.rejected)
    truth, found = np.concatenate(truth), np.concatenate(found)
    sensitivity = (truth & found).sum() / truth.sum()
    false_positive = (~truth & found).sum() / (~truth).sum()
    assert sensitivity >= 0.9
    assert false_positive <= 0.05


def test_condition_flagged_when_over_30_percent_rejected():
    rng = np.random.default_rng(1)
    fids = singlets(BRAIN) + _noise(rng, (20, N_POINTS), 0.02)
    fids[:8] *= 0.3
    result = detect_outliers(fids, DWELL_S, CF_MHZ)
    assert result.fraction_rejected == pytest.approx(0.4)
    assert result.flagged
    assert not detect_outliers(fids[6:], DWELL_S, CF_MHZ).flagged


# --- eddy currents ------------------------------------------------------------------------

def _eddy(t_s, amplitude_rad=1.2, tau_s=0.02):
    return amplitude_rad * np.exp(-t_s / tau_s)


@pytest.mark.parametrize("water_noise_sd", [0.0, 0.3])
def test_ecc_removes_simulated_eddy_phase(water_noise_sd):
    rng = np.random.default_rng(2)
    ec = np.exp(1j * _eddy(T_S))
    metab = singlets(BRAIN) * ec
    water_clean = singlets([(4.65, 50.0, 6)])
    water = water_clean * ec * np.exp(1j * 0.7) + _noise(rng, N_POINTS, water_noise_sd)
    before = residual_phase_rad(water_clean * ec, DWELL_S)
    result = eddy_current_correct(metab, water, DWELL_S)
    assert result.denoised == (water_noise_sd > 0)
    # the corrected metabolite FID equals the undistorted one up to a phase a + 2 pi f t
    # (ECC leaves frequency and zero-order phase to alignment)
    clean = singlets(BRAIN)
    weights = np.abs(clean) ** 2
    phase = np.unwrap(np.angle(result.corrected / clean))
    design = np.stack([np.ones_like(T_S), T_S], axis=1) * np.sqrt(weights)[:, None]
    coefficients, *_ = np.linalg.lstsq(design, phase * np.sqrt(weights), rcond=None)
    line = coefficients[0] + coefficients[1] * T_S
    residual = np.sqrt(np.sum(weights * (phase - line) ** 2) / weights.sum())
    assert before > 0.1
    assert residual < 0.05 * before
    corrected_water = eddy_current_correct(water_clean * ec, water, DWELL_S).corrected
    assert residual_phase_rad(corrected_water, DWELL_S) < 0.05 * before


def test_ecc_on_siemens_data_removes_water_lineshape_distortion(shared_data):
    """The eddy-current reference (ecc.nii.gz) corrects the separately acquired water (wref)."""
    from pipeline.io.nifti_mrs import read_nifti_mrs
    folder = shared_data / "siemens_7t_steam_coils"
    ecc = read_nifti_mrs(folder / "ecc.nii.gz")
    wref = read_nifti_mrs(folder / "wref_raw.nii.gz")
    combination = combine_coils(wref.fids[0], wref.fids[0])
    waters = combination.combined
    reference = np.einsum("k,kn->n", combination.weights.conj(), ecc.fids[0, 0])
    for water in waters:
        before = residual_phase_rad(water, wref.dwell_s)
        corrected = eddy_current_correct(water, reference, ecc.dwell_s).corrected
        after = residual_phase_rad(corrected, wref.dwell_s)
        assert before > 0.1
        assert after < 0.1 * before


def test_ecc_falls_back_to_lowest_b_reference_when_matched_one_is_noise():
    from pipeline.preprocess.pipeline import PreprocessOptions
    from pipeline.preprocess.steps import select_water_reference
    rng = np.random.default_rng(8)
    good = singlets([(4.65, 50.0, 6)])
    water = np.stack([np.stack([good, good]), _noise(rng, (2, N_POINTS), 1.0)])
    flags = []
    chosen = select_water_reference(water, np.array([0.0, 3000.0]), 1, 3000.0,
                                    PreprocessOptions().ecc_min_water_snr, flags, "condition 1")
    np.testing.assert_allclose(chosen, good)
    assert "used the lowest-b reference" in flags[0]


def _direction_series(order):
    """Data and water of b = 0 and three directions at one b, each direction with its own
    eddy-current phase (the truth), the water's conditions stored in ``order``."""
    from pipeline.acquisition import Acquisition
    b = np.array([0.0, 3000.0, 3000.0, 3000.0])
    dirs = np.array([[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    eddy = [np.exp(1j * _eddy(T_S, amplitude_rad=a)) for a in (0.0, 0.6, 1.2, -0.9)]
    metab = np.stack([singlets(BRAIN) * e for e in eddy])[:, None]
    water = np.stack([singlets([(4.65, 50.0, 6)]) * e for e in eddy])[:, None]
    acq = Acquisition(metab[:, :, None], DWELL_S, CF_MHZ, b, dirs)
    order = np.asarray(order)
    return acq, water[order], b[order], dirs[order]


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [0, 2, 3, 1], [3, 2, 1, 0]])
def test_ecc_pairs_each_condition_with_the_water_of_its_b_and_direction(order):
    """The water series stored in another order (directions rotated within the shell, or b
    reversed) still corrects each condition with its own eddy currents: the corrected
    conditions match those of the water stored in the data's order, and no condition falls
    back to the lowest-b water."""
    from pipeline.preprocess.steps import eddy_step
    acq, water, water_b, water_dirs = _direction_series(order)
    corrected, flags = eddy_step(acq.fids[:, :, 0], water, water_b, acq, 0.0, water_dirs)
    _, same_order, b_same, dirs_same = _direction_series([0, 1, 2, 3])
    expected, _ = eddy_step(acq.fids[:, :, 0], same_order, b_same, acq, 0.0, dirs_same)
    assert not [f for f in flags if "no condition-matched" in f]
    np.testing.assert_allclose(corrected, expected, atol=1e-9 * np.abs(expected).max())
    clean = singlets(BRAIN)  # relative to the eddy-free b = 0 water: the undistorted FID
    for c in range(4):
        assert np.max(np.abs(corrected[c, 0] - clean)) < 1e-6 * np.abs(clean).max()


# --- residual water (HLSVD) ---------------------------------------------------------------

def test_hlsvd_recovers_known_components():
    peaks = [(2.01, 3.0, 6), (3.03, 2.0, 9), (4.65, 40.0, 12)]
    model = hlsvd(singlets(peaks), DWELL_S, n_components=3)
    order = np.argsort(model.freq_hz)
    expected_hz = np.sort([ppm_to_hz(p, CF_MHZ) for p, _, _ in peaks])
    np.testing.assert_allclose(model.freq_hz[order], expected_hz, atol=1e-3)
    np.testing.assert_allclose(np.sort(model.damping_hz), np.pi * np.array([6, 9, 12]),
                               rtol=1e-4)


def test_residual_water_removal_spares_metabolites():
    rng = np.random.default_rng(4)
    metab = singlets(BRAIN)
    water = singlets([(4.68, 60.0, 12), (4.60, 20.0, 20)])
    cleaned, info = remove_residual_water(metab + water + _noise(rng, N_POINTS, 0.01),
                                          DWELL_S, CF_MHZ)
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    water_band = ppm_window_mask(ppm, 4.4, 4.9)
    metab_band = ppm_window_mask(ppm, 1.8, 3.4)
    before = np.abs(fid_to_spectrum(metab + water)[water_band]).max()
    after = np.abs(fid_to_spectrum(cleaned - metab)[water_band]).max()
    assert after < 0.05 * before
    error = np.abs(fid_to_spectrum(cleaned - metab)[metab_band]).max()
    assert error < 0.03 * np.abs(fid_to_spectrum(metab)[metab_band]).max()
    assert info["n_components_removed"] >= 2


# --- averaging, powder average, motion ----------------------------------------------------

def test_average_skips_rejected_transients():
    fids = np.ones((2, 4, 8), complex)
    fids[0, 1] = 100.0
    rejected = np.zeros((2, 4), bool)
    rejected[0, 1] = True
    np.testing.assert_allclose(average_transients(fids, rejected), 1.0)


def test_powder_average_arithmetic_and_geometric():
    b = [0, 907, 903, 901, 2155, 2148, 2144]
    assert shells(b).tolist() == [0, 1, 1, 1, 2, 2, 2]
    signals = np.array([1.0, 0.5, 0.8, 0.2, 0.3, 0.6, 0.1])
    arithmetic, shell_b = powder_average(signals, b, "arithmetic")
    geometric, _ = powder_average(signals, b, "geometric")
    np.testing.assert_allclose(arithmetic, [1.0, 0.5, 1 / 3])
    np.testing.assert_allclose(geometric, [1.0, 0.08 ** (1 / 3), 0.018 ** (1 / 3)])
    np.testing.assert_allclose(shell_b, [0, 903.6666667, 2149.0])
    fids = np.stack([s * np.exp(1j * 0.3) * np.ones(4) for s in signals])
    complex_geo, _ = powder_average(fids, b, "geometric")
    np.testing.assert_allclose(complex_geo[:, 0], geometric * np.exp(1j * 0.3))
    with pytest.raises(ValueError, match="harmonic"):
        powder_average(signals, b, "harmonic")


def test_mm_check_flags_only_a_real_drop():
    rng = np.random.default_rng(5)
    mm = singlets([(0.90, 1.5, 25)])
    metab = singlets([(2.01, 3.0, 6)])
    b_s_mm2 = np.array([0, 10000, 30000, 50000])
    decay = np.array([1.0, 0.6, 0.3, 0.2])
    mm_scale = np.exp(-b_s_mm2 / 1000 * 0.008) * np.array([1, 1, 1, 0.6])  # last: motion
    averages = decay[:, None] * metab + mm_scale[:, None] * mm
    averages = averages + _noise(rng, averages.shape, 0.003)
    check = mm_amplitude_check(averages, DWELL_S, CF_MHZ, b_s_mm2)
    assert check.flagged.tolist() == [False, False, False, True]
    assert check.ratio[3] == pytest.approx(0.6 * mm_scale[3] / 0.6, abs=0.06)


def test_a_single_condition_water_reference_for_a_series_is_warned_once():
    """A water reference at b = 0 only (the common design) for a 10-condition series: the
    nine diffusion-weighted conditions keep their own eddy currents, which is said once; a
    per-condition reference, or a single spectrum with its water, gives no such warning."""
    from pipeline.preprocess.steps import single_water_flags

    b = np.array([0, 907, 907, 907, 2155, 2155, 2155, 3956, 3956, 3956], dtype=float)
    (flag,) = single_water_flags([0.0], b)
    assert "one condition (b = 0 s/mm^2)" in flag and "the 9 condition(s)" in flag
    assert single_water_flags(b, b) == []
    assert single_water_flags([0.0], [0.0]) == []
