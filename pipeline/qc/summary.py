"""The QC summary of one acquisition: metrics per condition and over the run, then flags.

Pure functions over arrays (the QC node and the tests call them alike). ``summary`` keys are
the columns of ``group_qc.tsv`` (besides the IDs); flags come from :mod:`pipeline.qc.flags`.
"""

from __future__ import annotations

import numpy as np

from . import flags as qcflags
from . import metrics
from ..metabolites import FIT_WINDOW_PPM, PEAK_WINDOWS_PPM
from .flags import finite_number

MAIN_SUMS = ("tNAA", "tCr", "tCho")


def measured_or_reason(fn, *args, **kwargs):
    """A metric, or (None, reason) when it cannot be measured on these data."""
    try:
        return fn(*args, **kwargs), None
    except ValueError as exc:
        return None, str(exc)


def snr_metrics(fid: np.ndarray, dwell_s: float, cf_mhz: float, main_ppm, noise_ppm=None,
                fitted_components=None) -> tuple[dict, list]:
    """``snr_tnaa`` (the ``main_ppm`` peak; 0 when the window holds no peak, so QC fails it
    rather than leaving it unjudged), ``snr_tcr``/``snr_tcho`` (None when their window holds
    no peak) and ``snr_ins``/``snr_glx`` from ``fitted_components`` (None without them), with
    a note for each value not measured."""
    notes, out = [], {}
    out["snr_tnaa"], why = measured_or_reason(metrics.snr, fid, dwell_s, cf_mhz, main_ppm,
                                              noise_ppm)
    if why and why.startswith(metrics.NO_PEAK_INSIDE):
        out["snr_tnaa"], why = 0.0, f"{why} (SNR 0: misreferenced, or no NAA)"
    notes += [f"SNR: {why}"] if why else []
    for name, window in metrics.SNR_PEAKS_PPM.items():
        if name != "tNAA":
            out[f"snr_{name.lower()}"], why = measured_or_reason(metrics.snr, fid, dwell_s,
                                                                 cf_mhz, window, noise_ppm)
            notes += [f"SNR of {name}: {why}"] if why else []
    for name in metrics.SNR_FITTED_COMPONENTS:
        spectrum = (fitted_components or {}).get(name)
        out[f"snr_{name.lower()}"], why = (None, None) if spectrum is None else \
            measured_or_reason(metrics.fitted_component_snr, spectrum, fid, dwell_s, cf_mhz,
                               noise_ppm)
        if fitted_components is not None and spectrum is None:
            why = "no fitted component (amplitude 0)"
        notes += [f"SNR of {name}: {why}"] if why else []
    return out, notes


def condition_metrics(fid: np.ndarray, dwell_s: float, cf_mhz: float, fitted_fid=None,
                      fit_ppm=FIT_WINDOW_PPM, noise_ppm=None, zero_fill: int = 8,
                      tnaa_ppm=PEAK_WINDOWS_PPM["tNAA"], tcr_ppm=PEAK_WINDOWS_PPM["tCr"],
                      snr_ppm=None, fitted_components=None) -> tuple[dict, list]:
    """SNR (tNAA, or the ``snr_ppm`` peak, and per peak), linewidths of tNAA and tCr,
    residual water and fit quality of one averaged spectrum; returns (metrics, notes on what
    could not be measured). ``fitted_components`` (name -> fitted spectrum, e.g. from the fit
    display) gives the SNR of the multiplets in ``metrics.SNR_FITTED_COMPONENTS``; without it
    they are None."""
    out, notes = snr_metrics(fid, dwell_s, cf_mhz, snr_ppm or tnaa_ppm, noise_ppm,
                             fitted_components)
    out["linewidth_tnaa_hz"] = measured_or_reason(metrics.linewidth_hz, fid, dwell_s, cf_mhz, tnaa_ppm,
                                     zero_fill)[0]
    out["linewidth_tcr_hz"] = measured_or_reason(metrics.linewidth_hz, fid, dwell_s, cf_mhz, tcr_ppm,
                                    zero_fill)[0]
    out["residual_water_ratio"] = measured_or_reason(metrics.residual_water_ratio, fid, dwell_s, cf_mhz)[0]
    quality = None
    if fitted_fid is not None:
        quality, why = measured_or_reason(metrics.fit_quality, fid, fitted_fid, dwell_s, cf_mhz, fit_ppm,
                             noise_ppm)
        if why:
            notes.append(why)
    out.update(quality or {"fit_quality": None})
    return out, notes


def similarity_metrics(before: np.ndarray, after: np.ndarray, rejected: np.ndarray,
                       dwell_s: float, cf_mhz: float, acquired=None) -> dict:
    """Similarity index of one condition's transients before and after alignment (kept
    transients only: ``rejected`` is left out of the average, outlier or not acquired) and
    the counts of :func:`metrics.transient_counts` (rejected outliers among the ``acquired``
    transients, transients not acquired)."""
    rejected = np.asarray(rejected, bool)
    return {"similarity_before": measured_or_reason(metrics.similarity_index, before, dwell_s, cf_mhz,
                                       rejected=rejected)[0],
            "similarity_after": measured_or_reason(metrics.similarity_index, after, dwell_s, cf_mhz,
                                      rejected=rejected)[0],
            **metrics.transient_counts(rejected, acquired)}


def lowest_b_rows(amplitude_rows: list[dict], names) -> list[dict]:
    """The ``names`` rows (of ``_amplitudes.tsv``) at the lowest b (a row without a b-value:
    plain MRS, b = 0)."""
    rows = [r for r in amplitude_rows if r.get("metabolite") in names]
    b_value = lambda row: float(row.get("b_value", 0.0))  # noqa: E731
    b_min = min((b_value(r) for r in rows), default=0.0)
    return [r for r in rows if b_value(r) == b_min]


