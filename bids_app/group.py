"""Group level: every participant's tables stacked, with ``participant_id``/``session_id``.

Reads ``OUT/sub-*/[ses-*/]mrs/*_{amplitudes,diffusion}.tsv`` and ``*_qc.json`` and writes
``OUT/group_amplitudes.tsv``, ``group_diffusion.tsv``, ``group_qc.tsv``, ``group_status.tsv``
and ``group.html``. Columns: ``participant_id``, ``session_id`` (``n/a`` without sessions),
``source`` (the input stem), :data:`ACQUISITION_COLUMNS` (from the metadata the participant
run recorded in ``*_desc-preproc_svs.nii.gz`` or ``*_desc-fit_svs.nii.gz``,
:func:`facts_reader`), then the participant
table's columns (QC: ``qc_status``, ``qc_failed``, ``qc_warned``, then the rest of the flat
``summary`` of ``_qc.json``), and the MM model and basis of each row's acquisition
(:data:`~bids_app.group_basis.IDENTITY_COLUMNS`, last but ``fit_flags``).
``group_status.tsv`` has one row per participant (:data:`STATUS_COLUMNS`): whether its results
are in the group tables and, when not, why (the latest participant-level run's errors).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
from pathlib import Path

from pipeline.tables import DIFFUSION_ADDED_COLUMNS

from . import derivatives as d
from .discovery import strip_prefix
from .group_basis import (BASIS_COLUMN, IDENTITY_COLUMNS, MM_COLUMN, basis_label,
                          basis_report, mm_model_label, pooling_notes)
from .group_quantification import (QUANTIFICATION_COLUMNS, mixed_quantification,
                                   quantification_columns, quantification_record)
from .processed_inputs import changed_basis, changed_inputs, current_sources
from .runlog import Outcome, error_message, get_logger

ID_COLUMNS = ["participant_id", "session_id", "source"]
ACQUISITION_COLUMNS = ["field_strength_t", "sequence", "echo_time_s"]
"""After the IDs in every group table: what makes values comparable (3 T and 7 T, or PRESS and
STEAM, concentrations must not be pooled blindly)."""
QC_STATUS_COLUMNS = ["qc_status", "qc_failed", "qc_warned"]
"""Right after the IDs in ``group_qc.tsv``: worst flag, and the metrics failing / warning."""
STATUS_COLUMNS = ["participant_id", "status", "reason", "run_id", "run_finished"]
"""``group_status.tsv``: ``status`` ``ok`` (in the group tables), ``failed`` (left out, or
only partly read) or ``skipped`` (never processed: the participant-level runs left it out, e.g.
none of its sessions selected); ``reason``: the errors of the latest participant-level run when
that run failed, why it was skipped, else what the group level found missing or unreadable
(`` | ``-separated); ``run_id`` and ``run_finished``: that latest run, for failed and skipped
participants only (``n/a`` when no run record names the participant), so that identical runs
give an identical table."""
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


def _number(value) -> float | None:
    """A metadata number (a list's first element; a NIfTI-MRS user entry ``{"Value": ...}``
    as its value), None when absent, not a number or not finite."""
    from pipeline.io.nifti_mrs_header import _unwrap

    value = _unwrap(value)
    value = value[0] if isinstance(value, list) and value else value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def acquisition_facts(metadata: dict) -> dict:
    """Nominal field strength (T: MagneticFieldStrength, else from SpectrometerFrequency;
    :func:`pipeline.units.nominal_field_t`, so 123.2 and 127.7 MHz are both 3 T), sequence
    (SequenceName, else PulseSequenceType) and echo time (s) of one acquisition's metadata;
    ``None`` where unknown. Each fact is read on its own, so one unreadable value hides no
    other."""
    from pipeline.io.nifti_mrs_header import _unwrap
    from pipeline.units import field_strength_t, nominal_field_t

    field = _number(metadata.get("MagneticFieldStrength"))
    frequency = _number(metadata.get("SpectrometerFrequency"))
    if field is None and frequency is not None:
        field = field_strength_t(frequency)
    sequence = _unwrap(metadata.get("SequenceName")) or _unwrap(metadata.get("PulseSequenceType"))
    return {"field_strength_t": None if field is None else nominal_field_t(field),
            "sequence": str(sequence) if sequence else None,
            "echo_time_s": _number(metadata.get("EchoTime"))}


FACT_WORDS = {"field_strength_t": "field strength", "sequence": "sequence",
              "echo_time_s": "echo time"}
"""The facts of :func:`acquisition_facts` in words, for messages."""
RECORDING_OUTPUTS = ("preproc", "fit")
"""Derivatives whose NIfTI-MRS header records the metadata the participant run used (the same
in both), read in this order."""


def recorded_metadata(output_dir, subject: str, session: str | None, source: str) -> dict:
    """The metadata the participant run processed an acquisition with, as it recorded it in
    the ``desc-preproc_svs`` NIfTI-MRS header, else in the ``desc-fit_svs`` one (the same: the
    input's header merged with its sidecars by BIDS inheritance, the sidecar winning). {} when
    both are missing or unreadable."""
    from pipeline.io.input_checks import header_extension

    for kind in RECORDING_OUTPUTS:
        found = header_extension(d.acquisition_path(output_dir, subject, session, source, kind))
        if found:
            return found
    return {}


class InputMetadata:
    """The sidecar metadata discovery reads for an input acquisition (its own JSON merged with
    those it inherits, by pybids), for acquisitions whose derivatives do not record it. The
    layout is built once, on first use (a dataset-wide index); without one (no BIDS dataset),
    the acquisition's own sidecar."""

    def __init__(self, bids_dir, output_dir):
        self.bids_dir, self.output_dir = bids_dir, output_dir

    @functools.cached_property
    def layout(self):
        from .discovery import DiscoveryError, load_layout

        try:
            return load_layout(self.bids_dir, exclude=[self.output_dir])
        except (DiscoveryError, OSError, ValueError):
            return None

    def __call__(self, subject: str, session: str | None, source: str) -> dict:
        from .sidecar_metadata import _metadata, _sidecar_path

        if self.bids_dir is None:
            return {}
        root = Path(self.layout.root if self.layout is not None else self.bids_dir)
        folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "") / "mrs"
        svs = folder / f"{source}_svs.nii.gz"  # pybids knows it by its absolute path
        svs = svs.with_suffix("") if svs.with_suffix("").is_file() else svs
        if self.layout is None:
            return d.read_json_object(_sidecar_path(svs)) or {}
        try:
            return _metadata(self.layout, svs)
        except (OSError, ValueError):  # a broken JSON: discovery named it for the run
            return {}


