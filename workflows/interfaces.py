"""One thin nipype interface per processing stage, each calling ``pipeline/`` functions.

Every interface reads its input files, calls the science core, and writes its outputs in the
node's working directory. Options arrive as canonical JSON strings (sorted keys) so that node
hashes, and therefore work-directory reuse, are deterministic.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from .fileio import (condition_labels, load_acquisition, read_json_file, read_table,
                     save_acquisition, to_float, write_json_file, write_table)


def _options(spec_value) -> dict:
    return json.loads(spec_value) if isdefined(spec_value) and spec_value else {}


def _optional(value):
    return value if isdefined(value) and value else None


# --- conversion ------------------------------------------------------------------------------

class _ConvertInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="input NIfTI-MRS (any header version)")
    sidecar = traits.Str("{}", usedefault=True, desc="BIDS sidecar as JSON")
    b_value_units = traits.Enum("auto", "s/mm2", "ms/um2", usedefault=True)
    out_name = traits.Str("converted.nii", usedefault=True)
    source_uri = traits.Str("", usedefault=True,
                            desc="BIDS URI of in_file, recorded instead of its absolute path")
    chronograms = traits.List(File(exists=True), desc="chronogram CSV per b > 0 condition")
    chronogram_sequence = traits.Str("steam", usedefault=True)


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


def _water_b0_fid(water):
    """Water reference of the lowest-b condition, averaged over transients: (coils, points)."""
    c = int(np.argmin(water.b_values_s_mm2))
    return water.fids[c].mean(axis=0)


POWDER_KEYS = ("powder_average", "powder_method")


def preprocess_options(spec_value):
    """``PreprocessOptions`` from the ``[preprocessing]`` JSON (powder keys are ours)."""
    from pipeline.preprocess.pipeline import PreprocessOptions

    table = {k: v for k, v in _options(spec_value).items() if k not in POWDER_KEYS}
    return PreprocessOptions.from_dict(table, "[preprocessing]")


def condition_text(acq, c: int) -> str:
    return (f"condition {c} (b={acq.b_values_s_mm2[c]:g} s/mm^2, direction "
            f"{acq.direction_labels()[c]})")


# --- coil combination ------------------------------------------------------------------------

class _CoilsInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    water_file = File(exists=True, desc="water reference (same coils, or combined), optional")
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


class _CoilsOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_water = File(desc="coil-combined water reference (when given)")
    out_report = File(exists=True, desc="JSON: coil weights and method")


class CombineCoils(SimpleInterface):
    """Noise-whitened matched-filter coil combination; weights from the b = 0 water
    reference when it has the same coils (applied to it as well), else from the data."""

    input_spec = _CoilsInputSpec
    output_spec = _CoilsOutputSpec

    def _run_interface(self, runtime):
        from pipeline.preprocess.coils import combine_coils

        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        water = load_acquisition(self.inputs.water_file) \
            if _optional(self.inputs.water_file) else None
        matching = water is not None and water.n_coils == acq.n_coils
        if water is not None and not matching and water.n_coils != 1:
            raise ValueError(f"{water.source}: {water.n_coils} coils, but {acq.source} has "
                             f"{acq.n_coils}")
        report = {"n_coils": acq.n_coils}
        if acq.n_coils == 1:
            combined, water_fids = acq.fids, None if water is None else water.fids
            details = "single receive channel (already combined): nothing to combine"
            report["weights_from"] = "none"
        else:
            reference = water.fids[int(np.argmin(water.b_values_s_mm2))] if matching else None
            result = combine_coils(acq.fids, reference, whiten=options.coil_whiten)
            combined = result.combined[:, :, None, :]
            water_fids = None if water is None else (
                np.einsum("k,...kn->...n", result.weights.conj(), water.fids)[:, :, None, :]
                if matching else water.fids)
            report.update(weights_from="water" if matching else "data",
                          weights=result.weights_table())
            details = (f"{acq.n_coils} coils, noise-whitened matched-filter weights from "
                       f"{'the b=0 water reference' if matching else 'the data'}")
        self._results["out_file"] = save_acquisition(
            acq.with_fids(combined), "coils.nii", "RF coil combination", details)
        if water is not None:
            self._results["out_water"] = save_acquisition(
                water.with_fids(water_fids), "water_coils.nii", "RF coil combination", details)
        self._results["out_report"] = write_json_file("coils.json", report)
        return runtime


# --- alignment -------------------------------------------------------------------------------

def _align(fids, acq, options, weights=None):
    """``align_conditions`` with the configured window and iterations."""
    from pipeline.preprocess.align import WATER_WINDOW_PPM, align_conditions

    window = WATER_WINDOW_PPM if options.align_reference == "water" \
        else options.align_ppm_range
    return align_conditions(fids, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                            ppm_range=window, n_iterations=options.align_iterations,
                            max_shift_hz=options.align_max_shift_hz, weights=weights,
                            n_model_iterations=options.align_model_iterations,
                            n_model_components=options.align_model_components,
                            align_means=options.align_means)


def _shift_rows(acq, freq_hz, phase_deg) -> list[dict]:
    return [{**label, "transient": t, "freq_shift_hz": float(freq_hz[c, t]),
             "phase_shift_deg": float(phase_deg[c, t])}
            for c, label in enumerate(condition_labels(acq)) for t in range(acq.n_transients)]


class _AlignInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


class _AlignOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_shifts = File(exists=True, desc="TSV: drift per transient")


SHIFT_COLUMNS = ["condition", "b_value", "direction", "transient", "freq_shift_hz",
                 "phase_shift_deg"]


class AlignTransients(SimpleInterface):
    """Frequency/phase registration of the transients within each condition (lowest b first,
    condition means aligned to each other)."""

    input_spec = _AlignInputSpec
    output_spec = _AlignOutputSpec

    def _run_interface(self, runtime):
        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        fids = acq.fids[:, :, 0, :]
        if options.align:
            results = _align(fids, acq, options)
            corrected = np.stack([r.corrected for r in results])
            freq = np.stack([r.freq_hz for r in results])
            phase = np.stack([r.phase_deg for r in results])
            details = (f"spectral registration per condition ({options.align_reference}, "
                       f"{list(options.align_ppm_range)} ppm), leave-one-out templates; "
                       f"condition means aligned: {options.align_means}")
        else:
            corrected, freq, phase = fids, np.zeros(fids.shape[:2]), np.zeros(fids.shape[:2])
            details = "disabled by configuration (shifts reported as 0)"
        self._results["out_file"] = save_acquisition(
            acq.with_fids(corrected[:, :, None, :]), "aligned.nii",
            "Frequency and phase correction", details)
        self._results["out_shifts"] = write_table("shifts.tsv", _shift_rows(acq, freq, phase),
                                                  SHIFT_COLUMNS)
        return runtime


# --- outlier removal -------------------------------------------------------------------------

class _OutliersInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="aligned transients")
    in_combined = File(exists=True, mandatory=True, desc="transients before alignment")
    in_shifts = File(exists=True, mandatory=True)
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


class _OutliersOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="transients re-aligned without the outliers")
    out_transients = File(exists=True, desc="the _transients.tsv table (shifts + rejected)")
    out_report = File(exists=True, desc="JSON: scores, flagged conditions")


class RejectOutliers(SimpleInterface):
    """Outlier transients per condition (a condition is flagged when too many go), then
    re-alignment with the outliers left out of the templates."""

    input_spec = _OutliersInputSpec
    output_spec = _OutliersOutputSpec

    def _run_interface(self, runtime):
        from bids_app.derivatives import TRANSIENTS_COLUMNS
        from pipeline.preprocess.outliers import detect_outliers

        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        rows = read_table(self.inputs.in_shifts)
        fids = acq.fids[:, :, 0, :]
        rejected = np.zeros(fids.shape[:2], bool)
        amplitude_z, misfit_z = np.zeros(fids.shape[:2]), np.zeros(fids.shape[:2])
        flags, flagged = [], []
        if options.outliers:
            for c in range(acq.n_conditions):
                result = detect_outliers(fids[c], acq.dwell_s, acq.cf_mhz,
                                         options.outlier_ppm_range, options.outlier_threshold,
                                         options.outlier_flag_fraction)
                rejected[c], amplitude_z[c], misfit_z[c] = (result.rejected, result.amplitude_z,
                                                             result.misfit_z)
                if result.flagged:
                    flagged.append(c)
                    flags.append(f"outliers: {condition_text(acq, c)}: "
                                 f"{100 * result.fraction_rejected:.0f} % of transients "
                                 f"rejected (> {100 * options.outlier_flag_fraction:.0f} %)")
        out, details = acq, "no transient rejected"
        if rejected.any() and options.align:
            combined = load_acquisition(self.inputs.in_combined)
            results = _align(combined.fids[:, :, 0, :], combined, options,
                             weights=(~rejected).astype(float))
            out = acq.with_fids(np.stack([r.corrected for r in results])[:, :, None, :])
            rows = _shift_rows(acq, np.stack([r.freq_hz for r in results]),
                               np.stack([r.phase_deg for r in results]))
            details = "re-aligned with the rejected transients left out of the templates"
        for row in rows:
            row["rejected"] = int(rejected[int(row["condition"]), int(row["transient"])])
        self._results["out_file"] = save_acquisition(
            out, "realigned.nii", "Outlier removal",
            f"{int(rejected.sum())} transient(s) rejected (robust z > "
            f"{options.outlier_threshold:g}); {details}")
        self._results["out_transients"] = write_table("transients.tsv", rows,
                                                      TRANSIENTS_COLUMNS)
        self._results["out_report"] = write_json_file("outliers.json", {
            "n_rejected": int(rejected.sum()), "flagged_conditions": flagged, "flags": flags,
            "rejected_per_condition": rejected.sum(axis=1).tolist(),
            "amplitude_z": amplitude_z.tolist(), "misfit_z": misfit_z.tolist()})
        return runtime


# --- eddy-current correction -----------------------------------------------------------------

class _EddyInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    water_file = File(exists=True, mandatory=True, desc="coil-combined water reference")
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


class _EddyOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_report = File(exists=True, desc="JSON: which water reference each condition used")


class EddyCurrentCorrect(SimpleInterface):
    """Klose correction before alignment, with the condition-matched water reference relative
    to the lowest-b one (the lowest-b one alone when the matched reference is missing or too
    noisy), so alignment does not take the eddy currents' frequency shift for drift."""

    input_spec = _EddyInputSpec
    output_spec = _EddyOutputSpec

    def _run_interface(self, runtime):
        from pipeline.preprocess.pipeline import eddy_correct_conditions

        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        water = load_acquisition(self.inputs.water_file)
        flags = []
        labels = [condition_text(acq, c) for c in range(acq.n_conditions)]
        corrected = eddy_correct_conditions(acq.fids[:, :, 0, :], water.fids[:, :, 0, :],
                                            water.b_values_s_mm2, acq, options, flags, labels)
        self._results["out_file"] = save_acquisition(
            acq.with_fids(corrected[:, :, None, :]), "eddy.nii", "Eddy current correction",
            "Klose, condition-matched water reference relative to the lowest-b water, before "
            f"alignment; {len(flags)} fallback(s) to the lowest-b reference")
        self._results["out_report"] = write_json_file("eddy.json", {"flags": flags})
        return runtime


