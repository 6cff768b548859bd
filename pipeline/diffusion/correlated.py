"""Diffusion fits of points with correlated noise: the joint spectral fit's amplitudes of one
metabolite are correlated across conditions (``pipeline.fitting.amplitude_covariance``).

The estimate stays the weighted least-squares one (weights 1/sigma^2, sigma the CRLBs); its
covariance becomes the sandwich A^-1 J^T R J A^-1 (J the weighted Jacobian, A = J^T J, R the
points' correlation), the covariance of that estimator under noise of covariance C =
diag(sigma) R diag(sigma). Generalised least squares (whitening by C^-1/2) is not used: where
the joint fit's decay constraint holds, C is singular (the decay is a mixture of a few
dictionary exponentials; the published 7 T set's tNAA covariance has rank 7 of 9, Ins 5 of 9),
and GLS with it moved the tNAA sticks D_intra to 0.33 um^2/ms on average over noise
realisations (0.54 on the set as it is), with a spread 9 x its SE (README "Standard errors"). A diagonal C gives R = I: the sandwich is A^-1, unchanged.
"""

from __future__ import annotations

import numpy as np

VARIANCE_RTOL = 1e-6
"""A covariance's diagonal must be the points' variances (sigma^2, the CRLBs squared) to this
relative tolerance: both come from one fit, written with full precision."""
PSD_TOLERANCE = 1e-8
"""Smallest eigenvalue accepted, relative to the largest: a covariance read from a table is
positive semi-definite up to rounding."""


def is_diagonal(covariance) -> bool:
    """No off-diagonal entry: the points are independent (the old, CRLB-only path)."""
    c = np.asarray(covariance, float)
    return not np.any(c - np.diag(np.diag(c)))


def validated_covariance(covariance, n_points: int, sigma) -> np.ndarray:
    """``covariance`` (n_points, n_points): finite, symmetric, positive semi-definite, with the
    variances ``sigma**2`` on its diagonal; ValueError saying which it is not."""
    c = np.asarray(covariance, float)
    if c.shape != (n_points, n_points):
        raise ValueError(f"covariance {c.shape} must be ({n_points}, {n_points}), one row per "
                         "point")
    if not np.all(np.isfinite(c)) or not np.allclose(c, c.T, rtol=1e-10, atol=0):
        raise ValueError("covariance must be finite and symmetric")
    if not np.allclose(np.diag(c), np.asarray(sigma, float) ** 2, rtol=VARIANCE_RTOL, atol=0):
        raise ValueError("covariance's diagonal must be sigma squared (the points' variances)")
    eigenvalues = np.linalg.eigvalsh(c)
    if eigenvalues[0] < -PSD_TOLERANCE * eigenvalues[-1]:
        raise ValueError(f"covariance is not positive semi-definite (eigenvalue "
                         f"{eigenvalues[0]:.3g} against {eigenvalues[-1]:.3g})")
    return c


def correlation_of(covariance) -> np.ndarray | None:
    """The correlation matrix of ``covariance``; None when it is diagonal (independent)."""
    c = np.asarray(covariance, float)
    if is_diagonal(c):
        return None
    sd = np.sqrt(np.diag(c))
    return c / np.outer(sd, sd)


def sandwich(jac, correlation, fisher_inverse) -> np.ndarray:
    """A^-1 J^T R J A^-1 (``jac``: J weighted by 1/sigma; ``fisher_inverse``: A^-1, NaN for
    parameters the data do not constrain, which stay NaN)."""
    a = np.asarray(fisher_inverse, float)
    live = np.isfinite(np.diag(a))
    out = np.full_like(a, np.nan)
    inner, j = a[np.ix_(live, live)], np.asarray(jac, float)[:, live]
    out[np.ix_(live, live)] = inner @ j.T @ correlation @ j @ inner
    return out


def noise_root(correlation) -> np.ndarray:
    """S with S S^T = R (symmetric square root; eigenvalues below 0 from rounding clipped)."""
    values, vectors = np.linalg.eigh(np.asarray(correlation, float))
    return vectors * np.sqrt(np.clip(values, 0, None))


def correlated_noise(unit, root) -> np.ndarray:
    """Independent unit noise ``unit`` (draws, n) made correlated: rows of covariance S S^T."""
    return np.asarray(unit, float) @ np.asarray(root, float).T
