"""Header values the reader refuses or warns about because they would be misread silently
(conversion probe s20): b-values in the start/increment form given a pooling role, a timing
series (MixingTime, EchoTime, ...) in one file, a SpectrometerFrequency or dwell time off by
1e3-1e6, and b-values in ms/um^2 stated as s/mm^2."""

import json

import nibabel as nib
import numpy as np
import pytest

from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs
from pipeline.io.nifti_mrs_header import TIMING_KEYS, small_b_series_note

DWELL_S = 5e-4  # 2000 Hz
BASE = {"SpectrometerFrequency": [123.2], "ResonantNucleus": ["1H"], "EchoTime": 0.03}


def _nifti(path, header, shape=(1, 1, 1, 32, 4, 6), dwell_s=DWELL_S, time_unit="sec"):
    """A NIfTI-MRS file written with nibabel, holding a decaying FID in every entry."""
    t = np.arange(shape[3]) * dwell_s
    fid = np.exp(2j * np.pi * 30 * t - t / 0.05).astype(np.complex64)
    data = np.broadcast_to(fid.reshape(1, 1, 1, -1, *([1] * (len(shape) - 4))), shape).copy()
    img = nib.Nifti2Image(data, np.eye(4))
    img.header["pixdim"][4] = dwell_s
    img.header.set_xyzt_units(xyz="mm", t=time_unit)
    img.header["intent_name"] = b"mrs_v0_11"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(header).encode()))
    nib.save(img, str(path))
    return path


def _error(path, **kwargs) -> str:
    with pytest.raises(NiftiMrsError) as info:
        read_nifti_mrs(path, **kwargs)
    assert str(info.value).startswith(f"{path}: ")
    return str(info.value)


# ----------------------------------------------------------------- start/increment + dim_roles

def test_dim_roles_transients_refused_for_start_increment_b_values(tmp_path):
    """b = 0, 1000, ..., 5000 written as {"start": 0, "increment": 1000} was merged into 24
    transients of one condition by dim_roles = {DIM_USER_0 = "transients"}, exit 0; a plain
    list was refused."""
    header = {**BASE, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
              "dim_6_header": {"b_value": {"Value": {"start": 0, "increment": 1000},
                                           "Description": "b-value in s/mm^2"}}}
    path = _nifti(tmp_path / "a.nii.gz", header)
    message = _error(path, dim_roles={"DIM_USER_0": "transients"})
    assert "dim_6 (DIM_USER_0) the role 'transients'" in message
    assert "'b_value' [start 0, increment 1000]" in message
    acq = read_nifti_mrs(path)  # without the role: the six conditions
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000, 2000, 3000, 4000, 5000])


def test_dim_roles_may_pool_a_start_increment_header_of_one_b_value(tmp_path):
    """increment 0: the same b on every entry, one condition: pooling merges nothing."""
    header = {**BASE, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
              "dim_6_header": {"bval": {"start": 1000, "increment": 0}}}
    path = _nifti(tmp_path / "a.nii.gz", header)
    assert read_nifti_mrs(path, dim_roles={"DIM_USER_0": "transients"}).fids.shape == \
        (1, 24, 1, 32)


# ----------------------------------------------------------------- timing series in one file

@pytest.mark.parametrize("key", TIMING_KEYS)
def test_timing_series_in_a_dim_header_is_refused(tmp_path, key):
    """A per-condition MixingTime [0.02 x 3, 0.3 x 3] was dropped and the six conditions
    pooled into one series of three b-values: one ADC (tNAA 0.215) over two mixing times
    whose own fits give 0.143 and 0.309 um^2/ms."""
    header = {**BASE, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
              "dim_6_header": {"b_value": {"Value": [0, 1000, 3000, 0, 1000, 3000],
                                           "Description": "b-value in s/mm^2"},
                               key: {"Value": [0.02, 0.02, 0.02, 0.3, 0.3, 0.3],
                                     "Description": "per condition (s)"}}}
    message = _error(_nifti(tmp_path / "a.nii.gz", header))
    assert f"dim_6_header '{key}'" in message
    assert "[0.02, 0.02, 0.02, 0.3, 0.3, 0.3]" in message
    assert "one file per timing" in message