# --- averaging and residual water ------------------------------------------------------------

class _AverageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    in_transients = File(exists=True, mandatory=True)
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


class _AverageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="spectra averaged per condition (.nii.gz)")


class AverageTransients(SimpleInterface):
    """Average the kept transients of each condition (optionally powder-average shells)."""

    input_spec = _AverageInputSpec
    output_spec = _AverageOutputSpec

    def _run_interface(self, runtime):
        from pipeline.preprocess.average import average_transients

        opts = _options(self.inputs.options)
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
            from pipeline.preprocess.average import powder_average

            shell_fids, shell_b = powder_average(averaged, acq.b_values_s_mm2,
                                                 opts.get("powder_method", "arithmetic"))
            out = acq.with_fids(shell_fids[:, None, None, :], b_values_s_mm2=shell_b,
                                directions=np.full((shell_b.size, 3), np.nan))
            details += f"; {opts.get('powder_method', 'arithmetic')} powder average per b-shell"
        self._results["out_file"] = save_acquisition(out, "averaged.nii.gz", "Signal averaging",
                                                     details)
        return runtime


class _WaterInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    options = traits.Str("{}", usedefault=True, desc="[preprocessing] section as JSON")


class _WaterOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the preprocessed spectra (.nii.gz)")
    out_report = File(exists=True)


