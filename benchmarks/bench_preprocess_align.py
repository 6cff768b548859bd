"""Alignment accuracy per b-value on pregame-like synthetic dMRS (engineer G's generator).

Design (like the pregame 7 T synthetic set): STEAM TE 45 ms basis, 298.06 MHz, 1024 points,
3000 Hz, 32 transients per b, b = 0, 1, 3, 6, 10, 20, 30, 40, 50 ms/um^2, independent drifts of
SD 2.3 Hz and 11.5 deg per transient (the SD of uniform +/-4 Hz and +/-20 deg), SNR 175 for the
b = 0 average (= 31 per transient, as measured on the pregame data), residual water, MM from
the basis's 'Mac'. Metabolites decay as sticks (d_intra 0.5 um^2/ms: ~18 % left at b = 50,
as in the pregame data), MM barely.

Error metric: per-transient drift *relative to the condition mean* (estimate - truth, minus its
mean over the condition), because a phase/frequency common to all transients of a condition is
not a drift (it is removed by the cross-condition alignment of the averages). Also printed: the
absolute error after removing one offset common to all conditions, and, as a yardstick, the
relative error of plain per-condition spectral registration (condition mean as template,
iterated, 1.8-4.2 ppm).

    nice python benchmarks/bench_preprocess_align.py [n_seeds]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.io.basis_formats import read_basis
from pipeline.io.basis_tools import resample_basis
from pipeline.preprocess.align import Alignment, align_conditions, register_to_templates
from pipeline.simulate.synthetic import SyntheticSpec, simulate_acquisition
from pipeline.spectra import apply_frequency_phase

SHARED = Path(os.environ.get("DMRS_BIDS_SHARED_DATA",
                             Path(__file__).resolve().parents[1].parent / "shared" / "data"))
BASIS_PATH = SHARED / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS"
B_MS_UM2 = [0, 1, 3, 6, 10, 20, 30, 40, 50]
CONCENTRATIONS_MM = {"NAA": 12.0, "NAAG": 1.5, "Cr": 4.5, "PCr": 4.0, "GPC": 1.0, "PCh": 0.6,
                     "Ins": 6.0, "Glu": 10.0, "Gln": 3.0, "GABA": 1.5, "GSH": 1.5, "Tau": 1.5,
                     "Asp": 2.0, "Scyllo": 0.3, "Lac": 0.5, "PE": 1.0}


def pregame_basis():
    """The pregame LCModel basis on the pregame grid (1024 points, 3000 Hz)."""
    basis = read_basis(BASIS_PATH)
    return resample_basis(basis, 1 / 3000.0, 1024, basis.cf_mhz)


def pregame_spec(seed: int, b_ms_um2=B_MS_UM2, n_transients: int = 32, **changes) -> SyntheticSpec:
    """Pregame-like synthetic dMRS design (see the module docstring)."""
    values = dict(
        concentrations_mm=CONCENTRATIONS_MM, b_values_s_mm2=[1000.0 * b for b in b_ms_um2],
        n_transients=n_transients, echo_time_s=0.045, default_t2_s=None,
        default_diffusion={"model": "biexponential", "params": {
            "fraction_fast": 0.75, "d_fast": 0.25, "d_slow": 0.02}},
        mm_source="basis", mm_amplitude=0.0005, lorentzian_fwhm_hz=6.0, gaussian_fwhm_hz=8.0,
        residual_water_amplitude=0.2, residual_water_offset_hz=3.0,
        residual_water_fwhm_hz=10.0, freq_jitter_hz=2.3, phase_jitter_deg=11.5,
        snr=175.0, water_reference=False, seed=seed)
    values.update(changes)
    return SyntheticSpec(**values)


def drift_errors(alignments, truth) -> tuple[np.ndarray, np.ndarray]:
    """Per-transient (freq, phase) errors relative to each condition's mean error."""
    freq_true = np.asarray(truth["drifts"]["freq_hz"])
    phase_true = np.asarray(truth["drifts"]["phase_deg"])
    freq_err = np.stack([a.freq_hz for a in alignments]) - freq_true
    phase_err = np.stack([a.phase_deg for a in alignments]) - phase_true
    phase_err = (phase_err + 180.0) % 360.0 - 180.0
    return freq_err, phase_err


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
    basis = pregame_basis()
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
    print(f"time per dataset: {np.mean(seconds):.1f} s (shared, loaded machine)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
