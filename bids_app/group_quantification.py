"""What makes water-scaled concentrations comparable across acquisitions: the quantification
settings each participant run recorded (``_qc.json`` -> ``stages`` -> ``fit.json`` ->
``quantification``), written as ``group_amplitudes.tsv`` columns
(:data:`QUANTIFICATION_COLUMNS`) and turned into labels that split group.html's concentration
distributions when a group mixes them.

A metabolite T2 or T1 correction divides a concentration by ``exp(-TE/T2)`` or
``1 - exp(-TR/T1)`` (at TE 80 ms, T2 0.25 s gives x1.377, 0.16 s x1.649); CSF correction
divides by ``1 - f_CSF``; a given water concentration or water T2/T1 replaces the computed
voxel water concentration. Each changes every concentration of an acquisition by a factor, so
acquisitions quantified differently are not pooled. Tissue fractions are measured per
participant (they make concentrations comparable), so they are stated, not split by.
"""

from __future__ import annotations

import math

from pipeline.io.files import to_float

from .group_basis import stage_report

QUANTIFICATION_COLUMNS = ["metabolite_t2_s", "metabolite_t1_s", "tissue_fractions",
                          "quantification_settings"]
"""``group_amplitudes.tsv`` columns (before ``fit_flags``): the metabolite T2 and T1 (s) the
row's concentration was corrected with (``n/a``: not corrected, or no concentration), the
GM/WM/CSF fractions used and where they came from, and the acquisition's settings that scale
all its concentrations (:data:`SETTING_KEYS`); ``n/a`` where the run was not water-scaled or
its ``_qc.json`` records no quantification (older versions)."""
SETTING_KEYS = ("metabolite_t2_s", "metabolite_t1_s", "csf_corrected",
                "effective_water_concentration_mm", "water_t2_s", "water_t1_s")
"""Recorded ``[quantification]`` settings (``fit.json`` names) that scale concentrations."""
SPLIT_SETTINGS = SETTING_KEYS[2:]
"""Of :data:`SETTING_KEYS`, those stated whole in a split label; the metabolite T2/T1 are
split by the row's own time (a table may agree for one metabolite and not another)."""
SETTING_NAMES = {"effective_water_concentration_mm": "water_concentration_mm"}
"""Settings recorded under another name than their ``[quantification]`` key."""


def quantification_record(qc: dict) -> dict | None:
    """The quantification report of a ``_qc.json`` when the run water-scaled, else None."""
    record = (stage_report(qc, "fit.json") or {}).get("quantification")
    if not isinstance(record, dict) or record.get("water_scaling") != "done":
        return None
    return record


def _text(value) -> str:
    """A setting as written in :data:`QUANTIFICATION_COLUMNS`: tables as ``key:value``
    pairs, booleans as true/false, numbers with ``g``."""
    if isinstance(value, dict):
        return ",".join(f"{k}:{_text(v)}" for k, v in sorted(value.items()))
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def settings_text(record: dict) -> str:
    """The ``quantification_settings`` of one acquisition: ``key=value`` pairs separated by
    ``; `` (a metabolite table ``none`` when not set, water relaxation ``literature`` and the
    water concentration ``computed`` when taken from the tables and fractions)."""
    empty = {"metabolite_t2_s": "none", "metabolite_t1_s": "none", "water_t2_s": "literature",
             "water_t1_s": "literature", "effective_water_concentration_mm": "computed"}
    parts = []
    for key in SETTING_KEYS:
        value = record.get(key)
        unset = value is None or value == {} or (value == 0 and not isinstance(value, bool))
        shown = empty.get(key, "n/a") if unset else _text(value)
        parts.append(f"{SETTING_NAMES.get(key, key)}={shown}")
    return "; ".join(parts)


