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
