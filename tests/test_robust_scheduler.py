"""Issue 17 items 6-7 inside the nipype run: a worker killed by the system (the out-of-memory
killer sends SIGKILL; BrokenProcessPool in the main process), a result that cannot be read back
(missing ``result_*.pklz``, as on a full or altered work directory) and a scheduler that can
start nothing used to leave plain MultiProc polling for ever. Now the node fails with a message
saying what happened, the other nodes and participants carry on, the run ends, its summary is
written and the traceback reaches the log file.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_app.scheduler import GuardedMultiProcPlugin, SchedulerStalled
from robust_support import demo, demo_master  # noqa: F401  (fixtures)


def _add_one(x):
    return x + 1


def _die(x):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    return x


def _exit(x):
    import os

    os._exit(3)


def _delete_result_of(x, node_dir):
    import glob
    import os

    for path in glob.glob(os.path.join(node_dir, "result_*.pklz")):
        os.remove(path)
    return x


def _node(function, name, **inputs):
    node = pe.Node(niu.Function(function=function, input_names=["x"] + [
        k for k in inputs if k != "x"], output_names=["out"]), name=name)
    for key, value in inputs.items():
        setattr(node.inputs, key, value)
    return node


def _run(wf, tmp_path, timeout_s=120.0, **plugin_args):
    """Run ``wf`` with the guarded plugin; returns (raised exception or None, seconds)."""
    wf.config["execution"].update({"crashdump_dir": str(tmp_path / "crash"),
                                   "poll_sleep_duration": 0.01})
    plugin = GuardedMultiProcPlugin({"n_procs": 1, **plugin_args})

    def too_long(signum, frame):
        raise TimeoutError(f"the run did not end within {timeout_s:g} s")

    previous = signal.signal(signal.SIGALRM, too_long)  # a hang fails the test, not the suite
    signal.alarm(int(timeout_s))
    started = time.monotonic()
    try:
        wf.run(plugin=plugin)
    except Exception as exc:  # noqa: BLE001
        return exc, time.monotonic() - started
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return None, time.monotonic() - started


def _crash_texts(tmp_path) -> str:
    from nipype.utils.filemanip import loadpkl

    texts = []
    for path in (tmp_path / "crash").glob("crash-*"):
        texts.append(path.read_text(errors="replace") if path.suffix == ".txt"
                     else "".join(loadpkl(str(path))["traceback"]))
    return "\n".join(texts)


@pytest.mark.parametrize("killer", [_die, _exit])
def test_a_killed_worker_fails_its_node_and_the_rest_runs_on(tmp_path, killer):
    wf = pe.Workflow("w", base_dir=str(tmp_path / "work"))
    dead = _node(killer, "dead", x=1)
    after = _node(_add_one, "after_dead")
    wf.connect(dead, "out", after, "x")
    wf.add_nodes([_node(_add_one, f"other{i}", x=i) for i in range(3)])
    error, seconds = _run(wf, tmp_path)
    assert seconds < 100, "the run did not end"
    assert error is not None and "WorkerDiedError" in str(error) and "w.dead" in str(error)
    assert "w.dead" in _crash_texts(tmp_path)
    for i in range(3):  # the other nodes ran (in new workers after the pool broke)
        assert list((tmp_path / "work" / "w" / f"other{i}").glob("result_*.pklz"))
    assert not (tmp_path / "work" / "w" / "after_dead").exists()


def _sum(x, y):
    return x + y


def test_a_result_that_cannot_be_read_back_fails_the_node_instead_of_hanging(tmp_path):
    """The issue's "work directory that fills up": after a missing result_*.pklz the main
    process waited for ever. Here an upstream node's result file disappears before a node
    reading it runs."""
    wf = pe.Workflow("w", base_dir=str(tmp_path / "work"))
    first = _node(_add_one, "first", x=1)
    eraser = _node(_delete_result_of, "eraser", node_dir=str(tmp_path / "work" / "w" / "first"))
    last = pe.Node(niu.Function(function=_sum, input_names=["x", "y"], output_names=["out"]),
                   name="last")
    wf.connect([(first, eraser, [("out", "x")]), (first, last, [("out", "x")]),
                (eraser, last, [("out", "y")])])
    error, seconds = _run(wf, tmp_path)
    assert seconds < 100, "the run did not end"
    assert error is not None and "ResultUnreadableError" in str(error) and "w.last" in str(error)


def test_nothing_startable_stops_the_run_with_a_clear_error(tmp_path):
    """``memory_gb`` 0 (what ``--mem-gb 0`` gave): no step can ever start."""
    wf = pe.Workflow("w", base_dir=str(tmp_path / "work"))
    wf.add_nodes([_node(_add_one, "only", x=1)])
    error, seconds = _run(wf, tmp_path, memory_gb=0.0, stall_timeout_s=1.0,
                          raise_insufficient=False)
    assert isinstance(error, SchedulerStalled) and "w.only" in str(error)
    assert seconds < 60


@pytest.mark.slow  # two demo participants through the whole app (about a minute)
def test_a_dead_worker_fails_only_its_participant_with_the_step_named(demo, tmp_path,  # noqa: F811
                                                                        monkeypatch):
    """sub-01's fit worker is SIGKILLed (as by the OOM killer); sub-02 completes, the run
    ends with status 1, the summary names sub-01's step and the log holds the crash."""
    from bids_app import cli
    from workflows.interfaces.fit import FitSpectra

    original = FitSpectra._run_interface

    def killed_for_sub01(self, runtime):
        if self.inputs.subject == "01":
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, runtime)

    monkeypatch.setattr(FitSpectra, "_run_interface", killed_for_sub01)  # forked workers see it
    out = tmp_path / "out"
    status = cli.main([str(demo), str(out), "participant", "-w", str(tmp_path / "work"),
                       "--nprocs", "1", "--skip-bids-validation"])
    assert status == cli.EXIT_FAILED
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["succeeded"] == ["02"] and summary["failed"] == ["01"]
    errors = " ".join(summary["participants"]["01"]["errors"])
    assert "WorkerDiedError" in errors and "fit" in errors
    log = next((out / "logs").glob("dmrs-bids*.log")).read_text()
    assert "crash file" in log and "WorkerDiedError" in log
    assert (out / "sub-02.html").is_file() and not (out / "sub-01.html").exists()


