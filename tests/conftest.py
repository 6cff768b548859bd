"""Shared test fixtures: the real-data folder beside the repository."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("NIPYPE_NO_ET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Small matrices: threaded BLAS only adds contention (0.44 s vs 3 ms for one solve under load).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DMRS_BIDS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test with a reason when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data folder {SHARED_DATA} is absent (a plain clone); "
                    "these tests run in CI where it is present")
    return SHARED_DATA


# Test files that share the demo runs under one base folder (tests/container/demo_runs.py).
DEMO_RUN_FILES = {"test_container_reproducibility.py", "test_slurm.py"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the markers
def pytest_collection_modifyitems(config, items):
    """Group tests for pytest-xdist's ``--dist loadgroup`` (pyproject.toml): a test file
    runs whole on one worker, so its module fixtures are made once; the files that share the
    demo runs share a worker, so the reference run is made once."""
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group("demo-runs" if name in DEMO_RUN_FILES else name))
