"""Diffusion stage: models fitted to each metabolite's amplitude decay with b."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    traits)

from ..derivatives import DIFFUSION_COLUMNS
from ..fileio import (load_acquisition, optional_input, options_table, read_table,
                      write_table)


class _DiffusionInputSpec(BaseInterfaceInputSpec):
    in_amplitudes = File(exists=True, mandatory=True)
    in_covariance = File(exists=True, desc="_desc-amplitudes_covariance.tsv (optional: without it "
                                          "the conditions' CRLBs are taken as independent)")
    in_preproc = File(exists=True, mandatory=True, desc="for directions and gradient timing")
    options = traits.Str("{}", usedefault=True, desc="[diffusion] section as JSON")
    part = traits.Int(0, usedefault=True, desc="which share of the metabolites (0-based)")
    n_parts = traits.Int(1, usedefault=True, desc="the metabolites are shared among this many "
                                                  "nodes (run side by side, rows joined in "
                                                  "order by MergeTables)")


class _DiffusionOutputSpec(TraitedSpec):
    out_diffusion = File(exists=True)


class DiffusionModels(SimpleInterface):
    """Diffusion models fitted to each metabolite's amplitude decay with b."""

    input_spec = _DiffusionInputSpec
    output_spec = _DiffusionOutputSpec

    def _run_interface(self, runtime):
        from pipeline.diffusion import diffusion_table, gradient_timing_ms
        from pipeline.diffusion.powder import shell_hints
        from pipeline.diffusion.amplitudes import (amplitude_covariances, amplitude_series,
                                                   decaying,
                                                   flagged_metabolites, has_decay,
                                                   modelled_metabolites, unmodelled_rows)
        from pipeline.fitting.monotone import CAP_FLAG

        opts = options_table(self.inputs.options)
        acq = load_acquisition(self.inputs.in_preproc)
        if not has_decay(acq.b_values_s_mm2):  # plain SVS: the header only, no rows
            self._results["out_diffusion"] = write_table("diffusion.tsv", [],
                                                         DIFFUSION_COLUMNS)
            return runtime
        amplitude_rows = read_table(self.inputs.in_amplitudes)
        series = amplitude_series(amplitude_rows)
        covariance_path = optional_input(self.inputs.in_covariance)
        covariances = (amplitude_covariances(read_table(covariance_path), series,
                                             covariance_path) if covariance_path else {})
        names = modelled_metabolites(list(series), opts.get("metabolites", []))
        timing = gradient_timing_ms(acq.metadata, opts.get("gradient_duration_s") or None,
                                    opts.get("diffusion_time_s") or None)
        directional = bool(np.any(np.all(np.isfinite(acq.directions), axis=1)))
        models = tuple(opts.get("models", ("monoexponential",)))
        modelled = decaying(series, names, acq.b_values_s_mm2)
        rows = [row for n in names if n not in modelled for row in unmodelled_rows(n, models)]
        rows, modelled = share(rows, modelled, self.inputs.part, self.inputs.n_parts)
        rows += diffusion_table(
            {n: series[n] for n in modelled}, acq.b_values_s_mm2,
            directions=acq.directions if directional else None,
            at_cap=flagged_metabolites(amplitude_rows, CAP_FLAG), covariances=covariances,
            models=models, small_delta_ms=timing["small_delta_ms"],
            big_delta_ms=timing["big_delta_ms"],
            echo_time_ms=timing["echo_time_ms"], diffusion_time_ms=timing["diffusion_time_ms"],
            powder_method=opts.get("powder_method", "arithmetic"),
            uncertainty=opts.get("uncertainty", "jacobian"),
            n_draws=int(opts.get("n_draws", 100)), seed=int(opts.get("seed", 0)),
            **shell_hints(acq.metadata, acq.n_conditions))
        self._results["out_diffusion"] = write_table("diffusion.tsv", rows, DIFFUSION_COLUMNS)
        return runtime


def share(unmodelled: list, modelled: list, part: int, n_parts: int) -> tuple[list, list]:
    """The rows and metabolites of node ``part`` of ``n_parts``: the unmodelled rows and the
    first metabolites go to part 0, the next to part 1 and so on (contiguous), so that the
    parts' rows joined in order are those of one node. An odd one goes to the earlier part:
    the sums come first and fit fastest, macromolecules and lipids come last and fit slowest."""
    if not 0 <= part < n_parts:
        raise ValueError(f"diffusion: part {part} of {n_parts} does not exist")
    bounds = [-(-k * len(modelled) // n_parts) for k in range(n_parts + 1)]  # ceil, exact
    return (unmodelled if part == 0 else []), modelled[bounds[part]:bounds[part + 1]]


class _MergeTablesInputSpec(BaseInterfaceInputSpec):
    in_tables = traits.List(File(exists=True), mandatory=True, desc="TSVs with one header")
    out_name = traits.Str("diffusion.tsv", usedefault=True)


class MergeTables(SimpleInterface):
    """Diffusion tables (TSV files with the same columns) joined in order, header once."""

    input_spec = _MergeTablesInputSpec
    output_spec = _DiffusionOutputSpec

    def _run_interface(self, runtime):
        from pathlib import Path

        from pipeline.io.files import tsv_text

        texts = [Path(p).read_text() for p in self.inputs.in_tables]
        headers = [t.split("\n", 1)[0] for t in texts]
        out = Path.cwd() / self.inputs.out_name
        if len(set(headers)) == 1:  # the text as it is
            out.write_text(headers[0] + "\n" + "".join(t.split("\n", 1)[1] for t in texts))
        else:  # a part with extra columns: their union, in first-seen order
            rows = [row for p in self.inputs.in_tables for row in read_table(p)]
            out.write_text(tsv_text(rows, headers[0].split("\t")))
        self._results["out_diffusion"] = str(out)
        return runtime
