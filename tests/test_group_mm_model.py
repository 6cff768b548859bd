"""Group level: how macromolecules were modelled, the basis in ``group_qc.tsv``, and a basis
whose grid comes from a control file beside it (session 27).

Found (2026-12-08, exit 0, no warning): two runs with one basis file, one with the app's
parametric MM and one with a measured MM scan (or none, or the MM shape fixed from the highest
b), were pooled as one basis: the group tables said nothing of the MM model. ``group_qc.tsv``
had no ``basis`` column. A single LCModel ``.RAW`` given as ``--basis`` takes its dwell time
from a control file beside it (``DELTAT``); only the ``.RAW`` was hashed, so an edited control
file (another dwell time: another basis on the data grid) left the basis identity, the work
cache key and the group level's verdict unchanged: an edited basis file of any kind was not
seen by the group level at all.

The MM stage's own node writes ``mm.json`` on real files; the group's participants carry the
stage reports as the participant level writes them."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import copy_good, demo, demo_master, paths  # noqa: E402,F401

from bids_app import derivatives as d  # noqa: E402
from bids_app.config import named_file_digests  # noqa: E402
from bids_app.group import collect_tables, run_group  # noqa: E402
from bids_app.group_report import group_parameter_figures  # noqa: E402
from bids_app.runlog import Outcome, write_run_records, write_summary  # noqa: E402
from pipeline.basis import Basis  # noqa: E402
from pipeline.simulate.basis_simulation import simulate_basis  # noqa: E402
from workflows.interfaces.fit import basis_identity  # noqa: E402

LOGGER = logging.getLogger("test_group_mm_model")
"""The group level's logger here (the app's own does not propagate once a command line ran in
this worker)."""

CF_MHZ, DWELL_S, TE_S = 123.2, 2.5e-4, 0.08
SMALL = ["NAA", "Cr", "PCr"]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _json_basis(path: Path) -> Path:
    from pipeline.io.basis_formats import write_json_basis

    write_json_basis(simulate_basis("press", CF_MHZ, DWELL_S, 256, echo_time_s=TE_S,
                                    metabolites=SMALL), str(path))
    return path


def _mm_report(mode: str, lipids: bool = True, measured: Path | None = None) -> dict:
    """``mm.json`` as the MM stage writes it (its identity as
    :func:`test_the_mm_stage_records_its_model_and_the_measured_files_content` finds it)."""
    entries = {"parametric": ["MM09", "MM20"], "measured": ["MM"]}.get(mode, [])
    identity = {"mode": mode, "lipids": lipids}
    if measured is not None:
        identity.update(file=measured.name, sha256=_sha(measured))
    return {"mode": mode, "mm_entries": entries + (["Lip09", "Lip13", "Lip20"] if lipids
                                                   else []),
            "warnings": [], "identity": identity}


def _write_participant(out: Path, label: str, stages: dict) -> Path:
    """One acquisition's tables and ``_qc.json`` with the given stage reports."""
    folder = out / f"sub-{label}" / "mrs"
    stem = f"sub-{label}_acq-x"
    rows = [{"condition": 0, "b_value": 0.0, "direction": "n/a", "metabolite": name,
             "amplitude": amp, "crlb": 0.1 * amp, "crlb_percent": 10.0, "fit_flags": "n/a"}
            for name, amp in {"tNAA": 8.0 + int(label) / 10, "tCr": 6.4}.items()]
    d.write_tsv(folder / f"{stem}_amplitudes.tsv", rows, d.amplitudes_columns(rows))
    d.write_tsv(folder / f"{stem}_diffusion.tsv",
                [{"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
                  "value": 0.1 + int(label) / 100, "unit": "um2/ms", "applicable": 1}],
                d.DIFFUSION_COLUMNS)
    qc = folder / f"{stem}_qc.json"
    d.write_json(qc, {"summary": {"snr": 20.0 + int(label), "qc_status": "ok"}, "flags": [],
                      "stages": stages})
    return qc


def _finish(out: Path, labels) -> Path:
    outcomes, started = [Outcome(label) for label in labels], time.time()
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)
    return out


def _file_basis_report(path: Path) -> dict:
    basis = Basis(names=SMALL, fids=np.zeros((3, 4), complex), dwell_s=DWELL_S, cf_mhz=CF_MHZ)
    return {"source": "file", "path": str(path), "identity": basis_identity(str(path), basis, [])}


# --- 1. the MM model ---------------------------------------------------------------------------

