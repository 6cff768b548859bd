"""Variable-projection solver shared by the single-spectrum and the joint fit.

The linear parameters are non-negative amplitudes (columns ``A``) and free baseline
coefficients (columns ``B``, with penalty rows). For fixed non-linear parameters the baseline
is eliminated exactly by projecting onto the orthogonal complement of the augmented ``B``
(one QR, computed once), and the amplitudes come from NNLS on the projected problem. The
Jacobian of the projected residual uses Kaufman's approximation with analytic model
derivatives.
"""

from __future__ import annotations

import copy

import numpy as np
from dataclasses import dataclass

from scipy import sparse
from scipy.linalg import cho_factor, cho_solve, lapack, qr
from scipy.optimize import nnls

_POTRF, _POTRS, _TRTRS = lapack.get_lapack_funcs(("potrf", "potrs", "trtrs"), (np.zeros(1),))
"""LAPACK's Cholesky factor/solve and triangular solve (float64), called directly in hot paths."""


class BaselineProjector:
    """Orthogonal projector off the span of the (augmented) free columns."""

    def __init__(self, free_columns: np.ndarray):
        self.free_columns = free_columns
        if free_columns.shape[1]:
            q, r = qr(free_columns, mode="economic")
            self.q, self.r = q, r
        else:
            self.q = np.zeros((free_columns.shape[0], 0))
            self.r = np.zeros((0, 0))

    def project(self, x: np.ndarray) -> np.ndarray:
        if not self.q.shape[1]:
            return x
        return x - self.q @ (self.q.T @ x)

    def coefficients(self, target: np.ndarray) -> np.ndarray:
        """Least-squares coefficients of the free columns for ``target``."""
        if not self.q.shape[1]:
            return np.zeros(0)
        return np.linalg.solve(self.r, self.q.T @ target)

    def hat_trace(self, n_obs: int) -> float:
        """Effective number of free parameters seen by the first ``n_obs`` rows."""
        return float(np.sum(self.q[:n_obs] ** 2))


