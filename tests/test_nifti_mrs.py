"""NIfTI-MRS reading (all header generations) and current-standard writing."""

import gzip
import json
import os

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nifti_mrs import validator
from nifti_mrs.nifti_mrs import NIFTI_MRS

from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs, write_nifti_mrs

DWELL_S = 1 / 3000
CF_MHZ = 298.062497
BASE_HEADER = {"SpectrometerFrequency": [CF_MHZ], "ResonantNucleus": ["1H"], "EchoTime": 0.045}


def _nifti(path, data, header, dwell_s=DWELL_S, intent="mrs_v0_2"):
    """A NIfTI-MRS file written directly with nibabel (to mimic any header generation)."""
    img = nib.Nifti2Image(data, np.eye(4))
    img.header["pixdim"][4] = dwell_s
    img.header["intent_name"] = intent.encode()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(header).encode()))
    nib.save(img, str(path))
    return path


def _random_fids(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)


def _assert_valid_nifti_mrs(path):
    """The nifti-mrs package's own validator accepts the file (data, header, extension)."""
    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    validator.validate_nifti_data(data)
    validator.validate_nifti_header(img.header)
    text = img.header.extensions[0].get_content().decode()
    validator.validate_hdr_ext(text, data.shape)
    validator.validate_spectralwidth(text, img.header["pixdim"][4])
    assert img.header.get_intent()[2] == "mrs_v0_11"
    # the package's own loader validates on creation; it serves data conjugated (FSL-MRS frame)
    loaded = NIFTI_MRS(str(path))
    np.testing.assert_array_equal(loaded[:], data.conj())


# ----------------------------------------------------------------------------- real files

def test_synthetic_legacy_plain_list_header(shared_data):
    path = shared_data / "dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz"
    acq = read_nifti_mrs(path)
    raw = np.asanyarray(nib.load(str(path)).dataobj)  # (1,1,1,1024,32,9)
    assert acq.fids.shape == (9, 32, 1, 1024)
    np.testing.assert_array_equal(acq.fids[4, 7, 0], raw[0, 0, 0, :, 7, 4])
    np.testing.assert_array_equal(acq.b_values_s_mm2,
                                  [0, 1000, 3000, 6000, 10000, 20000, 30000, 40000, 50000])
    assert np.all(np.isnan(acq.directions))
    assert acq.cf_mhz == CF_MHZ and acq.dwell_s == pytest.approx(1 / 3000)
    assert acq.metadata["EchoTime"] == 0.045
    assert acq.metadata["b_value_units_source"] == "guessed from values (ms/um2)"
    assert any("guessed ms/um2" in w and str(path) in w for w in acq.metadata["warnings"])


def test_synthetic_units_from_sidecar_and_user(shared_data):
    path = shared_data / "dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz"
    stated = read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "ms/um2"})
    assert stated.metadata["b_value_units_source"] == "sidecar DiffusionBValueUnits"
    assert stated.metadata["warnings"] == []
    assert stated.b_values_s_mm2[-1] == 50000
    forced = read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "ms/um2"},
                            b_value_units="s/mm2")
    assert forced.b_values_s_mm2[-1] == 50
    assert forced.metadata["b_value_units_source"] == "user (s/mm2)"
    assert any("overrides ms/um2" in w for w in forced.metadata["warnings"])


def test_invivo_packed_b_and_direction(shared_data):
    path = shared_data / "dmrs_7t_steam_invivo/nifti/metab.nii.gz"
    acq = read_nifti_mrs(path)
    assert acq.fids.shape == (10, 24, 1, 1024)
    np.testing.assert_array_equal(acq.b_values_s_mm2,
                                  [0, 907, 907, 907, 2155, 2155, 2155, 3956, 3956, 3956])
    assert np.all(np.isnan(acq.directions[0]))
    np.testing.assert_allclose(acq.directions[1], np.array([1, 1, -0.5]) / 1.5)
    np.testing.assert_allclose(acq.directions[9], np.array([-0.5, 1, 1]) / 1.5)
    np.testing.assert_allclose(np.linalg.norm(acq.directions[1:], axis=1), 1.0)
    assert acq.metadata["b_value_units_source"] == "guessed from values (s/mm2)"


