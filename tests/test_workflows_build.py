"""Workflow structure and the small decisions inside the stage interfaces."""

from pathlib import Path

import numpy as np
import pytest

from bids_app.config import load_default_config
from bids_app.discovery import AcquisitionInputs
from bids_app.report_nodes import AcquisitionFigures, ParticipantReport
from pipeline.diffusion.amplitudes import amplitude_series, modelled_metabolites, unmodelled_rows
from pipeline.fitting.mm_basis import mm_mode
from workflows import interfaces as ifc
from workflows import participant as wfp

STAGES = {"convert", "coils", "align", "outliers", "average", "residual_water", "basis",
          "macromolecules", "fit", "figures", "diffusion", "qc", "derivatives"}


def _inputs(tmp_path, water=True, mm=False, subject="01", acq="dw"):
    svs = tmp_path / f"sub-{subject}_acq-{acq}_svs.nii.gz"
    svs.write_bytes(b"x")
    ref = tmp_path / f"sub-{subject}_acq-{acq}_mrsref.nii.gz"
    ref.write_bytes(b"x")
    mm_path = tmp_path / f"sub-{subject}_acq-mm_svs.nii.gz"
    mm_path.write_bytes(b"x")
    return AcquisitionInputs(subject=subject, session=None, svs=svs,
                             sidecar={"EchoTime": 0.045}, entities={"acquisition": acq},
                             water=ref if water else None, mm=mm_path if mm else None)


def init_acquisition_wf(inputs, config, output_dir):
    """The acquisition workflow as the app builds it (with its figures node)."""
    return wfp.init_acquisition_wf(inputs, config, output_dir,
                                   figures_interface=AcquisitionFigures)


def init_participant_wf(subject, acquisitions, config, output_dir):
    return wfp.init_participant_wf(subject, acquisitions, config, output_dir,
                                   figures_interface=AcquisitionFigures,
                                   report_interface=ParticipantReport)


def _executed_graph(wf):
    """The graph nipype runs: stage workflows flattened, identity nodes removed."""
    from copy import deepcopy

    from nipype.pipeline.engine.utils import _remove_nonjoin_identity_nodes

    return _remove_nonjoin_identity_nodes(deepcopy(wf._create_flat_graph()))


def _node_names(wf):
    return {node.name for node in _executed_graph(wf).nodes()}


def test_acquisition_workflow_wires_stage_workflows(tmp_path):
    wf = init_acquisition_wf(_inputs(tmp_path), load_default_config(), tmp_path / "out")
    stages = {n.name for n in wf._graph.nodes() if hasattr(n, "_graph")}
    assert stages == {"convert_wf", "preproc_wf", "fit_wf", "diffusion_wf", "qc_wf"}
    steps = {n.name for n in wf._graph.nodes() if not hasattr(n, "_graph")}
    assert steps == {"inputnode", "outputnode", "derivatives", "figures", "preproc_figures",
                     "decay_figures", "all_figures"}
    # the transients and drift are drawn as soon as preprocessing is done (beside the fit),
    # from the raw input; the fit figure once the fit is done
    graph = _executed_graph(wf)
    early = next(n for n in graph.nodes() if n.name == "preproc_figures")
    assert {p.name for p in graph.predecessors(early)} == {"outliers", "residual_water"}
    assert early.inputs.in_raw == str(_inputs(tmp_path).svs)
    late = next(n for n in graph.nodes() if n.name == "figures")
    assert "fit" in {p.name for p in graph.predecessors(late)}
    decay = next(n for n in graph.nodes() if n.name == "decay_figures")
    assert "diffusion_rows" in {p.name for p in graph.predecessors(decay)}


def test_diffusion_models_are_shared_among_parts_run_first(tmp_path):
    """Two diffusion nodes fit a share of the metabolites each, side by side; their rows are
    joined before the QC and the sink, and the scheduler starts them before the figures."""
    from bids_app.scheduler import GuardedMultiProcPlugin

    wf = init_acquisition_wf(_inputs(tmp_path), load_default_config(), tmp_path / "out")
    graph = _executed_graph(wf)
    parts = [n for n in graph.nodes() if n.name in ("diffusion", "diffusion_2")]
    assert sorted((n.inputs.part, n.inputs.n_parts) for n in parts) == [(0, 2), (1, 2)]
    joined = next(n for n in graph.nodes() if n.name == "diffusion_parts")
    assert {p.name for p in graph.predecessors(joined)} == {"diffusion", "diffusion_2"}
    rows = next(n for n in graph.nodes() if n.name == "diffusion_rows")
    assert {"derivatives", "decay_figures"} <= {s.name for s in graph.successors(rows)}
    plugin = GuardedMultiProcPlugin({"n_procs": 2})
    plugin.procs = list(graph.nodes())
    ready = [i for i, n in enumerate(plugin.procs)
             if n.name in ("figures", "diffusion", "diffusion_2")]
    first_two = [plugin.procs[j].name for j in plugin._sort_jobs(ready)[:2]]
    assert sorted(first_two) == ["diffusion", "diffusion_2"]


