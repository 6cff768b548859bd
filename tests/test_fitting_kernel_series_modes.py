"""A diffusion series is fitted without the adaptive lineshape kernel in every mode (review
rev6): joint, and the fixed-shape MM from the highest b, give exactly the Voigt-only fit."""

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.fitting import FitOptions, fit_conditions

from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, singlet_fid, synthetic_fid

TRUTH = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3, "Ins": 0.5, "MM09": 0.6}


def _shouldered_series():
    """Two b-values of a spectrum with a 30 % shoulder 3 Hz off (a Voigt leaves structure,
    so a single spectrum would get the kernel) and an MM-like broad line at 0.9 ppm."""
    plain = singlet_basis(["NAA", "Cr", "Cho", "Ins"])
    mm = singlet_fid(0.9, 3, plain.n_points, DWELL_S, CF_MHZ, lorentz_hz=15.0)
    basis = Basis(plain.names + ["MM09"], np.vstack([plain.fids, mm[None]]), DWELL_S, CF_MHZ)
    fid = synthetic_fid(basis, TRUTH, lorentz_hz=2.0, gauss_hz=3.0, shift_hz=2.0)
    t = np.arange(fid.size) * DWELL_S
    fid = fid * (0.7 + 0.3 * np.exp(2j * np.pi * 3.0 * t))
    rng = np.random.default_rng(3)
    noisy = [s * fid + 0.01 * (rng.standard_normal(fid.size) + 1j * rng.standard_normal(fid.size))
             for s in (1.0, 0.7)]
    return np.array(noisy), basis


@pytest.mark.parametrize("settings", [dict(mode="joint"),
                                      dict(mode="sequential",
                                           mm_mode="fixed_shape_from_highest_b")])
def test_series_modes_fit_without_the_kernel(settings):
    fids, basis = _shouldered_series()
    b = [0.0, 3000.0]
    options = dict(ppm_range=(0.5, 4.0), **settings)
    adaptive = fit_conditions(fids, basis, DWELL_S, CF_MHZ, b, FitOptions(**options))
    voigt = fit_conditions(fids, basis, DWELL_S, CF_MHZ, b,
                           FitOptions(**options, lineshape_kernel_hz=0.0))
    every = adaptive.fits + adaptive.extra.get("sequential", [])
    assert every and all("lineshape_kernel" not in f.extra for f in every)
    assert all("voigt_fit_quality" not in f.extra for f in every)
    for a, v in zip(adaptive.fits, voigt.fits):
        assert np.allclose(a.amplitudes, v.amplitudes, rtol=1e-9, atol=0)