def test_siemens_coils_and_dynamics_order(shared_data):
    path = shared_data / "siemens_7t_steam_coils/metab_raw.nii.gz"
    acq = read_nifti_mrs(path)
    raw = np.asanyarray(nib.load(str(path)).dataobj)  # (1,1,1,4096,4 coils,16 dyn)
    assert acq.fids.shape == (1, 16, 4, 4096)
    np.testing.assert_array_equal(acq.fids[0, 11, 2], raw[0, 0, 0, :, 2, 11])
    assert acq.b_values_s_mm2.tolist() == [0.0]
    # current-standard user-defined keys come back unwrapped
    assert acq.metadata["ReceiveCoilName"] == '"32Ch_Head_7T"'


def test_sidecar_conflicts_are_reported(shared_data):
    path = shared_data / "dmrs_7t_steam_invivo/nifti/water.nii.gz"
    acq = read_nifti_mrs(path, sidecar={"EchoTime": 0.045, "SpectrometerFrequency": [298.1]})
    assert acq.metadata["EchoTime"] == 0.045 and acq.cf_mhz == 298.1
    text = " ".join(acq.metadata["warnings"])
    assert "EchoTime is 0.04 in the NIfTI-MRS header but 0.045 in the sidecar" in text
    assert "298.062" in text and "298.1" in text and str(path) in text
    with pytest.raises(NiftiMrsError, match="ResonantNucleus"):
        read_nifti_mrs(path, sidecar={"ResonantNucleus": ["31P"]})
    with pytest.raises(NiftiMrsError, match="SpectralWidth 4000"):
        read_nifti_mrs(path, sidecar={"SpectralWidth": 4000})


def test_empty_example_files_give_clear_errors(shared_data):
    empty = next((shared_data / "bids_examples_mrs").rglob("*_svs.nii.gz"))
    with pytest.raises(NiftiMrsError, match="empty"):
        read_nifti_mrs(empty)


# ----------------------------------------------------------------------------- header forms

def test_current_standard_value_description_header_with_units(tmp_path):
    data = _random_fids((1, 1, 1, 64, 3, 2))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_1",
              "dim_6_header": {"bvalue": {"Value": [0.5, 2.0],
                                          "Description": "b-value (ms/um^2)"}}}
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", data, header, intent="mrs_v0_9"))
    assert acq.fids.shape == (2, 3, 1, 64)
    np.testing.assert_array_equal(acq.b_values_s_mm2, [500, 2000])
    assert acq.metadata["b_value_units_source"].startswith("header dim_6_header 'bvalue'")
    assert acq.metadata["warnings"] == []
    # the entry describing these very numbers beats a contradicting sidecar (no double scaling)
    again = read_nifti_mrs(tmp_path / "a.nii.gz", sidecar={"DiffusionBValueUnits": "s/mm2"})
    np.testing.assert_array_equal(again.b_values_s_mm2, [500, 2000])
    assert any("sidecar DiffusionBValueUnits says s/mm2" in w for w in again.metadata["warnings"])


def test_start_increment_header_and_units_in_info(tmp_path):
    data = _random_fids((1, 1, 1, 32, 4))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_5_info": "b-values in s/mm^2",
              "dim_5_header": {"Bval": {"start": 0, "increment": 1000}}}
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii", data, header))
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000, 2000, 3000])
    assert acq.n_transients == 1 and acq.metadata["b_value_units_source"] == "header dim_5_info"


def _b_file(path, b_values, unit_text=None):
    """A file with one condition per b-value on DIM_USER_0 (unit stated in the header if
    ``unit_text``)."""
    entry = {"Value": list(b_values), "Description": unit_text} if unit_text else list(b_values)
    header = {**BASE_HEADER, "dim_5": "DIM_USER_0", "dim_5_header": {"b_value": entry}}
    return _nifti(path, _random_fids((1, 1, 1, 32, len(b_values))), header)


INVIVO_B = [0, 907, 2155, 3956]


@pytest.mark.parametrize("unit", ["ms/um2", "ms/µm²"])
def test_stated_ms_um2_on_s_mm2_values_is_refused(tmp_path, unit):
    """b-values in the thousands stated as ms/um^2 would be read as up to 3 956 000 s/mm^2."""
    path = _b_file(tmp_path / "a.nii.gz", INVIVO_B)
    with pytest.raises(NiftiMrsError) as info:
        read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": unit})
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "sidecar DiffusionBValueUnits" in text
    assert "[0, 907, 2155, 3956] in ms/um2" in text and "3956000 s/mm^2" in text
    assert 'look like s/mm2' in text and 'correct it there to "s/mm2"' in text
    assert "--b-value-units s/mm2" in text
    # the header's own statement is checked the same way
    with pytest.raises(NiftiMrsError, match="stated in the header dim_5_header 'b_value'"):
        read_nifti_mrs(_b_file(tmp_path / "b.nii.gz", INVIVO_B, "b-value in ms/um^2"))


