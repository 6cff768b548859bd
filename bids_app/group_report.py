"""``OUT/group.html``: participants with their QC status and distributions of QC metrics,
diffusion parameters and concentrations across participants (split by field strength, sequence
and echo time when mixed, and by basis set and MM model when one of these protocol cells mixes
them; concentrations also by their quantification settings; robust outliers named), and the
group level's warnings about what it pools. Built from the group tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline.io.files import to_float
from pipeline.preprocess.outliers import robust_z
from pipeline.qc.flags import THRESHOLDS

from . import derivatives as d
from . import figures as fig
from .group_basis import BASIS_COLUMN, MM_COLUMN, label_bases, mixed_bases
from .group_quantification import mixed_quantification, quantification_labels
from .report import MAIN_DECAY_METABOLITES, _environment

GROUP_PARAMETERS = (("monoexponential", "ADC"), ("sticks", "D_intra"), ("kurtosis", "K"))
"""Diffusion parameters whose distributions the group report shows."""

QC_DISTRIBUTIONS = tuple(THRESHOLDS)
"""The QC panels: every metric a QC flag judges, as judged (worst condition where the flag
says so, linewidths and drift in ppm), titled with the flag's label, limits drawn."""


def robust_outliers(values: dict, z_limit: float = 3.5) -> set:
    """Keys whose value lies more than ``z_limit`` robust z-scores
    (:func:`pipeline.preprocess.outliers.robust_z`) from the median; needs at least 4 finite
    values. With a zero MAD every value off the median is an outlier."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if len(finite) < 4:
        return set()
    keys = list(finite)
    arr = np.array([finite[k] for k in keys])
    z = robust_z(arr)
    if not np.any(z):
        med = float(np.median(arr))
        return {k for k, v in finite.items() if v != med}
    return {k for k, zk in zip(keys, z) if abs(zk) > z_limit}


def _row_label(row: dict) -> str:
    ses = row.get("session_id", "n/a")
    return row["participant_id"] if ses in ("n/a", "", None) else \
        f"{row['participant_id']} {ses}"


def _stratum(row: dict, sites: dict) -> str:
    """Field strength, sequence and echo time (when the group mixes several; see
    :func:`group_parameter_figures`), session and site of a group-table row ('' when none is
    present)."""
    parts = [row.get("_protocol_label", ""), row.get("session_id", "n/a"),
             sites.get(row["participant_id"], "")]
    return " ".join(str(p) for p in parts if p and p != "n/a")


def field_strengths(rows: list[dict]) -> set:
    """The field strengths (T) present in group-table rows."""
    return {to_float(r.get("field_strength_t")) for r in rows
            if math.isfinite(to_float(r.get("field_strength_t")))}


def echo_time_ms(row: dict) -> float:
    """A group-table row's echo time in ms to 0.1 ms (NaN when not stated)."""
    return round(to_float(row.get("echo_time_s")) * 1e3, 1)


def _mixed_within_field(rows: list[dict], key) -> bool:
    """Whether rows of one field strength hold several values of ``key(row)`` (None: not
    stated, not counted)."""
    by_field: dict = {}
    for row in rows:
        value = key(row)
        field = to_float(row.get("field_strength_t"))
        if value is not None:
            by_field.setdefault(field if math.isfinite(field) else None, set()).add(value)
    return any(len(values) > 1 for values in by_field.values())


def mixed_echo_times(rows: list[dict]) -> bool:
    """Whether rows of one field strength (of the group tables) hold several echo times."""
    return _mixed_within_field(
        rows, lambda r: echo_time_ms(r) if math.isfinite(echo_time_ms(r)) else None)


SEQUENCE_WORDS = {"press": "PRESS", "steam": "STEAM", "slaser": "sLASER", "se": "SE",
                  "fid": "FID"}
"""How a sequence family (:data:`pipeline.sequences.SEQUENCES`) is written in the report."""


