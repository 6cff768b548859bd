"""Issue 14: NIfTI-MRS as an input format of dmrs-bids-convert, nested acquisition loops in
the mapping, and sequence / NumberOfTransients from vendor headers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bids_app.convert import (ConversionError, bids_validator_errors, convert_dataset,
                              load_mapping, split_loops)
from pipeline.io.nifti_mrs import read_nifti_mrs


def _sidecar(path):
    return json.loads(path.with_suffix("").with_suffix(".json").read_text())


def _philips_mapping(tmp_path, files, order, b_values, unit, extra=""):
    """A one-acquisition Philips mapping with nested loops ``order`` (fastest first)."""
    mapping = tmp_path / "m.toml"
    mapping.write_text(f"""
[[acquisition]]
participant = "01"
suffix = "svs"
format = "philips"
files = {json.dumps(files)}
{extra}
[acquisition.dynamics]
order = {json.dumps(order)}
[acquisition.diffusion]
b_values = {json.dumps(b_values)}
b_value_units = "{unit}"
""")
    return mapping


def test_nested_loops_direction_fastest_then_b_then_transient():
    """A synthetic SDAT-like array whose every row encodes (transient, b, direction)."""
    n_dir, n_b, n_trans = 3, 4, 5
    rows = [(t, b, d) for t in range(n_trans) for b in range(n_b) for d in range(n_dir)]
    fids = np.array([[100 * t + 10 * b + d] for t, b, d in rows], dtype=complex)
    fids = fids.reshape(1, len(rows), 1, 1)
    out = split_loops(fids, ["direction", "b", "transient"], {"direction": n_dir, "b": n_b}, "x")
    assert out.shape == (n_b * n_dir, n_trans, 1, 1)
    for b in range(n_b):
        for d in range(n_dir):
            np.testing.assert_array_equal(out[b * n_dir + d, :, 0, 0].real,
                                          [100 * t + 10 * b + d for t in range(n_trans)])
    # transients fastest, then b, then direction: another nesting of the same rows
    rows = [(t, b, d) for d in range(n_dir) for b in range(n_b) for t in range(n_trans)]
    fids = np.array([100 * t + 10 * b + d for t, b, d in rows], dtype=complex).reshape(1, -1, 1, 1)
    out = split_loops(fids, ["transient", "b", "direction"], {"direction": n_dir, "b": n_b}, "x")
    np.testing.assert_array_equal(out[2 * n_dir + 1, :, 0, 0].real,
                                  [100 * t + 21 for t in range(n_trans)])
    with pytest.raises(ConversionError, match="do not split"):
        split_loops(fids[:, :-1], ["transient", "b", "direction"], {"direction": 3, "b": 4}, "x")


def test_b_and_direction_loops_in_a_mapping(tmp_path):
    mapping = _philips_mapping(tmp_path, ["a.SDAT", "a.SPAR"], ["direction", "b", "transient"],
                               [0, 1000, 3000], "s/mm2")
    mapping.write_text(mapping.read_text() + "directions = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n")
    entry = load_mapping(mapping)["acquisition"][0]
    from bids_app.convert import _diffusion_conditions, n_conditions
    assert n_conditions(entry, ["direction", "b", "transient"], "w") == 9
    b, dirs, _, _ = _diffusion_conditions(entry, 9, "w", mapping)
    np.testing.assert_array_equal(b, [0] * 3 + [1000] * 3 + [3000] * 3)
    np.testing.assert_array_equal(dirs[4], [0, 1, 0])
    assert np.all(np.isnan(dirs[:3]))
    bad = mapping.read_text().replace('"transient"]', '"transient"]\nn_conditions = 8')
    mapping.write_text(bad)
    with pytest.raises(ConversionError, match="n_conditions = 8 but the loops"):
        load_mapping(mapping)


def test_synthetic_sdat_with_b_loop_reproduces_the_published_nifti(shared_data, tmp_path):
    """288 SDAT rows, b fastest: ``order = ["b", "transient"]`` gives the published NIfTI-MRS
    (DIM_DYN transients x DIM_USER_0 b-values) sample for sample."""
    mapping = _philips_mapping(tmp_path, ["synthetic_raw_act.SDAT", "synthetic_raw_act.SPAR"],
                               ["b", "transient"], [0, 1, 3, 6, 10, 20, 30, 40, 50], "ms/um2",
                               "sidecar = { MixingTime = 0.060 }")
    folder = shared_data / "dmrs_7t_steam_synthetic"
    out = convert_dataset(mapping, tmp_path / "bids", folder, log=lambda *_: None)[0]
    converted = read_nifti_mrs(out)
    published = read_nifti_mrs(folder / "nifti" / "synthetic.nii.gz")
    np.testing.assert_array_equal(converted.fids, published.fids)
    np.testing.assert_array_equal(converted.b_values_s_mm2, published.b_values_s_mm2)
    assert _sidecar(out)["NumberOfTransients"] == 288


def test_siemens_coil_set_from_nifti_with_a_minimal_mapping(shared_data, tmp_path):
    """NIfTI-MRS in (mrs_v0_2 header), a mapping naming only participant, acq, suffix and
    files: every sidecar fact comes from the header, and the dataset is valid BIDS."""
    mapping = tmp_path / "m.toml"
    mapping.write_text("""
