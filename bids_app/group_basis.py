"""Which basis set each acquisition was fitted with, and where the tissue fractions of its
concentrations came from: what a group pools without saying so unless it is stated.

Amplitudes and concentrations depend on the basis (its scale, lineshapes and metabolite set:
the Osprey basis's halved first point gave a factor 2.4 before it was handled; a set without
NAAG changes tNAA), so acquisitions fitted with different bases at one field strength,
sequence and echo time are named in a warning and split in group.html. The basis each run
used is its ``_qc.json`` -> ``stages`` -> ``basis_report.json`` -> ``identity`` (a user file's
name and SHA-256, or ``simulated`` and the digest of the simulation's settings), written as
the group tables' :data:`BASIS_COLUMN`. How macromolecules and lipids were modelled changes
amplitudes as much (``stages`` -> ``mm.json`` and ``fit.json`` -> ``options`` -> ``mm_mode``:
:data:`MM_COLUMN`) and is compared the same way. Tissue fractions are stated, not split by (they are
measured per participant); default fractions beside measured ones are named in a warning.
"""

from __future__ import annotations

import re
from pathlib import Path

BASIS_COLUMN = "basis"
"""``group_amplitudes.tsv`` (before ``fit_flags``) and ``group_diffusion.tsv`` (last) column:
the basis the row's acquisition was fitted with (:func:`basis_label`)."""
MM_COLUMN = "mm_model"
"""Group-table column right before :data:`BASIS_COLUMN` (and in ``group_qc.tsv``, with it,
last): how the row's acquisition modelled macromolecules and lipids (:func:`mm_model_label`)."""
IDENTITY_COLUMNS = [MM_COLUMN, BASIS_COLUMN]
"""The two, in their order in every group table."""
DIGEST_CHARACTERS = 12
"""Hex characters of a SHA-256 shown in :data:`BASIS_COLUMN` (enough to tell files apart)."""


def stage_report(qc: dict, name: str) -> dict | None:
    """The report of stage ``name`` (e.g. ``fit.json``) in a ``_qc.json`` -> ``stages``;
    None when it records none or the record is not an object (damaged: states nothing)."""
    stages = qc.get("stages") if isinstance(qc, dict) else None
    report = stages.get(name) if isinstance(stages, dict) else None
    return report if isinstance(report, dict) else None


def basis_report(qc: dict) -> dict | None:
    """The basis stage's report of a ``_qc.json``, None when it records none."""
    return stage_report(qc, "basis_report.json")


def basis_label(report: dict | None) -> str | None:
    """An acquisition's basis in words: ``<file name> sha256:<12 hex>`` (``without <names>``
    when ``[basis] exclude`` removed entries), ``simulated sha256:<12 hex>`` (digest of the
    simulation's settings and metabolites); for a run of an earlier version that recorded no
    identity, the file name or ``simulated`` with ``(content not recorded)``; None when the
    ``_qc.json`` records no basis stage."""
    if report is None:
        return None
    identity = report.get("identity") if isinstance(report.get("identity"), dict) else {}
    digest = identity.get("sha256") or identity.get("settings_sha256")
    simulated = (identity.get("source") or report.get("source")) == "simulated"
    name = "simulated" if simulated else (identity.get("file")
                                          or Path(str(report.get("path") or "n/a")).name)
    if not isinstance(digest, str):
        return f"{name} (content not recorded)"
    excluded = identity.get("excluded") or []
    return f"{name} sha256:{digest[:DIGEST_CHARACTERS]}" + (
        f" without {', '.join(excluded)}" if excluded else "")


FIXED_MM_SHAPE = "fixed_shape_from_highest_b"
"""``[fitting] mm_mode`` that fits the MM with the shape of the highest b (not free)."""
MM_FIT_OPTIONS = ("mm_shape_prior_sd", "mm_lineshape", "joint_mm_model")
"""``[fitting]`` options that change how the MM components are fitted: named in the label
when a run's value differs from the packaged default."""


