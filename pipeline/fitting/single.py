"""Fit one spectrum: initialisation, variable projection, CRLBs, output FIDs."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..basis import Basis
from ..spectra import fid_to_spectrum, spectrum_to_fid
from . import kernel as K
from .baseline import noise_scaled_penalty, stiffness_by_aicc
from . import model as M
from .model import baseline_blocks
from .options import FitOptions
from .priors import (WithPrior, amplitude_priors, mm_shape_rows, ratio_prior_rows,
                     prior_noise_sd, with_shift_prior)
from ..referencing import singlet_reference
from .results import SpectralFit
from .solver import (PairedProjector, complex_least_squares, kaufman_jacobian,
                     levenberg_marquardt, nonneg_solve)
from .uncertainty import (covariance_and_prior_share, metabolite_sums, region_noise_sd,
                          sigma_from_residual)

INIT_GAUSS_FWHM_PPM = (0.01, 0.025, 0.05)
INIT_LORENTZ_FWHM_HZ = 1.0
INIT_PHASE_STEPS = 8
UNPHASED_CACHE_SIZE = 4
"""Phase-free model columns kept by ``SpectrumObjective`` (the initial search revisits a few)."""
TURNABLE_CACHE_SIZE = 8
"""Projected zero-phase columns kept for ``SpectrumObjective.cost`` (one per start tried)."""


class SpectrumObjective:
    """Projected residual and Jacobian of one spectrum for the non-linear parameters."""

    def __init__(self, problem: M.FitProblem, y_window: np.ndarray, prior_rows: np.ndarray,
                 projector: PairedProjector | None = None):
        """``projector``: the baseline projector of ``problem`` if the caller has it."""
        self.problem = problem
        self.n_obs = 2 * problem.window.size
        self.prior_rows = prior_rows
        self.n_pad = 2 * problem.baseline_penalty.shape[0]
        self.projector = projector or PairedProjector(problem.baseline_matrix,
                                                      problem.baseline_penalty)
        self.y_aug = np.concatenate([M.real_stack(y_window),
                                     np.zeros(self.n_pad + prior_rows.shape[0])])
        self.y_perp = self.projector.project(self.y_aug)
        self._free_aug = None
        self._cache_key = None
        self._active = None
        self._unphased = {}
        k = problem.n_groups
        self._phase_index = [3 * k, 3 * k + 1] if problem.fit_phase1 else [3 * k]
        self._design_q = None
        self._turnable = {}
        self._y_pairs = None

    @property
    def free_aug(self) -> np.ndarray:
        """Real-stacked baseline columns over all rows (data, penalty, prior), built once when
        first needed (noise degrees of freedom and CRLBs, not the fit itself)."""
        if self._free_aug is None:
            base_cols, base_pen = baseline_blocks(self.problem)
            self._free_aug = np.vstack([base_cols, base_pen,
                                        np.zeros((self.prior_rows.shape[0], base_cols.shape[1]))])
        return self._free_aug

    def with_penalty_scale(self, scale: float) -> "SpectrumObjective":
        """The same objective with the spline penalty rows times ``scale``; it shares this
        one's cache of model columns, which do not depend on the penalty."""
        width = self.n_obs // 2
        y_window = self.y_aug[:width] + 1j * self.y_aug[width:self.n_obs]
        problem = dataclasses.replace(self.problem,
                                      baseline_penalty=self.problem.baseline_penalty * scale,
                                      baseline_stiffness=self.problem.baseline_stiffness
                                      * scale ** 2)
        other = SpectrumObjective(problem, y_window, self.prior_rows,
                                  self.projector.with_penalty_scale(scale))
        other._unphased = self._unphased
        return other

    def unphased(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``model.unphased_columns`` at ``theta``, kept for the last few parameter vectors that
        differ in more than the phases (the initial search tries several phases per start)."""
        key = np.delete(theta, self._phase_index).tobytes()
        found = self._unphased.get(key)
        if found is None:
            found = M.unphased_columns(self.problem, theta)
            if len(self._unphased) >= UNPHASED_CACHE_SIZE:
                self._unphased.pop(next(iter(self._unphased)))
            self._unphased[key] = found
        return found

    def design_q(self) -> np.ndarray:
        """Orthonormal basis of the (unpenalised) baseline design columns, computed once."""
        if self._design_q is None:
            self._design_q = np.linalg.qr(self.problem.baseline_matrix)[0]
        return self._design_q

    def evaluate(self, theta: np.ndarray):
        key = theta.tobytes()
        if key != self._cache_key:
            spectra, fids = self.unphased(theta)
            cols = spectra * M.phase_factor(self.problem, theta, self.problem.freq_window_hz)
            a_aug = np.vstack([M.real_stack(cols).T, np.zeros((self.n_pad, cols.shape[0])),
                               self.prior_rows])
            a_perp = self.projector.project(a_aug)
            coef = nonneg_solve(a_perp, self.y_perp, self._active)
            self._active = coef > 0
            self._cache = (cols, fids, a_aug, a_perp, coef)
            self._cache_key = key
        return self._cache

    def residual(self, theta: np.ndarray) -> np.ndarray:
        _, _, _, a_perp, coef = self.evaluate(theta)
        return self.y_perp - a_perp @ coef

    def model_derivatives(self, theta: np.ndarray) -> np.ndarray:
        """Real-stacked d(model)/d(theta), padded with zero prior rows."""
        cols, fids, _, _, coef = self.evaluate(theta)
        deriv = M.theta_derivatives(self.problem, theta, fids, coef, coef @ cols)
        pad = np.zeros((self.y_aug.size - self.n_obs, deriv.shape[0]))
        return np.vstack([M.real_stack(deriv).T, pad])

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        _, _, _, a_perp, coef = self.evaluate(theta)
        d_perp = self.projector.project(self.model_derivatives(theta))
        return kaufman_jacobian(d_perp, a_perp, coef)

    def cost(self, theta: np.ndarray) -> float:
        """Squared norm of the projected residual at ``theta``.

        Without prior rows, the projected columns at zero-order phase ``phi0`` are those at 0
        turned by ``phi0`` (the baseline projection acts alike on real and imaginary parts),
        so the data are turned by ``-phi0`` instead: the same cost, and one projection serves
        every ``phi0`` (the initial search tries several per start)."""
        if self.prior_rows.shape[0]:
            return float(np.sum(self.residual(theta) ** 2))
        a_perp, gram = self._at_zero_phase(theta)
        y_turned = self._turned_data(-theta[self._phase_index[0]])
        coef = nonneg_solve(a_perp, y_turned, self._active, gram)
        self._active = coef > 0
        residual = y_turned - a_perp @ coef
        return float(residual @ residual)

    def _at_zero_phase(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Projected columns at ``theta`` with ``phi0 = 0`` and their Gram matrix (kept for
        the last few ``theta``)."""
        at_zero = theta.copy()
        at_zero[self._phase_index[0]] = 0.0
        key = at_zero.tobytes()
        found = self._turnable.get(key)
        if found is None:
            spectra, _ = self.unphased(at_zero)
            cols = spectra * M.phase_factor(self.problem, at_zero, self.problem.freq_window_hz)
            a_perp = self.projector.project(
                np.vstack([M.real_stack(cols).T, np.zeros((self.n_pad, cols.shape[0]))]))
            found = (a_perp, a_perp.T @ a_perp)
            if len(self._turnable) >= TURNABLE_CACHE_SIZE:
                self._turnable.pop(next(iter(self._turnable)))
            self._turnable[key] = found
        return found

    def _turned_data(self, angle_rad: float) -> np.ndarray:
        """``y_perp`` with each (real, imaginary) pair of data and penalty rows turned by
        ``angle_rad``."""
        w, p = self.n_obs // 2, self.n_pad // 2
        if self._y_pairs is None:
            y = self.y_perp
            self._y_pairs = (y[:w] + 1j * y[w:2 * w], y[2 * w:2 * w + p] + 1j * y[2 * w + p:])
        turn = np.exp(1j * angle_rad)
        data, penalty = (part * turn for part in self._y_pairs)
        return np.concatenate([data.real, data.imag, penalty.real, penalty.imag])


def initial_shift_hz(problem: M.FitProblem, spectrum: np.ndarray, theta: np.ndarray) -> float:
    """Cross-correlation of magnitude spectra within the shift bounds (parabolic refinement)."""
    template = np.abs(M.full_component_spectra(problem, theta) / problem.column_norms[:, None])
    template = template.sum(axis=0)
    data = np.abs(spectrum)
    bin_hz = 1.0 / (problem.n_points * problem.dwell_s)
    k = problem.n_groups
    k_low = int(np.floor(problem.lower[2 * k] / bin_hz))
    k_high = int(np.ceil(problem.upper[2 * k] / bin_hz))
    w = problem.window
    shifts = np.arange(min(k_low, -1), max(k_high, 1) + 1)
    n = problem.n_points
    scores = np.array([data[w] @ template[(w - k) % n] for k in shifts])
    best = int(np.argmax(scores))
    offset = 0.0
    if 0 < best < shifts.size - 1:
        s0, s1, s2 = scores[best - 1:best + 2]
        denom = s0 - 2 * s1 + s2
        offset = 0.5 * (s0 - s2) / denom if denom != 0 else 0.0
    return float((shifts[best] + offset) * bin_hz)


def initial_phase0(objective: SpectrumObjective, theta: np.ndarray) -> float:
    """Zero-order phase from an unconstrained complex fit (amplitude-weighted mean angle).

    The fit has the metabolite columns and a free complex baseline (the unpenalised design);
    the baseline is eliminated by projecting both sides off its span, which leaves the same
    metabolite coefficients from a much smaller least-squares problem."""
    problem = objective.problem
    trial = theta.copy()
    trial[3 * problem.n_groups] = 0.0
    spectra, _ = objective.unphased(trial)
    matrix = (spectra * M.phase_factor(problem, trial, problem.freq_window_hz)).T
    y = objective.y_aug[:objective.n_obs // 2] + 1j * objective.y_aug[objective.n_obs // 2:
                                                                     objective.n_obs]
    q = objective.design_q()
    both = np.hstack([matrix, y[:, None]])
    parts = np.hstack([both.real, both.imag])  # real products with the real design
    parts -= q @ (q.T @ parts)
    both = parts[:, :both.shape[1]] + 1j * parts[:, both.shape[1]:]
    z = complex_least_squares(both[:, :-1], both[:, -1])
    return float(np.angle(np.sum(z * np.abs(z))))


def initial_theta(objective: SpectrumObjective, spectrum: np.ndarray,
                  reference: tuple[float, float] | None = None) -> np.ndarray:
    """Shift by cross-correlation, phase from a complex linear fit, Gaussian width by a grid.

    ``reference`` ``(shift_hz, phase0_rad)`` from the singlets (``referencing``) adds its
    shift as a second candidate (with the phase of the linear fit and its own phase); the
    lowest cost over all candidates wins."""
    problem = objective.problem
    k = problem.n_groups

    def start(fwhm_ppm: float) -> np.ndarray:
        theta = np.zeros(problem.n_theta)
        theta[:k] = M.lorentz_fwhm_to_damp(INIT_LORENTZ_FWHM_HZ)
        theta[k:2 * k] = M.gauss_fwhm_to_rate(fwhm_ppm * problem.cf_mhz)
        theta[k:2 * k] = np.minimum(theta[k:2 * k], 0.5 * problem.upper[k:2 * k])
        return theta

    # one cross-correlation at the middle width: the best lag hardly depends on the width
    shift_hz = initial_shift_hz(problem, spectrum, start(INIT_GAUSS_FWHM_PPM[1]))
    candidates = [(shift_hz, None)]
    if reference is not None:
        candidates += [(reference[0], None), (reference[0], reference[1])]
    best, best_cost = None, np.inf
    for fwhm_ppm in INIT_GAUSS_FWHM_PPM:
        for shift, phase in candidates:
            theta = start(fwhm_ppm)
            theta[2 * k:3 * k] = np.clip(shift, problem.lower[2 * k], problem.upper[2 * k])
            theta[3 * k] = initial_phase0(objective, theta) if phase is None else phase
            cost = objective.cost(theta)
            if cost < best_cost:
                best, best_cost = theta, cost
    for phase in np.linspace(-np.pi, np.pi, INIT_PHASE_STEPS, endpoint=False):
        theta = best.copy()
        theta[3 * k] = phase
        cost = objective.cost(theta)
        if cost < best_cost:
            best, best_cost = theta, cost
    return best


def fit_spectrum(fid: np.ndarray, basis: Basis, dwell_s: float, cf_mhz: float,
                 options: FitOptions | dict | None = None, *, ref_ppm: float | None = None,
                 data_scale: float | None = None, problem: M.FitProblem | None = None,
                 initial: np.ndarray | None = None, ftol: float | None = None) -> SpectralFit:
    """Linear-combination fit of one FID with the basis (see ``FitOptions``).

    ``data_scale`` normalises the data internally; pass the same value for every condition of
    an acquisition so that the baseline stiffness means the same everywhere. ``problem`` lets
    callers reuse a prepared model (resampled basis) across many spectra (a fit's
    ``extra["problem"]`` too: its kernel, stiffness and centred bounds are reset,
    ``model.for_new_spectrum``); ``initial`` a starting
    non-linear parameter vector (skips the initialisation search). ``ftol``: the solver's stop
    (``solver.levenberg_marquardt``; None = a chi-square decrease of 0.01).
    """
    options = _as_options(options)
    fid = np.asarray(fid, dtype=complex).reshape(-1)
    if not np.all(np.isfinite(fid)):
        raise ValueError("fit_spectrum: the FID contains NaN or infinite values")
    if not np.any(fid):
        raise ValueError("fit_spectrum: the FID is all zeros (no signal to fit)")
    problem = (M.build_problem(basis, dwell_s, fid.size, cf_mhz, options, ref_ppm)
               if problem is None else M.for_new_spectrum(problem, options))
    if problem.n_points != fid.size:
        raise ValueError(f"fit_spectrum: FID has {fid.size} points, the model {problem.n_points}")
    spectrum = fid_to_spectrum(fid)
    y_window = spectrum[problem.window]
    scale = float(data_scale or np.max(np.abs(y_window)) or 1.0)
    no_prior = np.zeros((0, problem.n_metab))
    curvature_prior = options.baseline_curvature_sd > 0 and problem.baseline_penalty.size > 0
    constraints = amplitude_priors(problem.names, options)
    amplitude_prior = bool(constraints) or options.mm_shape_prior_sd > 0
    applied = {"ratio": [], "mm_shape_sd": 0.0}
    noise_scaled = (prior_noise_sd(fid, dwell_s, cf_mhz, scale, options.noise_sd_ppm)
                    if curvature_prior or amplitude_prior or problem.own_shift.size else 0.0)
    if curvature_prior:
        problem = dataclasses.replace(problem, baseline_penalty=noise_scaled_penalty(
            problem.baseline_penalty.shape[1], noise_scaled, options.baseline_curvature_sd),
            baseline_stiffness=0.0)
    reference = None
    if options.reference_singlets and initial is None:
        reference = singlet_reference(fid, dwell_s, cf_mhz, problem.ref_ppm,
                                      options.reference_search_ppm)
        problem = centred_shift_bounds(problem, reference[0])
    objective = SpectrumObjective(problem, y_window / scale, no_prior)
    theta0 = (initial_theta(objective, spectrum, reference) if initial is None
              else np.asarray(initial))
    if amplitude_prior:
        # the priors' reference amplitudes (denominators, MM mean) from the start's linear fit
        amplitudes = objective.evaluate(theta0)[-1] * scale / problem.column_norms
        ratio_rows = ratio_prior_rows(problem.names, problem.column_norms, constraints,
                                      amplitudes, noise_scaled, scale)
        used = np.any(ratio_rows != 0, axis=1)
        ratio_rows = ratio_rows[used]
        mm_rows = mm_shape_rows(problem.names, problem.column_norms, amplitudes,
                                options.mm_shape_prior_sd, noise_scaled, scale)
        applied = {"ratio": [f"{c['numerator']}/{c['denominator']} = {c['ratio']} +- {c['sd']}"
                             for c, u in zip(constraints, used) if u],
                   "mm_shape_sd": options.mm_shape_prior_sd if mm_rows.shape[0] else 0.0}
        if ratio_rows.shape[0] + mm_rows.shape[0]:
            objective = SpectrumObjective(problem, y_window / scale,
                                          np.vstack([ratio_rows, mm_rows]))
    prior_sd = noise_scaled if problem.own_shift.size else 0.0
    solve = _with_shift_prior(objective, prior_sd, options)
    result = levenberg_marquardt(solve.residual, solve.jacobian, theta0, problem.lower,
                                 problem.upper, options.max_iterations, ftol=ftol)
    result, n_restarts = _retry_at_bounds(objective, result, theta0, options, solve, ftol)
    kernel = None
    voigt_quality = None
    if options.lineshape_kernel_hz > 0 and options.lineshape_kernel_min_fit_quality > 0:
        noise_scaled = noise_scaled or prior_noise_sd(fid, dwell_s, cf_mhz, scale,
                                                      options.noise_sd_ppm)
        voigt_quality = window_fit_quality(objective, result.x, noise_scaled)
    if options.lineshape_kernel_hz > 0 and (voigt_quality is None or voigt_quality
                                            > options.lineshape_kernel_min_fit_quality):
        objective, result, solve, kernel = _refit_with_kernel(objective, result, y_window / scale,
                                                              prior_sd, options, ftol)
    # the baseline's flexibility last, for the final lineshape model: the kernel gate and
    # estimate see the baseline at the configured stiffness, which cannot absorb the
    # lineshape structure they look for (measured: README "Spline stiffness per spectrum")
    chosen_stiffness = None
    if (options.baseline_stiffness_choices and options.baseline_stiffness > 0
            and problem.baseline_penalty.size and not curvature_prior):
        noise_scaled = noise_scaled or prior_noise_sd(fid, dwell_s, cf_mhz, scale,
                                                      options.noise_sd_ppm)
        objective, chosen_stiffness = stiffness_by_aicc(
            objective, result.x, noise_scaled, options.baseline_stiffness,
            options.baseline_stiffness_choices)
    fit = _assemble(objective, result, fid, spectrum, scale, options, solve.rows)
    if chosen_stiffness is not None:
        fit.extra["baseline_stiffness"] = chosen_stiffness
    if kernel is not None:
        fit.extra["lineshape_kernel"] = kernel.tolist()
        fit.extra["lineshape_kernel_fwhm_hz"] = K.kernel_fwhm_hz(objective.problem, kernel)
    fit.at_bounds = parameters_at_bounds(problem, result.x, objective.evaluate(result.x)[-1])
    fit.extra["n_restarts"] = n_restarts
    if voigt_quality is not None:
        fit.extra["voigt_fit_quality"] = voigt_quality
    fit.extra["priors"] = {**applied, "own_shift_sd_ppm": M.own_shift_sd_record(problem, options)}
    return fit


def window_fit_quality(objective: SpectrumObjective, theta: np.ndarray,
                       noise_scaled: float) -> float:
    """Residual SD of the real spectrum over the fit window (baseline removed) / noise SD, both
    in the objective's scaled units: the QC's fit quality of the current fit."""
    real_residual = objective.residual(theta)[:objective.n_obs // 2]
    return float(np.std(real_residual) / noise_scaled) if noise_scaled > 0 else float("inf")


KERNEL_PASSES = 2
"""Alternations of kernel estimate and full refit."""


def _refit_with_kernel(objective: SpectrumObjective, result, y_scaled: np.ndarray,
                       prior_sd: float, options: FitOptions, ftol: float | None = None):
    """Estimate a free-form lineshape kernel on the Voigt fit and refit with it (``kernel.py``);
    keeps the refit only if it lowers the cost. Returns (objective, result, solve, kernel)."""
    problem = objective.problem
    half_bins = K.kernel_half_width_bins(problem, options.lineshape_kernel_hz)
    total = np.zeros(2 * half_bins * KERNEL_PASSES + 1)
    total[half_bins * KERNEL_PASSES] = 1.0
    best = (objective, result, _with_shift_prior(objective, prior_sd, options), None)
    for _ in range(KERNEL_PASSES):
        current = best[0].problem
        _, _, _, _, coef = best[0].evaluate(best[1].x)
        c = K.estimate_kernel(current, best[1].x, coef / current.column_norms, y_scaled,
                              half_bins, options.lineshape_kernel_smoothness)
        total = np.convolve(total, c, mode="same")
        new_problem = dataclasses.replace(problem, kernel_t=K.kernel_time_factor(problem, total))
        new_objective = SpectrumObjective(new_problem, y_scaled, objective.prior_rows)
        solve = _with_shift_prior(new_objective, prior_sd, options)
        new = levenberg_marquardt(solve.residual, solve.jacobian, best[1].x, new_problem.lower,
                                  new_problem.upper, options.max_iterations, ftol=ftol)
        if new.cost >= best[1].cost:  # the minimised cost, shift prior included
            break
        best = (new_objective, new, solve, total.copy())
    return best


def _with_shift_prior(objective: SpectrumObjective, prior_sd: float,
                      options: FitOptions) -> WithPrior:
    """The objective with the Gaussian prior rows of the per-metabolite shifts (none when
    ``metabolite_shift_sd_ppm`` is 0); ``prior_sd``: ``priors.prior_noise_sd``."""
    problem = objective.problem
    return with_shift_prior(objective.residual, objective.jacobian, problem.n_theta,
                            np.arange(problem.n_base_theta, problem.n_theta), prior_sd,
                            M.own_shift_sd_hz(problem, options))


def centred_shift_bounds(problem: M.FitProblem, reference_hz: float) -> M.FitProblem:
    """A copy of ``problem`` whose shift bounds also cover +-``max_shift`` around the singlet
    reference (the union with the nominal bounds, so a wrong reference cannot exclude the
    unreferenced answer)."""
    k = problem.n_groups
    lower, upper = problem.lower.copy(), problem.upper.copy()
    half = 0.5 * (upper[2 * k:3 * k] - lower[2 * k:3 * k])
    lower[2 * k:3 * k] = np.minimum(lower[2 * k:3 * k], reference_hz - half)
    upper[2 * k:3 * k] = np.maximum(upper[2 * k:3 * k], reference_hz + half)
    return dataclasses.replace(problem, lower=lower, upper=upper)


BOUND_TOLERANCE = 1e-3
"""A parameter within this fraction of its range from a search limit is 'at its bound'."""
RESTART_SHIFT_FRACTIONS = (0.0, -0.5, 0.5)
"""Restart shifts (fractions of ``max_shift_ppm``) tried when a fit ends at a bound."""


def parameters_at_bounds(problem: M.FitProblem, theta: np.ndarray,
                         amplitudes: np.ndarray | None = None,
                         own_shifts: bool = True) -> list:
    """Names of the non-linear parameters that end at a search limit.

    Search limits are the shift and first-order phase bounds (both sides) and the upper
    limits of the Lorentzian and Gaussian widths; a parameter whose limits coincide is fixed,
    not searched, and never reported. A width of zero is the physical limit (no
    broadening added to the basis), not a search limit, so it is not reported. With
    ``amplitudes``, the widths and shift of a group whose components are all zero (e.g. lipids
    in a lipid-free spectrum) are undetermined, not at a limit, and are not reported either.
    Per-metabolite shifts at their limit (``model.theta_bounds``) are reported unless
    ``own_shifts`` is False (a zero amplitude leaves them undetermined: not reported).
    """
    # a zero range (e.g. max_gauss_hz = 0: Lorentzian lines only) fixes the parameter: it is
    # not searched, so it is not at a search limit
    finite = (np.isfinite(problem.upper) & np.isfinite(problem.lower)
              & (problem.upper > problem.lower))
    tol = BOUND_TOLERANCE * np.where(finite, problem.upper - problem.lower, 0.0)
    k = problem.n_groups
    at_upper = finite & (theta >= np.where(finite, problem.upper, 0.0) - tol)
    at_lower = finite & (theta <= np.where(finite, problem.lower, 0.0) + tol)
    at_lower[:2 * k] = False
    if amplitudes is not None:
        empty = np.array([not np.any(np.asarray(amplitudes)[problem.group_of == g] > 0)
                          for g in range(k)])
        for kind in range(3):
            at_upper[kind * k:(kind + 1) * k] &= ~empty
            at_lower[kind * k:(kind + 1) * k] &= ~empty
        own = problem.own_shift
        zero = np.asarray(amplitudes)[own] <= 0
        for side in (at_upper, at_lower):
            side[problem.n_base_theta:problem.n_theta] &= ~zero
    if not own_shifts:
        at_upper[problem.n_base_theta:] = False
        at_lower[problem.n_base_theta:] = False
    names = problem.theta_names()
    return [names[i] + (" (upper)" if at_upper[i] else " (lower)")
            for i in np.flatnonzero(at_upper | at_lower)]


def restart_points(problem: M.FitProblem, theta0: np.ndarray) -> list:
    """Other starts for a fit that ended at a bound: the first start with every group's shift
    moved to each of ``RESTART_SHIFT_FRACTIONS`` of the bound, zero-order phase kept, and with
    widths back at their starting values."""
    k = problem.n_groups
    starts = []
    for fraction in RESTART_SHIFT_FRACTIONS:
        theta = theta0.copy()
        centre = 0.5 * (problem.upper[2 * k:3 * k] + problem.lower[2 * k:3 * k])
        half = 0.5 * (problem.upper[2 * k:3 * k] - problem.lower[2 * k:3 * k])
        theta[2 * k:3 * k] = centre + fraction * half
        if problem.fit_phase1:
            theta[problem.n_base_theta - 1] = 0.0
        theta[problem.n_base_theta:] = 0.0
        starts.append(theta)
    return starts


def _retry_at_bounds(objective: SpectrumObjective, result, theta0, options: FitOptions,
                     solve: WithPrior, ftol: float | None = None):
    """When the fit ends with a parameter at a search limit, refit from other starts and keep
    the lowest cost, preferring fits with no parameter at a limit (cost within 1 %)."""
    problem = objective.problem
    def limited(theta):
        return parameters_at_bounds(problem, theta, objective.evaluate(theta)[-1],
                                    own_shifts=False)

    if not limited(result.x):
        return result, 0
    tried = [result]
    for start in restart_points(problem, theta0):
        start = start.copy()
        start[3 * problem.n_groups] = initial_phase0(objective, start)
        tried.append(levenberg_marquardt(solve.residual, solve.jacobian, start, problem.lower,
                                         problem.upper, options.max_iterations, ftol=ftol))
    best_cost = min(r.cost for r in tried)
    inside = [r for r in tried if not limited(r.x)
              and r.cost <= 1.01 * best_cost]
    chosen = min(inside or tried, key=lambda r: r.cost)
    return chosen, len(tried) - 1


def output_fids(problem: M.FitProblem, theta: np.ndarray, amplitudes: np.ndarray,
                baseline_coef: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fitted, baseline, per-component) FIDs on the data grid; ``baseline_coef`` in data units.

    The baseline exists only inside the fitted window (zero elsewhere in the spectrum).
    """
    component_spectra = M.full_component_spectra(problem, theta) * amplitudes[:, None]
    component_fids = spectrum_to_fid(component_spectra)
    baseline_spectrum = np.zeros(problem.n_points, dtype=complex)
    half = baseline_coef.size // 2
    if half:
        design = problem.baseline_matrix
        baseline_spectrum[problem.window] = (design @ baseline_coef[:half]
                                             + 1j * design @ baseline_coef[half:])
    baseline_fid = spectrum_to_fid(baseline_spectrum)
    return component_fids.sum(axis=0) + baseline_fid, baseline_fid, component_fids


def _as_options(options) -> FitOptions:
    if options is None:
        return FitOptions()
    if isinstance(options, dict):
        return FitOptions.from_dict(options)
    return options


def _scaled_sigma(objective: SpectrumObjective, theta, spectrum, scale, options) -> float:
    """Noise SD per real spectral point in scaled units, from the residual or a region."""
    problem = objective.problem
    if options.noise == "region":
        return region_noise_sd(problem, spectrum[None, :], options) / scale
    _, _, a_aug, _, coef = objective.evaluate(theta)
    obs_res = (objective.y_aug - a_aug @ coef)[:objective.n_obs]
    base = objective.projector.coefficients(objective.y_aug - a_aug @ coef)
    obs_res = obs_res - objective.free_aug[:objective.n_obs] @ base
    n_params = (np.count_nonzero(coef) + objective.projector.hat_trace(objective.n_obs)
                + problem.n_theta)
    return sigma_from_residual(obs_res, int(round(n_params)))


def _assemble(objective: SpectrumObjective, result, fid, spectrum, scale, options,
              theta_prior: np.ndarray) -> SpectralFit:
    """The fit result; ``theta_prior`` (n_rows, n_theta) are the Gaussian prior rows on the
    non-linear parameters (per-metabolite shifts), part of the covariance with the penalties."""
    problem = objective.problem
    theta = result.x.copy()
    k = problem.n_groups
    theta[3 * k] = np.angle(np.exp(1j * theta[3 * k]))
    cols, fids, a_aug, a_perp, coef = objective.evaluate(result.x)
    base_coef = objective.projector.coefficients(objective.y_aug - a_aug @ coef)
    sigma_scaled = _scaled_sigma(objective, result.x, spectrum, scale, options)

    n_obs = objective.n_obs
    jac = np.hstack([a_aug[:n_obs], objective.free_aug[:n_obs],
                     objective.model_derivatives(result.x)[:n_obs]])
    n_m, n_b = problem.n_metab, objective.free_aug.shape[1]
    prior = np.zeros((a_aug.shape[0] - n_obs, jac.shape[1]))
    prior[:, :n_m] = a_aug[n_obs:]
    prior[:, n_m:n_m + n_b] = objective.free_aug[n_obs:]
    shift_prior = np.zeros((theta_prior.shape[0], jac.shape[1]))
    shift_prior[:, n_m + n_b:] = theta_prior
    prior = np.vstack([prior, shift_prior])
    amplitude_rows = np.zeros(prior.shape[0], dtype=bool)
    amplitude_rows[objective.n_pad:a_aug.shape[0] - n_obs] = True
    cov_scaled, share = covariance_and_prior_share(jac, sigma_scaled, prior, amplitude_rows)

    to_amp = scale / problem.column_norms
    amplitudes = coef * to_amp
    cov = cov_scaled[:n_m, :n_m] * np.outer(to_amp, to_amp)
    crlb = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    theta_crlb = np.sqrt(np.clip(np.diag(cov_scaled)[n_m + n_b:], 0.0, None))

    fitted_fid, baseline_fid, component_fids = output_fids(problem, result.x, amplitudes,
                                                           base_coef * scale)
    damp, gauss, shift, _, phi1 = problem.split(theta)
    return SpectralFit(
        names=list(problem.names), amplitudes=amplitudes, crlb=crlb, covariance=cov,
        fitted_fid=fitted_fid, baseline_fid=baseline_fid, residual_fid=fid - fitted_fid,
        component_fids=component_fids,
        sums=metabolite_sums(problem.names, amplitudes, cov), sigma=sigma_scaled * scale,
        lorentz_fwhm_hz=dict(zip(problem.group_names, M.damp_to_lorentz_fwhm(damp).tolist())),
        gauss_fwhm_hz=dict(zip(problem.group_names, M.gauss_rate_to_fwhm(gauss).tolist())),
        shift_hz=dict(zip(problem.group_names, np.asarray(shift, dtype=float).tolist())),
        phase0_deg=float(np.rad2deg(theta[3 * k])),
        phase1_deg_per_ppm=float(-np.rad2deg(2 * np.pi * phi1 * problem.cf_mhz)),
        ppm_range=tuple(options.ppm_range), theta=theta, theta_crlb=theta_crlb,
        n_iterations=int(result.njev), success=bool(result.status > 0),
        message=str(result.message),
        extra={"data_scale": scale, "coef_scaled": coef, "problem": problem,
               "prior_variance_share": dict(zip(problem.names, share[:n_m].tolist()))})
