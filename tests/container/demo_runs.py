"""The demo dataset and dmrs-bids runs on it, shared by the container, SLURM and
reproducibility tests (made once per pytest session under one base folder)."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def app_env(**extra) -> dict:
    """The environment of an app run: no telemetry, single-threaded BLAS, LOGNAME set (nipype's
    SLURM plugin reads it), the repository's code (or DMRS_BIDS_TEST_CODE) first on the path."""
    env = dict(os.environ, NIPYPE_NO_ET="1", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("LOGNAME", getpass.getuser())
    code = os.environ.get("DMRS_BIDS_TEST_CODE", str(REPO))  # a frozen copy of the source
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_module(module: str, args, log: Path, env=None, timeout_s: float = 1800) -> int:
    """Run ``python -m module args`` with its output in ``log``; returns the exit status.
    It runs in the log's folder (``-m`` puts the working directory first on ``sys.path``), with
    a basis-simulation cache of its own there (no stale entries from other versions)."""
    log = Path(log)
    env = dict(env or app_env(), XDG_CACHE_HOME=str(log.parent / "cache"))
    with open(log, "a") as fh:
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], stdout=fh,
                              stderr=subprocess.STDOUT, env=env, cwd=log.parent,
                              timeout=timeout_s).returncode


def log_tail(log: Path, n_lines: int = 15) -> str:
    return "\n".join(Path(log).read_text().splitlines()[-n_lines:])


def demo_dataset(base: Path) -> Path:
    """``dmrs-bids-simulate base/demo --small`` (once)."""
    demo = Path(base) / "demo"
    if not (demo / "dataset_description.json").exists():
        log = Path(base) / "simulate.log"
        status = run_module("bids_app.simulate_cli", [demo, "--small"], log)
        if status != 0:
            raise RuntimeError(f"dmrs-bids-simulate failed ({status}):\n{log_tail(log)}")
    return demo


def participant_and_group(demo: Path, out: Path, work: Path, participant_args=(),
                          env=None) -> tuple[int, int, Path]:
    """Participant then group level; returns (participant status, group status, log)."""
    log = out.parent / f"{out.name}.log"
    status = run_module("bids_app.cli", [demo, out, "participant", "-w", work,
                                         *participant_args], log, env)
    group_status = run_module("bids_app.cli", [demo, out, "group"], log, env)
    return status, group_status, log


def reference_run(base: Path) -> Path:
    """The MultiProc run (2 processes) that other runs are compared with (once)."""
    base = Path(base)
    out = base / "out-multiproc"
    if not (out / "group_amplitudes.tsv").exists():
        status, group_status, log = participant_and_group(
            demo_dataset(base), out, base / "work-multiproc", ["--nprocs", "2"])
        if status or group_status:
            raise RuntimeError(f"reference run failed ({status}, {group_status}):\n"
                               f"{log_tail(log)}")
    return out


def wait_for_slurm_jobs(env: dict, timeout_s: float = 1800, poll_s: float = 2.0) -> None:
    """Return when the user ``env["LOGNAME"]`` has no job left in the queue of the cluster
    that ``env`` points to (SLURM_CONF)."""
    user = env["LOGNAME"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "--noheader", "--user", user], capture_output=True,
                               text=True, check=True, env=env).stdout
        if not queue.strip():
            return
        time.sleep(poll_s)
    raise TimeoutError(f"SLURM jobs of {user} still queued after {timeout_s} s")
