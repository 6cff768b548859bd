"""Diffusion tensor spectroscopy: a metabolite's apparent diffusion tensor from >= 6 directions.

ln S = ln S0 - b g^T D g, fitted by weighted least squares (weights S^2/sigma^2, the
first-order variance of ln S) with D = L L^T (L lower triangular, the Cholesky parametrisation),
so the tensor is positive semi-definite: eigenvalues >= 0 and FA in [0, 1]. The fit needs >= 6
non-collinear directions: directions within ``DIRECTION_ANGLE_TOLERANCE_DEG`` of each other (e.g.
the same nominal direction tilted per b-value by cross-terms) count once, and the 6-column
quadratic design of the distinct directions must have full rank. Reports MD, FA and eigenvalues
in um^2/ms with standard errors propagated from the covariance of the tensor elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

DIRECTION_ANGLE_TOLERANCE_DEG = 25.0
"""Directions closer than this (up to sign) are one direction: cross-terms with imaging and
crusher gradients tilt a nominal direction by up to ~18 deg per b-value (7 T DW-STEAM)."""

DESIGN_RANK_RTOL = 1e-2
"""Singular values of the unit-direction quadratic design below this fraction of the largest
count as zero (coplanar or nearly collinear direction sets)."""


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


def direction_clusters(directions, angle_tolerance_deg: float = DIRECTION_ANGLE_TOLERANCE_DEG) -> np.ndarray:
    """Mean unit direction (up to sign) of each group of directions within the angle tolerance."""
    return direction_cluster_labels(directions, angle_tolerance_deg)[0]


def direction_cluster_labels(directions, angle_tolerance_deg: float = DIRECTION_ANGLE_TOLERANCE_DEG
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(mean unit direction of each group, the group of each row; -1 for a row without a
    direction): a row joins the first group whose running mean is within the angle tolerance
    (up to sign), and keeps that group."""
    g = np.atleast_2d(np.asarray(directions, float))
    labels = np.full(g.shape[0], -1)
    cos_tol = np.cos(np.radians(angle_tolerance_deg))
    sums: list[np.ndarray] = []
    for i, v in enumerate(g):
        if not (np.all(np.isfinite(v)) and np.linalg.norm(v) > 0):
            continue
        v = v / np.linalg.norm(v)
        for k, c in enumerate(sums):
            u = c / np.linalg.norm(c)
            if abs(v @ u) >= cos_tol:
                sums[k] = c + np.sign(v @ u) * v
                labels[i] = k
                break
        else:
            labels[i] = len(sums)
            sums.append(v.copy())
    return np.array([c / np.linalg.norm(c) for c in sums]).reshape(-1, 3), labels


def direction_design_rank(directions, angle_tolerance_deg: float = DIRECTION_ANGLE_TOLERANCE_DEG,
                          rtol: float = DESIGN_RANK_RTOL) -> int:
    """Rank (0-6) of the tensor's quadratic design [gx^2, gy^2, gz^2, 2gxgy, 2gxgz, 2gygz] built
    from the distinct directions; the tensor is identifiable only at rank 6."""
    u = direction_clusters(directions, angle_tolerance_deg)
    if len(u) == 0:
        return 0
    gx, gy, gz = u.T
    quad = np.column_stack([gx * gx, gy * gy, gz * gz, 2 * gx * gy, 2 * gx * gz, 2 * gy * gz])
    sv = np.linalg.svd(quad, compute_uv=False)
    return int(np.sum(sv > rtol * sv[0]))


def count_distinct_directions(directions, b_ms_um2) -> int:
    """Number of distinct (up to sign, within the angle tolerance) diffusion-weighted directions
    (b above ``powder.ZERO_B_MS_UM2``: a crusher-only b ~ 0 condition's direction is none)."""
    return len(direction_clusters(_weighted_directions(directions, b_ms_um2)))


def _weighted_directions(directions, b_ms_um2) -> np.ndarray:
    """The directions of the diffusion-weighted conditions (b above ``powder.ZERO_B_MS_UM2``)."""
    from .powder import ZERO_B_MS_UM2

    return np.asarray(directions, float)[np.asarray(b_ms_um2, float) > ZERO_B_MS_UM2]


def decay_direction_labels(directions, b_ms_um2) -> np.ndarray | None:
    """Per condition the index of its gradient direction (up to sign, within the angle
    tolerance), -1 at b ~ 0 (at or below ``powder.ZERO_B_MS_UM2``: crushers only, any or no
    direction) and -2 for a diffusion-weighted condition without a direction or a b that is
    not a number; None with fewer than two distinct directions (one decay in b)."""
    from .powder import ZERO_B_MS_UM2

    b = np.asarray(b_ms_um2, float)
    weighted = ~(b <= ZERO_B_MS_UM2)                  # NaN b: weighted, so never shared
    clusters, members = direction_cluster_labels(np.atleast_2d(np.asarray(directions, float))
                                                 [weighted])
    if len(clusters) < 2:
        return None
    labels = np.full(b.size, -1)
    labels[weighted] = np.where((members >= 0) & np.isfinite(b[weighted]), members, -2)
    return labels


def tensor_identifiable(directions, b_ms_um2) -> tuple[bool, str]:
    """(True, "") when >= 6 non-collinear directions give a rank-6 design, else (False, reason)."""
    g = _weighted_directions(directions, b_ms_um2)
    n = len(direction_clusters(g))
    rank = direction_design_rank(g)
    if n >= 6 and rank == 6:
        return True, ""
    return False, (f"tensor needs >= 6 non-collinear gradient directions: {n} distinct "
                   f"(within {DIRECTION_ANGLE_TOLERANCE_DEG:g} deg), design rank {rank} < 6")


def _cholesky_to_elements(l_params):
    l11, l21, l22, l31, l32, l33 = l_params
    return np.array([l11 * l11, l21 * l21 + l22 * l22, l31 * l31 + l32 * l32 + l33 * l33,
                     l11 * l21, l11 * l31, l21 * l31 + l22 * l32])


def _elements_to_cholesky(elements):
    """Cholesky factor of the nearest positive-definite tensor (eigenvalues clipped at a floor)."""
    vals, vecs = np.linalg.eigh(_tensor(elements))
    floor = max(1e-4 * float(np.abs(vals).max()), 1e-6)
    pd = (vecs * np.clip(vals, floor, None)) @ vecs.T
    c = np.linalg.cholesky(pd)
    return np.array([c[0, 0], c[1, 0], c[1, 1], c[2, 0], c[2, 1], c[2, 2]])


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
    ok, reason = tensor_identifiable(g, b)
    if not ok:
        raise ValueError(reason)
    x = _design(b, g)
    sd = np.ones_like(s) if sigma is None else np.broadcast_to(np.asarray(sigma, float), s.shape)
    w = (s / sd) ** 2
    xtw = x.T * w
    cov = np.linalg.pinv(xtw @ x)
    linear = cov @ (xtw @ np.log(s))
    sqrt_w, log_s = np.sqrt(w), np.log(s)

    def residual(p):
        return sqrt_w * (x @ np.r_[p[0], _cholesky_to_elements(p[1:])] - log_s)

    start = np.r_[linear[0], _elements_to_cholesky(linear[1:])]
    result = least_squares(residual, start, method="lm", xtol=1e-12, ftol=1e-12, max_nfev=2000)
    coef = np.r_[result.x[0], _cholesky_to_elements(result.x[1:])]
    if sigma is None:
        resid = log_s - x @ coef
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