def test_stated_s_mm2_on_ms_um2_values_is_refused(tmp_path):
    path = _b_file(tmp_path / "a.nii.gz", [0, 0.907, 2.155, 3.956])
    with pytest.raises(NiftiMrsError) as info:
        read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "s/mm2"})
    text = str(info.value)
    assert str(path) in text and "3.956 s/mm^2" in text and "no diffusion weighting" in text
    assert 'correct it there to "ms/um2"' in text and "--b-value-units ms/um2" in text


def test_plausible_stated_units_read_as_before(tmp_path):
    path = _b_file(tmp_path / "a.nii.gz", [0, 1000])
    acq = read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "s/mm2"})
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000])
    assert acq.metadata["warnings"] == []
    path = _b_file(tmp_path / "b.nii.gz", [0, 1])
    acq = read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "ms/um2"})
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000])
    assert acq.metadata["b_value_units_source"] == "sidecar DiffusionBValueUnits"
    # all b = 0 is no unit problem; nor are the limits themselves (10 and 250 000 s/mm^2)
    zeros = read_nifti_mrs(_b_file(tmp_path / "c.nii.gz", [0, 0]),
                           sidecar={"DiffusionBValueUnits": "s/mm2"})
    np.testing.assert_array_equal(zeros.b_values_s_mm2, [0, 0])
    for b_values, unit in (([0, 10], "s/mm2"), ([0, 250], "ms/um2")):
        read_nifti_mrs(_b_file(tmp_path / "d.nii.gz", b_values),
                       sidecar={"DiffusionBValueUnits": unit})


def test_requested_unit_fixes_a_wrong_statement_and_is_checked_itself(tmp_path):
    path = _b_file(tmp_path / "a.nii.gz", INVIVO_B)
    fixed = read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "ms/um2"},
                           b_value_units="s/mm2")
    np.testing.assert_array_equal(fixed.b_values_s_mm2, INVIVO_B)
    assert any("overrides ms/um2" in w for w in fixed.metadata["warnings"])
    with pytest.raises(NiftiMrsError) as info:
        read_nifti_mrs(path, sidecar={"DiffusionBValueUnits": "s/mm2"}, b_value_units="ms/um2")
    text = str(info.value)
    assert str(path) in text and "requested with --b-value-units" in text
    assert "request s/mm2, or auto" in text


def test_values_no_unit_makes_plausible_are_refused(tmp_path):
    path = _b_file(tmp_path / "a.nii.gz", [0, 0.001, 0.002])
    with pytest.raises(NiftiMrsError, match="neither s/mm2 nor ms/um2.*no unit is stated"):
        read_nifti_mrs(path)


def test_repeated_conditions_are_grouped_into_transients(tmp_path):
    """b varies fastest over 6 dynamics of 2 b-values: 2 conditions x 3 transients."""
    data = _random_fids((1, 1, 1, 16, 6))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN",
              "dim_5_header": {"b_value": {"Value": [0, 1000] * 3, "Description": "s/mm^2"}}}
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", data, header))
    assert acq.fids.shape == (2, 3, 1, 16)
    np.testing.assert_array_equal(acq.fids[1, 2, 0], data[0, 0, 0, :, 5])
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000])


def test_unequally_repeated_labels_stay_conditions_with_a_warning(tmp_path):
    """b = 0 once and b = 1000 twice per cycle, directions not given (as a file whose
    directions were lost): the labels repeat 2 and 4 times, which cannot be grouped into
    conditions of equal transients; every dynamic stays a condition, and the reader says so."""
    data = _random_fids((1, 1, 1, 16, 6))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN",
              "dim_5_header": {"b_value": {"Value": [0, 1000, 1000] * 2,
                                           "Description": "s/mm^2"}}}
    path = _nifti(tmp_path / "a.nii.gz", data, header)
    acq = read_nifti_mrs(path)
    assert acq.fids.shape == (6, 1, 1, 16)
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000, 1000] * 2)
    (note,) = [w for w in acq.metadata["warnings"] if "repeat unequally" in w]
    assert str(path) in note and "b = 0 s/mm^2: 2, b = 1000 s/mm^2: 4" in note


