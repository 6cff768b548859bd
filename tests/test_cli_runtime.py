"""Run-time environment of the CLI (issue 9 fixes): work directory default and writability,
per-participant log names for array tasks, dependency versions in dataset_description.json
(written atomically, identical content), stale temporaries, BLAS threads and LOGNAME."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bids_app import cli, derivatives


def _opts(work_dir=None):
    return argparse.Namespace(work_dir=work_dir)


def test_work_dir_from_option_then_environment_then_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {cli.WORK_DIR_VARIABLE: str(tmp_path / "scratch")}
    assert cli.work_dir(_opts(), environ={}) == tmp_path / "work"
    assert cli.work_dir(_opts(), environ=env) == tmp_path / "scratch"
    assert cli.work_dir(_opts(Path("mine")), environ=env) == tmp_path / "mine"


def test_unwritable_work_dir_is_one_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bids = tmp_path / "bids"
    bids.mkdir()
    status = cli.main([str(bids), str(tmp_path / "out"), "participant", "-w",
                       str(blocker / "work")])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert f"work directory {blocker / 'work'} is not writable" in err
    assert cli.WORK_DIR_VARIABLE in err and "Traceback" not in err
    cli.check_writable(tmp_path / "ok", "work directory")
    assert list((tmp_path / "ok").iterdir()) == []  # the probe file is gone


def test_run_label_separates_array_tasks():
    assert derivatives.run_label(["sub-07"]) == derivatives.run_label(["07"]) == "_sub-07"
    assert derivatives.run_label(None) == derivatives.run_label(["01", "02"]) == ""


def test_dataset_description_lists_dependency_versions_and_is_stable(tmp_path):
    from importlib.metadata import version

    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "study"}')
    path = derivatives.write_dataset_description(tmp_path / "out", bids, "0.1.0")
    generated = json.loads(path.read_text())["GeneratedBy"]
    assert generated[0]["Name"] == "dmrs-bids"
    versions = {g["Name"]: g["Version"] for g in generated[1:]}
    assert versions["numpy"] == np.__version__ and versions["nipype"] == version("nipype")
    assert versions["nifti-mrs"] == version("nifti-mrs") and "Python" in versions
    assert derivatives.software_versions()["packages"]["spec2nii"] == version("spec2nii")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    derivatives.write_dataset_description(tmp_path / "out", bids, "0.1.0")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before  # same content: untouched
    assert list((tmp_path / "out").glob(".*.tmp")) == []


def test_stale_temporaries_are_removed_only_for_the_selected_participants(tmp_path):
    mine = tmp_path / "sub-01" / "mrs" / ".sub-01_qc.json.123.tmp"
    report = tmp_path / ".sub-01.html.123.tmp"
    other = tmp_path / "sub-02" / "mrs" / ".sub-02_qc.json.456.tmp"  # another array task's
    for path in (mine, report, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    removed = derivatives.remove_stale_temporaries(tmp_path, ["01"])
    assert sorted(removed) == sorted([mine, report])
    assert not mine.exists() and not report.exists() and other.exists()


def test_single_threaded_blas_is_set_before_numpy_loads():
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    code = ("import sys, os, bids_app.cli\n"
            "bids_app.cli.build_parser()\n"  # --omp-nthreads is read with it: numpy not yet
            "print('numpy' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'], "
            "os.environ['OMP_NUM_THREADS'])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.stdout.split() == ["False", "1", "1"], run.stderr


def test_omp_nthreads_and_logname_reach_the_workers_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("LOGNAME", raising=False)
    for name in cli.THREAD_VARIABLES:
        monkeypatch.setenv(name, "1")
    status = cli.main([str(tmp_path / "absent"), str(tmp_path / "out"), "participant",
                       "--omp-nthreads", "3"])
    assert status == cli.EXIT_USAGE  # absent input: stops after the environment is set
    assert os.environ["LOGNAME"] == getpass.getuser()
    assert all(os.environ[name] == "3" for name in cli.THREAD_VARIABLES)


@pytest.mark.slow  # one small app run over three participants (about 40 s)
def test_failed_participants_get_one_console_line_and_the_traceback_goes_to_the_log(tmp_path):
    """Issue 14 item 5: next to a good participant, one whose sidecar names a sequence the
    basis simulation refuses (a failure inside a nipype node) and one whose svs file is empty
    (found before processing). The console (stdout and stderr) has no traceback and exactly
    one line per failed participant, naming the file, the problem and the log; the log holds
    the node's traceback."""
    from bids_app.demo import write_demo_dataset

    bids = tmp_path / "bids"
    write_demo_dataset(bids, participants=3, small=True, cache_dir=str(tmp_path / "cache"))
    sidecar = bids / "sub-02" / "mrs" / "sub-02_acq-dwsteam_svs.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "PulseSequenceType": "MEGA-PRESS"}))
    empty = next((bids / "sub-03" / "mrs").glob("*_svs.nii.gz"))
    empty.write_bytes(b"")
    out = tmp_path / "out"
    config = tmp_path / "fast.toml"
    config.write_text('[diffusion]\nmodels = ["monoexponential"]\n')
    run = subprocess.run([sys.executable, "-m", "bids_app.cli", str(bids), str(out),
                          "participant", "-w", str(tmp_path / "work"), "--config", str(config),
                          "--skip-bids-validation", "--nprocs", "2"],
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"})
    assert run.returncode == 1, run.stderr[-2000:]
    console = run.stdout + run.stderr
    assert "Traceback" not in console and 'File "' not in console
    log = out / "logs" / "dmrs-bids.log"
    for subject, file, problem in (
            ("02", bids / "sub-02" / "mrs" / "sub-02_acq-dwsteam_svs.nii.gz",
             "PulseSequenceType='MEGA-PRESS' names an edited or other sequence"),
            ("03", empty, "empty")):
        lines = [ln for ln in console.splitlines() if f"sub-{subject}: FAILED" in ln]
        assert len(lines) == 1, console
        assert str(file) in lines[0] and problem in lines[0] and str(log) in lines[0], lines[0]
    assert not [ln for ln in console.splitlines() if "sub-01: FAILED" in ln]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "identify_sequence" in text and "MEGA-PRESS" in text
    assert (out / "sub-01.html").is_file()


def test_nipype_messages_go_to_the_current_log_only(tmp_path):
    """nipype's logger loses its console handler and writes to this run's log file; a second
    in-process run moves it to the new log; -vv keeps the console."""
    import logging

    from bids_app.runlog import nipype_logs_to_file, setup_logging

    nipype_logger = logging.getLogger("nipype")
    saved = list(nipype_logger.handlers)
    try:
        nipype_logger.addHandler(logging.StreamHandler(sys.stdout))
        for run in ("a", "b"):
            setup_logging(0, tmp_path / run)
            nipype_logs_to_file(0)
            logging.getLogger("nipype.workflow").error("node failed in run %s", run)
        assert not [h for h in nipype_logger.handlers
                    if not isinstance(h, logging.FileHandler)]
        first = (tmp_path / "a" / "logs" / "dmrs-bids.log").read_text()
        second = (tmp_path / "b" / "logs" / "dmrs-bids.log").read_text()
        assert "node failed in run a" in first and "run b" not in first
        assert "node failed in run b" in second
        nipype_logger.addHandler(logging.StreamHandler(sys.stdout))
        nipype_logs_to_file(2)
        assert any(type(h) is logging.StreamHandler for h in nipype_logger.handlers)
    finally:
        nipype_logger.handlers[:] = saved
        logging.getLogger("dmrs_bids").handlers.clear()


def _deaf_worker(ready) -> None:
    """A worker that no longer reacts to SIGTERM (as one blocked flushing its result queue)."""
    import signal as sig

    sig.signal(sig.SIGTERM, sig.SIG_IGN)
    ready.set()
    while True:
        time.sleep(0.1)


def test_stop_workers_kills_a_worker_that_ignores_terminate():
    """About one Ctrl-C in ten left a worker blocked on exit and the app waiting for it for
    ever; a worker still alive after the grace period is killed."""
    import multiprocessing

    ready = multiprocessing.Event()
    worker = multiprocessing.Process(target=_deaf_worker, args=(ready,))
    worker.start()
    assert ready.wait(10)
    started = time.monotonic()
    cli.stop_workers(grace_s=0.5)
    assert not worker.is_alive()
    assert time.monotonic() - started < 5