def lowest_b_max(amplitude_rows: list[dict], column: str, names) -> float | None:
    """Largest finite ``column`` of the ``names`` rows at the lowest b; None when there is
    none."""
    values = [finite_number(r.get(column)) for r in lowest_b_rows(amplitude_rows, names)]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def crlb_percent_max(amplitude_rows: list[dict], names=MAIN_SUMS) -> float | None:
    """Largest %CRLB of the main sums at the lowest b (rows of ``_amplitudes.tsv``)."""
    return lowest_b_max(amplitude_rows, "crlb_percent", names)


CONCENTRATION_CHECKED = ("tNAA", "tCr", "tCho", "Ins", "Glx")


def concentration_max_mm(amplitude_rows: list[dict]) -> float | None:
    """Largest water-scaled concentration (mM) of tNAA/tCr/tCho/Ins/Glx at the lowest b: far
    above brain values (1-15 mM) it flags a scaling fault (a water reference that is not
    unsuppressed water, transients stored as sums); None without concentrations."""
    return lowest_b_max(amplitude_rows, "concentration_mm", CONCENTRATION_CHECKED)


def _extreme(values, fn):
    finite = [v for v in (finite_number(x) for x in values) if v is not None]
    return float(fn(finite)) if finite else None


WORST_CONDITION_METRICS = {"fit_quality_max": "fit_quality",
                           "rejected_fraction_max": "rejected_fraction",
                           "not_acquired_fraction_max": "not_acquired_fraction",
                           "residual_water_ratio": "residual_water_ratio"}
"""Summary metric -> per-condition value whose largest condition the summary names."""


def condition_name(index: int, entry: dict) -> str:
    """``condition 7 (b = 20000 s/mm^2, direction 2)`` from a per-condition entry."""
    details = []
    if finite_number(entry.get("b_value")) is not None:
        details.append(f"b = {float(entry['b_value']):g} s/mm^2")
    if entry.get("direction") not in (None, "", "n/a"):
        details.append(f"direction {entry['direction']}")
    return f"condition {index}" + (f" ({', '.join(details)})" if details else "")


def worst_condition(per_condition: list[dict], key: str) -> str | None:
    """Name of the condition with the largest finite ``key`` (None when none is finite)."""
    values = [finite_number(p.get(key)) for p in per_condition]
    candidates = [(v, i) for i, v in enumerate(values) if v is not None]
    if not candidates:
        return None
    index = max(candidates)[1]
    return condition_name(index, per_condition[index])


def summarise(per_condition: list[dict], b_values_s_mm2, drift: dict,
              water_linewidth_hz=None, crlb_max=None, concentration_max=None) -> dict:
    """One row for ``group_qc.tsv``: lowest-b spectral metrics, worst-condition values and
    drift statistics."""
    b0 = int(np.argmin(np.asarray(b_values_s_mm2, float)))
    low = per_condition[b0]
    keys_b0 = [k for k in low if k.startswith("snr_")] + ["linewidth_tnaa_hz",
                                                           "linewidth_tcr_hz"]
    summary = {("snr_tnaa_b0" if k == "snr_tnaa" else f"{k}_b0" if k.startswith("snr_")
                else k): low.get(k) for k in keys_b0}
    summary.update({
        "linewidth_water_hz": water_linewidth_hz,
        "fit_quality_mean": _extreme([p.get("fit_quality") for p in per_condition], np.mean),
        "fit_quality_max": _extreme([p.get("fit_quality") for p in per_condition], np.max),
        "crlb_percent_max": crlb_max,
        "concentration_max_mm": concentration_max,
        "residual_water_ratio": _extreme([p.get("residual_water_ratio")
                                          for p in per_condition], np.max),
        "similarity_before": _extreme([p.get("similarity_before") for p in per_condition],
                                      np.median),
        "similarity_after": _extreme([p.get("similarity_after") for p in per_condition],
                                     np.median),
        "rejected_fraction_max": _extreme([p.get("rejected_fraction") for p in per_condition],
                                          np.max),
        "not_acquired_fraction_max": _extreme([p.get("not_acquired_fraction")
                                               for p in per_condition], np.max),
        "n_conditions": len(per_condition),
    })
    summary.update({f"{metric}_condition": worst_condition(per_condition, key)
                    for metric, key in WORST_CONDITION_METRICS.items()})
    summary.update({k: drift[k] for k in ("n_transients", "n_rejected", "rejected_fraction",
                                          "n_not_acquired", "not_acquired_fraction",
                                          "freq_drift_hz_per_transient", "freq_shift_sd_hz",
                                          "freq_shift_range_hz", "phase_shift_sd_deg")
                    if k in drift})
    return summary


def judged(summary: dict, cf_mhz: float, overrides: dict | None = None) -> dict:
    """``flags`` (list of dicts), overall ``qc_status`` and the failed/warned metric names
    (also added to the summary so that ``group_qc.tsv`` carries them)."""
    flags = qcflags.evaluate(summary, cf_mhz, overrides)
    status = qcflags.overall(flags)
    failed = ",".join(f.metric for f in flags if f.status == "fail")
    warned = ",".join(f.metric for f in flags if f.status == "warn")
    return {"flags": [f.to_dict() for f in flags], "qc_status": status,
            "qc_failed": failed or "", "qc_warned": warned or ""}
