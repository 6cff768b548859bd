"""Weighted, bounded, multi-start least-squares fitting of diffusion models with uncertainties.

The data are amplitudes (or normalised amplitudes) per b-value with their standard deviations
(e.g. the CRLBs of the spectral fit). The fitted vector is the model parameters plus a signal
scale S0 (``fit_s0=True``), because the b = 0 amplitude is itself noisy. Uncertainties come from
the Jacobian (covariance at the optimum; when a parameter sits at a fit bound, from the profile
likelihood with the bounds, ``profile_standard_errors``) and, optionally, from a residual bootstrap or a
parametric Monte Carlo (median and interquartile range of refits). Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, least_squares

from pipeline.diffusion.applicability import assess, at_either_bound, near_bound
from pipeline.diffusion.batch import (BatchFit, batch_residual_sd,  # noqa: F401 (re-exported)
                                      fit_model_batch)
from pipeline.diffusion.correlated import (correlated_noise, correlation_of, noise_root,
                                           sandwich, validated_covariance)

UNCERTAINTY_METHODS = ("jacobian", "bootstrap", "montecarlo")


@dataclass
class DiffusionFit:
    """Result of fitting one model to one decay (b in ms/um^2, diffusivities in um^2/ms)."""

    model: object
    params: np.ndarray
    std_errors: np.ndarray
    s0: float
    s0_std_error: float
    covariance: np.ndarray
    chi2: float
    n_points: int
    aic: float
    bic: float
    b_used_ms_um2: np.ndarray
    sigma_known: bool
    success: bool
    resampled: dict = field(default_factory=dict)
    applicable: bool = True
    note: str = ""
    reason: str = ""
    parameter_applicability: dict = field(default_factory=dict)
    sigma_normalised: float | None = None
    bound_profile: tuple = ()  # parameters at an active bound: SEs from the bounded profile
    lack_of_fit_p: float | None = None  # chi^2 test against the known noise (None: unknown)
    dof: int = 0  # points minus free parameters (S0 counted when fitted)

    @property
    def parameter_names(self):
        return self.model.parameter_names

    @property
    def n_free(self) -> int:
        return self.params.size + 1

    def param(self, name: str) -> float:
        return float(self.params[list(self.model.parameter_names).index(name)])

    def predict(self, b_ms_um2) -> np.ndarray:
        """Fitted signal on the input scale: S0 * model(b)."""
        return self.s0 * self.model.predict(np.atleast_1d(np.asarray(b_ms_um2, float)), self.params)


def _validated(b_ms_um2, signal, sigma):
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    s = np.atleast_1d(np.asarray(signal, float))
    if b.shape != s.shape or b.ndim != 1:
        raise ValueError(f"b-values {b.shape} and signal {s.shape} must be 1-D of equal length")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s))):
        raise ValueError("b-values and signal must be finite")
    if np.any(b < 0):
        raise ValueError("b-values must be non-negative (ms/um^2)")
    if sigma is None:
        return b, s, None
    sg = np.broadcast_to(np.asarray(sigma, float), b.shape).copy()
    if not np.all(np.isfinite(sg)) or np.any(sg <= 0):
        raise ValueError("sigma (e.g. the amplitudes' CRLBs) must be positive and finite")
    return b, s, sg


def _select_range(model, b, s, sg, shell_index=None):
    """Points within the model's b-range; with ``shell_index`` whole shells (by mean b) are kept.
    Returns the kept points' (b, signal, sigma) and their mask."""
    if shell_index is None:
        keep = model.in_b_range(b)
    else:
        labels = np.asarray(shell_index)
        shells = np.unique(labels)
        kept = dict(zip(shells, model.in_b_range([b[labels == k].mean() for k in shells])))
        keep = np.array([kept[k] for k in labels], bool)
    return b[keep], s[keep], (None if sg is None else sg[keep]), keep


def _linear_s0(model_signal, s, w):
    den = np.sum(w**2 * model_signal**2)
    return float(np.sum(w**2 * model_signal * s) / den) if den > 0 else float(np.max(s))


def _remembering_predict(model, b):
    """``model.predict(b, theta)`` that keeps its last value: least_squares asks for the
    Jacobian at the point whose residual it has just evaluated."""
    last = {}

    def predicted(theta):
        key = theta.tobytes()
        if last.get("key") != key:
            last["key"], last["value"] = key, model.predict(b, theta)
        return last["value"]

    return predicted


