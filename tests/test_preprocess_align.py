"""Alignment: sign convention and accuracy on synthetic data with known drifts."""

import numpy as np

from pipeline.preprocess.align import align_conditions, align_transients, register_to_templates
from pipeline.spectra import apply_frequency_phase, ppm_to_hz, time_axis_s

DWELL_S = 1 / 3000.0
CF_MHZ = 298.06
N_POINTS = 1024
PEAKS = [(2.01, 3.0, 6), (3.03, 2.4, 6), (3.21, 1.3, 6), (3.92, 1.6, 8), (3.56, 1.5, 14),
         (2.35, 1.2, 16), (0.90, 1.5, 25), (1.39, 1.0, 25)]


def _clean():
    t = time_axis_s(N_POINTS, DWELL_S)
    return sum(a * np.exp(2j * np.pi * ppm_to_hz(p, CF_MHZ) * t - np.pi * w * t)
               for p, a, w in PEAKS)


def test_registration_follows_the_drift_convention():
    clean = _clean()
    freq_hz = np.array([-3.0, 0.0, 2.5, 7.2])
    phase_deg = np.array([15.0, -40.0, 0.0, 120.0])
    drifted = apply_frequency_phase(np.tile(clean, (4, 1)), DWELL_S, freq_hz, phase_deg)
    f, p, a = register_to_templates(drifted, clean, DWELL_S, CF_MHZ)
    np.testing.assert_allclose(f, freq_hz, atol=1e-3)
    np.testing.assert_allclose(p, phase_deg, atol=0.05)
    np.testing.assert_allclose(a, 1.0, rtol=1e-3)


def _direct_misfit(fids, template, freq_hz, ppm_range):
    """The registration misfit by its definition: one FFT of the demodulated FIDs per shift."""
    from pipeline.preprocess.align import window_mask
    from pipeline.spectra import fid_to_spectrum, ppm_axis
    mask = window_mask(ppm_axis(N_POINTS, DWELL_S, CF_MHZ), ppm_range)
    t = time_axis_s(N_POINTS, DWELL_S)
    spectra = fid_to_spectrum(fids[:, None, :] * np.exp(-2j * np.pi * freq_hz[:, :, None] * t))
    spectra, reference = spectra[..., mask], fid_to_spectrum(template)[mask]
    inner = spectra @ reference.conj()
    energy = np.sum(np.abs(reference) ** 2)
    return np.sum(np.abs(spectra) ** 2, axis=-1) - np.abs(inner) ** 2 / energy, inner, energy


def test_registration_matches_brute_force_search_of_the_misfit():
    """The fast (DTFT) misfit evaluation finds the same optimum, phase and amplitude as a
    brute-force search that Fourier-transforms every shifted FID, on noisy transients and a
    two-part window."""
    rng = np.random.default_rng(11)
    n = 6
    ppm_range = [(1.8, 2.2), (2.9, 3.4)]
    freq_hz, phase_deg = rng.uniform(-4, 4, n), rng.uniform(-20, 20, n)
    fids = apply_frequency_phase(np.tile(_clean(), (n, 1)), DWELL_S, freq_hz, phase_deg)
    fids = fids + 0.3 * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))
    template = _clean()
    f, p, a = register_to_templates(fids, template, DWELL_S, CF_MHZ, ppm_range)
    grid = f[:, None] + np.linspace(-0.1, 0.1, 401)[None, :]  # 0.5 mHz steps about the answer
    cost, _, _ = _direct_misfit(fids, template, grid, ppm_range)
    np.testing.assert_allclose(grid[np.arange(n), np.argmin(cost, axis=1)], f, atol=5e-4)
    _, inner, energy = _direct_misfit(fids, template, f[:, None], ppm_range)
    np.testing.assert_allclose(p, np.rad2deg(np.angle(inner[:, 0])), atol=1e-8)
    np.testing.assert_allclose(a, np.abs(inner[:, 0]) / energy, rtol=1e-10)


