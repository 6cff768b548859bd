"""Fit every diffusion condition of an acquisition: sequential or joint, one amplitude scale."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ..basis import Basis
from ..diffusion.applicability import DETECTION_SD_FACTOR
from ..diffusion.tensor import decay_direction_labels
from ..spectra import fid_to_spectrum
from ..units import b_s_mm2_to_ms_um2
from . import model as M
from .joint import fit_joint
from .options import FitOptions, is_mm_name
from .results import ConditionFits, SpectralFit
from .monotone import CAP_FLAG
from .uncertainty import crlb_percent, weighted_sum
from .single import _as_options, fit_spectrum
from .time_offset import (MAX_DELAY_POINTS, at_phase1_limit, on_input_grid,
                          one_point_phase1_deg_per_ppm, phase1_limit_deg_per_ppm,
                          started_on_time, whole_point_delay)

FIXED_MM_NAME = "MM"


def mm_indices(names) -> list[int]:
    """Positions of the macromolecule entries (MM*/Mac*; lipids are not MM) in ``names``."""
    return [i for i, n in enumerate(names) if is_mm_name(n)]


def fixed_shape_mm_basis(fit: SpectralFit, options: FitOptions) -> tuple[Basis, FitOptions]:
    """Basis (on the data grid) whose MM entries are replaced by one fixed-shape entry ``MM``.

    The shape is the fitted MM combination of ``fit`` (normally the highest b), including the MM
    group's lineshape and shift *relative to* the metabolites' (so it follows the metabolites'
    lineshape at other conditions). Its amplitude is 1 at the condition it came from.
    Returns the new basis and options that put ``MM`` in the metabolite lineshape group.
    """
    problem: M.FitProblem = fit.extra["problem"]
    mm = mm_indices(problem.names)
    keep = [i for i in range(len(problem.names)) if i not in mm]
    if not mm:
        raise ValueError("fit options: mm_mode 'fixed_shape_from_highest_b' needs MM entries "
                         f"(names starting MM or Mac) in the basis; got {problem.names}")
    damp, gauss, shift, _, _ = problem.split(fit.theta)
    met_group = problem.group_of[keep[0]] if keep else problem.group_of[mm[0]]
    t = problem.t_s
    combined = np.zeros(problem.n_points, dtype=complex)
    for i in mm:
        g = problem.group_of[i]
        env = np.exp(-max(damp[g] - damp[met_group], 0.0) * t
                     - max(gauss[g] - gauss[met_group], 0.0) * t ** 2
                     + 2j * np.pi * (shift[g] - shift[met_group]) * t)
        combined += fit.amplitudes[i] * problem.basis_fids[i] * env
    if not np.any(combined):
        raise ValueError("fixed-shape MM: every MM component was fitted as zero at the highest b")
    names = [problem.names[i] for i in keep] + [FIXED_MM_NAME]
    fids = np.vstack([problem.basis_fids[keep], combined[None, :]])
    basis = Basis(names, fids, problem.dwell_s, problem.cf_mhz, problem.ref_ppm,
                  provenance={"fixed_shape_mm": {"components": [problem.names[i] for i in mm],
                                                 "amplitudes": fit.amplitudes[mm].tolist()}})
    met_name = problem.group_names[met_group]
    groups = {g: list(v) for g, v in options.lineshape_groups.items()}
    groups[met_name] = groups.get(met_name, []) + [FIXED_MM_NAME]
    return basis, dataclasses.replace(options, lineshape_groups=groups, metabolites=None)


SERIES_FTOL = 1e-6
"""The solver's stop (relative cost decrease) in the per-condition fits of a diffusion series,
tighter than the single-spectrum default (a chi-square decrease of 0.01, about 1e-5 for one
spectrum). They start the joint fit, which lands on a nearby minimum that depends on its start:
with the looser stop the published 7 T set's decays moved by up to 0.002 (tNAA 0.0034 ->
0.0035, Gln 0.0194 -> 0.0212; a tighter stop of the joint fit itself did not move them back).
Series are not on the single-spectrum speed path; with this stop their results are those of
before the single-spectrum change."""


def series_options(options: FitOptions) -> FitOptions:
    """The options of a series of two or more b-values: without what a per-condition decision
    would make differ along the decay. The weak-metabolite priors would pull each weak
    metabolite's decay towards the big singlets' (published 7 T set, sequential: tCho decay
    error 0.008 -> 0.015); the adaptive lineshape kernel (``lineshape_kernel_min_fit_quality``
    > 0) would change the lineshape model at some conditions only, and a stiffness chosen per
    spectrum (``baseline_stiffness_choices``) the baseline's flexibility. The basis loses the
    residual-water window's lines (``basis_without_water_lines = "series"``: measured on the
    published 7 T set, README "dMRS defaults"). Every metabolite's own shift has one prior SD
    (``metabolite_shift_sd_factors`` empty): LCModel's tighter NAA shift moved the independent
    dMRS set's decays and b = 0 ratios away from their truth (README "Default fit")."""
    adaptive_kernel = (options.lineshape_kernel_hz > 0
                       and options.lineshape_kernel_min_fit_quality > 0)
    without_lines = ("always" if options.basis_without_water_lines == "series"
                     else options.basis_without_water_lines)
    return dataclasses.replace(options, weak_metabolite_priors=False,
                               lineshape_kernel_hz=0.0 if adaptive_kernel
                               else options.lineshape_kernel_hz,
                               basis_without_water_lines=without_lines,
                               baseline_stiffness_choices=(), metabolite_shift_sd_factors={})


