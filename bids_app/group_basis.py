"""Which basis set each acquisition was fitted with, and where the tissue fractions of its
concentrations came from: what a group pools without saying so unless it is stated.

Amplitudes and concentrations depend on the basis (its scale, lineshapes and metabolite set:
the Osprey basis's halved first point gave a factor 2.4 before it was handled; a set without
NAAG changes tNAA), so acquisitions fitted with different bases at one field strength,
sequence and echo time are named in a warning and split in group.html. The basis each run
used is its ``_qc.json`` -> ``stages`` -> ``basis_report.json`` -> ``identity`` (a user file's
name and SHA-256, or ``simulated`` and the digest of the simulation's settings), written as
the group tables' :data:`BASIS_COLUMN`. Tissue fractions are stated, not split by (they are
measured per participant); default fractions beside measured ones are named in a warning.
"""

from __future__ import annotations

from pathlib import Path

BASIS_COLUMN = "basis"
"""``group_amplitudes.tsv`` (before ``fit_flags``) and ``group_diffusion.tsv`` (last) column:
the basis the row's acquisition was fitted with (:func:`basis_label`)."""
DIGEST_CHARACTERS = 12
"""Hex characters of a SHA-256 shown in :data:`BASIS_COLUMN` (enough to tell files apart)."""


def basis_report(qc: dict) -> dict | None:
    """The basis stage's report of a ``_qc.json``, None when it records none."""
    report = (qc.get("stages") or {}).get("basis_report.json")
    return report if isinstance(report, dict) else None


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


def mixed_bases(rows: list[dict], cell) -> dict:
    """When rows of one protocol cell (``cell(row)``: field strength, sequence and echo time)
    were fitted with several bases (:func:`basis_content` of :data:`BASIS_COLUMN`; not stated:
    not counted): basis -> the participants (with session) fitted with it, over the whole
    group; {} when no cell mixes bases (a 3 T and a 7 T basis differ and are split by field
    already)."""
    by_cell: dict = {}
    for row in rows:
        if _stated(row.get(BASIS_COLUMN)):
            by_cell.setdefault(cell(row), set()).add(basis_content(row[BASIS_COLUMN]))
    if not any(len(found) > 1 for found in by_cell.values()):
        return {}
    who: dict = {}
    for row in rows:
        if _stated(row.get(BASIS_COLUMN)):
            who.setdefault(row[BASIS_COLUMN], set()).add(participant_name(row))
    return {k: sorted(v) for k, v in sorted(who.items())}


def label_bases(rows: list[dict], mixed: bool) -> list[dict]:
    """Rows with their basis added to their protocol label (``basis n/a`` when not stated)
    when the group mixes bases, so group.html's distributions are split by basis."""
    if not mixed:
        return rows
    return [{**r, "_protocol_label": " ".join(
        p for p in (r.get("_protocol_label", ""),
                    r[BASIS_COLUMN] if _stated(r.get(BASIS_COLUMN)) else "basis n/a") if p)}
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
    """The warnings (log and group.html) of a group that mixes bases within a protocol cell
    (:func:`mixed_bases`) or tissue-fraction sources (:func:`mixed_fraction_sources`), each
    naming the participants."""
    notes = []
    bases = mixed_bases(amplitudes + diffusion, cell)
    if bases:
        notes.append("acquisitions of one field strength, sequence and echo time were fitted "
                     f"with different basis sets: {_listed(bases)}; amplitudes, "
                     "concentrations and diffusion parameters depend on the basis (its scale, "
                     "lineshapes and metabolite set), so the distributions in group.html are "
                     "split by basis (compare values only within one)")
    sources = mixed_fraction_sources(amplitudes)
    if sources:
        notes.append("water-scaled concentrations took their tissue fractions from different "
                     f"sources: {_listed(sources)}; a concentration scales with the fractions "
                     "(water content and relaxation of GM, WM and CSF), so default fractions "
                     "are not a measured segmentation: compare such concentrations with care "
                     "(group_amplitudes.tsv states each row's tissue_fractions; not split by "
                     "them)")
    return notes
