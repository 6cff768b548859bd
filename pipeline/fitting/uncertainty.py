"""Noise estimation, Fisher-information covariances (CRLBs) and metabolite sums."""

from __future__ import annotations

import warnings

import numpy as np

from ..metabolites import METABOLITE_SUMS  # noqa: F401  (re-exported by pipeline.fitting)
from ..spectra import ppm_axis, ppm_window_mask


def covariance_from_jacobian(jacobian: np.ndarray, sigma: float,
                             prior_rows: np.ndarray | None = None) -> np.ndarray:
    """Covariance of the fitted parameters over noise realisations, ``sigma^2 A^-1 F A^-1``
    with ``F = J^T J`` and ``A = F + P^T P`` (= ``sigma^2 F^-1`` without penalty rows).

    ``jacobian`` is real ``(n_obs, n_params)`` of the model in the same units as ``sigma``
    (noise SD per real observation). ``prior_rows`` are penalty rows (baseline stiffness,
    per-metabolite shift prior, amplitude priors) in residual units. A penalised fit is a
    regularised estimator: its spread over noise is the sandwich above, smaller than
    ``sigma^2 A^-1``; with the light spline baseline the latter overstated the spread of broad
    components 1.8 x (MM, tests/test_fitting_accuracy.py). Columns are equilibrated before
    inversion so the result is stable when parameters have wildly different scales. Parameters
    the model does not depend on at all (e.g. the diffusivity of an absent metabolite) get an
    infinite variance rather than the zero a pseudo-inverse would report.
    """
    return covariance_and_prior_share(jacobian, sigma, prior_rows)[0]


