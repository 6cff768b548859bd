"""Rows of ``_diffusion.tsv``: every requested model fitted to every metabolite's decay.

Columns: metabolite, model, parameter, value, unit, std_error, applicable, note, reason,
b_max_s_mm2.
``value``/``std_error`` are the weighted least-squares estimate and its standard error;
``reason`` says why a row is not applicable (bound, physical limit, consensus rule); the note carries the applicability reasons, the Monte Carlo / bootstrap median and
interquartile range, the noise source and the acquisition regime; ``b_max_s_mm2`` is the
largest b-value (s/mm^2; a shell's mean after powder averaging) the model was fitted on
(NaN when it was not fitted): a mono-exponential ADC or K_app depends on it.
"""

from __future__ import annotations

import numpy as np

from pipeline.diffusion import applicability, powder
from pipeline.diffusion.fitting import (UNCERTAINTY_METHODS, estimate_sigma_biexponential,
                                       fit_model)
from pipeline.diffusion.models import MODELS, canonical_models, make_model
from pipeline.diffusion.tensor import fit_tensor, tensor_identifiable
from pipeline.diffusion.correlated import is_diagonal, validated_covariance
from pipeline.tables import DIFFUSION_COLUMNS as COLUMNS  # one definition
from pipeline.units import b_ms_um2_to_s_mm2, b_s_mm2_to_ms_um2, to_s_mm2

DEFAULT_MODELS = ("monoexponential", "kurtosis", "biexponential", "sticks", "cylinders")
TIMED_MODELS = ("cylinders", "stick_sphere", "anisotropic_cylinders")


def _row(metabolite, model, parameter, value, unit, std_error, applicable, note, reason="",
         b_used_ms_um2=()):
    """One table row; ``b_used_ms_um2``: the b-values its model was fitted on."""
    b_used = np.asarray(b_used_ms_um2, float)
    return {"metabolite": metabolite, "model": model, "parameter": parameter,
            "value": float(value), "unit": unit, "std_error": float(std_error),
            "applicable": int(bool(applicable)), "note": note,
            "reason": "" if applicable else (reason or note),
            "b_max_s_mm2": float(b_ms_um2_to_s_mm2(b_used.max())) if b_used.size else np.nan}


def _seconds_to_ms(value) -> float | None:
    """A timing in s (as BIDS sidecars, NIfTI-MRS headers and the config state them) in ms;
    None when absent or not positive. No unit guess: long-diffusion-time STEAM uses 1-2 s, and
    headers and sidecars with implausible timings (e.g. a mixing time in ms) are refused at
    input (``pipeline.io.input_checks.timing_problems``)."""
    if value is None:
        return None
    v = float(value)
    return v * 1000.0 if v > 0 else None


def gradient_timing_ms(metadata: dict | None = None, gradient_duration_s: float | None = None,
                       diffusion_time_s: float | None = None) -> dict:
    """Gradient pulse duration delta, separation Delta, diffusion time and TE in ms.

    Reads ``DiffusionGradientDuration``, ``DiffusionGradientSeparation``, ``DiffusionTime``,
    ``EchoTime`` (s per BIDS) with the config values (s) as fallback. Delta = diffusion time +
    delta/3 when only the diffusion time is known. Missing -> None.
    """
    md = metadata or {}
    delta = _seconds_to_ms(md.get("DiffusionGradientDuration")) or _seconds_to_ms(gradient_duration_s)
    sep = _seconds_to_ms(md.get("DiffusionGradientSeparation"))
    td = _seconds_to_ms(md.get("DiffusionTime")) or _seconds_to_ms(diffusion_time_s)
    if sep is None and td is not None and delta is not None:
        sep = td + delta / 3.0
    if td is None and sep is not None and delta is not None:
        td = sep - delta / 3.0
    return {"small_delta_ms": delta, "big_delta_ms": sep, "diffusion_time_ms": td,
            "echo_time_ms": _seconds_to_ms(md.get("EchoTime"))}


