"""A --basis file must belong to the data (probe s19b): its echo time and sequence family (and
STEAM mixing time) against the data's, and the main singlets present.

Before: the Osprey Siemens PRESS TE 35 ms basis on the demo's PRESS TE 80 ms data was used
silently (Ins/tCr 0.086 vs truth 0.623, exit 0); a basis without NAA let MM20 take the NAA
singlet without a word.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline.basis_match import (basis_acquisition, check_basis_acquisition, data_acquisition,
                                  missing_main_singlets, mm_echo_time_warning)
from robust_support import demo, demo_master, paths  # noqa: F401  (fixtures)

OSPREY = Path("osprey_3t/fit/basissets/3T/siemens/unedited")
PRESS_35 = OSPREY / "press/35/3T_PRESS_Siemens_35ms_noMM.BASIS"
SPECIAL_8_5 = OSPREY / "special/8_5/basis_siemens_special8_5.basis"
PHILIPS_PRESS_35 = Path("osprey_3t/fit/basissets/3T/philips/unedited/press/35/"
                        "3T_PRESS_Philips_35ms_noMM.BASIS")
STEAM_45 = Path("dmrs_7t_steam_synthetic/basis_STEAM_TE45_TM60.BASIS")


def _canonical(demo, tmp_path, label="01", **metadata) -> Path:
    """The demo participant's svs with its sidecar merged (as the workflow's canonical file),
    ``metadata`` overriding keys."""
    from pipeline.io.nifti_mrs import write_nifti_mrs
    from workflows.fileio import load_acquisition

    svs = paths(demo, label)["svs"]
    if label == "02":
        svs = svs.with_name("sub-02_acq-dwsteam_svs.nii.gz")
    acq = load_acquisition(svs, json.loads(svs.with_name(
        svs.name.replace(".nii.gz", ".json")).read_text()))
    acq = dataclasses.replace(acq, metadata={**acq.metadata, **metadata})
    return write_nifti_mrs(acq, tmp_path / f"canonical_{label}.nii.gz")


def _prepare(tmp_path, data: Path, basis: Path, data_source: str = "", **options) -> dict:
    from workflows.interfaces import PrepareBasis

    run = tmp_path / f"node_{len(list(tmp_path.glob('node_*')))}"
    run.mkdir()
    result = PrepareBasis(in_file=str(data), basis_path=str(basis), data_source=data_source,
                          options=json.dumps(options)).run(cwd=str(run))
    return json.loads(Path(result.outputs.out_report).read_text())


def test_basis_files_state_their_echo_time_and_sequence(shared_data):
    from pipeline.io.basis_formats import read_basis

    press = basis_acquisition(read_basis(shared_data / PRESS_35).provenance)
    assert press == {"echo_time_s": 0.035, "sequence": "PRESS", "mixing_time_s": None}
    special = basis_acquisition(read_basis(shared_data / SPECIAL_8_5).provenance)
    assert special["echo_time_s"] == 0.0085 and special["sequence"] == "Speci"
    steam = basis_acquisition(read_basis(shared_data / STEAM_45).provenance)  # ECHOT = -1
    assert steam == {"echo_time_s": None, "sequence": None, "mixing_time_s": None}


def test_comparison_refuses_warns_or_notes():
    data = data_acquisition({"EchoTime": 0.08, "PulseSequenceType": "PRESS"})
    assert data["sequence"] == "press" and data["echo_time_s"] == 0.08
    far = check_basis_acquisition({"echo_time_s": 0.035, "sequence": "PRESS",
                                   "mixing_time_s": None}, data, "b.BASIS", "d.nii", 5.0)
    (refusal,) = far["refusals"]
    assert "by 45 ms" in refusal and "TE 35 ms" in refusal and "TE 80 ms" in refusal
    assert "b.BASIS" in refusal and "d.nii" in refusal and "echo_time_tolerance_ms" in refusal
    near = check_basis_acquisition({"echo_time_s": 0.077, "sequence": None,
                                    "mixing_time_s": None}, data, "b", "d", 5.0)
    assert near["refusals"] == [] and "by 3 ms" in near["warnings"][0]
    same = check_basis_acquisition({"echo_time_s": 0.08000000001, "sequence": "press",
                                    "mixing_time_s": None}, data, "b", "d", 5.0)
    assert same == {"refusals": [], "warnings": [], "notes": [], "echo_time_difference_ms": 0}
    unknown = check_basis_acquisition({"echo_time_s": None, "sequence": None,
                                       "mixing_time_s": None}, data, "b", "d", 5.0)
    assert unknown["refusals"] == [] and "not checked" in unknown["notes"][0]
    steam = data_acquisition({"EchoTime": 0.02, "MixingTime": 0.01, "SequenceName": "svs_st"})
    tm = check_basis_acquisition({"echo_time_s": 0.02, "sequence": "steam",
                                  "mixing_time_s": 0.06}, steam, "b", "d", 5.0)
    (refusal,) = tm["refusals"]
    assert "mixing time differs" in refusal and "TM 60 ms" in refusal and "TM 10 ms" in refusal


def test_basis_for_another_echo_time_is_refused(demo, shared_data, tmp_path):  # noqa: F811
    """The probe's case: Osprey PRESS TE 35 ms basis on PRESS TE 80 ms data; the data file is
    named as the workflow names it (its BIDS URI), else by its path."""
    data = _canonical(demo, tmp_path)
    with pytest.raises(ValueError) as err:
        _prepare(tmp_path, data, shared_data / PRESS_35)
    message = str(err.value)
    assert str(shared_data / PRESS_35) in message and str(data) in message
    with pytest.raises(ValueError, match="data bids::sub-01/mrs/x_svs.nii.gz: TE 80 ms"):
        _prepare(tmp_path, data, shared_data / PRESS_35,
                 data_source="bids::sub-01/mrs/x_svs.nii.gz")
    assert "TE 35 ms, PRESS" in message and "TE 80 ms, PRESS" in message
    assert "[basis] echo_time_tolerance_ms = 5" in message


def test_basis_for_another_sequence_is_refused(demo, shared_data, tmp_path):  # noqa: F811
    """SPECIAL TE 8.5 ms on PRESS data: refused for the TE, and for the sequence even when the
    tolerance lets the TE pass; check_sequence = false lets it through."""
    data = _canonical(demo, tmp_path, EchoTime=0.0085)
    with pytest.raises(ValueError, match=r"made for SPECIAL .*'Speci'.* data are PRESS "
                                         r"\(PulseSequenceType='PRESS'\)"):
        _prepare(tmp_path, data, shared_data / SPECIAL_8_5)
    report = _prepare(tmp_path, data, shared_data / SPECIAL_8_5, check_sequence=False)
    assert report["sequence"] == "Speci" and report["data_sequence"] == "press"


def test_small_echo_time_difference_is_a_warning_with_times_recorded(
        demo, shared_data, tmp_path):  # noqa: F811
    data = _canonical(demo, tmp_path, EchoTime=0.037)
    report = _prepare(tmp_path, data, shared_data / PRESS_35)
    assert report["echo_time_s"] == 0.035 and report["data_echo_time_s"] == 0.037
    assert report["sequence"] == "PRESS" and report["data_sequence"] == "press"
    assert report["echo_time_difference_ms"] == pytest.approx(2.0)
    (warning,) = [w for w in report["warnings"] if "echo time" in w]
    assert "by 2 ms" in warning and str(shared_data / PRESS_35) in warning
    far = _prepare(tmp_path, _canonical(demo, tmp_path), shared_data / PRESS_35,
                   echo_time_tolerance_ms=50.0)
    assert any("by 45 ms" in w for w in far["warnings"])


def test_basis_without_echo_time_gets_a_note(demo, shared_data, tmp_path):  # noqa: F811
    """The published STEAM TE 45 basis states ECHOT = -1: used (as test_e2e_pregame does),
    with a note in the basis report that its echo time could not be checked."""
    report = _prepare(tmp_path, _canonical(demo, tmp_path, label="02"), shared_data / STEAM_45)
    assert report["echo_time_s"] is None and report["echo_time_difference_ms"] is None
    (note,) = report["notes"]
    assert "not checked: the basis states none" in note and str(shared_data / STEAM_45) in note
    assert not [w for w in report["warnings"] if "echo time" in w]


def test_basis_without_main_singlets_is_warned_about(demo, shared_data, tmp_path):  # noqa: F811
    """The probe's case: a basis without NAA/NAAG (here the Osprey basis with both excluded)."""
    import pipeline.io.basis_formats as formats

    names = formats.read_basis(shared_data / PRESS_35).names
    assert missing_main_singlets(names) == []
    assert missing_main_singlets([n for n in names if n not in ("NAA", "NAAG", "GPC", "PCh")]) \
        == ["tNAA", "tCho"]
    report = _prepare(tmp_path, _canonical(demo, tmp_path, EchoTime=0.035),
                      shared_data / PRESS_35, exclude=["NAA", "NAAG"])
    (warning,) = [w for w in report["warnings"] if "no entry for" in w]
    assert str(shared_data / PRESS_35) in warning and "tNAA (NAA/NAAG, 2.008 ppm)" in warning
    assert "tCr" not in warning and "tCho" not in warning