class RemoveResidualWater(SimpleInterface):
    """HLSVD removal of the residual water components of each averaged spectrum."""

    input_spec = _WaterInputSpec
    output_spec = _WaterOutputSpec

    def _run_interface(self, runtime):
        from pipeline.preprocess.water import remove_residual_water

        options = preprocess_options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        cleaned, summary = remove_residual_water(
            acq.fids[:, 0, 0, :], acq.dwell_s, acq.cf_mhz, options.residual_water_window_ppm,
            options.residual_water_components)
        self._results["out_file"] = save_acquisition(
            acq.with_fids(cleaned[:, None, None, :]), "preproc.nii.gz",
            "Nuisance peak removal",
            f"HLSVD ({options.residual_water_components} components), components within "
            f"{list(options.residual_water_window_ppm)} ppm subtracted")
        self._results["out_report"] = write_json_file("residual_water.json", summary)
        return runtime


# --- basis and macromolecules ----------------------------------------------------------------

SEQUENCE_NAMES = {"steam": "steam", "stimulatedecho": "steam", "press": "press",
                  "slaser": "slaser", "semilaser": "slaser", "laser": "slaser", "se": "se",
                  "spinecho": "se", "fid": "fid", "pulseacquire": "fid", "stim": "steam"}


def sequence_from_metadata(metadata: dict, configured: str = "") -> str:
    """Simulation sequence from the configuration or the sidecar (``PulseSequenceType``, then
    ``SequenceName``); raises ValueError when neither names a known one."""
    candidates = [configured, metadata.get("PulseSequenceType", ""),
                  metadata.get("SequenceName", "")]
    for text in candidates:
        key = "".join(ch for ch in str(text).lower() if ch.isalnum())
        for name, sequence in SEQUENCE_NAMES.items():
            if key == name or (key and name in key and len(name) > 2):
                return sequence
    raise ValueError(f"cannot tell the pulse sequence from PulseSequenceType="
                     f"{metadata.get('PulseSequenceType')!r} / SequenceName="
                     f"{metadata.get('SequenceName')!r}; set [basis] sequence in the config "
                     "or pass --basis")


class _BasisInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="data whose grid the basis must match")
    basis_path = traits.Str("", usedefault=True, desc="user basis (file or folder); '' = simulate")
    options = traits.Str("{}", usedefault=True, desc="[basis] section as JSON")
    cache_dir = traits.Str("", usedefault=True)


class _BasisOutputSpec(TraitedSpec):
    out_basis = File(exists=True, desc="JSON basis on the data grid")
    out_report = File(exists=True)


class PrepareBasis(SimpleInterface):
    """The basis on the data grid: read (LCModel/.RAW/JSON) or simulated from the sidecar."""

    input_spec = _BasisInputSpec
    output_spec = _BasisOutputSpec

    def _run_interface(self, runtime):
        from pipeline.io.basis_formats import write_json_basis
        from pipeline.io.basis_tools import resample_basis

        opts = _options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_file)
        meta = acq.metadata
        if self.inputs.basis_path:
            from bids_app.input_checks import read_basis_file

            basis = read_basis_file(self.inputs.basis_path)
            origin = {"source": "file", "path": self.inputs.basis_path}
        else:
            from pipeline.simulate.basis_simulation import simulate_basis

            sequence = sequence_from_metadata(meta, opts.get("sequence", ""))
            mixing = meta.get("MixingTime")
            basis = simulate_basis(
                sequence, acq.cf_mhz, acq.dwell_s, acq.n_points,
                echo_time_s=float(meta.get("EchoTime", 0.0)),
                mixing_time_s=float(mixing) if mixing is not None and sequence == "steam"
                else None,
                metabolites=list(opts.get("metabolites") or []) or None,
                cache_dir=self.inputs.cache_dir or None, **opts.get("timings", {}))
            origin = {"source": "simulated", "sequence": sequence,
                      "echo_time_s": meta.get("EchoTime"), "mixing_time_s": mixing}
        exclude = set(opts.get("exclude", []))
        if exclude:
            basis = basis.subset([n for n in basis.names if n not in exclude])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                basis = resample_basis(basis, acq.dwell_s, acq.n_points, acq.cf_mhz,
                                       ref_ppm=acq.ref_ppm)
            except ValueError as exc:
                where = self.inputs.basis_path or "simulated basis"
                raise ValueError(f"{where}: cannot be used for {acq.source}: "
                                 f"{str(exc).removeprefix('resample_basis: ')}") from None
        origin["warnings"] = [str(w.message) for w in caught]
        out = str(Path.cwd() / "basis.json")
        write_json_basis(basis, out)
        self._results["out_basis"] = out
        self._results["out_report"] = write_json_file("basis_report.json", {
            **origin, "names": basis.names, "cf_mhz": basis.cf_mhz, "dwell_s": basis.dwell_s,
            "n_points": basis.n_points})
        return runtime


