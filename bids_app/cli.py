"""``dmrs-bids bids_dir output_dir {participant,group}``: the BIDS App command line.

Follows the BIDS Apps contract as fMRIPrep/MRIQC practise it: positional arguments, label
selection, a work directory whose finished steps are reused, nipype plugins for local or
cluster execution. Exit status 0 only when every selected participant succeeded.
"""

from __future__ import annotations

import os

os.environ.setdefault("NIPYPE_NO_ET", "1")  # before anything imports nipype: no phoning home
os.environ.setdefault("MPLBACKEND", "Agg")
# Single-threaded BLAS unless --omp-nthreads says otherwise: set before numpy loads (here and
# in every worker, which inherit the environment); parallelism comes from --nprocs.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import getpass  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from pipeline import __version__  # noqa: E402
from pipeline.unit_names import B_VALUE_UNITS  # noqa: E402  (no numpy)

from . import bids_validation, derivatives, discovery  # noqa: E402
from .config import ConfigError, load_config, write_config  # noqa: E402
from .config_choices import diffusion_metabolite_problems  # noqa: E402
from .failed_runs import mark_running, record_participant_runs  # noqa: E402
from .group import group_subjects  # noqa: E402
from .runlog import (Outcome, error_message, format_exception,  # noqa: E402
                     setup_early_logging, setup_logging, validation_section, write_summary)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PLUGINS = ["MultiProc", "Linear", "LegacyMultiProc", "SLURM", "SLURMGraph", "SGE", "SGEGraph",
           "PBS", "PBSGraph", "LSF", "Condor", "OAR", "IPython"]


