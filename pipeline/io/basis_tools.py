"""Operations on a :class:`~pipeline.basis.Basis` once it is in memory.

* frequency-sign (conjugation) detection from the data, so a basis from any source ends up in
  the project convention of ``pipeline/spectra.py`` (a resonance at delta ppm has frequency
  ``(ref_ppm - delta) * cf_mhz`` Hz);
* chemical-shift referencing from known singlets (NAA 2.008, Cr 3.027, PCr 3.029, GPC 3.212,
  PCh 3.208, scyllo-inositol 3.34 ppm; Govindaraju et al., NMR Biomed 2000;13:129);
* removal of a reference peak (TMS/DSS at 0 ppm, or any given position) by fitting and
  subtracting a Voigt line;
* resampling onto a dataset's dwell time, number of points, centre frequency and reference.

All functions are pure: they take arrays or a Basis and return new ones.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import least_squares

from ..basis import Basis
from ..spectra import (H1_REFERENCE_PPM, fid_to_spectrum, frequency_axis_hz, ppm_axis,
                       spectrum_to_fid, time_axis_s)

KNOWN_SINGLETS_PPM = {
    "naa": 2.008, "cr": 3.027, "cre": 3.027, "pcr": 3.029, "gpc": 3.212,
    "pch": 3.208, "pcho": 3.208, "sins": 3.340, "scyllo": 3.340,
}
"""Dominant singlet of metabolites whose basis spectrum has one (Govindaraju 2000, Table 2)."""

METABOLITE_BAND_PPM = (0.5, 4.2)
"""Where (almost) all 1H metabolite and macromolecule signal lies in brain spectra."""

SINGLET_SEARCH_HALF_WIDTH_PPM = 0.1
REFERENCE_SHIFT_TOLERANCE_PPM = 0.005
"""Referencing offsets smaller than this are left alone (below the precision that matters)."""

FIELD_MISMATCH_TOLERANCE = 0.01
"""Largest relative centre-frequency change :func:`resample_basis` accepts (J does not scale)."""


def _band_energy(spectrum: np.ndarray, ppm: np.ndarray, low_ppm: float,
                 high_ppm: float) -> float:
    mask = (ppm >= low_ppm) & (ppm <= high_ppm)
    return float(np.sum(np.abs(spectrum[mask]) ** 2))


def conjugation_score(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                      ref_ppm: float = H1_REFERENCE_PPM) -> float:
    """log10 of (energy in 0.5-4.2 ppm) / (energy in its mirror image about ``ref_ppm``).

    Positive: the FID is already in the project convention; negative: it must be conjugated
    (conjugation mirrors the spectrum about the reference frequency). Near 0: undecided.
    """
    spec = fid_to_spectrum(np.asarray(fid, dtype=complex))
    ppm = ppm_axis(len(fid), dwell_s, cf_mhz, ref_ppm)
    low, high = METABOLITE_BAND_PPM
    inside = _band_energy(spec, ppm, low, high)
    mirror = _band_energy(spec, ppm, 2 * ref_ppm - high, 2 * ref_ppm - low)
    tiny = 1e-300
    return float(np.log10((inside + tiny) / (mirror + tiny)))


def orient_fids(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                ref_ppm: float = H1_REFERENCE_PPM, min_log_ratio: float = 0.5):
    """Conjugate, per entry, the FIDs whose signal lies on the wrong side of the reference.

    An entry whose score is undecided (|log10 ratio| < ``min_log_ratio``) follows the majority
    of the decided entries. Returns ``(oriented_fids, conjugated: list[bool], scores)``.
    """
    fids = np.atleast_2d(np.asarray(fids, dtype=complex))
    scores = [conjugation_score(f, dwell_s, cf_mhz, ref_ppm) for f in fids]
    decided = [s for s in scores if abs(s) >= min_log_ratio]
    majority_conj = bool(decided) and sum(s < 0 for s in decided) > len(decided) / 2
    conjugated = [s < 0 if abs(s) >= min_log_ratio else majority_conj for s in scores]
    out = np.array([np.conj(f) if c else f for f, c in zip(fids, conjugated)])
    return out, conjugated, scores


def peak_ppm(fid: np.ndarray, dwell_s: float, cf_mhz: float, centre_ppm: float,
             half_width_ppm: float = SINGLET_SEARCH_HALF_WIDTH_PPM,
             ref_ppm: float = H1_REFERENCE_PPM, broadening_hz: float = 1.0,
             zero_fill: int = 8) -> float:
    """Position (ppm) of the highest magnitude peak within ``centre_ppm +/- half_width_ppm``.

    The FID is lightly broadened (exponential, ``broadening_hz``) and zero-filled so that the
    parabolic interpolation of the top three points gives sub-bin precision.
    """
    fid = np.asarray(fid, dtype=complex)
    n = len(fid)
    t = time_axis_s(n, dwell_s)
    padded = np.zeros(n * zero_fill, dtype=complex)
    padded[:n] = fid * np.exp(-np.pi * broadening_hz * t)
    mag = np.abs(fid_to_spectrum(padded))
    ppm = ppm_axis(len(padded), dwell_s, cf_mhz, ref_ppm)
    idx = np.flatnonzero(np.abs(ppm - centre_ppm) <= half_width_ppm)
    if idx.size < 3:
        raise ValueError(f"window {centre_ppm} +/- {half_width_ppm} ppm is outside the spectrum")
    k = idx[np.argmax(mag[idx])]
    if 0 < k < len(mag) - 1:
        a, b, c = mag[k - 1], mag[k], mag[k + 1]
        denom = a - 2 * b + c
        frac = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        frac = 0.0
    step_ppm = ppm[1] - ppm[0]
    return float(ppm[k] + frac * step_ppm)


def singlet_offsets_ppm(basis: Basis) -> dict:
    """Measured minus expected position of the known singlet of each recognised entry."""
    offsets = {}
    for name, fid in zip(basis.names, basis.fids):
        expected = KNOWN_SINGLETS_PPM.get(name.strip().lower())
        if expected is None:
            continue
        measured = peak_ppm(fid, basis.dwell_s, basis.cf_mhz, expected, ref_ppm=basis.ref_ppm)
        offsets[name] = measured - expected
    return offsets


def shift_fids_ppm(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                   shift_ppm: float) -> np.ndarray:
    """Move every resonance by ``shift_ppm`` (positive: to higher ppm)."""
    t = time_axis_s(np.shape(fids)[-1], dwell_s)
    return np.asarray(fids) * np.exp(-2j * np.pi * shift_ppm * cf_mhz * t)


def reference_basis(basis: Basis, tolerance_ppm: float = REFERENCE_SHIFT_TOLERANCE_PPM) -> Basis:
    """Shift the whole basis so its known singlets sit at their published ppm.

    The offset is the median over the recognised singlets. Without any recognised singlet the
    basis is returned as stored. The decision goes into ``provenance['referencing']``.
    """
    offsets = singlet_offsets_ppm(basis)
    prov = dict(basis.provenance)
    if not offsets:
        prov["referencing"] = {"decision": "as stored (no known singlet among the names)"}
        return Basis(basis.names, basis.fids, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                     basis.nucleus, prov)
    median = float(np.median(list(offsets.values())))
    fids = basis.fids
    if abs(median) > tolerance_ppm:
        fids = shift_fids_ppm(fids, basis.dwell_s, basis.cf_mhz, -median)
        decision = f"shifted by {-median:+.4f} ppm"
    else:
        decision = f"as stored (offset {median:+.4f} ppm within {tolerance_ppm} ppm)"
    prov["referencing"] = {"decision": decision, "median_offset_ppm": median,
                           "singlet_offsets_ppm": {k: float(v) for k, v in offsets.items()}}
    return Basis(basis.names, fids, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                 basis.nucleus, prov)


# --- reference peak removal -------------------------------------------------------------

def _voigt_fid(t: np.ndarray, freq_hz: float, lorentz_rate_s: float,
               gauss_rate_s2: float, n_support: int | None = None) -> np.ndarray:
    fid = np.exp(2j * np.pi * freq_hz * t - lorentz_rate_s * t - gauss_rate_s2 * t ** 2)
    if n_support is not None:
        fid[n_support:] = 0
    return fid


def support_length(fid: np.ndarray, relative_level: float = 1e-4) -> int:
    """Number of leading samples after which the FID stays below ``relative_level`` of its
    maximum: the acquired length of a zero-filled FID (LCModel's makebasis zero-fills 2x)."""
    mag = np.abs(np.asarray(fid))
    if mag.max() == 0:
        return 0
    return int(np.flatnonzero(mag > relative_level * mag.max())[-1]) + 1


def has_reference_peak(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                       peak_at_ppm: float = 0.0, ref_ppm: float = H1_REFERENCE_PPM,
                       half_width_ppm: float = 0.1, min_relative_height: float = 0.002) -> bool:
    """True when a distinct peak sits at ``peak_at_ppm`` (a local maximum inside the window,
    at least ``min_relative_height`` of the largest peak and 1.5 times the window edges)."""
    t = time_axis_s(len(fid), dwell_s)
    mag = np.abs(fid_to_spectrum(np.asarray(fid) * np.exp(-np.pi * 1.0 * t)))
    ppm = ppm_axis(len(fid), dwell_s, cf_mhz, ref_ppm)
    idx = np.flatnonzero(np.abs(ppm - peak_at_ppm) <= half_width_ppm)
    if idx.size < 3:
        return False
    window = mag[idx]
    k = int(np.argmax(window))
    interior = 0 < k < len(window) - 1
    edges = max(window[0], window[-1])
    return bool(interior and window[k] >= min_relative_height * mag.max()
                and window[k] >= 1.5 * edges)


def fit_reference_peak(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                       peak_at_ppm: float = 0.0, ref_ppm: float = H1_REFERENCE_PPM,
                       half_width_ppm: float = 0.2) -> dict:
    """Fit one Voigt line plus a linear baseline to the spectrum in ``peak_at_ppm +/- half_width``.

    The line is sampled on the FID's own grid and cut where the FID's support ends (so the
    truncation ripples of a zero-filled FID are modelled exactly); it is
    compared with the data in the frequency window; the complex amplitude and the baseline (the
    tails of other signals) are solved linearly.
    Returns ``{"amplitude", "freq_hz", "lorentz_rate_s", "gauss_rate_s2", "model_fid"}``.
    """
    fid = np.asarray(fid, dtype=complex)
    n = len(fid)
    t = time_axis_s(n, dwell_s)
    ppm = ppm_axis(n, dwell_s, cf_mhz, ref_ppm)
    mask = np.abs(ppm - peak_at_ppm) <= half_width_ppm
    data = fid_to_spectrum(fid)[mask]
    f0 = (ref_ppm - peak_ppm(fid, dwell_s, cf_mhz, peak_at_ppm, 0.1, ref_ppm)) * cf_mhz

    x = np.linspace(-1.0, 1.0, int(mask.sum()))
    n_support = support_length(fid)

    last = {}

    def design(p):  # residual() needs it twice at each point: computed once
        key = np.asarray(p, float).tobytes()
        if last.get("key") != key:
            line = fid_to_spectrum(_voigt_fid(t, p[0], p[1], p[2], n_support))[mask]
            last["key"], last["value"] = key, np.column_stack([line, np.ones_like(x), x])
        return last["value"]

    def solve(p):
        a = design(p)
        return np.linalg.solve(np.einsum("ki,kj->ij", a.conj(), a), a.conj().T @ data)

    def residual(p):
        r = data - design(p) @ solve(p)
        return np.concatenate([r.real, r.imag])

    bin_hz = 1.0 / (n * dwell_s)
    p0 = [f0, np.pi * max(2 * bin_hz, 1.0), 1.0]
    lower = [f0 - 0.05 * cf_mhz, 0.0, 0.0]
    upper = [f0 + 0.05 * cf_mhz, 500.0, 1e5]
    fit = least_squares(residual, p0, bounds=(lower, upper), x_scale=[1.0, 10.0, 100.0])
    amp = solve(fit.x)[0]
    model = _voigt_fid(t, *fit.x, n_support)
    return {"amplitude": complex(amp), "freq_hz": float(fit.x[0]),
            "lorentz_rate_s": float(fit.x[1]), "gauss_rate_s2": float(fit.x[2]),
            "model_fid": amp * model}


def _bridge_window(fid: np.ndarray, ppm: np.ndarray, centre_ppm: float,
                   half_width_ppm: float) -> np.ndarray:
    """Replace the spectrum within ``centre_ppm +/- half_width_ppm`` by a straight line joining
    its edges (what is left of a reference line that the Voigt model does not describe)."""
    spec = fid_to_spectrum(fid)
    inside = np.flatnonzero(np.abs(ppm - centre_ppm) <= half_width_ppm)
    if inside.size == 0 or inside[0] == 0 or inside[-1] == len(spec) - 1:
        return fid
    left, right = inside[0] - 1, inside[-1] + 1
    weight = (inside - left) / (right - left)
    spec[inside] = (1 - weight) * spec[left] + weight * spec[right]
    return spectrum_to_fid(spec)


def remove_reference_peak(basis: Basis, peak_at_ppm: float = 0.0,
                          only_if_present: bool = True,
                          bridge_half_width_ppm: float = 0.03) -> Basis:
    """Subtract a fitted reference line (TMS/DSS at 0 ppm by default) from every entry.

    The fitted Voigt line is subtracted over the whole spectrum (its tails reach the metabolite
    region); what the model leaves within ``bridge_half_width_ppm`` of the peak (non-Voigt
    lineshapes) is bridged by a straight line. With ``only_if_present`` the entries without a
    distinct peak there are left untouched. What was removed is listed in
    ``provenance['reference_peak_removed']``.
    """
    fids = basis.fids.copy()
    removed = {}
    ppm = basis.ppm()
    for i, (name, fid) in enumerate(zip(basis.names, basis.fids)):
        if only_if_present and not has_reference_peak(fid, basis.dwell_s, basis.cf_mhz,
                                                      peak_at_ppm, basis.ref_ppm):
            continue
        fit = fit_reference_peak(fid, basis.dwell_s, basis.cf_mhz, peak_at_ppm, basis.ref_ppm)
        fitted_ppm = basis.ref_ppm - fit["freq_hz"] / basis.cf_mhz
        fids[i] = _bridge_window(fid - fit["model_fid"], ppm, fitted_ppm, bridge_half_width_ppm)
        removed[name] = {"ppm": fitted_ppm, "amplitude_abs": abs(fit["amplitude"]),
                         "lorentz_rate_s": fit["lorentz_rate_s"],
                         "gauss_rate_s2": fit["gauss_rate_s2"]}
    prov = dict(basis.provenance)
    if removed:
        prov["reference_peak_removed"] = removed
    return Basis(basis.names, fids, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                 basis.nucleus, prov)


# --- resampling --------------------------------------------------------------------------

def _predict_backward(fid: np.ndarray, n_extra: int, order: int, n_fit: int) -> np.ndarray:
    """``n_extra`` samples before t = 0 by backward linear prediction (least squares on the
    first ``n_fit`` samples, SVD-truncated). Exact for noiseless sums of damped exponentials,
    which is what basis FIDs are."""
    x = fid[:n_fit]
    rows = np.array([x[i + 1:i + 1 + order] for i in range(len(x) - order)])
    # ridge-regularised normal equations: einsum and a small solve stay clear of threaded
    # BLAS, which on a loaded machine costs seconds for this millisecond problem
    gram = np.einsum("ki,kj->ij", rows.conj(), rows)
    rhs = np.einsum("ki,k->i", rows.conj(), x[:len(x) - order])
    energy = np.trace(gram).real
    if not energy > 0:  # the FID is exactly zero here (e.g. a Gaussian decayed to 0): so is
        return np.zeros(n_extra, dtype=complex)  # its continuation
    ridge = 1e-12 * energy / order
    try:
        coef = np.linalg.solve(gram + ridge * np.eye(order), rhs)
    except np.linalg.LinAlgError:  # rank-deficient beyond the ridge (few non-zero samples)
        coef = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    out = np.empty(n_extra + order, dtype=complex)
    out[n_extra:] = fid[:order]
    with np.errstate(over="ignore", invalid="ignore"):  # growth is checked by the caller
        for i in range(n_extra - 1, -1, -1):
            out[i] = out[i + 1:i + 1 + order] @ coef
    return out[:n_extra]


def _taper(n: int) -> np.ndarray:
    """Quintic smooth step from 1 to 0 over ``n`` samples (zero 1st and 2nd derivatives at
    both ends, which keeps the extended signal's spectrum compact)."""
    x = np.arange(1, n + 1) / (n + 1)
    return 1 - (6 * x ** 5 - 15 * x ** 4 + 10 * x ** 3)


def smooth_extension(fid: np.ndarray, n_extra: int = 128, order: int = 48,
                     n_fit: int = 512, max_growth: float = 1e3) -> np.ndarray:
    """The FID with ``n_extra`` linearly predicted samples before t = 0 and after its end, both
    tapered to zero: a signal without the jump at t = 0 whose spectrum is compact, so Fourier
    interpolation between samples is accurate (measured < 1e-5 of the maximum on Lorentzian
    test signals). Broad lines grow fast backwards in time: the extension is shortened until
    it stays below ``max_growth`` times the FID maximum."""
    fid = np.asarray(fid, dtype=complex)
    order = min(order, len(fid) // 4)
    n_fit = min(max(n_fit, 4 * order), len(fid))
    peak = np.abs(fid).max()
    while n_extra >= 8 and peak > 0:
        before = _predict_backward(fid, n_extra, order, n_fit)
        after = _predict_backward(fid[::-1], n_extra, order, n_fit)[::-1]
        if np.all(np.isfinite(before)) and max(np.abs(before).max(), np.abs(after).max()) \
                <= max_growth * peak:
            taper = _taper(n_extra)
            return np.concatenate([before * taper[::-1], fid, after * taper])
        n_extra //= 2
    return fid.copy()


def resample_fids(fids: np.ndarray, dwell_s: float, new_dwell_s: float, new_n_points: int,
                  time_scale: float = 1.0, freq_offset_hz: float = 0.0,
                  n_extra: int = 128) -> np.ndarray:
    """FIDs evaluated on a new time grid: ``new[n] = old(time_scale * t_n) exp(2i pi offset t_n)``.

    Each FID is smoothly extended (:func:`smooth_extension`), written as a Fourier series and
    evaluated at the new times, keeping only the components inside the new bandwidth (an
    out-of-band signal is removed, not aliased). Samples beyond the original acquisition time
    are zero (zero padding); a shorter new grid truncates.
    """
    fids = np.atleast_2d(np.asarray(fids, dtype=complex))
    n_old = fids.shape[-1]
    n_ext = n_old + 4 * n_extra  # zeros beyond the extensions keep periodic copies apart
    padded = np.zeros((fids.shape[0], n_ext), dtype=complex)
    for row, fid in zip(padded, fids):
        extended = smooth_extension(fid, n_extra)
        lead = (len(extended) - n_old) // 2
        row[n_extra - lead:n_extra - lead + len(extended)] = extended
    freqs_old = frequency_axis_hz(n_ext, dwell_s)
    coeffs = fid_to_spectrum(padded) / n_ext * np.exp(2j * np.pi * freqs_old * n_extra * dwell_s)
    freqs = time_scale * freqs_old + freq_offset_hz
    nyquist_hz = 0.5 / new_dwell_s
    keep = (freqs >= -nyquist_hz * (1 + 1e-12)) & (freqs < nyquist_hz * (1 - 1e-12))
    coeffs, freqs = coeffs[:, keep], freqs[keep]
    t_new = time_axis_s(new_n_points, new_dwell_s)
    n_valid = int(np.count_nonzero(time_scale * t_new <= (n_old - 1) * dwell_s * (1 + 1e-12)))
    out = np.zeros((fids.shape[0], new_n_points), dtype=complex)
    if n_valid and freqs.size:
        # sum_j c_j exp(2i pi (f_0 + j df) t_n) on a uniform grid is a chirp z-transform
        from scipy.signal import czt  # here: scipy.signal takes ~0.4 s to import, and only
        # basis preparation needs it (not the app's start, which imports this module)

        step = np.exp(2j * np.pi * (freqs[1] - freqs[0] if freqs.size > 1 else 0.0) * new_dwell_s)
        series = czt(coeffs, m=n_valid, w=step, a=1.0, axis=-1)
        out[:, :n_valid] = series * np.exp(2j * np.pi * freqs[0] * t_new[:n_valid])
    return out


def resample_basis(basis: Basis, dwell_s: float, n_points: int, cf_mhz: float,
                   ref_ppm: float | None = None,
                   max_field_mismatch: float = FIELD_MISMATCH_TOLERANCE) -> Basis:
    """The basis on a dataset's grid: dwell time, number of points, centre frequency, reference.

    Chemical shifts (ppm) are preserved: when ``cf_mhz`` differs from the basis's, the time axis
    is scaled by the ratio (so linewidths in Hz scale too). J-couplings do not scale with the
    field, so a change of more than ``max_field_mismatch`` (relative) is refused: simulate a
    basis for that field instead. A different ``ref_ppm`` moves the receiver frequency.
    """
    if dwell_s <= 0 or n_points <= 0 or cf_mhz <= 0:
        raise ValueError(f"resample_basis: dwell_s, n_points and cf_mhz must be positive "
                         f"(got {dwell_s}, {n_points}, {cf_mhz})")
    ratio = cf_mhz / basis.cf_mhz
    if abs(ratio - 1) > max_field_mismatch:
        raise ValueError(
            f"resample_basis: basis centre frequency {basis.cf_mhz:.4f} MHz and data "
            f"{cf_mhz:.4f} MHz differ by {100 * abs(ratio - 1):.2f} % (> "
            f"{100 * max_field_mismatch:.1f} %): J-couplings do not scale with B0, so the "
            f"basis cannot be rescaled to another field; simulate one for {cf_mhz} MHz")
    new_ref = basis.ref_ppm if ref_ppm is None else float(ref_ppm)
    offset_hz = (new_ref - basis.ref_ppm) * cf_mhz
    if ratio == 1 and offset_hz == 0 and np.isclose(dwell_s, basis.dwell_s, rtol=1e-12, atol=0):
        fids = np.zeros((len(basis.names), int(n_points)), dtype=complex)  # same grid: exact
        n_copy = min(int(n_points), basis.n_points)
        fids[:, :n_copy] = basis.fids[:, :n_copy]
    else:
        fids = resample_fids(basis.fids, basis.dwell_s, dwell_s, int(n_points), ratio,
                             offset_hz)
    prov = dict(basis.provenance)
    prov["resampled"] = {"from": {"dwell_s": basis.dwell_s, "n_points": basis.n_points,
                                  "cf_mhz": basis.cf_mhz, "ref_ppm": basis.ref_ppm},
                         "to": {"dwell_s": dwell_s, "n_points": int(n_points),
                                "cf_mhz": cf_mhz, "ref_ppm": new_ref},
                         "method": "Fourier evaluation of the FID extended by linear "
                                   "prediction; out-of-band signal removed; zero beyond the "
                                   "original acquisition time"}
    if abs(ratio - 1) > 1e-6:
        warnings.warn(f"resample_basis: centre frequency changed by {100 * (ratio - 1):+.3f} %;"
                      " shifts kept in ppm, J-couplings scaled by the same factor",
                      stacklevel=2)
    new_bw = 1.0 / dwell_s
    if new_bw < basis.spectral_width_hz:
        low_ppm = new_ref - 0.5 * new_bw / cf_mhz
        high_ppm = new_ref + 0.5 * new_bw / cf_mhz
        prov["resampled"]["band_ppm"] = [low_ppm, high_ppm]
    return Basis(basis.names, fids, dwell_s, cf_mhz, new_ref, basis.nucleus, prov)
