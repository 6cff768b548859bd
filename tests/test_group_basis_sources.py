"""Group level: the basis each acquisition was fitted with, and where its tissue fractions came
from, are stated, and a group mixing them is warned about (session 26).

Found (demo, 2026-12-07, exit 0, no warning): sub-01, sub-03 and sub-04 hold the same 3 T
PRESS data; sub-01 fitted with the app's simulated basis, sub-03 with ``--basis A.BASIS``
(``dmrs-bids-basis``, the same 12 metabolites) and sub-04 with ``--basis B.BASIS`` (A without
NAAG) gave tNAA 9.22, 7.25 and 6.72 mM at the lowest b, all in one ``tNAA`` column of
group.html, and nothing in ``group_amplitudes.tsv`` said which basis a row used. sub-04 rerun
with a tissue-fraction table (GM 0.5, WM 0.3, CSF 0.2) beside sub-01 on the default fractions
gave tNAA 12.88 against 9.22 mM, stated in ``tissue_fractions`` but not warned about.

The participant outputs of the fast tests are written as the participant level writes them:
the basis identity by the fit stage's own :func:`workflows.interfaces.fit.basis_identity` on
real files, the concentrations by :func:`pipeline.fitting.water_scaling.quantify_rows`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master, paths  # noqa: E402,F401  (fixtures)

from bids_app import derivatives as d  # noqa: E402
from bids_app.group import collect_tables, run_group  # noqa: E402
from bids_app.group_basis import pooling_notes  # noqa: E402
from bids_app.group_report import group_parameter_figures, protocol_cell  # noqa: E402
from bids_app.runlog import Outcome, write_run_records, write_summary  # noqa: E402
from pipeline.basis import Basis  # noqa: E402
from pipeline.fitting.quantification import ratio_to_tcr_column  # noqa: E402
from pipeline.fitting.water_scaling import quantify_rows  # noqa: E402
from pipeline.simulate.basis_simulation import (simulate_basis,  # noqa: E402
                                                simulation_settings_sha256)
from workflows.interfaces.fit import basis_identity  # noqa: E402

LOGGER = logging.getLogger("test_group_basis_sources")
"""The group level's logger here: the app's own does not propagate to caplog once a command
line ran in this process (``runlog.setup_logging``), as happens earlier in a worker's tests."""

CF_MHZ, DWELL_S, N_POINTS, TE_S = 123.2, 2.5e-4, 2048, 0.08
SMALL = ["NAA", "NAAG", "Cr", "PCr"]


def _singlet(ppm: float, amplitude: float) -> np.ndarray:
    t = np.arange(N_POINTS) * DWELL_S
    return amplitude * np.exp(-2j * np.pi * (ppm - 4.65) * CF_MHZ * t - t / 0.08)


def _basis_file(folder: Path, name: str, names: list[str]) -> Path:
    """A basis file as a user passes it with --basis (the project's JSON form)."""
    from pipeline.io.basis_formats import write_json_basis

    path = folder / name
    write_json_basis(simulate_basis("press", CF_MHZ, DWELL_S, 256, echo_time_s=TE_S,
                                    metabolites=names), str(path))
    return path


def _write_participant(out: Path, label: str, basis_report: dict | None,
                       quantification: dict | None = None, ses: str | None = None) -> None:
    """One acquisition's tables and _qc.json (with the basis and fit stage reports)."""
    rows = [{"condition": 0, "b_value": 0.0, "direction": "n/a", "metabolite": name,
             "amplitude": amp, "crlb": 0.1 * amp, "crlb_percent": 10.0, "fit_flags": "n/a"}
            for name, amp in {"tNAA": 8.0 + int(label) / 10, "tCr": 6.4}.items()]
    stages = {}
    if quantification is not None:
        basis = Basis(names=["Cr"], fids=_singlet(3.03, 3.0)[None], dwell_s=DWELL_S,
                      cf_mhz=CF_MHZ)
        metadata = {"EchoTime": TE_S, "RepetitionTime": 3.0}
        rows, report = quantify_rows(ratio_to_tcr_column(rows), quantification,
                                     _singlet(4.65, 40000.0), DWELL_S, basis, metadata, CF_MHZ,
                                     label, ses or "", metadata)
        stages["fit.json"] = {"quantification": report}
    if basis_report is not None:
        stages["basis_report.json"] = basis_report
    folder = out / f"sub-{label}" / (f"ses-{ses}" if ses else "") / "mrs"
    stem = f"sub-{label}" + (f"_ses-{ses}" if ses else "") + "_acq-x"
    d.write_tsv(folder / f"{stem}_amplitudes.tsv", rows, d.amplitudes_columns(rows))
    d.write_tsv(folder / f"{stem}_diffusion.tsv",
                [{"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
                  "value": 0.1, "unit": "um2/ms", "applicable": 1}], d.DIFFUSION_COLUMNS)
    d.write_json(folder / f"{stem}_qc.json", {"summary": {}, "flags": [], "stages": stages})


