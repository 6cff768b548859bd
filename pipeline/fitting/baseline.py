"""Baseline design matrices over the fitted ppm window (polynomial or penalised spline) and
the choice of the spline's stiffness from the data."""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre
from scipy.interpolate import BSpline


def baseline_design(ppm_window: np.ndarray, kind: str, order: int = 2,
                    knot_spacing_ppm: float = 0.4,
                    stiffness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Real design matrix ``(n_bins, n_coef)`` and penalty rows ``(n_pen, n_coef)``.

    The same real matrix models the real and the imaginary part of the baseline (two
    independent coefficient sets). ``poly``: Legendre polynomials on the window mapped to
    [-1, 1], no penalty. ``spline``: cubic B-splines with knots every ``knot_spacing_ppm`` and a
    second-difference penalty scaled by ``stiffness`` (P-spline); ``stiffness`` is in units of the
    data residual, so one value means the same smoothness for every condition.
    """
    x = _to_unit_interval(ppm_window)
    if kind == "none":
        return np.zeros((x.size, 0)), np.zeros((0, 0))
    if kind == "poly":
        design = legendre.legvander(x, order)
        return design, np.zeros((0, design.shape[1]))
    if kind == "spline":
        span_ppm = float(np.ptp(ppm_window))
        n_intervals = max(1, int(round(span_ppm / knot_spacing_ppm)))
        design = _bspline_design(x, n_intervals)
        n_coef = design.shape[1]
        penalty = np.sqrt(stiffness) * np.diff(np.eye(n_coef), n=2, axis=0) * np.sqrt(x.size)
        return design, penalty
    raise ValueError(f"unknown baseline kind {kind!r}: expected 'poly', 'spline' or 'none'")


def _to_unit_interval(ppm: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(ppm)), float(np.max(ppm))
    if hi == lo:
        return np.zeros_like(ppm, dtype=float)
    return 2.0 * (np.asarray(ppm, dtype=float) - lo) / (hi - lo) - 1.0


def _bspline_design(x: np.ndarray, n_intervals: int, degree: int = 3) -> np.ndarray:
    inner = np.linspace(-1.0, 1.0, n_intervals + 1)
    step = inner[1] - inner[0]
    knots = np.concatenate([inner[0] - step * np.arange(degree, 0, -1), inner,
                            inner[-1] + step * np.arange(1, degree + 1)])
    return BSpline.design_matrix(np.clip(x, -1.0, 1.0), knots, degree).toarray()


def noise_scaled_penalty(n_coef: int, sigma_scaled: float, curvature_sd: float) -> np.ndarray:
    """Second-difference penalty rows of a Gaussian prior on the spline's curvature.

    The prior ``diff2(c) / curvature_sd ~ N(0, 1)`` (``curvature_sd`` in units of the scaled
    data, per knot) enters the cost like the data when multiplied by the noise SD
    ``sigma_scaled``: the baseline is stiffer at low SNR and freer at high SNR, as the data
    can support (LCModel chooses its baseline smoothness from the data for the same reason).
    """
    return (sigma_scaled / curvature_sd) * np.diff(np.eye(n_coef), n=2, axis=0)


def stiffness_by_aicc(objective, theta: np.ndarray, noise_scaled: float, stiffness: float,
                      choices) -> tuple:
    """The spline stiffness, of ``stiffness`` and ``choices``, with the lowest corrected Akaike
    criterion at the fitted non-linear parameters ``theta``, and the objective that uses it.

    The criterion is the data's chi-square (noise ``noise_scaled``) plus the penalty for the
    effective number of linear parameters: the amplitudes in use and the trace of the
    penalised spline's hat matrix over the data rows (real and imaginary parts; the baseline
    projector's ``hat_trace``, which the noise estimate's degrees of freedom use too).
    Choosing the baseline's flexibility from the data is what LCModel does with its regularisation; here a stiffness
    is tried as a linear re-solve only (the non-linear parameters stay), so it costs a few
    projections. ``objective``: a ``single.SpectrumObjective``."""
    problem, n_obs = objective.problem, objective.n_obs
    scores = {}
    candidates = {}
    for value in sorted({float(stiffness), *map(float, choices)}):
        penalty = problem.baseline_penalty * np.sqrt(value / stiffness)
        candidate = (objective if value == stiffness else
                     objective.with_baseline_penalty(penalty))
        residual = candidate.residual(theta)[:n_obs]
        n_linear = (np.count_nonzero(candidate.evaluate(theta)[-1] > 0)
                    + candidate.projector.hat_trace(n_obs))
        chi_square = float(residual @ residual) / noise_scaled ** 2
        scores[value] = chi_square + 2 * n_linear + 2 * n_linear * (n_linear + 1) / max(
            n_obs - n_linear - 1, 1)
        candidates[value] = candidate
    best = min(scores, key=scores.get)
    return candidates[best], best