def mm_fit_option_changes(options: dict) -> list[str]:
    """``key = value`` for each of :data:`MM_FIT_OPTIONS` a run's ``fit.json`` options set
    otherwise than the packaged defaults (a key a run did not record: not named)."""
    from .config import load_default_config

    defaults = load_default_config()["fitting"]
    return [f"{key} = {options[key]}" for key in MM_FIT_OPTIONS
            if key in options and options[key] != defaults.get(key)]


def mm_model_label(qc: dict) -> str | None:
    """An acquisition's macromolecule model in words, from its ``_qc.json`` stages: the
    ``[macromolecules]`` mode used (``parametric``, ``measured``, ``basis``: the basis's own MM
    entry, ``none``), for ``measured`` the file's name and 12 hex of its SHA-256 in brackets
    (``(content not recorded)`` for an earlier version's run), ``+ lipids`` when lipid
    components were added, ``+ fixed shape from highest b`` with ``[fitting] mm_mode``
    so, and ``+ <key> = <value>`` for MM fit options off their defaults
    (:func:`mm_fit_option_changes`); None when the ``_qc.json`` records no MM stage."""
    report = stage_report(qc, "mm.json")
    if report is None or not report.get("mode"):
        return None
    identity = report.get("identity") if isinstance(report.get("identity"), dict) else {}
    label = str(report["mode"])
    if label == "measured":
        digest = identity.get("sha256")
        label += (f" ({identity.get('file')} sha256:{digest[:DIGEST_CHARACTERS]})"
                  if isinstance(digest, str) else " (content not recorded)")
    lipids = identity.get("lipids", any(str(n).startswith("Lip")
                                        for n in report.get("mm_entries") or []))
    options = (stage_report(qc, "fit.json") or {}).get("options")
    options = options if isinstance(options, dict) else {}
    fixed = options.get("mm_mode") == FIXED_MM_SHAPE
    return label + (" + lipids" if lipids else "") + (
        " + fixed shape from highest b" if fixed else "") + "".join(
        f" + {change}" for change in mm_fit_option_changes(options))


def mm_content(label: str) -> str:
    """What of a :data:`MM_COLUMN` label is compared across a group: all but the measured
    file's name and digest (a measured MM is each participant's own scan, so the files
    differ by design; measured against parametric, with or without lipids, is a different
    model)."""
    return re.sub(r" \([^()]*\)", "", str(label))


def participant_name(row: dict) -> str:
    """A group-table row's participant, with its session when it has one."""
    session = row.get("session_id")
    return row["participant_id"] + ("" if session in (None, "", "n/a") else f" {session}")


def _stated(value) -> bool:
    return value not in (None, "", "n/a")


def basis_content(label: str) -> str:
    """What of a :data:`BASIS_COLUMN` label says what the basis holds: from ``sha256:`` on
    (the digest, and the entries ``[basis] exclude`` removed), so one file under two names is
    one basis; the whole label when it records no digest."""
    at = str(label).find(" sha256:")
    return str(label)[at + 1:] if at >= 0 else str(label)


COMPARED = {BASIS_COLUMN: (basis_content, "basis n/a"), MM_COLUMN: (mm_content, "MM n/a")}
"""Column -> (what of its label is compared, the split label of a row not stating it)."""


def mixed_bases(rows: list[dict], cell, column: str = BASIS_COLUMN) -> dict:
    """When rows of one protocol cell (``cell(row)``: field strength, sequence and echo time)
    were fitted with several bases (:func:`basis_content` of :data:`BASIS_COLUMN`; with
    ``column`` :data:`MM_COLUMN` several MM models, :func:`mm_content`; not stated: not
    counted): label -> the participants (with session) fitted with it, over the whole
    group; {} when no cell mixes them (a 3 T and a 7 T basis differ and are split by field
    already)."""
    content = COMPARED[column][0]
    by_cell: dict = {}
    for row in rows:
        if _stated(row.get(column)):
            by_cell.setdefault(cell(row), set()).add(content(row[column]))
    if not any(len(found) > 1 for found in by_cell.values()):
        return {}
    who: dict = {}
    for row in rows:
        if _stated(row.get(column)):
            who.setdefault(row[column], set()).add(participant_name(row))
    return {k: sorted(v) for k, v in sorted(who.items())}