def test_the_mm_stage_records_its_model_and_the_measured_files_content(demo, tmp_path):
    """The MM stage's node on the demo's 3 T data (its svs used as the measured MM scan)."""
    from bids_app.group_basis import mm_model_label
    from pipeline.io.nifti_mrs import write_nifti_mrs
    from workflows.fileio import load_acquisition
    from workflows.interfaces import MacromoleculeBasis

    svs = paths(demo, "01")["svs"]
    acq = load_acquisition(svs, json.loads(paths(demo, "01")["svs_json"].read_text()))
    canonical = write_nifti_mrs(acq, tmp_path / "canonical_mm.nii.gz")
    basis = tmp_path / "basis.json"
    from pipeline.io.basis_formats import write_json_basis
    write_json_basis(simulate_basis("press", acq.cf_mhz, acq.dwell_s, 512, echo_time_s=TE_S,
                                    metabolites=SMALL), str(basis))
    reports = {}
    for name, inputs in {"measured": {"mm_file": str(canonical), "mm_source": str(svs),
                                      "options": json.dumps({"mode": "auto", "lipids": True})},
                         "parametric": {"options": json.dumps({"mode": "auto",
                                                               "lipids": False})}}.items():
        run = tmp_path / name
        run.mkdir()
        result = MacromoleculeBasis(in_basis=str(basis), **inputs).run(cwd=str(run))
        reports[name] = json.loads(Path(result.outputs.out_report).read_text())
    assert reports["measured"]["identity"] == {"mode": "measured", "lipids": True,
                                               "file": svs.name, "sha256": _sha(svs)}
    assert reports["parametric"]["identity"] == {"mode": "parametric", "lipids": False}
    fixed = {"options": {"mm_mode": "fixed_shape_from_highest_b"}}
    assert mm_model_label({"stages": {"mm.json": reports["measured"], "fit.json": fixed}}) == (
        f"measured ({svs.name} sha256:{_sha(svs)[:12]}) + lipids + fixed shape from highest b")
    assert mm_model_label({"stages": {"mm.json": reports["parametric"]}}) == "parametric"


def _mm_study(tmp_path: Path) -> tuple[Path, dict]:
    """Five participants, one basis file: 01, 02 parametric MM with lipids; 03 and 04 each
    its own measured MM scan with lipids; 05 parametric with lipids, MM shape fixed."""
    basis = _json_basis(tmp_path / "A.json")
    scans = {label: tmp_path / f"sub-{label}_acq-mm_svs.nii.gz" for label in ("03", "04")}
    for label, scan in scans.items():
        scan.write_bytes(f"measured MM of sub-{label}".encode())
    out = tmp_path / "out"
    mm = {"01": _mm_report("parametric"), "02": _mm_report("parametric"),
          "03": _mm_report("measured", measured=scans["03"]),
          "04": _mm_report("measured", measured=scans["04"]), "05": _mm_report("parametric")}
    for label, report in mm.items():
        mode = "fixed_shape_from_highest_b" if label == "05" else "free"
        _write_participant(out, label, {"basis_report.json": _file_basis_report(basis),
                                        "mm.json": report,
                                        "fit.json": {"options": {"mm_mode": mode}}})
    return _finish(out, mm), {label: _sha(scan)[:12] for label, scan in scans.items()}


