"""A participant whose latest participant-level run failed must not look current anywhere.

The group level already leaves it out (its ``sub-<label>_run.json`` says failed), but its
older ``sub-<label>.html`` and tables would still show an earlier success to anyone opening
them. So, when a failed participant has outputs, they are moved, unchanged and whole (one
rename each), to ``OUT/set_aside/sub-<label>_before-<run id>/`` (the earlier report opens
there with its figures), and ``OUT/sub-<label>.html`` becomes a page saying that the latest
run failed, when, and why. A participant that fails with no outputs gets no page (it never had
a report that could mislead). A later successful run writes its outputs and report as usual.
A run restricted to sessions (``--session-label``) sets aside only those sessions' outputs
(``OUT/sub-<label>/ses-<s>/`` and their figures) and the report; the participant's other
sessions stay in place, untouched (a later successful run of the failed sessions finds them).
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

from .derivatives import (atomic_write_text, read_json_object, report_path, subject_dir,
                          write_json)
from .runlog import Outcome, get_logger, run_id, write_run_records

SET_ASIDE_DIR = "set_aside"
"""Folder of ``OUT`` holding outputs set aside when a participant's rerun failed."""
FAILED_MARK = '<meta name="dmrs-bids-status" content="failed">'
"""Marks a failure page (so a page of an earlier failed run is replaced, never set aside)."""


def run_record_name(subject: str) -> str:
    return f"sub-{subject}_run.json"


def session_labels(sessions) -> list[str]:
    """``--session-label`` values without their ``ses-`` prefix, each once ([] for none)."""
    return list(dict.fromkeys(str(s).strip().removeprefix("ses-") for s in sessions or ()))


def _session_outputs(folder: Path, subject: str, sessions: list[str]) -> list[Path]:
    """The outputs of ``sessions`` in the participant's ``folder``: each ``ses-<s>/`` and
    the figures named after it (``figures/sub-<label>_ses-<s>_*``)."""
    found = [folder / f"ses-{s}" for s in sessions if (folder / f"ses-{s}").exists()]
    figures = folder / "figures"
    if figures.is_dir():
        prefixes = tuple(f"sub-{subject}_ses-{s}_" for s in sessions)
        found += [p for p in sorted(figures.iterdir()) if p.name.startswith(prefixes)]
    return found


def stale_outputs(output_dir, subject: str, sessions=None) -> list[Path]:
    """The participant's outputs other than its run record and a failure page: what would
    look current after a failed run (``OUT/sub-<label>/*`` and ``OUT/sub-<label>.html``).
    With ``sessions`` (a ``--session-label`` run) only those sessions' outputs and the
    report: the other sessions were not run, so they stay."""
    folder = subject_dir(output_dir, subject)
    if not folder.is_dir():
        found = []
    elif sessions:
        found = _session_outputs(folder, subject, session_labels(sessions))
    else:
        found = [p for p in sorted(folder.iterdir()) if p.name != run_record_name(subject)]
    report = report_path(output_dir, subject)
    if report.is_file() and FAILED_MARK not in report.read_text(encoding="utf-8",
                                                                errors="replace"):
        found.append(report)
    return found


def set_aside(output_dir, subject: str, paths: list[Path], run: str,
              previous: dict | None) -> Path:
    """Move ``paths`` (from :func:`stale_outputs`) into ``OUT/set_aside/sub-<label>_before-
    <run>/`` keeping their places relative to ``OUT``, with the earlier run record beside
    them; returns that folder."""
    output_dir = Path(output_dir)
    dest = output_dir / SET_ASIDE_DIR / f"sub-{subject}_before-{run}"
    for path in paths:
        target = dest / path.relative_to(output_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)  # a rename: each file or folder moves whole
    if previous is not None:
        write_json(dest / f"sub-{subject}" / run_record_name(subject), previous)
    return dest


def failure_page(subject: str, record: dict, previous: dict | None,
                 moved_to: str | None, sessions=None, kept=()) -> str:
    """The HTML page that replaces a failed participant's report: the latest run failed, its
    time, id and reasons, and where the outputs present when it failed went (``moved_to``: a
    link relative to ``OUT``, None when nothing was moved). ``sessions``: the sessions a
    ``--session-label`` run processed; ``kept``: the other sessions, left in place."""
    esc = html.escape
    reasons = "".join(f"<li>{esc(e)}</li>" for e in record["errors"]) or "<li>no reason</li>"
    if previous and previous.get("status") == "ok":
        last = (f" (the last successful run ({esc(str(previous.get('run_id')))}, finished "
                f"{esc(str(previous.get('finished')))}) among them)")
    else:
        last = ""
    labels = session_labels(sessions)
    scope = f" for session(s) {esc(', '.join(labels))}" if labels else ""
    where = (f"<p>The outputs present when this run failed{scope} were moved, unchanged, to "
             f'<a href="{esc(moved_to)}">{esc(moved_to)}</a>: written by earlier runs{last} '
             "or by this run before it failed. They are not current.</p>\n"
             if moved_to else "")
    if labels:
        others = (f" Its other sessions ({esc(', '.join(kept))}) were not touched: their "
                  "outputs stay in place." if kept else "")
        where += (f"<p>This run processed only session(s) {esc(', '.join(labels))} "
                  f"(--session-label), and those failed.{others}</p>\n")
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"{FAILED_MARK}\n<title>sub-{esc(subject)}: latest run FAILED</title>\n</head>\n"
            f"<body>\n<h1>sub-{esc(subject)}: the latest run FAILED</h1>\n"
            f"<p>Run {esc(str(record['run_id']))}, finished {esc(str(record['finished']))} "
            "(UTC), failed for this participant:</p>\n"
            f"<ul>\n{reasons}\n</ul>\n{where}"
            "<p>This participant has no current results; the group level leaves it out. "
            "Fix the problem and rerun the participant level: a successful run replaces "
            "this page with the report.</p>\n</body>\n</html>\n")


