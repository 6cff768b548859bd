"""Peak memory against FID length (issue 17 item 8): alignment alone, then every step.

For each length, a child process aligns 8 synthetic transients (three Lorentzian singlets at
3 T, known drifts) with the default options (registration, leave-one-out and HLSVD-model
templates) and reports the tracemalloc peak of numpy's allocations, the process's peak
resident memory (ru_maxrss, which includes the interpreter and libraries) and the largest
frequency error. Before issue 17 the HLSVD Hankel matrix made memory grow with the square of
the length (100 000 points: 24 GB, OOM-killed). ``--all-steps`` runs the whole in-memory
preprocessing (``preprocess_acquisition``: coils, orientation, eddy-current correction with a
water reference, alignment, outliers, averaging, residual water) on 2 conditions instead.

    PYTHONPATH=$PWD python benchmarks/bench_memory_fid_length.py [--all-steps] [lengths...]
"""

from __future__ import annotations

import json
import subprocess
import sys

LENGTHS = [1000, 4000, 16000, 50000, 100000]
CHILD = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, ".")
from benchmarks.bench_memory_fid_length import synthetic_transients
from pipeline.preprocess.align import align_transients
n = int(sys.argv[1])
fids, truth_hz, dwell_s, cf_mhz = synthetic_transients(n)
tracemalloc.start()
start = time.perf_counter()
result = align_transients(fids, dwell_s, cf_mhz)
seconds = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
error = (result.freq_hz - result.freq_hz.mean()) - (truth_hz - truth_hz.mean())
print(json.dumps({"n_points": n, "tracemalloc_peak_mb": peak / 1e6, "seconds": seconds,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
                  "max_freq_error_hz": float(np.max(np.abs(error)))}))
"""


CHILD_ALL_STEPS = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, ".")
from benchmarks.bench_memory_fid_length import synthetic_transients
from pipeline.acquisition import Acquisition
from pipeline.preprocess.pipeline import preprocess_acquisition
n = int(sys.argv[1])
fids, truth_hz, dwell_s, cf_mhz = synthetic_transients(n)
t = np.arange(n) * dwell_s
water = 50.0 * np.exp(-np.pi * 4.0 * t) + 0j
directions = np.full((2, 3), np.nan)
acq = Acquisition(np.stack([fids, 0.7 * fids])[:, :, None, :], dwell_s, cf_mhz,
                  np.array([0.0, 1000.0]), directions)
ref = Acquisition(np.broadcast_to(water, (2, 2, 1, n)).copy(), dwell_s, cf_mhz,
                  np.array([0.0, 1000.0]), directions)
tracemalloc.start()
start = time.perf_counter()
result = preprocess_acquisition(acq, ref)
seconds = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"n_points": n, "tracemalloc_peak_mb": peak / 1e6, "seconds": seconds,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
                  "max_freq_error_hz": float("nan")}))
"""


def synthetic_transients(n_points: int, n_transients: int = 8, seed: int = 3):
    """(fids, true drift in Hz, dwell_s, cf_mhz): NAA, Cr and Cho singlets (4 Hz wide) at
    123.2 MHz sampled at 4 kHz, drifted by known frequencies and phases, with noise."""
    import numpy as np

    dwell_s, cf_mhz = 1 / 4000, 123.2
    rng = np.random.default_rng(seed)
    t = np.arange(n_points) * dwell_s
    clean = sum(a * np.exp(2j * np.pi * (4.65 - ppm) * cf_mhz * t - np.pi * 4.0 * t)
                for ppm, a in ((2.01, 1.0), (3.03, 0.8), (3.21, 0.6)))
    truth_hz = rng.uniform(-4, 4, n_transients)
    phases = rng.uniform(-np.pi, np.pi, n_transients)
    noise = 0.002 * (rng.standard_normal((n_transients, n_points))
                     + 1j * rng.standard_normal((n_transients, n_points)))
    fids = clean[None] * np.exp(1j * (2 * np.pi * truth_hz[:, None] * t[None]
                                      + phases[:, None])) + noise
    return fids, truth_hz, dwell_s, cf_mhz


def main(lengths, child: str = CHILD) -> None:
    print("| FID points | tracemalloc peak (MB) | MB per 1000 points | max RSS (MB) | "
          "time (s) | max freq error (Hz) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in lengths:
        run = subprocess.run([sys.executable, "-c", child, str(n)], capture_output=True,
                             text=True, check=True)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"| {n} | {r['tracemalloc_peak_mb']:.1f} | "
              f"{r['tracemalloc_peak_mb'] / n * 1000:.2f} | {r['max_rss_mb']:.0f} | "
              f"{r['seconds']:.2f} | {r['max_freq_error_hz']:.4f} |")


if __name__ == "__main__":
    all_steps = "--all-steps" in sys.argv[1:]
    main([int(a) for a in sys.argv[1:] if a != "--all-steps"] or LENGTHS,
         CHILD_ALL_STEPS if all_steps else CHILD)
