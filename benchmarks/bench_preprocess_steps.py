"""Measured figures for coil combination, outlier rejection, eddy-current correction and speed.

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_preprocess_steps.py

* outliers: pregame-like generator data (engineer G) with 10 % motion-corrupted transients
  (amplitude loss sinc(spread/2), spread 180-400 deg, random bulk phase), after alignment;
* coils: generator data with 4 coils and correlated noise (correlation 0.5 between neighbours),
  SNR of our combination vs the optimal noise-whitened matched filter with the *true*
  sensitivities and covariance; Siemens 7 T data: combined vs best coil vs plain sum;
* ECC: residual (nonlinear) water phase of the Siemens water reference before/after correction
  with the separately acquired eddy-current reference ``ecc.nii.gz``;
* speed: ``preprocess_acquisition`` (all steps) on the in-vivo participant (10 x 24 transients
  with its water reference) and on the pregame synthetic set (9 x 32), wall and CPU seconds,
  beside the first implementation's figures (target: <= 2 s wall on one core).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bench_preprocess_align import SHARED
from pipeline.io.nifti_mrs import read_nifti_mrs
from pipeline.preprocess.coils import combine_coils, matched_filter_weights
from pipeline.preprocess.eddy import eddy_current_correct, residual_phase_rad
from pipeline.preprocess.pipeline import preprocess_acquisition
from pipeline.simulate.synthetic import simulate_acquisition
from pipeline.spectra import fid_to_spectrum, ppm_axis, ppm_window_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from preprocess_support import outlier_counts, pregame_basis, pregame_spec  # noqa: E402

BEFORE_PREPROCESS_S = {"in-vivo": (6.1, 3.54), "synthetic": (5.5, 3.87)}
"""Median (wall, CPU) seconds of preprocess_acquisition with the first implementation (commit
2fa1be4), OPENBLAS_NUM_THREADS=1, pinned to one core (taskset -c 0), load 3-4 on 2 cores
(2026-11-21). The same conditions gave 0.6 s wall, 0.55 s CPU (in-vivo) and 0.6-1.3 s wall,
0.6 s CPU (synthetic) for the current code."""


def snr(fid, dwell_s, cf_mhz) -> float:
    """NAA peak magnitude over the SD of the real spectrum at 8.5-9.5 ppm."""
    ppm = ppm_axis(fid.size, dwell_s, cf_mhz)
    spectrum = fid_to_spectrum(fid)
    noise = np.std(spectrum[ppm_window_mask(ppm, 8.5, 9.5)].real)
    return float(np.abs(spectrum[ppm_window_mask(ppm, 1.9, 2.1)]).max() / noise)


def outliers(basis, n_seeds: int = 4) -> None:
    totals = {}
    for seed in range(n_seeds):
        result = simulate_acquisition(basis, pregame_spec(100 + seed, outlier_fraction=0.1))
        for key, value in outlier_counts(result).items():
            totals[key] = totals.get(key, 0) + value
    hits, misses, flagged = totals["hits"], totals["misses"], totals["flagged"]
    false_pos, negatives = totals["false_pos"], totals["negatives"]
    print(f"outliers ({n_seeds} datasets, {hits + misses} corrupted transients): "
          f"sensitivity {hits / (hits + misses):.3f} (target >= 0.90), false positives "
          f"{false_pos / negatives:.4f} (target <= 0.05), conditions flagged {flagged}")


def coils_simulated(basis, n_seeds: int = 4) -> None:
    ratios = []
    for seed in range(n_seeds):
        result = simulate_acquisition(basis, pregame_spec(
            200 + seed, b_ms_um2=[0], n_coils=4, coil_noise_correlation=0.5,
            water_reference=True, water_n_transients=2))
        acq, water = result.metabolite, result.water
        sens = np.asarray(result.truth["coils"]["sensitivities"])
        cov = np.asarray(result.truth["coils"]["noise_covariance"])
        sens = sens[:, 0] + 1j * sens[:, 1] if sens.ndim == 2 else sens
        cov = cov[..., 0] + 1j * cov[..., 1] if cov.ndim == 3 else cov
        ours = combine_coils(acq.fids[0], water.fids[0]).combined.mean(axis=0)
        optimal = np.einsum("k,tkn->tn", matched_filter_weights(sens, cov).conj(),
                            acq.fids[0]).mean(axis=0)
        ratios.append(snr(ours, acq.dwell_s, acq.cf_mhz) / snr(optimal, acq.dwell_s,
                                                                 acq.cf_mhz))
    print(f"simulated 4 coils, correlated noise: SNR ours / optimal = "
          f"{np.round(ratios, 3).tolist()} (target >= 0.95)")


def coils_siemens() -> None:
    folder = SHARED / "siemens_7t_steam_coils"
    metab = read_nifti_mrs(folder / "metab_raw.nii.gz")
    wref = read_nifti_mrs(folder / "wref_raw.nii.gz")
    fids = metab.fids[0]
    measure = lambda fid: snr(fid, metab.dwell_s, metab.cf_mhz)
    result = combine_coils(fids, wref.fids[0])
    per_coil = [measure(fids[:, k].mean(0)) for k in range(fids.shape[1])]
    print(f"Siemens 7 T (16 transients, 4 coils): combined SNR "
          f"{measure(result.combined.mean(0)):.1f}, per coil {np.round(per_coil, 1).tolist()}, "
          f"plain sum {measure(fids.sum(axis=1).mean(0)):.1f}")
    for row in result.weights_table():
        print(f"  coil {row['coil']}: weight {row['weight']:.3f}, phase {row['phase_deg']:.1f} deg")


def ecc_siemens() -> None:
    folder = SHARED / "siemens_7t_steam_coils"
    ecc = read_nifti_mrs(folder / "ecc.nii.gz")
    wref = read_nifti_mrs(folder / "wref_raw.nii.gz")
    combination = combine_coils(wref.fids[0], wref.fids[0])
    reference = np.einsum("k,kn->n", combination.weights.conj(), ecc.fids[0, 0])
    for i, water in enumerate(combination.combined):
        before = residual_phase_rad(water, wref.dwell_s)
        after = residual_phase_rad(eddy_current_correct(water, reference, ecc.dwell_s).corrected,
                                   wref.dwell_s)
        print(f"ECC Siemens wref transient {i}: residual water phase {np.rad2deg(before):.2f} deg "
              f"-> {np.rad2deg(after):.2f} deg")


def _timed(function, n_repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``function()`` over ``n_repeats`` runs after a warm-up."""
    function()
    wall, cpu = [], []
    for _ in range(n_repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def speed(n_repeats: int = 5) -> None:
    invivo = SHARED / "dmrs_7t_steam_invivo" / "nifti"
    metab = read_nifti_mrs(invivo / "metab.nii.gz")
    water = read_nifti_mrs(invivo / "water.nii.gz")
    synthetic = read_nifti_mrs(SHARED / "dmrs_7t_steam_synthetic" / "nifti" / "synthetic.nii.gz")
    for name, run in (("in-vivo", lambda: preprocess_acquisition(metab, water)),
                      ("synthetic", lambda: preprocess_acquisition(synthetic))):
        wall, cpu = _timed(run, n_repeats)
        before_wall, before_cpu = BEFORE_PREPROCESS_S[name]
        print(f"preprocess_acquisition {name}: {wall:.2f} s wall, {cpu:.2f} s CPU (first "
              f"implementation {before_wall:.1f} s wall, {before_cpu:.2f} s CPU; target <= 2 s "
              "wall on one core; shared, loaded machine)")


if __name__ == "__main__":
    speed()
    basis = pregame_basis(SHARED)
    outliers(basis)
    coils_simulated(basis)
    coils_siemens()
    ecc_siemens()
