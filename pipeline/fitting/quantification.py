"""Quantification: ratios to tCr and water-scaled concentrations (mM).

Water scaling follows the tissue-water approach (Gasparovic et al. 2006; MRS consensus):
``[M] = a_M * W_eff / (S_W / n_H,W) / R_M`` where ``a_M`` is the fitted amplitude on a basis
scaled per 1 mM (an FID sequence has FID[0] = number of protons), ``S_W`` the water signal at
t = 0 in the same data units, ``n_H,W = 2``, ``R_M = exp(-TE/T2_M) (1 - exp(-TR/T1_M))`` the
metabolite relaxation attenuation, and ``W_eff`` the relaxation-attenuated water concentration
of the voxel: ``55510 mM * sum_t f_t c_t exp(-TE/T2_W,t) (1 - exp(-TR/T1_W,t))`` over tissue
classes (GM, WM, CSF) with volume fractions ``f_t`` and water contents ``c_t``. Concentrations
are per litre of voxel; ``csf_corrected=True`` divides by ``1 - f_CSF`` (per litre of tissue).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from ..spectra import fid_to_spectrum, frequency_axis_hz, time_axis_s
from .results import SpectralFit

PURE_WATER_MM = 55510.0
CREATINE_PROTONS = 5
"""Non-exchangeable creatine protons (CH3 + CH2), all singlets: FID[0] of a simulated creatine
basis spectrum is 5 x the basis's per-proton scale at any echo time."""
WATER_FIT_S = 0.2
"""Length of the water FID used by :func:`water_amplitude` (s)."""
WATER_CONTENT = {"gm": 0.78, "wm": 0.65, "csf": 0.97}
"""Relative water content (Ernst et al. 1993)."""
TISSUE_CLASSES = tuple(WATER_CONTENT)
DEFAULT_TISSUE_FRACTIONS = {"gm": 0.6, "wm": 0.4, "csf": 0.0}
"""Voxel composition assumed without segmentation (as in the ISMRM 2016 challenge)."""
WATER_T2_S_3T = {"gm": 0.110, "wm": 0.080, "csf": 0.503}
WATER_T1_S_3T = {"gm": 1.820, "wm": 1.084, "csf": 4.163}
"""Tissue water relaxation times at 3 T (Wansapura et al. 1999; Piechnik et al. 2009)."""


def ratios_to_tcr(fit: SpectralFit) -> dict:
    """Amplitude of every metabolite and sum divided by tCr (Cr + PCr)."""
    tcr = fit.amplitude("tCr")
    if tcr <= 0:
        raise ValueError("ratios_to_tcr: tCr amplitude is zero; no ratio can be formed")
    names = list(fit.names) + list(fit.sums)
    return {n: fit.amplitude(n) / tcr for n in names if n != "tCr"}


def water_amplitude(water_fid: np.ndarray, dwell_s: float) -> float:
    """Water signal at t = 0 (data units) from a single-Voigt fit of the water reference FID.

    Fitting, rather than reading FID[0], ignores noise, first-point conventions (halved or
    filter-distorted FID[0] is left out) and any small signal far from the water peak.
    """
    fid = np.asarray(water_fid, dtype=complex).reshape(-1)
    t = time_axis_s(fid.size, dwell_s)
    spectrum = fid_to_spectrum(fid)
    freq0 = frequency_axis_hz(fid.size, dwell_s)[int(np.argmax(np.abs(spectrum)))]
    n_fit = max(16, min(fid.size, int(WATER_FIT_S / dwell_s)))
    tt, yy = t[1:n_fit], fid[1:n_fit]  # skip FID[0]: often halved or distorted by filters

    def model(p):
        return (p[0] + 1j * p[1]) * np.exp(2j * np.pi * p[2] * tt - p[3] * tt - p[4] * tt ** 2)

    def residual(p):
        r = model(p) - yy
        return np.concatenate([r.real, r.imag])

    p0 = np.array([fid[0].real, fid[0].imag, freq0, 10.0, 10.0])
    fit = least_squares(residual, p0, bounds=([-np.inf, -np.inf, -np.inf, 0, 0], np.inf))
    return float(abs(fit.x[0] + 1j * fit.x[1]))