def joint_fit_options(options: FitOptions) -> FitOptions:
    """The options of a joint fit: its baseline is ``joint_baseline`` (``same``: unchanged)."""
    if options.joint_baseline == "same":
        return options
    return dataclasses.replace(options, baseline=options.joint_baseline)


def fit_conditions(fids: np.ndarray, basis: Basis, dwell_s: float, cf_mhz: float,
                   b_values_s_mm2, options: FitOptions | dict | None = None, *,
                   ref_ppm: float | None = None, directions=None) -> ConditionFits:
    """Fit ``fids`` (n_conditions, n_points) with identical settings, sequentially or jointly.

    All conditions share one data scale (from the lowest b), one prepared model and the same
    baseline stiffness, so amplitudes are directly comparable across conditions.
    ``directions`` (n_conditions, 3; NaN rows for none): gradient directions; along two or more
    distinct directions the joint fit's decay constraint holds one decay per direction, all
    sharing the b = 0 condition (anisotropy: the conditions are not one decay in b, even when
    each has its own b-value).
    """
    options = _as_options(options)
    fids = np.atleast_2d(np.asarray(fids, dtype=complex))
    b = np.asarray(b_values_s_mm2, dtype=float).reshape(-1)
    if fids.ndim != 2 or b.size != fids.shape[0]:
        raise ValueError(f"fit_conditions: {fids.shape[0]} conditions but {b.size} b-values "
                         f"(fids must be (n_conditions, n_points), got {fids.shape})")
    n_points = fids.shape[1]
    extra = {}
    note = joint_mode_refusal(b, options.joint_max_conditions) if options.mode == "joint" else None
    if note:
        extra["note"] = note
    if note and b.size > options.joint_max_conditions:  # not for a single b: fit.json unchanged
        warnings.warn(note, UserWarning, stacklevel=2)
        options = dataclasses.replace(options, mode="sequential")
    if np.unique(b).size >= 2:
        options = series_options(options)
    if options.mode == "joint" and np.unique(b).size >= 2:
        options = joint_fit_options(options)
    fixed_shape = options.mm_mode == "fixed_shape_from_highest_b"
    free_mm = dataclasses.replace(options, mm_mode="free") if fixed_shape else options
    series_ftol = SERIES_FTOL if np.unique(b).size >= 2 else None
    problem = M.build_problem(basis, dwell_s, n_points, cf_mhz, free_mm, ref_ppm)
    input_fids = fids
    (spectra, scale, sequential), delay = _delay_searched(fids, b, basis, problem, free_mm,
                                                          series_ftol)
    if delay:
        fids = started_on_time(input_fids, delay)
    if fixed_shape:  # the MM shape of the highest b, taken from the FIDs as moved
        high_fit = fit_spectrum(fids[int(np.argmax(b))], basis, dwell_s, cf_mhz, free_mm,
                                ref_ppm=ref_ppm)
        basis, options = fixed_shape_mm_basis(high_fit, free_mm)
        extra["fixed_shape_mm"] = basis.provenance["fixed_shape_mm"]
        problem = M.build_problem(basis, dwell_s, n_points, cf_mhz, options, basis.ref_ppm)
        spectra, scale, sequential = _fitted_each(fids, b, basis, problem, options, series_ftol)
    extra["baseline"] = options.baseline_record()  # joint series: joint_baseline
    # the options after the series and joint adjustments (series_options, joint_fit_options,
    # fixed-shape MM): what the fits below used, which the configured options are not
    extra["options_used"] = options.to_dict()
    if options.basis_window_ppm:
        extra["basis_without_water_lines_ppm"] = list(options.basis_window_ppm)
    if delay:
        extra["fid_delay_points"] = delay
    if options.reference_singlets:  # the joint search covers every condition's referenced range
        problem = dataclasses.replace(
            problem, lower=np.min([f.extra["problem"].lower for f in sequential], axis=0),
            upper=np.max([f.extra["problem"].upper for f in sequential], axis=0))
    if options.mode == "sequential" or "note" in extra:
        return ConditionFits(problem.names, b, _on_input_grid(sequential, input_fids, delay),
                             "sequential", extra=extra)
    groups = (None if directions is None
              else decay_direction_labels(directions, b_s_mm2_to_ms_um2(b)))
    fits, diffusion = fit_joint(spectra, fids, problem, b, options, scale, sequential, groups)
    extra["sequential"] = _on_input_grid(sequential, input_fids, delay)
    return ConditionFits(problem.names, b, _on_input_grid(fits, input_fids, delay), "joint",
                         diffusion=diffusion, extra=extra)


