"""Quality-control metrics of single-voxel (d)MRS: SNR, linewidths, drift, rejections, fit quality.

Definitions follow the MRS terminology consensus (Kreis et al., NMR Biomed 2021;34:e4347) and
LCModel practice:

* SNR = height of the tNAA peak (real part of the zero-order phased spectrum, above a local
  linear baseline) / standard deviation of the real spectrum in a signal-free region (after
  removing a linear trend there);
* linewidth = full width at half maximum (Hz) of a peak in the phased real spectrum,
  measured on a zero-filled spectrum with linear interpolation at the half-height crossings;
* fit quality = SD of the fit residual in the fitted ppm window / SD of the noise (1 = the fit
  explains everything but noise).

Everything takes FIDs (project sign convention, :mod:`pipeline.spectra`) and plain numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv

from ..metabolites import FIT_WINDOW_PPM, PEAK_WINDOWS_PPM
from ..spectra import fid_to_spectrum, ppm_axis, ppm_window_mask

NOISE_EDGE_FRACTION = 0.05
"""Fraction of bins at each end of the spectrum used as noise when no window is given."""

MIN_NOISE_BINS = 16

FILTER_EDGE_FRACTION = 0.2
"""Outer fraction of the band (each side) where a receiver's anti-aliasing filter can lower
the noise: on the Siemens 7 T data (12 kHz, not decimated) the SD of the outermost 5 % is 2.6 x
below that of the flat part, which made every residual/noise 2.6 x too high (issue 13)."""
LOCAL_NOISE_BLOCK_BINS = 16
MIN_LOCAL_NOISE_BLOCKS = 4
NOISE_STRUCTURE_RATIO = 1.25
"""One-trend noise SD above this multiple of the local (block) estimate = signal in the noise
region (:func:`noise_sd`)."""
MAX_WHITE_LAG1 = 0.25
"""Lag-1 autocorrelation of the block residuals below which the noise counts as uncorrelated:
white noise gives -0.125 (16-bin blocks, linear trend removed), the validation spectra at most
0.05 (0.22 when pooled over every block, signal in a few of them included), 2 Hz line
broadening at 2 Hz per bin 0.27, a 4 x zero-filled FID 0.49."""
SIGNAL_FREE_PPM = (-0.5, 10.0)
"""1H brain spectra have no signal outside this range; noise is taken there when it lies
inside the flat part of the band."""


@dataclass
class Peak:
    """A peak found in a ppm window: position, height above baseline, phase used, FWHM, and
    whether its largest point lies on the window's edge (then no peak maximum is inside)."""

    ppm: float
    height: float
    phase_rad: float
    fwhm_hz: float
    on_edge: bool = False


def _window(ppm: np.ndarray, window_ppm, what: str) -> np.ndarray:
    mask = ppm_window_mask(ppm, *window_ppm)
    if mask.sum() < 3:
        raise ValueError(f"{what} window {list(window_ppm)} ppm holds fewer than 3 spectral bins "
                         f"(spectrum covers {ppm.min():.2f} to {ppm.max():.2f} ppm)")
    return mask


