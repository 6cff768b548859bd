"""dmrs-bids-convert refusals and fixes from the conversion probe s20: BIDS labels that are not
alphanumeric, the pulse sequence taken from an exam-card name, anonymisation of NIfTI-MRS
inputs, an empty participants.tsv, implausible frequencies or spectral widths and b-values in
ms/um^2 stated as s/mm^2 in a mapping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_app.convert import ConversionError, convert_dataset, load_mapping, main
from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import write_nifti_mrs

PATIENT = {"PatientName": "DOE^JANE", "PatientID": "MRN1234567", "PatientDoB": "19700101",
           "DeviceSerialNumber": "12345"}


def _write_input(path: Path, cf_mhz: float = 123.2, dwell_s: float = 5e-4, n_dyn: int = 4,
                 **metadata) -> Path:
    """A NIfTI-MRS input of ``n_dyn`` decaying FIDs along DIM_DYN."""
    t = np.arange(256) * dwell_s
    fid = np.exp(2j * np.pi * 30 * t - t / 0.05)
    acq = Acquisition(fids=np.tile(fid, (1, n_dyn, 1, 1)), dwell_s=dwell_s, cf_mhz=cf_mhz,
                      b_values_s_mm2=np.zeros(1), directions=np.full((1, 3), np.nan),
                      nucleus="1H", ref_ppm=4.65,
                      metadata={"EchoTime": 0.03, "PulseSequenceType": "PRESS", **metadata},
                      source="test")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_nifti_mrs(acq, path)


def _header(path: Path) -> dict:
    ext = [e for e in nib.load(str(path)).header.extensions if e.get_code() == 44][0]
    return json.loads(ext.get_content())


def _entry(files: str, extra: str = "", participant: str = "01", suffix: str = "svs") -> str:
    return (f'[[acquisition]]\nparticipant = "{participant}"\nsuffix = "{suffix}"\n'
            f'files = ["{files}"]\n{extra}\n')


def _one_input(tmp_path: Path, extra: str = "", **input_kwargs) -> Path:
    """src/a.nii.gz (:func:`_write_input`) and a mapping m.toml converting it."""
    _write_input(tmp_path / "src" / "a.nii.gz", **input_kwargs)
    mapping = tmp_path / "m.toml"
    mapping.write_text(_entry("a.nii.gz", extra))
    return mapping


def _with_participants(tmp_path: Path, text: str) -> Path:
    """A BIDS folder holding only participants.tsv with ``text``."""
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "participants.tsv").write_text(text)
    return bids


# ----------------------------------------------------------------- labels

@pytest.mark.parametrize("key, value", [("acq", "press_30"), ("acq", "press-60"),
                                        ("session", "1.5"), ("task", "rest state"),
                                        ("participant", "01_a"), ("run", "1a")])
def test_labels_that_are_not_alphanumeric_are_refused_naming_entry_key_value(tmp_path, key,
                                                                             value):
    """acq = "press_30" was written as sub-01_acq-press_30_svs; pybids parsed it as acq-press
    and the app paired an acq-press-60 acquisition (no water reference) with it, exit 0."""
    mapping = tmp_path / "m.toml"
    extra = f'{key} = "{value}"\n' if key != "participant" else ""
    mapping.write_text(_entry("a.nii.gz", extra, participant=value if key == "participant"
                              else "01"))
    with pytest.raises(ConversionError) as err:
        load_mapping(mapping)
    message = str(err.value)
    assert message.startswith(f"{mapping}: acquisition 1 (no id): {key} = {value!r} is not a "
                              "valid BIDS")
    assert ("a run is a number" if key == "run" else "BIDS labels are alphanumeric") in message


def test_valid_labels_and_entity_prefixes_are_accepted(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text(_entry("a.nii.gz", 'session = "ses-1"\nacq = "press30"\ntask = "a+b"\n'
                                          "run = 2\n", participant="sub-01"))
    assert load_mapping(mapping)["acquisition"][0]["acq"] == "press30"


def test_invalid_label_writes_nothing_and_exits_2(tmp_path, capsys):
    mapping = _one_input(tmp_path, 'acq = "press_30"')
    assert main([str(mapping), str(tmp_path / "bids"), "--source-dir",
                 str(tmp_path / "src")]) == 2
    assert "acq = 'press_30' is not a valid BIDS acq label" in capsys.readouterr().err
    assert not (tmp_path / "bids").exists()


# ----------------------------------------------------------------- anonymisation

@pytest.mark.parametrize("anonymise", [True, False])
def test_anonymise_strips_patient_keys_of_nifti_mrs_inputs(tmp_path, anonymise):
    """PatientName, PatientID and PatientDoB of a NIfTI-MRS input were copied into the BIDS
    file although anonymise = true (the default) removes them on the spec2nii route."""
    _write_input(tmp_path / "src" / "a.nii.gz", PatientSex="F", **PATIENT)
    mapping = tmp_path / "m.toml"
    mapping.write_text(f"[dataset]\nanonymise = {str(anonymise).lower()}\n"
                       + _entry("a.nii.gz"))
    log = []
    out = convert_dataset(mapping, tmp_path / "bids", tmp_path / "src", log=log.append)[0]
    header = _header(out)
    sidecar = json.loads(out.with_suffix("").with_suffix(".json").read_text())
    assert header["PatientSex"] == "F"  # not marked identifying by the NIfTI-MRS standard
    if anonymise:
        assert not set(PATIENT) & (set(header) | set(sidecar))
        notes = [m for m in log if "anonymised" in m]
        assert len(notes) == 1 and all(k in notes[0] for k in PATIENT)
        assert notes[0] in [f"note: {n}" for n in header["ConversionNotes"]["Value"]]
    else:
        assert {k: header[k] for k in PATIENT} == PATIENT


# ----------------------------------------------------------------- participants.tsv

def test_empty_participants_tsv_is_filled(tmp_path):
    """An existing empty participants.tsv gave an IndexError traceback, exit 1, after every
    NIfTI file was written."""
    mapping, bids = _one_input(tmp_path), _with_participants(tmp_path, "\n")
    assert main([str(mapping), str(bids), "--source-dir", str(tmp_path / "src"), "-q"]) == 0
    assert (bids / "participants.tsv").read_text() == "participant_id\nsub-01\n"


def test_participants_tsv_without_participant_id_is_refused_before_writing(tmp_path):
    mapping = _one_input(tmp_path)
    bids = _with_participants(tmp_path, "subject\tage\nsub-01\t30\n")
    with pytest.raises(ConversionError, match="participants.tsv is 'subject', not "
                                              "'participant_id'"):
        convert_dataset(mapping, bids, tmp_path / "src", log=lambda *_: None)
    assert sorted(p.name for p in bids.rglob("*")) == ["participants.tsv"]


# ----------------------------------------------------------------- unit slips

@pytest.mark.parametrize("kwargs, expected", [
    ({"cf_mhz": 123.2e6}, "SpectrometerFrequency 1.232e+08 MHz is outside 10-1300 MHz"),
    ({"dwell_s": 0.5}, "spectral width 2 Hz (1 / dwell time 0.5 s, pixdim[4])")])
def test_implausible_frequency_or_width_is_refused_at_conversion(tmp_path, kwargs, expected,
                                                                 capsys):
    """Both converted with exit 0; the app then failed with "coils: MemoryError" or
    "zero-size array to reduction operation maximum"."""
    mapping = _one_input(tmp_path, **kwargs)
    assert main([str(mapping), str(tmp_path / "bids"), "--source-dir",
                 str(tmp_path / "src")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'src' / 'a.nii.gz'}: {expected}" in err
    assert not (tmp_path / "bids").exists()


def test_mapping_b_values_in_ms_um2_stated_as_s_mm2_are_warned_about(tmp_path):
    mapping = _one_input(tmp_path, "[acquisition.dynamics]\nn_conditions = 4\n"
                                   "check_order = false\n[acquisition.diffusion]\n"
                                   "b_values = [0, 3, 10, 20]\nb_value_units = \"s/mm2\"",
                         n_dyn=12)
    log = []
    out = convert_dataset(mapping, tmp_path / "bids", tmp_path / "src", log=log.append)[0]
    warned = [m for m in log if "look like ms/um2" in m]
    assert len(warned) == 1 and "b-values [0, 3, 10, 20] are stated as s/mm2" in warned[0]
    assert 'diffusion.b_value_units = "ms/um2"' in warned[0]
    assert any("look like ms/um2" in w for w in _header(out)["ConversionWarnings"]["Value"])


# ----------------------------------------------------------------- sequence from SPAR

def _spar_pair(shared_data: Path, folder: Path, scan_id: str, exam: str) -> None:
    """spant's Philips PRESS pair with its scan_id and examination_name replaced."""
    src = shared_data / "spant_sdat/inst/extdata"
    folder.mkdir(parents=True)
    shutil.copy(src / "philips_spar_sdat_WS.SDAT", folder / "WS.SDAT")
    text = (src / "philips_spar_sdat_WS.SPAR").read_bytes().decode("latin-1")
    text = text.replace("scan_id : SV_PRESS_30", f"scan_id : {scan_id}")
    text = text.replace("examination_name : Phantom_Exp_Risto_Martin",
                        f"examination_name : {exam}")
    (folder / "WS.SPAR").write_bytes(text.encode("latin-1"))