class _MMInputSpec(BaseInterfaceInputSpec):
    in_basis = File(exists=True, mandatory=True)
    mm_file = File(exists=True, desc="measured (metabolite-nulled) MM acquisition, optional")
    echo_time_s = traits.Float(0.0, usedefault=True)
    options = traits.Str("{}", usedefault=True, desc="[macromolecules] section as JSON")


class _MMOutputSpec(TraitedSpec):
    out_basis = File(exists=True)
    out_report = File(exists=True)


def mm_mode(requested: str, has_measured: bool, basis_has_mm: bool) -> str:
    """Resolve ``auto``: measured MM if acquired, else MM already in the basis, else
    parametric. Refuses ``measured`` without an MM acquisition."""
    if requested == "auto":
        return "measured" if has_measured else ("basis" if basis_has_mm else "parametric")
    if requested == "measured" and not has_measured:
        raise ValueError("[macromolecules] mode = 'measured' but the dataset has no MM "
                         "acquisition for this spectrum")
    if requested not in ("measured", "basis", "parametric", "none"):
        raise ValueError(f"[macromolecules] mode must be auto, measured, basis, parametric or "
                         f"none, got {requested!r}")
    return requested


def measured_mm_basis(path, basis):
    """One "MM" entry on the basis grid from a measured (metabolite-nulled) acquisition:
    lowest-b condition, coils combined, transients averaged."""
    from pipeline.io.basis_tools import resample_basis
    from pipeline.io.mm_spectra import mm_basis_from_fid
    from pipeline.preprocess.coils import combine_coils

    acq = load_acquisition(path)
    low = acq.fids[int(np.argmin(acq.b_values_s_mm2))]
    fid = combine_coils(low).combined.mean(axis=0) if acq.n_coils > 1 else low[:, 0].mean(axis=0)
    mm = mm_basis_from_fid(fid, acq.dwell_s, acq.cf_mhz, str(path))
    return resample_basis(mm, basis.dwell_s, basis.n_points, basis.cf_mhz, ref_ppm=basis.ref_ppm)


class MacromoleculeBasis(SimpleInterface):
    """Adds the macromolecule component(s) to the basis (measured, parametric or kept) and,
    on request, lipid components."""

    input_spec = _MMInputSpec
    output_spec = _MMOutputSpec

    def _run_interface(self, runtime):
        from pipeline.fitting.options import is_mm_name
        from pipeline.io.basis_formats import read_basis, write_json_basis

        opts = _options(self.inputs.options)
        basis = read_basis(self.inputs.in_basis)
        in_basis = [n for n in basis.names if is_mm_name(n)]
        mode = mm_mode(opts.get("mode", "auto"), bool(_optional(self.inputs.mm_file)),
                       bool(in_basis))
        metabolites = basis.subset([n for n in basis.names if not is_mm_name(n)])
        if mode == "basis":
            out, added = basis, in_basis
        elif mode == "none":
            out, added = metabolites, []
        else:
            if mode == "measured":
                mm = measured_mm_basis(self.inputs.mm_file, basis)
            else:
                from pipeline.simulate.macromolecules import parametric_mm_basis

                mm = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                                         echo_time_s=self.inputs.echo_time_s)
            added = list(mm.names)
            out = metabolites.with_entries(mm)
        if opts.get("lipids", False):
            from pipeline.simulate.macromolecules import LIPID_COMPONENTS, parametric_mm_basis

            lipids = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                                         components=LIPID_COMPONENTS)
            out = out.with_entries(lipids)
            added = added + list(lipids.names)
        path = str(Path.cwd() / "basis_mm.json")
        write_json_basis(out, path)
        self._results["out_basis"] = path
        self._results["out_report"] = write_json_file("mm.json", {"mode": mode,
                                                                  "mm_entries": added})
        return runtime


# --- fitting ---------------------------------------------------------------------------------