def _finish(out: Path, labels) -> Path:
    outcomes, started = [Outcome(label) for label in labels], time.time()
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)
    return out


def _file_report(path: Path, basis_names: list[str], exclude=()) -> dict:
    """The basis stage's report of a run with ``--basis path`` ([basis] exclude ``exclude``)."""
    kept = [n for n in basis_names if n not in exclude]
    basis = Basis(names=kept, fids=np.zeros((len(kept), 4), complex), dwell_s=DWELL_S,
                  cf_mhz=CF_MHZ)
    return {"source": "file", "path": str(path),
            "identity": basis_identity(str(path), basis, [n for n in basis_names
                                                          if n in exclude])}


def _simulated_report(names: list[str], echo_time_s: float = TE_S) -> dict:
    basis = simulate_basis("press", CF_MHZ, DWELL_S, 256, echo_time_s=echo_time_s,
                           metabolites=names)
    return {"source": "simulated", "identity": basis_identity("", basis, [])}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_user_basis_is_identified_by_its_name_and_content(tmp_path):
    a = _basis_file(tmp_path, "A.json", SMALL)
    identity = _file_report(a, SMALL, exclude=("NAAG",))["identity"]
    assert identity == {"source": "file", "file": "A.json", "sha256": _sha(a),
                        "excluded": ["NAAG"]}
    folder = tmp_path / "raw"  # a folder of .RAW files: its files' names and contents
    folder.mkdir()
    (folder / "NAA.RAW").write_text("one")
    first = basis_identity(str(folder), None, [])["sha256"]
    (folder / "NAA.RAW").write_text("two")
    assert basis_identity(str(folder), None, [])["sha256"] != first


def test_a_simulated_basis_is_identified_by_its_settings_not_the_data_grid():
    def digest(cf_mhz=CF_MHZ, dwell_s=DWELL_S, n_points=256, names=SMALL, **settings):
        basis = simulate_basis("press", cf_mhz, dwell_s, n_points,
                               metabolites=names, **{"echo_time_s": TE_S, **settings})
        return simulation_settings_sha256(basis.provenance, basis.names)

    same = digest()
    # a Siemens 3 T system at 123.2 MHz and a Philips one at 127.7 MHz, other sampling
    assert digest(cf_mhz=127.7, dwell_s=5e-4, n_points=512) == same
    assert digest(names=SMALL[:1] + SMALL[2:]) != same  # without NAAG
    assert digest(echo_time_s=0.035) != same
    assert digest(te1_s=0.04, te2_s=0.04) != same  # default TE1 = min(0.4 TE, 14 ms)
    assert digest(refocus_bandwidth_hz=1100.0) != same


def test_prepare_basis_records_the_identity_of_a_user_basis(demo, tmp_path):
    """The fit stage's own report (as ``_qc.json`` stages carry it) on the demo's 3 T PRESS
    TE 80 ms data with a basis file made for it."""
    from pipeline.io.nifti_mrs import write_nifti_mrs
    from workflows.fileio import load_acquisition
    from workflows.interfaces import PrepareBasis

    svs = paths(demo, "01")["svs"]
    acq = load_acquisition(svs, json.loads(paths(demo, "01")["svs_json"].read_text()))
    data = write_nifti_mrs(dataclasses.replace(acq), tmp_path / "canonical.nii.gz")
    basis = _basis_file(tmp_path, "A.json", SMALL)
    run = tmp_path / "node"
    run.mkdir()
    result = PrepareBasis(in_file=str(data), basis_path=str(basis),
                          options=json.dumps({"exclude": ["NAAG"]})).run(cwd=str(run))
    report = json.loads(Path(result.outputs.out_report).read_text())
    assert report["identity"] == {"source": "file", "file": "A.json", "sha256": _sha(basis),
                                  "excluded": ["NAAG"]}
    assert report["names"] == ["NAA", "Cr", "PCr"]


