"""Workflow builders: one workflow per participant, one sub-workflow per svs acquisition.

    init_participant_wf(subject, acquisitions, config, output_dir, ...)
      └─ init_acquisition_wf(inputs, config, ...)   (one per svs)
           convert ─ coils ─ align ─ outliers ─ [eddy] ─ average ─ [residual_water] ─┐
           (water: convert_water ─ coils, eddy, qc)                                   │
           basis ─ macromolecules ─────────────────────────────── fit ◄───────────────┘
           fit ─┬─ diffusion ─┬─ derivatives (sink)
                ├─ qc ────────┤
                └─ figures ───┘
      └─ report (joins every acquisition's derivatives)

Nodes exchange files; option values are canonical JSON strings so reruns hit the cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

from nipype.interfaces import utility as niu  # noqa: E402
from nipype.pipeline import engine as pe  # noqa: E402

from bids_app.config import section_json  # noqa: E402

from . import interfaces as ifc  # noqa: E402

ACQ_OUTPUTS = ["preproc", "fit", "transients", "amplitudes", "diffusion", "qc", "index"]


def _node_name(text: str) -> str:
    """A nipype-safe identifier from BIDS entities (``acq-x_run-1`` -> ``acq_x_run_1``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def chronogram_paths(conversion: dict, bids_root) -> list[str]:
    """``[conversion] chronograms`` as absolute paths (relative ones from the BIDS root)."""
    root = Path(bids_root) if bids_root else Path.cwd()
    return [str(p if p.is_absolute() else root / p)
            for p in map(Path, conversion.get("chronograms", []))]


def quantification_options(config: dict, bids_root) -> dict:
    """``[quantification]`` with its tissue-fraction table as an absolute path (a relative one
    is taken from the BIDS root)."""
    options = dict(config.get("quantification", {}))
    table = options.get("tissue_fractions_file")
    if table:
        path = Path(table)
        options["tissue_fractions_file"] = str(path if path.is_absolute()
                                               else Path(bids_root or Path.cwd()) / path)
    return options


def init_acquisition_wf(inputs, config: dict, output_dir, basis_path=None,
                        basis_cache_dir: str = "", config_toml: str = "",
                        name: str | None = None) -> pe.Workflow:
    """Workflow for one svs acquisition (``inputs``: a ``discovery.AcquisitionInputs``).

    ``inputnode`` fields are filled from ``inputs``; ``outputnode`` gives the node-local
    result files and ``index`` (JSON of derivative paths written under ``output_dir``).
    Eddy-current correction exists only with a water reference, residual-water removal and
    figures only when configured, MM conversion only with an MM acquisition.
    """
    wf = pe.Workflow(name=name or _node_name(inputs.stem.replace(f"sub-{inputs.subject}_", ""))
                     + "_wf")
    conv_cfg, pre = config["conversion"], config["preprocessing"]
    pre_cfg = section_json(config, "preprocessing")
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["svs", "sidecar", "water", "water_sidecar", "mm", "mm_sidecar"]), name="inputnode")
    inputnode.inputs.svs = str(inputs.svs)
    inputnode.inputs.sidecar = json.dumps(inputs.sidecar, sort_keys=True)
    outputnode = pe.Node(niu.IdentityInterface(fields=ACQ_OUTPUTS), name="outputnode")

    convert = pe.Node(ifc.ConvertToCanonical(
        b_value_units=conv_cfg["b_value_units"], source_uri=inputs.uri(inputs.svs),
        chronograms=chronogram_paths(conv_cfg, inputs.bids_root),
        chronogram_sequence=conv_cfg.get("chronogram_sequence", "steam")), name="convert")
    coils = pe.Node(ifc.CombineCoils(options=pre_cfg), name="coils")
    align = pe.Node(ifc.AlignTransients(options=pre_cfg), name="align")
    outliers = pe.Node(ifc.RejectOutliers(options=pre_cfg), name="outliers")
    average = pe.Node(ifc.AverageTransients(options=pre_cfg), name="average")
    basis = pe.Node(ifc.PrepareBasis(basis_path=str(basis_path or ""),
                                     options=section_json(config, "basis"),
                                     cache_dir=basis_cache_dir), name="basis")
    mm = pe.Node(ifc.MacromoleculeBasis(options=section_json(config, "macromolecules"),
                                        echo_time_s=float(inputs.sidecar.get("EchoTime", 0.0))),
                 name="macromolecules")
    fit = pe.Node(ifc.FitSpectra(
        options=section_json(config, "fitting"),
        quantification=json.dumps(quantification_options(config, inputs.bids_root)),
        subject=inputs.subject, session=inputs.session or ""), name="fit")
    diffusion = pe.Node(ifc.DiffusionModels(options=section_json(config, "diffusion")),
                        name="diffusion")
    qc = pe.Node(ifc.QualityMetrics(
        options=section_json(config, "qc"), preprocessing=pre_cfg,
        fit_ppm_range=[float(v) for v in config["fitting"].get("ppm_range", [0.2, 4.2])]),
        name="qc")
    sink = pe.Node(ifc.WriteDerivatives(
        output_dir=str(output_dir), subject=inputs.subject, session=inputs.session or "",
        stem=inputs.stem, config_toml=config_toml), name="derivatives", run_without_submitting=True)

    report_sources = [(convert, "out_report"), (coils, "out_report"), (outliers, "out_report"),
                      (basis, "out_report"), (mm, "out_report"), (fit, "out_report")]
    wf.connect([
        (inputnode, convert, [("svs", "in_file"), ("sidecar", "sidecar")]),
        (convert, coils, [("out_file", "in_file")]),
        (align, outliers, [("out_file", "in_file"), ("out_shifts", "in_shifts")]),
        (outliers, average, [("out_transients", "in_transients")]),
        (convert, basis, [("out_file", "in_file")]),
        (basis, mm, [("out_basis", "in_basis")]),
        (mm, fit, [("out_basis", "in_basis")]),
        (fit, diffusion, [("out_amplitudes", "in_amplitudes")]),
        (fit, qc, [("out_fit", "in_fit"), ("out_amplitudes", "in_amplitudes")]),
        (coils, qc, [("out_file", "in_combined")]),
        (outliers, qc, [("out_transients", "in_transients")]),
        (fit, sink, [("out_fit", "fit"), ("out_amplitudes", "amplitudes"),
                     ("out_display", "fit_display")]),
        (outliers, sink, [("out_transients", "transients")]),
        (diffusion, sink, [("out_diffusion", "diffusion")]),
        (qc, sink, [("out_qc", "qc")]),
        (fit, outputnode, [("out_fit", "fit"), ("out_amplitudes", "amplitudes")]),
        (outliers, outputnode, [("out_transients", "transients")]),
        (diffusion, outputnode, [("out_diffusion", "diffusion")]),
        (qc, outputnode, [("out_qc", "qc")]),
        (sink, outputnode, [("out_index", "index")]),
    ])

    if inputs.water is not None:
        convert_water = _convert_companion(wf, inputnode, inputs, "water", conv_cfg)
        wf.connect([
            (convert_water, coils, [("out_file", "water_file")]),
            (coils, qc, [("out_water", "in_water")]),
            (coils, fit, [("out_water", "in_water")]),
        ])
    # Eddy currents are corrected before alignment (their apparent frequency shift, several Hz
    # at high b, is not drift); without a water reference alignment takes the combined coils.
    unaligned = (coils, "out_file")
    if inputs.water is not None and pre.get("ecc", True):
        eddy = pe.Node(ifc.EddyCurrentCorrect(options=pre_cfg), name="eddy_current")
        wf.connect([(coils, eddy, [("out_file", "in_file"), ("out_water", "water_file")])])
        unaligned = (eddy, "out_file")
        report_sources.append((eddy, "out_report"))
    wf.connect(*unaligned, align, "in_file")
    wf.connect(*unaligned, outliers, "in_combined")
    wf.connect(outliers, "out_file", average, "in_file")
    preproc = (average, "out_file")
    if pre.get("residual_water", True):
        water_removal = pe.Node(ifc.RemoveResidualWater(options=pre_cfg), name="residual_water")
        wf.connect(average, "out_file", water_removal, "in_file")
        preproc = (water_removal, "out_file")
        report_sources.append((water_removal, "out_report"))
    for node, field in ((fit, "in_file"), (diffusion, "in_preproc"), (qc, "in_preproc"),
                        (sink, "preproc"), (outputnode, "preproc")):
        wf.connect(*preproc, node, field)
    if config["report"].get("figures", True):
        figures = pe.Node(ifc.AcquisitionFigures(), name="figures")
        wf.connect([
            (fit, figures, [("out_fit", "in_fit"), ("out_amplitudes", "in_amplitudes"),
                            ("out_display", "in_fit_display")]),
            (outliers, figures, [("out_transients", "in_transients")]),
            (figures, sink, [("out_figures", "figures")]),
        ])
        wf.connect(*preproc, figures, "in_preproc")
    if inputs.mm is not None:
        convert_mm = _convert_companion(wf, inputnode, inputs, "mm", conv_cfg)
        wf.connect(convert_mm, "out_file", mm, "mm_file")
    reports = pe.Node(niu.Merge(len(report_sources)), name="stage_reports")
    for i, (node, field) in enumerate(report_sources, start=1):
        wf.connect(node, field, reports, f"in{i}")
    wf.connect(reports, "out", qc, "in_reports")
    return wf