def relaxation_attenuation(echo_time_s: float, t2_s: float | None,
                           repetition_time_s: float | None = None,
                           t1_s: float | None = None) -> float:
    """``exp(-TE/T2) (1 - exp(-TR/T1))``; a missing T2 or TR/T1 contributes a factor 1."""
    factor = 1.0 if t2_s is None else float(np.exp(-echo_time_s / t2_s))
    if repetition_time_s is not None and t1_s is not None:
        factor *= 1.0 - float(np.exp(-repetition_time_s / t1_s))
    return factor


def effective_water_mm(echo_time_s: float, tissue_fractions: dict,
                       repetition_time_s: float | None = None,
                       water_content: dict | None = None, water_t2_s: dict | None = None,
                       water_t1_s: dict | None = None) -> float:
    """Relaxation-attenuated voxel water concentration (mM) from tissue fractions."""
    fractions = _normalised_fractions(tissue_fractions)
    content = {**WATER_CONTENT, **(water_content or {})}
    t2 = {**WATER_T2_S_3T, **(water_t2_s or {})}
    t1 = {**WATER_T1_S_3T, **(water_t1_s or {})}
    total = sum(f * content[t] * relaxation_attenuation(echo_time_s, t2[t], repetition_time_s,
                                                        t1[t])
                for t, f in fractions.items())
    return PURE_WATER_MM * total


def _normalised_fractions(fractions: dict) -> dict:
    unknown = set(fractions) - set(WATER_CONTENT)
    if unknown:
        raise ValueError(f"tissue fractions: unknown classes {sorted(unknown)} "
                         f"(expected {sorted(WATER_CONTENT)})")
    total = sum(fractions.values())
    if total <= 0 or any(v < 0 for v in fractions.values()):
        raise ValueError(f"tissue fractions must be non-negative with a positive sum: {fractions}")
    return {k: v / total for k, v in fractions.items()}


def water_scaled_concentrations(fit: SpectralFit | dict, water_signal: float, *,
                                echo_time_s: float = 0.0,
                                repetition_time_s: float | None = None,
                                metabolite_t2_s: dict | float | None = None,
                                metabolite_t1_s: dict | float | None = None,
                                tissue_fractions: dict | None = None,
                                effective_water_concentration_mm: float | None = None,
                                water_content: dict | None = None,
                                water_t2_s: dict | None = None,
                                water_t1_s: dict | None = None,
                                water_protons: int = 2,
                                csf_corrected: bool = False) -> dict:
    """``{name: (concentration_mm, crlb_mm)}`` for every metabolite and sum.

    ``fit`` is a :class:`SpectralFit` (CRLBs propagated) or a plain ``{name: amplitude}`` (CRLB
    NaN). ``water_signal`` is the water amplitude at t = 0 (see :func:`water_amplitude`).
    ``effective_water_concentration_mm`` (already relaxation-attenuated) overrides the tissue
    computation; otherwise ``tissue_fractions`` (gm/wm/csf, default pure GM/WM 60/40) with the
    water content and relaxation tables give it. Metabolite T1/T2 may be one value or per name
    (a sum uses the value of its first member present, else the scalar default).
    """
    if water_signal <= 0:
        raise ValueError(f"water_scaled_concentrations: water signal must be positive, "
                         f"got {water_signal}")
    fractions = tissue_fractions or DEFAULT_TISSUE_FRACTIONS
    if effective_water_concentration_mm is None:
        effective_water_concentration_mm = effective_water_mm(
            echo_time_s, fractions, repetition_time_s, water_content, water_t2_s, water_t1_s)
    per_proton_water = water_signal / water_protons
    scale = effective_water_concentration_mm / per_proton_water
    if csf_corrected:
        csf = _normalised_fractions(fractions).get("csf", 0.0)
        if csf >= 1:
            raise ValueError("water_scaled_concentrations: the voxel is all CSF")
        scale /= 1.0 - csf
    values = _amplitudes_with_crlb(fit)
    out = {}
    for name, (amp, crlb) in values.items():
        r = relaxation_attenuation(echo_time_s, _per_name(metabolite_t2_s, name),
                                   repetition_time_s, _per_name(metabolite_t1_s, name))
        out[name] = (amp * scale / r, crlb * scale / r)
    return out


