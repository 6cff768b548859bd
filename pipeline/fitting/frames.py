"""Each condition's frame (frequency shift and phase) in joint fits: shared by all conditions,
or one per condition when Rao's score test at the shared fit says the data need it.

Preprocessing aligns the conditions of a series, but its errors are not noise-like: on the
published 7 T dMRS set the app's alignment left the condition means up to 1.1 Hz and 12 deg
from the lowest b's (a bias that grows with b as the spectra change composition), and a joint
fit forced to one frame then gave the overlapping Glu/Gln/Tau signal to the strong MM at high
b (Gln decay error 0.14, Tau 0.09; 0.027 and 0.021 with the frames tested).
"""

from __future__ import annotations

import numpy as np
from scipy.special import chdtrc

from .uncertainty import sigma_from_residual

FRAME_KINDS = frozenset({"shift", "phase"})
"""The parameters that place a condition's spectrum in frequency and phase (its frame)."""


def default_sharing(joint_shared) -> frozenset:
    """Kinds shared by all conditions: ``joint_shared``, and whenever ``shift`` is shared the
    metabolites' own shifts (small offsets of each metabolite from its group) and the lipid
    group's shift: a nuisance group whose per-condition shifts, freed by the frame test,
    chase residual structure to their limits (in-vivo participant: 42 refit iterations, 7
    with it shared)."""
    shared = frozenset(joint_shared)
    return shared | {"own_shift", "lipid_shift"} if "shift" in shared else shared


def widen(narrow, wide, x: np.ndarray) -> np.ndarray:
    """``x`` of the ``narrow`` joint layout in the ``wide`` one (shared values copied per
    condition; the diffusion-model parameters keep their values)."""
    out = np.zeros(wide.lower.size)
    out[wide.theta_index] = x[narrow.theta_index]
    for a, b in zip(narrow.param_slices, wide.param_slices):
        if a is not None:
            out[b] = x[a]
    return np.clip(out, wide.lower, wide.upper)


ROUNDING = 1e-9
"""Smallest residual SD the frame test trusts, relative to the RMS of the data: noise-free
(simulated) data leave only rounding, which no test can weigh."""


def embedding(narrow, wide) -> np.ndarray:
    """(n_wide, n_narrow) 0/1 matrix taking a step of the ``narrow`` joint layout to the
    ``wide`` one: its columns are the restricted model's directions in the wide model."""
    out = np.zeros((wide.lower.size, narrow.lower.size))
    out[wide.theta_index.ravel(), narrow.theta_index.ravel()] = 1.0
    for a, b in zip(narrow.param_slices, wide.param_slices):
        if a is not None:
            out[np.arange(b.start, b.stop), np.arange(a.start, a.stop)] = 1.0
    return out


BOUND_SPAN = 2e-6
"""Distance to a bound, relative to the bound interval, within which a parameter counts as at
the bound (the solver keeps starting points 1e-6 of the interval inside)."""


def held_at_bounds(x: np.ndarray, gradient: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray) -> np.ndarray:
    """Parameters at a bound that the gradient ``J'r`` pushes outward (the solver holds them
    there): they cannot move, so they carry no score and no degree of freedom."""
    span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    return (((x <= lower + BOUND_SPAN * span) & (gradient > 0))
            | ((x >= upper - BOUND_SPAN * span) & (gradient < 0)))


RANK_TOL = 1e-8
"""Singular values below this fraction of the largest (unit-norm columns) count as zero: the
directions of empty groups (zero amplitude) and of copies the data cannot tell apart."""


def _explained(matrix: np.ndarray, residual: np.ndarray) -> tuple[float, int]:
    """Squared norm of ``residual`` in the column space of ``matrix`` and that space's rank."""
    norms = np.linalg.norm(matrix, axis=0)
    keep = norms > 0
    if not keep.any():
        return 0.0, 0
    u, s, _ = np.linalg.svd(matrix[:, keep] / norms[keep], full_matrices=False)
    basis = u[:, s > RANK_TOL * s[0]]
    return float(np.sum((basis.T @ residual) ** 2)), basis.shape[1]


def frame_score(residual: np.ndarray, jacobian: np.ndarray, restricted: np.ndarray,
                held: np.ndarray, variance: float) -> tuple[float, int]:
    """Score statistic and degrees of freedom of the directions the wide model adds:
    ``(|P_J r|^2 - |P_{J E} r|^2) / s^2`` with ``E`` = ``restricted`` (the restricted model's
    directions), the ``held`` columns removed and ``s^2`` = ``variance`` (the noise variance of
    one residual entry). At a converged restricted fit with no parameter at a bound this is the
    plain score statistic ``g' (J'J)^+ g / s^2``; taking out the restricted directions keeps a
    gradient that only a bound (or an unfinished fit) leaves from counting as evidence for the
    wider model. Degrees of freedom: the rank the wide model adds.
    """
    jac = jacobian * np.where(held, 0.0, 1.0)
    wide_ss, wide_rank = _explained(jac, residual)
    narrow_ss, narrow_rank = _explained(jac @ restricted, residual)
    return max(wide_ss - narrow_ss, 0.0) / variance, wide_rank - narrow_rank


def frame_test(solve, x_wide: np.ndarray, restricted: np.ndarray, lower: np.ndarray,
               upper: np.ndarray, variance: float, y_scaled: np.ndarray) -> dict:
    """Score test of one frame per condition at the shared fit ``x_wide`` (its values in the
    per-condition layout; ``solve``: that layout's residual/Jacobian; ``restricted``: the
    shared layout's directions, :func:`embedding`; ``lower``/``upper``: the wide bounds;
    ``variance``: the residual's noise variance, with the linear parameters counted):
    statistic, degrees of freedom and p-value, as ``fit.json`` reports them."""
    residual, jacobian = solve.residual(x_wide), solve.jacobian(x_wide)
    held = held_at_bounds(x_wide, jacobian.T @ residual, lower, upper)
    floor = ROUNDING ** 2 * float(np.mean(np.abs(y_scaled) ** 2))
    statistic, df = frame_score(residual, jacobian, restricted, held, max(variance, floor))
    p_value = float(chdtrc(df, statistic)) if df > 0 else 1.0  # chi-square survival
    return {"statistic": round(statistic, 2), "df": int(df), "p_value": p_value}


def residual_variance(obj, x: np.ndarray) -> float:
    """Noise variance of one real observation from the joint objective ``obj``'s residual at
    ``x``, with the degrees of freedom the CRLBs use (``JointObjective.n_fitted``)."""
    *_, coef = obj.evaluate(x)
    residual = obj.residual(x).reshape(obj.n_cond, obj.rows)[:, :obj.n_obs]
    return sigma_from_residual(residual.ravel(), obj.n_fitted(np.count_nonzero(coef),
                                                              x.size)) ** 2
