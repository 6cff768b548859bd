"""Noise SD of wide, oversampled spectra (issue 13): the receiver's anti-aliasing filter lowers
the noise near the band edges, so the outermost bins underestimate it.

Truth is constructed: white noise of known SD in the spectrum, attenuated by a known factor in
the outer 10 % of the band (the Siemens 7 T data show 2.6 x there), plus a peak in the signal
region. The estimate must find the flat-part SD; on a narrow band (no signal-free flat part) it
still uses the ends, as before.
"""

import numpy as np
import pytest

from pipeline.qc.metrics import noise_sd
from pipeline.spectra import fid_to_spectrum, ppm_axis, spectrum_to_fid

SD = 2.0
ROLL_OFF = 0.4


def _spectrum_fid(n_points, dwell_s, cf_mhz, roll_off_fraction, seed=0):
    rng = np.random.default_rng(seed)
    spectrum = SD * (rng.standard_normal(n_points) + 1j * rng.standard_normal(n_points))
    edge = int(roll_off_fraction * n_points)
    if edge:
        spectrum[:edge] *= ROLL_OFF
        spectrum[-edge:] *= ROLL_OFF
    ppm = ppm_axis(n_points, dwell_s, cf_mhz)
    spectrum += 500.0 * np.exp(-0.5 * ((ppm - 2.0) / 0.02) ** 2)
    return spectrum_to_fid(spectrum)


def test_wide_band_noise_skips_the_filter_roll_off():
    # 12 kHz at 297.2 MHz, 4096 points: -15.5..24.8 ppm like the Siemens 7 T data
    dwell_s, cf_mhz, n = 1 / 12000, 297.2, 4096
    fid = _spectrum_fid(n, dwell_s, cf_mhz, roll_off_fraction=0.1)
    assert fid_to_spectrum(fid).real[:10].std() < 0.6 * SD  # the ends are attenuated
    assert noise_sd(fid, dwell_s, cf_mhz) == pytest.approx(SD, rel=0.06)


def test_narrow_band_still_uses_the_ends():
    # 3 kHz at 298 MHz, 1024 points (-0.4..9.7 ppm): no signal-free flat part; the ends are
    # noise only here, so the estimate is the SD
    dwell_s, cf_mhz, n = 1 / 3000, 298.0, 1024
    fid = _spectrum_fid(n, dwell_s, cf_mhz, roll_off_fraction=0.0)
    assert noise_sd(fid, dwell_s, cf_mhz) == pytest.approx(SD, rel=0.1)


def test_an_explicit_window_wins():
    dwell_s, cf_mhz, n = 1 / 12000, 297.2, 4096
    fid = _spectrum_fid(n, dwell_s, cf_mhz, roll_off_fraction=0.1)
    ppm = ppm_axis(n, dwell_s, cf_mhz)
    outer = (float(ppm.min()), float(ppm.min()) + 3.0)
    assert noise_sd(fid, dwell_s, cf_mhz, outer) == pytest.approx(ROLL_OFF * SD, rel=0.1)
