"""The sign and axis conventions of pipeline.spectra, against analytic signals and real data."""

import json

import numpy as np
import pytest

from pipeline.spectra import (apply_frequency_phase, fid_to_spectrum, ppm_axis, ppm_to_hz,
                              spectrum_to_fid, time_axis_s)
from pipeline.units import b_ms_um2_to_s_mm2, guess_b_value_units, to_s_mm2


def test_singlet_lands_at_its_ppm():
    n, dwell, cf = 2048, 1 / 4000, 123.2
    t = time_axis_s(n, dwell)
    fid = np.exp(2j * np.pi * ppm_to_hz(2.008, cf) * t) * np.exp(-t / 0.1)
    ppm = ppm_axis(n, dwell, cf)
    assert abs(ppm[np.argmax(np.abs(fid_to_spectrum(fid)))] - 2.008) < 4000 / n / cf


def test_fft_round_trip_and_shift_convention():
    rng = np.random.default_rng(0)
    fid = rng.normal(size=(3, 64)) + 1j * rng.normal(size=(3, 64))
    np.testing.assert_allclose(spectrum_to_fid(fid_to_spectrum(fid)), fid, atol=1e-12)
    shifted = apply_frequency_phase(fid, 1e-3, [1.0, 2.0, 3.0], [10, 20, 30])
    back = apply_frequency_phase(shifted, 1e-3, [-1.0, -2.0, -3.0], [-10, -20, -30])
    np.testing.assert_allclose(back, fid, atol=1e-12)


def test_real_nifti_mrs_naa_at_2ppm(shared_data):
    nib = pytest.importorskip("nibabel")
    img = nib.load(shared_data / "siemens_7t_steam_coils" / "metab.nii.gz")
    header = json.loads(img.header.extensions[0].get_content())
    fid = np.asarray(img.dataobj).squeeze()
    fid = fid.reshape(fid.shape[0], -1).mean(axis=1)
    ppm = ppm_axis(fid.size, float(img.header["pixdim"][4]), header["SpectrometerFrequency"][0])
    window = (ppm > 1.8) & (ppm < 2.2)
    peak = ppm[window][np.argmax(np.abs(fid_to_spectrum(fid))[window])]
    assert abs(peak - 2.008) < 0.03


def test_b_value_units():
    assert guess_b_value_units([0, 1, 3, 50]) == "ms/um2"
    assert guess_b_value_units([0, 907, 3956]) == "s/mm2"
    np.testing.assert_allclose(b_ms_um2_to_s_mm2([0, 1.5]), [0, 1500])
    np.testing.assert_allclose(to_s_mm2([2], "ms/um2"), [2000])
    with pytest.raises(ValueError, match="unknown b-value unit"):
        to_s_mm2([1], "furlongs")


def test_field_strength_from_the_proton_frequency():
    from pipeline.units import field_strength_t

    # 7 T (pregame data, 298.06 MHz), 3 T Siemens (123.2 MHz), 9.4 T (400.2 MHz)
    assert field_strength_t(298.06) == pytest.approx(7.0, abs=0.01)
    assert field_strength_t(123.2) == pytest.approx(2.89, abs=0.01)
    assert field_strength_t(400.2) == pytest.approx(9.4, abs=0.01)