class CliError(ValueError):
    """A usage problem reported as one clear line and exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmrs-bids",
        description="dmrs-bids: preprocessing, linear-combination fitting, diffusion modelling "
                    "and QC of (diffusion-weighted) MR spectroscopy in an MRS-BIDS dataset, as "
                    "a BIDS App. Outputs are BIDS derivatives in output_dir.",
        epilog="Example: dmrs-bids /data /out participant --participant-label 01 -w /scratch/work")
    parser.add_argument("bids_dir", type=Path,
                        help="root of the input MRS-BIDS dataset (holds dataset_description.json)")
    parser.add_argument("output_dir", type=Path,
                        help="where derivatives are written (created if absent); group level "
                             "reads the participant outputs here")
    parser.add_argument("analysis_level", choices=["participant", "group"],
                        help="participant: process each participant; group: collect all "
                             "participants' tables into group_*.tsv and group.html")
    parser.add_argument("--version", action="version", version=f"dmrs-bids {__version__}")

    sel = parser.add_argument_group("selecting inputs")
    sel.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                     help="participants to process, with or without 'sub-' "
                          "(default: all participants in the dataset)")
    sel.add_argument("--session-label", nargs="+", metavar="LABEL",
                     help="sessions to process, with or without 'ses-' (default: all sessions)")
    sel.add_argument("--bids-filter-file", type=Path, metavar="FILE",
                     help="JSON file of pybids entity filters per query, e.g. "
                          '{"svs": {"acquisition": "dwsteam"}}; queries: svs, mrsref, mm '
                          "(default: no filter)")
    sel.add_argument("--skip-bids-validation", action="store_true",
                     help="do not run bids-validator-deno on the input (default: validate; "
                          "errors are reported per file and processing carries on)")

    proc = parser.add_argument_group("processing options")
    proc.add_argument("--config", type=Path, metavar="FILE.toml",
                      help="TOML file of processing options merged over the defaults "
                           "(bids_app/default_config.toml); unknown keys are an error "
                           "(default: the packaged defaults)")
    proc.add_argument("--basis", type=Path, metavar="PATH",
                      help="basis set: LCModel .BASIS file, folder of LCModel .RAW files, or "
                           "the project's JSON basis; resampled to the data grid (default: "
                           "simulated from the sidecar's sequence and timings, cached in the "
                           "work directory)")
    proc.add_argument("--b-value-units", choices=["auto", *B_VALUE_UNITS], default=None,
                      help="b-value unit. auto: the unit the header/sidecar states, else "
                           "all b <= 100 means ms/um2, otherwise s/mm2, with a warning in the "
                           "log and report; s/mm2 or ms/um2 also overrides a stated unit (with "
                           "a warning), e.g. a wrong DiffusionBValueUnits. A unit making the "
                           "largest b above 250000 s/mm2 or below 10 s/mm2 is refused "
                           "(default: auto, or the config's [conversion] b_value_units)")
    proc.add_argument("--reports-only", action="store_true",
                      help="only rebuild the HTML reports and figures from existing "
                           "derivatives in output_dir (default: full processing)")

    perf = parser.add_argument_group("execution")
    perf.add_argument("-w", "--work-dir", type=Path, metavar="DIR",
                      help="nipype working directory (intermediate files, crash files); a "
                           "re-run with the same directory reuses finished steps (default: "
                           "$DMRS_BIDS_WORK_DIR if set, else ./work in the current directory)")
    perf.add_argument("--nprocs", "--n-cpus", type=int, default=None, metavar="N",
                      help="processes for the MultiProc plugin (default: all CPUs)")
    perf.add_argument("--mem-gb", type=float, default=None, metavar="GB",
                      help="memory limit for scheduling nodes (MultiProc 'memory_gb') "
                           "(default: nipype's estimate of the available memory)")
    perf.add_argument("--omp-nthreads", type=int, default=1, metavar="N",
                      help="threads per processing step for numpy/scipy linear algebra "
                           "(OpenBLAS/MKL/OpenMP); with several parallel steps, more threads "
                           "oversubscribe the CPUs (default: %(default)s)")
    perf.add_argument("--plugin", choices=PLUGINS, default="MultiProc",
                      help="nipype execution plugin: MultiProc (local processes), Linear "
                           "(serial), SLURM/SLURMGraph, SGE, PBS, ... for clusters "
                           "(default: %(default)s)")
    perf.add_argument("--plugin-args", default=None, metavar="JSON|K=V,...",
                      help="plugin arguments as JSON ('{\"sbatch_args\": \"-p short\"}') or "
                           "key=value pairs separated by commas (default: none)")
    perf.add_argument("--stop-on-first-crash", action="store_true",
                      help="stop everything at the first failing step (default: carry on with "
                           "the other participants and report failures at the end)")
    perf.add_argument("-v", "--verbose", action="count", default=0,
                      help="more output: -v debug notes, -vv also nipype's node logs, -vvv "
                           "nipype debug (default: a progress line per participant and stage, "
                           "warnings and errors)")
    return parser


def parse_plugin_args(text: str | None) -> dict:
    """``--plugin-args`` as a dict: a JSON object, or ``key=value`` pairs (values JSON-parsed
    when possible, so ``n_procs=2`` gives an int)."""
    if not text:
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"--plugin-args: not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise CliError("--plugin-args: JSON must be an object")
        return value
    args = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--plugin-args: expected key=value, got {item!r}")
        try:
            args[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            args[key.strip()] = raw
    return args


def check_resources(opts) -> None:
    """``--nprocs`` and ``--mem-gb`` must be usable limits: a positive whole number of
    processes, a positive finite number of GB (0 would make nipype wait for ever for memory
    that never frees; a negative count makes the pool refuse to start)."""
    import math

    if opts.nprocs is not None and opts.nprocs < 1:
        raise CliError(f"--nprocs must be at least 1, got {opts.nprocs}")
    if opts.mem_gb is not None and not (math.isfinite(opts.mem_gb)
                                        and opts.mem_gb >= MIN_MEM_GB):
        raise CliError(f"--mem-gb must be a number of GB of at least {MIN_MEM_GB:g} (nipype "
                       f"never starts a step whose estimate exceeds it), got {opts.mem_gb}")
    args = parse_plugin_args(opts.plugin_args)
    n_procs, memory_gb = args.get("n_procs"), args.get("memory_gb")
    if n_procs is not None and (not isinstance(n_procs, int) or isinstance(n_procs, bool)
                                or n_procs < 1):
        raise CliError(f"--plugin-args: n_procs must be a whole number of at least 1, "
                       f"got {n_procs!r}")
    if memory_gb is not None and (not isinstance(memory_gb, (int, float))
                                  or isinstance(memory_gb, bool)
                                  or not math.isfinite(memory_gb) or memory_gb < MIN_MEM_GB):
        raise CliError(f"--plugin-args: memory_gb must be a number of GB of at least "
                       f"{MIN_MEM_GB:g}, got {memory_gb!r}")


MIN_MEM_GB = 0.25
"""Smallest --mem-gb: above nipype's default estimate per step (0.2 GB), which no step of the
workflow raises; with less, the scheduler waits for ever for memory that never frees."""


def plugin_settings(opts) -> tuple[str, dict]:
    """The nipype plugin name and its arguments from the command line."""
    args = parse_plugin_args(opts.plugin_args)
    if opts.plugin in ("MultiProc", "LegacyMultiProc"):
        if opts.nprocs is not None:
            args.setdefault("n_procs", opts.nprocs)
        if opts.mem_gb is not None:
            args.setdefault("memory_gb", opts.mem_gb)
        args.setdefault("raise_insufficient", False)
    return opts.plugin, args


def _config_overrides(opts) -> dict:
    overrides = {}
    if opts.b_value_units:
        overrides.setdefault("conversion", {})["b_value_units"] = opts.b_value_units
    return overrides


@dataclass
class ParticipantInputs:
    """What the participant level reads, and checks, before it writes anything."""

    config: dict
    inputs: dict  # subject -> list of AcquisitionInputs
    errors: dict  # subject -> why its inputs cannot be used (it fails; the others run)
    issues: list | None  # the BIDS validator's issues; None when validation is skipped
    skipped: dict  # subject -> why the selection leaves it out (no selected session)


def read_participant_inputs(opts) -> ParticipantInputs:
    """Every input check that can refuse a participant-level run (exit 2), made before the
    output folder is touched so that a refused run leaves nothing behind: configuration,
    tissue table, filter file, the dataset itself (``dataset_description.json``, labels:
    :func:`discovery.discover`) and the BIDS validator (its report is recorded later by
    :func:`record_validation`). Reads only."""
    config = load_config(opts.config, _config_overrides(opts))
    _check_tissue_table(config, opts.bids_dir)
    if not opts.reports_only:  # a report rebuild fits nothing
        _check_mm_basis(config, opts.basis, opts.config)
        problems = diffusion_metabolite_problems(config, opts.basis)
        if problems:
            raise CliError(f"{opts.config}: " + "; ".join(problems))
    filters = discovery.read_bids_filter_file(opts.bids_filter_file) \
        if opts.bids_filter_file else None
    errors: dict = {}
    skipped: dict = {}
    motion = config["preprocessing"]
    inputs = discovery.discover(opts.bids_dir, opts.participant_label, opts.session_label,
                                filters, config["conversion"]["mm_acquisition_labels"], errors,
                                exclude=[opts.output_dir.resolve(), work_dir(opts)],
                                motion_ppm_range=motion["motion_ppm_range"]
                                if motion["motion_check"] else None, skipped=skipped,
                                check_mm_nulled=config["macromolecules"]["check_nulled"])
    validate = not (opts.skip_bids_validation or opts.reports_only)
    issues = bids_validation.validate_bids(opts.bids_dir) if validate else None
    return ParticipantInputs(config, inputs, errors, issues, skipped)


def selected_files(per_file: dict, bids_dir, participant_labels) -> dict:
    """The entries of ``per_file`` (path -> validator errors) that concern this run: files of
    the selected participants and files outside any ``sub-*`` folder (dataset-level); all of
    them when no ``--participant-label`` narrows the run. The full report stays in
    ``logs/bids_validation.json``."""
    if not participant_labels:
        return dict(per_file)
    wanted = {"sub-" + discovery.strip_prefix(label, "sub") for label in participant_labels}

    def concerns_run(path: Path) -> bool:
        try:
            top = Path(path).relative_to(bids_dir).parts[:1]
        except ValueError:
            return True
        return not top or not top[0].startswith("sub-") or top[0] in wanted

    return {path: errors for path, errors in per_file.items() if concerns_run(path)}


def record_validation(opts, issues: list | None, logger) -> dict | None:
    """Write the validator's issues to ``logs/bids_validation.json`` and log its errors per
    file (those of unselected participants only counted); returns the errors per file that
    concern this run (the run carries on), None when validation is skipped."""
    if issues is None:
        logger.info("BIDS validation skipped (--skip-bids-validation)")
        return None
    logger.info("validated %s with bids-validator-deno", opts.bids_dir)
    per_file = bids_validation.files_with_errors(issues, opts.bids_dir)
    derivatives.write_json(derivatives.logs_dir(opts.output_dir) / "bids_validation.json",
                           [vars(i) for i in issues])
    shown = selected_files(per_file, opts.bids_dir, opts.participant_label)
    for path, errors in sorted(shown.items()):
        logger.warning("BIDS validation error in %s: %s", path, "; ".join(sorted(set(errors))))
    if len(shown) < len(per_file):
        logger.info("BIDS validation: %d file(s) of participants not selected have errors "
                    "(listed in %s)", len(per_file) - len(shown),
                    derivatives.logs_dir(opts.output_dir) / "bids_validation.json")
    if not per_file:
        logger.info("BIDS validation: no errors (%d warnings)", len(issues))
    return shown


def run_participant_level(opts, read: ParticipantInputs, logger) -> list[Outcome]:
    """Build and run one workflow over all selected participants (inputs from
    :func:`read_participant_inputs`); those whose inputs could not be used fail, those the
    session selection leaves out are skipped."""
    from .run import run_participants

    for acquisitions in read.inputs.values():
        for acquisition in acquisitions:
            for warning in acquisition.warnings:
                logger.warning("sub-%s: %s", acquisition.subject, warning)
    failed = [Outcome(subject, ok=False, errors=[message])
              for subject, message in read.errors.items()]
    for outcome in failed:  # the run's end gives the one console line per failed participant
        logger.debug("sub-%s: %s", outcome.subject, outcome.errors[0])
    skipped = [Outcome(subject, skipped=reason) for subject, reason in read.skipped.items()]
    plugin, plugin_args = plugin_settings(opts)
    derivatives.remove_stale_temporaries(opts.output_dir, list(read.inputs))
    return failed + skipped + run_participants(
        read.inputs, read.config, output_dir=opts.output_dir.resolve(),
        work_dir=work_dir(opts), basis_path=opts.basis.resolve() if opts.basis else None,
        plugin=plugin, plugin_args=plugin_args, stop_on_first_crash=opts.stop_on_first_crash,
        reports_only=opts.reports_only, logger=logger, verbosity=opts.verbose)


def run_group_level(opts, logger) -> list[Outcome]:
    from .group import run_group

    return run_group(opts.output_dir, opts.participant_label, opts.bids_dir, logger=logger)


WORK_DIR_VARIABLE = "DMRS_BIDS_WORK_DIR"


def work_dir(opts, environ=None) -> Path:
    """``-w``, else ``$DMRS_BIDS_WORK_DIR`` (containers: a mounted scratch folder), else
    ``./work``; absolute."""
    environ = os.environ if environ is None else environ
    chosen = opts.work_dir or (Path(environ[WORK_DIR_VARIABLE]) if environ.get(
        WORK_DIR_VARIABLE) else Path.cwd() / "work")
    return Path(chosen).resolve()


def check_writable(folder: Path, what: str, hint: str = "") -> None:
    """Create ``folder`` and prove a file can be written in it (one clear error otherwise)."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{what} {folder} exists and is not a folder"
                       + (f"; {hint}" if hint else ""))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".dmrs-bids-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CliError(f"{what} {folder} is not writable ({exc.strerror or exc})"
                       + (f"; {hint}" if hint else "")) from None