def _delay_searched(fids: np.ndarray, b: np.ndarray, basis: Basis, problem: M.FitProblem,
                    options: FitOptions, ftol: float | None):
    """(``_fitted_each`` of the FIDs as they are to be fitted, their delay in points): FIDs
    whose fits' first-order phase is that of whole points lost or gained
    (``time_offset.whole_point_delay``) are moved and fitted again, until they no longer are;
    moves that never take the fits off the phase's search limit are undone (delay 0)."""
    on_time = _fitted_each(fids, b, basis, problem, options, ftol)
    fitted, delay, tried = on_time, 0, {0}
    limit = (phase1_limit_deg_per_ppm(problem.upper[problem.n_base_theta - 1], problem.cf_mhz)
             if problem.fit_phase1 else 0.0)
    while problem.fit_phase1:
        step = whole_point_delay(_phases(fitted[2]), problem.dwell_s, problem.cf_mhz, limit)
        if not step or delay + step in tried or abs(delay + step) > MAX_DELAY_POINTS:
            break
        delay += step
        tried.add(delay)
        fitted = _fitted_each(started_on_time(fids, delay), b, basis, problem, options, ftol)
    if delay and at_phase1_limit(_phases(fitted[2]), limit):
        return on_time, 0  # still at the search limit after every move: not a delay
    if delay:
        warnings.warn(delay_note(delay, _phases(on_time[2]), problem.dwell_s, problem.cf_mhz),
                      UserWarning, stacklevel=3)
    return fitted, delay


def _phases(fits: list) -> list:
    return [f.phase1_deg_per_ppm for f in fits]


def _fitted_each(fids: np.ndarray, b: np.ndarray, basis: Basis, problem: M.FitProblem,
                 options: FitOptions, ftol: float | None):
    """The conditions' windowed spectra, their common scale (from the lowest b) and each
    condition fitted alone with it."""
    spectra = fid_to_spectrum(fids)[:, problem.window]
    scale = float(np.max(np.abs(spectra[int(np.argmin(b))]))) or 1.0
    sequential = [fit_spectrum(f, basis, problem.dwell_s, problem.cf_mhz, options,
                               problem=problem, data_scale=scale, ftol=ftol) for f in fids]
    return spectra, scale, sequential