def init_participant_wf(subject: str, acquisitions: list, config: dict, output_dir,
                        basis_path=None, basis_cache_dir: str = "", config_toml: str = "",
                        name: str | None = None) -> pe.Workflow:
    """One participant: an acquisition workflow per svs and a report joining them all."""
    if not acquisitions:
        raise ValueError(f"sub-{subject}: no svs acquisition found")
    wf = pe.Workflow(name=name or f"sub_{_node_name(subject)}_wf")
    outputnode = pe.Node(niu.IdentityInterface(fields=["report", "indexes"]), name="outputnode")
    merge = pe.Node(niu.Merge(len(acquisitions)), name="collect_derivatives",
                    run_without_submitting=True)
    report = pe.Node(ifc.ParticipantReport(output_dir=str(output_dir), subject=subject,
                                           options=section_json(config, "report")),
                     name="report")
    names = set()
    for i, inputs in enumerate(acquisitions, start=1):
        acq_name = _node_name(inputs.stem.replace(f"sub-{subject}_", "", 1)) + "_wf"
        while acq_name in names:
            acq_name = f"{acq_name}_{i}"
        names.add(acq_name)
        acq_wf = init_acquisition_wf(inputs, config, output_dir, basis_path, basis_cache_dir,
                                     config_toml, name=acq_name)
        wf.connect(acq_wf, "outputnode.index", merge, f"in{i}")
    wf.connect([
        (merge, report, [("out", "in_indexes")]),
        (report, outputnode, [("out_report", "report")]),
        (merge, outputnode, [("out", "indexes")]),
    ])
    return wf


def _convert_companion(wf, inputnode, inputs, kind: str, conv_cfg: dict):
    """Conversion node of the acquisition's water reference or MM spectrum (``kind`` "water"
    or "mm"), fed from the input node's ``<kind>`` and ``<kind>_sidecar`` fields."""
    path = getattr(inputs, kind)
    setattr(inputnode.inputs, kind, str(path))
    setattr(inputnode.inputs, f"{kind}_sidecar",
            json.dumps(getattr(inputs, f"{kind}_sidecar"), sort_keys=True))
    node = pe.Node(ifc.ConvertToCanonical(
        b_value_units=conv_cfg["b_value_units"], out_name=f"{kind}.nii",
        source_uri=inputs.uri(path)), name=f"convert_{kind}")
    wf.connect(inputnode, kind, node, "in_file")
    wf.connect(inputnode, f"{kind}_sidecar", node, "sidecar")
    return node