def test_repeated_conditions_on_a_user_dim_stay_conditions(tmp_path):
    """Interleaved b = 0 conditions written by us come back as separate conditions."""
    acq = _acquisition(n_cond=3).with_fids(_random_fids((3, 4, 2, 32)),
                                           b_values_s_mm2=[0, 0, 1000],
                                           directions=[[np.nan] * 3] * 2 + [[1, 0, 0]])
    back = read_nifti_mrs(write_nifti_mrs(acq, tmp_path / "a.nii.gz"))
    _same(acq, back)


def test_b0_gives_nan_and_a_weighted_zero_direction_is_refused(tmp_path):
    """b = 0 has no direction whatever the header says; a b > 0 condition with [0, 0, 0]
    beside conditions with directions is refused (tests/test_zero_directions.py)."""
    data = _random_fids((1, 1, 1, 16, 3))
    header = {**BASE_HEADER, "dim_5": "DIM_USER_0",
              "dim_5_header": {"Bval": [0, 1000, 1000],
                               "direction": [[1, 0, 0], [0, 0, 1], [0, 3, 4]]}}
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", data, header))
    assert np.all(np.isnan(acq.directions[0]))
    np.testing.assert_allclose(acq.directions[1:], [[0, 0, 1], [0, 0.6, 0.8]])
    header["dim_5_header"]["direction"][1] = [0, 0, 0]
    with pytest.raises(NiftiMrsError, match=r"condition\(s\) 1 \(b = 1000 s/mm\^2\) have "
                                            r"gradient direction \[0, 0, 0\]"):
        read_nifti_mrs(_nifti(tmp_path / "b.nii.gz", data, header))


@pytest.mark.parametrize("change, message", [
    (lambda d, h: (d.real.astype(np.float32), h), "complex"),
    (lambda d, h: (d, {k: v for k, v in h.items() if k != "EchoTime"}), "EchoTime"),
    (lambda d, h: (d, {k: v for k, v in h.items() if k != "SpectrometerFrequency"}),
     "SpectrometerFrequency"),
    (lambda d, h: (np.where(np.arange(d.size).reshape(d.shape) == 3, np.nan, d).astype(d.dtype), h),
     "NaN or infinite"),
    (lambda d, h: (d, {**h, "dim_5_header": {"Bval": [0, 1, 2]}}), "3 entries but its dimension has 2"),
    (lambda d, h: (d, {**h, "dim_5_header": {"Bval": [0, -1]}}), "negative b-values"),
    (lambda d, h: (d, {**h, "dim_5": "DIM_EDIT"}), "DIM_EDIT"),
    (lambda d, h: (np.concatenate([d, d], axis=0), h), "single-voxel"),
])
def test_invalid_files_raise_named_errors(tmp_path, change, message):
    data = _random_fids((1, 1, 1, 16, 2))
    header = {**BASE_HEADER, "dim_5": "DIM_USER_0", "dim_5_header": {"Bval": [0, 1000]}}
    data, header = change(data, header)
    path = _nifti(tmp_path / "bad.nii.gz", data, header)
    with pytest.raises(NiftiMrsError, match=message) as info:
        read_nifti_mrs(path)
    assert str(path) in str(info.value)


def test_zero_byte_truncated_and_foreign_files(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    good = _nifti(tmp_path / "good.nii.gz", _random_fids((1, 1, 1, 256, 8)),
                  {**BASE_HEADER, "dim_5": "DIM_DYN"})
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(b"not a nifti file at all" * 20))
    plain = tmp_path / "plain.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), str(plain))
    for path, message in ((empty, "empty"), (truncated, "not a readable NIfTI"),
                          (garbage, "not a readable NIfTI"), (plain, "complex")):
        with pytest.raises(NiftiMrsError, match=message) as info:
            read_nifti_mrs(path)
        assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- writer

