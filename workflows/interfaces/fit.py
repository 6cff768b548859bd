"""Fit stage: the basis on the data grid (read or simulated), its macromolecule component,
and the linear-combination fit of every condition with water-scaled concentrations."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    traits)

from pipeline.basis_match import DEFAULT_TOLERANCE_MS
from pipeline.preprocess.steps import lowest_b_fid

from ..derivatives import amplitudes_columns
from ..fileio import (condition_labels, load_acquisition, optional_input, options_table,
                      save_acquisition, write_json_file, write_table)


# --- basis and macromolecules ----------------------------------------------------------------

class _BasisInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="data whose grid the basis must match")
    basis_path = traits.Str("", usedefault=True, desc="user basis (file or folder); '' = simulate")
    options = traits.Str("{}", usedefault=True, desc="[basis] section as JSON")
    cache_dir = traits.Str("", usedefault=True)
    data_source = traits.Str("", usedefault=True,
                             desc="how messages name the data file (default: in_file's path)")
    input_digests = traits.Str("{}", usedefault=True,
                               desc="JSON hashes of the named files it reads (cache key only)")


class _BasisOutputSpec(TraitedSpec):
    out_basis = File(exists=True, desc="JSON basis on the data grid")
    out_report = File(exists=True)


class PrepareBasis(SimpleInterface):
    """The basis on the data grid (the acquired points of zero-filled data, as preprocessing
    leaves them): read (LCModel/.RAW/JSON) or simulated from the sidecar."""

    input_spec = _BasisInputSpec
    output_spec = _BasisOutputSpec

    def _run_interface(self, runtime):
        from pipeline.basis_match import missing_singlets_warning
        from pipeline.io.basis_formats import write_json_basis
        from pipeline.io.basis_tools import resample_basis
        from pipeline.io.input_checks import read_basis_file
        from pipeline.metabolites import unmatched_names_note
        from pipeline.spectra import acquired_points

        opts = options_table(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        n_points = acquired_points(acq.fids)  # the grid preprocessing leaves (zero-fill cut)
        meta, notes = acq.metadata, []
        if self.inputs.basis_path:
            basis = read_basis_file(self.inputs.basis_path)
            origin = {"source": "file", "path": self.inputs.basis_path}
        else:
            from pipeline.simulate.basis_simulation import simulate_basis

            from pipeline.sequences import (basis_timings, identify_sequence,
                                            press_bandwidth_note)

            sequence, sequence_from = identify_sequence(meta, opts.get("sequence", ""))
            timing, notes = basis_timings(sequence, meta, opts.get("timings", {}))
            if sequence == "press" and "refocus_bandwidth_hz" not in timing:
                timing["refocus_bandwidth_hz"] = float(opts.get("press_refocus_bandwidth_hz", 0))
                notes += list(filter(None, [press_bandwidth_note(
                    timing["refocus_bandwidth_hz"], acq.cf_mhz)]))
            basis = simulate_basis(
                sequence, acq.cf_mhz, acq.dwell_s, n_points,
                metabolites=list(opts.get("metabolites") or []) or None,
                cache_dir=self.inputs.cache_dir or None, **timing)
            origin = {"source": "simulated", "sequence": sequence,
                      "sequence_from": sequence_from, "echo_time_s": timing["echo_time_s"],
                      "mixing_time_s": timing.get("mixing_time_s")}
        exclude = set(opts.get("exclude", []))
        notes += list(filter(None, [unmatched_names_note("[basis] exclude",
                                                         opts.get("exclude", []), basis.names)]))
        excluded = [n for n in basis.names if n in exclude]
        if exclude:
            basis = basis.subset([n for n in basis.names if n not in exclude])
        origin["identity"] = basis_identity(self.inputs.basis_path, basis, excluded)
        where = self.inputs.basis_path or "simulated basis"
        notes += list(filter(None, [missing_singlets_warning(basis.names, where)]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                basis = resample_basis(basis, acq.dwell_s, n_points, acq.cf_mhz,
                                       ref_ppm=acq.ref_ppm)
            except ValueError as exc:
                raise ValueError(f"{where}: cannot be used for {acq.source}: "
                                 f"{str(exc).removeprefix('resample_basis: ')}") from None
        if self.inputs.basis_path:  # after the grid: another field is the first problem
            origin, notes = _checked_against_data(basis, acq, opts, origin, notes,
                                                  self.inputs.data_source or str(acq.source))
        origin["warnings"] = notes + [str(w.message) for w in caught]
        out = str(Path.cwd() / "basis.json")
        write_json_basis(basis, out)
        self._results["out_basis"] = out
        self._results["out_report"] = write_json_file("basis_report.json", {
            **origin, "names": basis.names, "cf_mhz": basis.cf_mhz, "dwell_s": basis.dwell_s,
            "n_points": basis.n_points})
        return runtime


def basis_identity(basis_path: str, basis, excluded: list[str]) -> dict:
    """What identifies the basis a fit used, so the group level can tell two acquisitions'
    bases apart: a user file's name and SHA-256 of its content (a folder's files together)
    with the entries ``[basis] exclude`` removed, or, simulated, the SHA-256 of its settings
    and metabolites apart from the data's grid
    (:func:`pipeline.simulate.basis_simulation.simulation_settings_sha256`). A single
    ``.RAW`` or text file's digest covers the control files beside it that its grid may come
    from (:func:`pipeline.io.basis_formats.basis_files`, named in ``read_with``)."""
    from pipeline.io.basis_formats import basis_files, basis_sha256

    if basis_path:
        beside = [p.name for p in basis_files(basis_path)[1:]]
        return {"source": "file", "file": Path(basis_path).name,
                "sha256": basis_sha256(basis_path), "excluded": excluded,
                **({"read_with": beside} if beside else {})}
    from pipeline.simulate.basis_simulation import simulation_settings_sha256

    return {"source": "simulated",
            "settings_sha256": simulation_settings_sha256(basis.provenance, basis.names)}


def _checked_against_data(basis, acq, opts: dict, origin: dict, notes: list, data_name: str):
    """``origin`` with the basis' and the data's echo time and sequence, and ``notes`` with
    the warnings of :func:`pipeline.basis_match.check_basis_acquisition`; raises ValueError
    naming both files when the basis was made for another echo time or sequence."""
    from pipeline.basis_match import (DEFAULT_TOLERANCE_MS, basis_acquisition,
                                      check_basis_acquisition, data_acquisition)

    stated = basis_acquisition(basis.provenance)
    data = data_acquisition(acq.metadata, opts.get("sequence", ""))
    check = check_basis_acquisition(
        stated, data, str(origin["path"]), data_name,
        float(opts.get("echo_time_tolerance_ms", DEFAULT_TOLERANCE_MS)),
        bool(opts.get("check_sequence", True)))
    if check["refusals"]:
        raise ValueError("--basis refused: " + "; ".join(check["refusals"]))
    origin = {**origin, "echo_time_s": stated["echo_time_s"], "sequence": stated["sequence"],
              "mixing_time_s": stated["mixing_time_s"],
              "data_echo_time_s": data["echo_time_s"], "data_sequence": data["sequence"],
              "echo_time_difference_ms": check["echo_time_difference_ms"],
              "notes": check["notes"]}
    return origin, notes + check["warnings"]


class _MMInputSpec(BaseInterfaceInputSpec):
    in_basis = File(exists=True, mandatory=True)
    mm_file = File(exists=True, desc="measured (metabolite-nulled) MM acquisition, optional")
    in_file = File(exists=True, desc="metabolite data (canonical), whose echo time a measured "
                                     "MM acquisition is checked against")
    names = traits.Dict(traits.Str, traits.Str, desc="{'data': ..., 'mm': ...}: how messages "
                                                     "name the two files (default: their paths)")
    echo_time_s = traits.Float(0.0, usedefault=True)
    echo_time_tolerance_ms = traits.Float(DEFAULT_TOLERANCE_MS, usedefault=True,
                                          desc="[basis] echo_time_tolerance_ms")
    options = traits.Str("{}", usedefault=True, desc="[macromolecules] section as JSON")
    mm_source = traits.Str("", usedefault=True, desc="the measured MM input file (mm_file "
                                                     "converted from it; identity only)")


class _MMOutputSpec(TraitedSpec):
    out_basis = File(exists=True)
    out_report = File(exists=True)


class MacromoleculeBasis(SimpleInterface):
    """Adds the macromolecule component(s) to the basis (measured, parametric or kept) and,
    on request, lipid components."""

    input_spec = _MMInputSpec
    output_spec = _MMOutputSpec

    def _run_interface(self, runtime):
        from pipeline.fitting.mm_basis import measured_mm_basis, mm_mode
        from pipeline.fitting.options import is_mm_name
        from pipeline.io.basis_formats import read_basis, write_json_basis

        opts = options_table(self.inputs.options)
        basis = read_basis(self.inputs.in_basis)
        in_basis = [n for n in basis.names if is_mm_name(n)]
        mode = mm_mode(opts.get("mode", "auto"), bool(optional_input(self.inputs.mm_file)),
                       bool(in_basis), str(basis.provenance.get("source") or "the basis"))
        metabolites = basis.subset([n for n in basis.names if not is_mm_name(n)])
        times, notes = {}, []
        if mode == "basis":
            out, added = basis, in_basis
        elif mode == "none":
            out, added = metabolites, []
        else:
            if mode == "measured":
                mm_acq = load_acquisition(self.inputs.mm_file)
                times, notes = self._measured_echo_times(mm_acq)
                mm = measured_mm_basis(mm_acq, basis, str(self.inputs.mm_file))
            else:
                from pipeline.simulate.macromolecules import parametric_mm_basis

                mm = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                                         echo_time_s=self.inputs.echo_time_s)
            added = list(mm.names)
            out = metabolites.with_entries(mm)
        if opts.get("lipids", False):
            from pipeline.simulate.macromolecules import with_lipids

            before = set(out.names)
            out = with_lipids(out)
            added = added + [n for n in out.names if n not in before]
        path = str(Path.cwd() / "basis_mm.json")
        write_json_basis(out, path)
        self._results["out_basis"] = path
        measured = (self.inputs.mm_source or self.inputs.mm_file) if mode == "measured" else ""
        self._results["out_report"] = write_json_file("mm.json", {
            "mode": mode, "mm_entries": added, **times, "warnings": notes,
            "identity": mm_identity(mode, measured, bool(opts.get("lipids", False)))})
        return runtime

    def _measured_echo_times(self, mm_acq) -> tuple[dict, list]:
        """Echo times (s) of the metabolite data and the measured MM acquisition, and a
        warning naming both files when they differ beyond the tolerance."""
        from pipeline.basis_match import mm_echo_time_warning, seconds
        from pipeline.io.input_checks import header_extension

        data_path = optional_input(self.inputs.in_file)  # its header only: no data read
        data_te = seconds(header_extension(data_path).get("EchoTime")) if data_path else None
        mm_te = seconds(mm_acq.metadata.get("EchoTime"))
        names = dict(self.inputs.names or {})
        warning = mm_echo_time_warning(mm_te, data_te, names.get("mm", str(self.inputs.mm_file)),
                                       names.get("data", str(data_path)),
                                       self.inputs.echo_time_tolerance_ms)
        return ({"data_echo_time_s": data_te, "mm_echo_time_s": mm_te},
                list(filter(None, [warning])))


def mm_identity(mode: str, measured_path: str, lipids: bool) -> dict:
    """What identifies the macromolecule model a fit used, so the group level can tell two
    acquisitions' apart: the mode (measured, basis, parametric, none), whether lipid
    components were added, and for a measured MM the input file's name and SHA-256."""
    from pipeline.io.files import file_sha256

    identity = {"mode": mode, "lipids": bool(lipids)}
    if measured_path:
        identity.update(file=Path(measured_path).name, sha256=file_sha256(measured_path))
    return identity


