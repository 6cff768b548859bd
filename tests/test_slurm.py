"""SLURM execution through nipype's plugins, on a real one-node cluster on this machine
(tests/container/start_slurm.sh: munge + slurmctld + slurmd): the demo dataset processed with
``--plugin SLURMGraph`` and ``--plugin SLURM`` gives outputs bit-identical to MultiProc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "container"))
import compare_outputs  # noqa: E402
import demo_runs  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sbatch") is None,
                       reason="SLURM is not installed (apt-get install slurm-wlm munge)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the test cluster's daemons are started as root"),
]

REPO = Path(__file__).resolve().parents[1]
START = REPO / "tests" / "container" / "start_slurm.sh"
# partition, time and memory per job, as a user would give them for their cluster
SBATCH_ARGS = "--partition=debug --time=00:30:00 --mem=1G --cpus-per-task=1"


@pytest.fixture(scope="module")
def slurm_env():
    run = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"start_slurm.sh failed:\n{run.stdout}\n{run.stderr}"
    return demo_runs.app_env(SLURM_CONF=run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "dmrs-demo-runs"


@pytest.fixture(scope="module")
def slurmgraph_run(slurm_env, runs_dir):
    """A SLURMGraph participant run; the jobs are waited for, then the group level."""
    runs_dir.mkdir(exist_ok=True)
    demo = demo_runs.demo_dataset(runs_dir)
    out, log = runs_dir / "out-slurmgraph", runs_dir / "out-slurmgraph.log"
    plugin_args = json.dumps({"sbatch_args": SBATCH_ARGS})
    status = demo_runs.run_module(
        "bids_app.cli", [demo, out, "participant", "-w", runs_dir / "work-slurmgraph",
                         "--plugin", "SLURMGraph", "--plugin-args", plugin_args], log, slurm_env)
    demo_runs.wait_for_slurm_jobs(slurm_env)
    group_status = demo_runs.run_module("bids_app.cli", [demo, out, "group"], log, slurm_env)
    return status, group_status, out, log


def test_slurmgraph_outputs_equal_multiproc(slurmgraph_run, runs_dir):
    _, group_status, out, log = slurmgraph_run
    assert group_status == 0, demo_runs.log_tail(log)
    problems, n_files = compare_outputs.compare_derivatives(demo_runs.reference_run(runs_dir), out)
    assert n_files >= 10 and problems == [], problems


def test_slurmgraph_participant_level_reports_success(slurmgraph_run):
    status, _, _, log = slurmgraph_run
    assert status == 0, demo_runs.log_tail(log)


def test_slurm_plugin_outputs_equal_multiproc(slurm_env, runs_dir):
    runs_dir.mkdir(exist_ok=True)
    plugin_args = json.dumps({"sbatch_args": SBATCH_ARGS, "poll_sleep_duration": 1})
    status, group_status, log = demo_runs.participant_and_group(
        demo_runs.demo_dataset(runs_dir), runs_dir / "out-slurm", runs_dir / "work-slurm",
        ["--plugin", "SLURM", "--plugin-args", plugin_args], slurm_env)
    assert (status, group_status) == (0, 0), demo_runs.log_tail(log)
    problems, n_files = compare_outputs.compare_derivatives(
        demo_runs.reference_run(runs_dir), runs_dir / "out-slurm")
    assert n_files >= 10 and problems == [], problems


def test_array_job_templates_process_the_study(slurm_env, runs_dir):
    """cluster/submit.sh: one array task per participant, then the group level (afterok);
    run here without a container (DMRS_BIDS_RUNNER=none), as the image is not on the node."""
    runs_dir.mkdir(exist_ok=True)
    demo, out = demo_runs.demo_dataset(runs_dir), runs_dir / "out-array"
    env = dict(slurm_env, DMRS_BIDS_RUNNER="none", SBATCH_PARTITION="debug",
               DMRS_BIDS_SBATCH_ARGS="--cpus-per-task=1 --mem=1G --time=00:30:00")
    submit = subprocess.run(["bash", str(REPO / "cluster" / "submit.sh"), str(demo), str(out),
                             "no-image.sif"], capture_output=True, text=True, env=env,
                            cwd=runs_dir, timeout=60)
    assert submit.returncode == 0, submit.stderr
    assert "(2 tasks)" in submit.stdout  # the demo has sub-01 and sub-02
    demo_runs.wait_for_slurm_jobs(env)
    logs = sorted(runs_dir.glob("dmrs-bids-*.log"))
    assert len(logs) == 3, logs  # two participant tasks and the group job
    assert (out / "group_amplitudes.tsv").exists(), "\n".join(p.read_text()[-800:] for p in logs)
    problems, n_files = compare_outputs.compare_derivatives(demo_runs.reference_run(runs_dir), out)
    assert n_files >= 10 and problems == [], problems
