"""Speed of the spectral fit: one 2048-point spectrum and a 9-condition joint dMRS fit.

Runs with one BLAS thread (set below unless the environment says otherwise)::

    nice python benchmarks/bench_fitting.py [--accuracy] [--single] [--profile]

Single spectrum: ISMRM 2016 challenge dataset 1 (3 T PRESS, 2048 points) with its 21-entry basis
(20 metabolites + measured MM), 0.2-4.2 ppm: the default fit (cubic B-spline baseline every
0.1 ppm, per-metabolite shifts) beside two quadratic-baseline variants. ``--single``: only these;
``--profile``: also where the default single-spectrum fit spends its time (cProfile, the
package's functions by cumulative time, 20 fits).
Joint: 9 b-values of synthetic 7 T STEAM dMRS (pregame basis, 1024 points, 19 entries incl. MM)
at the pregame preset (``pipeline.simulate.presets``). Prints median wall times (targets: 50 ms
and 2 s). With ``--accuracy`` it also runs the long accuracy studies (about 3 minutes): RMS
error of S(b)/S(0), sequential and joint, at the parameters of the published 7 T pregame set and
at 3 T PRESS TE 30 ms (challenge lineshape and MM level) for three SNRs, with the SNR each target
needs; and the ADC RMS error of joint vs sequential fitting at SNR 30 (400 realisations).
"""

from __future__ import annotations

from bench_env import SHARED  # first: one thread before numpy, sys.path

import os

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.basis import Basis

from fitting_studies import adc_errors, decay_errors, rms
from pipeline.fitting import FitOptions, fit_conditions, fit_spectrum
from pipeline.io.basis_formats import read_basis, read_lcmodel_raw
from pipeline.simulate.presets import (ADC_STUDY_ADC_UM2_MS, PREGAME_B_VALUES_S_MM2,
                                       adc_study_spec, pregame_7t_spec, press_3t_spec)
from pipeline.simulate.synthetic import simulate_acquisition

ISMRM = SHARED / "ismrm2016_fitting_challenge"
PREGAME = SHARED / "dmrs_7t_steam_synthetic"
B_VALUES_S_MM2 = list(PREGAME_B_VALUES_S_MM2)
TARGETS = {"tNAA": 0.005, "tCr": 0.005, "tCho": 0.005, "Ins": 0.015, "Glu": 0.015,
           "Gln": 0.02, "Tau": 0.02, "Mac": 0.02}
N_DECAY_REALISATIONS = 40
N_VS_REALISATIONS = 400
PRESS_SNRS = (80.0, 160.0, 320.0)
"""3 T SNRs studied: the ISMRM 2016 challenge's medium and high class, and twice the high."""


