"""Wide search for large frequency drift: per-transient search centres for the alignment.

The spectral registration of :mod:`pipeline.preprocess.align` searches +-``max_shift_hz``
(12 Hz) about a centre shared by a condition's transients. A ramp, step or random walk of the
B0 field beyond that within one condition left transients at the search edge or on a wrong
local minimum, and the average lost up to 70 % of its NAA height (in-vivo 7 T set with
injected drift, 2026-12-07). Here each transient's shift is first found over a wide range
(+-``WIDE_SHIFT_PPM``) by cross-correlating peak profiles - magnitude spectra less their
running median, so no phase is needed and baselines, MM and lipid humps do not count - on a
window residual water cannot reach at any trial shift. The best candidates are then judged with
the registration's own fit (energy the template explains), and a transient beyond reach of the
common centre gets its own search centre only when that fit is clearly better, the condition's
signal is well above noise, and its own fit differs from the common one.

The coarse shifts only choose search centres: the alignment's fit still decides every shift,
on its usual +-``max_shift_hz`` grid about that centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.preprocess.average import acquired
from pipeline.preprocess.water import remove_residual_water
from pipeline.spectra import (H1_REFERENCE_PPM, apply_frequency_phase, fid_to_spectrum,
                              magnitude_minus_running_median, ppm_axis, ppm_window_mask)

WIDE_SHIFT_PPM = 0.4
"""Half-width of the coarse search (ppm) about the reference: 119 Hz at 7 T, 51 Hz at 3 T.
Drift beyond it is not followed (it is flagged, see ``align.unresolved_drift_flags``); it also
sets how far below water the wide search's window must end (:func:`water_free_ranges`)."""

PROFILE_BROADENING_HZ = 4.0
"""Exponential line broadening (Hz) of the profiles: raises the SNR of one transient's peaks."""

PROFILE_MEDIAN_PPM = 0.2
"""Running-median width (ppm) subtracted from the magnitude: wider than a singlet at 7 T
(0.04 ppm), narrower than MM humps and baseline."""

WATER_CLEARANCE_PPM = 0.25
"""Distance (ppm) kept between the wide search's window and the nearest place residual water
(4.65 ppm, the largest line) can land at a wrong trial shift."""

REACH_FRACTION = 0.8
"""A transient farther than this fraction of ``max_shift_hz`` from its condition's common
search centre is beyond reach (it would sit at, or past, the search edge)."""

EDGE_HZ = 1.0
"""A shift within this distance (two coarse grid steps) of the search edge sits at the edge."""

WIDE_MARGIN = 10.0
EDGE_MARGIN = 5.0
"""How much more energy (in noise variances of one spectral bin) the template must explain in a
transient about its wide-search shift than about the common centre for that shift to be
taken: ``EDGE_MARGIN`` when the common search ended at its edge on the same side, else
``WIDE_MARGIN``. Drift beyond reach gained a median 55-80 (in-vivo 7 T, injected ramps and
steps of 30-200 Hz); noise alone a few, and on the untouched in-vivo set transients at the
edge of a condition's first pass (its drift 12 Hz from the previous condition's) gained less
than 5. The variance is the median misfit per window bin of the condition's transients, noise
plus any mismatch: an overestimate, erring towards the common centre."""

MIN_WIDE_SNR = 30.0
"""Least median energy the template explains in one transient of the condition, in those noise
variances (a matched-filter amplitude SNR of 5.5), for any wide-search shift to be taken.
In-vivo 7 T: 55-230 by condition. With 3 or 5 times its noise added (4-24) the wide search took
noise maxima, moving transients by up to 130 Hz, where the common search already misplaced
17 % and 38 % of transients by more than 10 Hz; with this floor the results are those of the
common search."""

WATER_LINES_PPM = (4.2, 5.1)
"""Where unsuppressed or residual water's lines lie (ppm), for :func:`water_tail_fraction`."""

MAX_WATER_TAIL = 0.5
"""Largest ratio of the water lines' signal inside the wide search's window to the metabolites'
there (:func:`water_tail_fraction`, a condition's mean) at which the wide search runs. With
unsuppressed water (metabolite cycling, weak suppression) its tails decide the registration:
the in-vivo 7 T set with its water reference added, drifting with it, put transients of its two
weakest conditions 24-47 Hz off (ratios 1.3-2.3), where the search of +-12 Hz alone stays
within 3 Hz; without the wide search, drift beyond that is not followed, as before it
(2026-12-07). Water-suppressed data: in-vivo 7 T 0.07-0.27, Siemens 7 T 0.04, published
synthetic set 0.007-0.07."""


