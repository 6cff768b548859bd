"""Acquisition effects of synthetic (d)MRS: frequency/phase drift, eddy-current phase,
motion-like outliers, coil sensitivities and correlated noise scaled to a stated SNR.

The model is stated in :mod:`pipeline.simulate.synthetic`; each effect draws from its own
random stream, given by the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..basis import Basis
from ..spectra import fid_to_spectrum, ppm_axis, time_axis_s

if TYPE_CHECKING:
    from .synthetic import SyntheticSpec

SNR_DEFINITION = (
    "SNR = H / sigma_avg: H = maximum of the real spectrum (unnormalised FFT) of the noiseless "
    "clean signal of the lowest-b condition within snr_ppm_range; sigma_avg = SD of the real part "
    "of the noise in the spectrum of the average of the n_transients transients of one condition "
    "after optimal unit-gain coil combination = sd_per_transient * sqrt(n_points / n_transients).")


def _complex_array(values, ndim: int) -> np.ndarray:
    """Complex ``ndim``-D array from complex/real numbers or nested ``[re, im]`` pairs."""
    arr = np.asarray(values)
    if np.iscomplexobj(arr):
        return arr.astype(complex)
    arr = arr.astype(float)
    if arr.ndim == ndim + 1 and arr.shape[-1] == 2:
        return arr[..., 0] + 1j * arr[..., 1]
    return arr.astype(complex)


def drift_walk(rng: np.random.Generator, n_total: int, walk_step: float,
               jitter_sd: float) -> np.ndarray:
    """Random walk starting at 0 (step SD ``walk_step``) plus independent jitter (SD ``jitter_sd``)."""
    steps = rng.normal(0.0, 1.0, n_total) * walk_step
    jitter = rng.normal(0.0, 1.0, n_total) * jitter_sd
    walk = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    return walk + jitter


def transient_drifts(rng: np.random.Generator, n_conditions: int, n_transients: int,
                     spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """Frequency (Hz) and phase (deg) per transient, shape ``(n_conditions, n_transients)``."""
    n_total = n_conditions * n_transients
    freq_hz = drift_walk(rng, n_total, spec.freq_walk_hz, spec.freq_jitter_hz)
    phase_deg = drift_walk(rng, n_total, spec.phase_walk_deg, spec.phase_jitter_deg)
    return (freq_hz.reshape(n_conditions, n_transients),
            phase_deg.reshape(n_conditions, n_transients))


def eddy_phase_rad(n_points: int, dwell_s: float, spec: SyntheticSpec) -> np.ndarray:
    """Eddy-current phase per condition, ``(n_conditions, n_points)`` in rad."""
    t = time_axis_s(n_points, dwell_s)
    base = np.zeros(n_points)
    for amplitude, tau in zip(spec.eddy_amplitudes_rad, spec.eddy_time_constants_s):
        base = base + amplitude * np.exp(-t / tau)
    return eddy_gain(spec)[:, None] * base[None, :]


def eddy_gain(spec: SyntheticSpec) -> np.ndarray:
    """Eddy-current scale per condition: b / b_max (or 1 when not scaled with b)."""
    b = np.asarray(spec.b_values_s_mm2, dtype=float)
    return b / b.max() if spec.eddy_scale_with_b and b.max() > 0 else np.ones_like(b)


def outlier_factors(rng: np.random.Generator, n_conditions: int, n_transients: int,
                    spec: SyntheticSpec) -> tuple[np.ndarray, list]:
    """Complex factor per transient (1 for good ones) and the list of outliers with details."""
    factors = np.ones((n_conditions, n_transients), dtype=complex)
    eligible = [(c, j) for c in range(n_conditions) for j in range(n_transients)
                if spec.outliers_at_b0 or spec.b_values_s_mm2[c] > 0]
    n_out = int(round(spec.outlier_fraction * len(eligible)))
    chosen = sorted(rng.choice(len(eligible), size=n_out, replace=False)) if n_out else []
    details = []
    for index in chosen:
        c, j = eligible[index]
        spread_deg = rng.uniform(*spec.outlier_spread_deg)
        half_spread_rad = np.deg2rad(spread_deg) / 2
        gain = float(np.abs(np.sin(half_spread_rad) / half_spread_rad))
        bulk_deg = float(rng.normal(0.0, spec.outlier_bulk_phase_sd_deg))
        factors[c, j] = gain * np.exp(1j * np.deg2rad(bulk_deg))
        details.append({"condition": int(c), "transient": int(j), "amplitude_factor": gain,
                        "phase_deg": bulk_deg, "phase_spread_deg": float(spread_deg)})
    return factors, details


def coil_model(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """Coil sensitivities ``(n_coils,)`` and noise-covariance *shape* ``(n_coils, n_coils)``."""
    n = spec.n_coils
    if spec.coil_sensitivities is not None:
        sens = _complex_array(spec.coil_sensitivities, 1).reshape(n)
    elif n == 1:
        sens = np.ones(1, dtype=complex)
    else:
        sens = rng.uniform(0.4, 1.0, n) * np.exp(1j * rng.uniform(-np.pi, np.pi, n))
    if spec.noise_covariance is not None:
        shape = _complex_array(spec.noise_covariance, 2).reshape(n, n)
        if not np.allclose(shape, shape.conj().T) or np.linalg.eigvalsh(shape).min() <= 0:
            raise ValueError("synthetic spec: noise_covariance is not Hermitian positive definite")
    else:
        scales = np.ones(n) if n == 1 else rng.uniform(0.8, 1.2, n)
        lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
        shape = (spec.coil_noise_correlation ** lag) * np.outer(scales, scales)
        shape = shape.astype(complex)
    return sens, shape


def reference_peak_height(clean_fid: np.ndarray, dwell_s: float, cf_mhz: float,
                          ref_ppm: float, ppm_range) -> float:
    """Maximum of the real spectrum of ``clean_fid`` within ``ppm_range`` (SNR numerator)."""
    ppm = ppm_axis(clean_fid.size, dwell_s, cf_mhz, ref_ppm)
    window = (ppm >= min(ppm_range)) & (ppm <= max(ppm_range))
    if not window.any():
        raise ValueError(f"synthetic spec: snr_ppm_range {ppm_range} holds no spectral point")
    return float(np.max(fid_to_spectrum(clean_fid).real[window]))


def noise_covariance_for_snr(sens: np.ndarray, shape: np.ndarray, sd_per_transient: float
                             ) -> np.ndarray:
    """Scale ``shape`` so the optimal unit-gain coil combination has real-part SD ``sd_per_transient``.

    The combination ``w = Sigma^-1 s / (s^H Sigma^-1 s)`` has complex noise variance
    ``1 / (s^H Sigma^-1 s)``; its real part carries half of it.
    """
    gain = float(np.real(sens.conj() @ np.linalg.solve(shape, sens)))
    return shape * (2.0 * sd_per_transient ** 2 * gain)


def complex_noise(rng: np.random.Generator, covariance: np.ndarray, shape: tuple) -> np.ndarray:
    """Complex Gaussian noise with ``E[n n^H] = covariance`` along axis -2 (coils)."""
    n_coils = covariance.shape[0]
    chol = np.linalg.cholesky(covariance)
    white = (rng.normal(size=shape + (n_coils,)) + 1j * rng.normal(size=shape + (n_coils,)))
    white = white / np.sqrt(2.0)
    coloured = white @ chol.T  # (..., n_points, n_coils)
    return np.moveaxis(coloured, -1, -2)


def _transients(clean: np.ndarray, dwell_s: float, freq_hz: np.ndarray,
                phase_deg: np.ndarray, eddy_rad: np.ndarray, factors: np.ndarray,
                sens: np.ndarray) -> np.ndarray:
    """Noiseless per-coil transients ``(n_cond, n_trans, n_coils, n_points)``."""
    t = time_axis_s(clean.shape[-1], dwell_s)
    drift = np.exp(1j * (2 * np.pi * freq_hz[..., None] * t + np.deg2rad(phase_deg)[..., None]))
    signal = clean[:, None, :] * drift * factors[..., None] * np.exp(1j * eddy_rad)[:, None, :]
    return signal[:, :, None, :] * sens[None, None, :, None]


def _noise_model(clean_b0_fid: np.ndarray, model: Basis, spec: SyntheticSpec,
                 sens: np.ndarray, cov_shape: np.ndarray) -> tuple[np.ndarray, dict]:
    """Coil noise covariance giving ``spec.snr`` (zeros when noiseless) and its truth entry.

    SNR = height of the clean lowest-b reference peak / SD of the real spectrum of the
    transient average; with ``n`` transients of ``N`` points the per-transient time-domain SD
    is ``height * sqrt(n) / (snr * sqrt(N))``.
    """
    truth = {"snr": spec.snr, "snr_definition": SNR_DEFINITION,
             "snr_ppm_range": list(spec.snr_ppm_range)}
    if spec.snr is None:
        truth.update(reference_peak_height=None, sd_per_transient=0.0,
                     sd_average_spectrum_real=0.0)
        return np.zeros((spec.n_coils, spec.n_coils), dtype=complex), truth
    height = reference_peak_height(clean_b0_fid, model.dwell_s, model.cf_mhz, model.ref_ppm,
                                   spec.snr_ppm_range)
    n_trans, n_points = spec.n_transients, model.n_points
    sd = height * np.sqrt(n_trans) / (spec.snr * np.sqrt(n_points))
    truth.update(reference_peak_height=height, sd_per_transient=float(sd),
                 sd_average_spectrum_real=float(sd * np.sqrt(n_points / n_trans)))
    return noise_covariance_for_snr(sens, cov_shape, sd), truth