def facts_reader(output_dir, bids_dir, warn=None):
    """(subject, session, source) -> :func:`acquisition_facts` of the metadata the run
    recorded (:func:`recorded_metadata`), each fact the record lacks taken from the input's
    metadata as it is now (:class:`InputMetadata`), with a warning (``warn``, default the log)
    naming the acquisition and the facts so taken: the ``_qc.json`` records only values derived
    from them (the field from the frequency, the basis's sequence family), not the stated
    facts the tables are labelled by. Each acquisition read once."""
    inputs = InputMetadata(bids_dir, output_dir)
    warn = warn or get_logger().warning

    @functools.cache
    def facts(subject: str, session: str | None, source: str) -> dict:
        metadata = recorded_metadata(output_dir, subject, session, source)
        recorded = acquisition_facts(metadata)
        missing = [k for k, v in recorded.items() if v is None]
        if not missing:
            return recorded
        found = acquisition_facts(inputs(subject, session, source))
        paths = [d.acquisition_path(output_dir, subject, session, source, kind)
                 for kind in RECORDING_OUTPUTS]
        if not metadata:
            instead = (f"read from the input's sidecars in {bids_dir} as they are now"
                       if bids_dir is not None else "n/a (no BIDS_DIR given)")
            warn(f"{paths[0]} and {paths[1].name} are missing or unreadable (their headers "
                 "record the metadata the participant run used): its field strength, "
                 f"sequence and echo time are {instead}")
        elif any(found[k] is not None for k in missing):
            words = ", ".join(FACT_WORDS[k] for k in missing if found[k] is not None)
            warn(f"{paths[0].parent}/{source}: the headers the participant run wrote do not "
                 f"record its {words}: read from the input's sidecars in {bids_dir} as they "
                 "are now")
        return {k: found[k] if v is None else v for k, v in recorded.items()}
    return facts


RUN_RECORD = "sub-{label}_run.json"
"""``OUT/sub-<label>/sub-<label>_run.json``: the participant-level run that last processed
the participant (run id, time, status, errors), written by the CLI at the end of each run."""


