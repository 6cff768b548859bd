"""Diffusion tensor spectroscopy: a metabolite's apparent diffusion tensor from >= 6 directions.

ln S = ln S0 - b g^T D g, solved by weighted linear least squares (weights S^2/sigma^2, the
first-order variance of ln S). Reports MD, FA and eigenvalues in um^2/ms with standard errors
propagated from the covariance of the tensor elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TensorFit:
    """Fitted apparent diffusion tensor (um^2/ms)."""

    tensor: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    md: float
    fa: float
    md_std_error: float
    fa_std_error: float
    eigenvalues_std_error: np.ndarray
    s0: float


def _design(b_ms_um2, directions):
    g = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    gx, gy, gz = g.T
    quad = np.column_stack([gx * gx, gy * gy, gz * gz, 2 * gx * gy, 2 * gx * gz, 2 * gy * gz])
    return np.column_stack([np.ones(len(b_ms_um2)), -b_ms_um2[:, None] * quad])


def _tensor(elements):
    dxx, dyy, dzz, dxy, dxz, dyz = elements
    return np.array([[dxx, dxy, dxz], [dxy, dyy, dyz], [dxz, dyz, dzz]])


def md_fa(elements):
    """Mean diffusivity, fractional anisotropy and sorted eigen-decomposition of 6 elements."""
    vals, vecs = np.linalg.eigh(_tensor(elements))
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    md = float(vals.mean())
    norm = np.sqrt(np.sum(vals**2))
    fa = float(np.sqrt(1.5 * np.sum((vals - md) ** 2)) / norm) if norm > 0 else 0.0
    return md, fa, vals, vecs


def count_distinct_directions(directions, b_ms_um2) -> int:
    """Number of distinct (up to sign) directions among the diffusion-weighted conditions."""
    from pipeline.diffusion.powder import unique_directions
    return len(unique_directions(np.asarray(directions, float)[np.asarray(b_ms_um2) > 0]))


def fit_tensor(b_ms_um2, directions, signal, sigma=None) -> TensorFit:
    """Fit the tensor to signals at (b, direction); b = 0 rows may carry NaN directions."""
    b = np.asarray(b_ms_um2, float)
    s = np.asarray(signal, float)
    g = np.array(directions, float)
    if g.shape != (b.size, 3) or s.shape != b.shape:
        raise ValueError(f"tensor fit needs directions (n, 3) and signal (n,) for n={b.size} b-values")
    g[b == 0] = np.nan_to_num(g[b == 0], nan=1.0)
    if np.any(~np.isfinite(g)) or np.any(s <= 0):
        raise ValueError("tensor fit needs a direction for every b > 0 and positive signals")
    if count_distinct_directions(g, b) < 6:
        raise ValueError("tensor fit needs at least 6 non-collinear gradient directions")
    x = _design(b, g)
    sd = np.ones_like(s) if sigma is None else np.broadcast_to(np.asarray(sigma, float), s.shape)
    w = (s / sd) ** 2
    xtw = x.T * w
    cov = np.linalg.pinv(xtw @ x)
    coef = cov @ (xtw @ np.log(s))
    if sigma is None:
        resid = np.log(s) - x @ coef
        cov = cov * float(resid @ (w * resid)) / max(b.size - 7, 1)
    md, fa, vals, vecs = md_fa(coef[1:])
    jac = np.empty((5, 6))
    for k in range(6):
        h = 1e-7 * max(abs(md), 1e-3)
        up, dn = coef[1:].copy(), coef[1:].copy()
        up[k] += h
        dn[k] -= h
        mu, fu, vu, _ = md_fa(up)
        ml, fl, vl, _ = md_fa(dn)
        jac[:, k] = (np.r_[mu, fu, vu] - np.r_[ml, fl, vl]) / (2 * h)
    var = np.einsum("ik,kl,il->i", jac, cov[1:, 1:], jac)
    se = np.sqrt(np.clip(var, 0, None))
    return TensorFit(_tensor(coef[1:]), vals, vecs, md, fa, float(se[0]), float(se[1]), se[2:],
                     float(np.exp(coef[0])))
