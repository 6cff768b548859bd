"""All preprocessing steps for one acquisition, in the consensus order.

coil combination -> eddy-current correction with the condition-matched water reference,
relative to the lowest-b one (before alignment, so that the eddy currents' apparent frequency
shift is not taken for drift) -> alignment (per condition, shared across conditions) -> outlier
rejection (then re-alignment without the outliers in the templates) -> averaging -> residual
water removal -> MM motion check.
Options come from a plain dict (a TOML table) through :class:`PreprocessOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from pipeline.acquisition import Acquisition
from pipeline.preprocess.align import (METABOLITE_WINDOW_PPM, WATER_WINDOW_PPM, align_conditions)
from pipeline.preprocess.average import average_transients
from pipeline.preprocess.coils import combine_coils
from pipeline.preprocess.eddy import eddy_current_correct, water_snr
from pipeline.preprocess.motion import MM_WINDOW_PPM, mm_amplitude_check
from pipeline.preprocess.orientation import apply_mirror_policy
from pipeline.preprocess.outliers import OUTLIER_WINDOW_PPM, detect_outliers
from pipeline.preprocess.water import RESIDUAL_WATER_WINDOW_PPM, remove_residual_water


@dataclass
class PreprocessOptions:
    """Preprocessing settings with their defaults (keys of the ``[preprocess]`` TOML table).

    coil_whiten: prewhiten coil noise (from the signal-free FID tail).
    align: align transients; align_reference: "metabolites" (window align_ppm_range) or
    "water" (unsuppressed water, 4.2-5.1 ppm); align_iterations / align_model_iterations /
    align_model_components: leave-one-out passes, model-denoised passes, HLSVD poles;
    align_max_shift_hz: search range; align_means: align condition means on the singlets.
    outliers: reject transients (z of amplitude and misfit > outlier_threshold, the z scale
    floored by the spread noise alone gives); a condition is flagged above
    outlier_flag_fraction rejected.
    ecc: Klose eddy-current correction with the condition-matched water reference, relative to
    the lowest-b one and before alignment; references with time-domain SNR below
    ecc_min_water_snr fall back to the lowest-b reference.
    residual_water: HLSVD removal of components in residual_water_window_ppm.
    motion_check: flag MM (0.8-1.0 ppm) drops beyond motion_n_sigma noise SDs.
    mirror_policy: frequency-mirrored (complex-conjugated) data, detected from the singlet
    pattern right after coil combination (``orientation.detect_mirrored``): "fix" conjugates
    them (metabolite and water alike) with a flag, "refuse" raises, "off" skips the check.
    """

    coil_whiten: bool = True
    align: bool = True
    align_reference: str = "metabolites"
    align_ppm_range: tuple = METABOLITE_WINDOW_PPM
    align_iterations: int = 2
    align_model_iterations: int = 2
    align_model_components: int = 40
    align_max_shift_hz: float = 12.0
    align_means: bool = True
    outliers: bool = True
    outlier_threshold: float = 3.0
    outlier_flag_fraction: float = 0.3
    outlier_ppm_range: tuple = OUTLIER_WINDOW_PPM
    ecc: bool = True
    ecc_min_water_snr: float = 20.0
    residual_water: bool = True
    residual_water_window_ppm: tuple = RESIDUAL_WATER_WINDOW_PPM
    residual_water_components: int = 25
    motion_check: bool = True
    motion_ppm_range: tuple = MM_WINDOW_PPM
    motion_n_sigma: float = 3.0
    mirror_policy: str = "fix"

    @classmethod
    def from_dict(cls, values: dict | None, source: str = "preprocess options"
                  ) -> "PreprocessOptions":
        """Options from a plain dict; unknown keys or bad values raise ``ValueError``."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown preprocess options {unknown}; known: "
                             f"{sorted(known)}")
        for key in ("align_ppm_range", "outlier_ppm_range", "residual_water_window_ppm",
                    "motion_ppm_range"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
                if len(values[key]) != 2:
                    raise ValueError(f"{source}: {key} must be [low, high] in ppm")
        options = cls(**values)
        if options.align_reference not in ("metabolites", "water"):
            raise ValueError(f"{source}: align_reference must be 'metabolites' or 'water', "
                             f"got {options.align_reference!r}")
        if options.mirror_policy not in ("fix", "refuse", "off"):
            raise ValueError(f"{source}: mirror_policy must be 'fix', 'refuse' or 'off', "
                             f"got {options.mirror_policy!r}")
        return options

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


@dataclass
class Preprocessed:
    averaged: Acquisition  # (n_conditions, 1, 1, n_points)
    transients: list  # rows for _transients.tsv
    coil_weights: list  # rows: coil, weight, phase_deg (empty for one coil)
    flags: list  # human-readable warnings
    options: dict
    mm_check: dict = field(default_factory=dict)
    orientation: dict = field(default_factory=dict)  # mirror check (orientation.detect_mirrored)


def _condition_label(acq: Acquisition, c: int) -> str:
    return f"condition {c} (b={acq.b_values_s_mm2[c]:g} s/mm^2, direction " \
           f"{acq.direction_labels()[c]})"


def _combine(acq: Acquisition, water: Acquisition | None, options: PreprocessOptions,
             flags: list):
    """Coil-combined metabolite (n_cond, n_trans, n_points) and water FIDs, and weight rows.

    The water reference is combined with the same weights; an already combined (one-coil)
    water reference is used as it is.
    """
    matching = water is not None and water.n_coils == acq.n_coils
    if water is not None and not matching and water.n_coils != 1:
        raise ValueError(f"{water.source or 'water reference'}: {water.n_coils} coils, but "
                         f"{acq.source or 'the metabolite data'} has {acq.n_coils}")
    water_fids = None if water is None or matching else water.fids[:, :, 0, :]
    if acq.n_coils == 1:
        return acq.fids[:, :, 0, :], (None if water is None else water.fids[:, :, 0, :]), []
    reference = water.fids[int(np.argmin(water.b_values_s_mm2))] if matching else None
    if reference is None:
        flags.append("coil combination: no uncombined water reference, weights from the data")
    combination = combine_coils(acq.fids, reference, whiten=options.coil_whiten)
    if matching:
        water_fids = np.einsum("k,...kn->...n", combination.weights.conj(), water.fids)
    return combination.combined, water_fids, combination.weights_table()


def select_water_reference(water_fids: np.ndarray, water_b, c: int, b_c: float,
                           options: PreprocessOptions, flags: list, label: str) -> np.ndarray:
    """Averaged water FID for ECC of condition ``c``: the matched one, else the lowest b.

    ``water_fids`` (n_water_conditions, n_transients, n_points), coil-combined. The matched
    reference (same index, b within 5 %) is used when its SNR reaches ``ecc_min_water_snr``
    (it is then denoised by HLSVD if needed); otherwise the lowest-b reference is used and a
    warning is appended to ``flags``.
    """
    n_water = water_fids.shape[0]
    lowest = int(np.argmin(water_b))
    matched = c if n_water > c and np.isclose(water_b[c], b_c, rtol=0.05, atol=20) else None
    if matched is not None:
        candidate = water_fids[matched].mean(axis=0)
        if water_snr(candidate) >= options.ecc_min_water_snr:
            return candidate
        flags.append(f"ECC: {label}: water reference SNR {water_snr(candidate):.1f} below "
                     f"{options.ecc_min_water_snr:g} even before denoising; used the lowest-b "
                     "reference")
    elif n_water > 1:
        flags.append(f"ECC: {label}: no condition-matched water reference; used the lowest-b one")
    return water_fids[lowest].mean(axis=0)


def eddy_correct_conditions(fids: np.ndarray, water_fids: np.ndarray, water_b,
                        acq: Acquisition, options: PreprocessOptions, flags: list,
                        labels: list) -> np.ndarray:
    """Klose correction of every condition *before* alignment, relative to the lowest-b water.

    The eddy-current phase (straight-line part included) is removed in full, so alignment
    estimates the true drifts instead of taking the eddy currents' apparent frequency shift
    (several Hz at high b) for drift; the lowest-b water reference cancels the water's own
    offset. The correction is the same for every transient of a condition, so it commutes with
    the per-transient drift correction.
    """
    lowest = water_fids[int(np.argmin(water_b))].mean(axis=0)
    out = np.empty_like(fids)
    for c in range(fids.shape[0]):
        reference = select_water_reference(water_fids, water_b, c, acq.b_values_s_mm2[c],
                                           options, flags, labels[c])
        out[c] = eddy_current_correct(fids[c], reference, acq.dwell_s,
                                      reference_fid=lowest).corrected
    return out


def preprocess_acquisition(acq: Acquisition, water: Acquisition | None = None,
                           options: PreprocessOptions | dict | None = None) -> Preprocessed:
    """Run every preprocessing step on one acquisition (see the module docstring)."""
    if not isinstance(options, PreprocessOptions):
        options = PreprocessOptions.from_dict(options)
    flags: list[str] = []
    if water is not None and water.n_points != acq.n_points:
        raise ValueError(f"{water.source or 'water reference'}: {water.n_points} points, but "
                         f"{acq.source or 'the metabolite data'} has {acq.n_points}")
    fids, water_fids, coil_rows = _combine(acq, water, options, flags)
    try:
        fids, water_fids, verdict = apply_mirror_policy(fids, acq.dwell_s, acq.cf_mhz,
                                                        acq.ref_ppm, policy=options.mirror_policy,
                                                        water_fids=water_fids)
    except ValueError as exc:
        raise ValueError(f"{acq.source or 'metabolite data'}: {exc}") from exc
    orientation = {} if verdict is None else verdict.to_dict()
    if verdict is not None and verdict.warning:
        flags.append(f"orientation: {verdict.warning}")
    n_cond, n_trans, n_points = fids.shape
    labels = [_condition_label(acq, c) for c in range(n_cond)]
    window = WATER_WINDOW_PPM if options.align_reference == "water" else options.align_ppm_range
    align_kwargs = dict(ppm_range=window, n_iterations=options.align_iterations,
                        max_shift_hz=options.align_max_shift_hz,
                        n_model_iterations=options.align_model_iterations,
                        n_model_components=options.align_model_components,
                        align_means=options.align_means)

    fids = np.array(fids, dtype=complex)  # a copy: never write into the caller's data
    if options.ecc and water_fids is not None:
        fids = eddy_correct_conditions(fids, water_fids, water.b_values_s_mm2, acq, options,
                                   flags, labels)
    elif options.ecc:
        flags.append("ECC: no water reference, eddy-current correction skipped")
    freq_hz = np.zeros((n_cond, n_trans))
    phase_deg = np.zeros((n_cond, n_trans))
    corrected = fids.copy()
    if options.align:
        alignments = align_conditions(fids, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                                      **align_kwargs)
        corrected = np.stack([a.corrected for a in alignments])
    rejected = np.zeros((n_cond, n_trans), bool)
    if options.outliers:
        for c in range(n_cond):
            result = detect_outliers(corrected[c], acq.dwell_s, acq.cf_mhz,
                                     options.outlier_ppm_range, options.outlier_threshold,
                                     options.outlier_flag_fraction)
            rejected[c] = result.rejected
            if result.flagged:
                flags.append(f"outliers: {labels[c]}: {100 * result.fraction_rejected:.0f} % of "
                             f"transients rejected (> {100 * options.outlier_flag_fraction:.0f} %)")
        if options.align and rejected.any():
            alignments = align_conditions(fids, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                                          weights=(~rejected).astype(float), **align_kwargs)
            corrected = np.stack([a.corrected for a in alignments])
    if options.align:
        freq_hz = np.stack([a.freq_hz for a in alignments])
        phase_deg = np.stack([a.phase_deg for a in alignments])

    averaged = average_transients(corrected, rejected)
    if options.residual_water:
        averaged, _ = remove_residual_water(averaged, acq.dwell_s, acq.cf_mhz,
                                            options.residual_water_window_ppm,
                                            options.residual_water_components)
    mm_check = {}
    if options.motion_check and n_cond > 1:
        check = mm_amplitude_check(averaged, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                                   reference_index=int(np.argmin(acq.b_values_s_mm2)),
                                   n_sigma=options.motion_n_sigma,
                                   ppm_range=options.motion_ppm_range)
        mm_check = {"ratio": check.ratio.tolist(), "z": check.z.tolist(),
                    "flagged": check.flagged.tolist()}
        for c in np.nonzero(check.flagged)[0]:
            flags.append(f"motion: {labels[c]}: MM (0.9 ppm) integral at "
                         f"{100 * check.ratio[c]:.0f} % of the lowest b (z = {check.z[c]:.1f})")

    directions = acq.direction_labels()
    rows = [{"condition": c, "b_value": float(acq.b_values_s_mm2[c]), "direction": directions[c],
             "transient": j, "freq_shift_hz": float(freq_hz[c, j]),
             "phase_shift_deg": float(phase_deg[c, j]), "rejected": int(rejected[c, j])}
            for c in range(n_cond) for j in range(n_trans)]
    metadata = dict(acq.metadata)
    metadata["PreprocessingFlags"] = list(flags)
    averaged_acq = acq.with_fids(averaged[:, None, None, :], metadata=metadata)
    return Preprocessed(averaged_acq, rows, coil_rows, flags, options.to_dict(), mm_check,
                        orientation)
