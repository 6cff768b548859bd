"""Running the participant workflows: nipype configuration, progress lines, outcomes.

All selected participants go into one top-level workflow, so a cluster plugin can schedule
everything at once; a failing node only stops the nodes that depend on it, and each
participant's outcome is read back from nipype's crash files and the derivatives written.
"""

from __future__ import annotations

import os

os.environ.setdefault("NIPYPE_NO_ET", "1")

import gc  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from nipype import config as nipype_config  # noqa: E402
from nipype.pipeline import engine as pe  # noqa: E402

from workflows.participant import (acquisition_wf_names, init_participant_wf,  # noqa: E402
                                  participant_wf_name)

from . import derivatives as d  # noqa: E402
from .cluster import SUBMIT_ONLY_PLUGINS, run_token, tag_jobs, wait_for_jobs  # noqa: E402
from .config import digests_json, dumps_toml, named_file_digests  # noqa: E402
from .report_nodes import AcquisitionFigures, ParticipantReport  # noqa: E402
from .runlog import (Outcome, error_message, format_exception, get_logger,  # noqa: E402
                     nipype_logs_to_file)
from .scheduler import GuardedMultiProcPlugin  # noqa: E402
from .work_cache import reuse_or_clear  # noqa: E402

TOP_NAME = "dmrs_bids_wf"
CLUSTER_WAIT_S = 7 * 24 * 3600.0  # submit-only plugins: how long to wait for the jobs
LOCAL_PLUGINS = ("MultiProc", "Linear", "LegacyMultiProc")
NIPYPE_LEVELS = ("WARNING", "WARNING", "INFO", "DEBUG")  # by -v count


def configure_nipype(work_dir: Path, stop_on_first_crash: bool, verbosity: int = 0) -> Path:
    """Execution settings: crash files under the work dir, content hashing (reruns reuse
    finished nodes), fast polling, keep every output a later rerun may need."""
    crash_dir = Path(work_dir) / "crash"
    crash_dir.mkdir(parents=True, exist_ok=True)
    nipype_config.update_config({
        "execution": {
            "crashdump_dir": str(crash_dir),
            "crashfile_format": "txt",
            "hash_method": "content",
            "poll_sleep_duration": 0.01,
            "stop_on_first_crash": stop_on_first_crash,
            "remove_unnecessary_outputs": False,
            "keep_inputs": True,
            "create_report": False,
            "write_provenance": False,
            "parameterize_dirs": False,
            "check_version": False,
        },
        "monitoring": {"enabled": False},
        "logging": {key: level for key in ("workflow_level", "interface_level", "utils_level")
                    for level in [NIPYPE_LEVELS[min(verbosity, 3)]]},
    })
    from nipype import logging as nipype_logging

    nipype_logging.update_logging(nipype_config)
    nipype_logs_to_file(verbosity)
    return crash_dir


class Progress:
    """``status_callback`` for local plugins: one line per participant, acquisition and stage."""

    def __init__(self, logger):
        self.logger = logger
        self.started: dict[str, float] = {}
        self.failed: dict[str, list[str]] = {}
        self.finished: dict[str, set] = {}

    @staticmethod
    def where(node) -> tuple[str, str, str]:
        """(participant workflow, acquisition workflow, stage) from a node's full name."""
        parts = node.fullname.split(".")
        parts = parts[1:] if parts and parts[0] == TOP_NAME else parts
        participant = parts[0] if parts else ""
        acquisition = parts[1] if len(parts) > 2 else ""
        return participant, acquisition, parts[-1]

    def completed(self, participant: str, n_acquisitions: int) -> bool:
        """Every acquisition's derivatives and the report were written in this run."""
        done = self.finished.get(participant, set())
        sinks = {acq for acq, stage in done if stage == "derivatives"}
        return len(sinks) == n_acquisitions and ("", "report") in done

    def __call__(self, node, status):
        participant, acquisition, stage = self.where(node)
        if status == "end":
            self.finished.setdefault(participant, set()).add((acquisition, stage))
        if stage in ("inputnode", "outputnode", "stage_reports", "collect_derivatives",
                     "all_figures", "diffusion_parts", "diffusion_rows"):
            return
        label = participant.replace("sub_", "sub-").removesuffix("_wf")
        where = f"{label} {acquisition.removesuffix('_wf')}".strip()
        if status == "start":
            self.started[node.fullname] = time.time()
            self.logger.info("[%s] %s: started", where, stage)
        elif status == "end" and node.fullname in self.started:
            took = time.time() - self.started[node.fullname]
            self.logger.info("[%s] %s: done (%.1f s)", where, stage, took)
        elif status == "end":
            self.logger.info("[%s] %s: done", where, stage)
        elif status == "exception":
            self.failed.setdefault(participant, []).append(stage)
            self.logger.error("[%s] %s: FAILED", where, stage)


