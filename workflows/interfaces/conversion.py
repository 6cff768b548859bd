"""Conversion stage: any supported NIfTI-MRS form to the canonical one (conditions on
DIM_USER_0, b-values in s/mm^2), with b-values from gradient chronograms when configured."""

from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from pipeline.units import B_VALUE_UNITS

from ..fileio import load_acquisition, optional_input, save_acquisition, write_json_file


class _ConvertInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="input NIfTI-MRS (any header version)")
    sidecar = traits.Str("{}", usedefault=True, desc="BIDS sidecar as JSON")
    b_value_units = traits.Enum("auto", *B_VALUE_UNITS, usedefault=True)
    out_name = traits.Str("converted.nii", usedefault=True)
    source_uri = traits.Str("", usedefault=True,
                            desc="BIDS URI of in_file, recorded instead of its absolute path")
    chronograms = traits.List(File(exists=True), desc="chronogram CSV per b > 0 condition")
    chronogram_sequence = traits.Str("steam", usedefault=True)
    chronogram_pulse_indices = traits.List(traits.Int,
                                           desc="[conversion] chronogram_pulse_indices")
    chronogram_assignment = traits.Str("auto", usedefault=True)
    chronogram_sample_interval_s = traits.Float(6.4e-6, usedefault=True)
    dim_roles = traits.Str("{}", usedefault=True, desc="[conversion] dim_roles as JSON")
    water_for_echo_time_s = traits.Float(
        desc="the metabolite data's EchoTime (s) when in_file is their water reference: an "
             "EchoTime series in it is reduced to the entries at that TE (else the shortest)")
    input_digests = traits.Str("{}", usedefault=True,
                               desc="JSON hashes of the named files it reads (cache key only)")


class _ConvertOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="canonical NIfTI-MRS")
    out_report = File(exists=True, desc="JSON: warnings and b-value unit decision")


class ConvertToCanonical(SimpleInterface):
    """Read any supported NIfTI-MRS form, merge the sidecar, write the current standard."""

    input_spec = _ConvertInputSpec
    output_spec = _ConvertOutputSpec

    def _run_interface(self, runtime):
        from pipeline.acquisition import with_standard_receiver_ppm
        from pipeline.io.chronogram import acquisition_with_chronograms

        sidecar = json.loads(self.inputs.sidecar)
        acq = load_acquisition(self.inputs.in_file, sidecar, self.inputs.b_value_units,
                               json.loads(self.inputs.dim_roles) or None,
                               optional_input(self.inputs.water_for_echo_time_s))
        chronograms = self.inputs.chronograms if isdefined(self.inputs.chronograms) else []
        if chronograms:
            indices = optional_input(self.inputs.chronogram_pulse_indices)
            acq = acquisition_with_chronograms(
                acq, chronograms, self.inputs.chronogram_sequence, indices,
                self.inputs.chronogram_assignment, self.inputs.chronogram_sample_interval_s)
        stated_ppm = acq.ref_ppm
        acq, shift_hz = with_standard_receiver_ppm(acq)
        report = {
            "source": self.inputs.source_uri or Path(self.inputs.in_file).name,
            "shape": list(acq.fids.shape),
            "b_values_s_mm2": acq.b_values_s_mm2.tolist(),
            "directions": acq.direction_labels(),
            "b_value_units_source": acq.metadata.get("b_value_units_source", ""),
            "warnings": list(acq.metadata.get("warnings", [])),
        }
        if chronograms:
            report["b_values_from"] = [Path(p).name for p in chronograms]
        if shift_hz:
            report["receiver_reference"] = {
                "stated_ppm": stated_ppm, "shift_hz": shift_hz,
                "note": f"SpecFreqChemShift {stated_ppm:g} ppm: spectrum shifted by "
                        f"{shift_hz:+.2f} Hz to the 4.65 ppm receiver convention"}
        self._results["out_file"] = save_acquisition(
            acq, self.inputs.out_name, "Conversion",
            "Canonical NIfTI-MRS: conditions along DIM_USER_0 with b-values (s/mm^2) and "
            f"directions; b-value units: {report['b_value_units_source'] or 'stated'}")
        self._results["out_report"] = write_json_file("conversion.json", report)
        return runtime

