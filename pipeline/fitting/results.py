"""Plain result types of spectral fits (one spectrum, several conditions)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .uncertainty import crlb_percent


@dataclass
class SpectralFit:
    """Result of fitting one spectrum.

    Amplitudes are in basis units (1.0 = the basis FID as given, i.e. 1 mM of a per-mM basis),
    so they are on one common scale across conditions fitted with the same basis.
    ``covariance`` is the amplitude block of the inverse Fisher information of the full model
    (amplitudes, baseline and non-linear parameters), ``crlb`` its square-root diagonal.
    ``sums`` maps tNAA/tCr/tCho/Glx to ``(value, crlb)``. FIDs are on the data grid.
    """

    names: list
    amplitudes: np.ndarray
    crlb: np.ndarray
    covariance: np.ndarray
    fitted_fid: np.ndarray
    baseline_fid: np.ndarray
    residual_fid: np.ndarray
    component_fids: np.ndarray
    sums: dict
    sigma: float                  # noise SD per real spectral point (data units)
    lorentz_fwhm_hz: dict         # group -> added Lorentzian FWHM (Hz)
    gauss_fwhm_hz: dict           # group -> added Gaussian FWHM (Hz)
    shift_hz: dict                # group -> frequency shift (Hz, FID convention)
    phase0_deg: float
    phase1_deg_per_ppm: float
    ppm_range: tuple
    theta: np.ndarray             # non-linear parameters (internal layout, see model.py)
    theta_crlb: np.ndarray
    n_iterations: int
    success: bool
    message: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def crlb_percent(self) -> np.ndarray:
        return np.array([crlb_percent(a, c) for a, c in zip(self.amplitudes, self.crlb)])

    def amplitude(self, name: str) -> float:
        """Amplitude of a metabolite or of a sum (tNAA, tCr, tCho, Glx)."""
        if name in self.names:
            return float(self.amplitudes[self.names.index(name)])
        if name in self.sums:
            return self.sums[name][0]
        raise KeyError(f"{name!r} is neither a fitted metabolite nor a sum: {self.names}")

    def uncertainty(self, name: str) -> float:
        """CRLB (SD) of a metabolite or of a sum."""
        if name in self.names:
            return float(self.crlb[self.names.index(name)])
        if name in self.sums:
            return self.sums[name][1]
        raise KeyError(f"{name!r} is neither a fitted metabolite nor a sum: {self.names}")


@dataclass
class ConditionFits:
    """Fits of all diffusion conditions of one acquisition on one amplitude scale.

    ``amplitudes``/``crlb`` are ``(n_conditions, n_metab)``; ``sums`` maps each sum to
    ``(values, crlbs)`` arrays over conditions. In joint mode ``diffusion`` holds, per
    metabolite, ``{"model", "parameters": {name: (value, crlb)}}`` from the joint Fisher matrix.
    """

    names: list
    b_values_s_mm2: np.ndarray
    fits: list
    mode: str
    diffusion: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def amplitudes(self) -> np.ndarray:
        return np.array([f.amplitudes for f in self.fits])

    @property
    def crlb(self) -> np.ndarray:
        return np.array([f.crlb for f in self.fits])

    @property
    def sums(self) -> dict:
        keys = self.fits[0].sums.keys() if self.fits else []
        return {k: (np.array([f.sums[k][0] for f in self.fits]),
                    np.array([f.sums[k][1] for f in self.fits])) for k in keys}

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(amplitudes, crlbs) of one metabolite or sum across conditions."""
        return (np.array([f.amplitude(name) for f in self.fits]),
                np.array([f.uncertainty(name) for f in self.fits]))
