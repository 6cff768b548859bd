"""Shared helpers of the preprocessing tests and benchmarks (no tests here).

The pregame-like synthetic dMRS design (like the 7 T synthetic set of the dMRS pregame workshop,
``../shared/data/dmrs_7t_steam_synthetic``): STEAM TE 45 ms basis, 298.06 MHz, 1024 points,
3000 Hz, 32 transients per b, b = 0, 1, 3, 6, 10, 20, 30, 40, 50 ms/um^2, independent drifts of
SD 2.3 Hz and 11.5 deg per transient (the SD of uniform +/-4 Hz and +/-20 deg), SNR 175 for the
b = 0 average (= 31 per transient, as measured on the pregame data), residual water, MM from
the basis's 'Mac'. Metabolites decay biexponentially (75 % at 0.25 um^2/ms, 25 % at
0.02 um^2/ms: ~9 % left at b = 50); MM barely. Benchmarks import this module with the tests
folder on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.basis import Basis
from pipeline.io.basis_formats import read_basis
from pipeline.io.basis_tools import resample_basis
from pipeline.simulate.synthetic import SyntheticSpec

BASIS_RELATIVE_PATH = Path("dmrs_7t_steam_synthetic") / "basis_STEAM_TE45_TM60.BASIS"
B_MS_UM2 = [0, 1, 3, 6, 10, 20, 30, 40, 50]
CONCENTRATIONS_MM = {"NAA": 12.0, "NAAG": 1.5, "Cr": 4.5, "PCr": 4.0, "GPC": 1.0, "PCh": 0.6,
                     "Ins": 6.0, "Glu": 10.0, "Gln": 3.0, "GABA": 1.5, "GSH": 1.5, "Tau": 1.5,
                     "Asp": 2.0, "Scyllo": 0.3, "Lac": 0.5, "PE": 1.0}


def pregame_basis(shared_data: Path) -> Basis:
    """The pregame LCModel basis (in the shared-data folder) on the pregame grid."""
    basis = read_basis(Path(shared_data) / BASIS_RELATIVE_PATH)
    return resample_basis(basis, 1 / 3000.0, 1024, basis.cf_mhz)


def pregame_spec(seed: int, b_ms_um2=B_MS_UM2, n_transients: int = 32,
                 **changes) -> SyntheticSpec:
    """Pregame-like synthetic dMRS design (see the module docstring); ``changes`` override."""
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
    """Per-transient (freq_hz, phase_deg) errors (n_conditions, n_transients) of alignments
    against the generator's true drifts; phases wrapped to [-180, 180)."""
    freq_true = np.asarray(truth["drifts"]["freq_hz"])
    phase_true = np.asarray(truth["drifts"]["phase_deg"])
    freq_err = np.stack([a.freq_hz for a in alignments]) - freq_true
    phase_err = np.stack([a.phase_deg for a in alignments]) - phase_true
    phase_err = (phase_err + 180.0) % 360.0 - 180.0
    return freq_err, phase_err


def outlier_counts(result) -> dict:
    """Outlier detection after per-condition alignment of a synthetic result, against its truth:
    counts of hits, misses, false positives, true negatives' total and flagged conditions."""
    from pipeline.preprocess.align import align_conditions
    from pipeline.preprocess.outliers import detect_outliers

    acq = result.metabolite
    truth = np.zeros((acq.n_conditions, acq.n_transients), bool)
    for c, j in result.truth["outlier_indices"]:
        truth[c, j] = True
    counts = dict(hits=0, misses=0, false_pos=0, negatives=0, flagged=0)
    alignments = align_conditions(acq.fids[:, :, 0, :], acq.dwell_s, acq.cf_mhz,
                                  acq.b_values_s_mm2)
    for c, alignment in enumerate(alignments):
        found = detect_outliers(alignment.corrected, acq.dwell_s, acq.cf_mhz)
        counts["hits"] += int((found.rejected & truth[c]).sum())
        counts["misses"] += int((~found.rejected & truth[c]).sum())
        counts["false_pos"] += int((found.rejected & ~truth[c]).sum())
        counts["negatives"] += int((~truth[c]).sum())
        counts["flagged"] += int(found.flagged)
    return counts
