"""Completely-monotone (CM) decays: free per-condition amplitudes projected onto the cone of
``S(b) = sum_k w_k exp(-b D_k)``, ``w_k >= 0``.

Every physical dMRS decay of one compartment mixture is CM in b (any distribution of ADCs,
powder-averaged sticks, restricted diffusion in the Gaussian-phase approximation at fixed
timing), so the cone forces no parametric shape; it removes the part of the noise that breaks
monotonicity and convexity. At fixed non-linear parameters the cost is quadratic in the
linear coefficients ``a`` with Hessian ``G`` (the joint fit: the Gram matrix of its columns
with the baselines projected out), so the constrained optimum is the projection of the
unconstrained solution onto the cone in the metric ``G``: ``min_u (T u - a)^T G (T u - a)``, ``u >= 0``,
where ``T`` maps dictionary weights to coefficients (identity columns for coefficients that
are not constrained). Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cholesky
from scipy.optimize import nnls

from .uncertainty import sum_weights

MIN_DISTINCT_B = 3
DICTIONARY_D_MIN_UM2_MS = 1e-3
DICTIONARY_D_MAX_UM2_MS = 1.0
"""Fastest component allowed: about the free diffusivity in water at 37 C of the metabolites
(NAA ~0.7-0.8, Cr, Ins, Glu ~0.8-1.0 um^2/ms; tissue ADCs are 0.1-0.3). Measured on the
independent dMRS set (benchmarks/bench_dmrs_modes.py, 12 participants per protocol), 1.0
against 3.0 um^2/ms: 3 T tNAA/tCr/tCho/Ins decay errors 0.030/0.042/0.068/0.079 against
0.038/0.054/0.078/0.101, at 7 T all within 0.004 (tCr 0.041 vs 0.045); a larger cap lets
a fast component absorb an S(0) offset. The published set does not change (<= 0.0005)."""
CAP_ADC_FRACTION = 0.95
"""A constrained decay whose mono-exponential ADC is at least this fraction of
``DICTIONARY_D_MAX_UM2_MS`` is held at the cap: every atom decays at most that fast, so an ADC
near it means the weight sits on the fastest atoms and a faster true decay was cut to the cap
(D = 1.2 um^2/ms, phantom-like, came out as ADC = 1.0000 for every metabolite, applicable,
without a word)."""
CAP_FLAG = (f"decay at the cap of the completely-monotone constraint (D <= "
            f"{DICTIONARY_D_MAX_UM2_MS:g} um^2/ms)")
"""The ``fit_flags`` text of an amplitude row whose decay is at the cap; the diffusion stage
reads it to mark that metabolite's diffusion rows not applicable."""
CAP_REMEDY = ('a faster decay is cut to the cap; set [fitting] joint_decay_constraint = "none" '
              "to fit it")
DICTIONARY_SIZE = 100
"""Grid chosen by measurement: a mono-exponential between grid points is not in the cone of
its neighbours; for D = 0.003-1 um^2/ms and b up to 10 or 50 ms/um^2 the largest change of a
noise-free mono-exponential S(b)/S(0) is 4.5e-4 with 60 values, 1.6e-4 with 100, 7e-5 with
150 (quadratic in the spacing; 2.4e-3 with 30 values up to 3 um^2/ms); the published set's
errors are the same for 30-200 values; 100 add about 0.1 s to a 9-condition fit."""


def diffusivity_grid_um2_ms(n: int = DICTIONARY_SIZE, d_min_um2_ms: float = DICTIONARY_D_MIN_UM2_MS,
                            d_max_um2_ms: float = DICTIONARY_D_MAX_UM2_MS) -> np.ndarray:
    """D = 0 (a non-decaying part: the S(b) -> const tail of sticks) and ``n`` log-spaced
    diffusivities in um^2/ms."""
    return np.concatenate([[0.0], np.geomspace(d_min_um2_ms, d_max_um2_ms, n)])


def decay_dictionary(b_ms_um2: np.ndarray, d_um2_ms: np.ndarray) -> np.ndarray:
    """(n_b, n_d) atoms ``exp(-b D)``."""
    return np.exp(-np.outer(np.asarray(b_ms_um2, float), np.asarray(d_um2_ms, float)))


def applies(b_ms_um2: np.ndarray) -> bool:
    """True when a series has >= ``MIN_DISTINCT_B`` b-values, none repeated: with fewer
    points monotonicity constrains (almost) nothing, and repeated b-values (several gradient
    directions, not powder-averaged) may differ by anisotropy, which one decay cannot hold."""
    b = np.round(np.asarray(b_ms_um2, float), 9)
    return np.unique(b).size >= MIN_DISTINCT_B and np.unique(b).size == b.size