def window_mask(ppm: np.ndarray, ppm_ranges) -> np.ndarray:
    """Union of ppm windows; ``ppm_ranges`` is one (low, high) pair or a sequence of pairs."""
    ranges = [ppm_ranges] if np.ndim(ppm_ranges) == 1 else list(ppm_ranges)
    return np.any([ppm_window_mask(ppm, *r) for r in ranges], axis=0)


def peak_profiles(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                  window: np.ndarray) -> np.ndarray:
    """Peak profiles (n, n_points) of FIDs (n, n_points): broadened magnitude spectra less
    their running median, negative values set to 0, zero outside the bool ``window`` mask
    (spectrum order of :func:`~pipeline.spectra.fid_to_spectrum`)."""
    fids = np.atleast_2d(fids)
    n_points = fids.shape[-1]
    t = np.arange(n_points) * dwell_s
    magnitude = np.abs(fid_to_spectrum(fids * np.exp(-np.pi * PROFILE_BROADENING_HZ * t)))
    bin_ppm = 1.0 / (n_points * dwell_s * cf_mhz)
    width = max(3, int(round(PROFILE_MEDIAN_PPM / bin_ppm)) | 1)
    peaks = np.stack([magnitude_minus_running_median(m, width) for m in magnitude])
    return np.where(window, np.clip(peaks, 0.0, None), 0.0)


def profile_shifts(profiles: np.ndarray, reference: np.ndarray, bin_hz: float,
                   max_shift_hz: float, n_candidates: int = 1) -> np.ndarray:
    """Shifts (Hz; n, ``n_candidates``) of each profile (n, n_bins) against ``reference``
    (n_bins,) at the highest local maxima of their cross-correlation within
    +-``max_shift_hz``, best first, each refined by a parabolic vertex (a profile with fewer
    maxima repeats its best).

    Bins run with increasing frequency, so a drift ``f`` (input = corrected * exp(+2i pi f t))
    moves a transient's profile by ``f / bin_hz`` bins up.
    """
    profiles = np.atleast_2d(profiles)
    n_bins = profiles.shape[-1]
    max_lag = min(int(np.floor(max_shift_hz / bin_hz)), n_bins - 2)
    size = 2 * n_bins
    spectrum = np.fft.fft(profiles, size, axis=-1) * np.conj(np.fft.fft(reference, size))
    correlation = np.fft.ifft(spectrum, axis=-1).real  # lag L at index L mod size
    lags = np.arange(-max_lag - 1, max_lag + 2)
    values = correlation[:, lags % size]
    inner = values[:, 1:-1]
    peak = (inner >= values[:, :-2]) & (inner > values[:, 2:])
    ranked = np.argsort(np.where(peak, -inner, np.inf), axis=1, kind="stable")[:, :n_candidates]
    n_peaks = np.maximum(peak.sum(axis=1, keepdims=True), 1)
    ranked = np.where(np.arange(ranked.shape[1]) < n_peaks, ranked, ranked[:, :1]) + 1
    rows = np.arange(profiles.shape[0])[:, None]
    minus, centre, plus = values[rows, ranked - 1], values[rows, ranked], values[rows, ranked + 1]
    curvature = minus - 2 * centre + plus
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (minus - plus) / curvature, 0.0)
    return (lags[ranked] + np.clip(offset, -0.5, 0.5)) * bin_hz


def _shifted_mean(profiles: np.ndarray, shift_hz: np.ndarray, bin_hz: float,
                  weights: np.ndarray) -> np.ndarray:
    """Weighted mean of the profiles moved back by their (nearest whole-bin) shifts."""
    lags = np.rint(np.asarray(shift_hz) / bin_hz).astype(int)
    moved = np.stack([np.roll(p, -lag) for p, lag in zip(profiles, lags)])
    return np.average(moved, axis=0, weights=weights)