def _resampled_note(fit, name) -> str:
    r = fit.resampled.get(name)
    if not r:
        return ""
    if r.get("reason"):
        return r["reason"]
    return f"MC median {r['median']:.4g}, IQR [{r['q25']:.4g}, {r['q75']:.4g}]"


def _se_note(fit) -> str:
    """Which standard error a row carries when a parameter is held by a fit bound."""
    if not fit.bound_profile:
        return ""
    return (f"std_error from the profile likelihood with the fit bounds ({', '.join(fit.bound_profile)} "
            "held at a bound; Delta chi^2 = 1)")


def _model_rows(metabolite, fit, context_notes):
    ok, note, per_param = fit.applicable, fit.note, fit.parameter_applicability
    context_notes = [_se_note(fit), *context_notes]
    rows = []
    for i, (pname, unit) in enumerate(zip(fit.model.parameter_names, fit.model.parameter_units)):
        p_ok, p_note = per_param.get(pname, (ok, ""))
        notes = [n for n in (note, p_note, _resampled_note(fit, pname), *context_notes) if n]
        reason = "; ".join(x for x in (fit.reason, "" if p_ok else p_note) if x)
        rows.append(_row(metabolite, fit.model.name, pname, fit.params[i], unit,
                         _std_error(fit, i, pname), ok and p_ok, "; ".join(notes), reason,
                         fit.b_used_ms_um2))
    for crit, value in (("AIC", fit.aic), ("BIC", fit.bic)):
        rows.append(_row(metabolite, fit.model.name, crit, value, "", np.nan, ok,
                         f"{fit.n_points} points, {fit.n_free} free parameters incl. S0", fit.reason,
                         fit.b_used_ms_um2))
    return rows


def _std_error(fit, i, pname) -> float:
    """Standard error of parameter i as ``fit_model`` computes it: the Jacobian SE, or the
    profile-likelihood SE with the fit bounds when a parameter is held by a bound; t-widened
    when sigma is estimated. Calibrated (benchmarks/bench_diffusion_coverage.py: 60-76 %
    coverage of +/- 1 SE for ADC, K_app and D_intra at sigma 0.01-0.05; the parametric-bootstrap
    SD under-covers K_app where estimates are clipped at a bound)."""
    return float(fit.std_errors[i])


def _failed_rows(metabolite, name, reason):
    cls = MODELS[name]
    return [_row(metabolite, name, p, np.nan, u, np.nan, False, reason, reason)
            for p, u in zip(cls.parameter_names, cls.parameter_units)]


def tensor_reasons(tensor_fit) -> list[str]:
    """Why tensor values are not physical: an eigenvalue at the positive-definite bound (0) or a
    diffusivity above the metabolite limit; FA outside [0, 1] cannot occur (Cholesky fit)."""
    vals = np.asarray(tensor_fit.eigenvalues, float)
    reasons = []
    floor = 1e-6 * max(float(np.max(np.abs(vals))), 1e-3)
    if np.any(vals <= floor):
        reasons.append("an eigenvalue sits at the positive-definite bound (0): tensor not estimated by the data")
    limit = applicability.METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS
    if np.any(vals > limit):
        reasons.append(f"largest eigenvalue {vals.max():.3g} um^2/ms exceeds the free aqueous "
                       f"diffusivity of metabolites at 37 C ({limit:g} um^2/ms)")
    if not 0.0 <= tensor_fit.fa <= 1.0:
        reasons.append(f"FA = {tensor_fit.fa:.3g} outside [0, 1]")
    return reasons


def _tensor_rows(metabolite, b, directions, signal, sigma):
    ok, why = tensor_identifiable(directions, b)
    if not ok:
        return [_row(metabolite, "tensor", "MD", np.nan, "um^2/ms", np.nan, False, why, why)]
    try:
        t = fit_tensor(b, directions, signal, sigma)
    except ValueError as exc:
        return [_row(metabolite, "tensor", "MD", np.nan, "um^2/ms", np.nan, False, str(exc), str(exc))]
    unit = "um^2/ms"
    reason = "; ".join(tensor_reasons(t))
    ok = not reason
    note = "positive-definite (Cholesky) fit"
    rows = [_row(metabolite, "tensor", "MD", t.md, unit, t.md_std_error, ok, note, reason, b),
            _row(metabolite, "tensor", "FA", t.fa, "1", t.fa_std_error, ok, note, reason, b)]
    rows += [_row(metabolite, "tensor", f"lambda{i + 1}", v, unit, e, ok, note, reason, b)
             for i, (v, e) in enumerate(zip(t.eigenvalues, t.eigenvalues_std_error))]
    return rows