def series_adc_um2_ms(b_ms_um2, amplitudes) -> float:
    """Mono-exponential ADC (um^2/ms) of a decay: minus the least-squares slope of log amplitude
    on b (ms/um^2); NaN when an amplitude is not positive or the b-values do not differ."""
    b, a = np.asarray(b_ms_um2, float), np.asarray(amplitudes, float)
    if a.size < 2 or np.ptp(b) <= 0 or not np.all(a > 0):
        return float("nan")
    return float(-np.polyfit(b, np.log(a), 1)[0])


def at_cap(b_ms_um2, amplitudes, cap_um2_ms: float = DICTIONARY_D_MAX_UM2_MS) -> bool:
    """Whether a constrained decay is as fast as the dictionary allows: its mono-exponential
    ADC is within ``1 - CAP_ADC_FRACTION`` of the cap."""
    adc = series_adc_um2_ms(b_ms_um2, amplitudes)
    return bool(np.isfinite(adc) and adc >= CAP_ADC_FRACTION * cap_um2_ms)


def decays_at_cap(b_ms_um2, names: list, constrained: list, amplitudes: np.ndarray,
                  series: list | None = None) -> list:
    """Names whose constrained decay, along any of ``series`` (condition indices of each decay;
    None: all conditions), is at the cap of the completely-monotone dictionary
    (``monotone.at_cap``): constrained metabolites and the sums (tNAA, ...) with a constrained
    member; ``amplitudes`` (n_conditions, n_metabolites) as fitted."""
    b = np.asarray(b_ms_um2, float)
    rows = series or [np.arange(b.size)]
    out = [n for n, c, values in zip(names, constrained, amplitudes.T)
           if c and any_at_cap(b, values, rows)]
    for total, w in sum_weights(list(names)).items():
        if np.any(w[np.asarray(constrained, bool)]) and any_at_cap(b, amplitudes @ w, rows):
            out.append(total)
    return out


def any_at_cap(b_ms_um2: np.ndarray, values: np.ndarray, series: list) -> bool:
    """Whether the decay of ``values`` along any of ``series`` is at the cap (:func:`at_cap`)."""
    return any(at_cap(b_ms_um2[s], values[s]) for s in series)


def decay_series(b_ms_um2, direction_labels=None) -> tuple[list | None, str]:
    """Condition indices of each decay the constraint holds (None when it cannot hold) and
    why not ('' when it holds).

    Without ``direction_labels`` one decay over all conditions. With them (per condition: -1
    for b ~ 0, else the index of its gradient direction) one decay per direction, each with the
    b ~ 0 condition when there is one: signals along different directions of an anisotropic
    voxel are different decays, each completely monotone (a tensor voxel, FA 0.707, came out
    FA 0.002 when they were pooled into one). It cannot hold when a decay has too few or
    repeated b-values (:func:`applies`), when more than one b ~ 0 condition would have to be
    shared, or when a diffusion-weighted condition has no direction (group -2)."""
    b = np.asarray(b_ms_um2, float)
    if direction_labels is None:
        series = [np.arange(b.size)]
    else:
        groups = np.asarray(direction_labels, int)
        zero = np.flatnonzero(groups == -1)
        if np.any(groups < -1):
            return None, "a diffusion-weighted condition has no gradient direction"
        if zero.size > 1:
            return None, f"{zero.size} b ~ 0 conditions to share between the directions"
        series = [np.concatenate([zero, np.flatnonzero(groups == g)])
                  for g in np.unique(groups[groups >= 0])]
    short = [s for s in series if not applies(b[s])]
    if short:
        where = " along a gradient direction" if len(series) > 1 else ""
        return None, (f"needs >= {MIN_DISTINCT_B} distinct, unrepeated b-values per "
                      f"decay{where} (b = {', '.join(f'{v:g}' for v in b[short[0]])} ms/um^2)")
    return series, ""