def _acquisition(n_cond=3, n_trans=4, n_coils=2, n_points=32, seed=1, dtype=np.complex64):
    rng = np.random.default_rng(seed)
    b = np.array([0.0, 1500.0, 3000.0, 6000.0][:n_cond])
    dirs = np.full((n_cond, 3), np.nan)
    dirs[1:] = rng.normal(size=(n_cond - 1, 3))
    dirs[1:] /= np.linalg.norm(dirs[1:], axis=1, keepdims=True)
    return Acquisition(fids=_random_fids((n_cond, n_trans, n_coils, n_points), seed).astype(dtype),
                       dwell_s=DWELL_S, cf_mhz=CF_MHZ, b_values_s_mm2=b, directions=dirs,
                       metadata={"EchoTime": 0.045, "MixingTime": 0.06,
                                 "DiffusionGradientDuration": 0.015, "WaterSuppression": True,
                                 "SpectralWidth": 3000.0})


def _same(a, b):
    np.testing.assert_array_equal(a.fids, b.fids)
    assert a.fids.dtype == b.fids.dtype
    np.testing.assert_array_equal(a.b_values_s_mm2, b.b_values_s_mm2)
    np.testing.assert_array_equal(a.directions, b.directions)  # NaN rows compare equal
    assert (a.dwell_s, a.cf_mhz, a.nucleus) == (b.dwell_s, b.cf_mhz, b.nucleus)


def test_write_is_current_standard_and_round_trips(tmp_path):
    acq = _acquisition()
    first = read_nifti_mrs(write_nifti_mrs(acq, tmp_path / "a.nii.gz"))
    _assert_valid_nifti_mrs(tmp_path / "a.nii.gz")
    _same(acq, first)
    for key, value in acq.metadata.items():
        assert first.metadata[key] == value
    second = read_nifti_mrs(write_nifti_mrs(first, tmp_path / "b.nii.gz"))
    _same(first, second)
    assert second.metadata == first.metadata  # keys and values, incl. units source, warnings
    ext = json.loads(nib.load(str(tmp_path / "a.nii.gz")).header.extensions[0].get_content())
    assert [ext["dim_5"], ext["dim_6"], ext["dim_7"]] == ["DIM_COIL", "DIM_DYN", "DIM_USER_0"]
    assert ext["dim_7_header"]["b_value"] == {"Value": [0.0, 1500.0, 3000.0],
                                              "Description": "b-value in s/mm^2"}
    assert ext["dim_7_header"]["direction"]["Value"][0] is None
    assert ext["DiffusionGradientDuration"]["Value"] == 0.015


def test_round_trip_of_real_legacy_file(shared_data, tmp_path):
    acq = read_nifti_mrs(shared_data / "dmrs_7t_steam_invivo/nifti/metab.nii.gz")
    back = read_nifti_mrs(write_nifti_mrs(acq, tmp_path / "metab.nii.gz"))
    _assert_valid_nifti_mrs(tmp_path / "metab.nii.gz")
    _same(acq, back)
    assert back.metadata == acq.metadata


def test_singletons_dropped_and_provenance_appended(tmp_path):
    plain = _acquisition(n_cond=1, n_trans=1, n_coils=1).with_fids(
        _random_fids((1, 1, 1, 32)), b_values_s_mm2=[0], directions=[[np.nan] * 3])
    path = write_nifti_mrs(plain, tmp_path / "plain.nii", processing_step={"Method": "Averaging"})
    _assert_valid_nifti_mrs(path)
    assert nib.load(str(path)).shape == (1, 1, 1, 32)
    step2 = read_nifti_mrs(write_nifti_mrs(read_nifti_mrs(path), tmp_path / "p2.nii.gz",
                                           processing_step={"Method": "Fit", "Details": "x"},
                                           timestamp=True))
    history = step2.metadata["ProcessingApplied"]
    assert [h["Method"] for h in history] == ["Averaging", "Fit"]
    assert history[0]["Program"] == "dmrs-bids" and "Time" not in history[0]
    assert "Time" in history[1] and history[1]["Details"] == "x"
    one_b = plain.with_fids(plain.fids, b_values_s_mm2=[1000.0], directions=[[0, 0, 1.0]])
    kept = read_nifti_mrs(write_nifti_mrs(one_b, tmp_path / "b.nii.gz"))
    assert kept.b_values_s_mm2.tolist() == [1000.0] and kept.directions[0].tolist() == [0, 0, 1]


