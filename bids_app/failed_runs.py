"""A participant whose latest participant-level run failed must not look current anywhere.

The group level already leaves it out (its ``sub-<label>_run.json`` says failed), but its
older ``sub-<label>.html`` and tables would still show an earlier success to anyone opening
them. So, when a failed participant has outputs, they are moved, unchanged and whole (one
rename each), to ``OUT/set_aside/sub-<label>_before-<run id>/`` (the earlier report opens
there with its figures), and ``OUT/sub-<label>.html`` becomes a page saying that the latest
run failed, when, and why. A participant that fails with no outputs gets no page (it never had
a report that could mislead). A later successful run writes its outputs and report as usual.
"""

from __future__ import annotations

import html
import json
import os
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


def stale_outputs(output_dir, subject: str) -> list[Path]:
    """The participant's outputs other than its run record and a failure page: what would
    look current after a failed run (``OUT/sub-<label>/*`` and ``OUT/sub-<label>.html``)."""
    folder = subject_dir(output_dir, subject)
    found = [p for p in sorted(folder.iterdir()) if p.name != run_record_name(subject)] \
        if folder.is_dir() else []
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
                 moved_to: str | None) -> str:
    """The HTML page that replaces a failed participant's report: the latest run failed, its
    time, id and reasons, and where the earlier outputs went (``moved_to``: a link relative
    to ``OUT``, None when nothing was moved)."""
    esc = html.escape
    reasons = "".join(f"<li>{esc(e)}</li>" for e in record["errors"]) or "<li>no reason</li>"
    if previous and previous.get("status") == "ok":
        before = (f"the results of the last successful run ({esc(str(previous.get('run_id')))}, "
                  f"finished {esc(str(previous.get('finished')))})")
    else:
        before = "the outputs of earlier runs"
    where = (f"<p>{before[0].upper() + before[1:]} were moved, unchanged, to "
             f'<a href="{esc(moved_to)}">{esc(moved_to)}</a>. '
             "They are not current.</p>" if moved_to else "")
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"{FAILED_MARK}\n<title>sub-{esc(subject)}: latest run FAILED</title>\n</head>\n"
            f"<body>\n<h1>sub-{esc(subject)}: the latest run FAILED</h1>\n"
            f"<p>Run {esc(str(record['run_id']))}, finished {esc(str(record['finished']))} "
            "(UTC), failed for this participant:</p>\n"
            f"<ul>\n{reasons}\n</ul>\n{where}\n"
            "<p>This participant has no current results; the group level leaves it out. "
            "Fix the problem and rerun the participant level: a successful run replaces "
            "this page with the report.</p>\n</body>\n</html>\n")


def record_participant_runs(output_dir, outcomes: list[Outcome], started: float) -> list[Path]:
    """Write each participant's run record (:func:`bids_app.runlog.write_run_records`); for
    each failed one that has outputs, set them aside and put the failure page in place of
    its report. Returns the run records."""
    output_dir = Path(output_dir)
    previous = {o.subject: read_json_object(subject_dir(output_dir, o.subject)
                                        / run_record_name(o.subject))
                for o in outcomes if not o.ok}
    written = write_run_records(output_dir, outcomes, started)
    records = {p.parent.name.removeprefix("sub-"): p for p in written}
    for subject, before in previous.items():
        if subject not in records:  # not a valid label: no folder of its own
            continue
        stale = stale_outputs(output_dir, subject)
        if not stale and not report_path(output_dir, subject).is_file():
            continue
        try:
            _mark_failed(output_dir, subject, stale, json.loads(records[subject].read_text()),
                         before, run_id(started))
        except OSError as exc:  # the run record already says failed; say why this did not
            get_logger().error("sub-%s: could not set its earlier outputs aside or write its "
                               "failure page: %s", subject, exc)
    return written


def _mark_failed(output_dir: Path, subject: str, stale: list[Path], record: dict,
                 before: dict | None, run: str) -> None:
    """Set ``stale`` aside (if any) and write the failure page in place of the report."""
    moved_to = None
    if stale:
        dest = set_aside(output_dir, subject, stale, run, before)
        old_report = dest / report_path(output_dir, subject).name
        moved_to = (old_report if old_report.is_file() else dest).relative_to(
            output_dir).as_posix()
        get_logger().warning("sub-%s: the latest run failed; its earlier outputs were moved "
                             "to %s and sub-%s.html now says so", subject, dest, subject)
    atomic_write_text(report_path(output_dir, subject),
                      failure_page(subject, record, before, moved_to))