def _philips_entry(sdat: str, spar: str) -> str:
    return _entry(sdat, "").replace(f'files = ["{sdat}"]',
                                    f'format = "philips"\nfiles = ["{sdat}", "{spar}"]')


@pytest.mark.parametrize("scan_id, exam, expected", [
    ("SV_TE30", "MR SCHEDEL ST. ANNA", None),  # was STEAM from "ST." (Saint) in the exam name
    ("SV_TE30", "DW STEAM 7T", None),          # an exam card names no sequence
    ("SV_PRESS_30", "MR SCHEDEL ST. ANNA", "PRESS")])
def test_sequence_never_taken_from_the_spar_examination_name(shared_data, tmp_path, scan_id,
                                                             exam, expected):
    """spant's PRESS data with scan_id SV_TE30 and the exam name 'MR SCHEDEL ST. ANNA' were
    converted as STEAM: a STEAM basis gave Glu 2.58 mM instead of 3.56 (PRESS), exit 0."""
    _spar_pair(shared_data, tmp_path / "src", scan_id, exam)
    mapping = tmp_path / "m.toml"
    mapping.write_text(_philips_entry("WS.SDAT", "WS.SPAR"))
    log = []
    out = convert_dataset(mapping, tmp_path / "bids", tmp_path / "src", log=log.append)[0]
    sidecar = json.loads(out.with_suffix("").with_suffix(".json").read_text())
    assert sidecar.get("PulseSequenceType") == expected
    if expected is None:
        assert any("no PulseSequenceType written" in m and "SV_TE30" in m for m in log)