def run_record_path(output_dir, subject: str) -> Path:
    return Path(output_dir) / f"sub-{subject}" / RUN_RECORD.format(label=subject)


def latest_run(output_dir, subject: str, status: str | None = None) -> dict | None:
    """The latest participant-level run that processed ``subject``: its record in the
    participant folder, or, for outputs made before records existed, the newest run summary in
    ``OUT/logs`` that names it. ``None`` when neither exists. A run that skipped it (no
    selected session) did not process it: only ``status="skipped"`` returns the latest such."""
    output_dir = Path(output_dir)
    candidates = []
    try:
        record = json.loads(run_record_path(output_dir, subject).read_text())
        if isinstance(record, dict):
            candidates.append(record)
    except (OSError, ValueError):
        pass
    for path in sorted((output_dir / "logs").glob("run_summary*.json")):
        try:
            summary = json.loads(path.read_text())
            entry = summary.get("participants", {}).get(subject)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(entry, dict):
            candidates.append({**entry, "run_id": summary.get("run_id", path.name),
                               "finished": summary.get("finished"),
                               "finished_epoch": summary.get("finished_epoch",
                                                             path.stat().st_mtime)})
    skips = status == "skipped"
    candidates = [c for c in candidates if (c.get("status") == "skipped") == skips]
    return max(candidates, key=lambda c: float(c.get("finished_epoch")
                                                or c.get("started_epoch") or 0), default=None)


def run_failure(run: dict | None) -> list[str] | None:
    """The reasons a participant-level run record gives for its failure (``["no reason
    recorded"]`` when it names none), or None when there is no record or the run succeeded."""
    if run is None or run.get("status") == "ok":
        return None
    return [str(e) for e in run.get("errors") or []] or ["no reason recorded"]


def status_row(outcome: Outcome, run: dict | None) -> dict:
    """The ``group_status.tsv`` row of one participant: its group-level outcome, and the
    latest run's own reasons when that run failed (without the group level's wording
    around them), so a script reads the participant level's message as it was logged."""
    reasons = [outcome.skipped] if outcome.skipped else run_failure(run) or outcome.errors
    shown = outcome.status != "ok"
    return {"participant_id": f"sub-{outcome.subject}", "status": outcome.status,
            "reason": " | ".join(reasons) if shown else None,
            "run_id": (run or {}).get("run_id") if shown else None,
            "run_finished": (run or {}).get("finished") if shown else None}


def collect_tables(output_dir, subjects: list[str], bids_dir=None) -> tuple[dict, list[Outcome]]:
    """Rows of the group tables (``amplitudes``, ``diffusion``, ``qc`` and ``status``, one
    row per participant; ``qc_flags``, each acquisition's QC flags, feeds only the report), and
    an outcome per participant. A participant whose latest participant-level run failed is
    failed here too, with that run's reason, and its (older) derivatives are not used; one
    never processed but skipped by a run (none of its ``--session-label`` sessions) is
    skipped here too: not run, not failed. One whose latest run did not finish, or (given
    ``bids_dir``) whose inputs changed or went since its latest run
    (:func:`~bids_app.processed_inputs.changed_inputs`), or whose ``--basis`` changed
    (:func:`basis_changes`), is failed likewise."""
    output_dir = Path(output_dir)
    tables = {"amplitudes": [], "diffusion": [], "qc": [], "qc_flags": [], "status": [],
              "quantification": {}, "basis": {}}
    outcomes, facts = [], facts_reader(output_dir, bids_dir)
    for subject in subjects:
        outcome = Outcome(subject)
        outcomes.append(outcome)
        run = latest_run(output_dir, subject)
        skip = latest_run(output_dir, subject, "skipped") if run is None else None
        reasons = run_failure(run)
        if reasons is not None:
            outcome.fail(f"the latest participant-level run ({run.get('run_id', '?')}) failed "
                         f"for sub-{subject}: {' | '.join(reasons)}; its earlier derivatives "
                         "are not used")
        elif skip is not None:
            outcome.skipped, run = str(skip.get("reason") or "no reason recorded"), skip
        else:
            for problem in changed_inputs(run, bids_dir) + basis_changes(output_dir, subject,
                                                                         run):
                outcome.fail(problem)
            if outcome.ok:
                _collect_participant(output_dir, subject, facts, tables, outcome,
                                     current_sources(run))
        tables["status"].append(status_row(outcome, run))
    records, bases = tables.pop("quantification"), tables.pop("basis")

    def key(row: dict) -> tuple:
        return row["participant_id"], row["session_id"], row["source"]
    tables["amplitudes"] = [{**r, **quantification_columns(r, records.get(key(r))),
                             **bases.get(key(r), {})} for r in tables["amplitudes"]]
    for kind in ("diffusion", "qc"):
        tables[kind] = [{**r, **bases.get(key(r), {})} for r in tables[kind]]
    return tables, outcomes