[[acquisition]]
participant = "01"
acq = "steam"
suffix = "svs"
files = ["metab_raw.nii.gz"]
[[acquisition]]
participant = "01"
acq = "steam"
suffix = "mrsref"
files = ["wref_raw.nii.gz"]
""")
    folder = shared_data / "siemens_7t_steam_coils"
    messages = []
    metab, water = convert_dataset(mapping, tmp_path / "bids", folder, log=messages.append)
    acq = read_nifti_mrs(metab)
    source = read_nifti_mrs(folder / "metab_raw.nii.gz")
    assert acq.fids.shape == (1, 16, 4, 4096)
    np.testing.assert_array_equal(acq.fids, source.fids)
    side = _sidecar(metab)
    assert side["EchoTime"] == 0.011 and side["RepetitionTime"] == 5.0
    assert side["SpectrometerFrequency"] == [297.219948] and side["ResonantNucleus"] == ["1H"]
    assert side["SpectralWidth"] == pytest.approx(1 / source.dwell_s)
    assert side["Manufacturer"] == "SIEMENS" and side["PulseSequenceType"] == "STEAM"
    assert side["NumberOfTransients"] == 16 and "MixingTime" not in side
    assert _sidecar(water)["NumberOfTransients"] == 2
    assert any("PulseSequenceType STEAM" in m and "svs_st" in m for m in messages)
    import nibabel as nib
    assert nib.load(str(metab)).header.get_intent()[2] == "mrs_v0_11"  # written current
    assert bids_validator_errors(tmp_path / "bids") == []


def test_legacy_dwsteam_nifti_keeps_its_header_conditions(shared_data, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       'files = ["nifti/metab.nii.gz"]\nsidecar = { MixingTime = 0.060 }\n')
    out = convert_dataset(mapping, tmp_path / "bids", shared_data / "dmrs_7t_steam_invivo",
                          log=lambda *_: None)[0]
    acq = read_nifti_mrs(out)
    assert acq.fids.shape == (10, 24, 1, 1024)
    np.testing.assert_array_equal(acq.b_values_s_mm2,
                                  [0] + [907] * 3 + [2155] * 3 + [3956] * 3)
    unit = np.array([1, 1, -0.5]) / 1.5
    np.testing.assert_allclose(acq.directions[1], unit)
    side = _sidecar(out)
    assert side["MixingTime"] == 0.060 and side["Manufacturer"] == "Philips"
    assert side["NumberOfTransients"] == 240 and side["DiffusionBValueUnits"] == "s/mm2"
    mapping.write_text(mapping.read_text() + "[acquisition.dynamics]\nn_conditions = 10\n"
                       "[acquisition.diffusion]\nb_values = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n")
    with pytest.raises(ConversionError, match="already holds 10 diffusion conditions"):
        convert_dataset(mapping, tmp_path / "bids2", shared_data / "dmrs_7t_steam_invivo",
                        log=lambda *_: None)


def test_philips_press_number_of_transients_and_sequence_from_spar(shared_data, tmp_path):
    mapping = tmp_path / "m.toml"
    folder = "osprey_3t/exampledata/sdat/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press"
    mapping.write_text(f'[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       f'format = "philips"\nfiles = ["{folder}/sub-01_PRESS_35_act.sdat", '
                       f'"{folder}/sub-01_PRESS_35_act.spar"]\n')
    out = convert_dataset(mapping, tmp_path / "bids", shared_data, log=lambda *_: None)[0]
    side = _sidecar(out)
    assert side["NumberOfTransients"] == 64  # SPAR: averages 64, rows 1
    assert side["PulseSequenceType"] == "PRESS" and side["EchoTime"] == 0.035


def test_spar_examination_name_is_not_searched_for_the_sequence():
    """An exam-card name ("DW STEAM 7T", "MR SCHEDEL ST. ANNA") describes the examination,
    not the sequence: only scan_id (ProtocolName) is read (tests/test_convert_probe_s20.py)."""
    from bids_app.convert import identified_sequence

    assert identified_sequence({"ProtocolName": "DWS_b9_nsa32"})[0] is None
    assert identified_sequence({"ProtocolName": "PRESS PAR 35"})[0] == "PRESS"