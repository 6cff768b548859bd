"""Issue 17 items 4 and 10 in the workflow: problems that do not stop an acquisition reach its
``_qc.json`` warnings and the participant report, not only the log of one worker:

- discovery warnings (``AcquisitionInputs.warnings``, e.g. a water reference expected but not
  found because of an ``acq-`` mismatch);
- basis entries dropped by the fit because they have no signal in ``[fitting] ppm_range``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bids_app.config import load_default_config
from robust_support import demo, demo_master  # noqa: F401  (fixtures)
from workflows import interfaces as ifc


def _singlets(ppms: dict, cf_mhz=298.0, dwell_s=1 / 3000, n=1024):
    from pipeline.basis import Basis
    from pipeline.spectra import ppm_to_hz, time_axis_s

    t = time_axis_s(n, dwell_s)
    gauss = np.exp(-(np.pi * 6.0 * t) ** 2 / (4 * np.log(2)))  # 6 Hz FWHM, no far tails
    fids = [np.exp(2j * np.pi * ppm_to_hz(ppm, cf_mhz) * t) * gauss for ppm in ppms.values()]
    return Basis(list(ppms), np.array(fids), dwell_s, cf_mhz)


def _fitted_two_conditions(in_tmp: Path, **metadata):
    """``pre.nii`` (two conditions of NAA, Cr, GPC at 7 T, ``metadata`` added to the
    header), its fit with a basis that also has Lip (0.5 ppm, outside the 1.8-4.0 ppm
    window), and ``transients.tsv``; the FitSpectra outputs."""
    from bids_app.derivatives import TRANSIENTS_COLUMNS, write_tsv
    from pipeline.acquisition import Acquisition
    from pipeline.io.basis_formats import write_json_basis
    from pipeline.io.nifti_mrs import write_nifti_mrs

    basis = _singlets({"NAA": 2.01, "Cr": 3.03, "GPC": 3.21, "Lip": 0.5})
    write_json_basis(basis, in_tmp / "basis.json")
    rng = np.random.default_rng(5)
    fids = np.array([[4.0, 3.0, 1.0, 2.0], [3.0, 2.4, 0.8, 1.5]]) @ basis.fids
    fids = fids + 0.02 * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))
    acq = Acquisition(fids[:, None, None, :], basis.dwell_s, basis.cf_mhz, [0.0, 3000.0],
                      np.full((2, 3), np.nan),
                      metadata={"SpectrometerFrequency": [basis.cf_mhz], "EchoTime": 0.02,
                                "ResonantNucleus": ["1H"], **metadata})
    write_nifti_mrs(acq, in_tmp / "pre.nii")
    fitting = dict(load_default_config()["fitting"], ppm_range=[1.8, 4.0])
    out = ifc.FitSpectra(in_file=str(in_tmp / "pre.nii"), in_basis=str(in_tmp / "basis.json"),
                         options=json.dumps(fitting, sort_keys=True)).run().outputs
    write_tsv(in_tmp / "transients.tsv",
              [{"condition": c, "b_value": b, "direction": "n/a", "transient": 0,
                "freq_shift_hz": 0.0, "phase_shift_deg": 0.0, "rejected": 0}
               for c, b in enumerate((0, 3000))], TRANSIENTS_COLUMNS)
    return out


def _qc_report(in_tmp: Path, fit, reports: list, **inputs) -> dict:
    """``_qc.json`` of the QualityMetrics node on :func:`_fitted_two_conditions`' files."""
    qc = ifc.QualityMetrics(in_preproc=str(in_tmp / "pre.nii"), in_fit=fit.out_fit,
                            in_transients=str(in_tmp / "transients.tsv"),
                            in_amplitudes=fit.out_amplitudes, in_reports=reports,
                            fit_ppm_range=[1.8, 4.0], **inputs).run().outputs
    return json.loads(Path(qc.out_qc).read_text())


def test_dropped_basis_entry_and_discovery_warning_reach_the_qc_warnings(tmp_path,
                                                                          monkeypatch):
    """Lip (a 0.5 ppm Gaussian singlet here) has no signal in a 1.8-4.0 ppm window: the fit
    leaves it out, and says so in fit.json and _qc.json; a discovery warning is carried into
    _qc.json."""
    monkeypatch.chdir(tmp_path)  # nodes write into the working directory
    out = _fitted_two_conditions(tmp_path)
    fit_report = json.loads(Path(out.out_report).read_text())
    assert "Lip" not in fit_report["names"]
    (dropped,) = [w for w in fit_report["warnings"] if "Lip" in w]
    assert "(1.8, 4.0) ppm" in dropped
    note = "no water reference matches sub-01_acq-a_svs.nii.gz (looked for acq-a mrsref)"
    report = _qc_report(tmp_path, out, [out.out_report], discovery_warnings=[note])
    assert report["discovery_warnings"] == [note]
    assert note in report["warnings"] and dropped in report["warnings"]


def test_basis_report_warnings_reach_the_qc_warnings(tmp_path, monkeypatch):
    """The README's promise: a STEAM acquisition without a mixing time gets a basis simulated
    with TM = 10 ms "and the run says so": the basis report's warning is in _qc.json's
    top-level warnings, which the log and the participant report print."""
    monkeypatch.chdir(tmp_path)
    out = _fitted_two_conditions(tmp_path, PulseSequenceType="STEAM")
    basis = ifc.PrepareBasis(in_file=str(tmp_path / "pre.nii"),
                             options=json.dumps({"metabolites": ["NAA", "Cr", "GPC"]})
                             ).run().outputs
    basis_report = json.loads(Path(basis.out_report).read_text())
    assert basis_report["sequence"] == "steam" and basis_report["mixing_time_s"] == 0.010
    (tm_note,) = basis_report["warnings"]
    assert "TM = 10 ms" in tm_note and "MixingTime" in tm_note
    report = _qc_report(tmp_path, out, [basis.out_report, out.out_report])
    assert tm_note in report["warnings"]
    assert report["stages"]["basis_report.json"]["warnings"] == [tm_note]