def label_bases(rows: list[dict], mixed: bool, column: str = BASIS_COLUMN) -> list[dict]:
    """Rows with their basis (``column`` :data:`MM_COLUMN`: their MM model as compared,
    :func:`mm_content`) added to their protocol label (``basis n/a``, ``MM n/a`` when not
    stated) when the group mixes them, so group.html's distributions are split by it."""
    if not mixed:
        return rows
    shown, missing = (str, COMPARED[column][1]) if column == BASIS_COLUMN else COMPARED[column]
    return [{**r, "_protocol_label": " ".join(
        p for p in (r.get("_protocol_label", ""),
                    shown(r[column]) if _stated(r.get(column)) else missing) if p)}
            for r in rows]


def fractions_source(text) -> str | None:
    """Where a ``tissue_fractions`` cell (``gm=.. wm=.. csf=.. (<source>)``) says the fractions
    came from, as a kind: ``default`` (no segmentation), ``[quantification] tissue_fractions``
    or ``table <file name>``; None when not stated."""
    if not _stated(text) or "(" not in str(text):
        return None
    source = str(text).split("(", 1)[1].rsplit(")", 1)[0]
    if source.startswith("default"):
        return "default (no segmentation: 60 % GM, 40 % WM, no CSF)"
    if source == "config":
        return "[quantification] tissue_fractions"
    return f"table {Path(source).name}"


def mixed_fraction_sources(rows: list[dict]) -> dict:
    """When the group's water-scaled concentrations took their tissue fractions from several
    kinds of source (:func:`fractions_source`): source -> participants (with session); {}
    when one kind (or none) is stated."""
    who: dict = {}
    for row in rows:
        source = fractions_source(row.get("tissue_fractions"))
        if source is not None:
            who.setdefault(source, set()).add(participant_name(row))
    return {k: sorted(v) for k, v in sorted(who.items())} if len(who) > 1 else {}


def _listed(mixed: dict) -> str:
    return " | ".join(f"{', '.join(who)}: {what}" for what, who in mixed.items())


def pooling_notes(amplitudes: list[dict], diffusion: list[dict], cell) -> list[str]:
    """The warnings (log and group.html) of a group that mixes bases or MM models within a
    protocol cell (:func:`mixed_bases`) or tissue-fraction sources
    (:func:`mixed_fraction_sources`), each naming the participants."""
    notes = []
    bases = mixed_bases(amplitudes + diffusion, cell)
    if bases:
        notes.append("acquisitions of one field strength, sequence and echo time were fitted "
                     f"with different basis sets: {_listed(bases)}; amplitudes, "
                     "concentrations and diffusion parameters depend on the basis (its scale, "
                     "lineshapes and metabolite set), so the distributions in group.html are "
                     "split by basis (compare values only within one)")
    models = mixed_bases(amplitudes + diffusion, cell, MM_COLUMN)
    if models:
        notes.append("acquisitions of one field strength, sequence and echo time were fitted "
                     f"with different macromolecule models: {_listed(models)}; amplitudes, "
                     "concentrations and diffusion parameters depend on how the MM and lipid "
                     "signal under the metabolites was modelled, so the distributions in "
                     "group.html are split by MM model (compare values only within one)")
    sources = mixed_fraction_sources(amplitudes)
    if sources:
        notes.append("water-scaled concentrations took their tissue fractions from different "
                     f"sources: {_listed(sources)}; a concentration scales with the fractions "
                     "(water content and relaxation of GM, WM and CSF), so default fractions "
                     "are not a measured segmentation: compare such concentrations with care "
                     "(group_amplitudes.tsv states each row's tissue_fractions; not split by "
                     "them)")
    return notes