def _bounded_refit(model, b, s, w, x, lower, upper, free):
    """Weighted least squares of S0 * model(b) to ``s`` over the entries ``free`` (bool mask
    of params + S0) of ``x`` within ``lower``/``upper``, the others held at their ``x`` values.
    Returns (scipy result, full optimum vector)."""
    free = np.asarray(free, bool)
    predicted = _remembering_predict(model, b)

    def full(z):
        v = x.copy()
        v[free] = z
        return v

    def residual(z):
        v = full(z)
        return w * (v[-1] * predicted(v[:-1]) - s)

    def jac(z):
        v = full(z)
        jm = np.column_stack([v[-1] * model.jacobian(b, v[:-1]), predicted(v[:-1])])
        return w[:, None] * (jm if free.all() else jm[:, free])

    lo, hi = lower[free], upper[free]
    z0 = np.clip(x[free], lo + 1e-12 * (hi - lo), hi - 1e-12 * (hi - lo))
    result = least_squares(residual, z0, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac",
                           xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=200)
    return result, full(result.x)


def _solve(model, b, s, w, x0, s0_bounds):
    """Fit of every parameter and S0 from ``x0`` within the model's bounds and ``s0_bounds``."""
    lower = np.append(model.bounds[0], s0_bounds[0])
    upper = np.append(model.bounds[1], s0_bounds[1])
    return _bounded_refit(model, b, s, w, np.asarray(x0, float), lower, upper,
                          np.ones(lower.size, bool))[0]


def _multistart(model, b, s, w, n_starts, s0_bounds):
    starts = []
    for p in model.initial_grid():
        with np.errstate(over="ignore", invalid="ignore"):  # e.g. kurtosis grid points at high b
            m = model.predict(b, p)
            s0 = _linear_s0(m, s, w)
            cost = np.sum((w * (s0 * m - s)) ** 2)
        if np.isfinite(cost):
            starts.append((cost, np.append(p, s0)))
    starts.sort(key=lambda item: item[0])
    best = None
    for _, x0 in starts[:n_starts]:
        result = _solve(model, b, s, w, x0, s0_bounds)
        if best is None or result.cost < best.cost:
            best = result
    return best


DEAD_COLUMN_RELATIVE = 1e-6
"""A parameter whose sensitivity over its range, ``||dS/d theta_k|| (upper_k - lower_k)``, is
below this fraction of the largest parameter's has no finite variance (e.g. a radius far below
the resolution limit, where the signal varies as R^4)."""


def _covariance(j, scale, ranges=None):
    """Parameter covariance (J^T J)^-1 * scale; NaN for parameters the data do not constrain.

    A parameter whose sensitivity ``||J_k|| range_k`` (``ranges``: the widths of the
    parameters' bounds; without them the column norm alone) is numerically zero against the
    largest has no finite variance; a pseudo-inverse would report 0. Both the test and the
    inverse are free of the parameters' units and of the data's scale (the S0 bound scales with
    the data; the columns are equilibrated before inverting). Before 2026-12-07 the column norms
    were compared as they were, so data scaled by 1e5 (integer scanner data) changed the ADC SE
    from 0.0118 to 0.0091, and data scaled by 1e-9 got none.
    """
    j = np.asarray(j, float)
    norms = np.linalg.norm(j, axis=0)
    sensitivity = norms if ranges is None else norms * np.asarray(ranges, float)[:j.shape[1]]
    live = (sensitivity > DEAD_COLUMN_RELATIVE * float(sensitivity.max())) & (norms > 0)
    cov = np.full((j.shape[1], j.shape[1]), np.nan)
    if not live.any():
        return cov
    unit = j[:, live] / norms[live]
    try:
        inverse = np.linalg.pinv(unit.T @ unit)
    except np.linalg.LinAlgError:
        return cov
    cov[np.ix_(live, live)] = inverse / np.outer(norms[live], norms[live]) * scale
    return cov


def fisher_covariance(jac, noise_sd=1.0) -> tuple[np.ndarray, np.ndarray]:
    """Covariance noise_sd^2 (J^T J)^-1 of (stacks of) Jacobians ``jac`` (..., n, k), from the
    singular values of J (not a pseudo-inverse of J^T J, which squares the condition number
    and silently drops weak directions). Returns (covariance (..., k, k), rank (...)): a
    rank-deficient J (singular value <= max(n, k) eps s_max, numpy's ``matrix_rank`` rule)
    leaves a direction the data do not constrain, so its covariance is NaN."""
    jac = np.asarray(jac, float)
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    tol = sv[..., :1] * max(jac.shape[-2:]) * np.finfo(float).eps
    rank = np.sum(sv > tol, axis=-1)
    inv_sv2 = 1.0 / np.where(sv > tol, sv, np.nan) ** 2
    cov = np.einsum("...ji,...j,...jl->...il", vt, inv_sv2, vt)
    return cov * np.asarray(noise_sd, float)[..., None, None] ** 2, rank