def sequence_label(row: dict) -> str | None:
    """A group-table row's sequence as the report groups it: its family (``svs_se``,
    ``simulated DW-PRESS`` and ``PRESS`` are all PRESS; :func:`pipeline.sequences.sequence_in_text`),
    else the stated name as it is (an unknown or edited sequence is not assumed to be any
    other); None when not stated."""
    from pipeline.sequences import sequence_in_text

    stated = row.get("sequence")
    if stated in (None, "", "n/a"):
        return None
    family = sequence_in_text(stated)
    return SEQUENCE_WORDS.get(family, family) if family else str(stated)


def mixed_sequences(rows: list[dict]) -> bool:
    """Whether rows of one field strength hold several sequences (:func:`sequence_label`)."""
    return _mixed_within_field(rows, sequence_label)


def protocol_cell(row: dict) -> tuple:
    """A group-table row's field strength, sequence (:func:`sequence_label`) and echo time
    (ms, to 0.1 ms): rows of one cell are comparable but for what else differs (basis,
    quantification); None for a fact not stated."""
    field, te = to_float(row.get("field_strength_t")), echo_time_ms(row)
    return (field if math.isfinite(field) else None, sequence_label(row),
            te if math.isfinite(te) else None)


def _label_protocols(rows: list[dict], split_field: bool, split_te: bool,
                     split_sequence: bool = False) -> list[dict]:
    """Rows marked with their field strength, sequence and echo time, each only when the
    group mixes several, so pooled distributions are split by them: 3 T and 7 T values are
    not comparable, nor are PRESS and STEAM values (J-coupled metabolites evolve differently
    under the two, STEAM's mixing time adds T1 weighting, and ratios and concentrations
    differ with them), nor values at different echo times (the metabolites' T2 weighting
    differs, and concentrations are not T2-corrected by default)."""
    def label(row: dict) -> str:
        parts = [f"{to_float(row.get('field_strength_t')):g} T"] if split_field else []
        parts += [sequence_label(row) or "sequence n/a"] if split_sequence else []
        te = echo_time_ms(row)
        parts += [f"TE {te:g} ms" if math.isfinite(te) else "TE n/a"] if split_te else []
        return " ".join(parts)
    if not (split_field or split_te or split_sequence):
        return rows
    return [{**r, "_protocol_label": label(r)} for r in rows]


def distribution(rows: list[dict], value_key: str, title: str, unit: str,
                 strata: list[str], sites: dict) -> dict | None:
    """A distribution figure of ``value_key``: a column per main metabolite (and stratum when
    there are several), outlying participants named; None without finite values."""
    groups: dict = {}
    for name in MAIN_DECAY_METABOLITES:
        for stratum in strata:
            sel = [r for r in rows if r["metabolite"] == name and _stratum(r, sites) == stratum
                   and math.isfinite(to_float(r.get(value_key)))]
            if sel:
                label = name if len(strata) == 1 else f"{name} {stratum}"
                groups[label] = _point_labels(sel, rows, value_key)
    if not groups:
        return None
    outliers = {(g, who) for g, vals in groups.items() for who in robust_outliers(dict(vals))}
    return {"title": title, "unit": unit,
            "outliers": sorted(f"{who} ({g})" for g, who in outliers),
            "svg": fig.distribution_figure(groups, title, unit, outliers)}


def label_quantification(amplitudes: list[dict]) -> list[dict]:
    """Amplitude rows with how their concentration was quantified added to their protocol
    label (:func:`~bids_app.group_quantification.quantification_labels`; ``quantification
    n/a`` when not stated) when the group mixes quantifications
    (:func:`~bids_app.group_quantification.mixed_quantification`): a T2-corrected
    concentration is the uncorrected one times ``exp(TE/T2)``, not a comparable value."""
    if not mixed_quantification(amplitudes):
        return amplitudes
    labels = quantification_labels(amplitudes)
    return [{**r, "_protocol_label": " ".join(
        p for p in (r.get("_protocol_label", ""), label or "quantification n/a") if p)}
            for r, label in zip(amplitudes, labels)]