def delay_note(delay_points: int, phases_deg_per_ppm: list, dwell_s: float,
               cf_mhz: float) -> str:
    """The warning for FIDs found to start whole points late or early (``phases``: the
    first-order phases of the conditions' fits before any move)."""
    median = float(np.median(phases_deg_per_ppm))
    side = "late" if delay_points > 0 else "early"
    return (f"fit: the conditions' first-order phase (median {median:.1f} deg/ppm) is that of "
            f"FIDs starting {abs(delay_points)} point(s) {side} "
            f"({one_point_phase1_deg_per_ppm(dwell_s, cf_mhz):.1f} deg/ppm a point: an "
            f"export's first-point convention?); the conditions were fitted with their FIDs "
            f"moved {abs(delay_points)} point(s) {'later' if delay_points > 0 else 'earlier'} "
            f"(fit.json fid_delay_points; phases are those of the moved FIDs)")


def _on_input_grid(fits: list, input_fids: np.ndarray, delay_points: int) -> list:
    """Fits of FIDs moved by ``delay_points`` with their FIDs back on the input's grid."""
    if not delay_points:
        return fits
    moved = []
    for fit, fid in zip(fits, input_fids):
        fitted = on_input_grid(fit.fitted_fid, delay_points)
        moved.append(dataclasses.replace(
            fit, fitted_fid=fitted, residual_fid=fid - fitted,
            baseline_fid=on_input_grid(fit.baseline_fid, delay_points),
            component_fids=on_input_grid(fit.component_fids, delay_points)))
    return moved


def joint_mode_refusal(b_values_s_mm2: np.ndarray, max_conditions: int) -> str | None:
    """Why a series cannot be fitted jointly (it is then fitted sequentially), or None."""
    if np.unique(b_values_s_mm2).size < 2:
        return "joint mode needs at least two distinct b-values: fitted sequentially"
    if b_values_s_mm2.size > max_conditions:
        return (f"{b_values_s_mm2.size} conditions are more than joint_max_conditions = "
                f"{max_conditions}: fitted sequentially (a joint fit's time grows about as the "
                "square of the number of conditions; raise [fitting] joint_max_conditions to "
                "fit them jointly)")
    return None


MM_TOTAL_NAME = "MM"
"""Row name of the total of the fitted macromolecule components in ``_amplitudes.tsv``."""


def unmeasured_entries(fit: SpectralFit) -> list:
    """Names the fit modelled as nuisance, not measurements (``FitProblem.unmeasured``:
    MM/lipid entries mostly outside the window), left out of the amplitude table."""
    problem = fit.extra.get("problem")
    return list(getattr(problem, "unmeasured", []))


def mm_total(names, amplitudes, covariance, unmeasured=()) -> tuple[float, float] | None:
    """``(sum, crlb)`` of the macromolecule components (entries named MM*/Mac*, lipids and
    ``unmeasured`` ones excluded), the CRLB from the amplitude covariance (``sqrt(w' C w)``:
    anti-correlated components, common between neighbouring MM lines, make it smaller than
    the summed CRLBs).

    ``None`` when fewer than two components were fitted or an entry is already named "MM"
    (a measured MM spectrum or a fixed-shape MM: its own row is the total)."""
    names = list(names)
    members = [i for i in mm_indices(names) if names[i] not in unmeasured]
    if len(members) < 2 or MM_TOTAL_NAME in names:
        return None
    w = np.zeros(len(names))
    w[members] = 1.0
    return weighted_sum(w, amplitudes, covariance)