def test_write_is_deterministic_and_atomic(tmp_path, monkeypatch):
    acq = _acquisition(dtype=np.complex128)
    a = write_nifti_mrs(acq, tmp_path / "a.nii.gz").read_bytes()
    assert write_nifti_mrs(acq, tmp_path / "a.nii.gz").read_bytes() == a
    assert a[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0: reruns give identical files

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_nifti_mrs(_acquisition(seed=5), tmp_path / "a.nii.gz")
    assert (tmp_path / "a.nii.gz").read_bytes() == a
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]


@settings(max_examples=15, deadline=None)
@given(n_cond=st.integers(1, 4), n_trans=st.integers(1, 3), n_coils=st.integers(1, 3),
       n_points=st.sampled_from([8, 17, 64]), seed=st.integers(0, 2**16))
def test_round_trip_property(tmp_path_factory, n_cond, n_trans, n_coils, n_points, seed):
    acq = _acquisition(n_cond, n_trans, n_coils, n_points, seed)
    path = tmp_path_factory.mktemp("rt") / "x.nii.gz"
    back = read_nifti_mrs(write_nifti_mrs(acq, path))
    _same(acq, back)
    assert set(back.metadata) == set(acq.metadata) | {
        "warnings", "b_value_units_source", "nifti_affine", "SpectrometerFrequency",
        "ResonantNucleus"}


# ----------------------------------------------------------------------------- issue 14 layouts

def _dwslaser_like(tmp_path, order="b_first", n_trans=4):
    """3 b-values on one DIM_USER dim, 3 directions on another (published DW-sLASER layout)."""
    b = [0, 1000, 3000]
    dirs = [[1, 1, -0.5], [1, -0.5, 1], [-0.5, 1, 1]]
    data = _random_fids((1, 1, 1, 32, n_trans, 3, 3))
    if order == "b_first":
        header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
                  "dim_6_header": {"Bval": b}, "dim_7": "DIM_USER_1",
                  "dim_7_header": {"direction": dirs}, "DiffusionBValueUnits": "s/mm2"}
    else:
        header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
                  "dim_6_header": {"orientation": dirs}, "dim_7": "DIM_USER_1",
                  "dim_7_header": {"bvalue": b}, "DiffusionBValueUnits": "s/mm2"}
    return _nifti(tmp_path / f"{order}.nii.gz", data, header), data, b, dirs


@pytest.mark.parametrize("order", ["b_first", "direction_first"])
def test_b_and_direction_in_separate_user_dims_give_nine_conditions(tmp_path, order):
    path, data, b, dirs = _dwslaser_like(tmp_path, order)
    acq = read_nifti_mrs(path)
    assert acq.fids.shape == (9, 4, 1, 32)
    np.testing.assert_array_equal(acq.b_values_s_mm2, np.repeat(b, 3))
    unit = np.array(dirs) / np.linalg.norm(dirs, axis=1)[:, None]
    assert np.all(np.isnan(acq.directions[:3]))  # b = 0: no direction applies
    np.testing.assert_allclose(acq.directions[3:], np.vstack([unit, unit]))
    # condition (shell 2, direction 1) holds exactly the stored samples of that pair
    stored = data[0, 0, 0, :, 3, 2, 1] if order == "b_first" else data[0, 0, 0, :, 3, 1, 2]
    np.testing.assert_array_equal(acq.fids[2 * 3 + 1, 3, 0], stored)
    assert acq.direction_labels()[4] != "n/a"


@pytest.mark.parametrize("key", ["b_value", "bval", "Bval", "bvalue"])
@pytest.mark.parametrize("dkey", ["direction", "directions", "bvec", "orientation"])
def test_header_key_spellings_packed_in_one_dim(tmp_path, key, dkey):
    data = _random_fids((1, 1, 1, 16, 2, 3))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
              "dim_6_header": {key: [0, 1000, 1000], dkey: [[0, 0, 0], [1, 0, 0], [0, 1, 0]]}}
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", data, header))
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000, 1000])
    np.testing.assert_array_equal(acq.directions[1:], [[1, 0, 0], [0, 1, 0]])


def test_uninterpretable_user_dim_is_an_error_naming_dim_and_setting(tmp_path):
    data = _random_fids((1, 1, 1, 16, 4, 3))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_1",
              "dim_6_header": {"TE": [0.03, 0.04, 0.05]}}
    path = _nifti(tmp_path / "a.nii.gz", data, header)
    with pytest.raises(NiftiMrsError, match=r"dim_6 is DIM_USER_1 \(size 3\).*dim_roles") as err:
        read_nifti_mrs(path)
    assert str(path) in str(err.value)
    pooled = read_nifti_mrs(path, dim_roles={"DIM_USER_1": "transients"})
    assert pooled.fids.shape == (1, 12, 1, 16)