def covariance_and_prior_share(jacobian: np.ndarray, sigma: float,
                               prior_rows: np.ndarray | None = None,
                               share_rows: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`covariance_from_jacobian`, and per parameter the fraction of its variance that
    the prior rows selected by the mask ``share_rows`` remove: ``1 - [A^-1]_ii / [A0^-1]_ii``,
    ``A0`` without those rows (Woodbury from the one inverse of ``A``). Near 1: the value
    comes from those priors, not the data, and a small CRLB says little about the measurement.
    """
    fisher = jacobian.T @ jacobian
    penalised = fisher
    if prior_rows is not None and prior_rows.size:
        penalised = fisher + prior_rows.T @ prior_rows
    scale = np.sqrt(np.diag(penalised))
    blind = scale == 0
    scale[blind] = 1.0
    norm = np.outer(scale, scale)
    inverse = np.linalg.pinv(penalised / norm, rcond=1e-12, hermitian=True)
    share = np.zeros(scale.size)
    if share_rows is not None and np.any(share_rows):
        rows = prior_rows[share_rows] / scale  # the removed rows, in equilibrated units
        spread = inverse @ rows.T
        coupling = np.eye(rows.shape[0]) - rows @ spread
        without = np.diag(inverse) + np.sum(spread * (np.linalg.pinv(coupling) @ spread.T).T,
                                            axis=1)
        share = np.clip(1.0 - np.divide(np.diag(inverse), without, out=np.ones(scale.size),
                                        where=without > 0), 0.0, 1.0)
    if penalised is not fisher:
        inverse = inverse @ (fisher / norm) @ inverse
    covariance = sigma ** 2 * inverse / norm
    covariance[blind, :] = 0.0
    covariance[:, blind] = 0.0
    covariance[blind, blind] = np.inf  # the data carry no information on these parameters
    return covariance, share


MAX_PARAMETER_FRACTION = 0.5
"""Above this many fitted parameters per real observation, a noise SD from the residual is
unreliable and the fit warns: a 256-point FID (30 bins in 0.2-4.0 ppm at 3 T, 40 spline
coefficients at the default 0.1 ppm knots) gave CRLBs about 3 x those from a signal-free
region, with no warning."""


def sigma_from_residual(residual_real: np.ndarray, n_params: int) -> float:
    """Noise SD per real observation from a fit residual, corrected for fitted parameters;
    warns when the parameters are more than ``MAX_PARAMETER_FRACTION`` of the observations."""
    if n_params > MAX_PARAMETER_FRACTION * residual_real.size:
        warnings.warn(f"fit: {n_params} fitted parameters for {residual_real.size} real "
                      "observations in the window: the noise SD from the residual, and so "
                      "every CRLB, is unreliable (use more points, a wider ppm_range, a coarser "
                      "spline_knot_spacing_ppm, or noise = \"region\")", stacklevel=2)
    dof = max(residual_real.size - n_params, 1)
    return float(np.sqrt(np.sum(residual_real ** 2) / dof))


def sigma_from_region(spectrum_region: np.ndarray) -> float:
    """Noise SD per real component in a signal-free spectral region (linear trend removed)."""
    if spectrum_region.size < 8:
        raise ValueError(f"noise region holds only {spectrum_region.size} points (need >= 8)")
    x = np.linspace(-1.0, 1.0, spectrum_region.size)
    design = np.stack([np.ones_like(x), x], axis=1)
    parts = []
    for part in (spectrum_region.real, spectrum_region.imag):
        coef, *_ = np.linalg.lstsq(design, part, rcond=None)
        parts.append(part - design @ coef)
    residual = np.concatenate(parts)
    return float(np.sqrt(np.sum(residual ** 2) / (residual.size - 4)))


def region_noise_sd(problem, spectra: np.ndarray, options) -> float:
    """Noise SD per real spectral point (data units) in ``options.noise_region_ppm`` of the
    spectra ``(n_spectra, n_points)`` (fftshifted, as ``fid_to_spectrum``), pooled as the RMS
    of each spectrum's SD (``noise = "region"``; one SD for a joint fit's conditions)."""
    ppm = ppm_axis(problem.n_points, problem.dwell_s, problem.cf_mhz, problem.ref_ppm)
    mask = ppm_window_mask(ppm, *options.noise_region_ppm)
    return float(np.sqrt(np.mean([sigma_from_region(s[mask]) ** 2 for s in spectra])))


def sum_weights(names: list) -> dict:
    """Weight vectors over ``names`` for each metabolite sum with at least one member present."""
    out = {}
    for total, members in METABOLITE_SUMS.items():
        w = np.array([1.0 if n in members else 0.0 for n in names])
        if w.any() and total not in names:
            out[total] = w
    return out


def weighted_sum(weights: np.ndarray, amplitudes: np.ndarray,
                 covariance: np.ndarray) -> tuple[float, float]:
    """``(w' a, sqrt(w' C w))``: a combination of amplitudes and its SD from the full
    covariance (anti-correlated members shrink it); entries with weight 0 are left out, so
    their (possibly infinite) variances never enter."""
    used = np.flatnonzero(np.asarray(weights, float))
    w = np.asarray(weights, float)[used]
    value = float(w @ np.asarray(amplitudes, float)[used])
    var = float(w @ np.asarray(covariance, float)[np.ix_(used, used)] @ w)
    return value, float(np.sqrt(max(var, 0.0)))


def metabolite_sums(names: list, amplitudes: np.ndarray,
                    covariance: np.ndarray) -> dict:
    """``{sum: (value, sd)}`` using the full covariance (so anti-correlated pairs shrink)."""
    return {total: weighted_sum(w, amplitudes, covariance)
            for total, w in sum_weights(names).items()}


def crlb_percent(amplitude: float, crlb: float) -> float:
    """CRLB as a percentage of the amplitude (inf when the amplitude is zero)."""
    return float(100.0 * crlb / abs(amplitude)) if amplitude != 0 else float("inf")


def propagate(grad: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``grad cov grad^T`` where parameters of infinite variance count only if used."""
    blind = np.isinf(np.diag(cov))
    out = grad @ np.where(np.isinf(cov), 0.0, cov) @ grad.T
    uses_blind = np.any(grad[:, blind] != 0, axis=1)
    out[uses_blind, uses_blind] = np.inf
    return out
