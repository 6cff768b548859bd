"""Baseline design matrices over the fitted ppm window (polynomial or penalised spline) and
the choice of the spline's stiffness from the data."""

from __future__ import annotations

import functools

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
    """The spline stiffness with the lowest corrected Akaike criterion at the fitted non-linear
    parameters ``theta``, and the objective that uses it: a search (:func:`grid_descent`) on the
    grid of ``choices`` and ``stiffness`` (the one fitted), started from ``stiffness``.

    The criterion (:func:`aicc`) counts as parameters the amplitudes in use and the trace of
    the penalised spline's hat matrix over the data rows (real and imaginary parts; the
    baseline projector's ``hat_trace``, which the noise estimate's degrees of freedom use too),
    with the data's chi-square at noise ``noise_scaled``. Over log stiffness it has one broad
    minimum, sometimes with shallow side dips, so the search scores only the stiffnesses on its
    way (3-11 of the 15 default ones) and ends on the whole grid's minimum or close to it
    (measured on 35 real spectra: 34 on it, one 0.8 above; differences below 2 do not tell
    models apart). Choosing the baseline's flexibility from the data is what LCModel does with
    its regularisation; here a stiffness is tried as a linear re-solve only (the non-linear
    parameters stay). ``objective``: a ``single.SpectrumObjective``."""
    n_obs = objective.n_obs
    grid = sorted({float(stiffness), *map(float, choices)})
    candidates = {}

    def score(index: int) -> float:
        value = grid[index]
        candidate = (objective if value == stiffness
                     else objective.with_penalty_scale(np.sqrt(value / stiffness)))
        candidates[index] = candidate
        residual = candidate.residual(theta)[:n_obs]
        n_linear = (np.count_nonzero(candidate.evaluate(theta)[-1] > 0)
                    + candidate.projector.hat_trace(n_obs))
        return aicc(float(residual @ residual) / noise_scaled ** 2, n_linear, n_obs)

    best = grid_descent(score, len(grid), grid.index(float(stiffness)))
    return candidates[best], grid[best]


def aicc(chi_square: float, n_params: float, n_obs: int) -> float:
    """Corrected Akaike information criterion of a least-squares fit with ``n_params``
    (effective) parameters on ``n_obs`` data: chi-square + 2 k + 2 k (k + 1) / (n - k - 1)."""
    return chi_square + 2 * n_params + 2 * n_params * (n_params + 1) / max(
        n_obs - n_params - 1, 1)


def grid_descent(score, n_points: int, start: int) -> int:
    """Index of a local minimum of ``score(index)`` on a grid of ``n_points``, searched from
    ``start``: steps that double (1, 2, 4 ... indices, up to the grid's end) towards the
    lower-scoring neighbour while the score falls, then single steps to the lower neighbour
    until neither is lower. ``score`` runs at most once per index (a minimum at the far end of
    15 points costs 7 runs); a non-finite score counts as the worst."""
    @functools.cache
    def finite_score(index: int) -> float:
        value = float(score(index))
        return value if np.isfinite(value) else np.inf

    best = start
    downhill = _lower_neighbour(finite_score, start, n_points)
    if downhill != start:
        direction, step = downhill - start, 1
        while True:
            ahead = min(max(best + direction * step, 0), n_points - 1)
            if ahead == best or finite_score(ahead) >= finite_score(best):
                break
            best, step = ahead, 2 * step
    while (lower := _lower_neighbour(finite_score, best, n_points)) != best:
        best = lower
    return best


def _lower_neighbour(score, index: int, n_points: int) -> int:
    """The neighbour of ``index`` with the lower score if it is below ``score(index)``, else
    ``index``."""
    neighbours = [i for i in (index - 1, index + 1) if 0 <= i < n_points]
    lower = min(neighbours, key=score, default=index)
    return lower if score(lower) < score(index) else index
