"""Noise SD when signal reaches the noise region (issue 13).

A large residual-water line, or a broad baseline, with a non-zero phase has a dispersion tail
that falls off only as 1/distance and reaches the band ends. One linear trend over the whole
noise region cannot follow it, so the noise (which weights the amplitude priors and divides the
fit residual in the QC) came out several times too large. Truth here is constructed: noise of
known SD, a tail of known shape; and the validation spectra, whose noise SD is drawn by the
generator.
"""

import numpy as np
import pytest

import validation_support as vs
from pipeline.qc.metrics import _detrended_sd, noise_mask, noise_sd
from pipeline.spectra import fid_to_spectrum, ppm_axis, spectrum_to_fid

DWELL_S, CF_MHZ, N_POINTS = 1 / 4000, 123.2, 2048


def _white_noise_fid(sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = sd * (rng.standard_normal(N_POINTS) + 1j * rng.standard_normal(N_POINTS))
    return spectrum_to_fid(spectrum)


def _dispersion_line_fid(height: float, centre_ppm: float, fwhm_hz: float) -> np.ndarray:
    """A Lorentzian line phased 90 degrees: its real part is the pure dispersion tail."""
    t = np.arange(N_POINTS) * DWELL_S
    offset_hz = (centre_ppm - 4.7) * CF_MHZ
    line = np.exp((2j * np.pi * offset_hz - np.pi * fwhm_hz) * t) * 1j
    peak = np.abs(fid_to_spectrum(line)).max()
    return line * height / peak


def test_a_dispersion_tail_does_not_inflate_the_noise():
    sd = 1.0
    fid = _white_noise_fid(sd, seed=3) + _dispersion_line_fid(3000.0, 4.7, 8.0)
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    one_trend = _detrended_sd(fid_to_spectrum(fid).real, noise_mask(ppm))
    assert one_trend > 2.0 * sd  # the tail is there and the one-trend SD sees it
    assert noise_sd(fid, DWELL_S, CF_MHZ) == pytest.approx(sd, rel=0.1)


@pytest.mark.parametrize("line_broadening_hz", [2.0, 5.0])
def test_apodised_noise_keeps_the_one_trend_estimate(line_broadening_hz):
    """Correlated noise (apodised FID) without signal: the estimate is the SD of the noise
    spectrum itself (the short-block estimate alone would be 13-35 % low)."""
    t = np.arange(N_POINTS) * DWELL_S
    fids = [_white_noise_fid(1.0, seed) * np.exp(-np.pi * line_broadening_hz * t)
            for seed in range(20)]
    ratios = [noise_sd(f, DWELL_S, CF_MHZ) / np.std(fid_to_spectrum(f).real) for f in fids]
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.03)


def test_noise_of_the_validation_spectra_is_close_to_the_generators(shared_data):
    spectra, _ = vs.validation_set(shared_data, 60, seed=0)
    ratios = np.array([noise_sd(s.fid, s.dwell_s, s.cf_mhz) / s.noise_sd for s in spectra])
    assert np.median(ratios) == pytest.approx(1.0, abs=0.06)
    assert ratios.max() < 1.5  # the one-trend SD alone reached 8 x on this set
    assert ratios.min() > 0.85