def _amplitudes_with_crlb(fit) -> dict:
    if isinstance(fit, SpectralFit):
        out = {n: (float(a), float(c)) for n, a, c in zip(fit.names, fit.amplitudes, fit.crlb)}
        out.update({n: (float(v), float(s)) for n, (v, s) in fit.sums.items()})
        return out
    return {n: (tuple(map(float, v)) if np.ndim(v) else (float(v), float("nan")))
            for n, v in dict(fit).items()}


def basis_proton_scale(names, fids) -> float:
    """FID[0] per proton of a 1 mM basis entry, from its creatine (or phosphocreatine) entry.

    A basis file may carry any overall scale (LCModel sets often do); amplitudes times this
    scale are on the per-mM, FID[0] = protons scale that water scaling assumes. A simulated
    basis of this project gives 1 (0.5 for STEAM, whose stimulated echo holds half the
    magnetisation; the water reference, acquired the same way, carries the same half).
    """
    for name in ("Cr", "PCr"):
        if name in names:
            value = abs(complex(fids[list(names).index(name)][0])) / CREATINE_PROTONS
            if value > 0:
                return value
    raise ValueError("water scaling needs a creatine (Cr or PCr) basis entry to find the "
                     f"basis scale; the basis has {list(names)}")


def ratio_to_tcr_column(rows: list[dict]) -> list[dict]:
    """``_amplitudes.tsv`` rows with ``ratio_tcr`` = amplitude / tCr of the same condition
    (NaN where tCr is zero or absent)."""
    tcr = {int(r["condition"]): float(r["amplitude"]) for r in rows if r["metabolite"] == "tCr"}
    out = []
    for row in rows:
        denominator = tcr.get(int(row["condition"]), 0.0)
        ratio = float(row["amplitude"]) / denominator if denominator > 0 else float("nan")
        out.append({**row, "ratio_tcr": ratio})
    return out


def concentration_columns(rows: list[dict], water_signal: float, basis_scale: float,
                          **scaling) -> list[dict]:
    """``_amplitudes.tsv`` rows with ``concentration_mm`` and ``concentration_crlb_mm``.

    Each condition is scaled with :func:`water_scaled_concentrations` (``scaling``: its
    keyword options) after putting amplitudes on the per-mM scale (``basis_scale``, see
    :func:`basis_proton_scale`). At b > 0 the value is the diffusion-weighted apparent
    concentration; the lowest b is the concentration.
    """
    by_condition: dict = {}
    for row in rows:
        by_condition.setdefault(int(row["condition"]), {})[row["metabolite"]] = (
            float(row["amplitude"]) * basis_scale, float(row["crlb"]) * basis_scale)
    concentrations = {c: water_scaled_concentrations(values, water_signal, **scaling)
                      for c, values in by_condition.items()}
    out = []
    for row in rows:
        value, crlb = concentrations[int(row["condition"])][row["metabolite"]]
        out.append({**row, "concentration_mm": value, "concentration_crlb_mm": crlb})
    return out


def _per_name(value, name: str):
    if value is None or np.isscalar(value):
        return value
    from .uncertainty import METABOLITE_SUMS

    if name in value:
        return value[name]
    for member in METABOLITE_SUMS.get(name, ()):
        if member in value:
            return value[member]
    return value.get("default")