def test_model_templates_keep_signal_of_the_poles_and_drop_noise():
    """Projection onto the poles' span: a leave-one-out mean of signals made of those poles is
    reproduced exactly, and white noise keeps only its share n_poles / n_points of energy."""
    from pipeline.preprocess.align import model_templates
    rng = np.random.default_rng(5)
    freq_hz = np.array([ppm_to_hz(p, CF_MHZ) for p, _, _ in PEAKS])
    damping_hz = np.array([np.pi * w for _, _, w in PEAKS])
    amplitudes = rng.uniform(0.5, 2, (4, len(PEAKS)))
    t = time_axis_s(N_POINTS, DWELL_S)[:, None]
    signals = amplitudes @ np.exp((2j * np.pi * freq_hz - damping_hz) * t).T
    templates = model_templates(signals, DWELL_S, freq_hz, damping_hz)
    expected = (signals.sum(axis=0) - signals) / 3
    np.testing.assert_allclose(templates, expected, atol=1e-10 * np.abs(expected).max())
    # with two transients each leave-one-out mean is the other one: independent noise vectors
    noise = rng.standard_normal((200, 2, N_POINTS)) + 1j * rng.standard_normal((200, 2, N_POINTS))
    kept = sum(np.sum(np.abs(model_templates(pair, DWELL_S, freq_hz, damping_hz)) ** 2)
               for pair in noise)
    share = kept / np.sum(np.abs(noise) ** 2)
    assert abs(share - len(PEAKS) / N_POINTS) < 0.15 * len(PEAKS) / N_POINTS


def test_align_transients_recovers_relative_drifts_in_noise():
    rng = np.random.default_rng(0)
    n = 24
    freq_hz, phase_deg = rng.uniform(-4, 4, n), rng.uniform(-20, 20, n)
    fids = apply_frequency_phase(np.tile(_clean(), (n, 1)), DWELL_S, freq_hz, phase_deg)
    fids = fids + 0.01 * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))
    result = align_transients(fids, DWELL_S, CF_MHZ)
    freq_err = result.freq_hz - freq_hz
    phase_err = result.phase_deg - phase_deg
    assert np.std(freq_err) < 0.1
    assert np.std(phase_err) < 1.0
    corrected_spread = np.std(result.corrected[:, :50], axis=0).mean()
    assert corrected_spread < 0.1 * np.std(fids[:, :50], axis=0).mean()


def test_water_based_alignment_with_unsuppressed_water():
    from pipeline.preprocess.align import WATER_WINDOW_PPM
    rng = np.random.default_rng(2)
    n = 16
    t = time_axis_s(N_POINTS, DWELL_S)
    signal = _clean() + 200.0 * np.exp(-np.pi * 8 * t)  # water at 4.65 ppm (0 Hz)
    freq_hz, phase_deg = rng.uniform(-4, 4, n), rng.uniform(-20, 20, n)
    fids = apply_frequency_phase(np.tile(signal, (n, 1)), DWELL_S, freq_hz, phase_deg)
    fids = fids + 0.5 * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))
    result = align_transients(fids, DWELL_S, CF_MHZ, ppm_range=WATER_WINDOW_PPM)
    assert np.std(result.freq_hz - freq_hz) < 0.05
    assert np.std(result.phase_deg - phase_deg) < 0.5


def test_high_b_alignment_meets_targets_on_generator_data(shared_data):
    """The issue's design with engineer G's generator: 9 b-values up to 50 ms/um^2, 32
    transients each, pregame-like SNR and drifts; two datasets pooled (64 transients per b).
    Errors are per-transient drifts relative to the condition mean (see the benchmark)."""
    from pipeline.simulate.synthetic import simulate_acquisition
    from preprocess_support import drift_errors, pregame_basis, pregame_spec

    basis = pregame_basis(shared_data)
    freq_errors, phase_errors = [], []
    for seed in (0, 1):
        result = simulate_acquisition(basis, pregame_spec(seed))
        acq = result.metabolite
        alignments = align_conditions(acq.fids[:, :, 0, :], acq.dwell_s, acq.cf_mhz,
                                      acq.b_values_s_mm2)
        freq_err, phase_err = drift_errors(alignments, result.truth)
        freq_errors.append(freq_err - freq_err.mean(axis=1, keepdims=True))
        phase_errors.append(phase_err - phase_err.mean(axis=1, keepdims=True))
    freq_err, phase_err = np.concatenate(freq_errors, 1), np.concatenate(phase_errors, 1)
    freq_rms = np.sqrt(np.mean(freq_err ** 2, axis=1))
    phase_rms = np.sqrt(np.mean(phase_err ** 2, axis=1))
    assert np.all(freq_rms <= 1.2), freq_rms
    assert np.all(phase_rms <= 2.5), phase_rms
    assert np.sqrt(np.mean(freq_err ** 2)) <= 0.8
    assert np.sqrt(np.mean(phase_err ** 2)) <= 1.7
