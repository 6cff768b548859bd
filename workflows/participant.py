"""Workflow builders: one workflow per participant, one per svs acquisition, and inside each
acquisition one nested workflow per stage (as in the nipreps)::

    init_participant_wf(subject, acquisitions, config, output_dir, ...)
      └─ init_acquisition_wf(inputs, config, ...)          (one per svs)
           convert_wf   convert, [convert_water], [convert_mm]
           preproc_wf   coils ─ [eddy_current] ─ align ─ outliers ─ average ─ [residual_water]
           fit_wf       basis ─ macromolecules ─ fit
           diffusion_wf diffusion, diffusion_2 (metabolites shared) ─ diffusion_rows
           qc_wf        qc (with the stages' reports)
           derivatives (sink), [preproc_figures, figures, decay_figures]
      └─ [report] (joins every acquisition's derivatives)

The figures and report nodes belong to the app: their interfaces are passed in
(``figures_interface``, ``report_interface``), so this package never imports ``bids_app``.
Nodes exchange files; option values are canonical JSON strings so reruns hit the cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

from nipype.interfaces import utility as niu  # noqa: E402
from nipype.pipeline import engine as pe  # noqa: E402

from pipeline.io.echo_series import stated_echo_time_s  # noqa: E402
from pipeline.metabolites import FIT_WINDOW_PPM  # noqa: E402

from . import interfaces as ifc  # noqa: E402

ACQ_OUTPUTS = ["preproc", "fit", "transients", "amplitudes", "diffusion", "qc", "index"]
PREPROC_OUTPUTS = ["preproc", "transients", "combined", "water", "coils_report",
                   "outliers_report", "eddy_report", "water_report"]
FIT_OUTPUTS = ["fit", "amplitudes", "covariance", "display", "basis_report", "mm_report", "fit_report"]


def section_json(config: dict, section: str) -> str:
    """One section as canonical JSON (sorted keys): a deterministic nipype node input."""
    return json.dumps(config.get(section, {}), sort_keys=True)


def _node_name(text: str) -> str:
    """A nipype-safe identifier from BIDS entities (``acq-x_run-1`` -> ``acq_x_run_1``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def participant_wf_name(subject: str) -> str:
    """Name of a participant's workflow (``sub_<label>_wf``)."""
    return f"sub_{_node_name(subject)}_wf"


def acquisition_wf_names(subject: str, acquisitions) -> list[str]:
    """Name of each acquisition's workflow, in order: its BIDS entities after ``sub-<label>_``
    made nipype-safe, plus ``_wf``; a name already taken gets the acquisition's 1-based
    position appended. The app reads these names back from crash files."""
    names: list[str] = []
    for i, inputs in enumerate(acquisitions, start=1):
        name = _node_name(inputs.stem.replace(f"sub-{subject}_", "", 1)) + "_wf"
        while name in names:
            name = f"{name}_{i}"
        names.append(name)
    return names


def _identity(fields: list[str], name: str) -> pe.Node:
    return pe.Node(niu.IdentityInterface(fields=fields), name=name)


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


DIGEST_READERS = {"convert": ("conversion.",), "basis": ("basis",),
                  "fit": ("quantification.",)}
"""Node name (in its stage workflow) -> prefixes of the ``input_digests`` keys naming the
files it reads."""


def key_named_files(stages: list, input_digests: str) -> None:
    """Give each node that reads a configuration-named file (tissue table, chronograms, user
    basis) the content hashes of those files as an input, so a changed file reruns it (nipype
    hashes a path given inside a JSON option, or a folder, by name only). ``stages``: the
    stage workflows holding those nodes; ``input_digests``:
    canonical JSON ``{"section.key[i]" or "basis": sha256}`` (``bids_app.config``)."""
    digests = json.loads(input_digests or "{}")
    for node_name, prefixes in DIGEST_READERS.items():
        for stage in stages:
            node = stage.get_node(node_name)
            if node is None:
                continue
            node.inputs.input_digests = json.dumps(
                {k: v for k, v in digests.items() if k.startswith(prefixes)}, sort_keys=True)


# --- stages ----------------------------------------------------------------------------------

def init_convert_wf(inputs, conv_cfg: dict, name: str = "convert_wf") -> pe.Workflow:
    """Conversion of the svs and, when present, its water reference and MM spectrum (a water
    reference holding an EchoTime series is read at the svs's TE: ``pipeline.io.echo_series``).

    inputnode: svs, sidecar, water, water_sidecar, mm, mm_sidecar (paths, sidecar JSON);
    outputnode: svs, water, mm (canonical NIfTI-MRS), report (conversion JSON).
    """
    wf = pe.Workflow(name=name)
    inputnode = _identity(["svs", "sidecar", "water", "water_sidecar", "mm", "mm_sidecar"],
                          "inputnode")
    outputnode = _identity(["svs", "water", "mm", "report"], "outputnode")
    dim_roles = json.dumps(conv_cfg.get("dim_roles", {}), sort_keys=True)
    convert = pe.Node(ifc.ConvertToCanonical(
        b_value_units=conv_cfg["b_value_units"], source_uri=inputs.uri(inputs.svs),
        chronograms=chronogram_paths(conv_cfg, inputs.bids_root),
        chronogram_sequence=conv_cfg.get("chronogram_sequence", "steam"),
        chronogram_pulse_indices=[int(i) for i in conv_cfg.get("chronogram_pulse_indices", [])],
        chronogram_assignment=conv_cfg.get("chronogram_assignment", "auto"),
        chronogram_sample_interval_s=float(conv_cfg.get("chronogram_sample_interval_s", 6.4e-6)),
        dim_roles=dim_roles), name="convert")
    wf.connect([
        (inputnode, convert, [("svs", "in_file"), ("sidecar", "sidecar")]),
        (convert, outputnode, [("out_file", "svs"), ("out_report", "report")]),
    ])
    for kind in ("water", "mm"):
        path = getattr(inputs, kind)
        if path is None:
            continue
        node = pe.Node(ifc.ConvertToCanonical(
            b_value_units=conv_cfg["b_value_units"], out_name=f"{kind}.nii",
            source_uri=inputs.uri(path), dim_roles=dim_roles), name=f"convert_{kind}")
        data_echo_time_s = stated_echo_time_s(inputs.svs, inputs.sidecar) \
            if kind == "water" else None
        if data_echo_time_s is not None:
            node.inputs.water_for_echo_time_s = data_echo_time_s
        wf.connect([(inputnode, node, [(kind, "in_file"), (f"{kind}_sidecar", "sidecar")]),
                    (node, outputnode, [("out_file", kind)])])
    return wf


def init_preproc_wf(pre: dict, has_water: bool, name: str = "preproc_wf",
                    data_source: str = "", water_source: str = "") -> pe.Workflow:
    """Preprocessing of one acquisition (``pre``: the ``[preprocessing]`` table;
    ``data_source``/``water_source``: the user's data and water files, as flags name them).

    Eddy currents are corrected before alignment (their apparent frequency shift, several Hz
    at high b, is not drift), only with a water reference; without one alignment takes the
    combined coils. inputnode: svs, water (canonical); outputnode: PREPROC_OUTPUTS.
    """
    wf = pe.Workflow(name=name)
    pre_cfg = json.dumps(pre, sort_keys=True)
    inputnode = _identity(["svs", "water"], "inputnode")
    outputnode = _identity(PREPROC_OUTPUTS, "outputnode")
    coils = pe.Node(ifc.CombineCoils(options=pre_cfg, source_name=data_source,
                                     water_source_name=water_source), name="coils")
    align = pe.Node(ifc.AlignTransients(options=pre_cfg), name="align")
    outliers = pe.Node(ifc.RejectOutliers(options=pre_cfg), name="outliers")
    average = pe.Node(ifc.AverageTransients(options=pre_cfg), name="average")
    wf.connect([
        (inputnode, coils, [("svs", "in_file")]),
        (align, outliers, [("out_file", "in_file"), ("out_shifts", "in_shifts")]),
        (outliers, average, [("out_file", "in_file"), ("out_transients", "in_transients")]),
        (coils, outputnode, [("out_file", "combined"), ("out_report", "coils_report")]),
        (outliers, outputnode, [("out_transients", "transients"),
                                ("out_report", "outliers_report")]),
    ])
    unaligned = (coils, "out_file")
    if has_water:
        wf.connect([(inputnode, coils, [("water", "water_file")]),
                    (coils, outputnode, [("out_water", "water")])])
        if pre.get("ecc", True):
            eddy = pe.Node(ifc.EddyCurrentCorrect(options=pre_cfg), name="eddy_current")
            wf.connect([(coils, eddy, [("out_file", "in_file"), ("out_water", "water_file")]),
                        (eddy, outputnode, [("out_report", "eddy_report")])])
            unaligned = (eddy, "out_file")
    wf.connect(*unaligned, align, "in_file")
    wf.connect(*unaligned, outliers, "in_combined")
    preproc = (average, "out_file")
    if pre.get("residual_water", True):
        water_removal = pe.Node(ifc.RemoveResidualWater(options=pre_cfg), name="residual_water")
        wf.connect([(average, water_removal, [("out_file", "in_file")]),
                    (water_removal, outputnode, [("out_report", "water_report")])])
        preproc = (water_removal, "out_file")
    wf.connect(*preproc, outputnode, "preproc")
    return wf


def init_fit_wf(inputs, config: dict, basis_path=None, basis_cache_dir: str = "",
                name: str = "fit_wf") -> pe.Workflow:
    """Basis on the data grid, its macromolecule component, and the fit of every condition.

    inputnode: svs (canonical, for the grid), preproc, water (coil-combined), mm;
    outputnode: FIT_OUTPUTS.
    """
    wf = pe.Workflow(name=name)
    inputnode = _identity(["svs", "preproc", "water", "mm"], "inputnode")
    outputnode = _identity(FIT_OUTPUTS, "outputnode")
    basis = pe.Node(ifc.PrepareBasis(basis_path=str(basis_path or ""),
                                     options=section_json(config, "basis"),
                                     cache_dir=basis_cache_dir,
                                     data_source=inputs.uri(inputs.svs)), name="basis")
    mm = pe.Node(ifc.MacromoleculeBasis(
        options=section_json(config, "macromolecules"),
        echo_time_s=float(inputs.sidecar.get("EchoTime", 0.0)),
        echo_time_tolerance_ms=float(config["basis"]["echo_time_tolerance_ms"])),
        name="macromolecules")
    fit = pe.Node(ifc.FitSpectra(
        options=section_json(config, "fitting"),
        quantification=json.dumps(quantification_options(config, inputs.bids_root)),
        subject=inputs.subject, session=inputs.session or ""), name="fit")
    wf.connect([
        (inputnode, basis, [("svs", "in_file")]),
        (basis, mm, [("out_basis", "in_basis")]),
        (mm, fit, [("out_basis", "in_basis")]),
        (inputnode, fit, [("preproc", "in_file")]),
        (basis, outputnode, [("out_report", "basis_report")]),
        (mm, outputnode, [("out_report", "mm_report")]),
        (fit, outputnode, [("out_fit", "fit"), ("out_amplitudes", "amplitudes"),
                           ("out_covariance", "covariance"),
                           ("out_display", "display"), ("out_report", "fit_report")]),
    ])
    if inputs.water is not None:
        wf.connect(inputnode, "water", fit, "in_water")
    if inputs.mm is not None:
        mm.inputs.names = {"data": inputs.uri(inputs.svs), "mm": inputs.uri(inputs.mm)}
        mm.inputs.mm_source = str(inputs.mm)
        wf.connect([(inputnode, mm, [("mm", "mm_file"), ("svs", "in_file")])])
    return wf


DIFFUSION_PARTS = 2
"""Diffusion-model nodes per acquisition, each fitting a share of the metabolites side by side
(with two processes the models take half the time); their rows are joined in order."""
PRIORITY_ATTRIBUTE = "dmrs_priority"
"""Node attribute read by the app's scheduler: ready steps with a higher value start first
(the diffusion parts before the figures, which are not on the way to the report)."""


def init_diffusion_wf(config: dict, name: str = "diffusion_wf",
                      n_parts: int = DIFFUSION_PARTS) -> pe.Workflow:
    """Diffusion models of the amplitude decays, the metabolites shared among ``n_parts``
    nodes (``diffusion``, ``diffusion_2``, ...) joined by ``diffusion_rows``.
    inputnode: amplitudes, covariance (their covariance across conditions), preproc;
    outputnode: diffusion."""
    wf = pe.Workflow(name=name)
    inputnode = _identity(["amplitudes", "covariance", "preproc"], "inputnode")
    outputnode = _identity(["diffusion"], "outputnode")
    merge = pe.Node(niu.Merge(n_parts), name="diffusion_parts", run_without_submitting=True)
    rows = pe.Node(ifc.MergeTables(out_name="diffusion.tsv"), name="diffusion_rows",
                   run_without_submitting=True)
    for part in range(n_parts):
        diffusion = pe.Node(ifc.DiffusionModels(options=section_json(config, "diffusion"),
                                                part=part, n_parts=n_parts),
                            name="diffusion" if part == 0 else f"diffusion_{part + 1}")
        setattr(diffusion, PRIORITY_ATTRIBUTE, 1)
        wf.connect([
            (inputnode, diffusion, [("amplitudes", "in_amplitudes"),
                                    ("covariance", "in_covariance"),
                                    ("preproc", "in_preproc")]),
            (diffusion, merge, [("out_diffusion", f"in{part + 1}")]),
        ])
    wf.connect([(merge, rows, [("out", "in_tables")]),
                (rows, outputnode, [("out_diffusion", "diffusion")])])
    return wf


def init_qc_wf(config: dict, n_reports: int, has_water: bool,
               name: str = "qc_wf") -> pe.Workflow:
    """QC metrics and flags. inputnode: preproc, fit, amplitudes, display (the fit display
    table), transients, combined, water and report1..report<n_reports> (the stages' JSON
    reports, in the order given)."""
    wf = pe.Workflow(name=name)
    report_fields = [f"report{i}" for i in range(1, n_reports + 1)]
    inputnode = _identity(["preproc", "fit", "amplitudes", "display", "transients", "combined",
                           "water"] + report_fields, "inputnode")
    outputnode = _identity(["qc"], "outputnode")
    qc = pe.Node(ifc.QualityMetrics(
        options=section_json(config, "qc"), preprocessing=section_json(config, "preprocessing"),
        fit_ppm_range=[float(v) for v in config["fitting"].get("ppm_range",
                                                               list(FIT_WINDOW_PPM))]),
        name="qc")
    reports = pe.Node(niu.Merge(n_reports), name="stage_reports")
    for i, field in enumerate(report_fields, start=1):
        wf.connect(inputnode, field, reports, f"in{i}")
    wf.connect([
        (inputnode, qc, [("preproc", "in_preproc"), ("fit", "in_fit"),
                         ("amplitudes", "in_amplitudes"), ("display", "in_fit_display"),
                         ("transients", "in_transients"), ("combined", "in_combined")]),
        (reports, qc, [("out", "in_reports")]),
        (qc, outputnode, [("out_qc", "qc")]),
    ])
    if has_water:
        wf.connect(inputnode, "water", qc, "in_water")
    return wf


# --- acquisition and participant ---------------------------------------------------------------

def init_acquisition_wf(inputs, config: dict, output_dir, basis_path=None,
                        basis_cache_dir: str = "", config_toml: str = "",
                        name: str | None = None, figures_interface=None,
                        input_digests: str = "") -> pe.Workflow:
    """Workflow for one svs acquisition (``inputs``: a ``discovery.AcquisitionInputs``),
    wiring the stage workflows.

    ``inputnode`` fields are filled from ``inputs``; ``outputnode`` gives the node-local
    result files and ``index`` (JSON of derivative paths written under ``output_dir``).
    ``figures_interface`` (the app's figure node class) adds a figures node when given and
    ``[report] figures`` is on; ``input_digests``: see :func:`key_named_files`.
    """
    wf = pe.Workflow(name=name or acquisition_wf_names(inputs.subject, [inputs])[0])
    pre = config["preprocessing"]
    has_water = inputs.water is not None
    inputnode = _identity(["svs", "sidecar", "water", "water_sidecar", "mm", "mm_sidecar"],
                          "inputnode")
    inputnode.inputs.svs = str(inputs.svs)
    inputnode.inputs.sidecar = json.dumps(inputs.sidecar, sort_keys=True)
    for kind in ("water", "mm"):
        if getattr(inputs, kind) is not None:
            setattr(inputnode.inputs, kind, str(getattr(inputs, kind)))
            setattr(inputnode.inputs, f"{kind}_sidecar",
                    json.dumps(getattr(inputs, f"{kind}_sidecar"), sort_keys=True))
    outputnode = _identity(ACQ_OUTPUTS, "outputnode")

    convert_wf = init_convert_wf(inputs, config["conversion"])
    preproc_wf = init_preproc_wf(pre, has_water, data_source=inputs.uri(inputs.svs),
                                 water_source=inputs.uri(inputs.water) if has_water else "")
    fit_wf = init_fit_wf(inputs, config, basis_path, basis_cache_dir)
    diffusion_wf = init_diffusion_wf(config)
    key_named_files([convert_wf, fit_wf], input_digests)
    # the stages' reports, in the order the QC flags list them
    report_sources = [(convert_wf, "report"), (preproc_wf, "coils_report"),
                      (preproc_wf, "outliers_report"), (fit_wf, "basis_report"),
                      (fit_wf, "mm_report"), (fit_wf, "fit_report")]
    if has_water and pre.get("ecc", True):
        report_sources.append((preproc_wf, "eddy_report"))
    if pre.get("residual_water", True):
        report_sources.append((preproc_wf, "water_report"))
    qc_wf = init_qc_wf(config, len(report_sources), has_water)
    qc_wf.get_node("qc").inputs.discovery_warnings = list(inputs.warnings)
    sink = pe.Node(ifc.WriteDerivatives(
        output_dir=str(output_dir), subject=inputs.subject, session=inputs.session or "",
        stem=inputs.stem, config_toml=config_toml), name="derivatives", run_without_submitting=True)

    fields = ["svs", "sidecar"] + [f for kind in ("water", "mm") if getattr(inputs, kind)
                                   for f in (kind, f"{kind}_sidecar")]
    wf.connect([
        (inputnode, convert_wf, [(f, f"inputnode.{f}") for f in fields]),
        (convert_wf, preproc_wf, [("outputnode.svs", "inputnode.svs")]),
        (convert_wf, fit_wf, [("outputnode.svs", "inputnode.svs")]),
        (preproc_wf, fit_wf, [("outputnode.preproc", "inputnode.preproc")]),
        (preproc_wf, diffusion_wf, [("outputnode.preproc", "inputnode.preproc")]),
        (fit_wf, diffusion_wf, [("outputnode.amplitudes", "inputnode.amplitudes"),
                                ("outputnode.covariance", "inputnode.covariance")]),
        (preproc_wf, qc_wf, [("outputnode.preproc", "inputnode.preproc"),
                             ("outputnode.transients", "inputnode.transients"),
                             ("outputnode.combined", "inputnode.combined")]),
        (fit_wf, qc_wf, [("outputnode.fit", "inputnode.fit"),
                         ("outputnode.amplitudes", "inputnode.amplitudes"),
                         ("outputnode.display", "inputnode.display")]),
        (preproc_wf, sink, [("outputnode.preproc", "preproc"),
                            ("outputnode.transients", "transients")]),
        (fit_wf, sink, [("outputnode.fit", "fit"), ("outputnode.amplitudes", "amplitudes"),
                        ("outputnode.covariance", "amplitude_covariance"),
                        ("outputnode.display", "fit_display")]),
        (diffusion_wf, sink, [("outputnode.diffusion", "diffusion")]),
        (qc_wf, sink, [("outputnode.qc", "qc")]),
        (preproc_wf, outputnode, [("outputnode.preproc", "preproc"),
                                  ("outputnode.transients", "transients")]),
        (fit_wf, outputnode, [("outputnode.fit", "fit"),
                              ("outputnode.amplitudes", "amplitudes")]),
        (diffusion_wf, outputnode, [("outputnode.diffusion", "diffusion")]),
        (qc_wf, outputnode, [("outputnode.qc", "qc")]),
        (sink, outputnode, [("out_index", "index")]),
    ])
    for i, (stage, field) in enumerate(report_sources, start=1):
        wf.connect(stage, f"outputnode.{field}", qc_wf, f"inputnode.report{i}")
    if has_water:
        wf.connect([
            (convert_wf, preproc_wf, [("outputnode.water", "inputnode.water")]),
            (preproc_wf, fit_wf, [("outputnode.water", "inputnode.water")]),
            (preproc_wf, qc_wf, [("outputnode.water", "inputnode.water")]),
        ])
    if inputs.mm is not None:
        wf.connect(convert_wf, "outputnode.mm", fit_wf, "inputnode.mm")
    if figures_interface is not None and config["report"].get("figures", True):
        add_figure_nodes(wf, figures_interface, inputnode, preproc_wf, fit_wf, diffusion_wf,
                         sink)
    return wf


PREPROCESSING_FIGURES = ["drift", "transients"]
FIT_FIGURES = ["fit"]
DIFFUSION_FIGURES = ["decay"]
"""Figures drawn by the node that runs as soon as preprocessing is done (beside the fit, on
an otherwise idle processor), by the one that needs the fit (beside diffusion modelling) and
by the one that needs the diffusion models."""


def add_figure_nodes(wf, figures_interface, inputnode, preproc_wf, fit_wf, diffusion_wf,
                     sink) -> None:
    """Three figure nodes (``figures_interface`` with ``figure_names``): the preprocessing
    figures (transients from the raw input, drift) beside the spectral fit, the fit figure
    beside diffusion modelling, the decays once the models are fitted; the sink gets all."""
    early = pe.Node(figures_interface(figure_names=PREPROCESSING_FIGURES),
                    name="preproc_figures")
    figures = pe.Node(figures_interface(figure_names=FIT_FIGURES), name="figures")
    decay = pe.Node(figures_interface(figure_names=DIFFUSION_FIGURES), name="decay_figures")
    merge = pe.Node(niu.Merge(3), name="all_figures", run_without_submitting=True)
    for node in (early, figures, decay):
        wf.connect(preproc_wf, "outputnode.transients", node, "in_transients")
        wf.connect(preproc_wf, "outputnode.preproc", node, "in_preproc")
    wf.connect([
        (inputnode, early, [("svs", "in_raw")]),
        (fit_wf, figures, [("outputnode.fit", "in_fit"),
                           ("outputnode.display", "in_fit_display")]),
        (fit_wf, decay, [("outputnode.amplitudes", "in_amplitudes")]),
        (diffusion_wf, decay, [("outputnode.diffusion", "in_diffusion")]),
        (early, merge, [("out_figures", "in1")]),
        (figures, merge, [("out_figures", "in2")]),
        (decay, merge, [("out_figures", "in3")]),
        (merge, sink, [("out", "figures")]),
    ])


def init_participant_wf(subject: str, acquisitions: list, config: dict, output_dir,
                        basis_path=None, basis_cache_dir: str = "", config_toml: str = "",
                        name: str | None = None, figures_interface=None,
                        report_interface=None, input_digests: str = "") -> pe.Workflow:
    """One participant: an acquisition workflow per svs and, when ``report_interface`` (the
    app's report node class) is given, a report joining them all."""
    if not acquisitions:
        raise ValueError(f"sub-{subject}: no svs acquisition found")
    wf = pe.Workflow(name=name or participant_wf_name(subject))
    outputnode = _identity(["report", "indexes"], "outputnode")
    merge = pe.Node(niu.Merge(len(acquisitions)), name="collect_derivatives",
                    run_without_submitting=True)
    names = acquisition_wf_names(subject, acquisitions)
    for i, (inputs, acq_name) in enumerate(zip(acquisitions, names), start=1):
        acq_wf = init_acquisition_wf(inputs, config, output_dir, basis_path, basis_cache_dir,
                                     config_toml, name=acq_name,
                                     figures_interface=figures_interface,
                                     input_digests=input_digests)
        wf.connect(acq_wf, "outputnode.index", merge, f"in{i}")
    wf.connect(merge, "out", outputnode, "indexes")
    if report_interface is not None:
        report = pe.Node(report_interface(output_dir=str(output_dir), subject=subject,
                                          options=section_json(config, "report")),
                         name="report")
        wf.connect([(merge, report, [("out", "in_indexes")]),
                    (report, outputnode, [("out_report", "report")])])
    return wf
