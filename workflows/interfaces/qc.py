"""QC stage: metrics of one acquisition and their pass/warn/fail flags (``_qc.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    traits)

from pipeline.metabolites import FIT_WINDOW_PPM, PEAK_WINDOWS_PPM
from pipeline.preprocess.steps import lowest_b_fid, motion_step
from pipeline.qc.transients import table_value

from ..fileio import (condition_labels, load_acquisition, optional_input, options_table,
                      read_json_file, read_table, to_float, write_json_file)
from .preprocess import preprocess_options


class _QCInputSpec(BaseInterfaceInputSpec):
    in_preproc = File(exists=True, mandatory=True)
    in_fit = File(exists=True, mandatory=True)
    in_transients = File(exists=True, mandatory=True)
    in_water = File(exists=True, desc="coil-combined water reference, optional")
    in_amplitudes = File(exists=True, desc="_amplitudes.tsv (for %CRLB), optional")
    in_fit_display = File(exists=True, desc="fit display table (pipeline.fitting.fit_display; "
                                            "SNR of the fitted Ins and Glx), optional")
    in_combined = File(exists=True, desc="coil-combined transients before alignment "
                                         "(similarity index), optional")
    in_reports = traits.List(File(exists=True), desc="JSON reports of earlier stages")
    fit_ppm_range = traits.List(traits.Float, list(FIT_WINDOW_PPM), usedefault=True)
    options = traits.Str("{}", usedefault=True, desc="[qc] section as JSON")
    preprocessing = traits.Str("{}", usedefault=True, desc="[preprocessing] as JSON (motion)")
    discovery_warnings = traits.List(traits.Str, desc="problems found when the inputs were "
                                     "discovered (e.g. a water reference expected, not found)")


class _QCOutputSpec(TraitedSpec):
    out_qc = File(exists=True)


class QualityMetrics(SimpleInterface):
    """QC metrics of one acquisition and their pass/warn/fail flags (``_qc.json``): SNR,
    linewidths, residual water, fit quality and %CRLB per condition; drift, rejections and the
    similarity of transients before/after alignment (from the workflow's transients and the
    shifts)."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        from pipeline.fitting.fit_display import load_fit_display
        from pipeline.qc import metrics
        from pipeline.qc.summary import (concentration_max_mm, condition_metrics,
                                         crlb_percent_max, judged,
                                         measured_or_reason, similarity_metrics, summarise)

        opts = options_table(self.inputs.options)
        noise_ppm = opts.get("noise_ppm") or None
        zf = int(opts.get("zero_fill", 8))
        pre = load_acquisition(self.inputs.in_preproc)
        fit = load_acquisition(self.inputs.in_fit)
        reports = {Path(p).name: read_json_file(p) for p in self.inputs.in_reports or []}
        rows = read_table(self.inputs.in_transients)
        rejected = by_condition(rows, pre, "rejected")
        acquired = by_condition(rows, pre, "acquired")
        before, after = _transients_before_after(self.inputs.in_combined,
                                                 self.inputs.in_transients, rows, pre)
        display_path = optional_input(self.inputs.in_fit_display)
        display = load_fit_display(display_path, pre.n_conditions, pre.n_points)
        per_condition, notes = [], []
        if display_path and not display:
            notes.append(f"{display_path}: the fit display does not match the data's conditions "
                         "or points; the SNR of Ins and Glx is not measured")
        for c, label in enumerate(condition_labels(pre)):
            values, why = condition_metrics(
                pre.fids[c].mean(axis=(0, 1)), pre.dwell_s, pre.cf_mhz,
                fit.fids[c].mean(axis=(0, 1)), tuple(self.inputs.fit_ppm_range), noise_ppm, zf,
                tnaa_ppm=tuple(opts.get("linewidth_tnaa_ppm", PEAK_WINDOWS_PPM["tNAA"])),
                tcr_ppm=tuple(opts.get("linewidth_tcr_ppm", PEAK_WINDOWS_PPM["tCr"])),
                snr_ppm=tuple(opts.get("snr_peak_ppm", PEAK_WINDOWS_PPM["tNAA"])),
                fitted_components=display.get(c, {}).get("components"))
            notes += [f"condition {c}: {w}" for w in why]
            if before is not None:
                values.update(similarity_metrics(before[c], after[c], rejected[c],
                                                 pre.dwell_s, pre.cf_mhz, acquired[c]))
            else:
                values.update(metrics.transient_counts(rejected[c], acquired[c]))
            per_condition.append({**label, **values})
        column = {k: [int(table_value(r, k)) for r in rows]
                 for k in ("condition", "rejected", "acquired")}
        drift = metrics.drift_statistics([to_float(r["freq_shift_hz"]) for r in rows],
                                         [to_float(r["phase_shift_deg"]) for r in rows],
                                         column["rejected"], column["condition"],
                                         column["acquired"])
        water_lw = None
        if optional_input(self.inputs.in_water):
            water = load_acquisition(self.inputs.in_water)
            water_lw, why = measured_or_reason(
                metrics.linewidth_hz, lowest_b_fid(water), water.dwell_s, water.cf_mhz,
                tuple(opts.get("linewidth_water_ppm", PEAK_WINDOWS_PPM["water"])), zf)
            if why:
                notes.append(f"water: {why}")
        amplitudes = optional_input(self.inputs.in_amplitudes)
        table = read_table(amplitudes) if amplitudes else []
        summary = summarise(per_condition, pre.b_values_s_mm2, drift, water_lw,
                            crlb_percent_max(table), concentration_max_mm(table))
        verdict = judged(summary, pre.cf_mhz, opts.get("thresholds") or None)
        summary.update({k: verdict[k] for k in ("qc_status", "qc_failed", "qc_warned")})
        motion = motion_step(pre.fids[:, 0, 0, :], pre, preprocess_options(
            self.inputs.preprocessing))
        flags = [f for r in reports.values() for f in r.get("flags", [])] + motion["flags"]
        conversion = reports.get("conversion.json", {})
        discovered = list(self.inputs.discovery_warnings or [])
        qc = {"summary": summary, "flags": verdict["flags"], "per_condition": per_condition,
              "drift": drift,
              "rejected_per_condition": metrics.rejection_counts(
                  column["condition"], column["rejected"], column["acquired"]),
              "not_acquired_per_condition": metrics.counts_per_condition(
                  column["condition"], np.logical_not(column["acquired"])),
              "flagged_conditions": reports.get("outliers.json", {}).get("flagged_conditions",
                                                                         []),
              "motion_check": motion,
              "b_value_units_source": conversion.get("b_value_units_source", ""),
              "discovery_warnings": discovered,
              "warnings": discovered + conversion.get("warnings", [])
              + reports.get("basis_report.json", {}).get("warnings", [])
              + reports.get("mm.json", {}).get("warnings", [])
              + reports.get("fit.json", {}).get("warnings", []) + flags + notes,
              "stages": reports}
        self._results["out_qc"] = write_json_file("qc.json", qc)
        return runtime


