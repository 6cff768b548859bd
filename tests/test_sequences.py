"""Issue 14 item 3: pulse sequence and timings from vendor headers (pipeline.sequences)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pipeline.io.nifti_mrs import read_nifti_mrs
from pipeline.sequences import (DEFAULT_STEAM_MIXING_TIME_S, basis_timings, identify_sequence,
                                sequence_in_text)


@pytest.mark.parametrize("name, expected", [
    ("svs_st", "steam"), ("*svs_se", "press"), ("svs_se_30_LSTG", "press"),
    ("eja_svs_steam", "steam"), ("eja_svs_press", "press"), ("eja_svs_slaser", "slaser"),
    ("svs_slaser_dkd", "slaser"), ("PRESS PAR 35", "press"), ("SV_PRESS_30", "press"),
    ("PROBE-P", "press"), ("PROBE-S", "steam"), ("oslaser", "slaser"), ("semi-LASER", "slaser"),
    ("%CustomerSeq%\\uzay_steam_gui", "steam"), ("svs_fid", "fid"), ("Spin Echo", "se"),
    ("eja_svs_mpress", None), ("MEGA-PRESS", None), ("DWS_b9_nsa32", None), ("", None),
])
def test_vendor_sequence_names(name, expected):
    assert sequence_in_text(name) == expected


def _spec2nii_metadata(fmt, files):
    from bids_app.convert import run_spec2nii

    with tempfile.TemporaryDirectory() as tmp:
        return read_nifti_mrs(run_spec2nii(fmt, files, Path(tmp))[0]).metadata


def test_real_headers(shared_data):
    """Siemens twix (spec2nii NIfTI-MRS), Siemens DICOM and RDA, Philips SPAR (Osprey PRESS
    with ProtocolName "PRESS PAR 35", spant PRESS): no PulseSequenceType anywhere."""
    siemens = read_nifti_mrs(shared_data / "siemens_7t_steam_coils/metab_raw.nii.gz").metadata
    assert "PulseSequenceType" not in siemens
    assert identify_sequence(siemens) == ("steam", "SequenceName='svs_st'")
    osprey = shared_data / "osprey_3t/exampledata/sdat/UnEdited/sub-01/ses-01/mrs/" \
        "sub-01_ses-01_press"
    meta = _spec2nii_metadata("philips", [osprey / "sub-01_PRESS_35_act.sdat",
                                          osprey / "sub-01_PRESS_35_act.spar"])
    assert identify_sequence(meta) == ("press", "ProtocolName='PRESS PAR 35'")
    spant = shared_data / "spant_sdat/inst/extdata"
    meta = _spec2nii_metadata("philips", [spant / "philips_spar_sdat_WS.SDAT",
                                          spant / "philips_spar_sdat_WS.SPAR"])
    assert identify_sequence(meta)[0] == "press"
    suspect = shared_data / "vendor_formats_suspect/siemens"
    for fmt, name in (("dicom", "SVS_30.IMA"), ("dicom", "SVS_XA60.dcm"), ("rda", "SVS_30.rda")):
        assert identify_sequence(_spec2nii_metadata(fmt, [suspect / name]))[0] == "press"


def test_configuration_and_pulse_sequence_type_win():
    meta = {"PulseSequenceType": "sLASER", "SequenceName": "svs_st"}
    assert identify_sequence(meta)[0] == "slaser"
    assert identify_sequence(meta, "press") == ("press", "configuration [basis] sequence='press'")
    with pytest.raises(ValueError, match=r"\[basis\] sequence 'mega'"):
        identify_sequence(meta, "mega")


def test_unknown_and_edited_sequences_are_errors_naming_the_setting():
    with pytest.raises(ValueError, match=r"ProtocolName='DWS_b9_nsa32'.*\[basis\] sequence"):
        identify_sequence({"ProtocolName": "DWS_b9_nsa32"})
    with pytest.raises(ValueError, match="edited.*--basis"):
        identify_sequence({"SequenceName": "eja_svs_mpress"})


def test_steam_without_mixing_time_uses_a_stated_default_and_names_the_key(shared_data):
    siemens = read_nifti_mrs(shared_data / "siemens_7t_steam_coils/metab_raw.nii.gz").metadata
    kwargs, notes = basis_timings("steam", siemens)
    assert kwargs == {"echo_time_s": 0.011, "mixing_time_s": DEFAULT_STEAM_MIXING_TIME_S}
    assert len(notes) == 1 and "MixingTime" in notes[0] and "mixing_time_s" in notes[0]
    kwargs, notes = basis_timings("steam", {**siemens, "MixingTime": 0.06})
    assert kwargs["mixing_time_s"] == 0.06 and notes == []
    kwargs, _ = basis_timings("steam", siemens, {"mixing_time_s": 0.032, "echo_time_s": 0.006})
    assert kwargs == {"echo_time_s": 0.006, "mixing_time_s": 0.032}


def test_timing_errors_name_the_key():
    assert basis_timings("press", {"EchoTime": [0.035], "MixingTime": 0.0},
                         {"te1_s": 0.012})[0] == {"echo_time_s": 0.035, "te1_s": 0.012}
    with pytest.raises(ValueError, match="EchoTime"):
        basis_timings("press", {})
    with pytest.raises(ValueError, match="only meaningful for 'steam'"):
        basis_timings("press", {"EchoTime": 0.03}, {"mixing_time_s": 0.01})
    assert basis_timings("fid", {})[0] == {"echo_time_s": 0.0}


@pytest.mark.parametrize("meta, expected", [
    ({"PulseSequenceType": "STEAM"}, "steam"), ({"PulseSequenceType": "PRESS"}, "press"),
    ({"PulseSequenceType": "semi-LASER"}, "slaser"), ({"SequenceName": "svs_slaser_dkd"}, "slaser"),
    ({"PulseSequenceType": "spin echo"}, "se"),
])
def test_sequence_from_metadata(meta, expected):
    """BIDS PulseSequenceType and vendor names; an unknown name is refused unless configured."""
    from pipeline.sequences import sequence_from_metadata

    assert sequence_from_metadata(meta) == expected
    with pytest.raises(ValueError, match="PulseSequenceType='MEGA-XYZ'"):
        sequence_from_metadata({"PulseSequenceType": "MEGA-XYZ"})
    assert sequence_from_metadata({"PulseSequenceType": "MEGA-XYZ"}, "press") == "press"


def test_press_basis_bandwidth_is_warned_about_above_4_tesla_only():
    """The default refocusing bandwidth (1100 Hz) was measured on 3 T PRESS bases; at 14.1 T
    with 4 kHz pulses it put Glu/Tau/GPC at 0.94/0.86/1.15 of truth: warned above 4 T, naming
    the field and the setting; not at 3 T, nor for ideal pulses."""
    from pipeline.sequences import press_bandwidth_note

    assert press_bandwidth_note(1100.0, 123.2) == ""
    assert press_bandwidth_note(0.0, 600.0) == ""
    note = press_bandwidth_note(1100.0, 600.0)
    assert "1100 Hz" in note and "14.1 T" in note and "press_refocus_bandwidth_hz" in note
