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
    at_bounds: list = field(default_factory=list)  # non-linear parameters left at a search
    # limit after restarts (``single.parameters_at_bounds``): QC warnings, never silent

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

    def stacked(self, kind: str) -> np.ndarray:
        """(n_conditions, n_points) ``fitted``, ``baseline`` or ``residual`` FIDs, e.g. to write
        the fitted spectra as one NIfTI-MRS file."""
        if kind not in ("fitted", "baseline", "residual"):
            raise ValueError(f"stacked: kind must be fitted, baseline or residual, got {kind!r}")
        return np.array([getattr(f, f"{kind}_fid") for f in self.fits])

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(amplitudes, crlbs) of one metabolite or sum across conditions."""
        return (np.array([f.amplitude(name) for f in self.fits]),
                np.array([f.uncertainty(name) for f in self.fits]))


def display_spectra(fit: SpectralFit, ppm_range: tuple | None = None) -> dict:
    """Arrays for a fit figure: ``ppm``, ``data``, ``fit``, ``baseline``, ``residual`` (complex
    spectra) and ``components`` (name -> spectrum), restricted to ``ppm_range`` (default: the
    fitted window). The data spectrum is rebuilt as fit + residual, so no FID is needed."""
    from ..spectra import fid_to_spectrum, ppm_axis, ppm_window_mask

    problem = fit.extra["problem"]
    ppm = ppm_axis(problem.n_points, problem.dwell_s, problem.cf_mhz, problem.ref_ppm)
    keep = ppm_window_mask(ppm, *(ppm_range or fit.ppm_range))
    fitted = fid_to_spectrum(fit.fitted_fid)[keep]
    residual = fid_to_spectrum(fit.residual_fid)[keep]
    return {"ppm": ppm[keep], "data": fitted + residual, "fit": fitted,
            "baseline": fid_to_spectrum(fit.baseline_fid)[keep], "residual": residual,
            "components": {n: s[keep] for n, s in
                           zip(fit.names, fid_to_spectrum(fit.component_fids))}}


def joint_diffusion_rows(fits: ConditionFits) -> list[dict]:
    """Rows shaped like ``_diffusion.tsv`` (metabolite, model, parameter, value, unit, std_error,
    applicable, note) for the diffusion parameters of a joint fit; CRLBs as std_error."""
    rows = []
    for name, entry in fits.diffusion.items():
        units = entry.get("units", {})
        for parameter, (value, crlb) in entry["parameters"].items():
            rows.append({"metabolite": name, "model": entry["model"], "parameter": parameter,
                         "value": value, "unit": units.get(parameter, ""), "std_error": crlb,
                         "applicable": True, "note": "joint spectral fit (CRLB)"})
    return rows
