"""Joint (2D) fit of all diffusion conditions with diffusion-model-constrained amplitudes.

Each metabolite's amplitude at condition ``c`` is ``S0_m * f_m(b_c; p_m)`` with ``f_m`` a model of
``pipeline.diffusion.models`` (``predict``/``jacobian``, b in ms/um^2), or a free amplitude per
condition (model ``free``). ``S0_m`` (non-negative) and the per-condition baselines are the
linear parameters (variable projection); the diffusion parameters and the lineshape, shift and
phase parameters (shared by all conditions or free per condition, as declared) are non-linear.
A model constrains the conditions up to its ``b_max`` (library default or declared); above it
the amplitudes are free. The declaration is plain data (``FitOptions.joint_*``); nothing is
executed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..diffusion.models import ALIASES, make_model
from ..diffusion.signals import physical_decay
from ..metabolites import unmatched_names_note
from ..spectra import fid_to_spectrum
from ..units import b_s_mm2_to_ms_um2
from . import model as M
from .frames import FRAME_KINDS, default_sharing, embedding, frame_test, residual_variance, widen
from .monotone import (CAP_FLAG, CAP_REMEDY, decay_series, decays_at_cap,
                       diffusivity_grid_um2_ms, project_subset, series_constraint_map)
from .options import FitOptions, is_lipid_name, is_mm_name
from .priors import prior_noise_sd, with_shift_prior
from .results import SpectralFit
from .single import output_fids, parameters_at_bounds
from .blocks import BlockColumns, BlockProjector
from .solver import levenberg_marquardt, nonneg_solve_normal
from .uncertainty import (covariance_from_jacobian, metabolite_sums, propagate,
                          region_noise_sd, sigma_from_residual)

FREE = "free"


def theta_kinds(problem: M.FitProblem) -> list:
    """Sharing category (lineshape, shift, phase) of each non-linear parameter of one spectrum
    (the lipid group's shift is ``lipid_shift``, shared with ``shift``: ``default_sharing``)."""
    k = problem.n_groups
    shifts = ["lipid_shift" if name == "lipids" else "shift" for name in problem.group_names]
    return (["lineshape"] * (2 * k) + shifts + ["phase"] * (1 + int(problem.fit_phase1))
            + ["own_shift"] * problem.own_shift.size)


@dataclass
class JointLayout:
    """Where each condition's parameters live in the joint non-linear vector."""

    theta_index: np.ndarray       # (n_conditions, n_theta) indices into the global vector
    models: list                  # per metabolite: model object or None (free)
    model_names: list
    param_slices: list            # per metabolite: slice into the global vector (or None)
    lower: np.ndarray
    upper: np.ndarray
    modelled: np.ndarray          # (n_metab, n_cond): amplitude follows the model there
    linear_index: np.ndarray      # (n_metab, n_cond): linear coefficient used at each condition
    s0_index: np.ndarray          # (n_metab,): coefficient of S0, -1 when nothing is modelled

    @property
    def n_linear(self) -> int:
        return int(self.linear_index.max()) + 1


def resolve_models(names: list, options: FitOptions) -> tuple[list, list]:
    """Diffusion model object (or None for ``free``) and model name per metabolite.

    Macromolecules follow their model at every b unless ``joint_b_max_ms_um2`` declares a limit
    for that model: their ADC is so small (~0.005 um^2/ms, b*ADC < 0.3 at 50 ms/um^2) that the
    mono-exponential holds over the whole range, whereas the library's b_max for the ADC (5)
    is meant for metabolites.
    """
    _warn_unmatched("[fitting] joint_models", options.joint_models, names)
    objs, labels = [], []
    for name in names:
        mm = is_mm_name(name) or is_lipid_name(name)
        default = options.joint_mm_model if mm else options.joint_default_model
        label = options.joint_models.get(name, default)
        labels.append(label)
        if label == FREE:
            objs.append(None)
            continue
        b_max = options.joint_b_max_ms_um2.get(ALIASES.get(label, label), np.inf if mm else None)
        try:
            objs.append(make_model(label, b_max_ms_um2=b_max))
        except TypeError as exc:
            raise ValueError(f"fit options: joint model {label!r} of {name} needs options "
                             f"that a joint fit cannot supply ({exc})") from exc
    return objs, labels


def linear_layout(models: list, b_ms_um2: np.ndarray):
    """Which conditions each model covers (b <= its b_max) and the linear coefficients.

    A modelled metabolite has one S0 coefficient for the conditions its model covers and a free
    amplitude at every other condition (above the model's b_max, e.g. 5 ms/um^2 for the ADC).
    """
    n_metab, n_cond = len(models), b_ms_um2.size
    modelled = np.zeros((n_metab, n_cond), dtype=bool)
    index = np.zeros((n_metab, n_cond), dtype=int)
    s0 = np.full(n_metab, -1)
    pos = 0
    for m, mdl in enumerate(models):
        if mdl is not None:
            limit = getattr(mdl, "b_max_ms_um2", None)
            modelled[m] = b_ms_um2 <= limit + 1e-9 if limit is not None else True
        if modelled[m].any():
            s0[m] = pos
            index[m, modelled[m]] = pos
            pos += 1
        free = ~modelled[m]
        index[m, free] = pos + np.arange(free.sum())
        pos += int(free.sum())
    return modelled, index, s0


def tie_leaders(names: list, labels: list, tied: list) -> list:
    """Index of the metabolite whose diffusion parameters each metabolite uses (itself if untied).

    ``tied`` lists groups of metabolites declared to share diffusion parameters (e.g.
    ``[["GPC", "PCh"]]``); names absent from the basis are ignored with a warning; members must
    share a model.
    """
    _warn_unmatched("[fitting] joint_tied", [n for group in tied for n in group], names)
    leader = list(range(len(names)))
    for group in tied:
        members = [names.index(n) for n in group if n in names]
        models = {labels[m] for m in members}
        if len(models) > 1 or FREE in models:
            raise ValueError(f"fit options: joint_tied group {group} mixes models {sorted(models)};"
                             " tied metabolites need one common (non-free) model")
        for m in members[1:]:
            leader[m] = members[0]
    return leader


def _warn_unmatched(key: str, given, names: list) -> None:
    """Warn (fit.json "warnings", the QC and the log) about names in ``key`` that are no entry
    of the basis fitted: a near miss such as ``glu`` would otherwise be ignored silently."""
    note = unmatched_names_note(key, given, names)
    if note:
        warnings.warn(note, stacklevel=3)


def build_layout(problem: M.FitProblem, b_ms_um2: np.ndarray, options: FitOptions,
                 shared: frozenset | None = None) -> JointLayout:
    """``shared``: the parameter kinds of :func:`theta_kinds` shared by all conditions
    (default: ``options.joint_shared``, the metabolites' own shifts with ``shift``)."""
    n_cond = b_ms_um2.size
    kinds = theta_kinds(problem)
    if shared is None:
        shared = default_sharing(options.joint_shared)
    index = np.zeros((n_cond, problem.n_theta), dtype=int)
    lower, upper = [], []
    pos = 0
    for j, kind in enumerate(kinds):
        if kind in shared:
            index[:, j] = pos
            lower.append(problem.lower[j])
            upper.append(problem.upper[j])
            pos += 1
        else:
            index[:, j] = pos + np.arange(n_cond)
            lower += [problem.lower[j]] * n_cond
            upper += [problem.upper[j]] * n_cond
            pos += n_cond
    models, labels = resolve_models(problem.names, options)
    leader = tie_leaders(problem.names, labels, options.joint_tied)
    slices = []
    for m, mdl in enumerate(models):
        if mdl is None:
            slices.append(None)
            continue
        if leader[m] != m:
            slices.append(slices[leader[m]])
            continue
        lo, hi = mdl.bounds
        slices.append(slice(pos, pos + lo.size))
        lower += list(lo)
        upper += list(hi)
        pos += lo.size
    modelled, linear_index, s0_index = linear_layout(models, b_ms_um2)
    return JointLayout(index, models, labels, slices,
                       np.asarray(lower, float), np.asarray(upper, float), modelled,
                       linear_index, s0_index)


class JointObjective:
    """Projected residual and Kaufman Jacobian of the joint problem."""

    def __init__(self, problem: M.FitProblem, y_windows: np.ndarray, b_ms_um2: np.ndarray,
                 layout: JointLayout):
        self.problem, self.layout, self.b = problem, layout, b_ms_um2
        self.n_cond = y_windows.shape[0]
        cols, pen = M.baseline_blocks(problem)
        self.n_obs = cols.shape[0]
        self.block = np.vstack([cols, pen])
        self.rows = self.block.shape[0]
        self.projector = BlockProjector(self.block, self.n_cond)
        y = np.zeros((self.n_cond, self.rows))
        y[:, :self.n_obs] = M.real_stack(y_windows)
        self.y_aug = y.reshape(-1)
        self.y_perp = self.projector.project(self.y_aug[:, None])[:, 0]
        self.n_linear = layout.n_linear
        n_x = layout.lower.size
        self.theta_maps = np.zeros((self.n_cond, problem.n_theta, n_x))
        for c in range(self.n_cond):
            self.theta_maps[c, np.arange(problem.n_theta), layout.theta_index[c]] = 1.0
        self._key = None
        self._active = None

    def decay_factors(self, x: np.ndarray) -> np.ndarray:
        """(n_cond, n_metab) S/S0 where a model applies, 1 elsewhere (free amplitudes)."""
        out = np.ones((self.n_cond, self.problem.n_metab))
        with np.errstate(over="ignore", invalid="ignore"):
            for m, mdl in enumerate(self.layout.models):
                covered = self.layout.modelled[m]
                if covered.any():
                    out[covered, m] = mdl.predict(self.b[covered],
                                                  x[self.layout.param_slices[m]])
        return out

    def n_fitted(self, n_linear: int, n_nonlinear: int) -> int:
        """Parameters the residual's degrees of freedom lose: the active linear coefficients,
        each condition's baseline (hat-matrix trace) and the non-linear parameters."""
        return int(round(n_linear + self.n_cond * self.projector.single.hat_trace(self.n_obs)
                         + n_nonlinear))

    def evaluate(self, x: np.ndarray):
        key = x.tobytes()
        if key == self._key:
            return self._cache
        thetas = x[self.layout.theta_index]
        decay = self.decay_factors(x)
        index = self.layout.linear_index.T
        blocks = np.zeros((self.n_cond, self.rows, self.problem.n_metab))
        per_cond = []
        for c in range(self.n_cond):
            cols, fids = M.metabolite_columns(self.problem, thetas[c])
            per_cond.append((cols, fids))
            blocks[c, :self.n_obs] = M.real_stack(cols).T * decay[c]
        a_aug = BlockColumns(blocks, index, self.n_linear)
        a_perp = BlockColumns(self.projector.project(blocks.reshape(-1, blocks.shape[2]))
                              .reshape(blocks.shape), index, self.n_linear)
        if np.all(np.isfinite(a_perp.blocks)):
            coef = nonneg_solve_normal(a_perp.gram(), a_perp.rmatvec(self.y_perp),
                                       float(np.linalg.norm(self.y_perp)), self._active,
                                       lambda: (a_perp.dense(), self.y_perp))
        else:  # a non-finite cost: the solver rejects the step
            coef = np.full(self.n_linear, np.nan)
        self._active = coef > 0
        self._cache = (thetas, decay, per_cond, a_aug, a_perp, coef)
        self._key = key
        return self._cache

    def condition_amplitudes(self, coef: np.ndarray, decay: np.ndarray) -> np.ndarray:
        """(n_cond, n_metab) coefficients of the normalised columns at each condition."""
        return coef[self.layout.linear_index.T] * decay

    def residual(self, x: np.ndarray) -> np.ndarray:
        """Projected residual; infinite (a step the solver rejects) where a model's S(b)/S(0)
        is not a physical decay (``signals.physical_decay``: kurtosis beyond b ADC K = 3)."""
        decay = self.decay_factors(x)
        if not all(physical_decay(decay[covered, m], self.b[covered])
                   for m, covered in enumerate(self.layout.modelled) if covered.any()):
            return np.full(self.y_perp.size, np.inf)
        *_, a_perp, coef = self.evaluate(x)
        return self.y_perp - a_perp.matvec(coef)

    def model_derivatives(self, x: np.ndarray) -> np.ndarray:
        """d(model)/dx for the non-linear parameters, rows as ``y_aug``."""
        thetas, decay, per_cond, _, _, coef = self.evaluate(x)
        amps = self.condition_amplitudes(coef, decay)
        grads = self.decay_jacobians(x)
        out = np.zeros((self.n_cond, self.rows, x.size))
        for c, (cols, fids) in enumerate(per_cond):
            model = amps[c] @ cols
            deriv = M.real_stack(M.theta_derivatives(self.problem, thetas[c], fids, amps[c],
                                                     model)).T
            out[c, :self.n_obs] = deriv @ self.theta_maps[c]
            real_cols = M.real_stack(cols).T
            for m, grad in grads.items():
                if self.layout.modelled[m, c]:
                    sl = self.layout.param_slices[m]
                    s0 = coef[self.layout.s0_index[m]]
                    out[c, :self.n_obs, sl] += s0 * real_cols[:, m:m + 1] * grad[c][None, :]
        return out.reshape(-1, x.size)

    def decay_jacobians(self, x: np.ndarray) -> dict:
        """Per modelled metabolite, d(S/S0)/d(params) at every b, shape (n_cond, n_params)."""
        return {m: mdl.jacobian(self.b, x[self.layout.param_slices[m]])
                for m, mdl in enumerate(self.layout.models) if self.layout.modelled[m].any()}

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        *_, a_perp, coef = self.evaluate(x)
        d_perp = self.projector.project(self.model_derivatives(x))
        return a_perp.kaufman_jacobian(d_perp, coef)


def initial_vector(layout: JointLayout, phase0_column: int, seq_thetas: np.ndarray,
                   seq_amps: np.ndarray, b_ms_um2: np.ndarray) -> np.ndarray:
    """Start from sequential fits: shared parameters averaged (circular mean for the zero-order
    phase), free ones copied, and per model the best point of its initial grid."""
    x = np.zeros(layout.lower.size)
    for j in range(layout.theta_index.shape[1]):
        idx = layout.theta_index[:, j]
        if np.all(idx == idx[0]):
            if j == phase0_column:
                x[idx[0]] = np.angle(np.mean(np.exp(1j * seq_thetas[:, j])))
            else:
                x[idx[0]] = np.median(seq_thetas[:, j])
        else:
            x[idx] = seq_thetas[:, j]
    for m, mdl in enumerate(layout.models):
        covered = layout.modelled[m]
        if covered.any():
            x[layout.param_slices[m]] = _grid_start(mdl, b_ms_um2[covered],
                                                    seq_amps[covered, m])
    return np.clip(x, layout.lower, layout.upper)


def _grid_start(mdl, b_ms_um2: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
    """Grid point of the model that best fits the amplitudes (scale solved in closed form)."""
    grid = np.asarray(mdl.initial_grid(), float)
    best, best_cost = grid[0], np.inf
    for p in grid:
        f = mdl.predict(b_ms_um2, p)
        if not physical_decay(f, b_ms_um2):
            continue
        denom = f @ f
        scale = max(f @ amplitudes / denom, 0.0) if denom > 0 else 0.0
        cost = np.sum((amplitudes - scale * f) ** 2)
        if cost < best_cost:
            best, best_cost = p, cost
    return best


def fit_joint(y_windows: np.ndarray, fids: np.ndarray, problem: M.FitProblem,
              b_values_s_mm2: np.ndarray, options: FitOptions, scale: float,
              sequential: list, direction_labels=None) -> tuple[list, dict]:
    """Joint fit of all conditions started from ``sequential`` fits (same problem and scale).
    ``direction_labels``: per condition -1 (b = 0) or the index of its gradient direction,
    None for one direction (the decay constraint holds one decay per direction).

    Returns per-condition :class:`SpectralFit` objects (amplitudes = model predictions, with
    covariances propagated from the joint Fisher matrix) and the diffusion parameters per
    metabolite with CRLBs.
    """
    b_ms_um2 = b_s_mm2_to_ms_um2(b_values_s_mm2)
    layout = build_layout(problem, b_ms_um2, options)
    seq_thetas = np.array([f.theta for f in sequential])
    seq_amps = np.array([f.extra["coef_scaled"] for f in sequential])
    x0 = initial_vector(layout, 3 * problem.n_groups, seq_thetas, seq_amps, b_ms_um2)
    prior_sd = (prior_noise_sd(fids, problem.dwell_s, problem.cf_mhz, scale,
                               options.noise_sd_ppm) if problem.own_shift.size else 0.0)
    objective, solve = joint_solver(problem, y_windows / scale, b_ms_um2, layout, prior_sd,
                                    options)
    result = levenberg_marquardt(solve.residual, solve.jacobian, x0, layout.lower,
                                 layout.upper, options.max_iterations)
    frames = FRAME_KINDS & default_sharing(options.joint_shared)
    test = {"frames": "shared" if frames else "per condition"}
    if frames and options.joint_frame_test_p > 0:
        wide = build_layout(problem, b_ms_um2, options,
                            default_sharing(options.joint_shared) - frames)
        objective_w, solve_w = joint_solver(problem, y_windows / scale, b_ms_um2, wide,
                                            prior_sd, options)
        x_wide = widen(layout, wide, result.x)
        test["frame_test"] = frame_test(solve_w, x_wide, embedding(layout, wide), wide.lower,
                                        wide.upper, residual_variance(objective_w, x_wide),
                                        y_windows / scale)
        if test["frame_test"]["p_value"] < options.joint_frame_test_p:
            objective, solve = objective_w, solve_w
            result = levenberg_marquardt(solve.residual, solve.jacobian, x_wide, wide.lower,
                                         wide.upper, options.max_iterations)
            test["frames"] = "per condition"
    return _joint_outputs(objective, result, fids, scale, options, solve.rows, test,
                          direction_labels)


def joint_solver(problem: M.FitProblem, y_scaled: np.ndarray, b_ms_um2: np.ndarray,
                 layout: JointLayout, prior_sd: float, options: FitOptions):
    """The joint objective of ``layout`` and its residual/Jacobian with the Gaussian prior
    rows on the metabolites' own shifts (one row per shared or per-condition copy)."""
    objective = JointObjective(problem, y_scaled, b_ms_um2, layout)
    own_columns = layout.theta_index[:, problem.n_base_theta:problem.n_theta]
    own, first = np.unique(own_columns, return_index=True)  # first: row-major flat index
    sd_hz = M.own_shift_sd_hz(problem, options)[first % own_columns.shape[1]]
    solve = with_shift_prior(objective.residual, objective.jacobian, layout.lower.size, own,
                             prior_sd if own.size else 0.0, sd_hz)
    return objective, solve


def decay_constraint(obj: JointObjective, a_perp: BlockColumns, coef: np.ndarray,
                     options: FitOptions, direction_labels=None):
    """The completely-monotone constraint at the fitted non-linear parameters: the constrained
    linear solution (``monotone.ConeProjection`` over all linear coefficients, or None when
    nothing is constrained), a label for ``extra["decay_constraint"]`` and the decays held
    (``monotone.decay_series``: one, or one per gradient direction sharing b = 0). It applies
    to metabolites with free amplitudes (model ``free``) when each decay has >= 3 distinct
    b-values, none repeated: the exact least-squares optimum over their coefficients (metric
    = the Gram matrix of the projected columns, so correlations between all constrained
    metabolites count), the other coefficients (modelled S0s, e.g. the MM) held at the free
    fit's ``coef``. Measured on the independent dMRS set, letting those float too moved the
    MM decay error from 0.126 to 0.161 at 7 T (the metabolites' errors within 0.01). On the
    published set this one solve agrees within 0.0006 RMS with re-running LM with the
    constraint inside and with a metric that also re-optimises the non-linear parameters
    (Schur complement of the joint Hessian), at a fraction of their cost."""
    if options.joint_decay_constraint == "none":
        return None, "none", None
    layout = obj.layout
    constrained = np.array([mdl is None for mdl in layout.models])
    series, why_not = decay_series(obj.b, direction_labels)
    if not constrained.any() or series is None:
        return None, f"none ({why_not or 'no free amplitudes'})", None
    subset = np.unique(layout.linear_index[constrained])
    transform, equalities = series_constraint_map(
        np.searchsorted(subset, layout.linear_index[constrained]),
        np.ones(int(constrained.sum()), dtype=bool), obj.b, series, diffusivity_grid_um2_ms())
    projection = project_subset(a_perp.gram(), a_perp.rmatvec(obj.y_perp), coef, subset,
                                transform, equalities)
    return projection, options.joint_decay_constraint, series


def _joint_outputs(obj: JointObjective, result, fids, scale, options,
                   theta_prior: np.ndarray, frames: dict,
                   direction_labels=None) -> tuple[list, dict]:
    """Per-condition fits and diffusion rows; ``theta_prior`` (n_rows, n_x) are the Gaussian
    prior rows on the non-linear vector (per-metabolite shifts), part of the covariance.
    With a decay constraint (:func:`decay_constraint`) the linear coefficients are the
    constrained ones and their covariance ``P cov P^T`` (``P`` the projection's linear map on
    its active face, applied to the free fit's covariance)."""
    problem, layout, x = obj.problem, obj.layout, result.x
    thetas, decay, _, a_aug, a_perp, coef = obj.evaluate(x)
    a_aug = a_aug.dense()
    n_cond, rows, n_obs = obj.n_cond, obj.rows, obj.n_obs
    n_base = obj.block.shape[1]
    base_matrix = np.zeros((n_cond * rows, n_cond * n_base))
    for c in range(n_cond):
        base_matrix[c * rows:(c + 1) * rows, c * n_base:(c + 1) * n_base] = obj.block
    full = np.hstack([a_aug, base_matrix, obj.model_derivatives(x)])
    obs = np.zeros(n_cond * rows, dtype=bool)
    obs.reshape(n_cond, rows)[:, :n_obs] = True
    n_lin = obj.n_linear
    nl_offset = n_lin + n_cond * n_base
    penalty = np.vstack([full[~obs], np.hstack([np.zeros((theta_prior.shape[0], nl_offset)),
                                                theta_prior])])
    projection, constraint_label, series = decay_constraint(obj, a_perp, coef, options,
                                                            direction_labels)
    n_linear_params = np.count_nonzero(coef)
    if projection is not None:
        coef = projection.coefficients
        n_linear_params = projection.n_parameters
    base_coef = obj.projector.coefficients(obj.y_aug - a_aug @ coef)
    residual = (obj.y_aug - a_aug @ coef - base_matrix @ base_coef.reshape(-1))[obs]
    sigma = (region_noise_sd(problem, fid_to_spectrum(fids), options) / scale
             if options.noise == "region"
             else sigma_from_residual(residual, obj.n_fitted(n_linear_params, x.size)))
    cov = covariance_from_jacobian(full[obs], sigma, penalty)
    to_constrained = np.eye(full.shape[1])  # d(reported parameters)/d(free parameters)
    held_free = None  # with the free fit's rows where the constraint holds a coefficient at 0
    if projection is not None:
        to_constrained[:n_lin, :n_lin] = projection.linear_map
        blind = np.flatnonzero(np.isinf(np.diag(cov)[:n_lin]))  # the data do not see them:
        to_constrained[:, blind] = 0.0                          # no leak of infinite variance
        to_constrained[blind, blind] = 1.0                      # into the others' CRLBs
        held_free = free_rows_where_held_at_zero(to_constrained)
    to_amp = scale / problem.column_norms
    capped = [] if projection is None else decays_at_cap(
        obj.b, problem.names, [mdl is None for mdl in layout.models],
        obj.condition_amplitudes(coef, decay) * to_amp, series)
    if capped:
        warnings.warn(f"{', '.join(capped)}: {CAP_FLAG}; {CAP_REMEDY} (their diffusion rows "
                      "are not applicable)", stacklevel=2)
    extra = {"decay_constraint": constraint_label, **frames, "decay_at_cap": capped,
             "decay_constraint_series": 0 if series is None else len(series),
             "priors": {"ratio": [], "mm_shape_sd": 0.0,
                        "own_shift_sd_ppm": M.own_shift_sd_record(problem, options)}}

    fits, mapped = [], []  # mapped: each condition's d(amplitudes)/d(free parameters)
    for c in range(n_cond):
        grad = np.zeros((problem.n_metab, full.shape[1]))
        amps = obj.condition_amplitudes(coef, decay)[c]
        grad[np.arange(problem.n_metab), layout.linear_index[:, c]] = decay[c]
        for m, mdl in enumerate(layout.models):
            if layout.modelled[m, c]:
                sl = layout.param_slices[m]
                jac = mdl.jacobian(obj.b[c:c + 1], x[sl])[0]
                grad[m, nl_offset + sl.start:nl_offset + sl.stop] = coef[layout.s0_index[m]] * jac
        grad *= to_amp[:, None]
        amplitudes = amps * to_amp
        mapped.append(grad @ to_constrained)
        cov_c = propagate(mapped[-1], cov)
        theta_cov_idx = nl_offset + layout.theta_index[c]
        fits.append(_condition_fit(problem, thetas[c], amplitudes, cov_c,
                                   base_coef[c] * scale, fids[c], sigma * scale,
                                   np.sqrt(np.clip(np.diag(cov)[theta_cov_idx], 0, None)),
                                   amps, result, options, extra,
                                   crlb_variance(cov_c, amplitudes, grad, held_free, cov)))
    across = propagate(np.concatenate(mapped), cov)  # (condition, metabolite) pairs
    for fit in fits:  # read by pipeline.fitting.amplitude_covariance
        fit.extra["amplitude_covariance"] = across
    diffusion = {}
    for m, name in enumerate(problem.names):
        mdl = layout.models[m]
        if mdl is None:
            diffusion[name] = {"model": FREE, "parameters": {}}
            continue
        sl = layout.param_slices[m]
        sd = np.sqrt(np.clip(np.diag(cov)[nl_offset + sl.start:nl_offset + sl.stop], 0, None))
        i0 = layout.s0_index[m]
        covered = obj.b[layout.modelled[m]]
        diffusion[name] = {
            "model": layout.model_names[m],
            "parameters": {p: (float(v), float(s)) for p, v, s in
                           zip(mdl.parameter_names, x[sl], sd)},
            "units": dict(zip(mdl.parameter_names, mdl.parameter_units)),
            "S0": ((float(coef[i0] * to_amp[m]),
                    float(np.sqrt(max(propagate(to_constrained[i0:i0 + 1], cov)[0, 0], 0.0))
                          * to_amp[m])) if i0 >= 0
                   else (float("nan"), float("inf"))),
            "b_range_ms_um2": (float(covered.min()), float(covered.max())) if covered.size
            else None,
        }
    return fits, diffusion


def free_rows_where_held_at_zero(linear_map: np.ndarray) -> np.ndarray:
    """``linear_map`` (d(reported)/d(free parameters) with the decay constraint's map) with
    the free fit's identity row for each coefficient the constraint holds at 0: its row is
    all zero there (no dictionary weight of the metabolite is active)."""
    out = np.array(linear_map, dtype=float)
    held = ~np.any(out != 0, axis=1)
    out[held, held] = 1.0
    return out


def crlb_variance(cov_c: np.ndarray, amplitudes: np.ndarray, grad: np.ndarray,
                  held_free: np.ndarray | None, cov: np.ndarray) -> np.ndarray:
    """Each metabolite's CRLB variance of one condition: the constrained fit's
    (``diag(cov_c)``), but the free fit's for a metabolite the decay constraint holds at 0.
    Propagated through the constraint, such a metabolite had a CRLB of exactly 0 (a certainty
    the data do not give: GABA and Asp 0 +- 0 at every b on the demo, and PCh, truth 0.7, with
    a basis lacking creatine); its free-fit CRLB is the bound of an amplitude of 0. Sums keep
    the constrained covariance (``cov_c``), where the members' correlations hold."""
    variance = np.clip(np.diag(cov_c), 0, None)
    held = (variance == 0) & (np.asarray(amplitudes) == 0)
    if held_free is not None and held.any():
        variance[held] = np.clip(np.diag(propagate((grad @ held_free)[held], cov)), 0, None)
    return variance


def _condition_fit(problem, theta, amplitudes, cov, base_coef, fid, sigma, theta_crlb,
                   coef_scaled, result, options, extra, variance) -> SpectralFit:
    """One condition's fit: ``cov`` the amplitudes' covariance (sums), ``variance`` their CRLB
    variances (:func:`crlb_variance`)."""
    fitted, baseline, components = output_fids(problem, theta, amplitudes, base_coef)
    damp, gauss, shift, phi0, phi1 = problem.split(theta)
    return SpectralFit(
        names=list(problem.names), amplitudes=amplitudes,
        crlb=np.sqrt(variance), covariance=cov, fitted_fid=fitted,
        baseline_fid=baseline, residual_fid=fid - fitted, component_fids=components,
        sums=metabolite_sums(problem.names, amplitudes, cov), sigma=float(sigma),
        lorentz_fwhm_hz=dict(zip(problem.group_names, M.damp_to_lorentz_fwhm(damp).tolist())),
        gauss_fwhm_hz=dict(zip(problem.group_names, M.gauss_rate_to_fwhm(gauss).tolist())),
        shift_hz=dict(zip(problem.group_names, np.asarray(shift, float).tolist())),
        phase0_deg=float(np.rad2deg(np.angle(np.exp(1j * phi0)))),
        phase1_deg_per_ppm=float(-np.rad2deg(2 * np.pi * phi1 * problem.cf_mhz)),
        ppm_range=tuple(options.ppm_range), theta=np.asarray(theta, float),
        theta_crlb=theta_crlb, n_iterations=int(result.njev), success=bool(result.status > 0),
        message=str(result.message),
        extra={"coef_scaled": coef_scaled, "problem": problem, **extra},
        at_bounds=parameters_at_bounds(problem, np.asarray(theta, float), amplitudes))
