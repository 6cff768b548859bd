"""Group level: every participant's tables stacked, with ``participant_id``/``session_id``.

Reads ``OUT/sub-*/[ses-*/]mrs/*_{amplitudes,diffusion}.tsv`` and ``*_qc.json`` and writes
``OUT/group_amplitudes.tsv``, ``group_diffusion.tsv``, ``group_qc.tsv`` and ``group.html``.
Columns: ``participant_id``, ``session_id`` (``n/a`` without sessions), ``source`` (the input
stem), then the participant table's columns (QC: ``qc_status``, ``qc_failed``, ``qc_warned``,
then the rest of the flat ``summary`` of ``_qc.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import derivatives as d
from .discovery import strip_prefix
from .runlog import Outcome, error_message, get_logger

ID_COLUMNS = ["participant_id", "session_id", "source"]
QC_STATUS_COLUMNS = ["qc_status", "qc_failed", "qc_warned"]
"""Right after the IDs in ``group_qc.tsv``: worst flag, and the metrics failing / warning."""
_NAME = re.compile(r"^(?P<stem>sub-(?P<sub>[^_]+)(?:_ses-(?P<ses>[^_]+))?.*)_"
                   r"(?P<kind>amplitudes\.tsv|diffusion\.tsv|qc\.json)$")


def _participant_files(output_dir: Path, subject: str) -> list[tuple[str, str | None, Path]]:
    files = []
    for path in sorted((output_dir / f"sub-{subject}").glob("**/mrs/*")):
        match = _NAME.match(path.name)
        if match:
            files.append((match["kind"], match["ses"], path))
    return files


def _ids(subject: str, session: str | None, path: Path, kind: str) -> dict:
    suffix = "_" + kind
    return {"participant_id": f"sub-{subject}",
            "session_id": f"ses-{session}" if session else "n/a",
            "source": path.name[: -len(suffix)]}


def collect_tables(output_dir, subjects: list[str]) -> tuple[dict, list[Outcome]]:
    """Rows of the three group tables, and an outcome per participant."""
    output_dir = Path(output_dir)
    tables = {"amplitudes": [], "diffusion": [], "qc": []}
    outcomes = []
    for subject in subjects:
        outcome = Outcome(subject)
        found = _participant_files(output_dir, subject)
        if not found:
            outcome.fail(f"no derivatives under {output_dir / ('sub-' + subject)} "
                         "(run the participant level first)")
        for kind, session, path in found:
            ids = _ids(subject, session, path, kind)
            try:
                if kind == "qc.json":
                    summary = json.loads(path.read_text()).get("summary", {})
                    tables["qc"].append({**ids, **summary})
                else:
                    tables[kind.split(".")[0]] += [{**ids, **row} for row in d.read_tsv(path)]
            except (OSError, ValueError) as exc:
                outcome.fail(f"{path}: unreadable ({error_message(exc)})")
        outcomes.append(outcome)
    return tables, outcomes


def available_subjects(folder) -> list[str]:
    """Labels of the ``sub-*`` folders in a dataset or derivatives folder."""
    return sorted(p.name[4:] for p in Path(folder).glob("sub-*") if p.is_dir())


def run_group(output_dir, participant_labels=None, bids_dir=None, logger=None) -> list[Outcome]:
    """Write the group tables and report; returns per-participant outcomes.

    Participants: the given labels, else every participant of ``bids_dir`` (so one without
    participant-level outputs is reported as failed), else every ``sub-*`` output folder.
    """
    logger = logger or get_logger()
    output_dir = Path(output_dir)
    present = available_subjects(output_dir)
    if participant_labels:
        subjects = [strip_prefix(p, "sub") for p in participant_labels]
        missing = [s for s in subjects if s not in present]
        if missing:
            from .discovery import DiscoveryError
            raise DiscoveryError(f"{output_dir}: no participant-level outputs for "
                                 f"{', '.join('sub-' + m for m in missing)} (available: "
                                 f"{', '.join(present) or 'none'})")
    else:
        subjects = sorted(set(present) | set(available_subjects(bids_dir) if bids_dir else []))
    tables, outcomes = collect_tables(output_dir, subjects)
    d.write_tsv(output_dir / "group_amplitudes.tsv", tables["amplitudes"],
                ID_COLUMNS + d.AMPLITUDES_COLUMNS)
    d.write_tsv(output_dir / "group_diffusion.tsv", tables["diffusion"],
                ID_COLUMNS + d.DIFFUSION_COLUMNS)
    d.write_tsv(output_dir / "group_qc.tsv", tables["qc"], ID_COLUMNS + QC_STATUS_COLUMNS)
    from .report import participant_sites, write_group_report

    write_group_report(output_dir, tables, [f"sub-{o.subject}" for o in outcomes if not o.ok],
                       participant_sites(bids_dir))
    logger.info("group level: %d participant(s), %d amplitude rows, %d diffusion rows",
                len(subjects), len(tables["amplitudes"]), len(tables["diffusion"]))
    return outcomes