def test_mm_report_warnings_reach_the_qc_warnings(tmp_path, monkeypatch):
    """A measured MM acquisition at another echo time is warned about in mm.json
    (tests/test_basis_match.py); the warning reaches _qc.json's top-level warnings."""
    monkeypatch.chdir(tmp_path)
    out = _fitted_two_conditions(tmp_path)
    note = "measured MM mm.nii (EchoTime 144 ms) was acquired at another echo time ..."
    mm_report = tmp_path / "mm.json"
    mm_report.write_text(json.dumps({"mode": "measured", "mm_entries": ["MM"],
                                     "warnings": [note]}))
    report = _qc_report(tmp_path, out, [str(mm_report), out.out_report])
    assert note in report["warnings"]


def test_acquisition_workflow_gives_its_discovery_warnings_to_the_qc_node(tmp_path):
    from bids_app.discovery import AcquisitionInputs
    from workflows.participant import init_acquisition_wf

    svs = tmp_path / "sub-01_acq-a_svs.nii.gz"
    svs.write_bytes(b"x")
    inputs = AcquisitionInputs(subject="01", session=None, svs=svs, sidecar={},
                               entities={"acquisition": "a"}, warnings=["looked for X"])
    wf = init_acquisition_wf(inputs, load_default_config(), tmp_path / "out")
    assert wf.get_node("qc_wf.qc").inputs.discovery_warnings == ["looked for X"]


@pytest.mark.slow  # one demo participant through the app (about a minute under load)
def test_acq_mismatched_water_reference_is_a_warning_in_qc_and_report(demo, tmp_path):  # noqa: F811
    """The issue's case: an ``acq-`` mismatch between svs and mrsref silently dropped the
    reference. Now the run goes on without it and says so in _qc.json and sub-01.html."""
    from bids_app import cli

    mrs = demo / "sub-01" / "mrs"
    sidecar = mrs / "sub-01_acq-dwpress_svs.json"
    meta = json.loads(sidecar.read_text())
    meta.pop("ReferenceSignal", None)  # found by entities, as most datasets do
    sidecar.write_text(json.dumps(meta))
    for path in list(mrs.glob("sub-01_acq-dwpress_mrsref.*")):
        path.rename(path.with_name(path.name.replace("acq-dwpress", "acq-other")))
    shutil.rmtree(demo / "sub-02")
    out = tmp_path / "out"
    assert cli.main([str(demo), str(out), "participant", "-w", str(tmp_path / "work"),
                     "--nprocs", "1", "--skip-bids-validation"]) == 0
    qc = json.loads((out / "sub-01" / "mrs" / "sub-01_acq-dwpress_qc.json").read_text())
    (note,) = qc["discovery_warnings"]
    assert "acq-other" in note or "sub-01_acq-other_mrsref" in note
    assert note in qc["warnings"]
    html = (out / "sub-01.html").read_text()
    import html as html_lib

    assert html_lib.escape(note, quote=False) in html or note in html


def test_basis_exclude_names_not_in_the_basis_reach_the_basis_report(tmp_path, monkeypatch):
    """Before: [basis] exclude = ["lip"] on a basis with "Lip" excluded nothing, silently."""
    monkeypatch.chdir(tmp_path)
    _fitted_two_conditions(tmp_path)
    basis = ifc.PrepareBasis(in_file=str(tmp_path / "pre.nii"),
                             basis_path=str(tmp_path / "basis.json"),
                             options=json.dumps({"exclude": ["lip", "GPC"]})).run().outputs
    report = json.loads(Path(basis.out_report).read_text())
    assert report["names"] == ["NAA", "Cr", "Lip"]  # GPC excluded, Lip kept
    assert report["warnings"][0] == (
        "[basis] exclude: 'lip' matches no name in the basis (did you mean 'Lip' for 'lip'?); "
        "ignored. Available: NAA, Cr, GPC, Lip")
    assert "no entry for tCho" in report["warnings"][1]  # GPC was its only choline entry
    assert len(report["warnings"]) == 2


def test_joint_model_names_not_in_the_basis_reach_fit_json(tmp_path, monkeypatch):
    from pipeline.io.basis_formats import read_basis, write_json_basis

    monkeypatch.chdir(tmp_path)
    _fitted_two_conditions(tmp_path)
    basis = read_basis(str(tmp_path / "basis.json"))
    write_json_basis(basis.subset(["NAA", "Cr", "GPC"]), tmp_path / "basis3.json")
    fitting = dict(load_default_config()["fitting"], ppm_range=[1.8, 4.0], mode="joint",
                   joint_models={"naa": "monoexponential"})
    out = ifc.FitSpectra(in_file=str(tmp_path / "pre.nii"), in_basis=str(tmp_path / "basis3.json"),
                         options=json.dumps(fitting, sort_keys=True)).run().outputs
    report = json.loads(Path(out.out_report).read_text())
    assert report["mode"] == "joint"
    assert ("[fitting] joint_models: 'naa' matches no name in the basis (did you mean 'NAA' "
            "for 'naa'?); ignored. Available: NAA, Cr, GPC") in report["warnings"]
