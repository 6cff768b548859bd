"""Wall time and peak memory of `dmrs-bids` on one in-vivo participant (targets: 15 s, 1.5 GB).

Builds the MRS-BIDS in-vivo dataset from ../shared/data (tests/datasets.py), runs the real
CLI in a subprocess with `--nprocs 2` and a fresh work directory, and samples the resident
memory of the whole process tree (the CLI and nipype's worker processes) from /proc.
A second run with the same work directory shows the cost of a cached rerun.

    nice python benchmarks/bench_participant.py [--simulated-basis] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TARGET_S, TARGET_GB = 15.0, 1.5


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_bytes(pid)
        stack.extend(_children(pid))
    return total


def run_measured(cmd: list[str], interval_s: float = 0.05) -> tuple[int, float, int]:
    """(exit status, wall seconds, peak tree RSS bytes) of ``cmd``."""
    env = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        print(stderr[-3000:], file=sys.stderr)
    return proc.returncode, wall, peak[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulated-basis", action="store_true",
                        help="let the app simulate the basis (default: the published "
                             "LCModel basis via --basis)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    opts = parser.parse_args(argv)
    from datasets import DEFAULT_SHARED_DATA, make_invivo_bids

    root = opts.keep or Path(tempfile.mkdtemp(prefix="bench_participant_"))
    bids = make_invivo_bids(root / "bids")
    cmd = [sys.executable, "-m", "bids_app.cli", str(bids), str(root / "out"), "participant",
           "--participant-label", "01", "-w", str(root / "work"), "--nprocs", "2",
           "--skip-bids-validation"]
    if not opts.simulated_basis:
        cmd += ["--basis", str(DEFAULT_SHARED_DATA / "dmrs_7t_steam_invivo" /
                               "basis_STEAM_TE45_TM60.BASIS")]
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared: figures inflate "
          "with load)")
    for label in ("first run (empty work dir)", "rerun (same work dir)"):
        status, wall, peak = run_measured(cmd)
        print(f"{label}: exit {status}, wall {wall:.1f} s (target {TARGET_S:.0f} s), peak "
              f"memory {peak / 2**30:.2f} GB incl. workers (target {TARGET_GB} GB)")
    print(f"outputs in {root}" if opts.keep else f"(temporary folder {root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