def test_mm_echo_time_warning():
    text = mm_echo_time_warning(0.144, 0.03, "mm.nii", "svs.nii", 5.0)
    assert "mm.nii (EchoTime 144 ms)" in text and "svs.nii (EchoTime 30 ms)" in text
    assert mm_echo_time_warning(0.033, 0.03, "mm", "svs", 5.0) == ""
    assert mm_echo_time_warning(None, 0.03, "mm", "svs", 5.0) == ""


OSPREY_MM = Path("osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-01/ses-01/mrs")


def _sdat_nifti(shared_data, relpath: str, out: Path, echo_time_s: float) -> Path:
    """An Osprey Philips SDAT as NIfTI-MRS with ``EchoTime`` (s) in its header."""
    import numpy as np

    from pipeline.acquisition import Acquisition
    from pipeline.io.mm_spectra import read_philips_sdat
    from pipeline.io.nifti_mrs import write_nifti_mrs

    fid, dwell_s, cf_mhz, _ = read_philips_sdat(shared_data / OSPREY_MM / relpath)
    acq = Acquisition(np.asarray(fid)[None, None, None, :], dwell_s, cf_mhz, [0.0],
                      np.full((1, 3), np.nan),
                      metadata={"SpectrometerFrequency": [cf_mhz], "EchoTime": echo_time_s,
                                "ResonantNucleus": ["1H"]})
    return write_nifti_mrs(acq, out)