def _mixed_study(tmp_path: Path) -> tuple[Path, dict]:
    a = _basis_file(tmp_path, "A.json", SMALL)
    b = _basis_file(tmp_path, "B.json", ["NAA", "Cr", "PCr"])
    reports = {"01": _simulated_report(SMALL), "02": _file_report(a, SMALL),
               "03": _file_report(a, SMALL), "04": _file_report(b, ["NAA", "Cr", "PCr"])}
    out = tmp_path / "out"
    for label, report in reports.items():
        _write_participant(out, label, report, {})
    return _finish(out, reports), {"A": _sha(a)[:12], "B": _sha(b)[:12],
                                   "sim": reports["01"]["identity"]["settings_sha256"][:12]}


def test_the_group_tables_state_each_rows_basis_and_a_mixed_group_is_warned(tmp_path, caplog):
    out, sha = _mixed_study(tmp_path)
    caplog.set_level(logging.WARNING)
    assert all(o.ok for o in run_group(out, logger=LOGGER))
    amplitudes = d.read_tsv(out / "group_amplitudes.tsv")
    header = list(amplitudes[0])
    assert header[-3:] == ["mm_model", "basis", "fit_flags"]
    assert header[-7:-3] == ["metabolite_t2_s", "metabolite_t1_s", "tissue_fractions",
                             "quantification_settings"]
    basis_of = {r["participant_id"]: r["basis"] for r in amplitudes}
    assert basis_of == {"sub-01": f"simulated sha256:{sha['sim']}",
                        "sub-02": f"A.json sha256:{sha['A']}",
                        "sub-03": f"A.json sha256:{sha['A']}",
                        "sub-04": f"B.json sha256:{sha['B']}"}
    diffusion = d.read_tsv(out / "group_diffusion.tsv")
    assert list(diffusion[0])[-3:] == ["b_max_s_mm2", "mm_model", "basis"]
    assert {r["participant_id"]: r["basis"] for r in diffusion} == basis_of
    (warning,) = [r.getMessage() for r in caplog.records if "basis sets" in r.getMessage()]
    assert (f"sub-02, sub-03: A.json sha256:{sha['A']} | sub-04: B.json sha256:{sha['B']} | "
            f"sub-01: simulated sha256:{sha['sim']}") in warning
    html = (out / "group.html").read_text()
    assert "fitted with different basis sets" in html and "sub-02, sub-03: A.json" in html
    tables, _ = collect_tables(out, ["01", "02", "03", "04"])
    svgs = "".join(f["svg"] for f in group_parameter_figures(
        tables["diffusion"], {}, tables["amplitudes"]))
    for label in (f"A.json sha256:{sha['A']}", f"B.json sha256:{sha['B']}",
                  f"simulated sha256:{sha['sim']}"):
        assert f"tNAA {label}" in svgs


def test_one_basis_or_bases_of_other_protocols_give_no_warning_and_no_split(tmp_path, caplog):
    a = _basis_file(tmp_path, "A.json", SMALL)
    out = tmp_path / "out"
    for label in ("01", "02", "03"):
        _write_participant(out, label, _file_report(a, SMALL), {})
    caplog.set_level(logging.WARNING)
    run_group(_finish(out, ["01", "02", "03"]), logger=LOGGER)
    assert not [r for r in caplog.records if "basis sets" in r.getMessage()]
    assert "basis sets" not in (out / "group.html").read_text()
    tables, _ = collect_tables(out, ["01", "02", "03"])
    (figure, *_) = group_parameter_figures(tables["diffusion"], {}, tables["amplitudes"])
    assert "sha256" not in figure["svg"]
    # simulated at 3 T TE 80 ms and 3 T TE 35 ms: split by echo time already, not warned
    rows = [{**r, "echo_time_s": te, "basis": basis}
            for r, te, basis in zip(tables["diffusion"], ("0.08", "0.035", "0.035"),
                                    ("simulated sha256:1", "simulated sha256:2",
                                     "simulated sha256:2"))]
    assert pooling_notes([], rows, protocol_cell) == []
    rows[2]["basis"] = "simulated sha256:3"  # two bases at TE 35 ms
    (note,) = pooling_notes([], rows, protocol_cell)
    assert "sub-02: simulated sha256:2 | sub-03: simulated sha256:3" in note