def quantification_columns(row: dict, record: dict | None) -> dict:
    """The :data:`QUANTIFICATION_COLUMNS` of one amplitude row, given its acquisition's
    :func:`quantification_record` (None: all ``n/a``)."""
    # imported here: the command line imports this module before it sets the BLAS threads,
    # and pipeline.fitting loads numpy
    from pipeline.fitting.quantification import TISSUE_CLASSES, relaxation_time_for

    if record is None:
        return dict.fromkeys(QUANTIFICATION_COLUMNS)
    fractions = record.get("tissue_fractions") or {}
    source = record.get("tissue_fractions_source")
    stated = " ".join(f"{k}={_text(fractions[k])}" for k in TISSUE_CLASSES if k in fractions)
    return {"metabolite_t2_s": relaxation_time_for(record.get("metabolite_t2_s"),
                                                   row["metabolite"]),
            "metabolite_t1_s": relaxation_time_for(record.get("metabolite_t1_s"),
                                                   row["metabolite"]),
            "tissue_fractions": f"{stated} ({source})" if source else stated or None,
            "quantification_settings": settings_text(record)}


def _settings(row: dict) -> dict | None:
    """The :data:`SPLIT_SETTINGS` of a group-table row, from its ``quantification_settings``
    text (None when not stated)."""
    text = row.get("quantification_settings")
    if text in (None, "", "n/a"):
        return None
    pairs = dict(p.split("=", 1) for p in str(text).split("; ") if "=" in p)
    return {k: pairs.get(SETTING_NAMES.get(k, k)) for k in SPLIT_SETTINGS}


def _time_label(row: dict, key: str, word: str) -> str:
    time_s = to_float(row.get(key))
    return f"{word} {time_s:g} s" if math.isfinite(time_s) else f"no {word} correction"


def quantification_labels(rows: list[dict]) -> list[str | None]:
    """Per amplitude row, how its concentration was quantified, in the words a split
    distribution column carries: metabolite T2 (``T2 0.25 s`` or ``no T2 correction``), T1
    when any row is T1-corrected, and the :data:`SPLIT_SETTINGS` that differ in the group;
    None for a row whose settings are not stated."""
    settings = [_settings(r) for r in rows]
    stated = [s for s in settings if s is not None]
    differ = [k for k in SPLIT_SETTINGS if len({s[k] for s in stated}) > 1]
    any_t1 = any(math.isfinite(to_float(r.get("metabolite_t1_s")))
                 for r, s in zip(rows, settings) if s is not None)
    labels = []
    for row, setting in zip(rows, settings):
        if setting is None:
            labels.append(None)
            continue
        parts = [_time_label(row, "metabolite_t2_s", "T2")]
        parts += [_time_label(row, "metabolite_t1_s", "T1")] if any_t1 else []
        parts += [f"{SETTING_NAMES.get(k, k)}={setting[k]}" for k in differ]
        labels.append(" ".join(parts))
    return labels


def mixed_quantification(rows: list[dict]) -> dict:
    """When some metabolite's concentrations in ``rows`` (group amplitude rows with a
    concentration) were quantified in several ways (:func:`quantification_labels`): the
    settings that differ between acquisitions (``key=value``, from their
    ``quantification_settings``) -> the participants (with session) quantified so; {} when
    none is mixed."""
    labels = quantification_labels(rows)
    by_metabolite: dict = {}
    for row, label in zip(rows, labels):
        if label is not None and math.isfinite(to_float(row.get("concentration_mm"))):
            by_metabolite.setdefault(row["metabolite"], set()).add(label)
    if not any(len(found) > 1 for found in by_metabolite.values()):
        return {}
    stated = [(r, str(r["quantification_settings"]).split("; "))
              for r, label in zip(rows, labels) if label is not None]
    kinds = {tuple(parts) for _, parts in stated}
    differ = [i for i, values in enumerate(zip(*kinds)) if len(set(values)) > 1]
    who: dict = {}
    for row, parts in stated:
        session = row.get("session_id")
        name = row["participant_id"] + ("" if session in (None, "", "n/a") else f" {session}")
        who.setdefault("; ".join(parts[i] for i in differ), set()).add(name)
    return {k: sorted(v) for k, v in sorted(who.items())}