def _participant_of(node_fullname: str, wf_names: dict[str, str]) -> str | None:
    parts = node_fullname.split(".")
    for subject, wf_name in wf_names.items():
        if wf_name in parts:
            return subject
    return None


def _scheduler_error(exc: BaseException, logger) -> str:
    """Log why the scheduler stopped (traceback in the log file). Returns the one-line reason,
    or '' for nipype's plain RuntimeError at the end of a run in which nodes failed (their
    crash files say why)."""
    logger.debug("nipype stopped with:\n%s", format_exception(exc))
    if type(exc) is RuntimeError:
        return ""
    message = f"{type(exc).__name__}: {error_message(exc)}"
    logger.error("the run stopped early: %s", message)
    return message


def _crash_errors(crash_dir: Path, since: float, wf_names: dict[str, str],
                  files: dict[str, dict] | None = None, logger=None) -> dict[str, list]:
    """Error lines per participant from the (text) crash files written during this run, each
    naming the input file (``files``: subject -> acquisition workflow name -> svs path) unless
    the problem names its own; the crash files' tracebacks go to the log at debug level."""
    errors: dict[str, list] = {}
    for path in sorted(crash_dir.glob("crash-*.txt")):
        if path.stat().st_mtime < since - 1:
            continue
        text = path.read_text(errors="replace")
        node = _crash_node(text)
        if logger is not None:
            logger.debug("crash file %s:\n%s", path, text)
        subject = _participant_of(node, wf_names)
        if subject is not None:
            stage, problem = node.split(".")[-1], _crash_exception_line(text)
            svs = next((f for name, f in (files or {}).get(subject, {}).items()
                        if name in node.split(".")), None)
            errors.setdefault(subject, []).append(
                f"{problem} ({stage})" if problem.startswith("/") or svs is None
                else f"{svs}: {stage}: {problem}")
    return errors


def _acquisition_files(subject: str, acquisitions) -> dict[str, str]:
    """Acquisition workflow name (as ``init_participant_wf`` names it) -> svs path."""
    return {name: str(inputs.svs)
            for name, inputs in zip(acquisition_wf_names(subject, acquisitions), acquisitions)}