class PairedProjector:
    """:class:`BaselineProjector` for real-stacked complex data whose real and imaginary parts
    have the same real baseline design and penalty.

    Rows are ``[real (W), imaginary (W), penalty real (p), penalty imaginary (p), others]``
    and the free columns ``[design for the real part (k), for the imaginary part (k)]``: a
    block-diagonal matrix, so its projector is that of ``M = [design; penalty]`` applied to
    each half; other rows (e.g. prior rows) meet no free column and are left as they are.
    The projection is ``x - M G^-1 M^T x`` with the small Gram matrix ``G = M^T M``
    (Cholesky, once) and ``M`` sparse: a B-spline row has 4 non-zeros and a penalty row 3, so
    this is several times cheaper than products with a dense orthonormal basis. ``G`` is well
    conditioned for these bases (condition number ~30 for the default spline, ~1e3 without
    stiffness); should its Cholesky fail, the dense QR (:class:`BaselineProjector`) is used.
    """

    def __init__(self, design: np.ndarray, penalty: np.ndarray):
        self.n_design, self.n_penalty = design.shape[0], penalty.shape[0]
        stacked = np.vstack([design, penalty])
        self._gram_parts = None
        self._use(sparse.csr_matrix(stacked), sparse.csr_matrix(stacked.T), stacked.T @ stacked)

    def _use(self, matrix: sparse.csr_matrix, matrix_t: sparse.csr_matrix,
             gram: np.ndarray) -> None:
        """Set the rows ``[design; penalty]`` (sparse, and transposed), the Cholesky factor of
        their Gram matrix ``gram`` (or the dense QR should it fail) and clear the cache."""
        self.matrix, self.matrix_t = matrix, matrix_t
        self.n_coef = matrix.shape[1]
        self.dense = None
        try:
            self.factor = cho_factor(gram, check_finite=False)
            if not np.all(np.isfinite(self.factor[0])):
                raise np.linalg.LinAlgError("non-finite Cholesky factor")
        except np.linalg.LinAlgError:
            self.dense = BaselineProjector(matrix.toarray())
        self._leverage_cache = None

    def with_penalty_scale(self, scale: float) -> "PairedProjector":
        """The projector of ``[design; scale * penalty]`` (this one's penalty rows times
        ``scale``), made from this one's sparse rows: their Gram matrix is
        ``D^T D + scale^2 P^T P``. The spline stiffness search (``baseline.stiffness_by_aicc``)
        re-solves at up to 8 stiffnesses per spectrum; rebuilding each projector from dense
        matrices was about half of its time."""
        if self._gram_parts is None:
            design_rows, penalty_rows = self.matrix[:self.n_design], self.matrix[self.n_design:]
            self._gram_parts = ((design_rows.T @ design_rows).toarray(),
                                (penalty_rows.T @ penalty_rows).toarray())
        design_gram, penalty_gram = self._gram_parts
        matrix = self.matrix.copy()
        matrix.data[matrix.indptr[self.n_design]:] *= scale
        other = copy.copy(self)
        other._gram_parts = (design_gram, scale ** 2 * penalty_gram)
        other._use(matrix, matrix.T.tocsr(), design_gram + scale ** 2 * penalty_gram)
        return other

    def _halves(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """``(W + p, 2 m)``: the real-part rows beside the imaginary-part rows."""
        w, p = self.n_design, self.n_penalty
        flat = x.reshape(x.shape[0], -1)
        real = np.concatenate([flat[:w], flat[2 * w:2 * w + p]])
        imag = np.concatenate([flat[w:2 * w], flat[2 * w + p:2 * w + 2 * p]])
        return np.hstack([real, imag]), flat.shape[1]

    def _solve(self, halves: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense.coefficients(halves)
        return _POTRS(self.factor[0], self.matrix_t @ halves, lower=self.factor[1])[0]

    def project(self, x: np.ndarray) -> np.ndarray:
        if not self.n_coef:
            return x
        halves, m = self._halves(x)
        fitted = self.matrix @ self._solve(halves)
        w, p = self.n_design, self.n_penalty
        out = x.reshape(x.shape[0], -1).copy()
        out[:w] -= fitted[:w, :m]
        out[w:2 * w] -= fitted[:w, m:]
        out[2 * w:2 * w + p] -= fitted[w:, :m]
        out[2 * w + p:2 * w + 2 * p] -= fitted[w:, m:]
        return out.reshape(x.shape)

    def coefficients(self, target: np.ndarray) -> np.ndarray:
        """Least-squares coefficients ``[real half, imaginary half]`` for a vector ``target``."""
        if not self.n_coef:
            return np.zeros(0)
        halves, _ = self._halves(target)
        return self._solve(halves).T.reshape(-1)

    def hat_trace(self, n_obs: int) -> float:
        """Effective number of free parameters seen by the first ``n_obs`` rows."""
        if not self.n_coef:
            return 0.0
        leverage = self._leverage()
        w, p = self.n_design, self.n_penalty
        total = 0.0
        for rows in (np.r_[0:w, 2 * w:2 * w + p], np.r_[w:2 * w, 2 * w + p:2 * w + 2 * p]):
            total += float(np.sum(leverage[rows < n_obs]))
        return total

    def _leverage(self) -> np.ndarray:
        """Diagonal of the hat matrix ``M G^-1 M^T`` of one half, (W + p,), computed once."""
        if self._leverage_cache is None:
            if self.dense is not None:
                self._leverage_cache = np.sum(self.dense.q ** 2, axis=1)
            else:
                stacked = self.matrix.toarray()
                solved = cho_solve(self.factor, stacked.T, check_finite=False)
                self._leverage_cache = np.sum(stacked * solved.T, axis=1)
        return self._leverage_cache


def nonneg_solve(a_perp: np.ndarray, y_perp: np.ndarray, active: np.ndarray | None = None,
                 gram: np.ndarray | None = None) -> np.ndarray:
    """Non-negative least squares ``min |a x - y|, x >= 0``, with exact fast paths.

    Candidate positive sets are tried on the small Gram system (``a^T a``, Cholesky): first
    ``active`` (e.g. the previous evaluation's, which rarely changes during a fit), then all
    columns. A candidate is accepted only when it meets the optimality (KKT) conditions of the
    full problem, so the answer is the exact NNLS solution; otherwise the positive set of
    ``scipy.optimize.nnls`` on the equivalent square system (:func:`_square_root_nnls`), and
    ``nnls`` on ``a_perp`` itself should that fail. ``gram``: ``a_perp^T a_perp`` when the
    caller has it.
    """
    if not np.all(np.isfinite(a_perp)):
        return np.full(a_perp.shape[1], np.nan)  # a non-finite cost: the solver rejects the step
    gram = a_perp.T @ a_perp if gram is None else gram
    rhs = a_perp.T @ y_perp
    tolerance = _kkt_tolerance(gram, float(np.linalg.norm(y_perp)))
    coef = _candidate_solution(gram, rhs, tolerance, active)
    if coef is None:
        coef = _square_root_nnls(gram, rhs, tolerance)
    if coef is None:
        coef, _ = nnls(a_perp, y_perp, maxiter=50 * a_perp.shape[1])
    return coef


def _square_root_nnls(gram: np.ndarray, rhs: np.ndarray, tolerance: np.ndarray):
    """The NNLS optimum found on the square system ``R x = R^-T rhs`` (``gram = R^T R``), which
    has the same solutions as the tall one but a few dozen rows instead of hundreds; its
    positive set is then solved and checked like a candidate (:func:`_kkt_solution`).
    None if the Gram matrix is singular or the check fails."""
    upper, info = _POTRF(gram, lower=False, clean=True)  # scipy.linalg.cholesky's routine
    if info != 0 or not np.all(np.isfinite(upper)):
        return None
    target, info = _TRTRS(upper, rhs, lower=False, trans=1)  # solve_triangular's, trans="T"
    if info != 0:
        return None
    x, _ = nnls(upper, target, maxiter=50 * rhs.size)
    positive = x > 0
    if not np.any(positive):
        return np.zeros(rhs.size) if np.all(rhs <= tolerance) else None
    return _kkt_solution(gram, rhs, positive, tolerance)


def nonneg_solve_normal(gram: np.ndarray, rhs: np.ndarray, y_norm: float,
                        active: np.ndarray | None, dense) -> np.ndarray:
    """:func:`nonneg_solve` from the normal equations (``gram = a^T a``, ``rhs = a^T y``,
    ``y_norm = |y|``), for a tall ``a`` with many columns whose Gram matrix the caller forms
    cheaply (the joint fit's blocks). When no candidate set is optimal, the positive set is
    searched on the Gram system (for 240 columns and 15,000 rows, 20 x faster than
    ``scipy.optimize.nnls``, which is slower for a few dozen columns); ``dense()`` returns
    ``(a, y)`` for ``nnls`` should that search fail."""
    tolerance = _kkt_tolerance(gram, y_norm)
    coef = _candidate_solution(gram, rhs, tolerance, active)
    if coef is None:
        positive = _active_set_search(gram, rhs, tolerance, active)
        coef = None if positive is None else _kkt_solution(gram, rhs, positive, tolerance)
    if coef is None:
        a_perp, y_perp = dense()
        coef, _ = nnls(a_perp, y_perp, maxiter=50 * a_perp.shape[1])
    return coef


def _kkt_tolerance(gram: np.ndarray, y_norm: float) -> np.ndarray:
    return 1e-10 * np.sqrt(np.diag(gram)) * y_norm


def _candidate_solution(gram, rhs, tolerance, active):
    """The solution on ``active`` or on all columns when one of them is optimal, else None."""
    candidates = [np.ones(rhs.size, dtype=bool)]
    if active is not None and np.any(active) and not np.all(active):
        candidates.insert(0, np.asarray(active, dtype=bool))
    for candidate in candidates:
        coef = _kkt_solution(gram, rhs, candidate, tolerance)
        if coef is not None:
            return coef
    return None


def _spd_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """``matrix^-1 rhs`` by Cholesky for a symmetric positive definite ``matrix``, None when it
    is not. The LAPACK routines ``cho_factor``/``cho_solve`` call, without their Python
    overhead (several times the arithmetic for the few dozen columns of a fit, and this runs
    a hundred times per fit); the same numbers."""
    if not matrix.size:
        return None
    factor, info = _POTRF(matrix, lower=False, clean=False)
    if info != 0:
        return None
    solution, info = _POTRS(factor, rhs, lower=False)
    return solution if info == 0 else None


def _principal(gram: np.ndarray, positive: np.ndarray) -> np.ndarray:
    index = np.flatnonzero(positive)
    return gram[index[:, None], index]


def _kkt_solution(gram: np.ndarray, rhs: np.ndarray, positive: np.ndarray,
                  tolerance: np.ndarray):
    """Least squares on the ``positive`` columns if it is the NNLS optimum, else None."""
    sub = _spd_solve(_principal(gram, positive), rhs[positive])
    if sub is None or not np.all(sub > 0):
        return None
    coef = np.zeros(rhs.size)
    coef[positive] = sub
    gradient = rhs - gram @ coef
    return coef if np.all(gradient[~positive] <= tolerance[~positive]) else None


def _active_set_search(gram: np.ndarray, rhs: np.ndarray, tolerance: np.ndarray,
                       guess: np.ndarray | None) -> np.ndarray | None:
    """Positive set of the NNLS optimum by the Lawson-Hanson active-set method on the normal
    equations (Bro and de Jong's fast NNLS), started from ``guess``: each step costs a
    Cholesky of the positive block instead of work on every row. None if it does not
    settle; the caller checks the result against the KKT conditions either way."""
    n = rhs.size
    positive = np.zeros(n, dtype=bool) if guess is None else np.asarray(guess, bool).copy()
    x = np.zeros(n)
    for _ in range(3 * n + 10):
        while np.any(positive):
            trial = np.zeros(n)
            sub = _spd_solve(_principal(gram, positive), rhs[positive])
            if sub is None:
                return None
            trial[positive] = sub
            negative = positive & (trial <= 0)
            if not np.any(negative):
                x = trial
                break
            if not np.any(x[positive] > 0):
                # still on the guess (x = 0): drop its columns whose coefficient is not
                # positive. A step from x = 0 has length 0 and would drop the whole guess,
                # which the search then rebuilt one column at a time (in a 10-condition
                # joint fit, ~200 Cholesky factorisations per solve)
                positive &= ~negative
                continue
            alpha = np.min(x[negative] / (x[negative] - trial[negative]))
            x = x + alpha * (trial - x)
            positive &= x > 0
            x[~positive] = 0.0
        gradient = rhs - gram @ x
        gradient[positive] = -np.inf
        j = int(np.argmax(gradient))
        if gradient[j] <= tolerance[j]:
            return positive
        positive[j] = True
    return None


NORMAL_EQUATIONS_MIN_PIVOT_RATIO = 1e-5
"""Smallest Cholesky pivot of a Gram matrix, relative to its largest, for which
:func:`complex_least_squares` keeps the normal equations, whose error grows with the square of
the condition number. Measured on random complex 300 x 20 matrices: up to a condition number
of 1e6 the guard keeps them and they differ from ``lstsq`` by at most 7e-6 of the solution; at
1e7-1e8, where Cholesky still succeeds but was off by 3e-2 to 0.9, it hands over to ``lstsq``."""


def complex_least_squares(matrix: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``argmin |matrix z - target|`` from the normal equations (Cholesky of the small Gram
    matrix: a few dozen columns, a few hundred rows, several times cheaper than an SVD-based
    solver), or by ``lstsq`` when the Gram matrix is not positive definite or is too ill
    conditioned for them (:data:`NORMAL_EQUATIONS_MIN_PIVOT_RATIO`)."""
    gram = matrix.conj().T @ matrix
    rhs = matrix.conj().T @ target
    try:
        factor, lower = cho_factor(gram, check_finite=False)
        pivots = np.abs(np.diag(factor))
        if pivots.min() >= NORMAL_EQUATIONS_MIN_PIVOT_RATIO * pivots.max():
            z = cho_solve((factor, lower), rhs, check_finite=False)
            if np.all(np.isfinite(z)):
                return z
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(matrix, target, rcond=None)[0]


def kaufman_jacobian(d_perp: np.ndarray, a_perp: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Jacobian of the projected residual: ``-(I - P_active) d_perp`` (Kaufman)."""
    active = coef > 0
    if np.any(active):
        q, _ = np.linalg.qr(a_perp[:, active])
        d_perp = d_perp - q @ (q.T @ d_perp)
    return -d_perp


@dataclass
class SolverResult:
    """Outcome of :func:`levenberg_marquardt` (field names follow scipy's OptimizeResult)."""

    x: np.ndarray
    cost: float
    nfev: int
    njev: int
    status: int          # 1 converged (cost), 2 converged (step), 3 no further decrease, 0 max
    message: str


CONVERGED_CHI2_DECREASE = 0.01
"""A near Gauss-Newton step that lowers the chi-square by less than this has converged: the
parameters then move by at most about ``sqrt(0.01)`` = 0.1 of their standard errors."""


def levenberg_marquardt(residual, jacobian, x0, lower, upper, max_iterations: int,
                        ftol: float | None = None, xtol: float = 1e-8) -> SolverResult:
    """Projected Levenberg-Marquardt with Marquardt (diagonal) scaling and box bounds.

    Works on the normal equations ``J^T J`` (a few dozen parameters), so each iteration costs
    two small matrix products whatever the number of residuals; steps are clipped to the box and
    parameters held at a bound by the gradient are frozen for the step. Stops when a near
    Gauss-Newton step lowers the cost by less than ``ftol`` (relative). By default ``ftol`` is
    :data:`CONVERGED_CHI2_DECREASE` over the number of residuals: a cost of ``m`` noise-weighted
    residuals is about ``m`` chi-square units, so that is a chi-square decrease of about 0.01,
    statistically converged whatever the fit's size (1e-5 for one spectrum of ~1000 residuals,
    1e-6 for a 10-condition joint fit).
    """
    x = _interior(np.asarray(x0, dtype=float), lower, upper)
    r = residual(x)
    cost = float(r @ r)
    if not np.isfinite(cost):
        raise ValueError("fit: the model is not finite at the starting parameters")
    if ftol is None:
        ftol = CONVERGED_CHI2_DECREASE / max(r.size, 1)
    damping, nfev, njev = 1e-3, 1, 0
    status, message = 0, "maximum number of iterations reached"
    for _ in range(max_iterations):
        jac = jacobian(x)
        njev += 1
        grad = jac.T @ r
        hess = jac.T @ jac
        scale = np.diag(hess).copy()
        scale[scale <= 0] = 1.0
        free = ~(((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0)))
        accepted = False
        while damping < 1e12:
            step = np.zeros_like(x)
            step[free] = _damped_step(hess[np.ix_(free, free)], grad[free],
                                      damping * scale[free])
            x_new = np.clip(x + step, lower, upper)
            r_new = residual(x_new)
            nfev += 1
            with np.errstate(over="ignore", invalid="ignore"):
                cost_new = float(r_new @ r_new)
            if cost_new < cost:
                damping = max(damping / 3.0, 1e-12)
                accepted = True
                break
            damping *= 4.0
        if not accepted:
            status, message = 3, "no further decrease of the cost"
            break
        moved = np.sqrt(np.sum(scale * (x_new - x) ** 2))
        size = np.sqrt(np.sum(scale * x ** 2))
        decrease = (cost - cost_new) / max(cost, 1e-300)
        x, r, cost = x_new, r_new, cost_new
        if decrease < ftol and damping < 1.0:
            status, message = 1, "relative cost decrease below ftol"
            break
        if moved <= xtol * (size + xtol):
            status, message = 2, "step below xtol"
            break
    return SolverResult(x, cost, nfev, njev, status, message)


def _damped_step(hess: np.ndarray, grad: np.ndarray, damping_diag: np.ndarray) -> np.ndarray:
    matrix = hess + np.diag(damping_diag)
    if not np.all(np.isfinite(matrix)):  # as cho_factor's finiteness check
        raise ValueError("array must not contain infs or NaNs")
    step = _spd_solve(matrix, grad)
    if step is not None:
        return -step
    return -np.linalg.lstsq(matrix, grad, rcond=None)[0]


def _interior(theta, lower, upper):
    span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    margin = 1e-6 * span
    return np.clip(theta, lower + margin, upper - margin)