def row_fit_flags(fit: SpectralFit) -> dict:
    """metabolite -> warnings that belong next to its amplitude: its own frequency shift left at
    a search limit (e.g. Ala pulled onto a lipid line) and a precision that comes mostly from
    the soft priors (``PRIOR_DOMINATED_SHARE``); a decay held at the cap of the joint fit's
    decay constraint (``monotone.CAP_FLAG``); the fit-level QC warnings say the same."""
    problem = fit.extra.get("problem")
    own = set() if problem is None else {problem.names[m] for m in problem.own_shift}
    out = {}
    for parameter in fit.at_bounds:
        name = _shape_owner(parameter)
        if parameter.startswith("shift_hz[") and name in own:
            side = "upper" if parameter.endswith("(upper)") else "lower"
            out.setdefault(name, []).append(f"own shift at its {side} search limit")
    for name, share in fit.extra.get("prior_variance_share", {}).items():
        if share >= PRIOR_DOMINATED_SHARE:
            out.setdefault(name, []).append(f"{share:.0%} of the variance removed by the priors")
    for name in fit.extra.get("decay_at_cap", []):
        out.setdefault(name, []).append(CAP_FLAG)
    return out


def amplitudes_table(fits) -> list[dict]:
    """Rows for ``_amplitudes.tsv``: condition, b_value_s_mm2, metabolite, amplitude, crlb,
    crlb_percent, fit_flags (:func:`row_fit_flags`) — every fitted metabolite, the sums tNAA, tCr, tCho, Glx, and "MM", the total
    of the parametric macromolecule components when there are several (:func:`mm_total`), so
    that the MM decay can be read and modelled. Entries fitted as nuisance
    (:func:`unmeasured_entries`) have no row and are not in the total.

    Accepts a :class:`ConditionFits`, one :class:`SpectralFit` or a list of them.
    """
    if isinstance(fits, ConditionFits):
        items, b = fits.fits, fits.b_values_s_mm2
    elif isinstance(fits, SpectralFit):
        items, b = [fits], [float("nan")]
    else:
        items, b = list(fits), [float("nan")] * len(fits)
    rows = []
    for c, (fit, b_value) in enumerate(zip(items, b)):
        unmeasured = unmeasured_entries(fit)
        entries = [(n, float(a), float(s)) for n, a, s in zip(fit.names, fit.amplitudes,
                                                                fit.crlb) if n not in unmeasured]
        entries += [(n, float(v), float(s)) for n, (v, s) in fit.sums.items()]
        total = mm_total(fit.names, fit.amplitudes, fit.covariance, unmeasured)
        if total is not None:
            entries.append((MM_TOTAL_NAME, *total))
        notes = row_fit_flags(fit)
        for name, amp, crlb in entries:
            rows.append({"condition": c, "b_value_s_mm2": float(b_value), "metabolite": name,
                         "amplitude": amp, "crlb": crlb,
                         "crlb_percent": crlb_percent(amp, crlb),
                         "fit_flags": "; ".join(notes.get(name, [])) or None})
    return rows


def detected(amplitudes: np.ndarray, covariance: np.ndarray, members: np.ndarray) -> bool:
    """Whether the summed amplitude of ``members`` (boolean mask) exceeds
    ``DETECTION_SD_FACTOR`` times its CRLB (from the covariance; entries the data do not
    measure, with infinite variance, are left out of the sum)."""
    members = np.asarray(members, bool) & np.isfinite(np.diag(covariance))
    if not np.any(members):
        return False
    total, sd = weighted_sum(members.astype(float), amplitudes, covariance)
    return total > DETECTION_SD_FACTOR * sd


def undetected_shape_owners(fit: SpectralFit) -> set:
    """Lineshape groups and own-shift metabolites whose summed amplitude is not detected in
    ``fit`` (within ``DETECTION_SD_FACTOR`` CRLBs of 0; entries modelled as nuisance, such
    as MM42 mostly outside the window, not counted): the data do not determine their widths
    and shifts, so a search limit there says nothing about the fit."""
    problem = fit.extra.get("problem")
    if problem is None:
        return set()
    amplitudes, covariance = np.asarray(fit.amplitudes), np.asarray(fit.covariance)
    names = np.asarray(problem.names)
    measured = ~np.isin(names, unmeasured_entries(fit))
    groups = {g for i, g in enumerate(problem.group_names)
              if not detected(amplitudes, covariance, measured & (problem.group_of == i))}
    return groups | {n for n in problem.names
                     if not detected(amplitudes, covariance, measured & (names == n))}