def _crash_node(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("Node:"):
            return line.split(":", 1)[1].strip()
    return ""


def _crash_exception_line(text: str) -> str:
    """The exception line of a crash file (the last line naming an Error or Exception), made
    readable: a message that names its file stands alone, others keep the bare class name."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        head, _, message = line.partition(": ")
        if ("Error" in head or "Exception" in head) and " " not in head:
            message = message.strip()
            return message if message.startswith("/") else \
                f"{head.rsplit('.', 1)[-1]}: {message}"
    return lines[-1] if lines else "crashed"


def _expected_outputs(output_dir: Path, subject: str, acquisitions) -> list[Path]:
    paths = [d.report_path(output_dir, subject)]
    for a in acquisitions:
        paths += [d.acquisition_path(output_dir, subject, a.session, a.stem, kind)
                  for kind in d.CONTRACT_KINDS]
    return paths


def build_participant_wf(subject: str, acquisitions: list, config: dict, output_dir: Path,
                         work_dir: Path, basis_path=None, config_toml: str = "",
                         name: str | None = None):
    """One participant's workflow with the app's figure and report nodes, keyed on the content
    of every file the configuration (and ``--basis``) names."""
    bids_root = acquisitions[0].bids_root if acquisitions else None
    return init_participant_wf(
        subject, acquisitions, config, output_dir, basis_path, str(Path(work_dir) / "basis_cache"),
        config_toml, name=name, figures_interface=AcquisitionFigures,
        report_interface=ParticipantReport,
        input_digests=digests_json(named_file_digests(config, bids_root, basis_path)))


def _freeze_heap() -> None:
    """Move every object alive now (the imported modules, the workflow graph) out of the
    garbage collector's reach for the run. nipype's MultiProc calls ``gc.collect()`` on each
    scheduling pass while a processor is free; over the ~150,000 objects of the imported
    libraries that took 0.13 s a call (17 s of one core per participant run, and ~0.1 s added
    to every step's start). Frozen, a pass takes microseconds; forked workers share the pages."""
    gc.collect()
    gc.freeze()


def run_participants(inputs: dict, config: dict, output_dir: Path, work_dir: Path,
                     basis_path=None, plugin: str = "MultiProc", plugin_args: dict | None = None,
                     stop_on_first_crash: bool = False, reports_only: bool = False,
                     logger=None, verbosity: int = 0) -> list[Outcome]:
    """Process every participant of ``inputs`` (subject -> list of AcquisitionInputs)."""
    logger = logger or get_logger()
    output_dir, work_dir = Path(output_dir), Path(work_dir)
    if reports_only:
        return _reports_only(inputs, config, output_dir, logger)
    crash_dir = configure_nipype(work_dir, stop_on_first_crash, verbosity)
    top = pe.Workflow(name=TOP_NAME, base_dir=str(work_dir))
    outcomes = {s: Outcome(s) for s in inputs}
    wf_names = {}
    config_toml = dumps_toml(config)
    for subject, acquisitions in inputs.items():
        wf_name = participant_wf_name(subject)
        try:
            wf = build_participant_wf(subject, acquisitions, config, output_dir, work_dir,
                                      basis_path, config_toml, wf_name)
        except Exception as exc:  # noqa: BLE001 - one participant's problem fails only it
            message = error_message(exc) if isinstance(exc, ValueError) else \
                f"{type(exc).__name__}: {error_message(exc)}"
            outcomes[subject].fail(message)
            logger.error("sub-%s: %s", subject, message)
            logger.debug("sub-%s: building its workflow failed:\n%s", subject,
                         format_exception(exc))
            continue
        try:
            note = reuse_or_clear(work_dir / TOP_NAME / wf_name)
        except OSError as exc:  # e.g. files of another user's run: only this participant fails
            message = f"its work folder {work_dir / TOP_NAME / wf_name} is unusable: {exc}"
            outcomes[subject].fail(message)
            logger.error("sub-%s: %s", subject, message)
            continue
        if note:  # a cache of other code: its steps would pass old results off as new
            logger.warning("sub-%s: %s", subject, note)
        top.add_nodes([wf])
        wf_names[subject] = wf_name
        logger.info("sub-%s: %d acquisition(s): %s", subject, len(acquisitions),
                    ", ".join(a.svs.name for a in acquisitions))
    started = time.time()
    progress = Progress(logger)
    args = dict(plugin_args or {})
    wait_s = float(args.pop("wait_timeout_s", CLUSTER_WAIT_S))
    if plugin in LOCAL_PLUGINS:
        args.setdefault("status_callback", progress)
    token = run_token() if plugin in SUBMIT_ONLY_PLUGINS else None
    if token:
        args = tag_jobs(plugin, args, token)
    run_error = ""
    if wf_names:
        runner = GuardedMultiProcPlugin(args) if plugin == "MultiProc" else plugin
        _freeze_heap()
        try:
            top.run(plugin=runner, plugin_args=args)
        except Exception as exc:  # noqa: BLE001 - the run summary must still be written
            run_error = _scheduler_error(exc, logger)
        finally:
            gc.unfreeze()
        if token:
            logger.info("%s: jobs submitted (comment %s); waiting for them to finish",
                        plugin, token)
            wait_for_jobs(token, wait_s, logger)
    files = {subject: _acquisition_files(subject, inputs[subject]) for subject in wf_names}
    crash_errors = _crash_errors(crash_dir, started, wf_names, files, logger)
    for subject in wf_names:
        outcome = outcomes[subject]
        outcome.seconds = time.time() - started
        for message in crash_errors.get(subject, []):
            outcome.fail(message)
        missing = [p for p in _expected_outputs(output_dir, subject, inputs[subject])
                   if not p.exists()]
        if missing and outcome.ok:
            outcome.fail("outputs not written: " + ", ".join(p.name for p in missing[:5]))
        if progress.failed.get(wf_names[subject]) and outcome.ok:
            outcome.fail("failed stages: " + ", ".join(progress.failed[wf_names[subject]]))
        if plugin in LOCAL_PLUGINS and outcome.ok and not progress.completed(
                wf_names[subject], len(inputs[subject])):
            outcome.fail(f"processing did not complete: {run_error}" if run_error else
                         "processing did not complete (stopped early, see the log)")
    try:  # extras: a problem here must not lose the participants' outcomes
        _log_acquisition_warnings(output_dir, inputs, logger)
        _write_citation(output_dir, config, basis_path, [o for o in outcomes.values() if o.ok],
                        inputs)
    except Exception as exc:  # noqa: BLE001
        logger.error("writing the run's warnings/citation failed: %s", error_message(exc))
        logger.debug("%s", format_exception(exc))
    return list(outcomes.values())


def _log_acquisition_warnings(output_dir: Path, inputs: dict, logger) -> None:
    """Conversion/QC warnings (e.g. b-value units guessed) go to the log as well as the report."""
    for subject, acquisitions in inputs.items():
        for a in acquisitions:
            qc = d.acquisition_path(output_dir, subject, a.session, a.stem, "qc")
            if qc.exists():
                for warning in json.loads(qc.read_text()).get("warnings", []):
                    logger.warning("%s: %s", a.stem, warning)


def _reports_only(inputs: dict, config: dict, output_dir: Path, logger) -> list[Outcome]:
    """Rebuild reports from derivatives already in ``output_dir`` (no processing)."""
    from .report import write_participant_report

    outcomes = []
    for subject, acquisitions in inputs.items():
        outcome = Outcome(subject)
        entries = []
        for a in acquisitions:
            entry = {"subject": subject, "session": a.session, "stem": a.stem}
            for kind in d.CONTRACT_KINDS:
                path = d.acquisition_path(output_dir, subject, a.session, a.stem, kind)
                if not path.exists():
                    outcome.fail(f"{path}: missing (run the participant level first)")
                entry[kind] = str(path)
            entries.append(entry)
        if outcome.ok:
            try:
                write_participant_report(output_dir, subject, entries, config.get("report", {}))
                logger.info("sub-%s: report rebuilt", subject)
            except ValueError as exc:
                outcome.fail(error_message(exc))
        outcomes.append(outcome)
    return outcomes


def _write_citation(output_dir: Path, config: dict, basis_path, succeeded, inputs) -> None:
    from .citation import write_citation

    stages = []
    for outcome in succeeded:
        for a in inputs[outcome.subject]:
            qc = d.acquisition_path(output_dir, outcome.subject, a.session, a.stem, "qc")
            if qc.exists():
                stages.append(json.loads(qc.read_text()).get("stages", {}))
    write_citation(output_dir, config, basis_path, stages)