def test_acquisition_workflow_has_a_node_per_stage(tmp_path):
    wf = init_acquisition_wf(_inputs(tmp_path), load_default_config(), tmp_path / "out")
    names = _node_names(wf)
    assert STAGES | {"convert_water", "eddy_current"} <= names
    # eddy-current correction right after coil combination, before alignment (its apparent
    # frequency shift at high b is not drift), feeding alignment and the outlier re-alignment
    graph = _executed_graph(wf)
    eddy = next(n for n in graph.nodes() if n.name == "eddy_current")
    assert {p.name for p in graph.predecessors(eddy)} == {"coils"}
    assert {s.name for s in graph.successors(eddy)} == {"align", "outliers", "stage_reports"}
    # the QC node lists the stages' flags in this order
    reports = next(n for n in graph.nodes() if n.name == "stage_reports")
    order = {int(dest.removeprefix("in")): src.name for src in graph.predecessors(reports)
             for _, dest in graph.get_edge_data(src, reports)["connect"]}
    assert [order[i] for i in sorted(order)] == [
        "convert", "coils", "outliers", "basis", "macromolecules", "fit", "eddy_current",
        "residual_water"]
    fit = next(n for n in graph.nodes() if n.name == "fit")
    # the fit takes the combined water reference too (water-scaled concentrations)
    assert {p.name for p in graph.predecessors(fit)} == {"residual_water", "macromolecules",
                                                         "coils"}
    assert ("out_water", "in_water") in graph.get_edge_data(
        next(n for n in graph.nodes() if n.name == "coils"), fit)["connect"]


def test_without_water_there_is_no_eddy_correction(tmp_path):
    wf = init_acquisition_wf(_inputs(tmp_path, water=False), load_default_config(),
                             tmp_path / "out")
    names = _node_names(wf)
    assert STAGES <= names and "eddy_current" not in names and "convert_water" not in names


def test_configuration_switches_stages_off(tmp_path):
    config = load_default_config()
    config["preprocessing"].update(ecc=False, residual_water=False)
    config["report"]["figures"] = False
    names = _node_names(init_acquisition_wf(_inputs(tmp_path), config, tmp_path / "out"))
    assert not {"eddy_current", "residual_water", "figures", "preproc_figures"} & names
    assert {"convert_water", "average", "fit"} <= names


def test_measured_mm_adds_its_conversion(tmp_path):
    wf = init_acquisition_wf(_inputs(tmp_path, mm=True), load_default_config(),
                             tmp_path / "out")
    assert "convert_mm" in _node_names(wf)


def test_participant_workflow_joins_acquisitions_into_one_report(tmp_path):
    acqs = [_inputs(tmp_path, acq="a"), _inputs(tmp_path, acq="b", water=False)]
    wf = init_participant_wf("01", acqs, load_default_config(), tmp_path / "out")
    assert wf.name == "sub_01_wf"
    sub_wfs = {n.name for n in wf._graph.nodes() if hasattr(n, "_graph")}
    assert sub_wfs == {"acq_a_wf", "acq_b_wf"}
    with pytest.raises(ValueError, match="no svs acquisition"):
        init_participant_wf("02", [], load_default_config(), tmp_path / "out")


def test_crash_attribution_uses_the_workflow_names_the_participant_gets(tmp_path):
    """Two svs files with the same entities after sub-01 (here: the same file twice) get
    distinct workflow names; the app's crash-file lookup (run._acquisition_files) maps exactly
    those names to the svs files."""
    from bids_app.run import _acquisition_files
    acqs = [_inputs(tmp_path, acq="a"), _inputs(tmp_path, acq="a", water=False),
            _inputs(tmp_path, acq="b")]
    wf = init_participant_wf("01", acqs, load_default_config(), tmp_path / "out")
    sub_wfs = {n.name for n in wf._graph.nodes() if hasattr(n, "_graph")}
    assert wfp.acquisition_wf_names("01", acqs) == ["acq_a_wf", "acq_a_wf_2", "acq_b_wf"]
    assert sub_wfs == set(wfp.acquisition_wf_names("01", acqs))
    assert _acquisition_files("01", acqs) == {"acq_a_wf": str(acqs[0].svs),
                                              "acq_a_wf_2": str(acqs[1].svs),
                                              "acq_b_wf": str(acqs[2].svs)}
    assert wf.name == wfp.participant_wf_name("01")
    assert init_acquisition_wf(acqs[2], load_default_config(), tmp_path / "out").name == "acq_b_wf"


