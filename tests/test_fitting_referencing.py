"""Singlet referencing (pipeline.fitting.referencing) on spectra built from Lorentzian lines
with a known offset and zero-order phase (truth independent of the fit model)."""

import numpy as np
import pytest

from pipeline.referencing import singlet_reference
from pipeline.spectra import ppm_to_hz, time_axis_s

CF_MHZ, DWELL_S, N, REF_PPM = 123.2, 1 / 2000, 2048, 4.65


def lorentzian_fid(lines, offset_ppm, phase_deg, lw_hz=6.0, noise=0.0, seed=0):
    """Sum of Lorentzian lines (ppm, amplitude) moved by ``offset_ppm`` (a line at p appears at
    p + offset_ppm), times exp(i phase)."""
    t = time_axis_s(N, DWELL_S)
    fid = np.zeros(N, complex)
    for ppm, amp in lines:
        f = ppm_to_hz(ppm + offset_ppm, CF_MHZ, REF_PPM)
        fid += amp * np.exp(2j * np.pi * f * t - np.pi * lw_hz * t)
    fid *= np.exp(1j * np.deg2rad(phase_deg))
    rng = np.random.default_rng(seed)
    return fid + noise * (rng.standard_normal(N) + 1j * rng.standard_normal(N))


BRAIN = [(2.008, 1.0), (3.027, 0.8), (3.185, 0.6), (3.92, 0.5), (3.55, 0.4), (2.35, 0.3)]
LIPIDS = [(1.3, 3.0), (0.9, 1.0), (2.05, 0.4)]


@pytest.mark.parametrize("offset_ppm", [-0.25, -0.15, -0.05, 0.0, 0.08, 0.15, 0.25])
@pytest.mark.parametrize("phase_deg", [-150, -90, 0, 45, 90, 180])
def test_offset_and_phase_recovered(offset_ppm, phase_deg):
    fid = lorentzian_fid(BRAIN, offset_ppm, phase_deg, noise=0.01)
    shift_hz, phase0 = singlet_reference(fid, DWELL_S, CF_MHZ, REF_PPM)
    # fit-model convention: the basis line at p moved by shift_hz lands at p + offset
    expected_hz = ppm_to_hz(2.008 + offset_ppm, CF_MHZ, REF_PPM) - ppm_to_hz(2.008, CF_MHZ,
                                                                             REF_PPM)
    assert abs(shift_hz - expected_hz) < 0.3 * 1 / (N * DWELL_S) + 0.005 * CF_MHZ
    assert abs(np.angle(np.exp(1j * (phase0 - np.deg2rad(phase_deg))))) < np.deg2rad(10)


@pytest.mark.parametrize("offset_ppm", [-0.15, 0.12])
def test_lipids_and_low_snr_do_not_mislead(offset_ppm):
    fid = lorentzian_fid(BRAIN + LIPIDS, offset_ppm, 70, lw_hz=8.0, noise=0.05, seed=3)
    shift_hz, phase0 = singlet_reference(fid, DWELL_S, CF_MHZ, REF_PPM)
    assert abs(shift_hz / CF_MHZ + offset_ppm) < 0.01
    assert abs(np.angle(np.exp(1j * (phase0 - np.deg2rad(70))))) < np.deg2rad(15)



@pytest.mark.parametrize("offset_ppm", [-0.15, 0.15])
@pytest.mark.parametrize("phase_deg", [-90, 90, 180])
def test_default_fit_recovers_ratios_beyond_the_nominal_shift_limit(offset_ppm, phase_deg):
    """Offsets of 0.15 ppm (beyond max_shift_ppm = 0.1) and large zero-order phases: the
    referenced fit finds the spectrum (ratios within 5 %, shift within 0.5 Hz)."""
    from pipeline.fitting import FitOptions, fit_spectrum
    from test_fitting_support import CF_MHZ as CF, DWELL_S as DW, singlet_basis, synthetic_fid

    truth = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3, "Ins": 0.5}
    basis = singlet_basis(list(truth))
    shift_hz = -offset_ppm * CF  # a line at p appears at p + offset_ppm
    fid = synthetic_fid(basis, truth, shift_hz=shift_hz, phase_rad=np.deg2rad(phase_deg),
                        noise_sd=0.02)
    fit = fit_spectrum(fid, basis, DW, CF, FitOptions(ppm_range=(1.0, 4.0)))
    amp = dict(zip(fit.names, fit.amplitudes))
    for name in ("Cr", "Cho", "Ins"):
        assert abs(amp[name] / amp["NAA"] / (truth[name] / truth["NAA"]) - 1) < 0.05
    assert abs(fit.shift_hz["metabolites"] - shift_hz) < 0.5
    assert fit.at_bounds == []