def undetected_reason(amplitude_lowest_b: float, sd_lowest_b: float | None) -> str:
    """Why a decay cannot be modelled: its lowest-b amplitude (the mean of the lowest-b points)
    is not positive, or (with the SD of that mean, from the CRLBs) within
    ``DETECTION_SD_FACTOR`` SDs of 0, where a model fit only
    describes noise. Empty when the metabolite is detected."""
    if not amplitude_lowest_b > 0:
        return "amplitude at the lowest b is not positive: no decay to model"
    if sd_lowest_b is not None and amplitude_lowest_b <= applicability.DETECTION_SD_FACTOR * sd_lowest_b:
        factor = applicability.DETECTION_SD_FACTOR
        return (f"not detected at the lowest b (amplitude {amplitude_lowest_b:.3g} within "
                f"{factor:g} SD = {factor * sd_lowest_b:.3g} of 0, SD {sd_lowest_b:.3g}): no "
                "decay to model")
    return ""


def _powder_step(metabolite, b, s, sg, directions, powder_method, anisotropy, shells,
                 covariance=None):
    """Shell-averaged decay, unique gradient directions, tensor rows and notes for directional
    data; the shells' covariance (None without one across conditions)."""
    g = np.asarray(directions, float)
    rows = _tensor_rows(metabolite, b, g, s, sg)
    gradient_dirs = powder.unique_directions(g[b > 0])  # assumes every shell uses the same set
    avg = powder.powder_average(b, s, sg, method=powder_method, labels=shells.labels,
                                directions=g, covariance=covariance)
    notes = []
    if np.any(avg.n_directions > 1):
        notes.append(f"{powder_method} powder average over {int(shells.n_directions.max())} directions "
                     f"per shell (shells by {shells.method}; b = shell mean)")
        notes.append(powder.check_direction_count_per_shell(shells, g, 0.5, anisotropy)[1])
        notes += [avg.note] if avg.note else []
    return avg.b_ms_um2, avg.amplitude, avg.sigma, gradient_dirs, rows, notes, avg.covariance


def _noise(b, s, sg, s_ref):
    """Per-point noise SD, where it came from (CRLBs, bi-exponential residuals or unknown) and
    its degrees of freedom when estimated (None: known)."""
    if sg is not None:
        return sg, "amplitude CRLBs", None
    est = estimate_sigma_biexponential(b, s / s_ref)
    if est is not None and est > 0:
        return (np.full(b.shape, est * s_ref),
                f"noise from bi-exponential residuals (consensus 5.2; {b.size - 4} dof, SEs widened by "
                "the Student-t factor)", b.size - 4)
    return None, "noise unknown (too few b-values for bi-exponential residuals): residual-scaled errors", None


def _usable_covariance(cov, sg):
    """(covariance for the fits or None, what the noise note adds): a non-diagonal covariance
    is used (``fit_model``: sandwich SEs, correlated resampling); one that is not a covariance
    of ``sg`` (not positive semi-definite, another diagonal) is not, said so, and the CRLBs
    are taken as independent."""
    if cov is None or is_diagonal(cov):
        return None, ""
    try:
        validated_covariance(cov, sg.size, sg)
    except ValueError as exc:
        return None, f"; their covariance across conditions not used ({exc}): independent"
    return cov, (" with their correlation across conditions (standard errors of the weighted "
                 "fit under correlated noise)")