def tissue_fractions_for(table_path: str, subject: str, session: str) -> dict:
    """GM/WM/CSF volume fractions of one participant (and session) from a TSV with columns
    ``participant_id`` (``sub-<label>`` or ``<label>``), optional ``session_id``, ``gm``,
    ``wm``, ``csf``. Raises ``ValueError`` naming the file when it or the row is unusable."""
    from pipeline.fitting.quantification import TISSUE_CLASSES

    if not Path(table_path).is_file():
        raise ValueError(f"{table_path}: tissue-fraction table not found")
    rows = read_table(table_path)
    missing = [c for c in ("participant_id",) + TISSUE_CLASSES if rows and c not in rows[0]]
    if not rows or missing:
        raise ValueError(f"{table_path}: tissue-fraction table needs columns participant_id, "
                         f"gm, wm, csf (missing {missing or 'every row'})")

    def matches(row) -> bool:
        same_subject = row["participant_id"].removeprefix("sub-") == subject
        row_session = row.get("session_id", "").removeprefix("ses-")
        return same_subject and (not row_session or row_session == session)

    found = [r for r in rows if matches(r)]
    if not found:
        raise ValueError(f"{table_path}: no row for participant {subject!r}"
                         + (f" session {session!r}" if session else ""))
    values = {c: to_float(found[0][c]) for c in TISSUE_CLASSES}
    if not all(np.isfinite(v) and v >= 0 for v in values.values()) or sum(values.values()) <= 0:
        raise ValueError(f"{table_path}: participant {subject!r} has unusable fractions {values}")
    return values


def quantify_rows(rows: list[dict], opts: dict, water_path, basis, acq, subject: str,
                  session: str) -> tuple[list[dict], dict]:
    """``_amplitudes.tsv`` rows with water-scaled concentration columns when a water
    reference exists and ``[quantification] water_scaling`` is on; and a report of the inputs
    used, or of why nothing was scaled (a problem here skips the concentrations with a warning
    rather than losing the acquisition's other outputs)."""
    if not opts.get("water_scaling", True):
        return rows, {"water_scaling": "off ([quantification] water_scaling = false)"}
    if not water_path:
        return rows, {"water_scaling": "no water reference"}
    try:
        return _water_scaled(rows, opts, water_path, basis, acq, subject, session)
    except ValueError as exc:
        reason = f"water-scaled concentrations skipped: {exc}"
        return rows, {"water_scaling": reason, "flags": [reason]}


def _water_scaled(rows, opts, water_path, basis, acq, subject, session):
    from pipeline.fitting.quantification import (DEFAULT_TISSUE_FRACTIONS, basis_proton_scale,
                                                 concentration_columns, water_amplitude)
    from pipeline.qc.flags import finite_number

    fractions, source = dict(opts.get("tissue_fractions") or DEFAULT_TISSUE_FRACTIONS), "config"
    if opts.get("tissue_fractions_file"):
        fractions = tissue_fractions_for(opts["tissue_fractions_file"], subject, session)
        source = opts["tissue_fractions_file"]
    elif not opts.get("tissue_fractions"):
        source = "default (no segmentation): 60 % GM, 40 % WM"
    water = load_acquisition(water_path)
    water_signal = water_amplitude(_water_b0_fid(water).mean(axis=0), water.dwell_s)
    scale = basis_proton_scale(basis.names, basis.fids)
    scaling = dict(
        echo_time_s=float(acq.metadata.get("EchoTime") or 0.0),
        repetition_time_s=finite_number(acq.metadata.get("RepetitionTime")),
        metabolite_t2_s=opts.get("metabolite_t2_s") or None,
        metabolite_t1_s=opts.get("metabolite_t1_s") or None,
        tissue_fractions=fractions,
        effective_water_concentration_mm=opts.get("water_concentration_mm") or None,
        water_t2_s=opts.get("water_t2_s") or None, water_t1_s=opts.get("water_t1_s") or None,
        csf_corrected=bool(opts.get("csf_corrected", True)))
    report = {"water_scaling": "done", "water_signal": water_signal, "basis_scale": scale,
              "tissue_fractions_source": source, **scaling,
              "flags": quantification_warnings(scaling, acq.cf_mhz)}
    return concentration_columns(rows, water_signal, scale, **scaling), report


def quantification_warnings(scaling: dict, cf_mhz: float) -> list[str]:
    """What a user should know about the water-scaling inputs (shown in the report)."""
    notes = []
    from pipeline.units import field_strength_t

    field_t = field_strength_t(cf_mhz)
    if (not scaling["effective_water_concentration_mm"] and not scaling["water_t2_s"]
            and abs(field_t - 3.0) > 0.5):
        notes.append(f"water scaling at {field_t:.1f} T uses the 3 T water T2/T1 defaults; set "
                     "[quantification] water_t2_s and water_t1_s for this field")
    if not scaling["metabolite_t2_s"]:
        notes.append("concentrations are not corrected for metabolite T2 (set [quantification] "
                     "metabolite_t2_s)")
    return notes


class _FitInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="preprocessed spectra, one per condition")
    in_basis = File(exists=True, mandatory=True)
    in_water = File(exists=True, desc="coil-combined water reference (for water scaling)")
    options = traits.Str("{}", usedefault=True, desc="[fitting] section as JSON")
    quantification = traits.Str("{}", usedefault=True,
                                desc="[quantification] section as JSON")
    subject = traits.Str("", usedefault=True, desc="participant label (tissue-fraction table)")
    session = traits.Str("", usedefault=True, desc="session label (tissue-fraction table)")


class _FitOutputSpec(TraitedSpec):
    out_amplitudes = File(exists=True)
    out_fit = File(exists=True, desc="fitted model per condition (NIfTI-MRS)")
    out_report = File(exists=True, desc="JSON: per-condition fit parameters")
    out_display = File(exists=True, desc="baseline and main-metabolite spectra on the fitted "
                                         "window (bids_app.report.save_fit_display)")


