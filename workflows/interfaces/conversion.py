"""Conversion stage: any supported NIfTI-MRS form to the canonical one (conditions on
DIM_USER_0, b-values in s/mm^2), with b-values from gradient chronograms when configured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..fileio import load_acquisition, save_acquisition, write_json_file


class _ConvertInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="input NIfTI-MRS (any header version)")
    sidecar = traits.Str("{}", usedefault=True, desc="BIDS sidecar as JSON")
    b_value_units = traits.Enum("auto", "s/mm2", "ms/um2", usedefault=True)
    out_name = traits.Str("converted.nii", usedefault=True)
    source_uri = traits.Str("", usedefault=True,
                            desc="BIDS URI of in_file, recorded instead of its absolute path")
    chronograms = traits.List(File(exists=True), desc="chronogram CSV per b > 0 condition")
    chronogram_sequence = traits.Str("steam", usedefault=True)
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
        sidecar = json.loads(self.inputs.sidecar)
        acq = load_acquisition(self.inputs.in_file, sidecar, self.inputs.b_value_units)
        chronograms = self.inputs.chronograms if isdefined(self.inputs.chronograms) else []
        if chronograms:
            acq = apply_chronograms(acq, chronograms, self.inputs.chronogram_sequence)
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
        self._results["out_file"] = save_acquisition(
            acq, self.inputs.out_name, "Conversion",
            "Canonical NIfTI-MRS: conditions along DIM_USER_0 with b-values (s/mm^2) and "
            f"directions; b-value units: {report['b_value_units_source'] or 'stated'}")
        self._results["out_report"] = write_json_file("conversion.json", report)
        return runtime


def apply_chronograms(acq, csv_paths: list, sequence: str):
    """``acq`` with the b-values (s/mm^2) and unit directions of its diffusion-weighted
    conditions (b > 0, in order) computed from their gradient chronograms; b = 0 stays."""
    from dataclasses import replace

    from pipeline.io.chronogram import chronogram_conditions

    weighted = np.flatnonzero(acq.b_values_s_mm2 > 0)
    if weighted.size != len(csv_paths):
        raise ValueError(f"{acq.source}: {weighted.size} diffusion-weighted conditions but "
                         f"{len(csv_paths)} chronograms in [conversion] chronograms (one per "
                         "condition with b > 0, in condition order)")
    b_s_mm2, directions = chronogram_conditions(csv_paths, sequence)
    b_all, dirs_all = acq.b_values_s_mm2.astype(float), acq.directions.astype(float)
    b_all[weighted], dirs_all[weighted] = b_s_mm2, directions
    metadata = dict(acq.metadata, b_value_units_source="gradient chronograms ([conversion] "
                    "chronograms)")
    return replace(acq, b_values_s_mm2=b_all, directions=dirs_all, metadata=metadata)