def noise_mask(ppm: np.ndarray, noise_ppm=None) -> np.ndarray:
    """Bins of a signal-free region: ``noise_ppm`` if given and wide enough, else both ends.

    Without a usable window: the signal-free bins (outside ``SIGNAL_FREE_PPM``) of the flat
    part of the band (``FILTER_EDGE_FRACTION`` left out at each end) when there are at least as
    many as the ends would give (wide, oversampled spectra); else the ends (outermost
    ``NOISE_EDGE_FRACTION`` of the bins on each side, e.g. narrow 7 T spectra).
    """
    if noise_ppm is not None and len(noise_ppm) == 2:
        mask = ppm_window_mask(ppm, *noise_ppm)
        if mask.sum() >= MIN_NOISE_BINS:
            return mask
    n_edge = max(MIN_NOISE_BINS // 2, int(round(NOISE_EDGE_FRACTION * ppm.size)))
    n_filter = int(round(FILTER_EDGE_FRACTION * ppm.size))
    flat = np.zeros(ppm.size, dtype=bool)
    flat[n_filter:ppm.size - n_filter] = True
    flat &= (ppm < SIGNAL_FREE_PPM[0]) | (ppm > SIGNAL_FREE_PPM[1])
    if flat.sum() >= max(MIN_NOISE_BINS, 2 * n_edge):
        return flat
    mask = np.zeros(ppm.size, dtype=bool)
    mask[:n_edge] = True
    mask[-n_edge:] = True
    return mask


def _detrended_sd(values: np.ndarray, mask: np.ndarray) -> float:
    """SD of ``values[mask]`` after removing a linear trend (fitted over the bin index)."""
    idx = np.flatnonzero(mask).astype(float)
    y = values[mask]
    coef = np.polyfit(idx, y, 1)
    return float(np.std(y - np.polyval(coef, idx), ddof=2))


def _contiguous_runs(mask: np.ndarray) -> list:
    """Index arrays of the contiguous runs of True in ``mask``."""
    idx = np.flatnonzero(mask)
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []


@functools.lru_cache(maxsize=None)
def _block_constants(block_bins: int) -> tuple[np.ndarray, int, float, float]:
    """Per block size, computed once (``noise_sd`` runs in every fit and QC step): the
    projector off a linear trend, the degrees of freedom left, the median of chi-square(dof) /
    dof, and the block variance / median block variance above which white noise goes in 1
    block of 1000 (such blocks hold signal and are left out of the autocorrelation)."""
    x = np.arange(block_bins, dtype=float)
    design = np.column_stack([np.ones(block_bins), x - x.mean()])
    projector = np.eye(block_bins) - design @ np.linalg.pinv(design)
    dof = block_bins - 2
    median = chi2_quantile(0.5, dof)
    return projector, dof, median / dof, chi2_quantile(0.999, dof) / median


def chi2_quantile(p: float, dof: float) -> float:
    """Quantile ``p`` of chi-square with ``dof`` degrees of freedom (``scipy.stats.chi2.ppf``'s
    own formula, without importing scipy.stats: a third of a second at every start)."""
    return float(2.0 * gammaincinv(dof / 2.0, p))


def local_noise_sd(values: np.ndarray, mask: np.ndarray,
                   block_bins: int = LOCAL_NOISE_BLOCK_BINS) -> tuple[float, float]:
    """Noise SD from short blocks of contiguous ``mask`` bins, each with its own linear trend
    removed, and the lag-1 autocorrelation of what is left.

    The SD is the median block variance divided by the median of chi-square(dof) / dof, so it
    is unbiased for white noise. A smooth signal tail (a residual-water or baseline dispersion
    tail reaching the band ends) is nearly linear over a block and drops out. Correlated noise
    (apodised or truncated, zero-filled data) shows as a positive autocorrelation; the SD is
    biased low there. (NaN, NaN) with fewer than ``MIN_LOCAL_NOISE_BLOCKS`` blocks."""
    projector, dof, chi2_median_per_dof, white_limit = _block_constants(block_bins)
    blocks = [values[run[start:start + block_bins]] for run in _contiguous_runs(mask)
              for start in range(0, run.size - block_bins + 1, block_bins)]
    if len(blocks) < MIN_LOCAL_NOISE_BLOCKS:
        return float("nan"), float("nan")
    left = np.asarray(blocks) @ projector
    variances = np.sum(left ** 2, axis=1) / dof
    median = np.median(variances)
    # the autocorrelation of the blocks whose variance white noise could give: a strong peak
    # in a few blocks is smooth and, pooled with the rest, read as correlated noise (5-20 Hz
    # wide, 200 x the noise: the one-trend SD, 12-22 x the noise, was kept)
    noise_like = left[variances <= white_limit * median]
    lag1 = float(np.sum(noise_like[:, 1:] * noise_like[:, :-1]) / np.sum(noise_like ** 2))
    return float(np.sqrt(median / chi2_median_per_dof)), lag1


def noise_sd(fid: np.ndarray, dwell_s: float, cf_mhz: float, noise_ppm=None) -> float:
    """SD of the real spectrum in a signal-free region.

    The SD after removing one linear trend over the region (the consensus definition), unless
    it exceeds the local estimate (:func:`local_noise_sd`) by more than
    ``NOISE_STRUCTURE_RATIO`` while the noise is uncorrelated (lag-1 autocorrelation below
    ``MAX_WHITE_LAG1``): then the region holds signal and the local estimate is returned. On
    the 200 validation spectra of ``bench_vs_lcmodel.py`` the one-trend SD was a median 1.3 x
    and at most 8 x the true noise (residual-water and baseline tails reaching the band ends).
    Correlated noise keeps the one-trend SD, since the local one is biased low there (0.87 x
    for 2 Hz line broadening at 2 Hz per bin, 0.65 x for 5 Hz)."""
    fid = np.asarray(fid)
    ppm = ppm_axis(fid.shape[-1], dwell_s, cf_mhz)
    real = fid_to_spectrum(fid).real
    mask = noise_mask(ppm, noise_ppm)
    one_trend = _detrended_sd(real, mask)
    local, lag1 = local_noise_sd(real, mask)
    signal_in_region = one_trend > NOISE_STRUCTURE_RATIO * local and lag1 < MAX_WHITE_LAG1
    return local if signal_in_region else one_trend


def _fwhm_hz(real: np.ndarray, freq_hz: np.ndarray, i_peak: int, half: float,
             baseline: np.ndarray) -> float:
    """Width between the half-height crossings on either side of ``i_peak`` (linear interp.)."""
    above = real - baseline - half

    def crossing(step: int) -> float:
        i = i_peak
        while 0 <= i + step < real.size and above[i + step] > 0:
            i += step
        j = i + step
        if not 0 <= j < real.size:
            return np.nan
        frac = above[i] / (above[i] - above[j])
        return freq_hz[i] + frac * (freq_hz[j] - freq_hz[i])

    return float(abs(crossing(+1) - crossing(-1)))


def _valley(real: np.ndarray, ppm: np.ndarray, edge: int, margin_ppm: float) -> int:
    """Index of the lowest point between bin ``edge`` and ``margin_ppm`` beyond it (the sign
    of ``margin_ppm`` picks the side in ppm; ppm decreases with the bin index)."""
    target = ppm[edge] - margin_ppm
    span = np.flatnonzero((ppm >= min(ppm[edge], target)) & (ppm <= max(ppm[edge], target)))
    return int(span[np.argmin(real[span])]) if span.size else edge


def find_peak(fid: np.ndarray, dwell_s: float, cf_mhz: float, window_ppm,
              zero_fill: int = 8, baseline_margin_ppm: float = 0.0) -> Peak:
    """The largest peak inside ``window_ppm``: zero-order phased, height above a linear
    baseline, and its FWHM in Hz.

    The baseline joins the window edges or, with ``baseline_margin_ppm`` > 0, the lowest
    points (valleys) within that margin outside each edge: at the edges of a narrow window
    the tails of a broad line are still high, which makes the line look narrower than it is.
    """
    fid = np.asarray(fid, dtype=complex)
    n = fid.shape[-1] * max(1, int(zero_fill))
    padded = np.zeros(n, dtype=complex)
    padded[:fid.shape[-1]] = fid
    spec = fid_to_spectrum(padded)
    ppm = ppm_axis(n, dwell_s, cf_mhz)
    freq_hz = (np.arange(n) - n // 2) / (n * dwell_s)
    mask = _window(ppm, window_ppm, "peak")
    idx = np.flatnonzero(mask)
    i_peak = idx[np.argmax(np.abs(spec[idx]))]
    phase_rad = float(np.angle(spec[i_peak]))
    real = (spec * np.exp(-1j * phase_rad)).real
    lo, hi = idx[0], idx[-1]
    if baseline_margin_ppm > 0:
        lo, hi = _valley(real, ppm, lo, -baseline_margin_ppm), \
            _valley(real, ppm, hi, baseline_margin_ppm)
    slope = (real[hi] - real[lo]) / (hi - lo)
    baseline = real[lo] + slope * (np.arange(n) - lo)
    height = float(real[i_peak] - baseline[i_peak])
    fwhm = _fwhm_hz(real, freq_hz, i_peak, height / 2.0, baseline)
    return Peak(float(ppm[i_peak]), height, phase_rad, fwhm, bool(i_peak in (idx[0], idx[-1])))


NO_PEAK_INSIDE = "no peak inside"
"""How :func:`snr` begins its error when a window holds no peak maximum."""


def snr(fid: np.ndarray, dwell_s: float, cf_mhz: float, peak_ppm=(1.9, 2.1),
        noise_ppm=None) -> float:
    """Peak height (default tNAA, 1.9-2.1 ppm) / SD of the noise, both in the real spectrum.

    The peak height is taken without zero-filling, so that it is on the same scale as the noise.
    """
    peak = find_peak(fid, dwell_s, cf_mhz, peak_ppm, zero_fill=1)
    if peak.on_edge:
        raise ValueError(f"{NO_PEAK_INSIDE} {peak_ppm[0]:g}-{peak_ppm[1]:g} ppm: the largest "
                         "point is on the window's edge")
    sd = noise_sd(np.asarray(fid) * np.exp(-1j * peak.phase_rad), dwell_s, cf_mhz, noise_ppm)
    return float(peak.height / sd) if sd > 0 else float("inf")


def fitted_component_snr(component_spectrum: np.ndarray, fid: np.ndarray, dwell_s: float,
                         cf_mhz: float, noise_ppm=None) -> float:
    """Largest magnitude of one fitted component's spectrum (e.g. the fitted Ins, without
    baseline; non-finite points ignored) over the data's noise SD (real spectrum, phased as
    the component's peak): FSL-MRS's per-metabolite SNR without its matched-filter
    apodisation.

    For multiplets (Ins, Glx) that no data window isolates: the data's height over a line
    joining a window's edges is 0 whenever the largest point falls on an edge.
    """
    spectrum = np.asarray(component_spectrum, dtype=complex)
    spectrum = spectrum[np.isfinite(spectrum)]
    if spectrum.size == 0:
        raise ValueError("no fitted component spectrum for the SNR")
    i_peak = int(np.argmax(np.abs(spectrum)))
    phase_rad = float(np.angle(spectrum[i_peak]))
    sd = noise_sd(np.asarray(fid) * np.exp(-1j * phase_rad), dwell_s, cf_mhz, noise_ppm)
    return float(np.abs(spectrum[i_peak]) / sd) if sd > 0 else float("inf")


LINEWIDTH_BASELINE_MARGIN_PPM = 0.25


def linewidth_hz(fid: np.ndarray, dwell_s: float, cf_mhz: float, window_ppm,
                 zero_fill: int = 8,
                 baseline_margin_ppm: float = LINEWIDTH_BASELINE_MARGIN_PPM) -> float:
    """FWHM (Hz) of the largest peak in ``window_ppm``, above a baseline taken
    ``baseline_margin_ppm`` beyond the window (see :func:`find_peak`)."""
    return find_peak(fid, dwell_s, cf_mhz, window_ppm, zero_fill, baseline_margin_ppm).fwhm_hz


REJECTION_KEYS = ("n_rejected", "rejected_fraction")
"""Not measured (None) when no condition has two acquired transients (e.g. a scanner-averaged
series): nothing could be rejected, and a 0 would read as a pass."""
DRIFT_SPREAD_KEYS = ("freq_shift_sd_hz", "freq_shift_range_hz", "freq_drift_hz_per_transient",
                     "phase_shift_sd_deg", "phase_shift_range_deg")
"""Not measured (None) for a single transient. With one transient per condition the shifts
are still measured: those of the condition means registered to the lowest b."""


def transient_counts(rejected, acquired=None) -> dict:
    """Counts of one set of transients (a condition, or the run): ``n_rejected`` (acquired
    transients left out of the average as outliers) and ``rejected_fraction`` (of the acquired
    ones; None with fewer than two: nothing could be rejected), ``n_not_acquired`` and
    ``not_acquired_fraction`` (exactly-zero transients, of all). ``rejected`` is
    ``_transients.tsv``'s column (left out of the average, for either reason), ``acquired``
    its ``acquired`` column (all acquired when None: a table written before 2026-12-07).

    Apart because they mean different things: an outlier is motion or instability, a
    transient not acquired a scan stopped early; counted as rejected, half a condition
    missing failed the rejection check of data with no outlier at all."""
    rej = np.asarray(rejected, dtype=bool).ravel()
    acq = np.ones(rej.size, bool) if acquired is None else np.asarray(acquired, bool).ravel()
    if rej.size == 0 or acq.size != rej.size:
        raise ValueError(f"transient counts need as many rejected ({rej.size}) as acquired "
                         f"({acq.size}) flags, at least one")
    outliers, n_acquired = rej & acq, int(acq.sum())
    return {"n_rejected": int(outliers.sum()),
            "rejected_fraction": float(outliers.sum() / n_acquired) if n_acquired > 1 else None,
            "n_not_acquired": int(rej.size - n_acquired),
            "not_acquired_fraction": float(1.0 - n_acquired / rej.size)}


def drift_statistics(freq_shift_hz, phase_shift_deg, rejected=None, condition=None,
                     acquired=None) -> dict:
    """Summary of the per-transient drift (in stored order: condition by condition), of
    rejections and of transients not acquired (:func:`transient_counts`).

    The frequency and phase figures describe the kept transients (all acquired ones when every
    one was rejected): a rejected transient is an outlier (motion), counted by the rejection
    figures, and it does not enter the average, so it is no drift of the result (before
    2026-12-07 one rejected outlier at +9.6 Hz set a 13.4 Hz range where the kept transients
    spanned 4.7 Hz). A transient not acquired (``acquired`` False: exactly zero) has no
    drift and never enters them. ``freq_drift_hz_per_transient`` is the slope of a straight
    line through the kept frequency shifts against their stored index; ranges and SDs
    describe scatter. With ``condition`` (each transient's condition), the values in
    ``REJECTION_KEYS`` are None when no condition holds two acquired transients; those in
    ``DRIFT_SPREAD_KEYS`` are None for a single transient.
    """
    f_all = np.asarray(freq_shift_hz, dtype=float)
    if f_all.size == 0:
        raise ValueError("drift statistics need at least one transient")
    rej = (np.zeros(f_all.size, dtype=bool) if rejected is None
           else np.asarray(rejected, dtype=bool))
    acq = (np.ones(f_all.size, dtype=bool) if acquired is None
           else np.asarray(acquired, dtype=bool))
    kept = next(m for m in (acq & ~rej, acq, np.ones(f_all.size, bool)) if m.any())
    f, p = f_all[kept], np.asarray(phase_shift_deg, dtype=float)[kept]
    slope = float(np.polyfit(np.flatnonzero(kept), f, 1)[0]) if f.size > 1 else 0.0
    counts = transient_counts(rej, acq)
    out = {
        "n_transients": int(f_all.size),
        "n_rejected": counts["n_rejected"],
        "rejected_fraction": counts["rejected_fraction"],
        "n_not_acquired": counts["n_not_acquired"],
        "not_acquired_fraction": counts["not_acquired_fraction"],
        "freq_shift_mean_hz": float(f.mean()),
        "freq_shift_sd_hz": float(f.std(ddof=1)) if f.size > 1 else 0.0,
        "freq_shift_range_hz": float(f.max() - f.min()),
        "freq_drift_hz_per_transient": slope,
        "phase_shift_sd_deg": float(p.std(ddof=1)) if p.size > 1 else 0.0,
        "phase_shift_range_deg": float(p.max() - p.min()),
    }
    if condition is not None and max(counts_per_condition(condition, acq).values()) < 2:
        out.update(dict.fromkeys(REJECTION_KEYS))
    if f.size < 2:
        out.update(dict.fromkeys(DRIFT_SPREAD_KEYS))
    return out


def counts_per_condition(condition, mask) -> dict:
    """Number of ``mask`` transients in each condition (keys as ``str(condition)``)."""
    cond = np.asarray(condition)
    mask = np.asarray(mask, dtype=bool)
    return {str(c): int(mask[cond == c].sum()) for c in np.unique(cond)}


def rejection_counts(condition, rejected, acquired=None) -> dict:
    """Number of rejected outliers per condition (keys as ``str(condition)``): transients
    left out of the average that were acquired (all are when ``acquired`` is None)."""
    rej = np.asarray(rejected, dtype=bool)
    return counts_per_condition(condition, rej if acquired is None
                                else rej & np.asarray(acquired, dtype=bool))


def fit_quality(data_fid: np.ndarray, fit_fid: np.ndarray, dwell_s: float, cf_mhz: float,
                fit_ppm=FIT_WINDOW_PPM, noise_ppm=None) -> dict:
    """Residual SD in the fitted window, the noise SD, and their ratio (``fit_quality``).

    Both SDs are of the real spectrum; the residual keeps its own phase (the model is fitted
    on the complex data).
    """
    data_fid = np.asarray(data_fid, dtype=complex)
    residual = data_fid - np.asarray(fit_fid, dtype=complex)
    ppm = ppm_axis(data_fid.shape[-1], dwell_s, cf_mhz)
    mask = _window(ppm, fit_ppm, "fit")
    res_spec = fid_to_spectrum(residual).real
    residual_sd = float(np.std(res_spec[mask]))
    sd = noise_sd(data_fid, dwell_s, cf_mhz, noise_ppm)
    return {"residual_sd": residual_sd, "noise_sd": sd,
            "fit_quality": residual_sd / sd if sd > 0 else float("inf")}


SNR_PEAKS_PPM = {k: PEAK_WINDOWS_PPM[k] for k in ("tNAA", "tCr", "tCho")}
"""Windows of the singlets whose SNR is measured on the data (peak height / noise SD)."""
SNR_FITTED_COMPONENTS = ("Ins", "Glx")
"""Multiplets whose SNR is that of their fitted component (:func:`fitted_component_snr`)."""

RESIDUAL_WATER_PPM = (4.4, 4.9)
RESIDUAL_WATER_REFERENCE_PPM = (1.9, 2.1)
"""Window of the tNAA peak whose height scales the residual water (ppm)."""


def residual_water_ratio(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                         water_ppm=RESIDUAL_WATER_PPM,
                         reference_ppm=RESIDUAL_WATER_REFERENCE_PPM) -> float:
    """Largest magnitude in the water window over the tNAA peak height (both without
    zero-filling): > 1 means residual water dominates the metabolite spectrum."""
    window = _window(ppm_axis(np.shape(fid)[-1], dwell_s, cf_mhz), water_ppm, "water")
    profile = residual_water_profile(fid, dwell_s, cf_mhz, reference_ppm)
    return float(np.max(profile[1][window])) if profile is not None else float("inf")


def residual_water_profile(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                           reference_ppm=RESIDUAL_WATER_REFERENCE_PPM):
    """(ppm axis, magnitude spectrum / tNAA peak height), both without zero-filling: the curve
    whose largest value in :data:`RESIDUAL_WATER_PPM` is :func:`residual_water_ratio`, for the
    report's figure of the region the metric is measured in. None when tNAA has no height."""
    fid = np.asarray(fid, dtype=complex)
    reference = find_peak(fid, dwell_s, cf_mhz, reference_ppm, zero_fill=1).height
    if not reference > 0:
        return None
    ppm = ppm_axis(fid.shape[-1], dwell_s, cf_mhz)
    return ppm, np.abs(fid_to_spectrum(fid)) / reference


def apply_shifts(fids: np.ndarray, dwell_s: float, freq_hz, phase_deg) -> np.ndarray:
    """Undo per-transient drift: ``corrected = input · exp(-i(2π f t + φ))`` (the
    ``_transients.tsv`` convention); ``fids`` (n_transients, n_points)."""
    fids = np.asarray(fids, dtype=complex)
    t_s = np.arange(fids.shape[-1]) * dwell_s
    f = np.asarray(freq_hz, float)[:, None]
    p = np.deg2rad(np.asarray(phase_deg, float))[:, None]
    return fids * np.exp(-1j * (2 * np.pi * f * t_s + p))


def display_combination(fids: np.ndarray) -> np.ndarray:
    """Coils summed with weights conj(s_k)/Σ|s_k|² from the mean first FID point of each coil
    (phase-aligned, signal-weighted); for figures and QC of the raw transients.
    ``fids`` (..., n_coils, n_points) -> (..., n_points)."""
    fids = np.asarray(fids, dtype=complex)
    first = fids[..., 0].reshape(-1, fids.shape[-2]).mean(axis=0)
    norm = float(np.sum(np.abs(first) ** 2))
    weights = np.conj(first) / norm if norm > 0 else np.full(first.shape, 1.0 / first.size)
    return np.einsum("...cn,c->...n", fids, weights)


def similarity_index(fids: np.ndarray, dwell_s: float, cf_mhz: float, ppm_range=(1.8, 4.2),
                     rejected=None) -> float:
    """Median over the kept transients of the correlation Re⟨x, m⟩ / (‖x‖‖m‖) between each
    transient's complex spectrum x and the mean m of the other kept ones, within
    ``ppm_range``: 1 for identical transients; frequency or phase scatter lowers it."""
    fids = np.asarray(fids, dtype=complex)
    keep = np.ones(fids.shape[0], bool) if rejected is None else ~np.asarray(rejected, bool)
    if keep.sum() < 2:
        raise ValueError("similarity index needs at least two kept transients")
    ppm = ppm_axis(fids.shape[-1], dwell_s, cf_mhz)
    spectra = fid_to_spectrum(fids[keep])[:, _window(ppm, ppm_range, "similarity")]
    total = spectra.sum(axis=0)
    others = (total[None, :] - spectra) / (spectra.shape[0] - 1)
    num = np.real(np.sum(spectra * np.conj(others), axis=1))
    den = np.linalg.norm(spectra, axis=1) * np.linalg.norm(others, axis=1)
    return float(np.median(num / np.where(den > 0, den, np.inf)))