def series_constraint_map(linear_index: np.ndarray, constrained: np.ndarray, b_ms_um2,
                          series: list, d_grid_um2_ms: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """``T`` (n_linear, n_weights), which maps dictionary weights ``u >= 0`` to coefficients:
    each constrained row ``m`` of ``linear_index`` (n_metab, n_cond; the coefficient of
    metabolite m at condition c) gets one dictionary block per decay of ``series``; every
    coefficient not used by a constrained row keeps an identity column (free, non-negative).
    Also the equality rows ``E`` (``E u = 0``) that give the decays of one metabolite one S(0)
    (the sum of each block's weights: S(0) does not depend on the gradient direction). A
    condition in several series (b ~ 0) is the mean of their blocks' values there."""
    b = np.asarray(b_ms_um2, float)
    n_linear = int(linear_index.max()) + 1
    counts = np.bincount(np.concatenate(series), minlength=b.size).astype(float)
    blocks, equalities, used = [], [], np.zeros(n_linear, dtype=bool)
    for m in np.flatnonzero(constrained):
        first = len(blocks)
        for rows in series:
            block = np.zeros((n_linear, d_grid_um2_ms.size))
            block[linear_index[m, rows]] = (decay_dictionary(b[rows], d_grid_um2_ms)
                                            / counts[rows, None])
            blocks.append(block)
        equalities += [(first, first + k) for k in range(1, len(series))]
        used[linear_index[m]] = True
    transform = np.hstack(blocks + [np.eye(n_linear)[:, ~used]])
    rows = np.zeros((len(equalities), transform.shape[1]))
    width = d_grid_um2_ms.size
    for i, (first, other) in enumerate(equalities):
        rows[i, first * width:(first + 1) * width] = 1.0
        rows[i, other * width:(other + 1) * width] = -1.0
    return transform, rows


def _metric_factor(gram: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor ``R`` (G = R^T R); a relative ridge of 1e-12 x the mean diagonal
    if ``G`` is only semi-definite (a column that vanishes in the window)."""
    try:
        return cholesky(gram, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        ridge = 1e-12 * np.mean(np.diag(gram)) * np.eye(gram.shape[0])
        return cholesky(gram + ridge, lower=False, check_finite=False)


@dataclass
class ConeProjection:
    """Result of :func:`project_onto_cone`: the constrained coefficients, the dictionary and
    identity weights, which weights are active, and the linear map ``P`` (n_linear, n_linear)
    with ``coefficients = P @ free`` on that active face (for covariance propagation)."""

    coefficients: np.ndarray
    weights: np.ndarray
    linear_map: np.ndarray
    n_parameters: int  # free parameters: active weights less independent equality rows

    @property
    def active(self) -> np.ndarray:
        return self.weights > 0


def project_onto_cone(gram: np.ndarray, free: np.ndarray, transform: np.ndarray,
                      equalities: np.ndarray | None = None) -> ConeProjection:
    """``T u`` with ``u = argmin_{u >= 0} (T u - a)^T G (T u - a)`` for ``a = free``.

    Solved as the NNLS problem ``min |R T u - R a|`` with ``G = R^T R`` (Lawson-Hanson with
    QR, not the normal equations: neighbouring exponentials are nearly collinear). On the
    active face ``A`` the solution is linear in ``a``:
    ``P = T_A (R T_A)^+ R`` (= ``T_A (T_A^T G T_A)^-1 T_A^T G`` when that inverse exists).
    """
    r = _metric_factor(np.asarray(gram, float))
    return _solve_on_cone(r, r @ np.asarray(free, float), transform, equalities)


def project_subset(gram: np.ndarray, rhs: np.ndarray, coefficients: np.ndarray,
                   subset: np.ndarray, transform: np.ndarray,
                   equalities: np.ndarray | None = None) -> ConeProjection:
    """Least squares ``min |y - A c|`` (``gram = A^T A``, ``rhs = A^T y``) over the
    coefficients ``subset`` restricted to ``c[subset] = T u``, ``u >= 0`` (``transform`` has
    one row per subset entry), with every other coefficient held at ``coefficients``.
    The result is over all coefficients; its ``linear_map`` is the identity outside
    ``subset`` and the cone projection's map from the subset's least-squares estimate inside.
    """
    subset = np.asarray(subset, int)
    held = np.setdiff1d(np.arange(coefficients.size), subset)
    g_ss = gram[np.ix_(subset, subset)]
    target = np.linalg.lstsq(g_ss, rhs[subset] - gram[np.ix_(subset, held)] @ coefficients[held],
                             rcond=None)[0]
    part = project_onto_cone(g_ss, target, transform, equalities)
    out = np.array(coefficients, float)
    out[subset] = part.coefficients
    linear_map = np.eye(out.size)
    linear_map[np.ix_(subset, subset)] = part.linear_map
    weights = np.concatenate([part.weights, out[held]])
    return ConeProjection(out, weights, linear_map,
                          part.n_parameters + int(np.count_nonzero(out[held])))


EQUALITY_WEIGHT = 1e4
"""Weight of the equality rows against the largest entry of the NNLS design: a violation of
the shared S(0) costs 1e8 x more than the same change of a data residual."""


def _solve_on_cone(r: np.ndarray, target: np.ndarray, transform: np.ndarray,
                   equalities: np.ndarray | None = None) -> ConeProjection:
    design = r @ transform
    if equalities is None:
        equalities = np.zeros((0, transform.shape[1]))
    weight = EQUALITY_WEIGHT * float(np.max(np.abs(design)))
    design = np.vstack([design, weight * equalities])
    target = np.concatenate([target, np.zeros(len(equalities))])
    weights, _ = nnls(design, target, maxiter=50 * design.shape[1])
    active = weights > 0
    n_parameters = int(active.sum())
    if len(equalities) and np.any(active):
        n_parameters -= int(np.linalg.matrix_rank(equalities[:, active]))
    if np.any(active):
        linear_map = (transform[:, active] @ np.linalg.pinv(design[:, active])[:, :r.shape[0]]
                      @ r)
    else:
        linear_map = np.zeros((transform.shape[0], transform.shape[0]))
    return ConeProjection(transform @ weights, weights, linear_map, n_parameters)