def check_work_dir_safe(folder: Path, uid: int | None = None) -> None:
    """The work directory holds pickled nipype results that a re-run loads (and so executes):
    it must be owned by this user and writable by nobody else. Created private (0700) when
    absent."""
    uid = os.getuid() if uid is None else uid
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=0o700)
        except OSError:
            return  # check_writable reports it, with the reason
    info = folder.stat()
    hint = ("; nipype results in it are loaded and executed by the next run, so it must be "
            "trusted like the code: use a private folder (chmod go-w, or another -w)")
    if info.st_uid != uid:
        raise CliError(f"work directory {folder} is owned by user id {info.st_uid}, not by "
                       f"this user ({uid})" + hint)
    writers = [who for bit, who in ((0o020, "its group"), (0o002, "all users"))
               if info.st_mode & bit]
    if writers:
        raise CliError(f"work directory {folder} is writable by {' and '.join(writers)} "
                       f"(mode {oct(info.st_mode & 0o777)})" + hint)


LOCK_NAME = ".dmrs-bids.lock"
_held_locks: list = []


def lock_work_dir(folder: Path) -> Path:
    """Hold an exclusive lock on ``folder/.dmrs-bids.lock`` for the life of this process, so a
    second run on the same work directory is refused instead of both corrupting it."""
    import fcntl

    path = folder / LOCK_NAME
    fh = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise CliError(f"work directory {folder} is in use by another dmrs-bids run ({holder}; "
                       f"lock file {path}); wait for it to finish or choose another -w") \
            from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {os.uname().nodename}, started "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    fh.flush()
    _held_locks.append(fh)
    return path