def coarse_shifts(fids: np.ndarray, dwell_s: float, cf_mhz: float, window: np.ndarray,
                  template: np.ndarray | None, weights: np.ndarray,
                  wide_shift_ppm: float = WIDE_SHIFT_PPM, n_candidates: int = 3,
                  n_rounds: int = 2) -> np.ndarray:
    """Candidate drifts (Hz; n, ``n_candidates``, best first) of each transient (n, n_points)
    over +-``wide_shift_ppm``: the highest maxima of its profile's correlation with a reference.

    The reference is the profile of ``template`` (the lower-b condition's aligned mean) when
    given. With no template it is first one transient with weight > 0 (a plain mean of
    drifting transients is smeared over the drift): the one of median shift against the
    transient of largest profile energy, then the one of median shift against that one (the
    range then reaches as far either side of the condition's median drift); then ``n_rounds``
    times the mean of the profiles moved back by their best shifts, in that transient's frame.
    At high b one transient's best maximum can be noise (in-vivo 7 T, b = 3956 s/mm^2: 7 of 24
    more than 40 Hz off), which is why the caller judges the candidates by the registration.
    """
    n_points = fids.shape[-1]
    bin_hz = 1.0 / (n_points * dwell_s)
    max_hz = wide_shift_ppm * cf_mhz
    profiles = peak_profiles(fids, dwell_s, cf_mhz, window)
    if template is None:
        energy = np.where(weights > 0, np.sum(profiles ** 2, axis=-1), -np.inf)
        reference = profiles[int(np.argmax(energy))]
        for _ in range(2):  # twice: from a first pick at one end, the second is central
            best = profile_shifts(profiles, reference, bin_hz, max_hz)[:, 0]
            distance = np.where(weights > 0, np.abs(best - np.median(best[weights > 0])),
                                np.inf)
            reference = profiles[int(np.argmin(distance))]
        for _ in range(n_rounds):
            best = profile_shifts(profiles, reference, bin_hz, max_hz)[:, 0]
            reference = _shifted_mean(profiles, best, bin_hz, weights)
    else:
        reference = peak_profiles(template, dwell_s, cf_mhz, window)[0]
    return profile_shifts(profiles, reference, bin_hz, max_hz, n_candidates)


def coarse_aligned_mean(fids: np.ndarray, dwell_s: float, shift_hz: np.ndarray,
                        weights: np.ndarray) -> np.ndarray:
    """Weighted mean of FIDs (n, n_points) moved back by their coarse shifts, each first put in
    phase with the transient of largest weight-times-energy (a plain mean of drifting transients
    is smeared over the drift; of misphased ones, loses signal)."""
    moved = apply_frequency_phase(fids, dwell_s, -np.asarray(shift_hz), 0.0)
    reference = moved[int(np.argmax(weights * np.sum(np.abs(moved) ** 2, axis=-1)))]
    phase = np.angle(moved @ np.conj(reference))
    return np.average(moved * np.exp(-1j * phase)[:, None], axis=0, weights=weights)


def water_free_ranges(ppm_range) -> list:
    """The parts (``(low, high)`` ppm, at least 1 ppm wide) of the registration window that
    residual water cannot reach at any trial and true shifts within +-``WIDE_SHIFT_PPM``:
    below ``4.65 - 2 * WIDE_SHIFT_PPM - WATER_CLEARANCE_PPM`` = 3.6 ppm. Over the whole window
    the wide search locked transients 70 Hz from the truth onto their own residual water, moved
    into the window. Empty for the water window (alignment on unsuppressed water)."""
    limit = H1_REFERENCE_PPM - 2 * WIDE_SHIFT_PPM - WATER_CLEARANCE_PPM
    ranges = [ppm_range] if np.ndim(ppm_range) == 1 else list(ppm_range)
    return [(float(low), min(float(high), limit)) for low, high in ranges
            if min(float(high), limit) - float(low) >= 1.0]


Register = Callable[[np.ndarray, np.ndarray, list, object], tuple]
"""``register(fids, template, ppm_ranges, centre_hz)`` -> (freq_hz, phase_deg, amplitude,
misfit, explained): the alignment's registration (+-max_shift_hz about ``centre_hz``)."""


@dataclass
class FarShifts:
    """The wide search's verdict on one condition's transients."""

    template: np.ndarray  # FID the shifts refer to
    centre_hz: float  # common search centre in the template's frame
    shift_hz: np.ndarray  # (n,) registration shift about the best coarse candidate (or centre)
    taken: np.ndarray  # (n,) bool: beyond reach of the centre, and that shift clearly better

    def centres(self):
        """Search centres: the own shift where taken, else the common centre."""
        return np.where(self.taken, self.shift_hz, self.centre_hz)


