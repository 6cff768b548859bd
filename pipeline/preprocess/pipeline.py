"""All preprocessing steps for one acquisition in memory, composed from the same step
functions the workflow's nodes call (:mod:`pipeline.preprocess.steps`), in the same order.

Options come from a plain dict (a TOML table) through :class:`PreprocessOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from pipeline.acquisition import Acquisition
from pipeline.preprocess import steps
from pipeline.preprocess.align import METABOLITE_WINDOW_PPM
from pipeline.preprocess.average import average_transients
from pipeline.preprocess.motion import MM_WINDOW_PPM
from pipeline.preprocess.outliers import OUTLIER_WINDOW_PPM
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
    axis_check: a spectral width or spectrometer frequency the singlet pattern shows to be
    wrong (``axis_scale.check_axis_scale``, before the mirror check): "refuse" raises, "warn"
    flags it and goes on, "off" skips the check.
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
    axis_check: str = "refuse"

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
        if options.axis_check not in steps.AXIS_POLICIES:
            raise ValueError(f"{source}: axis_check must be 'refuse', 'warn' or 'off', "
                             f"got {options.axis_check!r}")
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
    orientation: dict = field(default_factory=dict)  # mirror check (steps.mirror_step)


def lowest_b_index(acq: Acquisition) -> int:
    """Index of the condition with the lowest b-value (0 without b-values): the reference of
    steps that need the strongest residual water or the best SNR."""
    return int(np.argmin(acq.b_values_s_mm2)) if acq.b_values_s_mm2.size else 0


def preprocess_acquisition(acq: Acquisition, water: Acquisition | None = None,
                           options: PreprocessOptions | dict | None = None) -> Preprocessed:
    """Run every preprocessing step on one acquisition (the workflow's order and steps)."""
    if not isinstance(options, PreprocessOptions):
        options = PreprocessOptions.from_dict(options)
    trimmed = steps.zero_fill_step(steps.without_copies(acq), steps.without_copies(water))
    acq, water = trimmed.acq, trimmed.water
    if water is not None and water.n_points != acq.n_points:
        raise ValueError(f"{water.source or 'water reference'}: {water.n_points} points, but "
                         f"{acq.source or 'the metabolite data'} has {acq.n_points}")
    coils = steps.combine_step(acq, water, options.coil_whiten, options.mirror_policy)
    flags = trimmed.flags + coils.flags
    mirror = steps.mirror_step(coils.fids, coils.water_fids, acq, options.mirror_policy,
                                water, options.axis_check,
                                coils.report.get("water_coil_orientation"))
    flags += mirror.flags
    unaligned = mirror.fids
    if options.ecc and mirror.water_fids is not None:
        unaligned, eddy_flags = steps.eddy_step(mirror.fids, mirror.water_fids,
                                                water.b_values_s_mm2, acq,
                                                options.ecc_min_water_snr, water.directions)
        flags += eddy_flags
    aligned = steps.align_step(unaligned, acq, options)
    outliers = steps.outlier_step(aligned.fids, acq, options)
    flags += outliers.flags
    aligned = steps.realign_step(unaligned, outliers.rejected, acq, options, aligned) or aligned
    averaged = average_transients(aligned.fids, outliers.rejected)
    if options.residual_water:
        averaged, _ = remove_residual_water(averaged, acq.dwell_s, acq.cf_mhz,
                                            options.residual_water_window_ppm,
                                            options.residual_water_components,
                                            reference_index=lowest_b_index(acq))
    mm_check = steps.motion_step(averaged, acq, options)
    flags += mm_check.pop("flags")
    rows = steps.transient_rows(acq, aligned.freq_hz, aligned.phase_deg, outliers.rejected,
                                ~steps.empty_transients(unaligned))
    metadata = dict(acq.metadata)
    metadata["PreprocessingFlags"] = list(flags)
    averaged_acq = acq.with_fids(averaged[:, None, None, :], metadata=metadata)
    return Preprocessed(averaged_acq, rows, coils.report.get("weights", []), flags,
                        options.to_dict(), mm_check, mirror.orientation)