def _mm_report(shared_data, tmp_path, mm_te_s: float, **inputs) -> dict:
    """mm.json of the MacromoleculeBasis node: the Osprey metabolite-nulled (inverted) PRESS
    acquisition (EchoTime ``mm_te_s``) with the PRESS metabolite data (EchoTime 0.03 s) and
    the Osprey Philips PRESS 35 ms basis."""
    from pipeline.io.basis_formats import read_basis, write_json_basis
    from workflows.interfaces import MacromoleculeBasis

    data = _sdat_nifti(shared_data, "sub-01_ses-01_press/sub-01_ses-01_PRESS_raw-act_noID.SDAT",
                       tmp_path / "svs.nii.gz", 0.03)
    mm = _sdat_nifti(shared_data, "sub-01_ses-01_press-inverted/"
                     "sub-01_ses-01_PRESS-Inverted_TI-600_raw-act_noID.SDAT",
                     tmp_path / "mm.nii.gz", mm_te_s)
    write_json_basis(read_basis(shared_data / PHILIPS_PRESS_35), tmp_path / "basis.json")
    run = tmp_path / f"mm_{mm_te_s:g}"
    run.mkdir()
    result = MacromoleculeBasis(in_basis=str(tmp_path / "basis.json"), mm_file=str(mm),
                                in_file=str(data), **inputs).run(cwd=str(run))
    return json.loads(Path(result.outputs.out_report).read_text())


def test_measured_mm_at_another_echo_time_is_warned_about(shared_data, tmp_path):
    """The probe's case: MM sidecar EchoTime 0.144 s against the metabolite data's 0.03 s was
    used without a word. Now mm.json records both echo times and warns naming both files."""
    report = _mm_report(shared_data, tmp_path, 0.144,
                        names={"data": "bids::sub-01/mrs/sub-01_svs.nii.gz",
                               "mm": "bids::sub-01/mrs/sub-01_acq-mm_svs.nii.gz"})
    assert report["mode"] == "measured" and "MM" in report["mm_entries"]
    assert report["data_echo_time_s"] == 0.03 and report["mm_echo_time_s"] == 0.144
    (warning,) = report["warnings"]
    assert "bids::sub-01/mrs/sub-01_acq-mm_svs.nii.gz (EchoTime 144 ms)" in warning
    assert "bids::sub-01/mrs/sub-01_svs.nii.gz (EchoTime 30 ms)" in warning
    same = _mm_report(shared_data, tmp_path, 0.032)  # within the 5 ms tolerance
    assert same["warnings"] == [] and same["mm_echo_time_s"] == 0.032


def test_basis_mode_with_a_basis_without_mm_is_refused(shared_data, tmp_path):
    """[macromolecules] mode = "basis" with the Osprey noMM basis: refused naming the file
    (before: no MM fitted, exit 0)."""
    from pipeline.io.basis_formats import read_basis, write_json_basis
    from workflows.interfaces import MacromoleculeBasis

    write_json_basis(read_basis(shared_data / PHILIPS_PRESS_35), tmp_path / "basis.json")
    node = MacromoleculeBasis(in_basis=str(tmp_path / "basis.json"),
                              options=json.dumps({"mode": "basis"}))
    with pytest.raises(ValueError) as err:
        node.run(cwd=str(tmp_path))
    assert f"mode = 'basis' but {shared_data / PHILIPS_PRESS_35} has no MM entry" in str(err.value)