@pytest.mark.parametrize("role", ["transients", "coils"])
@pytest.mark.parametrize("key", ["dim_6", "DIM_USER_0"])
def test_dim_roles_never_pools_a_dimension_whose_header_states_b_values(tmp_path, role, key):
    """A dataset-wide dim_roles {DIM_USER_0 = "transients"} written for headerless files
    averaged another file's six b-values into one spectrum labelled b = 0, exit 0."""
    data = _random_fids((1, 1, 1, 16, 4, 3))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
              "dim_6_header": {"b_value": {"Value": [0, 1000, 3000],
                                           "Description": "b-value in s/mm^2"}}}
    path = _nifti(tmp_path / "a.nii.gz", data, header)
    with pytest.raises(NiftiMrsError) as err:
        read_nifti_mrs(path, dim_roles={key: role})
    message = str(err.value)
    assert message.startswith(f"{path}: dim_roles gives dim_6 (DIM_USER_0) the role '{role}'")
    assert "'b_value' [0, 1000, 3000]" in message and "applies to every file" in message


def test_dim_roles_transients_refused_for_a_dimension_holding_directions(tmp_path):
    data = _random_fids((1, 1, 1, 16, 2, 3, 2))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0", "dim_7": "DIM_USER_1",
              "dim_6_header": {"bval": [0, 1000, 2000]},
              "dim_7_header": {"bvec": [[1, 0, 0], [0, 1, 0]]}}
    path = _nifti(tmp_path / "a.nii.gz", data, header)
    with pytest.raises(NiftiMrsError, match=r"dim_7 \(DIM_USER_1\) the role 'transients'.*"
                                            r"'bvec' \[\[1, 0, 0\], \[0, 1, 0\]\]"):
        read_nifti_mrs(path, dim_roles={"DIM_USER_1": "transients"})
    assert read_nifti_mrs(path).fids.shape[0] == 6  # without the role: 3 b x 2 directions


def test_dim_roles_may_pool_a_dimension_whose_header_labels_one_condition(tmp_path):
    """dim_roles applies to every file: a file whose DIM_USER_0 header states the same b on
    every entry (one condition per file) holds repeated transients, and pooling them merges
    nothing, so the role is not refused there."""
    data = _random_fids((1, 1, 1, 16, 4, 3))
    header = {**BASE_HEADER, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
              "dim_6_header": {"bval": [1000, 1000, 1000]}}
    path = _nifti(tmp_path / "a.nii.gz", data, header)
    pooled = read_nifti_mrs(path, dim_roles={"DIM_USER_0": "transients"})
    assert pooled.fids.shape == (1, 12, 1, 16)


def test_directions_without_b_values_are_an_error(tmp_path):
    data = _random_fids((1, 1, 1, 16, 3))
    header = {**BASE_HEADER, "dim_5": "DIM_USER_0", "dim_5_header": {"bvec": [[1, 0, 0]] * 3}}
    with pytest.raises(NiftiMrsError, match="directions but no dimension holds b-values"):
        read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", data, header))


def test_files_or_conditions_holding_only_zeros_are_refused_by_name(tmp_path):
    """All-zero data ended in 'SVD did not converge' at alignment, and an all-zero condition
    (an aborted scan) in an error of the fit naming no condition; now the reader says which."""
    header = {**BASE_HEADER, "dim_5": "DIM_USER_0",
              "dim_5_header": {"Bval": [0, 1000, 2000]}}
    empty = _nifti(tmp_path / "empty.nii.gz", np.zeros((1, 1, 1, 16, 3), complex), header)
    with pytest.raises(NiftiMrsError, match=r"empty\.nii\.gz.*every sample is 0"):
        read_nifti_mrs(empty)
    data = _random_fids((1, 1, 1, 16, 3))
    data[..., 2] = 0
    aborted = _nifti(tmp_path / "aborted.nii.gz", data, header)
    with pytest.raises(NiftiMrsError, match=r"aborted\.nii\.gz.*condition\(s\) 2 \(b = 2000 "):
        read_nifti_mrs(aborted)