def _model_options(name, limits, timing, anisotropic):
    """Constructor options of a model, or a reason why it cannot be built from what is known."""
    options = {"b_max_ms_um2": limits.get(name)}
    if name in TIMED_MODELS:
        if timing["small_delta_ms"] is None or timing["big_delta_ms"] is None:
            return None, ("needs gradient duration and separation "
                          "(DiffusionGradientDuration/Separation or DiffusionTime)")
        options.update(timing)
    if name == "anisotropic_cylinders":
        if anisotropic["fibre_directions"] is None or anisotropic["gradient_directions"] is None:
            return None, "needs gradient and fibre directions"
        options.update(anisotropic)
    return options, ""


def fit_all_models(b_ms_um2, signal, sigma=None, metabolite: str = "", models=DEFAULT_MODELS,
                   small_delta_ms=None, big_delta_ms=None, echo_time_ms=None, diffusion_time_ms=None,
                   directions=None, powder_method: str = "arithmetic", anisotropy: float = 1.0,
                   fibre_directions=None, fibre_weights=None, wm_fraction: float = 1.0,
                   b_limits: dict | None = None, uncertainty: str = "montecarlo", n_draws: int = 100,
                   seed: int = 0, gradient_strength=None, shell_label=None,
                   covariance=None) -> list[dict]:
    """Fit each model in ``models`` to one metabolite's decay and return ``_diffusion.tsv`` rows.

    b_ms_um2, signal, sigma: per condition (sigma = amplitude SD, e.g. CRLB; None -> estimated
    from bi-exponential residuals, consensus 5.2). With ``directions`` (n, 3; NaN rows at b = 0)
    the amplitudes are powder-averaged per b-shell first, the direction count is checked and,
    with >= 6 directions, a ``tensor`` fit adds MD/FA/eigenvalues. ``b_limits`` maps a model
    name to its fit b-range (defaults: monoexponential 5, kurtosis 10 ms/um^2). If the cylinder
    radius is not identifiable, the sticks model is added as the reported fallback.
    Shells: ``powder.group_shells`` from ``shell_label`` or nominal ``gradient_strength`` (per
    condition) when given, else direction rank / b tolerance; model b-ranges keep whole shells.
    ``covariance`` (n, n, diagonal sigma^2): the amplitudes' covariance across conditions
    (``_desc-amplitudes_covariance.tsv``), propagated through the powder average; the models' SEs
    and resampling then carry the correlation (``fit_model``). The tensor fit takes sigma
    alone.
    """
    check_choices(uncertainty, powder_method)
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    s = np.atleast_1d(np.asarray(signal, float))
    sg = None if sigma is None else np.broadcast_to(np.asarray(sigma, float), b.shape)
    # the conditions' table checked before the powder average takes the shells' SDs from it
    cov, cov_note = _usable_covariance(
        None if sg is None or covariance is None else np.asarray(covariance, float), sg)
    names = canonical_models(models)[0]
    context = [applicability.regime_note(echo_time_ms, diffusion_time_ms)]
    rows, gradient_dirs = [], None
    shells = powder.group_shells(b, directions, gradient_strength, shell_label)
    shell_index = shells.labels
    if directions is not None:
        b, s, sg, gradient_dirs, rows, notes, cov = _powder_step(
            metabolite, b, s, sg, directions, powder_method, anisotropy, shells, cov)
        context += notes
        shell_index = None  # one point per shell after averaging
    s_ref = float(np.mean(s[b == b.min()])) if s.size else 0.0
    lowest = b == b.min()
    reason = undetected_reason(s_ref, None if sg is None
                               else float(np.sqrt(np.sum(sg[lowest] ** 2)) / np.sum(lowest)))
    if reason:
        return rows + [r for name in names if name in MODELS for r in _failed_rows(metabolite, name, reason)]
    sg, sigma_source, sigma_dof = _noise(b, s, sg, s_ref)
    if cov is not None:  # the shells' A C A^T; diagonal: the shells' SDs still carry C
        cov, shells_note = _usable_covariance(cov, sg)
        cov_note = shells_note or cov_note
    context.append(sigma_source + cov_note)
    if "cylinders" in names and "sticks" not in names:
        names.append("sticks")
    timing = {"small_delta_ms": small_delta_ms, "big_delta_ms": big_delta_ms}
    anisotropic = {"gradient_directions": gradient_dirs, "fibre_directions": fibre_directions,
                   "fibre_weights": fibre_weights, "wm_fraction": wm_fraction}
    fitted, fallback_reason = {}, None
    for name in names:
        options, reason = _model_options(name, b_limits or {}, timing, anisotropic)
        try:
            if options is None:
                raise ValueError(reason)
            fit = fit_model(make_model(name, **options), b, s, sg, uncertainty=uncertainty,
                            n_draws=n_draws, seed=seed, shell_index=shell_index, sigma_dof=sigma_dof,
                            lack_of_fit_test=True, covariance=cov)
        except ValueError as exc:
            fitted[name] = _failed_rows(metabolite, name, str(exc))
            continue
        fitted[name] = _model_rows(metabolite, fit, context)
        if name == "cylinders" and "radius" in fit.parameter_applicability:
            fallback_reason = fit.parameter_applicability["radius"][1]
    if fallback_reason and "sticks" in fitted:
        for r in fitted["sticks"]:
            r["note"] = "; ".join(x for x in (r["note"], f"reported instead of cylinders: {fallback_reason}") if x)
    return rows + [r for name in names for r in fitted[name]]


