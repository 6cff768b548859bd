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


def _prepare(tmp_path, data: Path, basis: Path, **options) -> dict:
    from workflows.interfaces import PrepareBasis

    run = tmp_path / f"node_{len(list(tmp_path.glob('node_*')))}"
    run.mkdir()
    result = PrepareBasis(in_file=str(data), basis_path=str(basis),
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
    """The probe's case: Osprey PRESS TE 35 ms basis on PRESS TE 80 ms data."""
    data = _canonical(demo, tmp_path)
    with pytest.raises(ValueError) as err:
        _prepare(tmp_path, data, shared_data / PRESS_35)
    message = str(err.value)
    assert str(shared_data / PRESS_35) in message and str(data) in message
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
