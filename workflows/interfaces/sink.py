"""Output stage: one acquisition's results copied to their BIDS-derivative names."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from pipeline.io.files import atomic_write_text

from .. import derivatives as d
from ..fileio import copy_if_changed, write_json_file


class _SinkInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True)
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    stem = traits.Str(mandatory=True, desc="input name without _svs.nii.gz")
    config_toml = traits.Str("", usedefault=True, desc="effective configuration text")
    preproc = File(exists=True, mandatory=True)
    fit = File(exists=True, mandatory=True)
    transients = File(exists=True, mandatory=True)
    amplitudes = File(exists=True, mandatory=True)
    diffusion = File(exists=True, mandatory=True)
    qc = File(exists=True, mandatory=True)
    figures = traits.List(File(exists=True), desc="SVG figures named <name>.svg")
    fit_display = File(exists=True, desc="fit display table (pipeline.fitting.fit_display)")
    amplitude_covariance = File(exists=True, desc="amplitude covariance across conditions")


class _SinkOutputSpec(TraitedSpec):
    out_index = File(exists=True, desc="JSON: derivative kind -> path written")


class WriteDerivatives(SimpleInterface):
    """Copy one acquisition's results to their BIDS-derivative names (atomic writes).

    Always runs (never cached), so deleted outputs are rewritten from cached results; files
    already holding the same bytes are left untouched.
    """

    input_spec = _SinkInputSpec
    output_spec = _SinkOutputSpec
    always_run = True

    def _run_interface(self, runtime):
        i = self.inputs
        session = i.session or None
        index = {"subject": i.subject, "session": session, "stem": i.stem}
        for kind in d.CONTRACT_KINDS:
            dest = d.acquisition_path(i.output_dir, i.subject, session, i.stem, kind)
            copy_if_changed(getattr(i, kind), dest)
            index[kind] = str(dest)
        if isdefined(i.fit_display):
            dest = d.fit_display_path(index["fit"], i.stem)
            copy_if_changed(i.fit_display, dest)
            index["fit_display"] = str(dest)
        if isdefined(i.amplitude_covariance):
            dest = d.amplitude_covariance_path(index["amplitudes"], i.stem)
            copy_if_changed(i.amplitude_covariance, dest)
            index["amplitude_covariance"] = str(dest)
        index["figures"] = {}
        for figure in i.figures if isdefined(i.figures) else []:
            name = Path(figure).stem
            dest = d.figure_path(i.output_dir, i.subject, i.stem, name)
            copy_if_changed(figure, dest)
            index["figures"][name] = str(dest)
        if i.config_toml:
            dest = d.acquisition_path(i.output_dir, i.subject, session, i.stem, "config")
            if not dest.is_file() or dest.read_text() != i.config_toml:
                atomic_write_text(dest, i.config_toml)
            index["config"] = str(dest)
        self._results["out_index"] = write_json_file("derivatives.json", index)
        return runtime
