"""Clean synthetic signals: lineshape, T2 and diffusion amplitude factors, the simulated
basis (metabolites, MM), residual water and the water-reference shape.

The model is stated in :mod:`pipeline.simulate.synthetic`; these are its noiseless parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..basis import Basis
from ..spectra import ppm_to_hz, time_axis_s
from ..units import b_s_mm2_to_ms_um2

if TYPE_CHECKING:
    from .synthetic import SyntheticSpec

DIFFUSION_FUNCTIONS = {
    "monoexponential": "monoexponential",
    "kurtosis": "kurtosis",
    "biexponential": "biexponential",
    "sticks": "sticks_powder_average",
    "sticks_powder_average": "sticks_powder_average",
    "cylinders": "cylinders_powder_average",
    "cylinders_powder_average": "cylinders_powder_average",
    "stick_sphere": "stick_sphere",
}
"""Model names accepted in a spec -> function of ``pipeline.diffusion.signals``."""

WATER_PPM = 4.65
"""Chemical shift of water at body temperature (ppm)."""

WATER_NAMES = ("H2O", "Water", "water")
"""Basis entries taken as the water signal (used for the water reference, never as metabolites)."""


def _is_mm(name: str) -> bool:
    """Macromolecule entries: LCModel 'Mac', 'MM', or parametric components 'MM09', ..."""
    return name in ("Mac", "MM") or name.upper().startswith("MM")


def lineshape(n_points: int, dwell_s: float, lorentzian_fwhm_hz: float,
              gaussian_fwhm_hz: float) -> np.ndarray:
    """Time-domain Voigt envelope with the given Lorentzian and Gaussian FWHM (Hz)."""
    t = time_axis_s(n_points, dwell_s)
    return (np.exp(-np.pi * lorentzian_fwhm_hz * t)
            * np.exp(-(np.pi * gaussian_fwhm_hz * t) ** 2 / (4 * np.log(2))))


def diffusion_decay(b_s_mm2, model: dict) -> np.ndarray:
    """S(b)/S(0) of ``{"model": name, "params": {...}}`` via ``pipeline.diffusion.signals``."""
    from ..diffusion import signals

    name = model.get("model")
    if name not in DIFFUSION_FUNCTIONS:
        raise ValueError(f"unknown diffusion model {name!r}: expected one of "
                         f"{sorted(DIFFUSION_FUNCTIONS)}")
    function = getattr(signals, DIFFUSION_FUNCTIONS[name])
    b_ms_um2 = b_s_mm2_to_ms_um2(b_s_mm2)
    signal = np.asarray(function(b_ms_um2, **model.get("params", {})), dtype=float)
    at_zero = float(np.asarray(function(np.zeros(1), **model.get("params", {}))).reshape(-1)[0])
    return signal / at_zero


def t2_factor(echo_time_s: float, t2_s: float | None) -> float:
    """Amplitude factor ``exp(-TE/T2)``; 1 when T2 is not given."""
    return 1.0 if t2_s is None else float(np.exp(-echo_time_s / t2_s))


def _model_basis(basis: Basis, spec: SyntheticSpec) -> tuple[Basis, str]:
    """The basis with the MM entries the spec asks for, and the MM source actually used."""
    has_mm = any(_is_mm(n) for n in basis.names)
    source = spec.mm_source
    if source == "auto":
        source = "basis" if has_mm else "none"
    if source == "basis" and not has_mm:
        raise ValueError(f"mm_source 'basis' but the basis ({basis.provenance.get('source', '')})"
                         f" has no 'Mac'/'MM' entry: {basis.names}")
    keep = [n for n in basis.names
            if (not _is_mm(n) or source == "basis") and n not in WATER_NAMES]
    model = basis.subset(keep)
    if source == "parametric":
        from .macromolecules import parametric_mm_basis

        mm = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                                 echo_time_s=spec.echo_time_s)
        model = model.with_entries(mm)
    return model, source


def _concentrations(model: Basis, spec: SyntheticSpec) -> dict:
    """Concentration of every simulated entry (metabolites listed, MM entries by default)."""
    unknown = sorted(set(spec.concentrations_mm) - set(model.names))
    if unknown:
        raise ValueError(f"synthetic spec: metabolites {unknown} are not in the basis "
                         f"{model.names}")
    conc = {n: float(c) for n, c in spec.concentrations_mm.items()}
    for name in model.names:
        if _is_mm(name) and name not in conc:
            conc[name] = float(spec.mm_amplitude)
    return {n: conc[n] for n in model.names if n in conc}


def _diffusion_model(name: str, spec: SyntheticSpec) -> dict:
    if name in spec.diffusion:
        return spec.diffusion[name]
    if _is_mm(name):
        return {"model": "monoexponential", "params": {"adc": spec.mm_adc_um2_ms}}
    return spec.default_diffusion


def b0_amplitudes(spec: SyntheticSpec, concentrations: dict) -> dict:
    """Amplitude at b = 0 on the basis scale: c * exp(-TE/T2)."""
    return {name: conc * t2_factor(spec.echo_time_s, spec.t2_s.get(
                name, None if _is_mm(name) else spec.default_t2_s))
            for name, conc in concentrations.items()}


def true_amplitudes(spec: SyntheticSpec, amplitudes_b0: dict) -> dict:
    """Per-condition amplitudes on the basis scale: c * exp(-TE/T2) * S(b)/S(0)."""
    return {name: a0 * diffusion_decay(spec.b_values_s_mm2, _diffusion_model(name, spec))
            for name, a0 in amplitudes_b0.items()}


def _water_singlet(n_points: int, dwell_s: float, cf_mhz: float, ref_ppm: float,
                   offset_hz: float, fwhm_hz: float) -> np.ndarray:
    """Unit-amplitude Lorentzian singlet at water (4.65 ppm) plus ``offset_hz``."""
    t = time_axis_s(n_points, dwell_s)
    freq_hz = ppm_to_hz(WATER_PPM, cf_mhz, ref_ppm) + offset_hz
    return np.exp(2j * np.pi * freq_hz * t) * np.exp(-np.pi * fwhm_hz * t)


def clean_components(model: Basis, amplitudes: dict, spec: SyntheticSpec) -> dict:
    """Broadened, scaled noiseless signal of each part, shape ``(n_conditions, n_points)``."""
    envelope = lineshape(model.n_points, model.dwell_s, spec.lorentzian_fwhm_hz,
                         spec.gaussian_fwhm_hz)
    parts = {name: amplitudes[name][:, None] * (model.fid(name) * envelope)[None, :]
             for name in amplitudes}
    if spec.residual_water_amplitude:
        decay = diffusion_decay(spec.b_values_s_mm2, spec.water_diffusion)
        singlet = _water_singlet(model.n_points, model.dwell_s, model.cf_mhz, model.ref_ppm,
                                 spec.residual_water_offset_hz, spec.residual_water_fwhm_hz)
        parts["water"] = (spec.residual_water_amplitude * decay)[:, None] * (singlet * envelope)
    return parts


def water_shape(basis: Basis, spec: SyntheticSpec) -> tuple[np.ndarray, str]:
    """Broadened water FID per 1 mM, and where it came from.

    The basis' water entry (e.g. ``H2O`` from ``simulate_basis``) carries the same sequence
    scaling as the metabolites (STEAM's factor 1/2), so water-scaled concentrations come out
    right; without one, a singlet at 4.65 ppm with FID[0] = ``water_protons``.
    """
    envelope = (lineshape(basis.n_points, basis.dwell_s, spec.lorentzian_fwhm_hz,
                          spec.gaussian_fwhm_hz)
                * np.exp(-np.pi * spec.water_fwhm_hz * time_axis_s(basis.n_points, basis.dwell_s)))
    names = [n for n in WATER_NAMES if n in basis.names]
    if names:
        return basis.fid(names[0]) * envelope, f"basis entry {names[0]}"
    singlet = _water_singlet(basis.n_points, basis.dwell_s, basis.cf_mhz, basis.ref_ppm, 0.0, 0.0)
    return spec.water_protons * singlet * envelope, f"singlet, FID[0] = {spec.water_protons}"