def group_parameter_figures(diffusion: list[dict], sites: dict | None = None,
                            amplitudes: list[dict] | None = None) -> list[dict]:
    """One distribution figure per (model, parameter) and, when water-scaled, of the
    lowest-b concentrations: a column per metabolite, split by field strength, sequence, echo
    time, session and site (``sites``: participant_id -> site) when there are several, by MM
    model and by basis when one field, sequence and echo time mixes them
    (:func:`~bids_app.group_basis.mixed_bases`), the concentrations also by how they were
    quantified (:func:`label_quantification`)."""
    sites = sites or {}
    rows = diffusion + (amplitudes or [])
    split_field = len(field_strengths(rows)) > 1
    split = (split_field, mixed_echo_times(rows), mixed_sequences(rows))
    diffusion, amplitudes = (_label_protocols(t, *split) for t in (diffusion, amplitudes or []))
    for column in (BASIS_COLUMN, MM_COLUMN):
        mixed = bool(mixed_bases(rows, protocol_cell, column))
        diffusion, amplitudes = (label_bases(t, mixed, column) for t in (diffusion, amplitudes))
    amplitudes = label_quantification(amplitudes)
    strata = sorted({_stratum(r, sites) for r in diffusion + (amplitudes or [])})
    figures = []
    for model, parameter in GROUP_PARAMETERS:
        rows = [r for r in diffusion if r["model"] == model and r["parameter"] == parameter
                and r.get("applicable") in ("1", 1, True)]
        unit = next((r["unit"] for r in rows if r.get("unit")), "")
        figures.append(distribution(rows, "value", f"{parameter} ({model})", unit, strata,
                                    sites))
    figures.append(distribution(lowest_b_rows(amplitudes or []), "concentration_mm",
                                "concentration at the lowest b (water-scaled)", "mM", strata,
                                sites))
    return [f for f in figures if f]


def lowest_b_rows(amplitudes: list[dict]) -> list[dict]:
    """Group amplitude rows of each acquisition's lowest b-value."""
    lowest: dict = {}
    for r in amplitudes:
        key = (r["participant_id"], r.get("session_id"), r.get("source"))
        lowest[key] = min(lowest.get(key, math.inf), to_float(r["b_value"]))
    return [r for r in amplitudes if to_float(r["b_value"])
            == lowest[(r["participant_id"], r.get("session_id"), r.get("source"))]]


def participant_sites(bids_dir) -> dict:
    """participant_id -> site from the input's ``participants.tsv`` (a ``site`` column),
    {} when there is none."""
    path = Path(bids_dir) / "participants.tsv" if bids_dir else None
    if path is None or not path.is_file():
        return {}
    rows = d.read_tsv(path)
    return {r["participant_id"]: r["site"] for r in rows
            if r.get("site") not in (None, "", "n/a") and r.get("participant_id")}


def _acquisition_label(row: dict, rows: list[dict]) -> str:
    """Participant (and session) of a group-table row, plus the acquisition (its source
    without the participant and session) when that participant and session have several in
    ``rows``."""
    own = (row["participant_id"], row.get("session_id"))
    several = len({x.get("source") for x in rows
                   if (x["participant_id"], x.get("session_id")) == own}) > 1
    if not several:
        return _row_label(row)
    prefix = f"{row['participant_id']}_{row.get('session_id')}_"
    source = str(row.get("source", ""))
    acquisition = (source[len(prefix):] if source.startswith(prefix)
                   else source.split("_", 1)[-1])
    return f"{_row_label(row)} {acquisition}"


def _point_labels(selected: list[dict], rows: list[dict], value_key: str) -> list[tuple]:
    """(label, value) of each selected row, labelled by acquisition (:func:`_acquisition_label`
    over all ``rows``), and by condition too where one acquisition gives several points (e.g.
    several conditions at its lowest b), so that no point shares its label and
    :func:`robust_outliers` sees every value."""
    labels = [_acquisition_label(r, rows) for r in selected]
    repeated = {x for x in labels if labels.count(x) > 1}
    return [(f"{label} condition {r.get('condition')}" if label in repeated else label,
             to_float(r[value_key])) for label, r in zip(labels, selected)]


