"""Outlier transients (motion during the diffusion gradients) within one condition.

Criterion (documented default): after alignment, each transient is compared with a robust
template, the bin-wise complex median of the condition's aligned transients, over a metabolite
window. Two scores, as robust z-scores (median and 1.4826 * MAD over the condition):

* amplitude: least-squares scale of the template in the transient; motion (phase dispersion
  across the voxel) loses signal, so only low values count (z < -threshold);
* misfit: residual energy after that scaling; lineshape damage raises it (z > threshold).

A transient is rejected when either score passes ``threshold`` (3 by default). A condition is
flagged when more than ``flag_fraction`` (30 %, as the dMRS consensus advises) is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.spectra import fid_to_spectrum, ppm_axis, ppm_window_mask

OUTLIER_WINDOW_PPM = (0.6, 4.2)
MAD_TO_SD = 1.4826


@dataclass
class OutlierResult:
    rejected: np.ndarray  # (n_transients,) bool
    amplitude: np.ndarray  # relative to the median template
    amplitude_z: np.ndarray
    misfit_z: np.ndarray
    fraction_rejected: float
    flagged: bool  # more than flag_fraction rejected


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD); zeros when the MAD vanishes."""
    values = np.asarray(values, dtype=float)
    centre = np.median(values)
    scale = MAD_TO_SD * np.median(np.abs(values - centre))
    if not scale > 0:
        return np.zeros_like(values)
    return (values - centre) / scale


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
    template = np.median(spectra.real, axis=0) + 1j * np.median(spectra.imag, axis=0)
    energy = np.sum(np.abs(template) ** 2)
    if n < 4 or not energy > 0:
        return OutlierResult(np.zeros(n, bool), np.ones(n), np.zeros(n), np.zeros(n), 0.0, False)
    amplitude = np.real(spectra @ template.conj()) / energy
    misfit = np.sum(np.abs(spectra - amplitude[:, None] * template) ** 2, axis=1)
    amplitude_z = robust_z(amplitude)
    misfit_z = robust_z(misfit)
    rejected = (amplitude_z < -threshold) | (misfit_z > threshold)
    fraction = float(rejected.mean())
    return OutlierResult(rejected, amplitude, amplitude_z, misfit_z, fraction,
                         fraction > flag_fraction)
