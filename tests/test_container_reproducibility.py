"""Reproducibility: two runs of the demo with different work directories and process counts
give bit-identical numeric outputs (TSV text, JSON values, NIfTI data and headers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "container"))
import compare_outputs  # noqa: E402
import demo_runs  # noqa: E402

pytestmark = pytest.mark.slow


def test_work_dir_and_nprocs_do_not_change_outputs(tmp_path_factory):
    runs_dir = tmp_path_factory.getbasetemp() / "dmrs-demo-runs"
    runs_dir.mkdir(exist_ok=True)
    reference = demo_runs.reference_run(runs_dir)  # --nprocs 2, work-multiproc
    status, group_status, log = demo_runs.participant_and_group(
        demo_runs.demo_dataset(runs_dir), runs_dir / "out-serial", runs_dir / "work-serial",
        ["--nprocs", "1"])
    assert (status, group_status) == (0, 0), demo_runs.log_tail(log)
    problems, n_files = compare_outputs.compare_derivatives(reference, runs_dir / "out-serial")
    assert n_files >= 10 and problems == [], problems