def test_the_group_tables_state_each_rows_mm_model_and_a_mixed_group_is_warned(tmp_path,
                                                                               caplog):
    out, sha = _mm_study(tmp_path)
    caplog.set_level(logging.WARNING)
    assert all(o.ok for o in run_group(out, logger=LOGGER))
    expected = {"sub-01": "parametric + lipids", "sub-02": "parametric + lipids",
                "sub-03": f"measured (sub-03_acq-mm_svs.nii.gz sha256:{sha['03']}) + lipids",
                "sub-04": f"measured (sub-04_acq-mm_svs.nii.gz sha256:{sha['04']}) + lipids",
                "sub-05": "parametric + lipids + fixed shape from highest b"}
    amplitudes = d.read_tsv(out / "group_amplitudes.tsv")
    assert list(amplitudes[0])[-3:] == ["mm_model", "basis", "fit_flags"]
    assert {r["participant_id"]: r["mm_model"] for r in amplitudes} == expected
    diffusion = d.read_tsv(out / "group_diffusion.tsv")
    assert list(diffusion[0])[-3:] == ["b_max_s_mm2", "mm_model", "basis"]
    assert {r["participant_id"]: r["mm_model"] for r in diffusion} == expected
    (warning,) = [r.getMessage() for r in caplog.records
                  if "different macromolecule models" in r.getMessage()]
    assert (f"sub-03: measured (sub-03_acq-mm_svs.nii.gz sha256:{sha['03']}) + lipids | "
            f"sub-04: measured (sub-04_acq-mm_svs.nii.gz sha256:{sha['04']}) + lipids | "
            "sub-01, sub-02: parametric + lipids | sub-05: parametric + lipids + fixed shape "
            "from highest b") in warning
    assert "basis sets" not in " ".join(r.getMessage() for r in caplog.records)
    assert "different macromolecule models" in (out / "group.html").read_text()
    tables, _ = collect_tables(out, ["01", "02", "03", "04", "05"])
    (figure, *_) = group_parameter_figures(tables["diffusion"], {}, tables["amplitudes"])
    # split by the model, the two measured scans in one column (not one per file)
    for column in ("tNAA parametric + lipids", "tNAA measured + lipids",
                   "tNAA parametric + lipids + fixed shape from highest b"):
        assert column in figure["svg"]
    assert "sha256" not in figure["svg"]


def test_measured_mm_scans_of_each_participant_are_one_model(tmp_path, caplog):
    """Each participant's own measured MM scan differs by design: not a mixed group."""
    out, _ = _mm_study(tmp_path)
    caplog.set_level(logging.WARNING)
    run_group(out, ["03", "04"], logger=LOGGER)
    assert not [r for r in caplog.records if "macromolecule" in r.getMessage()]
    assert "macromolecule models" not in (out / "group.html").read_text()


def test_a_run_that_recorded_no_mm_identity_is_stated_as_such(tmp_path):
    out = tmp_path / "out"
    _write_participant(out, "01", {"mm.json": {"mode": "measured", "mm_entries": ["MM"]}})
    _write_participant(out, "02", {"mm.json": {"mode": "parametric",
                                               "mm_entries": ["MM09", "Lip13"]}})
    _write_participant(out, "03", {})
    run_group(_finish(out, ["01", "02", "03"]), logger=LOGGER)
    assert {r["participant_id"]: r["mm_model"]
            for r in d.read_tsv(out / "group_amplitudes.tsv")} == {
        "sub-01": "measured (content not recorded)", "sub-02": "parametric + lipids",
        "sub-03": "n/a"}


# --- 2. group_qc.tsv ---------------------------------------------------------------------------

def test_group_qc_states_each_acquisitions_basis_and_mm_model_last(tmp_path):
    out, sha = _mm_study(tmp_path)
    run_group(out, logger=LOGGER)
    qc = d.read_tsv(out / "group_qc.tsv")
    amplitudes = d.read_tsv(out / "group_amplitudes.tsv")
    header = list(qc[0])
    assert header[6:9] == ["qc_status", "qc_failed", "qc_warned"]
    assert header[-3:] == ["snr", "mm_model", "basis"]
    basis = f"A.json sha256:{_sha(tmp_path / 'A.json')[:12]}"
    assert {r["participant_id"]: r["basis"] for r in qc} == {f"sub-0{i}": basis
                                                            for i in range(1, 6)}
    assert {r["participant_id"]: r["mm_model"] for r in qc} == {
        r["participant_id"]: r["mm_model"] for r in amplitudes}
    assert [float(r["snr"]) for r in qc] == [21.0, 22.0, 23.0, 24.0, 25.0]


# --- 3. a basis read with the files beside it ---------------------------------------------------

def _raw_file(path: Path, ppm: float) -> Path:
    """An LCModel .RAW of one singlet (no dwell time: LCModel takes it from the control
    file), conjugated as LCModel's own .RAW files store FIDs."""
    t = np.arange(1024) * DWELL_S
    fid = np.conj(np.exp(-2j * np.pi * (ppm - 4.65) * CF_MHZ * t - t / 0.1))
    values = "\n".join(f"{v.real:15.6E}{v.imag:15.6E}" for v in fid)
    path.write_text(f" $SEQPAR\n HZPPPM={CF_MHZ}\n $END\n $NMID\n ID='{path.stem}', "
                    f"FMTDAT='(2E15.6)', VOLUME=1., TRAMP=1.\n $END\n{values}\n")
    return path