def test_figure_nodes_get_only_the_inputs_they_draw_from(tmp_path):
    """The fit figure draws the fitted spectra and their display traces; the amplitudes go
    only to the decay figure (bids_app.report.make_figures)."""
    wf = init_acquisition_wf(_inputs(tmp_path), load_default_config(), tmp_path / "out")
    graph = _executed_graph(wf)
    inputs = {}
    for _, node, data in graph.in_edges(data=True):
        inputs.setdefault(node.name, set()).update(dest for _, dest in data["connect"])
    assert inputs["figures"] == {"in_transients", "in_preproc", "in_fit", "in_fit_display"}
    assert "in_amplitudes" in inputs["decay_figures"]


@pytest.mark.parametrize("requested, measured, in_basis, expected", [
    ("auto", True, True, "measured"), ("auto", False, True, "basis"),
    ("auto", False, False, "parametric"), ("none", False, True, "none"),
])
def test_macromolecule_mode(requested, measured, in_basis, expected):
    assert mm_mode(requested, measured, in_basis) == expected


def test_measured_mm_without_acquisition_is_refused():
    with pytest.raises(ValueError, match="no MM acquisition"):
        mm_mode("measured", False, True)


def test_basis_mm_without_an_mm_entry_is_refused():
    """Before: mode = 'basis' on a basis without an MM entry fitted no MM, silently."""
    with pytest.raises(ValueError, match=r"mode = 'basis' but b\.BASIS has no MM entry"):
        mm_mode("basis", True, False, "b.BASIS")
    assert mm_mode("basis", False, True) == "basis"


def test_amplitude_series_and_modelled_order():
    rows = [{"condition": str(c), "metabolite": m, "amplitude": str(a), "crlb": "0.1"}
            for c, (m, a) in enumerate([("NAA", 1.0), ("tNAA", 1.2), ("NAA", 0.8),
                                        ("tNAA", 0.9)])]
    series = amplitude_series(rows)
    assert np.allclose(series["NAA"][0], [1.0, 0.8]) and np.allclose(series["tNAA"][1], 0.1)
    assert modelled_metabolites(["NAA", "Cr", "tNAA", "tCr"], []) == \
        ["tNAA", "tCr", "NAA", "Cr"]
    with pytest.raises(ValueError, match="Lac"):
        modelled_metabolites(["NAA"], ["Lac"])


def test_unmodelled_rows_are_flagged_not_applicable():
    rows = unmodelled_rows("Lac", ["monoexponential", "kurtosis"])
    assert {(r["model"], r["parameter"]) for r in rows} == {
        ("monoexponential", "ADC"), ("kurtosis", "ADC"), ("kurtosis", "K")}
    assert all(r["applicable"] == 0 for r in rows)


def test_empty_input_file_error_names_the_file(tmp_path):
    from workflows.fileio import check_not_empty

    empty = tmp_path / "sub-01_svs.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"sub-01_svs.nii.gz: file is empty \(0 bytes\)"):
        check_not_empty(empty)
    with pytest.raises(ValueError, match="does not exist"):
        check_not_empty(Path(tmp_path / "missing.nii.gz"))


def test_conversion_options_reach_every_convert_node(tmp_path):
    """[conversion] dim_roles reaches the svs, water and MM conversions; the chronogram
    options reach the svs conversion (issue 14 wiring)."""
    import json

    config = load_default_config()
    config["conversion"].update(dim_roles={"DIM_USER_1": "direction", "DIM_USER_0": "b"},
                                chronogram_pulse_indices=[1, 3],
                                chronogram_assignment="position",
                                chronogram_sample_interval_s=1e-5)
    wf = init_acquisition_wf(_inputs(tmp_path, mm=True), config, tmp_path / "out")
    nodes = {n.name: n for n in _executed_graph(wf).nodes()}
    for name in ("convert", "convert_water", "convert_mm"):
        assert json.loads(nodes[name].inputs.dim_roles) == {"DIM_USER_0": "b",
                                                            "DIM_USER_1": "direction"}
    convert = nodes["convert"].inputs
    assert convert.chronogram_pulse_indices == [1, 3]
    assert convert.chronogram_assignment == "position"
    assert convert.chronogram_sample_interval_s == 1e-5