EXPECTED_KINDS = tuple(d.ACQUISITION_OUTPUTS[k] for k in ("amplitudes", "diffusion", "qc"))
"""Files the group level reads, written for every acquisition by the participant level (among
:data:`~bids_app.derivatives.CONTRACT_KINDS`; ``_diffusion.tsv`` is the header alone when the
acquisition has fewer than two b-values): one missing fails the participant."""
REQUIRED_COLUMNS = {d.ACQUISITION_OUTPUTS["amplitudes"]: d.AMPLITUDES_COLUMNS,
                    d.ACQUISITION_OUTPUTS["diffusion"]: [c for c in d.DIFFUSION_COLUMNS
                                                         if c not in DIFFUSION_ADDED_COLUMNS]}
"""Columns the participant level always writes in each table the group level reads (not those
added since: tables of earlier versions are read, ``n/a`` in them)."""


def table_problem(text: str, rows: list[dict], required) -> str | None:
    """Why a TSV (its whole ``text`` and the rows :func:`~bids_app.derivatives.read_tsv` read
    from it) is not a table as the participant level writes it, or ``None``: columns of
    ``required`` missing from the header, no newline at the end (truncated), or a row with
    more or fewer fields than the header (the reader would pad or drop them silently)."""
    if not text:
        return "empty file"
    header = text.split("\n", 1)[0].rstrip("\r").split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        return f"the header lacks column(s) {', '.join(missing)}"
    if not text.endswith("\n"):
        return "truncated: no newline at the end of the file"
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            fields = sum(1 for k, v in row.items() if k is not None and v is not None)
            fields += len(row.get(None) or [])
            return f"line {number} has {fields} field(s), the header {len(header)}"
    return None


def _read_table(path: Path, kind: str) -> list[dict]:
    """The rows of one participant TSV, exactly as :func:`~bids_app.derivatives.read_tsv`
    reads them; ``ValueError`` naming the problem when the table is damaged."""
    rows = d.read_tsv(path)
    with open(path, newline="", encoding="utf-8") as fh:
        problem = table_problem(fh.read(), rows, REQUIRED_COLUMNS[kind])
    if problem:
        raise ValueError(problem)
    return rows


QC_FLAG_FIELDS = ("metric", "value", "warn_limit", "fail_limit")
"""What the group report takes from each ``_qc.json`` flag (its ``source`` is a reference key,
not the acquisition)."""


def _read_qc(path: Path) -> tuple[dict, list[dict], dict | None, dict]:
    """(summary, flags, quantification, identity) of a ``_qc.json``: the flat metrics for
    ``group_qc.tsv``, each flag's judged value and limits for the group report's QC panels
    (not a table column), the fit's quantification report when the run water-scaled
    (:func:`~bids_app.group_quantification.quantification_record`) and the MM model and
    basis it was fitted with (:data:`~bids_app.group_basis.IDENTITY_COLUMNS`:
    :func:`~bids_app.group_basis.mm_model_label`, :func:`~bids_app.group_basis.basis_label`)."""
    qc = json.loads(path.read_text())
    summary = qc.get("summary", {}) if isinstance(qc, dict) else None
    if not isinstance(summary, dict):
        raise ValueError("not a QC report (no 'summary' object)")
    flags = qc.get("flags", [])
    flags = [f for f in flags if isinstance(f, dict)] if isinstance(flags, list) else []
    return summary, flags, quantification_record(qc), {
        MM_COLUMN: mm_model_label(qc), BASIS_COLUMN: basis_label(basis_report(qc))}


def basis_changes(output_dir: Path, subject: str, run: dict | None) -> list[str]:
    """:func:`~bids_app.processed_inputs.changed_basis` of each acquisition the run processed
    (as its ``_qc.json`` records it): a basis edited since is not what was fitted."""
    found, _ = not_processed(_participant_files(output_dir, subject), current_sources(run),
                             output_dir, subject)
    problems = [changed_basis(basis_report(d.read_json_object(path) or {}), run,
                              path.name[: -len("_qc.json")])
                for kind, _, path in found if kind == "qc.json"]
    return [problem for problem in problems if problem]