def parameter_units(n_params: int, signal_scale: float) -> np.ndarray:
    """Scale of each fitted value (the model's parameters, then S0) for the at-a-bound tests:
    1 for the model's parameters (physical units), the data's largest value for S0, so that
    ``near_bound``'s absolute tolerance does not depend on the data's scale (before 2026-12-07
    an S0 of 9e-9 was 'at' its bound 0: the ADC SE came from a profile, 0.0118147 against the
    Fisher bound 0.0117964 at every other scale)."""
    return np.append(np.ones(n_params), signal_scale)


def active_bounds(jac, residual, x, lower, upper, unit=None) -> np.ndarray:
    """Parameters held by a fit bound: at a bound, with the unconstrained Gauss-Newton step
    -(J^T J)^-1 J^T r pointing out of the box (weighted ``jac`` (n, k) and ``residual`` (n,)).
    ``unit``: each value's scale for the at-a-bound test (:func:`parameter_units`)."""
    x = np.asarray(x, float)
    cov = _covariance(jac, 1.0, np.asarray(upper, float) - np.asarray(lower, float))
    live = np.isfinite(np.diag(cov))
    active = np.zeros(x.size, bool)
    if not live.any():
        return active
    step = -cov[np.ix_(live, live)] @ (jac[:, live].T @ residual)
    u = np.ones(x.size) if unit is None else np.asarray(unit, float)[:x.size]
    value, lo, hi = (np.asarray(v, float)[live] / u[live] for v in (x, lower, upper))
    gain = np.where(near_bound(value, lo), 1.0, np.where(near_bound(value, hi), -1.0, 0.0))
    active[live] = gain * step < 0
    return active


def _profile_chi2(model, b, s, w, x, j, value, lower, upper):
    """chi^2 and optimum with parameter ``j`` (of params + S0) fixed at ``value``, the others
    refitted within their bounds from ``x``."""
    start = np.array(x, float)
    start[j] = value
    result, optimum = _bounded_refit(model, b, s, w, start, lower, upper,
                                     np.arange(start.size) != j)
    return 2.0 * result.cost, optimum


def _profile_end(model, b, s, w, x, j, side, lower, upper, chi2_min, scale, guess):
    """Distance from x[j] to where the profile chi^2 rises by ``scale`` (Delta chi^2 = 1) on
    ``side`` (+1/-1), or to the bound on that side when it never does.

    Each profile point is fitted once (the bracket ends are not refitted by the root finder),
    warm-started from the optimum of the nearest point already fitted; at distance 0 the
    profile is the fit itself (Delta chi^2 = 0)."""
    limit = (upper[j] - x[j]) if side > 0 else (x[j] - lower[j])
    if not limit > 0:
        return 0.0
    fitted = {0.0: (-1.0, x)}  # distance -> (Delta chi^2 / scale - 1, optimum)

    def excess(d):
        if d not in fitted:
            nearest = min(fitted, key=lambda e: abs(e - d))
            c, optimum = _profile_chi2(model, b, s, w, fitted[nearest][1], j, x[j] + side * d,
                                       lower, upper)
            fitted[d] = ((c - chi2_min) / scale - 1.0, optimum)
        return fitted[d][0]

    lo_d, hi_d = 0.0, min(max(guess, 1e-6 * max(1.0, abs(x[j]))), limit)
    while excess(hi_d) < 0:
        if hi_d >= limit:
            return float(limit)  # Delta chi^2 < 1 up to the bound: the interval ends there
        lo_d, hi_d = hi_d, min(2.0 * hi_d, limit)
    return float(brentq(excess, lo_d, hi_d, xtol=1e-3 * hi_d, maxiter=40))