def test_timing_series_refused_in_start_increment_form_and_equal_values_accepted(tmp_path):
    series = {**BASE, "dim_5": "DIM_USER_0", "dim_6": "DIM_DYN",
              "dim_5_header": {"bval": [0, 1000, 2000, 3000]},
              "dim_6_header": {"DiffusionTime": {"start": 0.05, "increment": 0.1}}}
    path = _nifti(tmp_path / "a.nii.gz", series)
    assert "'DiffusionTime' gives its 6 entries different DiffusionTime values " \
           "[start 0.05, increment 0.1]" in _error(path)
    same = {**series, "dim_6_header": {"MixingTime": [0.06] * 6}}
    acq = read_nifti_mrs(_nifti(tmp_path / "b.nii.gz", same))
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000, 2000, 3000])
    assert acq.fids.shape == (4, 6, 1, 32)


# ----------------------------------------------------------------- frequency and width units

@pytest.mark.parametrize("cf_mhz, unit, shown", [(123.2e6, "Hz", "123.2 MHz"),
                                                 (123200.0, "kHz", "123.2 MHz"),
                                                 (0.2982, "GHz", "298.2 MHz")])
def test_spectrometer_frequency_in_another_unit_is_refused(tmp_path, cf_mhz, unit, shown):
    """An LCModel .RAW $SEQPAR hzpppm read by spec2nii gave 1.232e8 "MHz"; the app then failed
    in coils with a bare MemoryError."""
    header = {**BASE, "SpectrometerFrequency": [cf_mhz]}
    message = _error(_nifti(tmp_path / "a.nii.gz", header, shape=(1, 1, 1, 32, 4)))
    assert f"SpectrometerFrequency {cf_mhz:g} MHz is outside 10-1300 MHz" in message
    assert f"it looks like {unit} ({shown} once converted)" in message


@pytest.mark.parametrize("cf_mhz, nucleus", [(10.6, "1H"), (63.87, "1H"), (298.06, "1H"),
                                             (600.1, "1H"), (900.0, "1H"), (1200.0, "1H"),
                                             (51.7, "31P"), (3.4, "31P")])
def test_real_scanner_frequencies_are_read(tmp_path, cf_mhz, nucleus):
    """0.25 T to 28.2 T protons; 31P at 3 T and at 0.2 T (3.4 MHz, below the 1H limit)."""
    header = {**BASE, "SpectrometerFrequency": [cf_mhz], "ResonantNucleus": [nucleus]}
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", header, shape=(1, 1, 1, 32, 4)))
    assert acq.cf_mhz == pytest.approx(cf_mhz)


def test_proton_frequency_below_ten_mhz_is_refused(tmp_path):
    header = {**BASE, "SpectrometerFrequency": [3.4]}
    message = _error(_nifti(tmp_path / "a.nii.gz", header, shape=(1, 1, 1, 32, 4)))
    assert "SpectrometerFrequency 3.4 MHz is outside 10-1300 MHz" in message


def test_dwell_time_in_ms_is_refused_naming_the_nifti_time_unit(tmp_path):
    """pixdim[4] = 0.5 with xyzt_units msec was read as 0.5 s: SpectralWidth 2 Hz, then
    'zero-size array to reduction operation maximum' in coils."""
    path = _nifti(tmp_path / "a.nii.gz", BASE, shape=(1, 1, 1, 32, 4), dwell_s=0.5,
                  time_unit="msec")
    message = _error(path)
    assert "spectral width 2 Hz (1 / dwell time 0.5 s, pixdim[4]) is outside 100-200000 Hz" \
        in message
    assert "a dwell time in ms (2000 Hz once converted)" in message and "msec" in message


@pytest.mark.parametrize("width_hz", [500.0, 2000.0, 8000.0, 100_000.0])
def test_real_spectral_widths_are_read(tmp_path, width_hz):
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", BASE, shape=(1, 1, 1, 32, 4),
                                dwell_s=1 / width_hz))
    assert 1 / acq.dwell_s == pytest.approx(width_hz, rel=1e-6)


# ----------------------------------------------------------------- ms/um^2 stated as s/mm^2

