"""Alignment accuracy per b-value on pregame-like synthetic dMRS (engineer G's generator).

Design: ``tests/preprocess_support.py`` (like the pregame 7 T synthetic set: 9 b-values up to
50 ms/um^2, 32 transients each, drifts of SD 2.3 Hz / 11.5 deg, pregame SNR).

Error metric: per-transient drift *relative to the condition mean* (estimate - truth, minus its
mean over the condition), because a phase/frequency common to all transients of a condition is
not a drift (it is removed by the cross-condition alignment of the averages). Also printed: the
absolute error after removing one offset common to all conditions, and, as a yardstick, the
relative error of plain per-condition spectral registration (condition mean as template,
iterated, 1.8-4.2 ppm); and the time of ``align_conditions`` per dataset beside the figure of
the first implementation (one FFT per trial shift).

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_preprocess_align.py [n_seeds]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.preprocess.align import Alignment, align_conditions, register_to_templates
from pipeline.simulate.synthetic import simulate_acquisition
from pipeline.spectra import apply_frequency_phase

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from preprocess_support import B_MS_UM2, drift_errors, pregame_basis, pregame_spec  # noqa: E402

SHARED = Path(os.environ.get("DMRS_BIDS_SHARED_DATA",
                             Path(__file__).resolve().parents[1].parent / "shared" / "data"))
BEFORE_ALIGN_S = 2.9
"""align_conditions per dataset with the first implementation (commit 2fa1be4: one FFT per
trial shift, pinv projector, full SVD), this benchmark, OPENBLAS_NUM_THREADS=1, load ~6 on
2 cores (2026-11-21)."""


def plain_registration(fids, dwell_s, cf_mhz, n_iterations=2, ppm_range=(1.8, 4.2)):
    """Yardstick: per-condition spectral registration to the plain condition mean (transient
    included), iterated, no model or leave-one-out templates, no cross-condition sharing."""
    out = []
    for condition in fids:
        template = condition.mean(axis=0)
        for _ in range(n_iterations + 1):
            freq_hz, phase_deg, amplitude = register_to_templates(condition, template, dwell_s,
                                                                  cf_mhz, ppm_range)
            corrected = apply_frequency_phase(condition, dwell_s, -freq_hz, -phase_deg)
            template = corrected.mean(axis=0)
        out.append(Alignment(freq_hz, phase_deg, amplitude, corrected, template))
    return out


def main(n_seeds: int = 3) -> None:
    basis = pregame_basis(SHARED)
    freq_rel, phase_rel, freq_abs, phase_abs, seconds = [], [], [], [], []
    plain_freq, plain_phase = [], []
    for seed in range(n_seeds):
        result = simulate_acquisition(basis, pregame_spec(seed))
        acq = result.metabolite
        start = time.perf_counter()
        alignments = align_conditions(acq.fids[:, :, 0, :], acq.dwell_s, acq.cf_mhz,
                                      acq.b_values_s_mm2)
        seconds.append(time.perf_counter() - start)
        freq_err, phase_err = drift_errors(alignments, result.truth)
        freq_rel.append(freq_err - freq_err.mean(axis=1, keepdims=True))
        phase_rel.append(phase_err - phase_err.mean(axis=1, keepdims=True))
        freq_abs.append(freq_err - freq_err.mean())
        phase_abs.append(phase_err - phase_err.mean())
        plain = plain_registration(acq.fids[:, :, 0, :], acq.dwell_s, acq.cf_mhz)
        freq_err, phase_err = drift_errors(plain, result.truth)
        plain_freq.append(freq_err - freq_err.mean(axis=1, keepdims=True))
        plain_phase.append(phase_err - phase_err.mean(axis=1, keepdims=True))
    rms = lambda x, axis=None: np.sqrt(np.mean(np.square(np.concatenate(x, axis=1)), axis=axis))
    print(f"alignment on {n_seeds} pregame-like synthetic datasets "
          f"({acq.n_conditions} b x {acq.n_transients} transients each)")
    print("| b (ms/um^2) | freq RMS (Hz) | phase RMS (deg) | abs freq RMS | abs phase RMS "
          "| plain reg. freq | plain reg. phase |")
    print("|---|---|---|---|---|---|---|")
    for i, b in enumerate(B_MS_UM2):
        print(f"| {b} | {rms(freq_rel, 1)[i]:.2f} | {rms(phase_rel, 1)[i]:.2f} | "
              f"{rms(freq_abs, 1)[i]:.2f} | {rms(phase_abs, 1)[i]:.2f} | "
              f"{rms(plain_freq, 1)[i]:.2f} | {rms(plain_phase, 1)[i]:.2f} |")
    print(f"| all | {rms(freq_rel):.2f} | {rms(phase_rel):.2f} | {rms(freq_abs):.2f} | "
          f"{rms(phase_abs):.2f} | {rms(plain_freq):.2f} | {rms(plain_phase):.2f} |")
    print("targets: all b <= 0.8 Hz / 1.7 deg; every b <= 1.2 Hz / 2.5 deg")
    print(f"align_conditions per dataset: {np.mean(seconds):.2f} s wall (first implementation: "
          f"{BEFORE_ALIGN_S:.1f} s); shared, loaded machine")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
