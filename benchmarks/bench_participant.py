"""Wall time and peak memory of `dmrs-bids` on one in-vivo participant (targets: 10 s, 1.5 GB).

Builds the MRS-BIDS in-vivo dataset from ../shared/data (tests/datasets.py), runs the real
CLI in a subprocess with `--nprocs 2` and a fresh work directory, and samples the resident
memory of the whole process tree (the CLI and nipype's worker processes) from /proc.
A second run with the same work directory shows the cost of a cached rerun.

On a shared machine the wall time follows the load, so the CPU seconds of the whole process
tree are printed too, and ``--node-cpu`` reruns every step of the first run in this process
(imports done beforehand, as in a warm worker) and prints its CPU seconds: where the time goes,
independent of the load.

    nice python benchmarks/bench_participant.py [--simulated-basis] [--keep DIR] [--node-cpu]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TARGET_S, TARGET_GB = 10.0, 1.5


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


def children_cpu_s() -> float:
    """User + system CPU seconds of the finished (waited-for) descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument("--node-cpu", action="store_true",
                        help="then rerun each step in this process and print its CPU seconds")
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
        cpu_before = children_cpu_s()
        status, wall, peak = run_measured(cmd)
        print(f"{label}: exit {status}, wall {wall:.1f} s (target {TARGET_S:.0f} s), CPU "
              f"{children_cpu_s() - cpu_before:.1f} s (all processes), peak memory "
              f"{peak / 2**30:.2f} GB incl. workers (target {TARGET_GB} GB)")
    if opts.node_cpu:
        print_node_cpu(root / "work", root / "out" / "logs")
    print(f"outputs in {root}" if opts.keep else f"(temporary folder {root})")
    return 0


def node_order(log_dir: Path) -> list[str]:
    """Step names in the order the run log says they started."""
    names = []
    for log in sorted(log_dir.glob("dmrs-bids_*.log")):
        for line in log.read_text().splitlines():
            if line.endswith(": started"):
                name = line.rsplit("] ", 1)[-1].removesuffix(": started")
                if name not in names:
                    names.append(name)
    return names


def print_node_cpu(work_dir: Path, log_dir: Path) -> None:
    """Rerun each step of the finished run in this process (its inputs are the work
    directory's files) and print its CPU seconds; the imports of a worker are done first."""
    import importlib

    from nipype.utils.filemanip import loadpkl

    for module in ("matplotlib.pyplot", "nibabel", "scipy.optimize", "scipy.signal",
                   "pipeline.fitting", "pipeline.diffusion", "bids_app.report",
                   "bids_app.report_nodes", "workflows.interfaces"):
        importlib.import_module(module)
    nodes = {p.parent.name: p for p in work_dir.rglob("_node.pklz")}
    print("step CPU seconds (rerun in this process, warm imports):")
    total, here = 0.0, Path.cwd()
    for name in node_order(log_dir) or sorted(nodes):
        if name not in nodes:
            continue
        node = loadpkl(nodes[name])
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)
            start = time.process_time()
            try:
                node.interface.run()
            finally:
                os.chdir(here)
            took = time.process_time() - start
        total += took
        print(f"  {name:<18} {took:6.2f}")
    print(f"  {'total':<18} {total:6.2f}")


if __name__ == "__main__":
    sys.exit(main())