def water_tail_fraction(mean_fid: np.ndarray, dwell_s: float, cf_mhz: float, ranges) -> float:
    """Norm of the water lines' spectrum (HLSVD components at 4.2-5.1 ppm) over ``ranges``
    against that of the rest: how much unsuppressed water weighs in the registration there.
    ``mean_fid``: the condition's transients moved back by their coarse shifts (a plain mean
    of drifting transients smears the metabolite lines, not the water's smooth tail)."""
    cleaned, _ = remove_residual_water(mean_fid, dwell_s, cf_mhz, window_ppm=WATER_LINES_PPM,
                                       follow_singlets=False)
    window = window_mask(ppm_axis(mean_fid.size, dwell_s, cf_mhz), ranges)
    signal = np.linalg.norm(fid_to_spectrum(cleaned)[window])
    water = np.linalg.norm(fid_to_spectrum(mean_fid - cleaned)[window])
    return float(water / signal) if signal > 0 else float("inf")


def far_shifts(fids: np.ndarray, dwell_s: float, cf_mhz: float, ppm_range,
               max_shift_hz: float, kept: np.ndarray, template: np.ndarray | None,
               centre_hz: float, register: Register, water_guard: bool = True
               ) -> FarShifts | None:
    """Wide search of one condition's transients (n, n_points); None when no transient can be
    beyond reach, or, with ``water_guard``, when unsuppressed water weighs in the window
    (:data:`MAX_WATER_TAIL`; the drift flags judge without it, as a warning is safe where a
    move is not) (no acquired transient, a water window, or every coarse shift within
    ``REACH_FRACTION * max_shift_hz`` of the centre).

    ``kept``: transients that build the references (acquired, not rejected); all acquired
    transients are judged. With no ``template``, the template becomes the mean of the kept
    transients moved back by their coarse shifts, in the frame of their median coarse shift
    (as a plain mean's frame is the mean drift), and ``centre_hz`` becomes 0.
    """
    ranges = water_free_ranges(ppm_range)
    if not ranges or not kept.any():
        return None
    window = window_mask(ppm_axis(fids.shape[-1], dwell_s, cf_mhz), ranges)
    candidates = coarse_shifts(fids, dwell_s, cf_mhz, window, template, kept.astype(float))
    if template is None:
        centre_hz = float(np.median(candidates[kept, 0]))
        candidates = candidates - centre_hz
        template = coarse_aligned_mean(fids[kept], dwell_s, candidates[kept, 0],
                                       np.ones(np.count_nonzero(kept)))
        centre_hz = 0.0
    beyond = acquired(fids) & (np.abs(candidates[:, 0] - centre_hz)
                               > REACH_FRACTION * max_shift_hz)
    if not beyond.any() or water_guard and water_tail_fraction(
            coarse_aligned_mean(fids[kept], dwell_s, candidates[kept, 0],
                                np.ones(np.count_nonzero(kept))),
            dwell_s, cf_mhz, ranges) > MAX_WATER_TAIL:
        return None
    common = register(fids, template, ranges, centre_hz)
    own = [register(fids[beyond], template, ranges, c) for c in candidates[beyond].T]
    explained = np.stack([fit[4] for fit in own], axis=1)
    rows, best = np.arange(explained.shape[0]), np.argmax(explained, axis=1)
    shift_hz = np.where(beyond, centre_hz, common[0]).astype(float)
    shift_hz[beyond] = np.stack([fit[0] for fit in own], axis=1)[rows, best]
    misfit, signal = common[3].copy(), common[4].copy()
    misfit[beyond] = np.minimum(misfit[beyond],
                                np.stack([fit[3] for fit in own], axis=1)[rows, best])
    signal[beyond] = np.maximum(signal[beyond], explained[rows, best])
    noise = np.median(misfit[kept]) / np.count_nonzero(window)
    offset_common, offset_own = common[0][beyond] - centre_hz, shift_hz[beyond] - centre_hz
    past_edge = ((np.abs(offset_common) >= max_shift_hz - EDGE_HZ)
                 & (np.sign(offset_own) == np.sign(offset_common))
                 & (np.abs(offset_own) > max_shift_hz))
    gain = explained[rows, best] - common[4][beyond]
    taken = np.zeros(fids.shape[0], dtype=bool)
    if np.median(signal[kept]) >= MIN_WIDE_SNR * noise:
        taken[beyond] = ((np.abs(offset_own - offset_common) > 2 * EDGE_HZ)
                         & (gain > np.where(past_edge, EDGE_MARGIN, WIDE_MARGIN) * noise))
    return FarShifts(template, centre_hz, shift_hz, taken)
