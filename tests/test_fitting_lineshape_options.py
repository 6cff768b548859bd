"""Optional lineshape freedom (measured on real spectra in bench_real_vs_lcmodel, off by
default): the water-reference distortion and singlet groups tied by priors. Truth is analytic
or constructed."""

import numpy as np
import pytest

from pipeline.fitting import FitOptions, fit_spectrum
from pipeline.fitting.lineshape import (MIN_ENVELOPE_FRACTION, basis_with_lineshape,
                                        water_lineshape_distortion)
from pipeline.spectra import time_axis_s

from test_fitting_support import CF_MHZ, DWELL_S, N_POINTS, broaden, singlet_basis, synthetic_fid


def test_a_voigt_water_line_has_no_distortion():
    t = time_axis_s(N_POINTS, DWELL_S)
    water = 1e4 * np.exp(-np.pi * 4.0 * t - (np.pi * 3.0 * t) ** 2 / (4 * np.log(2)))
    distortion = water_lineshape_distortion(water, DWELL_S)
    assert np.allclose(distortion, 1.0, atol=1e-6)


def test_a_measured_shoulder_reaches_the_basis():
    t = time_axis_s(N_POINTS, DWELL_S)
    voigt = np.exp(-np.pi * 4.0 * t)
    side_hz = 2.0 / (N_POINTS * DWELL_S)  # two frequency bins (7.8 Hz)
    shape = 1.0 + 0.3 * np.cos(2 * np.pi * side_hz * t)  # a symmetric pair of side lines
    distortion = water_lineshape_distortion(voigt * shape, DWELL_S)
    basis = singlet_basis(["NAA"])
    shaped = basis_with_lineshape(basis, distortion)
    np.testing.assert_allclose(shaped.fids[0], basis.fids[0] * distortion)
    # only a Voigt (a quadratic in log |envelope|) is divided out: the side lines remain
    above = voigt * shape >= MIN_ENVELOPE_FRACTION * np.max(voigt * shape)
    reliable = np.arange(N_POINTS) < np.argmin(above)  # before the held tail
    assert 100 < reliable.sum() < N_POINTS
    log_ratio = np.log(distortion / shape)[reliable]
    coef = np.polyfit(t[reliable], log_ratio, 2)
    assert np.max(np.abs(log_ratio - np.polyval(coef, t[reliable]))) < 1e-6
    assert np.ptp(distortion) > 0.3


def test_singlet_groups_follow_a_separate_naa_shift():
    truth = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3, "Ins": 0.5}
    names = list(truth)
    basis = singlet_basis(names)
    others = synthetic_fid(basis, {k: v for k, v in truth.items() if k != "NAA"},
                           shift_hz=2.0, noise_sd=0.0)
    naa = broaden(basis.fids[0] * truth["NAA"], DWELL_S, 2.0, 3.0, shift_hz=2.6)
    rng = np.random.default_rng(1)
    fid = others + naa + 0.01 * (rng.normal(size=N_POINTS) + 1j * rng.normal(size=N_POINTS))
    options = FitOptions(ppm_range=(1.0, 4.0), singlet_groups=True, group_shift_sd_ppm=0.01)
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, options)
    assert {"naa", "cr", "metabolites"} <= set(fit.shift_hz)
    assert abs(fit.shift_hz["naa"] - 2.6) < 0.1
    assert abs(fit.shift_hz["cr"] - 2.0) < 0.1
    assert abs(fit.amplitude("NAA") - 1.0) < 0.03