def test_an_unexpected_error_building_one_participant_fails_only_it(tmp_path, monkeypatch):
    """Not only ValueError: any error while building one participant's workflow fails that
    participant, named, with the traceback in the log file; the others are still built."""
    import logging

    from bids_app import run
    from bids_app.config import load_default_config
    from bids_app.discovery import AcquisitionInputs
    from bids_app.runlog import setup_logging

    built = []

    def build(subject, *args, **kwargs):
        built.append(subject)
        if subject == "01":
            return {}["ReferenceSignal"]  # KeyError, as from an unexpected sidecar shape
        raise ValueError(f"/data/sub-{subject}_svs.nii.gz: unreadable")

    monkeypatch.setattr(run, "build_participant_wf", build)
    inputs = {s: [AcquisitionInputs(subject=s, session=None, svs=tmp_path / f"sub-{s}_svs.nii",
                                    sidecar={}, entities={})] for s in ("01", "02")}
    logger = setup_logging(0, tmp_path / "out")
    try:
        outcomes = run.run_participants(inputs, load_default_config(), tmp_path / "out",
                                        tmp_path / "work", logger=logger)
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers.clear()
        logging.captureWarnings(False)
    assert built == ["01", "02"]
    errors = {o.subject: (o.ok, o.errors) for o in outcomes}
    assert errors["01"] == (False, ["KeyError: 'ReferenceSignal'"])
    assert errors["02"] == (False, ["/data/sub-02_svs.nii.gz: unreadable"])
    log = (tmp_path / "out" / "logs" / "dmrs-bids.log").read_text()
    assert "Traceback" in log and "ReferenceSignal" in log


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only; skipped where mounting is not allowed)."""
    import subprocess

    mount = tmp_path / "small_disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount permission)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_work_disk_ends_the_run_with_a_clear_error(demo, tmp_path,  # noqa: F811
                                                          small_disk):
    """A work directory on a disk that fills up: the run ends (no hang) with status 1, the
    summary is written and names the failure, and the console says why."""
    import subprocess
    import sys

    work = small_disk / "work"
    work.mkdir(mode=0o700)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bids_app.cli", str(demo), str(out),
                          "participant", "-w", str(work), "--nprocs", "1",
                          "--skip-bids-validation"], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 1, run.stderr[-2000:]
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["failed"], summary
    text = json.dumps(summary) + run.stdout + run.stderr
    assert "No space left on device" in text or "ResultUnreadableError" in text, text[-3000:]