# --- fitting ---------------------------------------------------------------------------------

class _FitInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="preprocessed spectra, one per condition")
    in_basis = File(exists=True, mandatory=True)
    in_water = File(exists=True, desc="coil-combined water reference (for water scaling)")
    options = traits.Str("{}", usedefault=True, desc="[fitting] section as JSON")
    quantification = traits.Str("{}", usedefault=True,
                                desc="[quantification] section as JSON")
    subject = traits.Str("", usedefault=True, desc="participant label (tissue-fraction table)")
    session = traits.Str("", usedefault=True, desc="session label (tissue-fraction table)")
    input_digests = traits.Str("{}", usedefault=True,
                               desc="JSON hashes of the named files it reads (cache key only)")


class _FitOutputSpec(TraitedSpec):
    out_amplitudes = File(exists=True)
    out_covariance = File(exists=True, desc="amplitude covariance across conditions "
                                            "(pipeline.fitting.amplitude_covariance)")
    out_fit = File(exists=True, desc="fitted model per condition (NIfTI-MRS)")
    out_report = File(exists=True, desc="JSON: per-condition fit parameters")
    out_display = File(exists=True, desc="baseline and main-metabolite spectra on the fitted "
                                         "window (pipeline.fitting.fit_display)")


class FitSpectra(SimpleInterface):
    """Linear-combination fit of every condition on one amplitude scale."""

    input_spec = _FitInputSpec
    output_spec = _FitOutputSpec

    def _run_interface(self, runtime):
        from pipeline.fitting.conditions import (absent_mm_flags, amplitudes_table, bound_flags,
                                                  fit_conditions, prior_flags,
                                                  unmeasured_entries)
        from pipeline.fitting.amplitude_covariance import (COVARIANCE_COLUMNS,
                                                           amplitude_covariance_rows)
        from pipeline.fitting.fit_display import fit_display_text
        from pipeline.fitting.options import FitOptions
        from pipeline.fitting.quantification import ratio_to_tcr_column
        from pipeline.fitting.water_scaling import quantify_rows
        from pipeline.io.basis_formats import read_basis

        table = options_table(self.inputs.options)
        if not table.get("metabolites"):
            table.pop("metabolites", None)
        options = FitOptions.from_dict(table)
        acq = load_acquisition(self.inputs.in_file)
        basis = read_basis(self.inputs.in_basis)
        fids = acq.fids.mean(axis=(1, 2))
        with warnings.catch_warnings(record=True) as caught:  # e.g. basis entries dropped
            warnings.simplefilter("always", UserWarning)
            fits = fit_conditions(fids, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                                  options, directions=acq.directions)
        fit_warnings = list(dict.fromkeys(str(w.message) for w in caught
                                          if issubclass(w.category, UserWarning)))
        labels = condition_labels(acq)
        rows = [{**labels[int(r["condition"])],
                 **{k: v for k, v in r.items() if k != "b_value_s_mm2"}}
                for r in amplitudes_table(fits)]
        water_path = optional_input(self.inputs.in_water)
        water = load_acquisition(water_path) if water_path else None
        rows, quantification = quantify_rows(
            ratio_to_tcr_column(rows), options_table(self.inputs.quantification),
            None if water is None else lowest_b_fid(water),
            None if water is None else water.dwell_s, basis, acq.metadata, acq.cf_mhz,
            self.inputs.subject, self.inputs.session,
            None if water is None else water.metadata)
        self._results["out_amplitudes"] = write_table("amplitudes.tsv", rows,
                                                      amplitudes_columns(rows))
        self._results["out_covariance"] = write_table(
            "amplitude_covariance.tsv", amplitude_covariance_rows(fits), COVARIANCE_COLUMNS)
        fitted = np.stack([f.fitted_fid for f in fits.fits])[:, None, None, :]
        self._results["out_fit"] = save_acquisition(
            acq.with_fids(fitted), "fit.nii.gz", "Linear-combination fit",
            f"{fits.mode} fit of {len(basis.names)} basis spectra ({', '.join(basis.names)}); "
            f"ppm range {list(options.ppm_range)}, baseline {fits.extra['baseline']['kind']}")
        display = Path.cwd() / "display.tsv"
        display.write_text(fit_display_text(fits))
        self._results["out_display"] = str(display)
        def condition_text(c):
            return f"condition {c} (b = {labels[c]['b_value']:g} s/mm^2)"

        self._results["out_report"] = write_json_file("fit.json", {
            "mode": fits.mode, "names": list(fits.names), "options": options.to_dict(),
            "options_used": fits.extra["options_used"],
            "baseline": fits.extra["baseline"],
            "basis_without_water_lines_ppm": fits.extra.get("basis_without_water_lines_ppm", []),
            "fid_delay_points": int(fits.extra.get("fid_delay_points", 0)),
            "quantification": quantification,
            "flags": (quantification.get("flags", []) + bound_flags(fits, condition_text)
                      + prior_flags(fits, condition_text) + absent_mm_flags(fits)),
            "warnings": fit_warnings,
            "unmeasured_entries": unmeasured_entries(fits.fits[0]),
            "conditions": [{
                **labels[c], "success": bool(f.success), "message": f.message,
                "sigma": float(f.sigma), "phase0_deg": float(f.phase0_deg),
                "phase1_deg_per_ppm": float(f.phase1_deg_per_ppm),
                "lorentz_fwhm_hz": f.lorentz_fwhm_hz, "gauss_fwhm_hz": f.gauss_fwhm_hz,
                "shift_hz": f.shift_hz, "at_bounds": list(f.at_bounds),
                "n_restarts": int(f.extra.get("n_restarts", 0)),
                "priors": f.extra.get("priors", {"ratio": [], "mm_shape_sd": 0.0}),
                "voigt_fit_quality": f.extra.get("voigt_fit_quality"),
                "lineshape_kernel_fwhm_hz": f.extra.get("lineshape_kernel_fwhm_hz"),
                "baseline_stiffness_chosen": f.extra.get("baseline_stiffness"),
                "decay_constraint": f.extra.get("decay_constraint", "none"),
                "decay_constraint_series": f.extra.get("decay_constraint_series", 0),
                "frames": f.extra.get("frames"), "frame_test": f.extra.get("frame_test"),
                "prior_variance_share": {k: round(v, 3) for k, v in
                                         f.extra.get("prior_variance_share", {}).items() if v > 0}}
                for c, f in enumerate(fits.fits)]})
        return runtime
