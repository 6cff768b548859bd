"""Fits of one diffusion model to many decays at once (Monte Carlo studies, the resampled
uncertainties of ``fitting.fit_model``): grid starts and a projected Levenberg-Marquardt run
vectorised over the decays, weighted as ``fit_model`` weights independent points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BatchFit:
    """Fits of one model to many decays at once (Monte Carlo studies, fast resampling)."""

    params: np.ndarray
    s0: np.ndarray
    chi2: np.ndarray
    b_used_ms_um2: np.ndarray


def batch_residual_sd(model, b_ms_um2, signals, fit: BatchFit, fit_s0: bool = True):
    """Residual RMS of each row of ``fit`` (``fit_model_batch`` of ``model`` to ``signals``
    at ``b_ms_um2``) on the b-values it used, with n - k degrees of freedom (k: the model's
    parameters plus S0 when fitted). Returns (sd (N,), dof)."""
    keep = model.in_b_range(b_ms_um2)
    dof = max(int(keep.sum()) - model.n_params - int(fit_s0), 1)
    resid = (fit.s0[:, None] * model.predict_batch(fit.b_used_ms_um2, fit.params)
             - np.asarray(signals)[:, keep])
    return np.sqrt(np.sum(resid**2, axis=1) / dof), dof


def _batch_jacobian(model, b, w, x, base, upper, fit_s0):
    """Forward-difference Jacobian (N, n_b, k) of the weighted residuals; S0 column analytic.

    ``base`` is the model prediction at x (N, n_b), reused from the residual evaluation.
    """
    theta = x[:, :-1]
    cols = []
    for i in range(theta.shape[1]):
        h = 1e-6 * np.maximum(np.abs(theta[:, i]), 1e-2)
        h = np.where(theta[:, i] + h <= upper[i], h, -h)
        shifted = theta.copy()
        shifted[:, i] += h
        cols.append(w * x[:, -1:] * (model.predict_batch(b, shifted) - base) / h[:, None])
    cols.append(w * base if fit_s0 else np.zeros_like(base))
    return np.stack(cols, axis=-1)


def _batch_lm(model, b, y, w, x, lower, upper, fit_s0, n_iter):
    """Projected Levenberg-Marquardt run on all rows of x in parallel; converged rows drop out."""
    x = x.copy()
    pred = model.predict_batch(b, x[:, :-1]).copy()
    cost = np.sum((w * (x[:, -1:] * pred - y)) ** 2, axis=1)
    lam = np.full(x.shape[0], 1e-3)
    active = np.arange(x.shape[0])
    eye = np.eye(x.shape[1])
    for _ in range(n_iter):
        if active.size == 0:
            break
        xa, wa, ya, pa = x[active], w[active], y[active], pred[active]
        r = wa * (xa[:, -1:] * pa - ya)
        jac = _batch_jacobian(model, b, wa, xa, pa, upper, fit_s0)
        a = np.einsum("nbi,nbj->nij", jac, jac)
        g = np.einsum("nbi,nb->ni", jac, r)
        damped = a + lam[active, None, None] * (a * eye) + 1e-12 * eye
        step = np.linalg.solve(damped, -g[..., None])[..., 0]
        trial = np.clip(xa + step, lower, upper)
        p_trial = model.predict_batch(b, trial[:, :-1])
        c_trial = np.sum((wa * (trial[:, -1:] * p_trial - ya)) ** 2, axis=1)
        better = c_trial < cost[active]
        converged = better & (cost[active] - c_trial <= 1e-12 * (cost[active] + 1e-30))
        idx = active[better]
        x[idx], pred[idx], cost[idx] = trial[better], p_trial[better], c_trial[better]
        lam[active] = np.where(better, lam[active] / 3.0, lam[active] * 4.0)
        active = active[~converged & (lam[active] <= 1e10)]
    return x, cost


def fit_model_batch(model, b_ms_um2, signals, sigma=None, fit_s0: bool = True, n_starts: int = 2,
                    n_iter: int = 100) -> BatchFit:
    """Fit ``model`` to each row of ``signals`` (N, n_b) with the same weighting as ``fit_model``.

    Grid initialisation (best ``n_starts`` grid points per row) followed by a projected
    Levenberg-Marquardt run vectorised over rows. Models must broadcast parameter arrays in
    ``predict`` (all registered models except ``anisotropic_cylinders``).
    """
    y_all = np.atleast_2d(np.asarray(signals, float))
    b_all = np.asarray(b_ms_um2, float)
    if y_all.shape[1] != b_all.size:
        raise ValueError(f"signals {y_all.shape} do not match {b_all.size} b-values")
    sg_all = None if sigma is None else np.broadcast_to(np.asarray(sigma, float), y_all.shape)
    keep = model.in_b_range(b_all)
    b, y = b_all[keep], y_all[:, keep]
    w = np.ones_like(y) if sg_all is None else 1.0 / sg_all[:, keep]
    lo, hi = model.bounds
    top = np.max(np.abs(y))
    lower = np.append(lo, 0.0 if fit_s0 else 1.0)
    upper = np.append(hi, 10.0 * top if fit_s0 else 1.0)
    grid = model.initial_grid()
    with np.errstate(over="ignore", invalid="ignore"):
        m = model.predict_batch(b, grid)  # (n_grid, n_b); kurtosis may overflow at high b
        usable = np.all(np.isfinite(m), axis=1) & np.all(np.abs(m) < 1e6, axis=1)
        grid, m = grid[usable], m[usable]
    num = np.einsum("nb,gb->ng", w**2 * y, m)
    den = np.einsum("nb,gb->ng", w**2, m**2)
    s0 = num / np.maximum(den, 1e-300) if fit_s0 else np.ones_like(num)
    cost = (np.einsum("nb,nb->n", w * y, w * y)[:, None] - 2 * s0 * num + s0**2 * den)
    order = np.argsort(cost, axis=1)[:, :n_starts]
    best_x, best_cost = None, None
    rows = np.arange(y.shape[0])
    for j in range(order.shape[1]):
        g = order[:, j]
        x0 = np.column_stack([grid[g], np.clip(s0[rows, g], lower[-1], upper[-1])])
        x, c = _batch_lm(model, b, y, w, x0, lower, upper, fit_s0, n_iter)
        if best_x is None:
            best_x, best_cost = x, c
        else:
            better = c < best_cost
            best_x = np.where(better[:, None], x, best_x)
            best_cost = np.where(better, c, best_cost)
    return BatchFit(best_x[:, :-1], best_x[:, -1], best_cost, b)