def _control_file(path: Path, dwell_s: float) -> Path:
    path.write_text(f" $LCMODL\n FILBAS='unused.BASIS'\n DELTAT={dwell_s}\n HZPPPM={CF_MHZ}\n"
                    " $END\n")
    return path


def test_a_single_raw_basis_is_identified_with_the_control_file_its_grid_comes_from(tmp_path):
    from pipeline.io.input_checks import read_basis_file

    raw = _raw_file(tmp_path / "NAA.RAW", 2.008)
    control = _control_file(tmp_path / "fit.control", DWELL_S)
    before = read_basis_file(raw)
    identity = basis_identity(str(raw), before, [])
    digests = named_file_digests({}, tmp_path, raw)
    assert before.dwell_s == DWELL_S
    assert identity["read_with"] == ["fit.control"]
    _control_file(control, 2 * DWELL_S)  # the .RAW unchanged
    after = read_basis_file(raw)
    assert after.dwell_s == 2 * DWELL_S  # another basis: NAA moves on the data grid
    assert basis_identity(str(raw), after, [])["sha256"] != identity["sha256"]
    assert named_file_digests({}, tmp_path, raw)["basis"] != digests["basis"]
    # a .BASIS or JSON file is read alone: its identity stays the file's own digest
    json_basis = _json_basis(tmp_path / "A.json")
    assert basis_identity(str(json_basis), None, [])["sha256"] == _sha(json_basis)
    assert "read_with" not in basis_identity(str(json_basis), None, [])


def test_an_edited_basis_or_control_file_fails_the_participant_at_the_group_level(tmp_path,
                                                                                  caplog):
    folder = tmp_path / "raw"
    folder.mkdir()
    raw = _raw_file(folder / "NAA.RAW", 2.008)
    control = _control_file(folder / "fit.control", DWELL_S)
    json_basis = _json_basis(tmp_path / "A.json")
    out = tmp_path / "out"
    for label, path in (("01", raw), ("02", json_basis), ("03", json_basis)):
        _write_participant(out, label, {"basis_report.json": _file_basis_report(path)})
    _finish(out, ["01", "02", "03"])
    assert all(o.ok for o in run_group(out, logger=LOGGER))  # unchanged: current
    _control_file(control, 2 * DWELL_S)
    json_basis.write_text(json_basis.read_text().replace('"NAA"', '"NAAX"', 1))
    outcomes = {o.subject: o for o in run_group(out, logger=LOGGER)}
    assert outcomes["01"].errors == [
        f"{raw}, {control}: changed since run {_run_id(out, '01')} fitted sub-01_acq-x with it "
        "(--basis): its results are not current (rerun the participant level)"]
    assert f"{json_basis}: changed since run" in outcomes["02"].errors[0]
    assert not outcomes["03"].ok
    status = {r["participant_id"]: r["status"] for r in d.read_tsv(out / "group_status.tsv")}
    assert status == {"sub-01": "failed", "sub-02": "failed", "sub-03": "failed"}
    assert d.read_tsv(out / "group_amplitudes.tsv") == []
    # a basis no longer where the run read it (another machine, a container) is not judged
    json_basis.unlink()
    outcomes = {o.subject: o for o in run_group(out, logger=LOGGER)}
    assert outcomes["02"].ok and outcomes["03"].ok and not outcomes["01"].ok


def _run_id(out: Path, label: str) -> str:
    return json.loads((out / f"sub-{label}" / f"sub-{label}_run.json").read_text())["run_id"]