def median_seconds(func, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (s) over ``repeats`` calls.

    On a shared machine the CPU time is the better estimate of the one-core cost: wall time
    also counts the time other processes hold the core.
    """
    func()  # warm-up (imports, caches)
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def profile_default_fit(fid, basis, dwell_s, cf_mhz, n_fits: int = 20) -> None:
    """cProfile of ``n_fits`` default fits: the package's functions by cumulative time, in ms
    per fit (profiling adds overhead; compare the shares, not the totals)."""
    import cProfile
    import pstats

    options = FitOptions(ppm_range=(0.2, 4.2))
    fit_spectrum(fid, basis, dwell_s, cf_mhz, options)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n_fits):
        fit_spectrum(fid, basis, dwell_s, cf_mhz, options)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    package = str(Path(__file__).resolve().parents[1] / "pipeline")
    rows = sorted(((cum, calls, f"{Path(file).stem}.{name}")
                   for (file, _, name), (_, calls, _, cum, _) in stats.items()
                   if file.startswith(package)), reverse=True)[:20]
    print(f"  profile of the default fit ({n_fits} fits): ms per fit (cumulative), calls per fit")
    for cum, calls, name in rows:
        print(f"    {1e3 * cum / n_fits:7.1f} ms {calls / n_fits:7.1f}  {name}")


def single_spectrum_case():
    basis = read_basis(ISMRM / "basisset_LCModel" / "press3T_30ms.BASIS")
    fid, _ = read_lcmodel_raw(ISMRM / "datasets_LCModel" / "dataset1.RAW")
    return fid, basis, 2.5e-4, 123.2


def joint_case():
    basis = pregame_basis()
    acq = simulate_acquisition(basis, pregame_7t_spec(basis.names, seed=1)).metabolite
    return acq.fids.mean(axis=1)[:, 0, :], basis, acq.dwell_s, acq.cf_mhz


def pregame_basis() -> Basis:
    stored = read_basis(PREGAME / "basis_STEAM_TE45_TM60.BASIS")
    return Basis(stored.names, stored.fids[:, :1024], stored.dwell_s, stored.cf_mhz,
                 stored.ref_ppm)


def press_basis() -> Basis:
    """The ISMRM 2016 challenge basis without Ace/Gly/Glc (absent from the presets)."""
    press = read_basis(ISMRM / "basisset_text_noTMS", dwell_s=2.5e-4, cf_mhz=123.2)
    return press.subset([n for n in press.names if n not in ("Ace", "Gly", "Glc")])


def decay_accuracy(basis, make_spec, n_realisations: int) -> dict:
    """Table of the RMS error of S(b)/S(0), sequential and joint (sticks), with the bias part
    and the joint fit's Cramér–Rao floor (the RMS error an unbiased estimator reaches at the
    CRLBs of the diffusion parameters); returns name -> joint RMS error."""
    errors = decay_errors(basis, make_spec, range(n_realisations), list(TARGETS))
    print(f"  {'':6s} {'sequential':>10s} {'joint':>8s} {'(bias)':>8s} {'floor':>8s} "
          f"{'target':>7s}  joint meets target")
    out = {}
    for name, target in TARGETS.items():
        joint = errors["joint"][name]
        out[name] = rms(joint)
        floor = float(np.sqrt(np.mean(errors["floor_variance"][name])))
        print(f"  {name:6s} {rms(errors['sequential'][name]):10.4f} {out[name]:8.4f} "
              f"{rms(joint.mean(axis=0)):8.4f} {floor:8.4f} {target:7.3f}  "
              f"{'yes' if out[name] <= target else 'NO'}")
    return out


def joint_vs_sequential(basis, n_realisations: int) -> None:
    """Table of ADC RMS errors, joint vs sequential fits + CRLB-weighted mono-exponential fit,
    with the joint fit's mean CRLB of the ADC (its efficiency: RMS / CRLB near 1) and the
    standard error of the RMS ratio (delta method over the realisations)."""
    names = ["tNAA", "tCr", "tCho", "Glu", "Ins"]
    errors = adc_errors(basis, lambda seed: adc_study_spec(basis.names, seed),
                        range(100, 100 + n_realisations), names, ADC_STUDY_ADC_UM2_MS)
    print(f"  {'':5s} {'joint':>7s} {'CRLB':>7s} {'seq.':>7s} {'ratio':>6s} {'+-SE':>5s}  target")
    for name in names:
        joint_sq = np.square(errors["joint"][name])
        seq_sq = np.square(errors["sequential"][name])
        ratio = float(np.sqrt(joint_sq.mean() / seq_sq.mean()))
        target = "<= 0.80" if name in ("Glu", "Ins") else "<= 1.00"
        print(f"  {name:5s} {rms(errors['joint'][name]):7.4f} {rms(errors['crlb'][name]):7.4f} "
              f"{rms(errors['sequential'][name]):7.4f} {ratio:6.2f} "
              f"{rms_ratio_se(joint_sq, seq_sq):5.2f}  {target}")


def rms_ratio_se(joint_sq: np.ndarray, seq_sq: np.ndarray) -> float:
    """Standard error of sqrt(mean(joint_sq) / mean(seq_sq)) over paired realisations."""
    n = len(joint_sq)
    mj, ms = joint_sq.mean(), seq_sq.mean()
    cov = np.cov(np.vstack([joint_sq, seq_sq])) / n
    grad = 0.5 * np.sqrt(mj / ms) * np.array([1 / mj, -1 / ms])
    return float(np.sqrt(grad @ cov @ grad))


def snr_for_target(snr: float, rms: float, target: float) -> float:
    """SNR at which an RMS error of ``rms`` at ``snr`` falls to ``target`` (RMS ~ 1/SNR)."""
    return snr * rms / target


def accuracy_studies() -> None:
    basis7 = pregame_basis()
    print("7 T STEAM TE 45 ms at the parameters of the published pregame set "
          f"(pipeline.simulate.presets, SNR 172), {N_DECAY_REALISATIONS} realisations; "
          "RMS error of S(b)/S(0):")
    decay_accuracy(basis7, lambda seed: pregame_7t_spec(basis7.names, seed=seed),
                   N_DECAY_REALISATIONS)
    press = press_basis()
    for snr in PRESS_SNRS:
        print(f"3 T PRESS TE 30 ms (challenge basis, lineshape and MM level), b = 0-5 ms/um^2, "
              f"sticks decays, SNR {snr:.0f}, {N_DECAY_REALISATIONS} realisations:")
        joint_rms = decay_accuracy(press, lambda seed, snr=snr: press_3t_spec(press.names, snr,
                                                                              seed),
                                   N_DECAY_REALISATIONS)
        print("  SNR each target needs (RMS ~ 1/SNR): " + ", ".join(
            f"{n} {snr_for_target(snr, joint_rms[n], t):.0f}" for n, t in TARGETS.items()))
    print("joint vs sequential, 7 T pregame preset, mono-exponential ADC 0.15, b = 0-5 ms/um^2, "
          f"SNR 30, 16 transients, {N_VS_REALISATIONS} realisations:")
    joint_vs_sequential(basis7, N_VS_REALISATIONS)


def main() -> int:
    if not ISMRM.is_dir() or not PREGAME.is_dir():
        print(f"shared data folder {SHARED} is absent: nothing to benchmark")
        return 0
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(f"BLAS threads: {threads} (set both to 1 for the one-core figure)")
    fid, basis, dwell_s, cf_mhz = single_spectrum_case()
    variants = {"default fit: 0.1 ppm spline, per-metabolite shifts": {},
                "quadratic baseline, per-metabolite shifts": {"baseline": "poly"},
                "quadratic baseline, one shift per group (previous default)":
                    {"baseline": "poly", "metabolite_shift_sd_ppm": 0.0}}
    for label, overrides in variants.items():
        options = FitOptions(ppm_range=(0.2, 4.2), **overrides)
        t_single = median_seconds(lambda: fit_spectrum(fid, basis, dwell_s, cf_mhz, options), 21)
        print(f"single spectrum (2048 points, {len(basis.names)} basis entries incl. MM, {label}):"
              f" median wall {1e3 * t_single[0]:.1f} ms, CPU {1e3 * t_single[1]:.1f} ms"
              "  (target <= 50 ms)")
    if "--profile" in sys.argv[1:]:
        profile_default_fit(fid, basis, dwell_s, cf_mhz)
    if "--single" in sys.argv[1:]:
        return 0

    fids, basis7, dwell7, cf7 = joint_case()
    joint = FitOptions(ppm_range=(0.5, 4.2), mode="joint", joint_default_model="sticks",
                       joint_mm_model="monoexponential")
    sequential = FitOptions(ppm_range=(0.5, 4.2))
    t_seq = median_seconds(lambda: fit_conditions(fids, basis7, dwell7, cf7, B_VALUES_S_MM2,
                                                  sequential), 3)
    t_joint = median_seconds(lambda: fit_conditions(fids, basis7, dwell7, cf7, B_VALUES_S_MM2,
                                                    joint), 3)
    print(f"9 conditions sequential ({len(basis7.names)} entries, 1024 points): "
          f"median wall {t_seq[0]:.2f} s, CPU {t_seq[1]:.2f} s")
    print(f"9 conditions joint (incl. its sequential initialisation): median wall "
          f"{t_joint[0]:.2f} s, CPU {t_joint[1]:.2f} s  (target <= 2 s)")
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if "--accuracy" in sys.argv[1:]:
        accuracy_studies()
    return 0


if __name__ == "__main__":
    sys.exit(main())
