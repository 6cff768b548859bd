"""Load: `dmrs-bids` on a synthetic study of 50 participants with `--nprocs 2` (issue 8 item 5).

Makes the demo dataset (`bids_app.demo`, small settings: 8 transients, 1024 points, reduced
metabolite list) with N participants, runs the real CLI in a subprocess with its own TMPDIR,
and prints: wall time and throughput (participants per minute), peak resident memory of the
whole process tree (CLI + nipype workers, sampled from /proc), the main process's open file
descriptors (at start-up and at its peak, and whether they grow with participants), and the
temporary files left behind (in TMPDIR and as ``.*.tmp`` in the output folder).

    nice python benchmarks/bench_load.py [--participants 50] [--nprocs 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_participant import tree_rss_bytes  # noqa: E402


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def make_study(dest: Path, participants: int) -> float:
    """The demo dataset with ``participants`` participants; returns the seconds it took."""
    from bids_app.demo import write_demo_dataset

    start = time.perf_counter()
    write_demo_dataset(dest, participants=participants, small=True,
                       cache_dir=str(dest.parent / "basis_cache"))
    return time.perf_counter() - start


def run_monitored(cmd: list[str], env: dict, interval_s: float = 0.2) -> dict:
    """Run ``cmd``; sample tree RSS and the main process's fd count until it ends."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    samples = {"rss": 0, "fds": []}

    def sample():
        while proc.poll() is None:
            samples["rss"] = max(samples["rss"], tree_rss_bytes(proc.pid))
            samples["fds"].append((time.perf_counter() - start, open_fds(proc.pid)))
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, stderr = proc.communicate()
    thread.join()
    return {"status": proc.returncode, "wall_s": time.perf_counter() - start,
            "peak_rss": samples["rss"], "fds": [n for _, n in samples["fds"] if n],
            "stderr": stderr}


def leftover_temp_files(tmpdir: Path, out: Path) -> list[str]:
    left = [str(p) for p in tmpdir.rglob("*")]
    return left + [str(p) for p in out.rglob(".*.tmp")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="folder to keep the dataset and outputs in")
    opts = parser.parse_args(argv)
    base = opts.keep or Path(tempfile.mkdtemp(prefix="dmrs-bench-load-"))
    base.mkdir(parents=True, exist_ok=True)
    bids, out, work, tmpdir = (base / n for n in ("bids", "out", "work", "tmp"))
    for folder in (out, work, tmpdir):
        shutil.rmtree(folder, ignore_errors=True)
    tmpdir.mkdir()
    if not (bids / "dataset_description.json").exists():
        made_s = make_study(bids, opts.participants)
        print(f"dataset: {opts.participants} participants simulated in {made_s:.1f} s")
    env = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg", "TMPDIR": str(tmpdir),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bids_app.cli", str(bids), str(out), "participant", "-w",
           str(work), "--nprocs", str(opts.nprocs), "--skip-bids-validation"]
    result = run_monitored(cmd, env)
    summary_path = out / "logs" / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    n_ok = len(summary.get("succeeded", []))
    fds = result["fds"] or [0]
    quarter = max(1, len(fds) // 4)
    early, late = max(fds[:quarter]), max(fds[-quarter:])
    left = leftover_temp_files(tmpdir, out)
    print(f"exit status: {result['status']}  ({n_ok}/{opts.participants} participants ok)")
    print(f"wall time: {result['wall_s']:.1f} s; throughput "
          f"{60 * n_ok / result['wall_s']:.2f} participants/min (--nprocs {opts.nprocs})")
    print(f"peak memory (CLI + workers): {result['peak_rss'] / 2**30:.2f} GB")
    print(f"open fds of the CLI: start {fds[0]}, max {max(fds)}, max in first quarter "
          f"{early}, in last quarter {late} -> {'no growth' if late <= early + 2 else 'GROWS'}")
    print(f"temporary files left: {len(left)}" + (f" e.g. {left[:3]}" if left else ""))
    if result["status"] != 0:
        print(result["stderr"][-2000:])
    if not opts.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if result["status"] == 0 and not left and late <= early + 2 else 1


if __name__ == "__main__":
    sys.exit(main())