def missing_files(found: list[tuple[str, str | None, Path]]) -> list[Path]:
    """The files of :data:`EXPECTED_KINDS` absent beside each acquisition's other ones."""
    present: dict[tuple[Path, str], set[str]] = {}
    for kind, _, path in found:
        present.setdefault((path.parent, path.name[: -len(kind) - 1]), set()).add(kind)
    return [folder / f"{stem}_{kind}" for (folder, stem), kinds in present.items()
            for kind in EXPECTED_KINDS if kind not in kinds]


def not_processed(found: list[tuple[str, str | None, Path]], sources: set | None,
                  output_dir: Path, subject: str) -> tuple[list, list[Path]]:
    """(the files of ``found`` whose acquisition, (session, source), is in ``sources``, the
    outputs of the ``sources`` absent from ``found`` altogether); with ``sources`` None (a run
    record listing no acquisitions, from an older version) every file, none absent."""
    if sources is None:
        return found, []
    kept = [(kind, ses, path) for kind, ses, path in found
            if (ses, path.name[: -len(kind) - 1]) in sources]
    present = {(ses, path.name[: -len(kind) - 1]) for kind, ses, path in kept}
    absent = [d.acquisition_path(output_dir, subject, ses, source, "qc")
              for ses, source in sorted(sources - present, key=str)]
    return kept, absent


def _collect_participant(output_dir: Path, subject: str, facts, tables: dict,
                         outcome: Outcome, sources: set | None = None) -> None:
    """Add one participant's derivative rows to ``tables``, of the acquisitions its latest
    run processed (``sources``, see :func:`not_processed`: another acquisition's files are
    left from an input removed or renamed since, and are named in a warning); what is
    missing, unreadable or damaged (truncated, rows not matching the header, columns or files
    the participant level always writes absent) fails ``outcome`` (naming the folder or
    file) without stopping the other participants; a damaged file's rows are left out."""
    every = _participant_files(output_dir, subject)
    found, absent = not_processed(every, sources, output_dir, subject)
    stale = sorted(str(item[2]) for item in every if item not in found)
    if stale:
        get_logger().warning("sub-%s: not used: %s: outputs of acquisitions its latest run "
                             "did not process (their input was removed or renamed since)",
                             subject, ", ".join(stale))
    for path in absent if every else []:
        outcome.fail(f"{path}: missing (the latest participant-level run processed this "
                     "acquisition)")
    if not every:
        outcome.fail(f"no derivatives under {output_dir / ('sub-' + subject)} "
                     "(run the participant level first)")
    for path in missing_files(found):
        outcome.fail(f"{path}: missing (the participant level writes it for every "
                     "acquisition)")
    for kind, session, path in found:
        ids = _ids(subject, session, path, kind)
        ids.update(facts(subject, session, ids["source"]))
        try:
            if kind == "qc.json":
                summary, flags, record, identity = _read_qc(path)
                tables["qc"].append({**ids, **summary})
                key = (ids["participant_id"], ids["session_id"], ids["source"])
                tables["quantification"][key], tables["basis"][key] = record, identity
                tables["qc_flags"] += [{**ids, **{k: flag.get(k) for k in QC_FLAG_FIELDS}}
                                       for flag in flags]
            else:
                tables[kind.split(".")[0]] += [{**ids, **row} for row in _read_table(path, kind)]
        except (OSError, ValueError, csv.Error) as exc:
            outcome.fail(f"{path}: unreadable ({error_message(exc)})")


def group_amplitudes_columns(rows: list[dict], leading) -> list[str]:
    """Header of ``group_amplitudes.tsv``: the participant table's
    (:func:`~bids_app.derivatives.amplitudes_columns`), with :data:`QUANTIFICATION_COLUMNS`
    and :data:`~bids_app.group_basis.IDENTITY_COLUMNS` right before ``fit_flags`` (which
    stays last) when that is there, else at the end."""
    added = QUANTIFICATION_COLUMNS + IDENTITY_COLUMNS
    head = [c for c in d.amplitudes_columns(rows, leading) if c not in added]
    at = head.index(d.LAST_AMPLITUDE_COLUMN) if d.LAST_AMPLITUDE_COLUMN in head else len(head)
    return head[:at] + added + head[at:]


