"""Builders shared by the spectral-fitting tests: analytic singlet bases, Voigt-broadened noisy
spectra with known truth, and loaders for the shared real data (ISMRM 2016 challenge, pregame).
"""

from __future__ import annotations

import numpy as np

from pipeline.basis import Basis
from pipeline.spectra import fid_to_spectrum, ppm_axis, ppm_to_hz, time_axis_s

DWELL_S = 2.5e-4
CF_MHZ = 123.2
N_POINTS = 1024
ISMRM_DWELL_S = 2.5e-4
ISMRM_CF_MHZ = 123.2

SINGLETS = {"NAA": (2.01, 3), "Cr": (3.03, 3), "PCr": (3.04, 3), "Cho": (3.21, 9),
            "Ins": (3.56, 6), "Glx": (2.35, 2), "Lac": (1.31, 3)}
"""Toy spectral signatures (ppm, protons): analytic and cheap, enough to test the machinery."""



def singlet_fid(ppm: float, protons: float, n_points: int = N_POINTS, dwell_s: float = DWELL_S,
                cf_mhz: float = CF_MHZ, lorentz_hz: float = 1.0) -> np.ndarray:
    """An FID of ``protons`` equivalent spins at ``ppm`` with a small intrinsic linewidth."""
    t = time_axis_s(n_points, dwell_s)
    return protons * np.exp(2j * np.pi * ppm_to_hz(ppm, cf_mhz) * t - np.pi * lorentz_hz * t)


def singlet_basis(names=None, n_points: int = N_POINTS, dwell_s: float = DWELL_S,
                  cf_mhz: float = CF_MHZ) -> Basis:
    names = list(SINGLETS) if names is None else list(names)
    fids = [singlet_fid(*SINGLETS[n], n_points, dwell_s, cf_mhz) for n in names]
    return Basis(names, np.array(fids), dwell_s, cf_mhz)


def broaden(fids: np.ndarray, dwell_s: float, lorentz_hz: float, gauss_hz: float,
            shift_hz: float = 0.0, phase_rad: float = 0.0) -> np.ndarray:
    """Voigt broadening (FWHM in Hz), frequency shift and zero-order phase of FIDs."""
    t = time_axis_s(fids.shape[-1], dwell_s)
    env = np.exp(-np.pi * lorentz_hz * t - (np.pi * gauss_hz * t) ** 2 / (4 * np.log(2))
                 + 2j * np.pi * shift_hz * t + 1j * phase_rad)
    return fids * env


def synthetic_fid(basis: Basis, amplitudes: dict, lorentz_hz=2.0, gauss_hz=3.0, shift_hz=0.0,
                  phase_rad=0.0, noise_sd=0.0, rng=None) -> np.ndarray:
    """Sum of broadened basis FIDs with known amplitudes plus complex Gaussian noise.

    ``noise_sd`` is the SD of the real (and of the imaginary) part of each time-domain sample.
    """
    amps = np.array([amplitudes.get(n, 0.0) for n in basis.names])
    clean = broaden(amps @ basis.fids, basis.dwell_s, lorentz_hz, gauss_hz, shift_hz, phase_rad)
    if noise_sd:
        rng = rng or np.random.default_rng(0)
        clean = clean + noise_sd * (rng.standard_normal(clean.size)
                                    + 1j * rng.standard_normal(clean.size))
    return clean


def fit_and_quality(fid: np.ndarray, basis: Basis, options, dwell_s: float = DWELL_S,
                    cf_mhz: float = CF_MHZ):
    """(fit, residual SD / noise SD over the fitted window) of ``fit_spectrum`` with ``options``."""
    from pipeline.fitting import fit_spectrum
    from pipeline.qc.metrics import fit_quality
    fit = fit_spectrum(fid, basis, dwell_s, cf_mhz, options)
    quality = fit_quality(fid, fit.fitted_fid, dwell_s, cf_mhz, fit_ppm=options.ppm_range)
    return fit, quality["fit_quality"]


def truncated(basis: Basis, n_points: int) -> Basis:
    """The basis cut to its first ``n_points`` samples (same dwell)."""
    return Basis(basis.names, basis.fids[:, :n_points], basis.dwell_s, basis.cf_mhz,
                 basis.ref_ppm, provenance=dict(basis.provenance))


def test_singlet_basis_peaks_sit_at_their_chemical_shift():
    basis = singlet_basis()
    ppm = ppm_axis(basis.n_points, basis.dwell_s, basis.cf_mhz)
    peaks = ppm[np.argmax(np.abs(fid_to_spectrum(basis.fids)), axis=1)]
    expected = np.array([SINGLETS[n][0] for n in basis.names])
    assert np.all(np.abs(peaks - expected) < 0.02)
    assert np.allclose(np.abs(basis.fids[:, 0]), [SINGLETS[n][1] for n in basis.names])
