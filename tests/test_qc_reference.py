"""Water-reference peaks from one Fourier transform (pipeline.qc.reference.water_peaks)."""

import numpy as np
import pytest

import pipeline.qc.reference as reference

N, DWELL_S, CF_MHZ = 2048, 1 / 2000, 123.2


def _line(ppm, amplitude, t):
    """Lorentzian (2 Hz half-width) at ``ppm`` in the package's convention (f = (4.65 - ppm) cf)."""
    return amplitude * np.exp(2j * np.pi * (4.65 - ppm) * CF_MHZ * t - np.pi * 4.0 * t)


def test_water_peaks_transform_once_and_give_both_measures(monkeypatch):
    """Water (1000) on the 0 Hz bin plus NAA (1): the tallest water point is the FID's sum,
    1000 (1 - r^N) / (1 - r) with r = exp(-4 pi dwell) (the NAA tail adds < 0.1 %); the
    dominance is the one ``water_dominance`` gives, from a single spectrum."""
    t = np.arange(N) * DWELL_S
    fids = np.stack([_line(4.65, 1000.0, t) + _line(2.01, 1.0, t)] * 3)  # three transients
    transforms = []
    original = reference.fid_to_spectrum
    monkeypatch.setattr(reference, "fid_to_spectrum",
                        lambda f: transforms.append(f.shape) or original(f))
    height, dominance = reference.water_peaks(fids, DWELL_S, CF_MHZ)
    assert len(transforms) == 1
    r = np.exp(-4.0 * np.pi * DWELL_S)
    assert height == pytest.approx(1000.0 * (1 - r**N) / (1 - r), rel=1e-3)
    assert dominance == reference.water_dominance(fids, DWELL_S, CF_MHZ)
    assert height == reference.water_height(fids, DWELL_S, CF_MHZ)


def test_water_peaks_need_both_windows():
    """A 200 Hz width at 123.2 MHz spans 4.65 +/- 0.81 ppm: no metabolite window, ValueError."""
    t = np.arange(256) / 200.0
    with pytest.raises(ValueError, match="does not cover"):
        reference.water_peaks(_line(4.65, 1.0, t), 1 / 200.0, CF_MHZ)