def _shape_owner(parameter: str) -> str:
    """``lipids`` from ``gauss[lipids] (upper)``; "" for a parameter of no group (phases)."""
    start, end = parameter.find("["), parameter.find("]")
    return parameter[start + 1:end] if 0 <= start < end else ""


def bound_flags(fits, condition_text) -> list[str]:
    """QC warnings for non-linear parameters still at a search limit after the restarts, so
    none is left silent: one per set of parameters, naming every condition where that set
    ended at its limits (``condition_text``: index -> readable label; a 10-condition series
    gave ten warnings for one MM shift before). Limits reached by the shape of components the
    fit did not detect get their own wording: undetermined, not a fit problem."""
    conditions, undetermined = {}, {}
    for c, fit in enumerate(fits.fits):
        idle = undetected_shape_owners(fit)
        limited = [p for p in fit.at_bounds if _shape_owner(p) not in idle]
        unsettled = [p for p in fit.at_bounds if _shape_owner(p) in idle]
        for found, into in ((limited, conditions), (unsettled, undetermined)):
            if found:
                into.setdefault(", ".join(map(str, found)), []).append(c)
    def where(cs):
        return conditions_phrase(cs, len(fits.fits), condition_text)

    return ([f"fit: {where(cs)}: {limited} at its search limit after restarts (check the "
             "spectrum's referencing, phase and [fitting] limits)"
             for limited, cs in conditions.items()]
            + [f"fit: {where(cs)}: {unsettled} at its search limit, for components not "
               f"detected (each amplitude within {DETECTION_SD_FACTOR:g} CRLB of 0), whose "
               "shape the data do not determine"
               for unsettled, cs in undetermined.items()])


def conditions_phrase(conditions: list, n_conditions: int, condition_text) -> str:
    """The conditions a warning concerns: ``every condition (n)`` when it is all of two or
    more (a joint fit's shared parameter: the in-vivo 7 T warnings listed all ten conditions
    with their b-values and directions), else each one's label, ``;``-separated."""
    if n_conditions > 1 and len(conditions) == n_conditions:
        return f"every condition ({n_conditions})"
    return "; ".join(map(condition_text, conditions))


def absent_mm_flags(fits) -> list[str]:
    """A QC warning when the basis has macromolecule entries and the fit gave every one of them
    0 in every condition: their shape does not match this spectrum's macromolecules, whose
    signal went to the baseline and the other entries, so the MM values and decay are not
    measured (the published pregame basis' ``Mac`` on the in-vivo 7 T dMRS participant: 0 at
    all 10 b-values, with the lipid and alanine entries taking the 0.9-1.5 ppm signal)."""
    members = mm_indices(fits.names)
    if not members or any(np.any(np.asarray(f.amplitudes)[members] > 0) for f in fits.fits):
        return []
    names = ", ".join(fits.names[i] for i in members)
    return [f"fit: the macromolecule entries ({names}) are 0 in every condition: their shape "
            "does not fit this spectrum's macromolecules, whose signal went to the baseline and "
            "the other entries, so MM values and decays are not measured (try [macromolecules] "
            "mode = \"parametric\", or a measured MM spectrum)"]


PRIOR_DOMINATED_SHARE = 0.5
"""A metabolite whose variance the amplitude priors cut by at least this fraction is flagged:
its value and CRLB then come more from the prior than from the data."""


def prior_flags(fits, condition_text) -> list[str]:
    """QC warnings naming, per condition, the metabolites whose precision comes mostly from
    the amplitude priors (``SpectralFit.extra["prior_variance_share"]``)."""
    flags = []
    for c, fit in enumerate(fits.fits):
        share = fit.extra.get("prior_variance_share", {})
        held = [f"{name} ({value:.0%})" for name, value in share.items()
                if value >= PRIOR_DOMINATED_SHARE]
        if held:
            flags.append(f"fit: {condition_text(c)}: {', '.join(held)} of the variance removed "
                         "by the soft priors: these values and CRLBs reflect the prior more "
                         "than the data ([fitting] weak_metabolite_priors)")
    return flags