def not_applicable(rows: list[dict], reason: str) -> list[dict]:
    """``rows`` marked not applicable with ``reason`` first in ``reason`` and ``note``; the
    fitted values are kept for the reader."""
    out = []
    for r in rows:
        joined = "; ".join(x for x in (reason, r["reason"]) if x)
        out.append({**r, "applicable": 0, "reason": joined,
                    "note": "; ".join(x for x in (reason, r["note"]) if x)})
    return out


def check_choices(uncertainty: str, powder_method: str) -> None:
    """ValueError naming the ``[diffusion]`` option when ``uncertainty`` or ``powder_method``
    is unknown: a configuration error fails the stage. Raised inside each model's fit it would
    be caught as that model's failure, every row n/a and the run's exit status 0."""
    for key, value, allowed in (("uncertainty", uncertainty, UNCERTAINTY_METHODS),
                                ("powder_method", powder_method, powder.POWDER_METHODS)):
        if value not in allowed:
            raise ValueError(f"[diffusion] {key} must be one of {list(allowed)}, got {value!r}")


def diffusion_table(series: dict, b_values_s_mm2, directions=None, b_value_units: str = "s/mm2",
                    at_cap=(), covariances: dict | None = None, **options) -> list[dict]:
    """Rows for several metabolites: ``series`` maps a name to (amplitudes, crlbs) per condition.

    b-values in s/mm^2 as stored in acquisitions (or ``b_value_units="ms/um2"``), converted to
    ms/um^2 here; ``options`` as for :func:`fit_all_models` (models, timings, uncertainty, ...).
    Metabolites whose amplitudes are all non-positive get rows flagged not applicable, and so
    do those in ``at_cap`` (decay held at the joint fit constraint's cap), with their values.
    ``covariances`` maps a name to its amplitudes' covariance across conditions
    (``amplitudes.amplitude_covariances``); the others' CRLBs are taken as independent.
    """
    check_choices(options.get("uncertainty", "montecarlo"),
                  options.get("powder_method", "arithmetic"))
    b = b_s_mm2_to_ms_um2(to_s_mm2(b_values_s_mm2, b_value_units))
    rows = []
    for name, (amps, crlbs) in series.items():
        amps = np.asarray(amps, float)
        crlbs = None if crlbs is None else np.asarray(crlbs, float)
        if not np.any(amps > 0) or not np.all(np.isfinite(amps)):
            for m in options.get("models", DEFAULT_MODELS):
                if m in MODELS:
                    rows += _failed_rows(name, m, "amplitudes non-positive or not finite: no decay to model")
            continue
        if crlbs is not None and (not np.all(np.isfinite(crlbs)) or np.any(crlbs <= 0)):
            crlbs = None
        fitted = fit_all_models(b, amps, crlbs, metabolite=name, directions=directions,
                                covariance=None if crlbs is None
                                else (covariances or {}).get(name), **options)
        rows += (not_applicable(fitted, applicability.decay_cap_reason()) if name in at_cap
                 else fitted)
    return rows
