"""QC metrics compared with thresholds: pass / warn / fail, each with its reason and source.

Sources of the thresholds (our reading of them; every limit can be overridden from the
``[qc.thresholds]`` configuration table, e.g. ``linewidth_water_ppm = {warn = 0.08, fail = 0.12}``):

* WILSON2019 — Wilson M et al., "Methodological consensus on clinical proton MRS of the brain:
  review and recommendations", Magn Reson Med 2019;82:527-550. Linewidths are judged in ppm so
  that one limit serves every field; spectra with metabolite FWHM above ~0.1 ppm are treated as
  unusable; the water FWHM (the shim indicator, broader than the metabolites' through its
  shorter T2*) gets looser limits. The warning limits are this project's choice.
* KREIS2021 — Kreis R et al., "Terminology and concepts for the characterization of in vivo MR
  spectroscopy methods and MR spectra", NMR Biomed 2021;34:e4347 (SNR as tNAA peak height over
  the noise SD; fit residual relative to noise).
* LIN2021 — Lin A et al., "Minimum Reporting Standards for in vivo Magnetic Resonance
  Spectroscopy (MRSinMRS)", NMR Biomed 2021;34:e4484: SNR, linewidth, CRLB and
  rejected transients must be reported; CRLB > ~20 % (50 % for low-concentration
  metabolites) marks an unreliable estimate (Kreis R, NMR Biomed 2016;29:1467, on not
  discarding by CRLB alone, is why large CRLBs only warn unless extreme). The number of
  averages is reported too, hence the check of transients not acquired (exactly zero: a scan
  stopped early, a dropped repetition). Its warning limit is this project's choice: SNR goes
  as sqrt(n), so a condition missing more than a quarter of its transients has lost more than
  13 % of its SNR (sqrt(0.75) = 0.87). It never fails (the fail limit 1 cannot be exceeded:
  a condition with none acquired is refused by preprocessing): the acquired transients are
  sound, and the SNR check judges what is left.
* LIGNEUL2024 — Ligneul C et al., "Diffusion-weighted MR spectroscopy: consensus,
  recommendations, and resources from acquisition to modeling", Magn Reson Med 2024;91:860-885:
  per-condition outlier rejection, drift correction and their reporting; a condition losing
  more than ~30 % of its transients is suspect (motion).
* KREIS2004 — Kreis R, "Issues of spectral quality in clinical 1H-MRS and a gallery of
  artifacts", NMR Biomed 2004;17:361-381 (residual water, frequency drift, line broadening).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import math

STATUSES = ("pass", "warn", "fail")


@dataclass(frozen=True)
class Threshold:
    """Limits of one metric: ``direction`` 'above' fails for large values, 'below' for small."""

    metric: str
    label: str
    unit: str
    direction: str
    warn: float
    fail: float
    source: str
    section: str
    """Report section (anchor prefix) that shows the evidence for this metric."""


THRESHOLDS: dict[str, Threshold] = {t.metric: t for t in (
    Threshold("linewidth_water_ppm", "water linewidth (FWHM)", "ppm", "above", 0.10, 0.15,
              "WILSON2019", "acquisition"),
    Threshold("linewidth_tnaa_ppm", "tNAA linewidth (FWHM, lowest b)", "ppm", "above", 0.08,
              0.10, "WILSON2019", "fit"),
    Threshold("linewidth_tcr_ppm", "tCr linewidth (FWHM, lowest b)", "ppm", "above", 0.08, 0.10,
              "WILSON2019", "fit"),
    Threshold("snr_tnaa_b0", "SNR of tNAA (peak height / noise SD, lowest b)", "", "below", 20.0,
              8.0, "KREIS2021", "fit"),
    Threshold("fit_quality_max", "fit residual SD / noise SD (worst condition)", "", "above",
              1.5, 2.5, "KREIS2021", "fit"),
    Threshold("crlb_percent_max", "largest %CRLB of tNAA/tCr/tCho (lowest b)", "%", "above",
              20.0, 50.0, "LIN2021", "fit"),
    Threshold("rejected_fraction_max", "transients rejected (worst condition)", "fraction",
              "above", 0.10, 0.30, "LIGNEUL2024", "transients"),
    Threshold("not_acquired_fraction_max", "transients not acquired (exactly zero; worst "
              "condition)", "fraction", "above", 0.25, 1.0, "LIN2021", "transients"),
    Threshold("freq_shift_range_ppm", "frequency drift range over the run", "ppm", "above",
              0.07, 0.15, "KREIS2004", "transients"),
    Threshold("concentration_max_mm", "largest water-scaled concentration of "
              "tNAA/tCr/tCho/Ins/Glx (lowest b)", "mM", "above", 50.0, 200.0, "DEGRAAF2019",
              "fit"),
    Threshold("residual_water_ratio", "residual water peak / tNAA peak (after removal)", "",
              "above", 1.0, 5.0, "KREIS2004", "residual-water"),
    Threshold("similarity_after", "similarity of transients after alignment (median r)", "",
              "below", 0.5, 0.2, "LIGNEUL2024", "transients"),
)}

REFERENCES = {
    "WILSON2019": "Wilson M et al. Methodological consensus on clinical proton MRS of the "
                  "brain: review and recommendations. Magn Reson Med 2019;82:527-550.",
    "KREIS2021": "Kreis R et al. Terminology and concepts for the characterization of in vivo "
                 "MR spectroscopy methods and MR spectra. NMR Biomed 2021;34:e4347.",
    "LIN2021": "Lin A et al. Minimum Reporting Standards for in vivo Magnetic Resonance "
               "Spectroscopy (MRSinMRS): experts' consensus recommendations. "
               "NMR Biomed 2021;34:e4484.",
    "LIGNEUL2024": "Ligneul C et al. Diffusion-weighted MR spectroscopy: consensus, "
                   "recommendations, and resources from acquisition to modeling. "
                   "Magn Reson Med 2024;91:860-885.",
    "KREIS2004": "Kreis R. Issues of spectral quality in clinical 1H-MRS and a gallery of "
                 "artifacts. NMR Biomed 2004;17:361-381.",
    "DEGRAAF2019": "de Graaf RA. In Vivo NMR Spectroscopy: Principles and Techniques. 3rd ed. "
                   "Wiley; 2019 (brain metabolite concentrations: 1-15 mM).",
}


@dataclass(frozen=True)
class Flag:
    """One metric judged against its threshold."""

    metric: str
    label: str
    status: str
    value: float | None
    unit: str
    reason: str
    source: str
    section: str
    warn_limit: float | None = None
    fail_limit: float | None = None
    """The limits applied (after ``[qc] thresholds`` overrides), so a reader of ``_qc.json``
    (the group report's QC panels) draws the very limits this value was judged against."""

    def to_dict(self) -> dict:
        return asdict(self)


def thresholds_with(overrides: dict | None) -> dict[str, Threshold]:
    """The default thresholds with ``{metric: {"warn": x, "fail": y}}`` overrides applied."""
    table = dict(THRESHOLDS)
    for metric, limits in (overrides or {}).items():
        if metric not in table:
            raise ValueError(f"[qc.thresholds]: unknown metric {metric!r} "
                             f"(known: {', '.join(sorted(table))})")
        if not isinstance(limits, dict) or not set(limits) <= {"warn", "fail"}:
            raise ValueError(f"[qc.thresholds] {metric}: expected a table with 'warn' and/or "
                             f"'fail', got {limits!r}")
        table[metric] = replace(table[metric], **{k: float(v) for k, v in limits.items()})
    return table


def finite_number(value) -> float | None:
    """``value`` as a finite float, or None (missing, ``n/a``, NaN, infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: float, unit: str) -> str:
    text = f"{value:.3g}"
    return f"{text} {unit}" if unit and unit != "fraction" else text


def judge(value, threshold: Threshold) -> Flag:
    """pass / warn / fail of one value; ``None`` or non-finite values give status 'n/a'."""
    t = threshold
    number = finite_number(value)
    if number is None:
        return Flag(t.metric, t.label, "n/a", None, t.unit, "not measured on these data",
                    t.source, t.section, t.warn, t.fail)
    worse = (lambda a, b: a > b) if t.direction == "above" else (lambda a, b: a < b)
    word = ">" if t.direction == "above" else "<"
    shown = _fmt(number, t.unit)
    if worse(number, t.fail):
        status, reason = "fail", f"{shown} {word} {_fmt(t.fail, t.unit)} (fail limit)"
    elif worse(number, t.warn):
        status, reason = "warn", f"{shown} {word} {_fmt(t.warn, t.unit)} (warning limit)"
    else:
        ok = "≤" if t.direction == "above" else "≥"
        status, reason = "pass", f"{shown} {ok} {_fmt(t.warn, t.unit)}"
    return Flag(t.metric, t.label, status, number, t.unit, reason, t.source, t.section,
                t.warn, t.fail)


def ppm_metrics(summary: dict, cf_mhz: float) -> dict:
    """Linewidths and drift range of a ``_qc.json`` summary in ppm (thresholds are in ppm)."""
    if not cf_mhz or cf_mhz <= 0:
        raise ValueError(f"QC flags need the spectrometer frequency in MHz, got {cf_mhz!r}")
    out = {}
    for key in ("linewidth_water", "linewidth_tnaa", "linewidth_tcr", "freq_shift_range"):
        hz = finite_number(summary.get(f"{key}_hz"))
        out[f"{key}_ppm"] = None if hz is None else hz / cf_mhz
    return out


def evaluate(summary: dict, cf_mhz: float, overrides: dict | None = None) -> list[Flag]:
    """Every thresholded metric of a QC summary (Hz values converted with ``cf_mhz``); a
    warning or failure of a worst-condition metric names that condition
    (``<metric>_condition`` in the summary)."""
    values = {**summary, **ppm_metrics(summary, cf_mhz)}
    flags = []
    for metric, t in thresholds_with(overrides).items():
        flag = judge(values.get(metric), t)
        where = summary.get(f"{metric}_condition")
        if where and flag.status in ("warn", "fail"):
            flag = replace(flag, reason=f"{flag.reason} at {where}")
        flags.append(flag)
    return flags


def overall(flags: list[Flag]) -> str:
    """The worst status among the flags ('pass' when none warns or fails)."""
    statuses = {f.status for f in flags}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