def profile_standard_errors(model, b, s, w, x, lower, upper, scale, jacobian_se, active,
                            chi2_min=None):
    """SEs from the profile likelihood with the fit bounds, for fits where a parameter is held
    by a bound (``active_bounds``); otherwise the Jacobian SEs ``jacobian_se`` unchanged.

    Each profile refits the other parameters (within their bounds) at fixed values of one and
    finds where chi^2 / scale has risen by 1 from its minimum (Delta chi^2 = 1, the likelihood
    ratio interval; MINOS with limits in MINUIT's terms), cut at the fit bounds. The SE is the
    half-width of that interval; for a parameter at its bound, the one-sided interval's length
    (value +/- SE cut at the bound is the interval).
    Why: a bound-clipped estimate lies closer to the truth than the unconstrained one, but the
    Jacobian at the bound still counts the clipped direction (and, for its correlated partners,
    a freedom the fit does not have), so those intervals over-cover: kurtosis at sigma = 0.05,
    75-83 % instead of 68 % (benchmarks/bench_diffusion_coverage.py).
    ``chi2_min``: the fit's chi^2 when the caller has it (computed from ``x`` otherwise).
    """
    se = np.array(jacobian_se, float)
    if not np.any(active):
        return se
    x = np.asarray(x, float)
    if chi2_min is None:
        chi2_min = float(np.sum((w * (x[-1] * model.predict(b, x[:-1]) - s)) ** 2))
    for j in range(x.size - 1):  # model parameters; S0 keeps its Jacobian SE
        if not np.isfinite(se[j]):
            continue
        ends = [_profile_end(model, b, s, w, x, j, side, lower, upper, chi2_min, scale, se[j])
                for side in (-1.0, 1.0)]
        se[j] = max(ends) if active[j] else 0.5 * sum(ends)
    return se


WIDEN_BELOW_P = 0.05
"""With known noise (amplitude CRLBs), a chi^2 test p below this widens the SEs by
sqrt(chi^2/dof) (the model or the CRLBs leave more scatter than they account for)."""


def lack_of_fit_p(chi2: float, dof: int) -> float | None:
    """P(chi^2_dof >= chi2): how likely this much scatter about the model is under the known
    noise; None without degrees of freedom."""
    if dof < 1 or not np.isfinite(chi2):
        return None
    from scipy.special import chdtrc  # what scipy.stats.chi2.sf calls

    return float(chdtrc(dof, chi2))


def t_factor(dof) -> float:
    """Widening of a +/- 1 SE interval when sigma is estimated with ``dof`` degrees of freedom:
    Student-t quantile over normal quantile at 84.13 % (1.84 for 1, 1.32 for 2, 1.20 for 3 dof),
    so that the interval keeps its 68.3 % coverage; 1 when sigma is known (dof None)."""
    if dof is None or not np.isfinite(dof):
        return 1.0
    from scipy.special import ndtr, ndtri, stdtrit  # what scipy.stats' norm and t call
    p = ndtr(1.0)
    return float(stdtrit(max(float(dof), 1.0), p) / ndtri(p))


def _information_criteria(chi2, n, k, sigma_known):
    """(AIC, BIC): chi^2-based with known noise, else from the log of the mean squared residual."""
    base = chi2 if sigma_known else n * np.log(max(chi2 / n, 1e-300))
    return base + 2 * k, base + k * np.log(n)


def unavailable_resampling(names, n_points: int, n_free: int) -> dict:
    """``resampled`` entries of a residual bootstrap that cannot run: with no more points than
    free parameters the residuals are 0 and every refit returns the fit itself (a zero-width
    interval, e.g. "IQR [0.1285, 0.1285]" for an ADC on 2 points); the uncertainty is not
    available, said so, not 0."""
    reason = (f"bootstrap interval not available: {n_points} points for {n_free} free "
              "parameters leave no residuals to resample")
    return {name: {"median": np.nan, "q25": np.nan, "q75": np.nan, "iqr": np.nan,
                   "std": np.nan, "reason": reason} for name in names}