def release_work_dir_locks() -> None:
    while _held_locks:
        _held_locks.pop().close()


def check_output_location(bids_dir: Path, output_dir: Path) -> None:
    """BIDS Apps never write into the input dataset, except below its ``derivatives/``
    (which discovery never indexes): elsewhere the next run would read outputs as inputs."""
    bids, out = Path(bids_dir).resolve(), Path(output_dir).resolve()
    if out == bids:
        raise CliError("output_dir must differ from bids_dir (BIDS Apps never write into "
                       "the input dataset)")
    if out.is_relative_to(bids) and not out.is_relative_to(bids / "derivatives"):
        raise CliError(f"output directory {output_dir} is inside the input dataset "
                       f"{bids_dir}; put it outside, or under {bids / 'derivatives'}")
    logs = out / "logs"
    if logs.exists() and not logs.is_dir():
        raise CliError(f"{logs} exists and is not a folder; the run writes its logs there "
                       "(move the file away)")


def check_bids_dir(bids_dir: Path) -> None:
    """``bids_dir`` must be an existing folder: a missing path and a file given by mistake
    get different messages (the fix differs)."""
    if not bids_dir.exists():
        raise CliError(f"{bids_dir}: input BIDS directory does not exist")
    if not bids_dir.is_dir():
        raise CliError(f"{bids_dir}: input BIDS directory is not a directory (give the "
                       "dataset's root folder, which holds dataset_description.json)")


