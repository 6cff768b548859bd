"""Sums of damped complex exponentials (HLSVD) and residual water removal.

HLSVD (Barkhuijsen et al. 1987; Pijnappel et al. 1992): the FID's Hankel matrix has rank equal to
the number of damped exponentials; the dominant left singular vectors are shift-invariant, and
the eigenvalues of that shift (the signal poles) give each component's frequency and damping.
Amplitudes then follow by linear least squares. Written with numpy/scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from pipeline.preprocess.orientation import MIN_SCORE, singlet_pattern_score
from pipeline.referencing import singlet_reference
from pipeline.spectra import H1_REFERENCE_PPM, exp_series, ppm_to_hz

RESIDUAL_WATER_WINDOW_PPM = (4.0, 5.5)
"""Components inside this window are water. It reaches down to 4.0 ppm because residual water
is often off-resonance (ISMRM 2016 challenge dataset 24: a large line at 4.1-4.3 ppm pulled the
fit's shift to its bound and zeroed tNAA, tCho and Ins with a 4.2 ppm edge); the fit window
ends at 4.0 ppm (``FitOptions.ppm_range``), as LCModel's does, so the few metabolite
components above 4.0 ppm (Ins 4.06, PCho 4.05) are outside the fitted data anyway."""


@dataclass
class DampedExponentials:
    """``fid(t) = sum_k amplitude_k * exp((2i pi freq_k - damping_k) t)``."""

    freq_hz: np.ndarray
    damping_hz: np.ndarray  # decay rate in 1/s (>= 0 for a decaying component)
    amplitudes: np.ndarray  # complex

    def fid(self, n_points: int, dwell_s: float, select: np.ndarray | None = None
            ) -> np.ndarray:
        """Time signal of all (or the ``select``-ed) components."""
        keep = np.ones(self.freq_hz.size, bool) if select is None else select
        return damped_exponential_basis(n_points, dwell_s, self.freq_hz[keep],
                            self.damping_hz[keep]) @ self.amplitudes[keep]


def damped_exponential_basis(n_points: int, dwell_s: float, freq_hz: np.ndarray,
                             damping_hz: np.ndarray) -> np.ndarray:
    """Matrix (n_points, n_components) of damped exponentials with the given poles."""
    rate = 2j * np.pi * np.asarray(freq_hz, dtype=float) - np.asarray(damping_hz, dtype=float)
    return exp_series(rate, dwell_s, n_points).T


def signal_poles(fid: np.ndarray, dwell_s: float, n_components: int,
                 n_points_used: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and damping rates (1/s) of the ``n_components`` strongest poles."""
    fid = np.asarray(fid, dtype=complex)
    n = fid.size if n_points_used is None else min(n_points_used, fid.size)
    n_rows = n // 2
    if n_components >= min(n_rows, n - n_rows + 1):
        raise ValueError(f"HLSVD: {n_components} components do not fit in {n} points")
    return subspace_poles(dominant_left_singular_vectors(fid[:n], n_rows, n_components), dwell_s)


def hankel_gram(signal: np.ndarray, n_rows: int) -> np.ndarray:
    """``H H^H`` of the Hankel matrix ``H[i, k] = signal[i + k]`` (``n_rows`` rows), by its
    recursion along diagonals: ``G[i+1, j+1] = G[i, j] + s[i+m] conj(s[j+m]) - s[i] conj(s[j])``
    (``m`` columns). One correlation and ``n_rows`` vector updates instead of a matrix product
    (1 ms against 4.5 ms for the default 256 rows), and no memory beyond ``G`` itself (the
    Hankel matrix is never formed); rounding about 1e-15 of the largest entry (Hermitian to
    that rounding: eigensolvers read one triangle)."""
    signal = np.asarray(signal, dtype=complex)
    n_cols = signal.size - n_rows + 1
    gram = np.empty((n_rows, n_rows), dtype=complex)
    # G[0, j] = sum_k s[k] conj(s[j + k]); np.correlate conjugates its second argument
    gram[0] = np.conj(np.correlate(signal, signal[:n_cols], mode="valid"))
    late, early = signal[n_cols:n_cols + n_rows - 1].conj(), signal[:n_rows - 1].conj()
    for i in range(1, n_rows):
        gram[i, 1:] = (gram[i - 1, :-1] + signal[i - 1 + n_cols] * late
                       - signal[i - 1] * early)
        gram[i, 0] = np.conj(gram[0, i])
    return gram


def subspace_poles(u_k: np.ndarray, dwell_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and damping rates (1/s) from the signal subspace ``u_k`` of a Hankel
    matrix (its shift invariance: the eigenvalues of the shift are the poles)."""
    shift, *_ = np.linalg.lstsq(u_k[:-1], u_k[1:], rcond=None)
    log_poles = np.log(np.linalg.eigvals(shift)) / dwell_s
    return log_poles.imag / (2 * np.pi), -log_poles.real


def dominant_left_singular_vectors(signal: np.ndarray, n_rows: int,
                                   n_vectors: int) -> np.ndarray:
    """Orthonormal basis (n_rows, n_vectors) of the ``n_vectors`` dominant left singular
    vectors of the Hankel matrix of ``signal`` with ``n_rows`` rows.

    Only these are needed: the eigenvectors of the largest eigenvalues of the Gram matrix
    ``H H^H`` (:func:`hankel_gram`; a partial Hermitian eigensolver, about half the work of a
    full SVD). The Gram matrix squares the condition number, which costs nothing here: the
    signal subspace is many orders of magnitude above machine precision. Falls back to the SVD
    of the Hankel matrix itself (built only then) if LAPACK fails.
    """
    try:
        _, vectors = scipy.linalg.eigh(hankel_gram(signal, n_rows), driver="evr",
                                       subset_by_index=[n_rows - n_vectors, n_rows - 1],
                                       overwrite_a=True, check_finite=False)
        return vectors[:, ::-1]
    except np.linalg.LinAlgError:
        hankel = scipy.linalg.hankel(signal[:n_rows], signal[n_rows - 1:])
        u, _, _ = scipy.linalg.svd(hankel, full_matrices=False, lapack_driver="gesvd")
        return u[:, :n_vectors]


def fit_damped_exponentials(fid: np.ndarray, dwell_s: float, freq_hz: np.ndarray,
                            damping_hz: np.ndarray) -> DampedExponentials:
    """Complex amplitudes of fixed poles by linear least squares."""
    fid = np.asarray(fid, dtype=complex)
    basis = damped_exponential_basis(fid.size, dwell_s, freq_hz, damping_hz)
    amplitudes, *_ = np.linalg.lstsq(basis, fid, rcond=None)
    return DampedExponentials(np.asarray(freq_hz), np.asarray(damping_hz), amplitudes)


def hlsvd(fid: np.ndarray, dwell_s: float, n_components: int = 25,
          n_points_used: int | None = None) -> DampedExponentials:
    """Model an FID as ``n_components`` damped exponentials."""
    freq_hz, damping_hz = signal_poles(fid, dwell_s, n_components, n_points_used)
    return fit_damped_exponentials(fid, dwell_s, freq_hz, damping_hz)


def remove_residual_water(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                          window_ppm=RESIDUAL_WATER_WINDOW_PPM, n_components: int = 25,
                          n_points_used: int | None = 512,
                          follow_singlets: bool = True,
                          reference_index: int = 0) -> tuple[np.ndarray, dict]:
    """Subtract the HLSVD components that fall inside ``window_ppm`` (water).

    ``window_ppm`` is in true chemical shift: with ``follow_singlets`` the window moves with
    the spectrum's frequency offset, measured on the NAA/Cr/Cho singlets
    (``singlet_offset_hz``, ``pipeline.referencing``), so residual water at 4.0 ppm in a
    spectrum offset by -0.13 ppm (seen at 3.87 ppm) is still removed, and a metabolite at
    4.0 ppm in a spectrum offset by +0.1 ppm is not. Components outside the window, and growing
    ones (negative damping, non-physical), are left alone, so metabolite peaks outside the
    window are untouched.
    Returns the cleaned FID(s) and a summary (components removed, their frequencies, the
    offset used). Works on one FID or a stack (..., n_points): a stack (e.g. the conditions of
    a diffusion series) is modelled on common poles, those of its ``reference_index``-th FID
    (flattened; give the lowest b, where residual water is strongest), each FID fitted on all
    of them and the in-window components subtracted. A separate HLSVD of each noisy high-b
    spectrum, where the water has diffused away, put broad components (FWHM 0.3-1.7 ppm) in the
    window whose removal cut the macromolecule and metabolite signal under them (published 7 T
    set: Gln/Tau decay errors 0.054/0.050 with separate poles, README "dMRS defaults").
    """
    fid = np.asarray(fid, dtype=complex)
    # one offset for a whole stack (measured on its mean): the window must not move from one
    # condition to the next, or a line near its edge would be removed at some b only
    offset_hz = (singlet_offset_hz(fid.reshape(-1, fid.shape[-1]).mean(axis=0), dwell_s, cf_mhz)
                 if follow_singlets else 0.0)
    if fid.ndim > 1:
        rows = fid.reshape(-1, fid.shape[-1])
        model = hlsvd(rows[reference_index], dwell_s, n_components, n_points_used)
        water = water_components(model, cf_mhz, window_ppm, offset_hz)
        damping_hz = np.maximum(model.damping_hz, 0.0)
        cleaned, shifts = np.empty_like(rows), np.zeros(rows.shape[0])
        for i, row in enumerate(rows):
            if i != reference_index % rows.shape[0]:
                shifts[i] = pole_shift_hz(row, dwell_s, model.freq_hz, damping_hz,
                                          n_points_used)
            fit = fit_damped_exponentials(row, dwell_s, model.freq_hz + shifts[i], damping_hz)
            cleaned[i] = row - fit.fid(rows.shape[-1], dwell_s, water)
        return cleaned.reshape(fid.shape), {
            "n_components_removed": int(water.sum()),
            "water_freq_hz": model.freq_hz[water].tolist(),
            "window_offset_hz": float(offset_hz),
            "poles_from": f"FID {reference_index} of the stack, common to all {rows.shape[0]}",
            "pole_shift_hz": np.round(shifts, 3).tolist()}
    return _remove_water_components(fid, dwell_s, cf_mhz, window_ppm, n_components,
                                    n_points_used, offset_hz)


POLE_SHIFT_HZ = 3.0
"""Largest frequency offset (Hz) between an FID of a stack and its reference that the common
poles follow: conditions left offset by alignment (up to 1.1 Hz on the published 7 T set)
or acquired after a B0 drift carry their residual water moved with them."""


def pole_shift_hz(fid: np.ndarray, dwell_s: float, freq_hz: np.ndarray, damping_hz: np.ndarray,
                  n_points_used: int | None, max_shift_hz: float = POLE_SHIFT_HZ) -> float:
    """The one frequency shift of all ``freq_hz`` (within +-``max_shift_hz``) by which the poles
    fit ``fid`` best (least squares over its first ``n_points_used`` points); 0 unless it
    fits better than the unmoved poles. On common poles, residual water moved by 1 Hz from
    the reference's was left at 16 % of a metabolite peak (0.1 % when moved with it)."""
    head = np.asarray(fid)[:n_points_used] if n_points_used else np.asarray(fid)

    def cost(shift_hz: float) -> float:
        fit = fit_damped_exponentials(head, dwell_s, freq_hz + shift_hz, damping_hz)
        return float(np.sum(np.abs(head - fit.fid(head.size, dwell_s)) ** 2))

    best = scipy.optimize.minimize_scalar(cost, bounds=(-max_shift_hz, max_shift_hz),
                                          method="bounded", options={"xatol": 0.01})
    return float(best.x) if best.fun < cost(0.0) else 0.0


def water_components(model: DampedExponentials, cf_mhz: float, window_ppm,
                     offset_hz: float, ref_ppm: float = H1_REFERENCE_PPM) -> np.ndarray:
    """Components inside ``window_ppm`` (moved by ``offset_hz``) that decay (damping >= 0)."""
    low_hz, high_hz = np.sort(ppm_to_hz(np.asarray(window_ppm, dtype=float), cf_mhz,
                                        ref_ppm)) + offset_hz
    return (model.freq_hz >= low_hz) & (model.freq_hz <= high_hz) & (model.damping_hz >= 0)


def _remove_water_components(fid: np.ndarray, dwell_s: float, cf_mhz: float, window_ppm,
                             n_components: int, n_points_used: int | None,
                             offset_hz: float) -> tuple[np.ndarray, dict]:
    """HLSVD of one FID; subtract the components inside ``window_ppm`` moved by ``offset_hz``."""
    model = hlsvd(fid, dwell_s, n_components, n_points_used)
    water = water_components(model, cf_mhz, window_ppm, offset_hz)
    water_fid = model.fid(fid.size, dwell_s, water)
    return fid - water_fid, {"n_components_removed": int(water.sum()),
                             "water_freq_hz": model.freq_hz[water].tolist(),
                             "window_offset_hz": float(offset_hz)}


def singlet_offset_hz(fid: np.ndarray, dwell_s: float, cf_mhz: float) -> float:
    """Frequency offset (Hz, added to nominal frequencies) of the NAA/Cr/Cho singlets
    (``pipeline.referencing``, refined between bins); 0 when the three-singlet pattern is not
    clear (score below ``orientation.MIN_SCORE`` noise units, e.g. a metabolite-nulled MM
    spectrum or a phantom), so the window never moves on a guess."""
    score, _, _ = singlet_pattern_score(fid, dwell_s, cf_mhz)
    if score < MIN_SCORE:
        return 0.0
    return float(singlet_reference(fid, dwell_s, cf_mhz, H1_REFERENCE_PPM)[0])
