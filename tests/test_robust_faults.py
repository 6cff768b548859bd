"""Issue 8 items 3-4: a run killed in the middle of a participant (SIGKILL to every process,
then SIGTERM to the CLI alone, which stops its workers) leaves no half-written derivative and
no process behind, and a re-run with the same work directory completes with results identical
to an uninterrupted run; exit status 0 when everyone succeeded.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "container"))
import compare_outputs  # noqa: E402
from bids_app.failed_runs import FAILED_MARK  # noqa: E402

ENV = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
       "OMP_NUM_THREADS": "1"}


def cli(bids: Path, out: Path, work: Path) -> list[str]:
    return [sys.executable, "-m", "bids_app.cli", str(bids), str(out), "participant", "-w",
            str(work), "--nprocs", "2", "--skip-bids-validation"]


pytestmark = pytest.mark.slow  # runs the app four times, killing two of them (about 2 min)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One demo participant and an uninterrupted reference run of it."""
    from bids_app.demo import write_demo_dataset

    base = tmp_path_factory.mktemp("faults")
    bids = base / "in"
    write_demo_dataset(bids, participants=1, small=True, cache_dir=str(base / "cache"))
    ref = base / "ref"
    run = subprocess.run(cli(bids, ref, base / "work-ref"), capture_output=True, text=True,
                         env=ENV, cwd=base, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return base, bids, ref


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def as_in_a_terminal() -> None:
    """SIGINT handled as in an interactive terminal: a background job of a non-interactive
    shell (CI's ``bash ... &``) starts with SIGINT ignored, and Python then never raises
    KeyboardInterrupt, so Ctrl-C could not be tested there."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_when(cmd: list[str], cwd: Path, ready, sig: int, whole_group: bool,
              timeout_s: float = 300) -> bool:
    """Start ``cmd`` in its own process group; as soon as ``ready()`` holds, send ``sig`` to
    the CLI process alone (as ``docker stop`` does) or to the whole group (as a scheduler
    does). Returns whether it was killed before finishing; asserts no process of the run
    (worker included) survives it."""
    proc = subprocess.Popen(cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                (os.killpg if whole_group else os.kill)(proc.pid, sig)
                proc.wait(timeout=60)
                for _ in range(100):  # workers get 10 s to go
                    if not group_alive(proc.pid):
                        break
                    time.sleep(0.1)
                assert not group_alive(proc.pid), "worker processes outlived the CLI"
                return True
            time.sleep(0.01)
        return False
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def complete(path: Path) -> bool:
    """A derivative file is whole: gzip streams end properly, JSON parses, TSV rows have the
    header's number of columns."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path) as fh:
                while fh.read(1 << 20):
                    pass
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".tsv":
            lines = path.read_text().splitlines()
            return len(lines) > 1 and len({line.count("\t") for line in lines}) == 1
        elif path.suffix in (".html", ".svg"):
            return path.read_text().rstrip().endswith(">")
    except (OSError, EOFError, ValueError):
        return False
    return True


def derivative_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and "logs" not in p.parts]


def test_killed_runs_leave_no_partial_outputs_and_resume_identically(study):
    base, bids, ref = study
    out, work = base / "out", base / "work"
    mrs = out / "sub-01" / "mrs"

    def fit_started():  # nipype made the fit node's folder: the participant is mid-way
        return any(work.glob("dmrs_bids_wf/sub_01_wf/*/fit_wf/fit/_inputs.pklz"))

    def some_output():  # the derivatives of the participant are being written
        return mrs.is_dir() and any(mrs.iterdir())

    assert kill_when(cli(bids, out, work), base, fit_started, signal.SIGKILL, whole_group=True)
    assert not mrs.exists() or [p for p in derivative_files(out) if not complete(p)] == []
    assert kill_when(cli(bids, out, work), base, some_output, signal.SIGTERM, whole_group=False)
    assert [p for p in derivative_files(out) if not complete(p)] == []
    report = out / "sub-01.html"  # killed before the participant finished: no report, at
    # most the page saying that its latest run failed (bids_app.failed_runs)
    assert not report.exists() or FAILED_MARK in report.read_text()
    summary_path = out / "logs" / "run_summary.json"
    summary_path.unlink()
    # Ctrl-C in a terminal: SIGINT to the whole process group, workers included, while the
    # participant is mid-way (a fresh work folder, so the earlier runs' cache cannot finish
    # it before the signal lands)
    interrupted_work = base / "work-interrupted"

    def fit_started_afresh():
        return any(interrupted_work.glob("dmrs_bids_wf/sub_01_wf/*/fit_wf/fit/_inputs.pklz"))

    assert kill_when(cli(bids, out, interrupted_work), base, fit_started_afresh,
                     signal.SIGINT, whole_group=True)
    stopped = json.loads(summary_path.read_text())  # this run's own summary, written anyway
    assert stopped["succeeded"] == [] and ("KeyboardInterrupt" in stopped.get("run_error", "")
                                           or stopped["failed"] == ["01"]), stopped

    run = subprocess.run(cli(bids, out, work), capture_output=True, text=True, env=ENV,
                         cwd=base, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert list(out.rglob(".*.tmp")) == []  # no temporary file left by the killed runs
    problems, n_files = compare_outputs.compare_derivatives(ref, out)
    assert n_files >= 7 and problems == [], problems
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["succeeded"] == ["01"] and summary["failed"] == []
