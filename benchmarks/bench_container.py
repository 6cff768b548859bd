"""Time the container check (tests/container/build_and_run.sh) step by step.

    nice python benchmarks/bench_container.py [--cold] [--no-singularity]

--cold uses an empty cache folder (debootstrap and every layer from scratch, as on a new CI
machine); without it the cached base rootfs and layers are reused. Prints one line per step
(snapshot, hadolint, base_image, build, run_host, run_image, compare_image, singularity_post,
run_venv) and the total, in seconds. Needs root, podman, buildah and debootstrap.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "container" / "build_and_run.sh"


def step_timings(output: str) -> list[tuple[str, int]]:
    """(step, seconds) pairs from the script's ``timing <step> <s>`` lines."""
    return [(name, int(s)) for name, s in re.findall(r"^timing (\w+) (\d+)$", output, re.M)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="start from an empty cache")
    parser.add_argument("--no-singularity", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dmrs-bids-bench-") as tmp:
        env = dict(os.environ)
        if args.cold:
            env["DMRS_BIDS_CONTAINER_CACHE"] = str(Path(tmp) / "cache")
        command = ["bash", str(SCRIPT), str(Path(tmp) / "work")]
        if args.no_singularity:
            command.append("--no-singularity")
        started = time.monotonic()
        run = subprocess.run(command, capture_output=True, text=True, env=env)
        total_s = time.monotonic() - started
        if args.cold:  # overlay layers of the throw-away storage must be unmounted first
            subprocess.run(["buildah", "--root", str(Path(tmp) / "cache" / "storage-overlay"),
                            "--runroot", str(Path(tmp) / "cache" / "run-overlay"),
                            "rmi", "--all", "--force"], capture_output=True)
    for name, seconds in step_timings(run.stdout):
        print(f"{name:18s} {seconds:6d} s")
    print(f"{'total':18s} {total_s:6.0f} s  ({'cold' if args.cold else 'warm'} cache, "
          f"exit {run.returncode})")
    if run.returncode:
        print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
