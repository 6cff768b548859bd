"""Applicability of each diffusion model to an acquisition, following the dMRS consensus.

Consensus (Ligneul et al., MRM 2024, section 5): the mono-exponential ADC holds only up to
b of about 3-5 ms/um^2, the kurtosis (cumulant) expansion up to about 10 ms/um^2, the
bi-exponential describes decays extending above; the cylinder radius is only identifiable
when the perpendicular attenuation it produces exceeds the noise at the highest b (and its
standard error is below half its value). Each rule
returns ``(applicable, note)`` to be written into ``_diffusion.tsv``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from pipeline.diffusion import signals

MONO_B_LIMIT_MS_UM2 = 5.0
KURTOSIS_B_LIMIT_MS_UM2 = 10.0
BIEXP_B_MIN_MS_UM2 = 10.0
RADIUS_Z_SCORE = 1.64
RADIUS_MAX_RELATIVE_ERROR = 0.5

FREE_WATER_DIFFUSIVITY_37C_UM2_MS = 3.0
"""Self-diffusion of water at body temperature: 2.3 um^2/ms at 25 C and about 3.0 um^2/ms at
37 C (Mills, J Phys Chem 1973;77:685; Holz, Heil & Sacco, PCCP 2000;2:4740). No apparent
diffusivity of a metabolite (or of water) in tissue can exceed it."""

METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS = 1.4
"""Upper limit for a metabolite's diffusivity (ADC, intra-cellular D, fast pool, tensor): the
free aqueous diffusivity of glycine, the smallest common brain metabolite, 1.06 um^2/ms at 25 C
(Longsworth, J Am Chem Soc 1953;75:5705), scaled to 37 C by Stokes-Einstein (T/eta: x 1.34
with water viscosity 0.890 -> 0.692 mPa s, Kestin et al., J Phys Chem Ref Data 1978;7:941).
Every larger metabolite (NAA, Cr, Cho, Glu, Ins, Tau) is slower in water, and the cytosol slows
it further (intra-cellular D ~0.3-0.6 um^2/ms, Palombo et al., PNAS 2016;113:6671), so a value
above this limit is not physical."""

DETECTION_SD_FACTOR = 2.0
"""A signal is detected when it exceeds this many standard deviations (CRLBs): below, its
shape (lineshape, decay) is not determined by the data."""

KURTOSIS_RANGE = (0.0, 3.0)
"""Physical apparent kurtosis of metabolite decays (dMRS consensus, Ligneul et al. 2024): K_app
is non-negative for a mixture of Gaussian/restricted pools and below 3 (sticks: 1.2)."""


def distinct_b(b_ms_um2) -> int:
    """Number of shells among the b-values used (b within 15 %, ``powder.group_shells``)."""
    from pipeline.diffusion.powder import group_shells
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    return int(group_shells(b).b_mean_ms_um2.size) if b.size else 0


def radius_resolution_limit_um(sigma_normalised, b_max_ms_um2, d_intra, small_delta_ms, big_delta_ms,
                               n_points: int, z: float = RADIUS_Z_SCORE) -> float:
    """Smallest radius whose perpendicular attenuation at b_max exceeds the detectable noise.

    After Nilsson et al., NMR Biomed 2017: detectable when 1 - exp(-b D_perp(R)) >= z sigma /
    sqrt(n), with D_perp from the Gaussian phase approximation (finite pulses, not the
    long-pulse limit). Returns inf when even R = 20 um is not resolvable.
    """
    threshold = z * sigma_normalised / np.sqrt(max(n_points, 1))
    if threshold >= 1:
        return float("inf")

    def excess(radius_um):
        d_perp = signals.cylinder_perpendicular_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms)
        return -np.expm1(-b_max_ms_um2 * float(d_perp)) - threshold

    if excess(20.0) < 0:
        return float("inf")
    if excess(1e-3) >= 0:  # noise-free data: every radius leaves a detectable signature
        return 0.0
    return float(brentq(excess, 1e-3, 20.0, xtol=1e-4))


def regime_note(echo_time_ms=None, diffusion_time_ms=None) -> str:
    """Plain-language note on the TE and diffusion-time regime of the measurement."""
    parts = []
    if diffusion_time_ms is not None:
        td = float(diffusion_time_ms)
        if td < 20:
            regime = "short: sensitive to sub-cellular restriction and cytosol viscosity"
        elif td <= 200:
            regime = "intermediate: fibre (cylinder/stick) geometry dominates"
        else:
            regime = "long: long-range cell morphology (branching, cell bodies) contributes"
        parts.append(f"diffusion time {td:.0f} ms ({regime})")
    if echo_time_ms is not None:
        parts.append(f"TE {float(echo_time_ms):.0f} ms (compartment fractions T2-weighted)")
    return "; ".join(parts)


BOUND_ATOL = 1e-6
BOUND_RTOL = 1e-5
"""A value is at a fit bound when within BOUND_ATOL * max(1, |bound|) + BOUND_RTOL * |bound|
of it (``np.isclose`` with that absolute tolerance): the trust-region solver stops a few 1e-5
short of an upper bound of 3 um^2/ms (e.g. ADC 2.99998 on the demo's lipid and MM decays)."""


def near_bound(values, bound) -> np.ndarray:
    """Which ``values`` sit at the finite entries of ``bound`` (same shape or broadcasting),
    within the tolerances above. The one definition of "at a bound" for the fit (which
    parameters a bound holds, profile SEs) and for the applicability note."""
    bound = np.asarray(bound, float)
    finite = np.isfinite(bound)
    at = np.abs(np.where(finite, bound, 0.0))
    tol = BOUND_ATOL * np.maximum(1.0, at) + BOUND_RTOL * at
    return finite & (np.abs(np.asarray(values, float) - np.where(finite, bound, 0.0)) <= tol)


def at_either_bound(values, lower, upper) -> np.ndarray:
    """``near_bound`` of the lower or of the upper bound."""
    return near_bound(values, lower) | near_bound(values, upper)


AT_BOUND_SE_FRACTION = 0.05
"""An estimate closer to a bound than this fraction of its standard error is at that bound
for the reader: the data cannot tell it from the bound (e.g. an MM ADC of 1e-6 +/- 0.9
um^2/ms against the bound 0, above ``near_bound``'s numerical tolerance)."""


def statistically_at_bound(values, std_errors, lower, upper) -> np.ndarray:
    """Which ``values`` lie within ``AT_BOUND_SE_FRACTION`` standard errors of a finite bound
    (non-finite standard errors never count)."""
    values, se = np.asarray(values, float), np.asarray(std_errors, float)
    margin = np.where(np.isfinite(se), AT_BOUND_SE_FRACTION * se, -np.inf)
    out = np.zeros(values.shape, dtype=bool)
    for bound in (np.asarray(lower, float), np.asarray(upper, float)):
        out |= np.isfinite(bound) & (np.abs(values - np.where(np.isfinite(bound), bound, 0.0))
                                     <= margin)
    return out


def _bound_note(fit) -> str:
    lo, hi = fit.model.bounds
    at = (at_either_bound(fit.params, lo, hi)
          | statistically_at_bound(fit.params, fit.std_errors, lo, hi))
    hit = [n for n, a in zip(fit.model.parameter_names, at) if a]
    return f"at bound: {', '.join(hit)}" if hit else ""


PHYSICAL_RANGE_BY_UNIT = {"um^2/ms": METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS,
                          "1": 1.0}
"""Width of the physical range of a parameter by unit (diffusivities [0, the metabolite limit],
fractions [0, 1]); K_app uses ``KURTOSIS_RANGE``. Radii have their own identifiability rule."""
UNDETERMINED_SE_FRACTION_OF_RANGE = 0.5
"""A standard error above half the physical range: +/- 2 SE spans the whole range twice, so the
data say nothing about the parameter. Deliberately not a relative-SE cut (SE / value), which
would drop small but measured values and bias group means (Kreis, NMR Biomed 2016;29:1091)."""


def undetermined_reasons(model, params, std_errors) -> list[str]:
    """Parameters the data do not determine: no standard error (the fit's information matrix
    does not separate them; any parameter but a cylinder radius, which has its own rule) or
    one above ``UNDETERMINED_SE_FRACTION_OF_RANGE`` of their physical range."""
    reasons = []
    for name, unit, value, se in zip(model.parameter_names, model.parameter_units, params,
                                     std_errors):
        width = (KURTOSIS_RANGE[1] - KURTOSIS_RANGE[0] if name in ("K", "K_app")
                 else PHYSICAL_RANGE_BY_UNIT.get(unit))
        if width is None and (unit != "um" or model.name in _BOUND_TOLERANT):
            continue  # a cylinder radius: the cylinders' own identifiability rule
        if not np.isfinite(se):  # any unit: a stick_sphere radius of 2e-5 um without SE
            reasons.append(f"{name} has no standard error: not determined by the data")
        elif width is not None and se > UNDETERMINED_SE_FRACTION_OF_RANGE * width:
            reasons.append(f"{name} = {float(value):.3g} +/- {float(se):.3g}: the standard error "
                           f"exceeds {UNDETERMINED_SE_FRACTION_OF_RANGE * width:g}, half the "
                           f"width of the physical range ({width:g}), not determined by the data")
    return reasons


def decay_cap_reason() -> str:
    """Why a metabolite's diffusion rows are not applicable when the joint fit's decay
    constraint held its decay at the dictionary's fastest diffusivity (``_amplitudes.tsv``
    ``fit_flags``): every parameter is then the cap's, not the data's."""
    from pipeline.fitting.monotone import CAP_FLAG, CAP_REMEDY  # fitting imports this module
    return f"{CAP_FLAG}: {CAP_REMEDY}"


def physical_limit_reasons(model, params) -> list[str]:
    """Reasons a fitted parameter vector is physically impossible (empty list: plausible).

    Diffusivities (unit um^2/ms) must lie in [0, FREE_WATER...] and, being metabolite
    diffusivities, at or below METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS; K in KURTOSIS_RANGE;
    fractions in [0, 1]; every value finite.
    """
    reasons = []
    for name, unit, value in zip(model.parameter_names, model.parameter_units, params):
        value = float(value)
        if not np.isfinite(value):
            reasons.append(f"{name} not finite")
        elif unit == "um^2/ms":
            if value < 0:
                reasons.append(f"{name} = {value:.3g} um^2/ms is negative")
            elif value > FREE_WATER_DIFFUSIVITY_37C_UM2_MS:
                reasons.append(f"{name} = {value:.3g} um^2/ms exceeds free water at 37 C "
                               f"({FREE_WATER_DIFFUSIVITY_37C_UM2_MS:g} um^2/ms)")
            elif value > METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS:
                reasons.append(f"{name} = {value:.3g} um^2/ms exceeds the free aqueous diffusivity "
                               f"of metabolites at 37 C ({METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS:g} um^2/ms)")
        elif name in ("K", "K_app"):
            lo, hi = KURTOSIS_RANGE
            if not lo <= value <= hi:
                reasons.append(f"{name} = {value:.3g} outside the physical range [{lo:g}, {hi:g}]")
        elif name.startswith("fraction") and not 0.0 <= value <= 1.0:
            reasons.append(f"{name} = {value:.3g} outside [0, 1]")
    return reasons


def _range_note(fit, b_all) -> str:
    if not fit.model.in_b_range(np.max(b_all)):
        return (f"fitted on b <= {fit.model.b_max_ms_um2:g} ms/um^2 "
                f"({fit.n_points} of {np.size(b_all)} points); "
                "the decay departs from this representation at higher b")
    return ""


def _needs_b_values(n_b: int, minimum: int, what: str) -> list[str]:
    return [] if n_b >= minimum else [f"{what} needs >= {minimum} distinct b-values, have {n_b}"]


def _kurtosis_rule(fit, n_b, b_top, sigma_normalised):
    """K is measurable with >= 3 shells, enough curvature (b ADC >= 0.5), monotonic decay."""
    adc, k = fit.params
    notes = _needs_b_values(n_b, 3, "kurtosis")
    if b_top * adc < 0.5:
        notes.append(f"b_max*ADC = {b_top * adc:.2g} < 0.5: curvature (K) not measurable")
    if k > 0 and b_top >= 3.0 / (adc * k):
        notes.append("fitted decay is non-monotonic within the b-range (b > 3/(ADC K))")
    return not notes, notes, {}


def _high_b_rule(label: str):
    """Bi-exponential-like models need >= 5 shells reaching beyond BIEXP_B_MIN_MS_UM2."""
    def rule(fit, n_b, b_top, sigma_normalised):
        if n_b >= 5 and b_top >= BIEXP_B_MIN_MS_UM2:
            return True, [], {}
        return False, [f"{label} needs >= 5 b-values up to > {BIEXP_B_MIN_MS_UM2:g} ms/um^2 "
                       f"(have {n_b}, b_max {b_top:.3g})"], {}
    return rule


def _monoexponential_rule(fit, n_b, b_top, sigma_normalised):
    notes = _needs_b_values(n_b, 2, "the ADC")
    return not notes, notes, {}


def _sticks_rule(fit, n_b, b_top, sigma_normalised):
    """Sticks need 2 shells; below b D_intra = 1 they act as ADC = D_intra/3 (noted, kept)."""
    notes = _needs_b_values(n_b, 2, "sticks")
    ok = not notes
    if b_top * fit.params[0] < 1.0:
        notes.append("b_max*D_intra < 1: sticks behave as ADC = D_intra/3; D_intra is model-driven")
    return ok, notes, {}


def with_se(value: float, se: float, unit: str) -> str:
    """``value +/- se unit`` for a note, or ``value unit (SE not available)`` when the fit gave
    no finite standard error: a note must never print ``nan`` (a reader cannot tell a missing
    SE from a formatting fault)."""
    if np.isfinite(se):
        return f"{value:.2g} +/- {se:.2g} {unit}"
    return f"{value:.2g} {unit} (SE not available)"


def _cylinders_rule(fit, n_b, b_top, sigma_normalised):
    """The radius (and so D_intra of the cylinders) is reported only where identifiable."""
    d_intra, radius = fit.params
    if sigma_normalised is None:
        r_ok, why = False, "noise level unknown"
    else:
        b_used = fit.b_used_ms_um2
        r_min = radius_resolution_limit_um(sigma_normalised, b_top, d_intra, fit.model.small_delta_ms,
                                           fit.model.big_delta_ms, int(np.sum(b_used > 0)))
        precise = fit.std_errors[1] < RADIUS_MAX_RELATIVE_ERROR * radius
        r_ok = bool(np.isfinite(r_min) and radius >= r_min and precise
                    and radius < fit.model.upper[1] * 0.999)
        why = (f"R = {with_se(radius, fit.std_errors[1], 'um')} vs resolution limit {r_min:.2g} um "
               f"for sigma = {sigma_normalised:.2g}, b_max = {b_top:.3g} ms/um^2")
    if r_ok:
        return True, [why], {}
    return True, [], {"radius": (False, f"radius not identifiable ({why}); use sticks D_intra"),
                      "D_intra": (False, "radius not identifiable: D_intra of sticks reported instead")}


_RULES = {"monoexponential": _monoexponential_rule, "kurtosis": _kurtosis_rule,
          "biexponential": _high_b_rule("bi-exponential"), "sticks": _sticks_rule,
          "cylinders": _cylinders_rule, "anisotropic_cylinders": _cylinders_rule,
          "stick_sphere": _high_b_rule("stick+sphere")}
"""Model-specific applicability rule per model name: (fit, n_b, b_max, sigma) ->
(applicable, notes, per-parameter overrides)."""

_BOUND_TOLERANT = ("cylinders", "anisotropic_cylinders")  # R at its bound is handled by the rule


REJECT_BELOW_P = 1e-4
"""A fit of a biophysical model whose chi^2 against the known noise (amplitude CRLBs) has p
below this, and whose misfit is also large (:data:`REJECT_MIN_MISFIT`), does not describe the
decay: not applicable (the demo's creatine, a bi-exponential, fitted with sticks gave chi^2
39.4 on 4 dof, p = 6e-8, RMS misfit about 8 % of S0, and a D_intra of 0.87 +- 0.07 marked
applicable before 2026-12-07)."""
REJECT_MIN_MISFIT = 0.02
"""RMS misfit (fraction of S0) a biophysical model must also leave to be rejected: a p-value
alone rejects every approximate model once the CRLBs are small enough (with CRLBs of 0.4 % of
S0 a mono-exponential fit of a brain-like bi-exponential decay had p < 1e-4 in half of the
noise draws)."""
REPRESENTATIONS = ("monoexponential", "kurtosis")
"""Signal representations, not models claimed to be true (ADC, kurtosis over a limited
b-range): lack of fit widens their SEs and is noted, never rejects them."""


def rms_misfit(fit) -> float | None:
    """RMS of the fit's residuals as a fraction of S0 (sqrt(chi^2 / n) x the noise SD / S0,
    with known noise); None without known noise."""
    if fit.sigma_normalised is None or not fit.sigma_known or fit.n_points < 1:
        return None
    return float(np.sqrt(fit.chi2 / fit.n_points) * fit.sigma_normalised)


def lack_of_fit_rejects(fit) -> bool:
    """Whether a fit's lack of fit makes it not applicable (:data:`REJECT_BELOW_P` and
    :data:`REJECT_MIN_MISFIT`, biophysical models only)."""
    p = getattr(fit, "lack_of_fit_p", None)
    misfit = rms_misfit(fit)
    return (p is not None and p < REJECT_BELOW_P and fit.model.name not in REPRESENTATIONS
            and misfit is not None and misfit > REJECT_MIN_MISFIT)


def lack_of_fit_note(fit) -> str:
    """The chi^2 test of a fit against the known noise, when it fails at the widening level
    (``fitting.WIDEN_BELOW_P``), as a note; '' otherwise or without known noise."""
    from .fitting import WIDEN_BELOW_P

    p = getattr(fit, "lack_of_fit_p", None)
    if p is None or p >= WIDEN_BELOW_P:
        return ""
    dof = fit.dof
    text = (f"lack of fit: chi^2 = {fit.chi2:.3g} on {dof} dof against the amplitude CRLBs "
            f"(p = {p:.2g}, RMS misfit {100 * (rms_misfit(fit) or 0.0):.2g} % of S0)")
    if lack_of_fit_rejects(fit):
        return text + ": the model does not describe this decay"
    if fit.chi2 > dof:
        return text + f"; SEs widened by sqrt(chi^2/dof) = {np.sqrt(fit.chi2 / dof):.3g}"
    return text


def assess(fit, b_all_ms_um2, sigma_normalised=None) -> tuple[bool, str, dict]:
    """Applicability of one fitted model and its note; third item: per-parameter overrides.

    The overrides map parameter names to ``(applicable, note)`` where a single parameter (the
    cylinder radius) is not identifiable while the others are. The reasons that make the fit
    not applicable (bound, physical limit, convergence, rule) are also stored in
    ``fit.reason``.
    """
    name = fit.model.name
    b_used = fit.b_used_ms_um2
    bound = _bound_note(fit)
    physical = (physical_limit_reasons(fit.model, fit.params)
                + undetermined_reasons(fit.model, fit.params, fit.std_errors))
    notes = [n for n in (_range_note(fit, b_all_ms_um2), bound) if n] + physical
    reasons = list(physical)
    ok = bool(fit.success and np.all(np.isfinite(fit.params))) and not physical
    if bound and name not in _BOUND_TOLERANT:
        ok = False  # a parameter pinned at a bound is not estimated by the data
        reasons.append(bound)
    if not fit.success:
        notes.append("optimiser did not converge")
        reasons.append("optimiser did not converge")
    misfit = lack_of_fit_note(fit)
    if misfit:
        notes.append(misfit)
        if lack_of_fit_rejects(fit):
            ok = False
            reasons.append(misfit)
    rule = _RULES.get(name)
    per_param = {}
    if rule is not None:
        rule_ok, rule_notes, per_param = rule(fit, distinct_b(b_used), float(np.max(b_used)),
                                              sigma_normalised)
        ok = ok and rule_ok
        notes += rule_notes
        if not rule_ok:
            reasons += rule_notes
    fit.reason = "; ".join(reasons) if not ok else ""
    return bool(ok), "; ".join(notes), per_param
