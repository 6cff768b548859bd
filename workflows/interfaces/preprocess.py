"""Preprocessing stage: one node per step, each calling exactly the step function of
:mod:`pipeline.preprocess.steps` that :func:`preprocess_acquisition` composes in memory."""

from __future__ import annotations

import dataclasses

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    traits)

from pipeline.acquisition import WATER_SCALE_NOTE_KEY
from pipeline.preprocess import steps

from ..derivatives import SHIFT_COLUMNS, TRANSIENTS_COLUMNS
from ..fileio import (load_acquisition, optional_input, options_table, read_table,
                      save_acquisition, write_json_file, write_table)

POWDER_KEYS = ("powder_average", "powder_method")


def preprocess_options(spec_value):
    """``PreprocessOptions`` from the ``[preprocessing]`` JSON (powder keys are ours)."""
    from pipeline.preprocess.pipeline import PreprocessOptions

    table = {k: v for k, v in options_table(spec_value).items() if k not in POWDER_KEYS}
    return PreprocessOptions.from_dict(table, "[preprocessing]")


class _OptionsInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


# --- coil combination ------------------------------------------------------------------------

class _CoilsInputSpec(_OptionsInputSpec):
    water_file = File(exists=True, desc="water reference (same coils, or combined), optional")
    source_name = traits.Str("", usedefault=True, desc="the user's data file, for flags")
    water_source_name = traits.Str("", usedefault=True,
                                   desc="the user's water reference file, for flags")


class _CoilsOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_water = File(desc="coil-combined water reference (when given)")
    out_report = File(exists=True, desc="JSON: coil weights and method")


class CombineCoils(SimpleInterface):
    """Noise-whitened matched-filter coil combination; weights from the b = 0 water
    reference when it has the same coils (applied to it as well), else from the data. First
    the input's zero-filling is trimmed (``steps.zero_fill_step``); after it, mirrored data
    are checked for (``steps.mirror_step``)."""

    input_spec = _CoilsInputSpec
    output_spec = _CoilsOutputSpec

    def _run_interface(self, runtime):
        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        water_path = optional_input(self.inputs.water_file)
        water = load_acquisition(water_path) if water_path else None
        acq = dataclasses.replace(acq, source=self.inputs.source_name or acq.source)
        if water is not None:
            water = dataclasses.replace(water,
                                        source=self.inputs.water_source_name or water.source)
        trimmed = steps.zero_fill_step(steps.without_copies(acq), steps.without_copies(water))
        acq, water = trimmed.acq, trimmed.water
        step = steps.combine_step(acq, water, options.coil_whiten, options.mirror_policy)
        mirror = steps.mirror_step(step.fids, step.water_fids, acq, options.mirror_policy,
                                   water, options.axis_check,
                                   step.report.get("water_coil_orientation"))
        details = steps.zero_fill_details(trimmed.report) + step.details + ("; frequency-mirrored input conjugated"
                                   if mirror.orientation.get("verdict") == "mirrored"
                                   and options.mirror_policy == "fix" else "")
        self._results["out_file"] = save_acquisition(
            acq.with_fids(mirror.fids[:, :, None, :]), "coils.nii", "RF coil combination",
            details)
        if water is not None:
            if step.water_scale_note:  # the fit's water scaling reads it
                water = dataclasses.replace(water, metadata={
                    **water.metadata, WATER_SCALE_NOTE_KEY: step.water_scale_note})
            self._results["out_water"] = save_acquisition(
                water.with_fids(mirror.water_fids[:, :, None, :]), "water_coils.nii",
                "RF coil combination", details)
        report = dict(step.report, orientation=mirror.orientation,
                      flags=trimmed.flags + step.flags + mirror.flags)
        if trimmed.report:
            report["zero_filling"] = trimmed.report
        self._results["out_report"] = write_json_file("coils.json", report)
        return runtime


# --- eddy-current correction -----------------------------------------------------------------

class _EddyInputSpec(_OptionsInputSpec):
    water_file = File(exists=True, mandatory=True, desc="coil-combined water reference")


class _ReportOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_report = File(exists=True, desc="JSON: what the step did, and its flags")