@pytest.mark.slow
def test_demo_participants_fitted_with_different_mm_models_are_named_and_split(demo, tmp_path,
                                                                              caplog):
    """End to end: sub-03 holds sub-01's data; sub-01 with the default parametric MM and
    lipids, sub-03 with ``[macromolecules] mode = "none"``, ``lipids = false``; one basis.
    Measured 2026-12-08: tNAA 9.22 and 9.17 mM, tCho 1.77 and 1.74 mM, pooled unlabelled
    before."""
    from bids_app import cli
    from bids_app.demo import SMALL_METABOLITES

    copy_good(demo, "03")
    (demo / "participants.tsv").unlink()
    common = (f"[basis]\nmetabolites = {json.dumps(SMALL_METABOLITES)}\n"
              '[diffusion]\nmodels = ["monoexponential"]\n')
    out = tmp_path / "out"
    for label, extra in (("01", ""), ("03", '[macromolecules]\nmode = "none"\nlipids = false\n')):
        config = tmp_path / f"{label}.toml"
        config.write_text(common + extra)
        assert cli.main([str(demo), str(out), "participant", "--participant-label", label,
                         "-w", str(tmp_path / "work"), "--skip-bids-validation", "--nprocs",
                         "1", "--config", str(config)]) == 0
    caplog.set_level(logging.WARNING)
    assert all(o.ok for o in run_group(out, ["01", "03"], demo, LOGGER))
    rows = d.read_tsv(out / "group_amplitudes.tsv")
    assert {r["participant_id"]: r["mm_model"] for r in rows} == {
        "sub-01": "parametric + lipids", "sub-03": "none"}
    assert len({r["basis"] for r in rows}) == 1
    tnaa = {r["participant_id"]: float(r["amplitude"]) for r in rows
            if r["metabolite"] == "tNAA" and r["condition"] == "0"}
    assert tnaa["sub-03"] != pytest.approx(tnaa["sub-01"], rel=1e-3)  # the model matters
    (warning,) = [r.getMessage() for r in caplog.records
                  if "different macromolecule models" in r.getMessage()]
    assert "sub-03: none | sub-01: parametric + lipids" in warning
    html = (out / "group.html").read_text()
    assert "tNAA none" in html and "tNAA parametric + lipids" in html


@pytest.mark.parametrize("stages, mm_model, basis", [
    (["basis_report.json"], "n/a", "n/a"),
    ({"mm.json": {"mode": "parametric"}, "fit.json": {"options": ["mm_mode"]}}, "parametric",
     "n/a"),
    ({"mm.json": {"mode": "parametric"}, "fit.json": ["options"]}, "parametric", "n/a"),
    ({"basis_report.json": {"source": "file", "path": 5,
                            "identity": {"source": "file", "sha256": "ab"}}}, "n/a",
     "5 sha256:ab")])
def test_a_damaged_qc_record_does_not_stop_the_group(tmp_path, stages, mm_model, basis):
    """A ``_qc.json`` whose ``stages`` (or a stage's ``options``, or the basis path) is not
    what the app writes: before (review, 2026-12-08) the group level raised AttributeError
    or TypeError and no participant was collected (the MM label and the --basis check are
    read outside the per-file error handling). Now the damaged record states what it can
    (n/a for the rest) and the other participant is collected as usual."""
    out = tmp_path / "out"
    _write_participant(out, "01", stages)
    json_basis = _json_basis(tmp_path / "A.json")
    _write_participant(out, "02", {"basis_report.json": _file_basis_report(json_basis),
                                   "mm.json": _mm_report("parametric")})
    outcomes = {o.subject: o for o in run_group(_finish(out, ["01", "02"]), logger=LOGGER)}
    assert outcomes["01"].ok and outcomes["02"].ok
    rows = {r["participant_id"]: r for r in d.read_tsv(out / "group_qc.tsv")}
    assert (rows["sub-01"]["mm_model"], rows["sub-01"]["basis"]) == (mm_model, basis)
    assert (rows["sub-02"]["mm_model"], rows["sub-02"]["basis"]) == (
        "parametric + lipids", f"A.json sha256:{_sha(json_basis)[:12]}")


def test_mm_fit_options_off_their_defaults_are_part_of_the_mm_model():
    """Two runs of one basis and one MM mode whose MM components were fitted differently
    (``[fitting] mm_lineshape = "per_entry"``: README, +26 % tNAA/tCr against LCModel on Osprey;
    ``mm_shape_prior_sd = 0``: the components free) are different MM models: before, both
    were labelled ``parametric + lipids`` and pooled. Values equal to the packaged defaults,
    and runs that did not record the option, add nothing."""
    from bids_app.config import load_default_config
    from bids_app.group_basis import mm_content, mm_model_label

    defaults = load_default_config()["fitting"]
    mm = {"mode": "parametric", "identity": {"mode": "parametric", "lipids": True}}

    def label(options):
        return mm_model_label({"stages": {"mm.json": mm, "fit.json": {"options": options}}})

    assert label({key: defaults[key] for key in ("mm_shape_prior_sd", "mm_lineshape",
                                                 "joint_mm_model")}) == "parametric + lipids"
    assert label({}) == "parametric + lipids"
    changed = label({**defaults, "mm_lineshape": "per_entry", "mm_shape_prior_sd": 0.0})
    assert changed == "parametric + lipids + mm_shape_prior_sd = 0.0 + mm_lineshape = per_entry"
    assert mm_content(changed) != mm_content(label(defaults))