def test_one_basis_file_under_two_names_is_one_basis(tmp_path, caplog):
    """The fit reads a basis file's content, not its name: sub-01 fitted with ``A.json`` and
    sub-02 with a byte-identical copy ``A_copy.json`` (e.g. staged to a job's scratch folder)
    used one basis. Before (2026-12-07): warned as fitted with different basis sets and split
    in group.html, the two labels differing only in the name; now no warning, no split, each
    row's ``basis`` still naming its own file. A copy without NAAG is still warned about."""
    a = _basis_file(tmp_path, "A.json", SMALL)
    copy = tmp_path / "A_copy.json"
    shutil.copyfile(a, copy)
    out = tmp_path / "out"
    _write_participant(out, "01", _file_report(a, SMALL), {})
    _write_participant(out, "02", _file_report(copy, SMALL), {})
    caplog.set_level(logging.WARNING)
    run_group(_finish(out, ["01", "02"]), logger=LOGGER)
    assert not [r for r in caplog.records if "basis sets" in r.getMessage()]
    basis_of = {r["participant_id"]: r["basis"]
                for r in d.read_tsv(out / "group_amplitudes.tsv")}
    assert basis_of == {"sub-01": f"A.json sha256:{_sha(a)[:12]}",
                        "sub-02": f"A_copy.json sha256:{_sha(a)[:12]}"}
    tables, _ = collect_tables(out, ["01", "02"])
    (figure, *_) = group_parameter_figures(tables["diffusion"], {}, tables["amplitudes"])
    assert "sha256" not in figure["svg"]
    rows = [{**r, "basis": r["basis"] + (" without NAAG" if r["participant_id"] == "sub-02"
                                         else "")} for r in tables["diffusion"]]
    (note,) = pooling_notes([], rows, protocol_cell)
    assert f"sub-02: A_copy.json sha256:{_sha(a)[:12]} without NAAG" in note


def test_a_run_that_recorded_no_basis_identity_is_stated_as_such(tmp_path):
    out = tmp_path / "out"
    _write_participant(out, "01", {"source": "file", "path": "/data/A.BASIS"})
    _write_participant(out, "02", {"source": "simulated"})
    _write_participant(out, "03", None)
    run_group(_finish(out, ["01", "02", "03"]), logger=LOGGER)
    basis_of = {r["participant_id"]: r["basis"]
                for r in d.read_tsv(out / "group_amplitudes.tsv")}
    assert basis_of == {"sub-01": "A.BASIS (content not recorded)",
                        "sub-02": "simulated (content not recorded)", "sub-03": "n/a"}


def _tissue_water(fractions: dict) -> float:
    """Relaxation-attenuated water of a voxel at 3 T, TE 80 ms, TR 3 s (Gasparovic et al.
    2006): sum over tissues of fraction x water content x exp(-TE/T2) (1 - exp(-TR/T1))."""
    from pipeline.fitting.quantification import WATER_CONTENT, WATER_T1_S_3T, WATER_T2_S_3T

    return sum(f * WATER_CONTENT[t] * np.exp(-TE_S / WATER_T2_S_3T[t])
               * (1 - np.exp(-3.0 / WATER_T1_S_3T[t])) for t, f in fractions.items())