class EddyCurrentCorrect(SimpleInterface):
    """Klose correction before alignment, with the condition-matched water reference relative
    to the lowest-b one (the lowest-b one alone when the matched reference is missing or too
    noisy), so alignment does not take the eddy currents' frequency shift for drift."""

    input_spec = _EddyInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        water = load_acquisition(self.inputs.water_file)
        corrected, flags = steps.eddy_step(acq.fids[:, :, 0, :], water.fids[:, :, 0, :],
                                           water.b_values_s_mm2, acq, options.ecc_min_water_snr,
                                           water.directions)
        self._results["out_file"] = save_acquisition(
            acq.with_fids(corrected[:, :, None, :]), "eddy.nii", "Eddy current correction",
            "Klose, condition-matched water reference relative to the lowest-b water, before "
            f"alignment; {len(flags)} fallback(s) to the lowest-b reference")
        self._results["out_report"] = write_json_file("eddy.json", {"flags": flags})
        return runtime


# --- alignment and outliers ------------------------------------------------------------------

class _AlignOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_shifts = File(exists=True, desc="TSV: drift per transient")


class AlignTransients(SimpleInterface):
    """Frequency/phase registration of the transients within each condition (lowest b first,
    condition means aligned to each other)."""

    input_spec = _OptionsInputSpec
    output_spec = _AlignOutputSpec

    def _run_interface(self, runtime):
        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        step = steps.align_step(acq.fids[:, :, 0, :], acq, options)
        self._results["out_file"] = save_acquisition(
            acq.with_fids(step.fids[:, :, None, :]), "aligned.nii",
            "Frequency and phase correction", step.details)
        self._results["out_shifts"] = write_table(
            "shifts.tsv", steps.transient_rows(acq, step.freq_hz, step.phase_deg), SHIFT_COLUMNS)
        return runtime


class _OutliersInputSpec(_OptionsInputSpec):
    in_combined = File(exists=True, mandatory=True, desc="transients before alignment")
    in_shifts = File(exists=True, mandatory=True)


class _OutliersOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="transients re-aligned without the outliers")
    out_transients = File(exists=True, desc="the _transients.tsv table (shifts + rejected)")
    out_report = File(exists=True, desc="JSON: scores, flagged conditions")


def _first_alignment(acq, rows: list[dict]) -> steps.AlignStep:
    """The alignment the outliers were found on: ``acq``'s transients and ``rows``' shifts
    (``_transients.tsv`` order: condition, then transient)."""
    shape = acq.fids.shape[:2]
    freq_hz = np.array([float(r["freq_shift_hz"]) for r in rows]).reshape(shape)
    phase_deg = np.array([float(r["phase_shift_deg"]) for r in rows]).reshape(shape)
    return steps.AlignStep(acq.fids[:, :, 0, :], freq_hz, phase_deg, "")


class RejectOutliers(SimpleInterface):
    """Outlier transients per condition (a condition is flagged when too many go), then
    re-alignment with the outliers left out of the templates."""

    input_spec = _OutliersInputSpec
    output_spec = _OutliersOutputSpec

    def _run_interface(self, runtime):
        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        rows = read_table(self.inputs.in_shifts)
        found = steps.outlier_step(acq.fids[:, :, 0, :], acq, options)
        rejected = found.rejected
        out, details, realigned = acq, "no transient rejected", None
        if rejected.any():
            combined = load_acquisition(self.inputs.in_combined)
            realigned = steps.realign_step(combined.fids[:, :, 0, :], rejected, combined,
                                           options, _first_alignment(acq, rows))
        if realigned is not None:
            out = acq.with_fids(realigned.fids[:, :, None, :])
            rows = steps.transient_rows(acq, realigned.freq_hz, realigned.phase_deg)
            details = "re-aligned with the rejected transients left out of the templates"
        empty = steps.empty_transients(acq.fids[:, :, 0, :])
        for row in rows:
            where = int(row["condition"]), int(row["transient"])
            row["rejected"], row["acquired"] = int(rejected[where]), int(not empty[where])
        self._results["out_file"] = save_acquisition(
            out, "realigned.nii", "Outlier removal",
            f"{int((rejected & ~empty).sum())} transient(s) rejected (robust z > "
            f"{options.outlier_threshold:g}); {int(empty.sum())} exactly zero (not acquired) "
            f"left out; {details}" if empty.any() else
            f"{int(rejected.sum())} transient(s) rejected (robust z > "
            f"{options.outlier_threshold:g}); {details}")
        self._results["out_transients"] = write_table("transients.tsv", rows,
                                                      TRANSIENTS_COLUMNS)
        self._results["out_report"] = write_json_file("outliers.json", {
            "n_rejected": int((rejected & ~empty).sum()), "n_not_acquired": int(empty.sum()),
            "flagged_conditions": found.flagged_conditions, "flags": found.flags,
            "rejected_per_condition": (rejected & ~empty).sum(axis=1).tolist(),
            "not_acquired_per_condition": empty.sum(axis=1).tolist(),
            "amplitude_z": found.amplitude_z.tolist(), "misfit_z": found.misfit_z.tolist()})
        return runtime