def available_subjects(folder) -> list[str]:
    """Labels of the ``sub-*`` folders in a dataset or derivatives folder."""
    return sorted(p.name[4:] for p in Path(folder).glob("sub-*") if p.is_dir())


def group_subjects(output_dir, participant_labels=None, bids_dir=None) -> list[str]:
    """Participants of the group level: the given labels (each must have an output folder,
    else :class:`~bids_app.discovery.DiscoveryError` naming the missing ones: the CLI checks
    this before it writes anything), else every participant of ``bids_dir`` (so one without
    participant-level outputs is reported as failed) and every ``sub-*`` output folder."""
    present = available_subjects(output_dir) if Path(output_dir).is_dir() else []
    if not participant_labels:
        return sorted(set(present) | set(available_subjects(bids_dir) if bids_dir else []))
    subjects = [strip_prefix(p, "sub") for p in participant_labels]
    missing = [s for s in subjects if s not in present]
    if missing:
        from .discovery import DiscoveryError
        raise DiscoveryError(f"{output_dir}: no participant-level outputs for "
                             f"{', '.join('sub-' + m for m in missing)} (available: "
                             f"{', '.join(present) or 'none'})")
    return subjects


def run_group(output_dir, participant_labels=None, bids_dir=None, logger=None) -> list[Outcome]:
    """Write the group tables and report; returns per-participant outcomes (participants:
    :func:`group_subjects`). Failed or incomplete participants are listed with the reason in
    ``group_status.tsv`` and ``group.html``."""
    logger = logger or get_logger()
    output_dir = Path(output_dir)
    subjects = group_subjects(output_dir, participant_labels, bids_dir)
    tables, outcomes = collect_tables(output_dir, subjects, bids_dir)
    for outcome in outcomes:
        for error in outcome.errors:
            logger.warning("sub-%s: %s", outcome.subject, error)
    ids = ID_COLUMNS + ACQUISITION_COLUMNS
    d.write_tsv(output_dir / "group_amplitudes.tsv", tables["amplitudes"],
                group_amplitudes_columns(tables["amplitudes"], ids))
    d.write_tsv(output_dir / "group_diffusion.tsv", tables["diffusion"],
                ids + d.DIFFUSION_COLUMNS + IDENTITY_COLUMNS)
    qc_head = ids + QC_STATUS_COLUMNS  # then the _qc.json summary's, IDENTITY_COLUMNS last
    d.write_tsv(output_dir / "group_qc.tsv", tables["qc"], qc_head + list(dict.fromkeys(
        k for r in tables["qc"] for k in r if k not in qc_head + IDENTITY_COLUMNS))
        + IDENTITY_COLUMNS)
    d.write_tsv(output_dir / "group_status.tsv", tables["status"], STATUS_COLUMNS)
    fields = sorted({r["field_strength_t"] for rows in tables.values() for r in rows
                     if r.get("field_strength_t") is not None})
    if len(fields) > 1:
        logger.warning("group level: acquisitions at %s T; distributions in group.html are "
                       "split by field strength (compare values only within one field)",
                       ", ".join(f"{f:g}" for f in fields))
    from .group_report import (mixed_sequences, participant_sites, protocol_cell,
                               sequence_label, write_group_report)

    rows = tables["amplitudes"] + tables["diffusion"]
    if mixed_sequences(rows):
        logger.warning("group level: sequences %s at one field strength; distributions in "
                       "group.html are split by sequence (compare values only within one)",
                       ", ".join(sorted({sequence_label(r) for r in rows} - {None})))

    mixed = mixed_quantification(tables["amplitudes"])
    if mixed:
        logger.warning("group level: water-scaled concentrations quantified with different "
                       "settings (each scales every concentration by a factor): %s; the "
                       "concentration distributions in group.html are split by them (compare "
                       "concentrations only within one)",
                       " | ".join(f"{', '.join(who)}: {settings}"
                                  for settings, who in mixed.items()))
    notes = pooling_notes(tables["amplitudes"], tables["diffusion"], protocol_cell)
    for note in notes:
        logger.warning("group level: %s", note)
    write_group_report(output_dir, tables, participant_sites(bids_dir), notes)
    logger.info("group level: %d participant(s), %d amplitude rows, %d diffusion rows",
                len(subjects), len(tables["amplitudes"]), len(tables["diffusion"]))
    return outcomes