class FitSpectra(SimpleInterface):
    """Linear-combination fit of every condition on one amplitude scale."""

    input_spec = _FitInputSpec
    output_spec = _FitOutputSpec

    def _run_interface(self, runtime):
        from bids_app.derivatives import AMPLITUDES_COLUMNS
        from bids_app.report import save_fit_display
        from pipeline.fitting.conditions import amplitudes_table, fit_conditions
        from pipeline.fitting.options import FitOptions
        from pipeline.fitting.quantification import ratio_to_tcr_column
        from pipeline.io.basis_formats import read_basis

        table = _options(self.inputs.options)
        if not table.get("metabolites"):
            table.pop("metabolites", None)
        options = FitOptions.from_dict(table)
        acq = load_acquisition(self.inputs.in_file)
        basis = read_basis(self.inputs.in_basis)
        fids = acq.fids.mean(axis=(1, 2))
        fits = fit_conditions(fids, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                              options)
        labels = condition_labels(acq)
        rows = [{**labels[int(r["condition"])],
                 **{k: v for k, v in r.items() if k != "b_value_s_mm2"}}
                for r in amplitudes_table(fits)]
        rows, quantification = quantify_rows(
            ratio_to_tcr_column(rows), _options(self.inputs.quantification),
            _optional(self.inputs.in_water), basis, acq, self.inputs.subject,
            self.inputs.session)
        self._results["out_amplitudes"] = write_table("amplitudes.tsv", rows,
                                                      AMPLITUDES_COLUMNS)
        fitted = np.stack([f.fitted_fid for f in fits.fits])[:, None, None, :]
        self._results["out_fit"] = save_acquisition(
            acq.with_fids(fitted), "fit.nii.gz", "Linear-combination fit",
            f"{fits.mode} fit of {len(basis.names)} basis spectra ({', '.join(basis.names)}); "
            f"ppm range {list(options.ppm_range)}, baseline {options.baseline}")
        self._results["out_display"] = str(save_fit_display(fits, Path.cwd() / "display.tsv"))
        self._results["out_report"] = write_json_file("fit.json", {
            "mode": fits.mode, "names": list(fits.names), "options": options.to_dict(),
            "quantification": quantification, "flags": quantification.get("flags", []),
            "conditions": [{
                **labels[c], "success": bool(f.success), "message": f.message,
                "sigma": float(f.sigma), "phase0_deg": float(f.phase0_deg),
                "phase1_deg_per_ppm": float(f.phase1_deg_per_ppm),
                "lorentz_fwhm_hz": f.lorentz_fwhm_hz, "gauss_fwhm_hz": f.gauss_fwhm_hz,
                "shift_hz": f.shift_hz} for c, f in enumerate(fits.fits)]})
        return runtime


# --- diffusion modelling ---------------------------------------------------------------------

class _DiffusionInputSpec(BaseInterfaceInputSpec):
    in_amplitudes = File(exists=True, mandatory=True)
    in_preproc = File(exists=True, mandatory=True, desc="for directions and gradient timing")
    options = traits.Str("{}", usedefault=True, desc="[diffusion] section as JSON")


class _DiffusionOutputSpec(TraitedSpec):
    out_diffusion = File(exists=True)


SUMS = ["tNAA", "tCr", "tCho", "Glx"]


def amplitude_series(rows: list[dict]) -> dict:
    """metabolite -> (amplitudes, crlbs) arrays in condition order."""
    series: dict = {}
    for row in sorted(rows, key=lambda r: int(r["condition"])):
        amps, crlbs = series.setdefault(row["metabolite"], ([], []))
        amps.append(to_float(row["amplitude"]))
        crlbs.append(to_float(row["crlb"]))
    return {k: (np.asarray(a, float), np.asarray(c, float)) for k, (a, c) in series.items()}


def modelled_metabolites(available: list[str], wanted: list[str]) -> list[str]:
    """The sums first, then the other metabolites (or exactly ``wanted`` when given)."""
    if wanted:
        missing = [m for m in wanted if m not in available]
        if missing:
            raise ValueError(f"[diffusion] metabolites {missing} are not among the fitted "
                             f"ones: {available}")
        return list(wanted)
    return [m for m in SUMS if m in available] + [m for m in available if m not in SUMS]


def unmodelled_rows(metabolite: str, models) -> list[dict]:
    """Rows (applicable 0) for a metabolite not fitted at the lowest b: no decay to model."""
    from pipeline.diffusion import MODELS

    return [{"metabolite": metabolite, "model": m, "parameter": p, "value": None, "unit": u,
             "std_error": None, "applicable": 0,
             "note": "amplitude at the lowest b is not positive: no decay to model"}
            for m in models if m in MODELS
            for p, u in zip(MODELS[m].parameter_names, MODELS[m].parameter_units)]


class DiffusionModels(SimpleInterface):
    """Diffusion models fitted to each metabolite's amplitude decay with b."""

    input_spec = _DiffusionInputSpec
    output_spec = _DiffusionOutputSpec

    def _run_interface(self, runtime):
        from bids_app.derivatives import DIFFUSION_COLUMNS
        from pipeline.diffusion import diffusion_table, gradient_timing_ms

        opts = _options(self.inputs.options)
        acq = load_acquisition(self.inputs.in_preproc)
        series = amplitude_series(read_table(self.inputs.in_amplitudes))
        names = modelled_metabolites(list(series), opts.get("metabolites", []))
        timing = gradient_timing_ms(acq.metadata, opts.get("gradient_duration_s") or None,
                                    opts.get("diffusion_time_s") or None)
        directional = bool(np.any(np.all(np.isfinite(acq.directions), axis=1)))
        models = tuple(opts.get("models", ("monoexponential",)))
        low_b = acq.b_values_s_mm2 == acq.b_values_s_mm2.min()
        decaying = [n for n in names if np.mean(series[n][0][low_b]) > 0]
        rows = [row for n in names if n not in decaying for row in unmodelled_rows(n, models)]
        rows += diffusion_table(
            {n: series[n] for n in decaying}, acq.b_values_s_mm2,
            directions=acq.directions if directional else None,
            models=models, small_delta_ms=timing["small_delta_ms"],
            big_delta_ms=timing["big_delta_ms"],
            echo_time_ms=timing["echo_time_ms"], diffusion_time_ms=timing["diffusion_time_ms"],
            powder_method=opts.get("powder_method", "arithmetic"),
            uncertainty=opts.get("uncertainty", "jacobian"),
            n_draws=int(opts.get("n_draws", 100)), seed=int(opts.get("seed", 0)))
        self._results["out_diffusion"] = write_table("diffusion.tsv", rows, DIFFUSION_COLUMNS)
        return runtime


