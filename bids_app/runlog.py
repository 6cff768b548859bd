"""Run bookkeeping: logging set-up, progress lines, per-participant outcomes, run summary."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .derivatives import logs_dir, write_json

LOGGER_NAME = "dmrs_bids"


def setup_logging(verbosity: int, output_dir=None, run_label: str = "",
                  earlier: list[logging.LogRecord] = ()) -> logging.Logger:
    """Console logging: progress lines and warnings by default, debug notes from ``-v``
    (nipype's own node logs from ``-vv``, see ``bids_app.run``); when ``output_dir`` is
    given, a full DEBUG log in ``OUT/logs/dmrs-bids<run_label>.log`` (``run_label``
    ``_sub-01`` for a one-participant run, e.g. an array task), starting with the
    ``earlier`` records (see :func:`setup_early_logging`; the console showed them already)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    logger.handlers.clear()
    logger.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbosity == 0 else logging.DEBUG)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s",
                                           "%H:%M:%S"))
    logger.addHandler(console)
    if output_dir is not None:
        path = logs_dir(output_dir) / f"dmrs-bids{run_label}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
        logger.addHandler(handler)
        for record in earlier:
            handler.handle(record)
    logging.captureWarnings(True)
    return logger


class _HeldRecords(logging.Handler):
    """Keeps every record in a list, for a log file that does not exist yet."""

    def __init__(self, records: list):
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def setup_early_logging(verbosity: int) -> list[logging.LogRecord]:
    """Console logging for the input checks made before the run writes anything (the output
    folder, and so the log file, may not exist yet; a refused run must leave none behind).
    Returns the list that collects their records, for :func:`setup_logging` to put at the
    start of the log file once the checks passed (e.g. discovery's tracebacks)."""
    records: list[logging.LogRecord] = []
    setup_logging(verbosity).addHandler(_HeldRecords(records))
    return records


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def log_path() -> Path | None:
    """The run's log file (``OUT/logs/dmrs-bids*.log``), or None before logging to a file."""
    for handler in get_logger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def nipype_logs_to_file(verbosity: int) -> None:
    """nipype's own messages (node errors with ~30-line tracebacks, crash-file notes) go to
    the run's log file, not the console (``-vv`` keeps them on the console too): the console
    gets one line per failed participant (issue 14 item 5)."""
    nipype_logger = logging.getLogger("nipype")
    files = [h for h in get_logger().handlers if isinstance(h, logging.FileHandler)]
    for handler in list(nipype_logger.handlers):  # an earlier run's log file (in-process)
        if isinstance(handler, logging.FileHandler) and handler not in files:
            nipype_logger.removeHandler(handler)
    if verbosity < 2:
        for handler in list(nipype_logger.handlers):
            if not isinstance(handler, logging.FileHandler):
                nipype_logger.removeHandler(handler)
        if not files:  # no log file yet: nothing on the console either
            nipype_logger.addHandler(logging.NullHandler())
    for handler in files:
        if handler not in nipype_logger.handlers:
            nipype_logger.addHandler(handler)


def failure_line(subject: str, errors: list[str]) -> str:
    """The console line of a failed participant: its problems (each naming its file) and
    where the traceback is."""
    where = log_path()
    tail = f" (traceback in {where})" if where else ""
    return f"sub-{subject}: FAILED: " + " | ".join(errors) + tail


@dataclass
class Outcome:
    """What happened to one participant."""

    subject: str
    ok: bool = True
    errors: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None
    """Why the run left the participant out (e.g. none of the ``--session-label`` sessions):
    not run, so neither a success nor a failure."""

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.append(message)

    @property
    def status(self) -> str:
        """``ok``, ``failed`` or ``skipped`` (the run summary's and group table's word)."""
        return "failed" if not self.ok else ("skipped" if self.skipped else "ok")

    def record(self) -> dict:
        """Its entry in the run summary and run record: status, errors and, when skipped,
        the reason."""
        entry = {"status": self.status, "errors": self.errors}
        return {**entry, "reason": self.skipped} if self.skipped else entry

    def line(self) -> str:
        """Its console line at the end of the run."""
        if self.status == "failed":
            return failure_line(self.subject, self.errors)
        return f"sub-{self.subject}: " + (f"skipped: {self.skipped}" if self.skipped else "ok")


