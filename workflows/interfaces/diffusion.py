"""Diffusion stage: models fitted to each metabolite's amplitude decay with b."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    traits)

from ..derivatives import DIFFUSION_COLUMNS
from ..fileio import load_acquisition, options_table, read_table, write_table


class _DiffusionInputSpec(BaseInterfaceInputSpec):
    in_amplitudes = File(exists=True, mandatory=True)
    in_preproc = File(exists=True, mandatory=True, desc="for directions and gradient timing")
    options = traits.Str("{}", usedefault=True, desc="[diffusion] section as JSON")


class _DiffusionOutputSpec(TraitedSpec):
    out_diffusion = File(exists=True)


class DiffusionModels(SimpleInterface):
    """Diffusion models fitted to each metabolite's amplitude decay with b."""

    input_spec = _DiffusionInputSpec
    output_spec = _DiffusionOutputSpec

    def _run_interface(self, runtime):
        from pipeline.diffusion import diffusion_table, gradient_timing_ms
        from pipeline.diffusion.powder import shell_hints
        from pipeline.diffusion.amplitudes import (amplitude_series, decaying,
                                                   modelled_metabolites, unmodelled_rows)

        opts = options_table(self.inputs.options)
        acq = load_acquisition(self.inputs.in_preproc)
        series = amplitude_series(read_table(self.inputs.in_amplitudes))
        names = modelled_metabolites(list(series), opts.get("metabolites", []))
        timing = gradient_timing_ms(acq.metadata, opts.get("gradient_duration_s") or None,
                                    opts.get("diffusion_time_s") or None)
        directional = bool(np.any(np.all(np.isfinite(acq.directions), axis=1)))
        models = tuple(opts.get("models", ("monoexponential",)))
        modelled = decaying(series, names, acq.b_values_s_mm2)
        rows = [row for n in names if n not in modelled for row in unmodelled_rows(n, models)]
        rows += diffusion_table(
            {n: series[n] for n in modelled}, acq.b_values_s_mm2,
            directions=acq.directions if directional else None,
            models=models, small_delta_ms=timing["small_delta_ms"],
            big_delta_ms=timing["big_delta_ms"],
            echo_time_ms=timing["echo_time_ms"], diffusion_time_ms=timing["diffusion_time_ms"],
            powder_method=opts.get("powder_method", "arithmetic"),
            uncertainty=opts.get("uncertainty", "jacobian"),
            n_draws=int(opts.get("n_draws", 100)), seed=int(opts.get("seed", 0)),
            **shell_hints(acq.metadata, acq.n_conditions))
        self._results["out_diffusion"] = write_table("diffusion.tsv", rows, DIFFUSION_COLUMNS)
        return runtime