def _stated_s_mm2(b_values):
    return {**BASE, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
            "dim_6_header": {"b_value": {"Value": b_values,
                                         "Description": "b-value in s/mm^2"}}}


def test_small_b_values_stated_in_s_mm2_give_a_warning_naming_file_values_setting(tmp_path):
    """The demo's b = 0...20 ms/um^2 stated as s/mm^2 passed (largest b 20 >= 10 s/mm^2): the
    decays came out flat and the b = 0 tNAA concentration 4.97 mM instead of 8.03 (-38 %)."""
    path = _nifti(tmp_path / "a.nii.gz", _stated_s_mm2([0, 1, 3, 6, 10, 20]))
    acq = read_nifti_mrs(path)
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1, 3, 6, 10, 20])  # as stated
    notes = [w for w in acq.metadata["warnings"] if "look like ms/um2" in w]
    assert len(notes) == 1
    assert notes[0].startswith(f"{path}: b-values [0, 1, 3, 6, 10, 20] are stated as s/mm2")
    assert 'b_value_units = "ms/um2"' in notes[0]
    confirmed = read_nifti_mrs(path, b_value_units="s/mm2")  # the user confirms the unit
    assert not [w for w in confirmed.metadata["warnings"] if "look like ms/um2" in w]
    fixed = read_nifti_mrs(path, b_value_units="ms/um2")
    np.testing.assert_array_equal(fixed.b_values_s_mm2, [0, 1000, 3000, 6000, 10000, 20000])


@pytest.mark.parametrize("b_values", [[0, 1000, 3000, 0, 1000, 3000],  # ordinary dMRS
                                      [0, 3, 5, 1000, 2000, 3000],      # crushers on b ~ 0
                                      [0, 0, 20, 20, 50, 50]])          # two weighted values
def test_ordinary_b_values_stated_in_s_mm2_give_no_unit_warning(tmp_path, b_values):
    acq = read_nifti_mrs(_nifti(tmp_path / "a.nii.gz", _stated_s_mm2(b_values)))
    assert not [w for w in acq.metadata["warnings"] if "look like ms/um2" in w]


def test_small_b_series_rule():
    """Three or more distinct nonzero b, all <= 100 s/mm^2 and the largest >= 10: warned;
    crusher-only b (largest below 10 s/mm^2), b in ms/um^2 and two values: not."""
    assert small_b_series_note([0, 1, 3, 6, 10, 20], "s/mm2", "x", "fix", "f")
    assert small_b_series_note([0, 25, 50, 100], "s/mm2", "x", "fix", "f")
    assert small_b_series_note([0, 25, 50, 101], "s/mm2", "x", "fix", "f") is None
    assert small_b_series_note([0, 2, 4, 6], "s/mm2", "x", "fix", "f") is None
    assert small_b_series_note([0, 1, 3, 6, 10, 20], "ms/um2", "x", "fix", "f") is None
    assert small_b_series_note([0, 20, 50], "s/mm2", "x", "fix", "f") is None


def test_directions_under_an_unknown_key_are_warned_about(shared_data, tmp_path):
    """The 7 T in-vivo file with its directions under 'diffusion_direction': they are not
    read (every direction NaN, no tensor), which was silent; now a warning names the key and
    the known ones. The file as published reads its directions with no such warning."""
    source = shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz"
    image = nib.load(str(source))
    header = json.loads([e for e in image.header.extensions if e.get_code() == 44][0]
                        .get_content())
    header["dim_6_header"]["diffusion_direction"] = header["dim_6_header"].pop("direction")
    renamed = nib.Nifti2Image(image.dataobj[...], image.affine, image.header.copy())
    renamed.header.extensions.clear()
    renamed.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(header).encode()))
    path = tmp_path / "metab.nii.gz"
    nib.save(renamed, str(path))
    as_published, renamed_acq = read_nifti_mrs(source), read_nifti_mrs(path)
    assert np.isfinite(as_published.directions).any()
    assert not any("not a known gradient-direction key" in w
                   for w in as_published.metadata["warnings"])
    assert np.isnan(renamed_acq.directions).all()
    (note,) = [w for w in renamed_acq.metadata["warnings"] if "gradient-direction key" in w]
    assert "'diffusion_direction'" in note and str(path) in note
