"""The report's nipype nodes: figures beside diffusion modelling, and the participant report.

They belong to the app (they draw with :mod:`bids_app.report`), so ``workflows`` does not
import them: :func:`bids_app.run.run_participants` passes these classes to
:func:`workflows.participant.init_participant_wf` (``figures_interface``,
``report_interface``).
"""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    traits)

from workflows.fileio import optional_input, options_table, read_json_file

from .report import FIGURES, make_figures, write_participant_report


class _FiguresInputSpec(BaseInterfaceInputSpec):
    in_preproc = File(exists=True, mandatory=True)
    in_fit = File(exists=True, desc="fitted spectra (needed for the fit figure)")
    in_amplitudes = File(exists=True)
    in_transients = File(exists=True, mandatory=True)
    in_fit_display = File(exists=True, desc="baseline and metabolite traces "
                                            "(pipeline.fitting.fit_display), optional")
    in_raw = File(exists=True, desc="the input svs (transients before alignment), for the "
                                    "transients figure")
    in_diffusion = File(exists=True, desc="the diffusion models, for the decay figure")
    figure_names = traits.List(traits.Enum(*FIGURES), value=["fit", "drift"], usedefault=True,
                               desc="figures to draw (of bids_app.report.FIGURES; the workflow "
                                    "names them per node)")


class _FiguresOutputSpec(TraitedSpec):
    out_figures = traits.List(File(exists=True))


class AcquisitionFigures(SimpleInterface):
    """Report figures of one acquisition drawn while the processing goes on (``figure_names``:
    the transients and drift after preprocessing, the fits per condition after the fit);
    the report draws the rest."""

    input_spec = _FiguresInputSpec
    output_spec = _FiguresOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        paths = make_figures(i.in_preproc, optional_input(i.in_fit),
                             optional_input(i.in_amplitudes), i.in_transients,
                             {n: Path.cwd() / f"{n}.svg" for n in i.figure_names},
                             fit_display=optional_input(i.in_fit_display),
                             raw=optional_input(i.in_raw),
                             diffusion_tsv=optional_input(i.in_diffusion))
        self._results["out_figures"] = [str(paths[n]) for n in FIGURES if n in paths]
        return runtime


class _ReportInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True)
    subject = traits.Str(mandatory=True)
    in_indexes = traits.List(File(exists=True), mandatory=True)
    options = traits.Str("{}", usedefault=True, desc="[report] section as JSON")


class _ReportOutputSpec(TraitedSpec):
    out_report = File(exists=True)


class ParticipantReport(SimpleInterface):
    """The participant's HTML report and figures, from the derivatives just written."""

    input_spec = _ReportInputSpec
    output_spec = _ReportOutputSpec
    always_run = True

    def _run_interface(self, runtime):
        entries = [read_json_file(p) for p in self.inputs.in_indexes]
        self._results["out_report"] = str(write_participant_report(
            self.inputs.output_dir, self.inputs.subject, entries, options_table(self.inputs.options)))
        return runtime