def _judged(flags: list[dict]) -> dict:
    """(participant, session, source) -> metric -> that acquisition's flag."""
    judged: dict = {}
    for f in flags:
        key = (f.get("participant_id"), f.get("session_id"), f.get("source"))
        judged.setdefault(key, {})[f.get("metric")] = f
    return judged


def _limits(flags: list[dict]) -> dict | None:
    """The warn/fail limits the plotted values were judged against, when all share them
    (a ``[qc] thresholds`` override in some runs only gives none: no line would be right)."""
    pairs = {(to_float(f.get("warn_limit")), to_float(f.get("fail_limit"))) for f in flags}
    if len(pairs) != 1:
        return None
    warn, fail = pairs.pop()
    return {"warn": warn, "fail": fail} if math.isfinite(warn) and math.isfinite(fail) else None


def qc_panels(qc: list[dict], flags: list[dict] | None = None) -> list[dict]:
    """One panel per judged QC metric (:data:`QC_DISTRIBUTIONS`): the value each acquisition's
    flag judged (from ``flags``, the rows of its ``_qc.json`` flags), else the ``group_qc.tsv``
    column of that name (the judged value for the metrics not converted to ppm); the limits
    the flags applied; outlying acquisitions."""
    judged = _judged(flags or [])
    panels = []
    for metric in QC_DISTRIBUTIONS:
        threshold, values, used = THRESHOLDS[metric], {}, []
        for r in qc:
            flag = judged.get((r["participant_id"], r.get("session_id"), r.get("source")),
                              {}).get(metric)
            value = to_float(flag.get("value") if flag else r.get(metric))
            if math.isfinite(value):
                values[_acquisition_label(r, qc)] = value
                used += [flag] if flag else []
        if values:
            panels.append({"metric": metric, "title": threshold.label, "unit": threshold.unit,
                           "values": list(values.items()), "outliers": robust_outliers(values),
                           "limits": _limits(used) if len(used) == len(values) else None})
    return panels


def group_qc_figure(qc: list[dict], flags: list[dict] | None = None) -> dict | None:
    """QC metric distributions (small multiples of :func:`qc_panels`), outlying acquisitions
    named; ``panels`` keeps what was plotted."""
    panels = qc_panels(qc, flags)
    if not panels:
        return None
    named = [f"{who} ({p['title']})" for p in panels for who in sorted(p["outliers"])]
    return {"svg": fig.metrics_grid_figure(panels), "outliers": named, "panels": panels}


def write_group_report(output_dir, tables: dict[str, list[dict]],
                       sites: dict | None = None, notes: list[str] | None = None) -> Path:
    """``OUT/group.html``: participants with their QC status, the failed, incomplete or
    skipped ones with the reason (``tables["status"]``, the rows of ``group_status.tsv``), distributions
    (by session and ``sites`` when several), ``notes`` (the group level's warnings about what
    it pools, :func:`~bids_app.group_basis.pooling_notes`) above them, tables."""
    from pipeline import __version__

    output_dir = Path(output_dir)
    qc = tables.get("qc", [])
    failures = [r for r in tables.get("status", []) if r.get("status") != "ok"]
    participants = sorted({r["participant_id"] for r in qc}
                          | {r["participant_id"] for r in tables.get("diffusion", [])}
                          | {r["participant_id"] for r in failures})
    status = {}
    for r in qc:
        status.setdefault(r["participant_id"], []).append(r)
    text = _environment().get_template("group_report.html.j2").render(
        version=__version__, participants=participants, status=status, failures=failures,
        failed=[r["participant_id"] for r in failures if r.get("status") != "skipped"],
        skipped=[r["participant_id"] for r in failures if r.get("status") == "skipped"],
        parameter_figures=group_parameter_figures(tables.get("diffusion", []), sites,
                                                  tables.get("amplitudes", [])),
        qc_figure=group_qc_figure(qc, tables.get("qc_flags")), notes=notes or [],
        qc_columns=list(qc[0].keys()) if qc else [], qc=qc,
        report_exists={p: (output_dir / f"{p}.html").is_file() for p in participants})
    return d.atomic_write_text(output_dir / "group.html", text)