@pytest.mark.parametrize("folder, files, expected", [
    ("osprey_3t/exampledata/sdat/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press",
     ("sub-01_PRESS_35_act.sdat", "sub-01_PRESS_35_act.spar"), "PRESS"),
    ("osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-01/ses-01/mrs/sub-01_ses-01_press",
     ("sub-01_ses-01_PRESS_raw-act_noID.SDAT", "sub-01_ses-01_PRESS_raw-act_noID.SPAR"),
     "PRESS"),
    ("spant_sdat/inst/extdata", ("philips_spar_sdat_WS.SDAT", "philips_spar_sdat_WS.SPAR"),
     "PRESS")])
def test_real_spar_data_keep_their_sequence_from_scan_id(shared_data, tmp_path, folder, files,
                                                         expected):
    mapping = tmp_path / "m.toml"
    mapping.write_text(_philips_entry(f"{folder}/{files[0]}", f"{folder}/{files[1]}"))
    out = convert_dataset(mapping, tmp_path / "bids", shared_data, log=lambda *_: None)[0]
    sidecar = json.loads(out.with_suffix("").with_suffix(".json").read_text())
    assert sidecar["PulseSequenceType"] == expected


def test_7t_dw_steam_spar_names_no_sequence_and_the_example_mapping_states_steam(
        shared_data, tmp_path):
    """scan_id 'DWS_invivo_3b_+b0_Metab' names no sequence (nor did its exam name 'MRI Schedel
    Niet Screenen'); the installed example mapping states STEAM in its sidecar."""
    from bids_app.convert import example_text

    mapping = tmp_path / "m.toml"
    mapping.write_text(example_text("dmrs_7t_steam_invivo"))
    outs = convert_dataset(mapping, tmp_path / "bids", shared_data / "dmrs_7t_steam_invivo",
                           log=lambda *_: None)
    for out in outs:
        sidecar = json.loads(out.with_suffix("").with_suffix(".json").read_text())
        assert sidecar["PulseSequenceType"] == "STEAM"
    bare = tmp_path / "bare.toml"
    bare.write_text(_philips_entry("metab_raw_act.SDAT", "metab_raw_act.SPAR")
                    + "[acquisition.sidecar]\nEchoTime = 0.045\n")
    log = []
    out = convert_dataset(bare, tmp_path / "bids2", shared_data / "dmrs_7t_steam_invivo",
                          log=log.append)[0]
    assert "PulseSequenceType" not in json.loads(
        out.with_suffix("").with_suffix(".json").read_text())
    assert any("DWS_invivo_3b_+b0_Metab" in m for m in log)


def test_files_left_from_an_earlier_conversion_are_named(tmp_path):
    """Re-converting with --overwrite after renaming acq-v1 to acq-v2 left the v1 files, and
    the app processed both acquisitions, without a word: the files this conversion did not
    write are now named (other participants' folders are not this mapping's business)."""
    from bids_app.convert import inputs_not_written

    mrs = tmp_path / "sub-01" / "mrs"
    mrs.mkdir(parents=True)
    old, new = mrs / "sub-01_acq-v1_svs.nii.gz", mrs / "sub-01_acq-v2_svs.nii.gz"
    other = tmp_path / "sub-02" / "mrs" / "sub-02_svs.nii.gz"
    other.parent.mkdir(parents=True)
    for path in (old, new, other, mrs / "sub-01_acq-v2_svs.json"):
        path.write_bytes(b"x")
    assert inputs_not_written(tmp_path, ["sub-01"], [new]) == [old]
    assert inputs_not_written(tmp_path, ["sub-01"], [old, new]) == []