def _resample(model, b, s, w, best_x, fitted, method, n_draws, rng, s0_bounds, noise_sd, fit_s0,
              root=None):
    """Refit ``n_draws`` resampled data sets; median, quartiles, IQR and SD per parameter.
    ``root``: a square root of the points' correlation (``correlated.noise_root``) when they
    are correlated: the draws' noise then has that correlation."""
    names = list(model.parameter_names) + ["S0"]
    if method == "bootstrap" and b.size <= best_x.size - (0 if fit_s0 else 1):
        return unavailable_resampling(names, b.size, best_x.size - (0 if fit_s0 else 1))
    residuals = s - fitted
    scale = np.sqrt(b.size / max(b.size - best_x.size, 1))
    if method == "bootstrap":
        # residual bootstrap on standardised residuals, rescaled to each point's sigma
        standard = residuals * w * scale
        picked = rng.choice(standard, size=(n_draws, b.size), replace=True)
        noise = picked / w if root is None else correlated_noise(picked, root) / w
    else:
        unit = rng.normal(0.0, 1.0, (n_draws, b.size))
        noise = (unit if root is None else correlated_noise(unit, root)) * noise_sd
    data = fitted + noise
    if getattr(model, "supports_batch", True):
        batch = fit_model_batch(model, b, data, 1.0 / w, fit_s0=fit_s0)
        draws = np.column_stack([batch.params, batch.s0])
    else:
        draws = np.array([_solve(model, b, row, w, best_x, s0_bounds).x for row in data])
    q25, med, q75 = np.percentile(draws, [25, 50, 75], axis=0)
    return {name: {"median": float(med[i]), "q25": float(q25[i]), "q75": float(q75[i]),
                   "iqr": float(q75[i] - q25[i]), "std": float(np.std(draws[:, i], ddof=1))}
            for i, name in enumerate(names)}