def _transient_matrix(rows: list[dict], key: str, kind=float) -> np.ndarray:
    """(n_conditions, n_transients) values of one ``_transients.tsv`` column, conditions as
    acquired (the table's own condition numbers)."""
    out = np.zeros((max(int(r["condition"]) for r in rows) + 1,
                    max(int(r["transient"]) for r in rows) + 1))
    for r in rows:
        out[int(r["condition"]), int(r["transient"])] = kind(table_value(r, key))
    return out


def _acquired_conditions(rows: list[dict], n_conditions: int) -> tuple[np.ndarray, np.ndarray]:
    """b-value (s/mm^2) and direction ((n, 3), NaN for "n/a") of each acquired condition of
    ``_transients.tsv``."""
    b = np.full(n_conditions, np.nan)
    directions = np.full((n_conditions, 3), np.nan)
    for r in rows:
        c = int(r["condition"])
        b[c] = to_float(r["b_value"])
        if r.get("direction") not in (None, "", "n/a"):
            directions[c] = [float(v) for v in str(r["direction"]).split(",")]
    return b, directions


def by_condition(rows: list[dict], pre, key: str) -> list[np.ndarray]:
    """The 0/1 column ``key`` of ``_transients.tsv`` (``rejected``, ``acquired``) as bool, one
    per transient, for each condition of the preprocessed ``pre``.
    After ``[preprocessing] powder_average`` ``pre`` holds one condition per shell while the
    transients table keeps the acquired conditions (13 against 5 shells on the demo's sub-02,
    an IndexError before): a shell then gets the transients of all its conditions, grouped as
    the averaging grouped them (``powder.acquisition_shells``)."""
    from pipeline.diffusion.powder import acquisition_shells

    matrix = _transient_matrix(rows, key, int).astype(bool)
    if matrix.shape[0] == pre.n_conditions:
        return list(matrix)
    b, directions = _acquired_conditions(rows, matrix.shape[0])
    labels = acquisition_shells(b, directions, pre.metadata).labels
    if labels.max() + 1 != pre.n_conditions:
        raise ValueError(f"the transients table has {matrix.shape[0]} conditions in "
                         f"{labels.max() + 1} shells, the preprocessed spectra "
                         f"{pre.n_conditions} conditions: the table does not belong to them")
    return [matrix[labels == k].ravel() for k in range(pre.n_conditions)]


ALIGNED_TRANSIENTS_NAME = "realigned.nii"
"""The aligned transients the outlier node writes beside its ``transients.tsv``."""


def _read_matching(path, n_conditions: int):
    """The transients at ``path`` (an ``Acquisition``), or None when absent, unreadable or
    not of ``n_conditions``."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    if path is None or not Path(path).is_file():
        return None
    try:
        acq = read_nifti_mrs(str(path))
    except (OSError, ValueError):
        return None
    return acq if acq.n_conditions == n_conditions else None


def _transients_before_after(combined, transients_tsv, rows: list[dict], pre):
    """Transients before and after alignment, coils combined, from the coil-combined input
    when connected, else from the aligned transients of the outlier node; (None, None)
    when neither is available."""
    from pipeline.qc.transients import before_after

    combined = optional_input(combined)
    if combined:
        transients, aligned = _read_matching(combined, pre.n_conditions), False
    else:
        beside = Path(transients_tsv).with_name(ALIGNED_TRANSIENTS_NAME)
        transients, aligned = _read_matching(beside, pre.n_conditions), True
    arrays = before_after(transients, rows, aligned)
    return (None, None) if arrays is None else arrays[:2]
