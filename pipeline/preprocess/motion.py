"""Motion/amplitude check from the macromolecule signal near 0.9 ppm.

Macromolecules barely diffuse (ADC ~0.01 um^2/ms), so their signal should stay nearly constant
across diffusion conditions; a drop larger than noise explains points to motion-induced signal
loss (or bad averaging) in that condition. The MM integral is the magnitude of the complex sum
of the spectrum over the window (insensitive to a residual phase) after subtracting a constant
baseline, the mean of two flanking bands: without it the wings of the (diffusing) metabolite
peaks, whose dispersion tails reach 0.9 ppm, make the MM seem to diffuse (on pregame-like data
the raw integral falls to 60 % at b = 30 ms/um^2 where the MM itself keeps 79 %). Its noise
comes from a signal-free band of the same spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.spectra import fid_to_spectrum, ppm_axis, ppm_window_mask

MM_WINDOW_PPM = (0.8, 1.0)
FLANK_PPM = 0.08
"""Width of each baseline band beside the MM window."""
NOISE_WINDOW_PPM = (-1.5, -0.2)
FALLBACK_NOISE_WINDOW_PPM = (8.5, 9.5)


@dataclass
class MotionCheck:
    mm_integral: np.ndarray  # (n_conditions,)
    mm_integral_sd: np.ndarray  # noise SD of each integral
    ratio: np.ndarray  # integral / reference integral
    z: np.ndarray  # (reference - integral) / combined SD
    flagged: np.ndarray  # bool (n_conditions,)


MIN_WINDOW_POINTS = 2
"""Spectral points the MM window, and its two flanks together, need at the least."""
MIN_NOISE_POINTS = 16
"""Spectral points a signal-free band needs for the noise SD of the MM check."""


def _noise_mask(ppm: np.ndarray) -> np.ndarray | None:
    """The first signal-free band holding :data:`MIN_NOISE_POINTS`, None when none does."""
    for window in (NOISE_WINDOW_PPM, FALLBACK_NOISE_WINDOW_PPM):
        mask = ppm_window_mask(ppm, *window)
        if mask.sum() >= MIN_NOISE_POINTS:
            return mask
    return None


def _window_masks(ppm: np.ndarray, ppm_range) -> tuple[np.ndarray, np.ndarray]:
    """(MM window, its baseline flanks) as boolean masks over ``ppm``."""
    low, high = min(ppm_range), max(ppm_range)
    window = ppm_window_mask(ppm, low, high)
    flanks = (ppm_window_mask(ppm, low - FLANK_PPM, low) | ppm_window_mask(
        ppm, high, high + FLANK_PPM)) & ~window
    return window, flanks


def motion_grid_problem(n_points: int, dwell_s: float, cf_mhz: float,
                        ppm_range=MM_WINDOW_PPM) -> str | None:
    """Why the MM check cannot run on a spectral grid of ``n_points`` points at ``dwell_s``
    (s) and ``cf_mhz`` (MHz): too few points in the window, its flanks or a signal-free band,
    with what the grid would need; None when it can. Pure, so input checks can ask before
    any processing what :func:`mm_amplitude_check` would refuse after the fit."""
    ppm = ppm_axis(n_points, dwell_s, cf_mhz)
    window, flanks = _window_masks(ppm, ppm_range)
    noise = max(int(ppm_window_mask(ppm, *band).sum())
                for band in (NOISE_WINDOW_PPM, FALLBACK_NOISE_WINDOW_PPM))
    if min(window.sum(), flanks.sum()) >= MIN_WINDOW_POINTS and noise >= MIN_NOISE_POINTS:
        return None
    low, high = min(ppm_range), max(ppm_range)
    width_hz = 1.0 / dwell_s
    step_ppm = width_hz / n_points / cf_mhz
    bands = [high - low, NOISE_WINDOW_PPM[1] - NOISE_WINDOW_PPM[0]]
    needed_ppm = min(bands[0] / MIN_WINDOW_POINTS, FLANK_PPM, bands[1] / MIN_NOISE_POINTS)
    covered = (ppm.min() <= low - FLANK_PPM and ppm.max() >= high + FLANK_PPM
               and (ppm.min() <= NOISE_WINDOW_PPM[0] or ppm.max() >= FALLBACK_NOISE_WINDOW_PPM[1]))
    needs = (f"at most {needed_ppm:.3g} ppm per point (at least "
             f"{int(np.ceil(width_hz / (needed_ppm * cf_mhz)))} acquired points at this "
             "spectral width)" if covered else
             f"a spectral width covering {low - FLANK_PPM:g} to {high + FLANK_PPM:g} ppm and "
             "one of those bands")
    return (f"the MM motion check ([preprocessing] motion_ppm_range {low:g}-{high:g} ppm) "
            f"cannot run on this spectral grid: {n_points} points at a dwell time of "
            f"{dwell_s * 1e3:.4g} ms (spectral width {width_hz:.5g} Hz, {ppm.min():.2f} to "
            f"{ppm.max():.2f} ppm at {cf_mhz:.5g} MHz; {step_ppm:.3g} ppm per point) put "
            f"{int(window.sum())} points in the window and {int(flanks.sum())} in its "
            f"{FLANK_PPM:g} ppm flanks (at least {MIN_WINDOW_POINTS} each are needed) and at "
            f"most {noise} in a signal-free band (-1.5 to -0.2 or 8.5 to 9.5 ppm; "
            f"{MIN_NOISE_POINTS} needed). The check needs {needs}; otherwise set "
            "[preprocessing] motion_check = false or widen motion_ppm_range")


def mm_amplitude_check(averages: np.ndarray, dwell_s: float, cf_mhz: float,
                       b_values_s_mm2=None, reference_index: int = 0, n_sigma: float = 3.0,
                       mm_adc_um2_ms: float = 0.008, allowed_loss: float = 0.1,
                       ppm_range=MM_WINDOW_PPM) -> MotionCheck:
    """Flag conditions whose MM integral drops more than noise and tolerance explain.

    ``averages``: condition-averaged FIDs (n_conditions, n_points). The expected MM ratio is
    ``exp(-(b - b_ref) * mm_adc_um2_ms)`` (b in ms/um^2; MM diffuse slowly); a condition is
    flagged when its integral falls below ``(1 - allowed_loss)`` of that expectation by more
    than ``n_sigma`` noise SDs. ``allowed_loss`` covers wings of nearby diffusing peaks.
    """
    averages = np.atleast_2d(averages)
    problem = motion_grid_problem(averages.shape[-1], dwell_s, cf_mhz, ppm_range)
    if problem:
        raise ValueError(problem)
    ppm = ppm_axis(averages.shape[-1], dwell_s, cf_mhz)
    spectra = fid_to_spectrum(averages)
    window, flanks = _window_masks(ppm, ppm_range)
    noise_sd = np.std(spectra[:, _noise_mask(ppm)].real, axis=1)
    baseline = spectra[:, flanks].mean(axis=1)
    n_window = window.sum()
    integral = np.abs(spectra[:, window].sum(axis=1) - n_window * baseline)
    integral_sd = noise_sd * np.sqrt(n_window + n_window ** 2 / flanks.sum())
    reference = integral[reference_index]
    b = np.zeros(len(averages)) if b_values_s_mm2 is None else np.asarray(b_values_s_mm2, float)
    expected = np.exp(-(b - b[reference_index]) / 1000.0 * mm_adc_um2_ms)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = integral / reference
        z = ((1 - allowed_loss) * expected * reference - integral) / np.hypot(
            integral_sd, integral_sd[reference_index])
    flagged = z > n_sigma
    flagged[reference_index] = False
    return MotionCheck(integral, integral_sd, ratio, z, flagged)