def fit_model(model, b_ms_um2, signal, sigma=None, fit_s0: bool = True, n_starts: int = 3,
              uncertainty: str = "jacobian", n_draws: int = 200, seed: int = 0,
              shell_index=None, sigma_dof: float | None = None,
              lack_of_fit_test: bool = False, covariance=None) -> "DiffusionFit":
    """Fit ``model`` to ``signal`` at ``b_ms_um2``; points above ``model.b_max_ms_um2`` are dropped.

    sigma: per-point standard deviation (same units as ``signal``), e.g. CRLBs; weights 1/sigma^2.
    When None, equal weights and the noise is estimated from the residuals. ``uncertainty`` is
    "jacobian" (covariance only) or adds "bootstrap"/"montecarlo" refits (``n_draws``, ``seed``)
    summarised as median and IQR in ``DiffusionFit.resampled``. ``shell_index`` (per point,
    e.g. ``powder.group_shells(...).labels``) makes the b-range keep or drop whole shells.
    ``sigma_dof``: degrees of freedom of a ``sigma`` that was itself estimated (e.g. n - 4 from
    bi-exponential residuals); the SEs are then widened by ``t_factor`` (also when sigma is None,
    with the fit's own n - k). Calibration: benchmarks/bench_diffusion_coverage.py.
    ``lack_of_fit_test`` (the app's diffusion table): with a known ``sigma``, the chi^2 test
    p (``DiffusionFit.lack_of_fit_p``); below ``WIDEN_BELOW_P`` the SEs are widened by
    sqrt(chi^2/dof), and the applicability rules reject the model far below it. Off, the SEs
    are pure noise propagation (the consensus Table 5 replication relies on that).
    ``covariance`` (n, n; its diagonal ``sigma**2``): the points' noise covariance, e.g. the
    joint spectral fit's amplitudes across conditions. The estimate stays the weighted least
    squares one (weights 1/sigma^2); its Jacobian and profile SEs become the sandwich
    (J^T W J)^-1 J^T W C W J (J^T W J)^-1 of correlated noise, and the Monte Carlo / bootstrap
    draws get the correlation. Why not generalised least squares: the joint fit's covariance is
    singular where its decay constraint holds (README "Standard errors"). Diagonal: the same
    as ``sigma`` alone.
    """
    if uncertainty not in UNCERTAINTY_METHODS:
        raise ValueError(f"uncertainty must be one of {UNCERTAINTY_METHODS}, got {uncertainty!r}")
    b_all, s_all, sg_all = _validated(b_ms_um2, signal, sigma)
    if covariance is not None:
        if sg_all is None:
            raise ValueError("a covariance needs sigma (the square root of its diagonal)")
        covariance = validated_covariance(covariance, b_all.size, sg_all)
    b, s, sg, kept = _select_range(model, b_all, s_all, sg_all, shell_index)
    correlation = None if covariance is None else correlation_of(covariance[np.ix_(kept, kept)])
    k = model.n_params + (1 if fit_s0 else 0)
    if b.size < k:
        where = ("" if model.b_max_ms_um2 is None
                 else f" with b <= {model.b_max_ms_um2:g} ms/um^2")
        raise ValueError(f"model {model.name!r} has {k} free parameters but only {b.size} "
                         f"points{where}")
    w = np.ones_like(b) if sg is None else 1.0 / sg
    top = max(float(np.max(np.abs(s))), 1e-12)
    s0_bounds = (0.0, 10.0 * top) if fit_s0 else (1.0 - 1e-12, 1.0 + 1e-12)
    result = _multistart(model, b, s, w, n_starts, s0_bounds)
    x = result.x
    fitted = x[-1] * model.predict(b, x[:-1])
    chi2 = float(np.sum((w * (fitted - s)) ** 2))
    dof = max(b.size - k, 1)
    lack_p = lack_of_fit_p(chi2, b.size - k) if sg is not None and lack_of_fit_test else None
    widen = lack_p is not None and lack_p < WIDEN_BELOW_P and chi2 > dof
    scale = chi2 / dof if sg is None or widen else 1.0
    lower = np.append(model.bounds[0], s0_bounds[0])
    upper = np.append(model.bounds[1], s0_bounds[1])
    jac = result.jac if fit_s0 else result.jac[:, :-1]
    fisher = _covariance(jac, scale, (upper - lower)[:jac.shape[1]])
    cov = fisher if correlation is None else scale * sandwich(jac, correlation, fisher / scale)
    k_fit = jac.shape[1]
    unit = parameter_units(model.n_params, top)[:k_fit]
    at_any_bound = fit_s0 and bool(np.any(at_either_bound(x[:k_fit] / unit,
                                                          lower[:k_fit] / unit,
                                                          upper[:k_fit] / unit)))
    active = (active_bounds(jac, result.fun, x[:k_fit], lower[:k_fit], upper[:k_fit], unit)
              if at_any_bound else np.zeros(k_fit, bool))  # no bound reached: nothing held
    if not fit_s0:
        cov = np.pad(cov, ((0, 1), (0, 1)))
        active = np.append(active, False)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))  # NaN stays NaN: not constrained by the data
    active &= fit_s0  # profiles refit S0; with S0 fixed the Jacobian SEs are kept
    if active.any():  # a parameter held by a bound: profile-likelihood SEs
        # correlated points: the profile's width scaled as the sandwich scales the Fisher SE
        factor = (np.ones(se.size) if correlation is None
                  else np.sqrt(np.diag(cov) / np.diag(fisher)))
        se = profile_standard_errors(model, b, s, w, x, lower, upper, scale, se / factor,
                                     active, chi2) * factor
    se = se * t_factor(dof if sg is None else sigma_dof)
    aic, bic = _information_criteria(chi2, b.size, k, sg is not None)
    resampled = {}
    if uncertainty != "jacobian" and n_draws > 0:
        rng = np.random.default_rng(seed)
        noise_sd = sg if sg is not None else np.full(b.shape, np.sqrt(chi2 / dof))
        resampled = _resample(model, b, s, w, x, fitted, uncertainty, n_draws, rng, s0_bounds, noise_sd,
                              fit_s0, None if correlation is None else noise_root(correlation))
    fit = DiffusionFit(model=model, params=x[:-1].copy(), std_errors=se[:-1], s0=float(x[-1]),
                       s0_std_error=float(se[-1]), covariance=cov, chi2=chi2, n_points=int(b.size),
                       aic=float(aic), bic=float(bic), b_used_ms_um2=b, sigma_known=sg is not None,
                       success=bool(result.success), resampled=resampled,
                       bound_profile=tuple(n for n, a in zip(model.parameter_names, active) if a),
                       lack_of_fit_p=lack_p, dof=int(b.size - k))
    return _with_applicability(fit, b_all, sg, dof)


def _with_applicability(fit, b_all, sg, dof):
    """Fill in the consensus applicability flag, note and per-parameter overrides of a fit."""
    scale = max(fit.s0, 1e-12)
    if sg is not None:
        fit.sigma_normalised = float(np.median(sg)) / scale
    elif fit.n_points > fit.n_free:  # noise unknown: the fit's own residuals
        fit.sigma_normalised = float(np.sqrt(fit.chi2 / dof)) / scale
    fit.applicable, fit.note, fit.parameter_applicability = assess(fit, b_all, fit.sigma_normalised)
    return fit


def estimate_sigma_biexponential(b_ms_um2, signal):
    """Noise SD of a decay from bi-exponential residuals (consensus 5.2), or None if too few points.

    The bi-exponential (plus S0) describes any smooth metabolite decay closely, so the residual
    RMS with n - 4 degrees of freedom estimates the noise of the (normalised) signal.
    """
    from pipeline.diffusion.models import BiExponential
    b, s, _ = _validated(b_ms_um2, signal, None)
    if b.size <= 4:
        return None
    fit = fit_model(BiExponential(), b, s)
    return float(np.sqrt(fit.chi2 / (b.size - 4)))
