"""Reference a spectrum on its strong singlets before the full fit (issue 13).

The full fit searches the frequency shift only within ``max_shift_ppm`` of its start; real and
independent spectra can be offset by more (and carry large zero-order phases), and a start
outside the basin of the right minimum collapses tCr or tNAA to zero. This step estimates the
global frequency offset over a wide range (``search_ppm``) from the magnitude spectrum, which
does not depend on phase, by cross-correlating it with a template of the singlets NAA 2.008,
Cr 3.027 and Cho 3.185 ppm; then the zero-order phase from the complex spectrum at the found
singlet positions. The fit then searches its shift around this estimate.
"""

from __future__ import annotations

import numpy as np

from .metabolites import SINGLET_PPM
from .spectra import (fid_to_spectrum, frequency_axis_hz, magnitude_minus_running_median,
                       ppm_to_hz)

SINGLETS_PPM = tuple(SINGLET_PPM.values())
SINGLET_WEIGHTS = (1.0, 0.8, 0.6)
"""Relative template heights of the NAA, Cr and Cho singlets (typical brain proportions)."""
TEMPLATE_FWHM_PPM = 0.04
REFERENCE_SEARCH_PPM = 0.3


def singlet_templates(freq_hz: np.ndarray, cf_mhz: float, ref_ppm: float,
                      shifts_hz: np.ndarray, fwhm_hz: float) -> np.ndarray:
    """Magnitude of Lorentzian singlets (``SINGLETS_PPM``) moved by each of ``shifts_hz``:
    one row per shift (all shifts at once, for the correlation search)."""
    half = 0.5 * fwhm_hz
    shifts = np.asarray(shifts_hz, dtype=float)[:, None]
    out = np.zeros((shifts.shape[0], freq_hz.size))
    for ppm, weight in zip(SINGLETS_PPM, SINGLET_WEIGHTS):
        centre = float(ppm_to_hz(ppm, cf_mhz, ref_ppm)) + shifts
        out += weight / np.sqrt(1.0 + ((freq_hz[None, :] - centre) / half) ** 2)
    return out


def _smooth_magnitude(spectrum: np.ndarray, width_bins: int) -> np.ndarray:
    """Magnitude spectrum with a broad (``4 x width_bins``) running median removed (clipped
    at 0), so smooth baselines, lipid and water tails do not drive the correlation."""
    k = max(3, 4 * width_bins) | 1
    return np.clip(magnitude_minus_running_median(np.abs(spectrum), k), 0.0, None)


def singlet_reference(fid: np.ndarray, dwell_s: float, cf_mhz: float, ref_ppm: float,
                      search_ppm: float = REFERENCE_SEARCH_PPM) -> tuple[float, float]:
    """``(shift_hz, phase0_rad)`` of the spectrum relative to the singlets' nominal positions.

    ``shift_hz`` follows the fit model's convention (a basis FID times
    ``exp(2i pi shift_hz t)`` lands on the data); ``phase0_rad`` is the angle of the
    weighted complex spectrum at the three shifted singlet positions (an absorption line is
    real and positive at its centre). The search covers +-``search_ppm``.
    """
    fid = np.asarray(fid, dtype=complex).reshape(-1)
    n = fid.size
    freq = frequency_axis_hz(n, dwell_s)
    bin_hz = 1.0 / (n * dwell_s)
    fwhm_hz = TEMPLATE_FWHM_PPM * cf_mhz
    spectrum = fid_to_spectrum(fid)
    mag = _smooth_magnitude(spectrum, max(1, int(round(fwhm_hz / bin_hz))))
    centres = np.array([ppm_to_hz(p, cf_mhz, ref_ppm) for p in SINGLETS_PPM], dtype=float)
    span = search_ppm * cf_mhz + 3 * fwhm_hz
    region = (freq > centres.min() - span) & (freq < centres.max() + span)
    shifts = np.arange(-search_ppm * cf_mhz, search_ppm * cf_mhz + bin_hz / 2, bin_hz)
    scores = singlet_templates(freq[region], cf_mhz, ref_ppm, shifts, fwhm_hz) @ mag[region]
    best = int(np.argmax(scores))
    shift_hz = float(shifts[best])
    if 0 < best < shifts.size - 1:
        s0, s1, s2 = scores[best - 1:best + 2]
        denom = s0 - 2 * s1 + s2
        if denom < 0:
            shift_hz += float(0.5 * (s0 - s2) / denom) * bin_hz
    values = []
    for centre, weight in zip(centres + shift_hz, SINGLET_WEIGHTS):
        near = np.abs(freq - centre) <= max(bin_hz, 0.25 * fwhm_hz)
        values.append(weight * np.sum(spectrum[near]))
    phase0_rad = float(np.angle(np.sum(values)))
    return shift_hz, phase0_rad
