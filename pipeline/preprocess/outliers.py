"""Outlier transients (motion during the diffusion gradients) within one condition.

Criterion (documented default): after alignment, each transient is compared with a robust
template, the bin-wise complex median of the condition's aligned transients (in the frame of
their summed spectrum, :func:`median_template`), over a metabolite window. Two scores:

* amplitude: least-squares scale of the template in the transient; motion (phase dispersion
  across the voxel) loses signal, so only low values count;
* misfit: residual energy after that scaling; lineshape damage raises it.

Each score is turned into a z-score about its median over the condition, with a scale that is
the larger of the robust spread (1.4826 * MAD) and the spread that noise alone gives that score
(noise-aware floor). The noise variance per spectral bin comes from the signal-free end of the
FIDs (:func:`noise_variance_per_bin`). Without the floor, the MAD of a handful of noisy values
(8 transients at high b) is often tiny by chance and ordinary noise looks like an outlier; with
it, a transient must differ from the others by more than ``threshold`` noise SDs as well as by
more than ``threshold`` robust SDs. Noise-expected SDs, for ``K`` window bins of noise variance
``s2`` (complex, E|n|^2 = s2) and template energy ``E``: amplitude ``sqrt(s2 / (2 E))``, misfit
``s2 * sqrt(K)`` (a sum of K exponential terms of mean s2).

A transient is rejected when its amplitude z < -``threshold`` or its misfit z > ``threshold``
(3 by default). A condition is flagged when more than ``flag_fraction`` (30 %, as the dMRS
consensus advises) is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.spectra import fid_to_spectrum, ppm_axis, ppm_window_mask

OUTLIER_WINDOW_PPM = (0.6, 4.2)
MAD_TO_SD = 1.4826
NOISE_TAIL_FRACTION = 0.25
"""Last quarter of each FID: signal has decayed there (T2* << acquisition time)."""


@dataclass
class OutlierResult:
    rejected: np.ndarray  # (n_transients,) bool
    amplitude: np.ndarray  # relative to the median template
    amplitude_z: np.ndarray
    misfit_z: np.ndarray
    fraction_rejected: float
    flagged: bool  # more than flag_fraction rejected


def robust_z(values: np.ndarray, min_scale: float = 0.0) -> np.ndarray:
    """(x - median) / max(1.4826 MAD, ``min_scale``); zeros when that scale vanishes."""
    values = np.asarray(values, dtype=float)
    centre = np.median(values)
    scale = max(MAD_TO_SD * np.median(np.abs(values - centre)), min_scale)
    if not scale > 0:
        return np.zeros_like(values)
    return (values - centre) / scale


def noise_variance_per_bin(fids: np.ndarray, tail_fraction: float = NOISE_TAIL_FRACTION
                           ) -> float:
    """E|n|^2 of one spectral bin (unnormalised FFT) from the FIDs' signal-free tails.

    Time-domain variance of the last ``tail_fraction`` points (each transient's tail mean
    removed, so a DC offset does not count), median over transients (robust to a corrupted
    one), times ``n_points`` (Parseval: white noise of variance v gives n_points * v per bin).
    """
    fids = np.atleast_2d(fids)
    n_points = fids.shape[-1]
    n_tail = max(int(n_points * tail_fraction), 8)
    tail = fids[:, -n_tail:]
    variance = np.mean(np.abs(tail - tail.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    return float(np.median(variance) * n_points)


def median_template(spectra: np.ndarray) -> np.ndarray:
    """Bin-wise median of complex spectra (n_transients, n_bins), its real and imaginary
    parts taken in the frame where the mean spectrum's sum is real and positive.

    A median of real and imaginary parts depends on the phase the data happen to carry; in
    that frame it turns with the data, so a phase common to all transients (a receiver or
    export phase) changes no score: before 2026-12-07 the in-vivo 7 T set turned by 73 deg
    had one more transient rejected, and realigned conditions moved amplitudes by up to 8 %."""
    total = np.sum(spectra)
    turn = total / abs(total) if abs(total) > 0 else 1.0
    turned = spectra / turn
    return (np.median(turned.real, axis=0) + 1j * np.median(turned.imag, axis=0)) * turn


def detect_outliers(corrected: np.ndarray, dwell_s: float, cf_mhz: float,
                    ppm_range=OUTLIER_WINDOW_PPM, threshold: float = 3.0,
                    flag_fraction: float = 0.3) -> OutlierResult:
    """Reject motion-corrupted transients among aligned FIDs (n_transients, n_points)."""
    corrected = np.asarray(corrected)
    if corrected.ndim != 2:
        raise ValueError(f"detect_outliers expects (n_transients, n_points), got {corrected.shape}")
    n = corrected.shape[0]
    mask = ppm_window_mask(ppm_axis(corrected.shape[-1], dwell_s, cf_mhz), *ppm_range)
    spectra = fid_to_spectrum(corrected)[:, mask]
    template = median_template(spectra)
    energy = np.sum(np.abs(template) ** 2)
    if n < 4 or not energy > 0:
        return OutlierResult(np.zeros(n, bool), np.ones(n), np.zeros(n), np.zeros(n), 0.0, False)
    amplitude = np.real(spectra @ template.conj()) / energy
    misfit = np.sum(np.abs(spectra - amplitude[:, None] * template) ** 2, axis=1)
    noise_var = noise_variance_per_bin(corrected)
    amplitude_z = robust_z(amplitude, np.sqrt(noise_var / (2.0 * energy)))
    misfit_z = robust_z(misfit, noise_var * np.sqrt(mask.sum()))
    rejected = (amplitude_z < -threshold) | (misfit_z > threshold)
    fraction = float(rejected.mean())
    return OutlierResult(rejected, amplitude, amplitude_z, misfit_z, fraction,
                         fraction > flag_fraction)