def _check_paths(opts) -> None:
    check_bids_dir(opts.bids_dir)
    if opts.analysis_level == "participant":
        discovery.check_participant_labels(opts.bids_dir, opts.participant_label)
    check_output_location(opts.bids_dir, opts.output_dir)
    work = work_dir(opts)
    if work.is_relative_to(opts.bids_dir.resolve()):
        raise CliError(f"work directory {work} is inside the input dataset; choose another "
                       "with -w")
    if opts.analysis_level == "participant" and not opts.reports_only:
        check_work_dir_safe(work)
        check_writable(work, "work directory",
                       f"choose another with -w or ${WORK_DIR_VARIABLE}")
    if opts.basis is not None and not opts.basis.exists():
        raise CliError(f"{opts.basis}: --basis path does not exist")


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def limit_threads(n_threads: int) -> None:
    """Threads of the linear-algebra libraries for every processing step: the environment the
    workers start with (the CLI process itself loads numpy only after this)."""
    if n_threads < 1:
        raise CliError(f"--omp-nthreads must be at least 1, got {n_threads}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n_threads)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def stop_workers(grace_s: float = 3.0) -> None:
    """Terminate this process's worker processes (nipype MultiProc), so that after SIGTERM or
    Ctrl-C no orphan keeps writing into the work directory a re-run will use; a worker still
    alive after ``grace_s`` is killed. An interrupted worker can block for ever on exit
    (flushing its result queue into a pipe nobody reads any more), and the interpreter's exit
    then waited for it: about one Ctrl-C in ten hung the app (measured 2026-12-07; with the
    kill, 40 of 40 stopped, the slowest after the grace)."""
    import multiprocessing

    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace_s
    for child in children:
        child.join(timeout=max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


def main(argv=None) -> int:
    """Entry point of the ``dmrs-bids`` console script; returns the exit status. SIGTERM
    (``docker stop``, a scheduler's time limit) stops the run like Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    parser = build_parser()
    opts = parser.parse_args(argv)
    started = time.time()
    if getattr(opts, "plugin", "") != "IPython":
        skip_ipython_import()
    os.environ.setdefault("LOGNAME", getpass.getuser())  # nipype's SLURM plugin reads it
    run_label = derivatives.run_label(opts.participant_label)
    logger, validation = None, None
    try:
        limit_threads(opts.omp_nthreads)
        check_resources(opts)
        _check_paths(opts)
        if opts.analysis_level == "participant" and not opts.reports_only:
            lock_work_dir(work_dir(opts))
        earlier = setup_early_logging(opts.verbose)
        if opts.analysis_level == "group":
            group_subjects(opts.output_dir, opts.participant_label, opts.bids_dir)
        else:
            read = read_participant_inputs(opts)
        # every check that refuses the run is above: from here on, the output folder is used
        check_writable(opts.output_dir, "output directory")
        logger = setup_logging(opts.verbose, opts.output_dir, run_label, earlier)
        logger.info("dmrs-bids %s: %s level on %s -> %s", __version__, opts.analysis_level,
                    opts.bids_dir, opts.output_dir)
        if opts.analysis_level == "group":
            outcomes = run_group_level(opts, logger)
        else:
            if not opts.reports_only:  # a report rebuild leaves the run's records alone
                write_config(read.config, derivatives.logs_dir(opts.output_dir) / "config.toml")
                derivatives.write_dataset_description(opts.output_dir, opts.bids_dir, __version__)
                validation = record_validation(opts, read.issues, logger)
                mark_running(opts.output_dir, list(read.inputs), started)
            outcomes = run_participant_level(opts, read, logger)
    except (CliError, ConfigError, discovery.DiscoveryError) as exc:
        if logger is not None:
            logger.debug(format_exception(exc))
        print(f"dmrs-bids: error: {error_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        stop_workers()
        print("dmrs-bids: interrupted", file=sys.stderr)
        if logger is not None:  # the summary says this run stopped, not an older one's result
            _write_crash_summary(opts, run_label, started, exc)
        return EXIT_FAILED
    except Exception as exc:  # unexpected: one clear line on screen, traceback in the log
        (logger or setup_logging(opts.verbose)).debug("run failed:\n%s", format_exception(exc))
        print(f"dmrs-bids: error: {type(exc).__name__}: {error_message(exc)}", file=sys.stderr)
        if logger is not None:  # the output folder is usable: the summary says what happened
            _write_crash_summary(opts, run_label, started, exc)
        return EXIT_FAILED
    finally:
        release_work_dir_locks()
    level = "reports" if opts.reports_only and opts.analysis_level == "participant" \
        else opts.analysis_level
    write_summary(opts.output_dir, outcomes, level, started, run_label=run_label,
                  extra=validation_section(validation, opts.bids_dir))
    if level == "participant":
        record_participant_runs(opts.output_dir, outcomes, started, opts.session_label,
                                read.inputs)
    failed = [o.subject for o in outcomes if not o.ok]
    for outcome in outcomes:
        (logger.error if outcome.status == "failed" else logger.info)(outcome.line())
    if failed:
        logger.error("%d of %d participant(s) failed: %s (details in %s)", len(failed),
                     len(outcomes), ", ".join(f"sub-{s}" for s in failed),
                     derivatives.logs_dir(opts.output_dir))
        return EXIT_FAILED
    if not outcomes:
        logger.error("no participant had any svs acquisition to process")
        return EXIT_FAILED
    logger.info("finished in %.1f s", time.time() - started)
    return EXIT_OK


def _write_crash_summary(opts, run_label: str, started: float, exc: BaseException) -> None:
    """The run summary of a run that stopped on an unexpected error or an interrupt (Ctrl-C,
    SIGTERM), so the group level and the user never read an older summary as this run's."""
    try:
        write_summary(opts.output_dir, [], "participant" if opts.analysis_level ==
                      "participant" else opts.analysis_level, started,
                      extra={"run_error": f"{type(exc).__name__}: {error_message(exc)}"},
                      run_label=run_label)
    except OSError:
        pass


def skip_ipython_import() -> None:
    """Mark IPython absent (unless it is loaded already): nipype's plugin package imports it,
    0.3 s of every run's start, only to see whether its IPython plugin could be used; it
    copes with the ImportError. Not done for ``--plugin IPython``."""
    sys.modules.setdefault("IPython", None)


def _check_tissue_table(config: dict, bids_dir) -> None:
    """A configured per-participant tissue-fraction table must exist (BIDS-root relative)."""
    from workflows.participant import quantification_options

    table = quantification_options(config, bids_dir).get("tissue_fractions_file")
    if table and not Path(table).is_file():
        raise CliError(f"{table}: [quantification] tissue_fractions_file not found")


def _check_mm_basis(config: dict, basis, config_path) -> None:
    """``[macromolecules] mode = "basis"`` needs ``--basis``: the simulated basis has no MM
    entry, so every participant would otherwise fail at the fit stage, after conversion and
    preprocessing."""
    if config["macromolecules"].get("mode") == "basis" and basis is None:
        raise CliError(f'{config_path}: [macromolecules] mode = "basis" needs --basis: it '
                       "takes the macromolecule entry from the basis file, and the simulated "
                       "basis (no --basis) has none; give --basis with an MM entry, or use "
                       'mode = "auto" or "parametric"')


if __name__ == "__main__":
    sys.exit(main())
