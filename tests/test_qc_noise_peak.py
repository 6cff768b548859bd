"""Noise SD with a strong line inside the noise region (issue 13, review rev6).

A spurious echo or an aliased line in the signal-free region is smooth over a few 16-bin
blocks. The block (local) estimate is robust to it (median of the block variances), but the
lag-1 autocorrelation that guards against correlated noise was pooled over all blocks, so the
line's blocks made white noise look correlated and the one-trend SD (12-22 x the noise) was
kept. Truth is constructed: white noise of known SD plus a Lorentzian of known height.
"""

import numpy as np
import pytest

from pipeline.qc.metrics import _detrended_sd, local_noise_sd, noise_mask, noise_sd
from pipeline.spectra import fid_to_spectrum, ppm_axis, spectrum_to_fid

DWELL_S, CF_MHZ, N_POINTS = 1 / 4000, 123.2, 2048


def _noise_with_line(seed: int, height: float, fwhm_hz: float) -> np.ndarray:
    """White noise (SD 1 in the real spectrum) plus an absorption Lorentzian of ``height``
    a quarter of the way into the noise region."""
    rng = np.random.default_rng(seed)
    fid = spectrum_to_fid(rng.standard_normal(N_POINTS) + 1j * rng.standard_normal(N_POINTS))
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    inside = np.flatnonzero(noise_mask(ppm))
    t = np.arange(N_POINTS) * DWELL_S
    line = np.exp((2j * np.pi * (ppm[inside[inside.size // 4]] - 4.7) * CF_MHZ
                   - np.pi * fwhm_hz) * t)
    return fid + line * height / np.abs(fid_to_spectrum(line)).max()


@pytest.mark.parametrize("fwhm_hz", [5.0, 20.0])
def test_a_strong_line_in_the_noise_region_does_not_inflate_the_noise(fwhm_hz):
    fids = [_noise_with_line(seed, 200.0, fwhm_hz) for seed in range(10)]
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    one_trend = [_detrended_sd(fid_to_spectrum(f).real, noise_mask(ppm)) for f in fids]
    assert min(one_trend) > 5.0          # the line is there and the one-trend SD sees it
    ratios = np.array([noise_sd(f, DWELL_S, CF_MHZ) for f in fids])
    assert np.median(ratios) == pytest.approx(1.0, abs=0.08)
    assert ratios.max() < 1.25


def test_the_white_noise_guard_ignores_the_line_blocks():
    """The lag-1 autocorrelation is that of white noise with a linear trend removed from
    each 16-bin block (about -0.13), with or without the line."""
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    mask = noise_mask(ppm)
    lag_with = np.median([local_noise_sd(fid_to_spectrum(_noise_with_line(s, 200.0, 10.0)).real,
                                         mask)[1] for s in range(10)])
    lag_without = np.median([local_noise_sd(fid_to_spectrum(_noise_with_line(s, 0.0, 10.0)).real,
                                            mask)[1] for s in range(10)])
    assert lag_without == pytest.approx(-0.13, abs=0.04)
    assert lag_with == pytest.approx(lag_without, abs=0.05)