def error_message(exc: BaseException) -> str:
    """A one-line user-facing message (no traceback) for an exception."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[-1] if "Traceback" in text else " ".join(text.split())


def run_id(started: float) -> str:
    """Identifier of one run: its start time (UTC) and process id."""
    import os

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + f"-{os.getpid()}"


def write_summary(output_dir, outcomes: list[Outcome], level: str, started: float,
                  extra: dict | None = None, run_label: str = "") -> Path:
    """``OUT/logs/run_summary<run_label>.json`` (group level: ``group_run_summary.json``):
    participants, status, errors; failed ones named; the run's id and end time (the group
    level takes each participant's status from the latest run)."""
    finished = time.time()
    summary = {
        "run_id": run_id(started),
        "finished_epoch": round(finished, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "analysis_level": level,
        "elapsed_s": round(time.time() - started, 2),
        "n_participants": len(outcomes),
        **{key: [o.subject for o in outcomes if o.status == status]
           for key, status in (("succeeded", "ok"), ("failed", "failed"),
                               ("skipped", "skipped"))},
        "participants": {o.subject: {**o.record(), "elapsed_s": round(o.seconds, 2)}
                         for o in outcomes},
    }
    summary.update(extra or {})
    name = f"run_summary{run_label}.json" if level == "participant" \
        else f"{level}_run_summary{run_label}.json"
    return write_json(logs_dir(output_dir) / name, summary)


def validation_section(per_file: dict | None, bids_dir) -> dict | None:
    """The run summary's dataset-level ``bids_validation`` section: the validator's errors
    per file (paths relative to the dataset) that concern this run. They stay out of the
    participants' failure reasons, which name only each participant's own problem (a
    validator note on another participant's or a dataset-level file is not why it failed).
    None when validation was skipped."""
    if per_file is None:
        return None
    root = Path(bids_dir)

    def relative(path) -> str:
        try:
            return Path(path).relative_to(root).as_posix() or "."
        except ValueError:
            return str(path)

    return {"bids_validation": {
        "errors": {relative(p): sorted(set(codes)) for p, codes in sorted(per_file.items())},
        "report": "logs/bids_validation.json"}}


def write_run_records(output_dir, outcomes: list[Outcome], started: float,
                      acquisitions: dict | None = None) -> list[Path]:
    """``OUT/sub-<label>/sub-<label>_run.json`` for each participant of a participant-level
    run: which run last processed it, when, and whether it succeeded (the group level uses
    a participant's derivatives only when this says ok), and for a successful one the
    acquisitions it processed (``acquisitions``: subject -> entries of
    :func:`bids_app.processed_inputs.recorded_acquisitions`, none when None). Labels that are
    not valid BIDS labels get no folder; a skipped participant keeps the record of the run
    that last processed it."""
    from .dataset_files import LABEL

    finished = time.time()
    written = []
    for outcome in outcomes:
        if not LABEL.match(outcome.subject) or outcome.skipped:
            continue
        record = {"run_id": run_id(started), "finished_epoch": round(finished, 3),
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
                  **outcome.record()}
        processed = (acquisitions or {}).get(outcome.subject)
        if outcome.ok and processed is not None:
            record["acquisitions"] = processed
        path = Path(output_dir) / f"sub-{outcome.subject}" / f"sub-{outcome.subject}_run.json"
        written.append(write_json(path, record))
    return written


def format_exception(exc: BaseException) -> str:
    """Full traceback text, for the debug log only."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