def test_default_fractions_beside_a_fraction_table_are_warned_about(tmp_path, caplog):
    table = tmp_path / "fractions.tsv"
    table.write_text("participant_id\tgm\twm\tcsf\nsub-02\t0.5\t0.3\t0.2\n"
                     "sub-03\t0.6\t0.4\t0\n")
    out = tmp_path / "out"
    _write_participant(out, "01", None, {})
    _write_participant(out, "02", None, {"tissue_fractions_file": str(table)})
    _write_participant(out, "03", None, {"tissue_fractions_file": str(table)}, ses="1")
    _write_participant(out, "04", None, {"tissue_fractions": {"gm": 0.7, "wm": 0.3,
                                                              "csf": 0.0}})
    caplog.set_level(logging.WARNING)
    run_group(_finish(out, ["01", "02", "03", "04"]), logger=LOGGER)
    rows = {r["participant_id"]: r for r in d.read_tsv(out / "group_amplitudes.tsv")
            if r["metabolite"] == "tNAA"}
    # sub-02's measured fractions (20 % CSF) scale its concentration: not the default's
    ratio = float(rows["sub-02"]["concentration_mm"]) / float(rows["sub-01"]["concentration_mm"])
    expected = (_tissue_water({"gm": 0.5, "wm": 0.3, "csf": 0.2}) / (1 - 0.2)
                / _tissue_water({"gm": 0.6, "wm": 0.4, "csf": 0.0}))
    assert ratio == pytest.approx(8.2 / 8.1 * expected, rel=1e-9)
    assert expected == pytest.approx(1.397, abs=0.001)
    (warning,) = [r.getMessage() for r in caplog.records if "tissue fractions" in r.getMessage()]
    assert ("sub-04: [quantification] tissue_fractions | sub-01: default (no segmentation: "
            "60 % GM, 40 % WM, no CSF) | sub-02, sub-03 ses-1: table fractions.tsv") in warning
    html = (out / "group.html").read_text()
    assert "took their tissue fractions from different sources" in html
    assert "sub-02, sub-03 ses-1: table fractions.tsv" in html


def test_one_kind_of_tissue_fraction_source_is_not_warned_about(tmp_path, caplog):
    out = tmp_path / "out"
    for label in ("01", "02"):
        _write_participant(out, label, None, {})
    caplog.set_level(logging.WARNING)
    run_group(_finish(out, ["01", "02"]), logger=LOGGER)
    assert not [r for r in caplog.records if "tissue fractions" in r.getMessage()]
    assert "tissue fractions from different" not in (out / "group.html").read_text()


@pytest.mark.slow
def test_demo_participants_fitted_with_different_bases_are_named_and_split(demo, tmp_path,
                                                                          caplog):
    """End to end: sub-03 holds sub-01's data; sub-01 fitted with the simulated basis, sub-03
    with --basis (a file of the same metabolites)."""
    from bids_app import cli
    from bids_app.demo import SMALL_METABOLITES
    from pipeline.io.basis_formats import write_json_basis

    for source in sorted((demo / "sub-01" / "mrs").iterdir()):
        target = demo / "sub-03" / "mrs" / source.name.replace("sub-01", "sub-03")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".json":
            target.write_text(source.read_text().replace("sub-01", "sub-03"))
        else:
            shutil.copyfile(source, target)
    (demo / "participants.tsv").unlink()
    basis = tmp_path / "A.json"
    write_json_basis(simulate_basis("press", 123.2, 5e-4, 1024, echo_time_s=0.08,
                                    metabolites=SMALL_METABOLITES), str(basis))
    config = tmp_path / "c.toml"
    config.write_text(f"[basis]\nmetabolites = {json.dumps(SMALL_METABOLITES)}\n"
                      '[diffusion]\nmodels = ["monoexponential"]\n')
    out = tmp_path / "out"
    for label, extra in (("01", []), ("03", ["--basis", str(basis)])):
        assert cli.main([str(demo), str(out), "participant", "--participant-label", label,
                         "-w", str(tmp_path / "work"), "--skip-bids-validation", "--nprocs",
                         "1", "--config", str(config)] + extra) == 0
    caplog.set_level(logging.WARNING)  # the command line's logger does not propagate
    assert all(o.ok for o in run_group(out, ["01", "03"], demo, LOGGER))
    basis_of = {r["participant_id"]: r["basis"]
                for r in d.read_tsv(out / "group_amplitudes.tsv")}
    assert basis_of["sub-03"] == f"A.json sha256:{_sha(basis)[:12]}"
    assert basis_of["sub-01"].startswith("simulated sha256:")
    (warning,) = [r.getMessage() for r in caplog.records if "basis sets" in r.getMessage()]
    assert f"sub-03: A.json sha256:{_sha(basis)[:12]}" in warning
    assert f"sub-01: {basis_of['sub-01']}" in warning
    html = (out / "group.html").read_text()
    assert f"tNAA {basis_of['sub-01']}" in html and f"tNAA {basis_of['sub-03']}" in html
