"""Each condition's frame (frequency shift and phase) in joint fits: shared by all conditions,
or one per condition when Rao's score test at the shared fit says the data need it.

Preprocessing aligns the conditions of a series, but its errors are not noise-like: on the
published 7 T dMRS set the app's alignment left the condition means up to 1.1 Hz and 12 deg
from the lowest b's (a bias that grows with b as the spectra change composition), and a joint
fit forced to one frame then gave the overlapping Glu/Gln/Tau signal to the strong MM at high
b (Gln decay error 0.14, Tau 0.09; 0.029 and 0.023 with the frames tested).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

FRAME_KINDS = frozenset({"shift", "phase"})
"""The parameters that place a condition's spectrum in frequency and phase (its frame)."""


def default_sharing(joint_shared) -> frozenset:
    """Kinds shared by all conditions: ``joint_shared``, and the metabolites' own shifts
    (small offsets of each metabolite from its group) whenever ``shift`` is shared."""
    shared = frozenset(joint_shared)
    return shared | {"own_shift"} if "shift" in shared else shared


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


def score_statistic(residual: np.ndarray, jacobian: np.ndarray, min_sd: float = 0.0) -> float:
    """Rao's score statistic of a least-squares fit at the optimum of a restricted model,
    with the residual and Jacobian of the wider one: ``g' (J'J)^+ g / s^2``, ``g = J'r``,
    ``s^2`` the residual variance (at least ``min_sd^2``). Chi-square with as many degrees of
    freedom as the wider model adds when the restriction holds (no refit of the wider model
    needed)."""
    gradient = jacobian.T @ residual
    step = np.linalg.lstsq(jacobian, residual, rcond=None)[0]
    dof = max(residual.size - jacobian.shape[1], 1)
    return float(gradient @ step) / max(float(residual @ residual) / dof, min_sd ** 2)


def frame_test(solve, x_wide: np.ndarray, df: int, y_scaled: np.ndarray) -> dict:
    """Score test of one frame per condition at the shared fit ``x_wide`` (its values in the
    per-condition layout; ``solve``: that layout's residual/Jacobian): statistic, degrees of
    freedom and p-value, as ``fit.json`` reports them."""
    statistic = score_statistic(solve.residual(x_wide), solve.jacobian(x_wide),
                                ROUNDING * np.sqrt(np.mean(np.abs(y_scaled) ** 2)))
    return {"statistic": round(statistic, 2), "df": int(df),
            "p_value": float(scipy.stats.chi2.sf(statistic, df))}