# --- quality control -------------------------------------------------------------------------

class _QCInputSpec(BaseInterfaceInputSpec):
    in_preproc = File(exists=True, mandatory=True)
    in_fit = File(exists=True, mandatory=True)
    in_transients = File(exists=True, mandatory=True)
    in_water = File(exists=True, desc="coil-combined water reference, optional")
    in_amplitudes = File(exists=True, desc="_amplitudes.tsv (for %CRLB), optional")
    in_combined = File(exists=True, desc="coil-combined transients before alignment "
                                         "(similarity index), optional")
    in_reports = traits.List(File(exists=True), desc="JSON reports of earlier stages")
    fit_ppm_range = traits.List(traits.Float, [0.2, 4.2], usedefault=True)
    options = traits.Str("{}", usedefault=True, desc="[qc] section as JSON")
    preprocessing = traits.Str("{}", usedefault=True, desc="[preprocessing] as JSON (motion)")


class _QCOutputSpec(TraitedSpec):
    out_qc = File(exists=True)


def _safe(fn, *args, **kwargs):
    """A metric, or None with the reason when it cannot be measured on these data."""
    try:
        return fn(*args, **kwargs), None
    except ValueError as exc:
        return None, str(exc)


class QualityMetrics(SimpleInterface):
    """QC metrics of one acquisition and their pass/warn/fail flags (``_qc.json``): SNR,
    linewidths, residual water, fit quality and %CRLB per condition; drift, rejections and the
    similarity of transients before/after alignment (from the workflow's transients and the
    shifts)."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        from pipeline.qc import metrics
        from pipeline.qc.summary import (condition_metrics, crlb_percent_max, judged,
                                         similarity_metrics, summarise)

        opts = _options(self.inputs.options)
        noise_ppm = opts.get("noise_ppm") or None
        zf = int(opts.get("zero_fill", 8))
        pre = load_acquisition(self.inputs.in_preproc)
        fit = load_acquisition(self.inputs.in_fit)
        reports = {Path(p).name: read_json_file(p) for p in self.inputs.in_reports or []}
        rows = read_table(self.inputs.in_transients)
        rejected = _transient_matrix(rows, "rejected", pre, int).astype(bool)
        before, after = _transients_before_after(self.inputs.in_combined,
                                                 self.inputs.in_transients, rows, pre)
        per_condition, notes = [], []
        for c, label in enumerate(condition_labels(pre)):
            values, why = condition_metrics(
                pre.fids[c].mean(axis=(0, 1)), pre.dwell_s, pre.cf_mhz,
                fit.fids[c].mean(axis=(0, 1)), tuple(self.inputs.fit_ppm_range), noise_ppm, zf,
                tnaa_ppm=tuple(opts.get("linewidth_tnaa_ppm", (1.9, 2.1))),
                tcr_ppm=tuple(opts.get("linewidth_tcr_ppm", (2.95, 3.1))),
                snr_ppm=tuple(opts.get("snr_peak_ppm", (1.9, 2.1))))
            notes += [f"condition {c}: {w}" for w in why]
            if before is not None:
                values.update(similarity_metrics(before[c], after[c], rejected[c],
                                                 pre.dwell_s, pre.cf_mhz))
            else:
                values["rejected_fraction"] = float(rejected[c].mean())
            per_condition.append({**label, **values})
        drift = metrics.drift_statistics([to_float(r["freq_shift_hz"]) for r in rows],
                                         [to_float(r["phase_shift_deg"]) for r in rows],
                                         [int(r["rejected"]) for r in rows])
        water_lw = None
        if _optional(self.inputs.in_water):
            water = load_acquisition(self.inputs.in_water)
            water_lw, why = _safe(metrics.linewidth_hz, _water_b0_fid(water).mean(axis=0),
                                  water.dwell_s, water.cf_mhz,
                                  tuple(opts.get("linewidth_water_ppm", (4.2, 5.1))), zf)
            if why:
                notes.append(f"water: {why}")
        amplitudes = _optional(self.inputs.in_amplitudes)
        crlb_max = crlb_percent_max(read_table(amplitudes)) if amplitudes else None
        summary = summarise(per_condition, pre.b_values_s_mm2, drift, water_lw, crlb_max)
        verdict = judged(summary, pre.cf_mhz, opts.get("thresholds") or None)
        summary.update({k: verdict[k] for k in ("qc_status", "qc_failed", "qc_warned")})
        motion = motion_check(pre, preprocess_options(self.inputs.preprocessing))
        flags = [f for r in reports.values() for f in r.get("flags", [])] + motion["flags"]
        conversion = reports.get("conversion.json", {})
        qc = {"summary": summary, "flags": verdict["flags"], "per_condition": per_condition,
              "drift": drift,
              "rejected_per_condition": metrics.rejection_counts(
                  [int(r["condition"]) for r in rows], [int(r["rejected"]) for r in rows]),
              "flagged_conditions": reports.get("outliers.json", {}).get("flagged_conditions",
                                                                         []),
              "motion_check": motion,
              "b_value_units_source": conversion.get("b_value_units_source", ""),
              "warnings": conversion.get("warnings", []) + flags + notes,
              "stages": reports}
        self._results["out_qc"] = write_json_file("qc.json", qc)
        return runtime


def _transient_matrix(rows: list[dict], key: str, acq, kind=float) -> np.ndarray:
    """(n_conditions, n_transients) values of one ``_transients.tsv`` column."""
    out = np.zeros((acq.n_conditions, max(int(r["transient"]) for r in rows) + 1))
    for r in rows:
        out[int(r["condition"]), int(r["transient"])] = kind(to_float(r[key]))
    return out


def _transients_before_after(combined, transients_tsv, rows: list[dict], pre):
    """Transients before and after alignment, coils combined, from the coil-combined input
    when connected, else from the aligned transients of the outlier node; (None, None)
    when neither is available."""
    from bids_app.report import before_after, workflow_transients

    transients, aligned = workflow_transients(_optional(combined), transients_tsv,
                                              pre.n_conditions)
    arrays = before_after(transients, rows, aligned)
    return (None, None) if arrays is None else arrays[:2]


def motion_check(acq, options) -> dict:
    """MM (0.9 ppm) integral per condition against its expected slow decay; drops beyond the
    noise flag motion (needs more than one condition)."""
    from pipeline.preprocess.motion import mm_amplitude_check

    if not options.motion_check or acq.n_conditions < 2:
        return {"flags": []}
    check = mm_amplitude_check(acq.fids[:, 0, 0, :], acq.dwell_s, acq.cf_mhz,
                               acq.b_values_s_mm2,
                               reference_index=int(np.argmin(acq.b_values_s_mm2)),
                               n_sigma=options.motion_n_sigma, ppm_range=options.motion_ppm_range)
    flags = [f"motion: {condition_text(acq, c)}: MM (0.9 ppm) integral at "
             f"{100 * check.ratio[c]:.0f} % of the lowest b (z = {check.z[c]:.1f})"
             for c in np.flatnonzero(check.flagged)]
    return {"ratio": check.ratio.tolist(), "z": check.z.tolist(),
            "flagged": np.asarray(check.flagged).tolist(), "flags": flags}


# --- derivatives and report ------------------------------------------------------------------

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
    fit_display = File(exists=True, desc="fit display table (bids_app.report.save_fit_display)")


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
        from bids_app import derivatives as d
        from bids_app.report import fit_display_path

        i = self.inputs
        session = i.session or None
        index = {"subject": i.subject, "session": session, "stem": i.stem}
        for kind in ("preproc", "fit", "transients", "amplitudes", "diffusion", "qc"):
            dest = d.acquisition_path(i.output_dir, i.subject, session, i.stem, kind)
            d.copy_if_changed(getattr(i, kind), dest)
            index[kind] = str(dest)
        if isdefined(i.fit_display):
            dest = fit_display_path(index["fit"], i.stem)
            d.copy_if_changed(i.fit_display, dest)
            index["fit_display"] = str(dest)
        index["figures"] = {}
        for figure in i.figures if isdefined(i.figures) else []:
            name = Path(figure).stem
            dest = d.figure_path(i.output_dir, i.subject, i.stem, name)
            d.copy_if_changed(figure, dest)
            index["figures"][name] = str(dest)
        if i.config_toml:
            dest = d.acquisition_path(i.output_dir, i.subject, session, i.stem, "config")
            if not dest.is_file() or dest.read_text() != i.config_toml:
                d.atomic_write_text(dest, i.config_toml)
            index["config"] = str(dest)
        self._results["out_index"] = write_json_file("derivatives.json", index)
        return runtime


class _FiguresInputSpec(BaseInterfaceInputSpec):
    in_preproc = File(exists=True, mandatory=True)
    in_fit = File(exists=True, mandatory=True)
    in_amplitudes = File(exists=True, mandatory=True)
    in_transients = File(exists=True, mandatory=True)
    in_fit_display = File(exists=True, desc="baseline and metabolite traces "
                                            "(bids_app.report.save_fit_display), optional")


class _FiguresOutputSpec(TraitedSpec):
    out_figures = traits.List(File(exists=True))


class AcquisitionFigures(SimpleInterface):
    """Report figures of one acquisition drawn beside diffusion modelling: fits per
    condition and drift (the report draws the rest)."""

    input_spec = _FiguresInputSpec
    output_spec = _FiguresOutputSpec

    def _run_interface(self, runtime):
        from bids_app.report import FIGURES, make_figures

        i = self.inputs
        paths = make_figures(i.in_preproc, i.in_fit, i.in_amplitudes, i.in_transients,
                             {n: Path.cwd() / f"{n}.svg" for n in FIGURES},
                             fit_display=_optional(i.in_fit_display))
        self._results["out_figures"] = [str(paths[n]) for n in FIGURES]
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
        from bids_app.report import write_participant_report

        entries = [read_json_file(p) for p in self.inputs.in_indexes]
        self._results["out_report"] = str(write_participant_report(
            self.inputs.output_dir, self.inputs.subject, entries, _options(self.inputs.options)))
        return runtime