RUNNING = "running"
"""``status`` of a run record written when a participant-level run starts processing the
participant (:func:`mark_running`); the run's end replaces it."""


def earlier_record(record: dict | None) -> dict | None:
    """The record of the last run that finished: ``record`` itself, or, for the record of a
    run that started and never finished, the one it replaced."""
    while isinstance(record, dict) and record.get("status") == RUNNING:
        record = record.get("previous")
    return record if isinstance(record, dict) else None


def mark_running(output_dir, subjects, started: float) -> list[Path]:
    """Before processing: each participant's run record says that this run started and has
    not finished (``status`` ``running``, the earlier record kept under ``previous``). A run
    killed or interrupted midway has replaced some derivatives and not others, and its report
    not at all; without this, its last record (an earlier run's ``ok``) vouched for them and
    the group level read them as that run's results. The run's end overwrites this record
    (:func:`record_participant_runs`)."""
    from .dataset_files import LABEL

    written = []
    for subject in subjects:
        if not LABEL.match(subject):
            continue
        path = subject_dir(output_dir, subject) / run_record_name(subject)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        written.append(write_json(path, {
            "run_id": run_id(started), "started_epoch": round(started, 3), "started": when,
            "status": RUNNING,
            "errors": [f"the participant-level run {run_id(started)} started {when} (UTC) "
                       "and did not finish (interrupted or killed, or still running): its "
                       "outputs may be partly this run's and partly an earlier run's; "
                       "rerun the participant level"],
            "previous": earlier_record(read_json_object(path))}))
    return written


def record_participant_runs(output_dir, outcomes: list[Outcome], started: float,
                            sessions=None, inputs: dict | None = None) -> list[Path]:
    """Write each participant's run record (:func:`bids_app.runlog.write_run_records`), a
    successful one listing the acquisitions of ``inputs`` (subject -> AcquisitionInputs) it
    processed; for each failed one that has outputs, set them aside and put the failure page
    in place of its report (``sessions``: the ``--session-label`` selection, whose outputs
    alone are set aside). Returns the run records."""
    from .processed_inputs import recorded_acquisitions

    output_dir = Path(output_dir)
    previous = {o.subject: earlier_record(read_json_object(subject_dir(output_dir, o.subject)
                                                       / run_record_name(o.subject)))
                for o in outcomes}
    run_sessions = set(session_labels(sessions)) or None
    processed = {s: recorded_acquisitions(a, previous.get(s), run_sessions)
                 for s, a in (inputs or {}).items()}
    written = write_run_records(output_dir, outcomes, started, processed)
    previous = {o.subject: previous[o.subject] for o in outcomes if not o.ok}
    records = {p.parent.name.removeprefix("sub-"): p for p in written}
    for subject, before in previous.items():
        if subject not in records:  # not a valid label: no folder of its own
            continue
        try:
            stale = stale_outputs(output_dir, subject, sessions)
            if not stale and not report_path(output_dir, subject).is_file():
                continue
            _mark_failed(output_dir, subject, stale, json.loads(records[subject].read_text()),
                         before, run_id(started), sessions)
        except OSError as exc:  # the run record already says failed; say why this did not
            get_logger().error("sub-%s: could not set its outputs aside or write its failure "
                               "page: %s", subject, exc)
    return written


def _other_sessions(output_dir: Path, subject: str, sessions) -> list[str]:
    """The participant's session folders left in place by a ``--session-label`` run."""
    folder = subject_dir(output_dir, subject)
    return [p.name for p in sorted(folder.glob("ses-*")) if p.is_dir()] if sessions else []


def _mark_failed(output_dir: Path, subject: str, stale: list[Path], record: dict,
                 before: dict | None, run: str, sessions=None) -> None:
    """Set ``stale`` aside (if any) and write the failure page in place of the report."""
    moved_to = None
    if stale:
        dest = set_aside(output_dir, subject, stale, run, before)
        old_report = dest / report_path(output_dir, subject).name
        moved_to = (old_report if old_report.is_file() else dest).relative_to(
            output_dir).as_posix()
        get_logger().warning("sub-%s: the latest run failed; the outputs present when it "
                             "failed%s were moved to %s and sub-%s.html now says so", subject,
                             f" (session(s) {', '.join(session_labels(sessions))})"
                             if sessions else "", dest, subject)
    atomic_write_text(report_path(output_dir, subject),
                      failure_page(subject, record, before, moved_to, sessions,
                                   _other_sessions(output_dir, subject, sessions)))