# --- averaging and residual water ------------------------------------------------------------

class _AverageInputSpec(_OptionsInputSpec):
    in_transients = File(exists=True, mandatory=True)


class _AverageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="spectra averaged per condition (.nii.gz)")


class AverageTransients(SimpleInterface):
    """Average the kept transients of each condition (optionally powder-average shells)."""

    input_spec = _AverageInputSpec
    output_spec = _AverageOutputSpec

    def _run_interface(self, runtime):
        from pipeline.diffusion.powder import acquisition_shells
        from pipeline.preprocess.average import average_transients, powder_average

        opts = options_table(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        rejected = np.zeros((acq.n_conditions, acq.n_transients), bool)
        for row in read_table(self.inputs.in_transients):
            rejected[int(row["condition"]), int(row["transient"])] = bool(int(row["rejected"]))
        averaged = average_transients(acq.fids[:, :, 0, :], rejected)
        kept = (~rejected).sum(axis=1)
        details = ("mean of the kept transients per condition (kept: "
                   + ",".join(map(str, kept.tolist())) + ")")
        out = acq.with_fids(averaged[:, None, None, :])
        if opts.get("powder_average", False):
            method = opts.get("powder_method", "arithmetic")
            shells = acquisition_shells(acq.b_values_s_mm2, acq.directions, acq.metadata)
            shell_fids, shell_b = powder_average(averaged, acq.b_values_s_mm2, method,
                                                 labels=shells.labels, directions=acq.directions)
            out = acq.with_fids(shell_fids[:, None, None, :], b_values_s_mm2=shell_b,
                                directions=np.full((shell_b.size, 3), np.nan))
            details += (f"; {method} powder average per shell ({shells.method}; shell b = "
                        "mean b of its directions)")
        self._results["out_file"] = save_acquisition(out, "averaged.nii.gz", "Signal averaging",
                                                     details)
        return runtime


class _WaterOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the preprocessed spectra (.nii.gz)")
    out_report = File(exists=True)


class RemoveResidualWater(SimpleInterface):
    """HLSVD removal of the residual water components of each averaged spectrum."""

    input_spec = _OptionsInputSpec
    output_spec = _WaterOutputSpec

    def _run_interface(self, runtime):
        from pipeline.preprocess.pipeline import lowest_b_index
        from pipeline.preprocess.water import remove_residual_water

        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        cleaned, summary = remove_residual_water(
            acq.fids[:, 0, 0, :], acq.dwell_s, acq.cf_mhz, options.residual_water_window_ppm,
            options.residual_water_components, reference_index=lowest_b_index(acq))
        self._results["out_file"] = save_acquisition(
            acq.with_fids(cleaned[:, None, None, :]), "preproc.nii.gz",
            "Nuisance peak removal",
            f"HLSVD ({options.residual_water_components} components, poles of the lowest-b "
            f"spectrum common to all conditions), components within "
            f"{list(options.residual_water_window_ppm)} ppm subtracted")
        self._results["out_report"] = write_json_file("residual_water.json", summary)
        return runtime
