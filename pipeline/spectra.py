"""Time/frequency conventions shared by every stage.

The project follows the sign convention of NIfTI-MRS files as written by spec2nii
(checked on the shared Philips and Siemens data):

* ``spectrum = fftshift(fft(fid))`` along the last axis;
* frequency bin ``k`` sits at ``freq_hz[k] = (k - n//2) / (n * dwell_s)``;
* chemical shift *decreases* with frequency: ``ppm = ref_ppm - freq_hz / cf_mhz``.

So a resonance at ``delta`` ppm is ``exp(-2j*pi*(delta - ref_ppm)*cf_mhz*t)`` in the FID,
and the first FID sample is taken at ``t = 0``.
"""

from __future__ import annotations

import numpy as np

H1_REFERENCE_PPM = 4.65
"""Chemical shift of the receiver centre frequency for 1H (water at body temperature)."""


def time_axis_s(n_points: int, dwell_s: float) -> np.ndarray:
    """Sample times of an FID in seconds, starting at 0."""
    return np.arange(n_points) * dwell_s


EXP_SERIES_BLOCK = 64
"""Block length of :func:`exp_series` (about the square root of a typical FID length)."""


def exp_series(rate: np.ndarray, dwell_s: float, n_points: int) -> np.ndarray:
    """``exp(rate_m * t_n)`` on the FID time axis, shape ``(len(rate), n_points)``, for complex
    rates (``2i pi f - damping``, 1/s).

    A complex ``exp`` costs tens of ns per point, and it dominated the spectral fit. With
    ``n = L a + b`` the series is the outer product of ``exp(rate L a dwell)`` and
    ``exp(rate b dwell)``: about ``n/L + L`` exponentials per row and one product per point
    (one extra rounding, ~1e-15 relative).
    """
    rate = np.asarray(rate, dtype=complex).reshape(-1)
    block = EXP_SERIES_BLOCK
    n_blocks = -(-n_points // block)
    coarse = np.exp(rate[:, None] * (np.arange(n_blocks) * (block * dwell_s)))
    fine = np.exp(rate[:, None] * (np.arange(block) * dwell_s))
    series = (coarse[:, :, None] * fine[:, None, :]).reshape(rate.size, n_blocks * block)
    return series if series.shape[1] == n_points else np.ascontiguousarray(series[:, :n_points])


def frequency_axis_hz(n_points: int, dwell_s: float) -> np.ndarray:
    """Frequency of each bin of ``fid_to_spectrum`` output, ascending, in Hz."""
    return (np.arange(n_points) - n_points // 2) / (n_points * dwell_s)


def ppm_axis(n_points: int, dwell_s: float, cf_mhz: float,
             ref_ppm: float = H1_REFERENCE_PPM) -> np.ndarray:
    """Chemical shift of each spectral bin (descending with bin index)."""
    return ref_ppm - frequency_axis_hz(n_points, dwell_s) / cf_mhz


def ppm_to_hz(ppm: np.ndarray | float, cf_mhz: float,
              ref_ppm: float = H1_REFERENCE_PPM) -> np.ndarray | float:
    """FID frequency (Hz) of a resonance at ``ppm`` under the project convention."""
    return -(np.asarray(ppm) - ref_ppm) * cf_mhz


MIN_ZERO_FILL_POINTS = 16
"""Trailing points that must be exactly 0 in every FID (all conditions, transients and coils)
before the data count as zero-filled: acquired samples carry noise, so such a run is padding
(an export's zero-filling, a scanner's block padding), not signal."""


def acquired_points(fids: np.ndarray) -> int:
    """Points up to the last non-zero sample of any FID (last axis): the acquired length of
    zero-filled data; all points when fewer than ``MIN_ZERO_FILL_POINTS`` trail as zeros or
    when every sample is 0 (empty data are reported by the checks that read them)."""
    fids = np.asarray(fids)
    n_points = fids.shape[-1]
    if n_points < MIN_ZERO_FILL_POINTS or np.any(fids[..., -MIN_ZERO_FILL_POINTS:] != 0):
        return n_points
    nonzero = np.flatnonzero(np.any(fids.reshape(-1, n_points) != 0, axis=0))
    return int(nonzero[-1]) + 1 if nonzero.size else n_points


MIN_ACQUIRED_POINTS = 64
"""Fewer non-zero leading points than this is not zero-filled MRS but a truncated or corrupt
file (a spectrum needs at least this many to resolve its lines)."""


def water_points_kept(data_points: int, data_acquired: int, water_points: int,
                      water_acquired: int) -> int:
    """Points a water reference keeps when the data are cut to ``data_acquired``: the same
    points when it came on the data's grid or holds only zeros beyond them (both cut), else
    its own (another grid, for the checks that compare the two)."""
    if water_points == data_points or water_acquired <= data_acquired < water_points:
        return min(water_points, data_acquired)
    return water_points


def fid_to_spectrum(fid: np.ndarray) -> np.ndarray:
    """Spectrum of FIDs along the last axis (unnormalised FFT, zero frequency centred)."""
    return np.fft.fftshift(np.fft.fft(fid, axis=-1), axes=-1)


def spectrum_to_fid(spectrum: np.ndarray) -> np.ndarray:
    """Inverse of :func:`fid_to_spectrum`."""
    return np.fft.ifft(np.fft.ifftshift(spectrum, axes=-1), axis=-1)


def ppm_window_mask(ppm: np.ndarray, low_ppm: float, high_ppm: float) -> np.ndarray:
    """Boolean mask of bins with ``low_ppm <= ppm <= high_ppm``."""
    return (ppm >= min(low_ppm, high_ppm)) & (ppm <= max(low_ppm, high_ppm))


def apply_frequency_phase(fid: np.ndarray, dwell_s: float, freq_hz, phase_deg) -> np.ndarray:
    """Return ``fid * exp(1j*(2*pi*f*t + phi))`` (broadcast over leading axes).

    With the drift convention of ``_transients.tsv`` (input = corrected * exp(+i(2*pi*f*t + phi))),
    correcting a transient means applying ``-f`` and ``-phi``.
    """
    t = time_axis_s(fid.shape[-1], dwell_s)
    f = np.asarray(freq_hz, dtype=float)[..., None]
    phi = np.deg2rad(np.asarray(phase_deg, dtype=float))[..., None]
    return fid * np.exp(1j * (2 * np.pi * f * t + phi))


def magnitude_minus_running_median(magnitude: np.ndarray, width_bins: int) -> np.ndarray:
    """``magnitude`` less its running median over ``width_bins`` (edges repeated): baselines,
    MM and lipid humps broader than the window go, narrow peaks stay."""
    from scipy.ndimage import median_filter

    return magnitude - median_filter(magnitude, size=int(width_bins), mode="nearest")

