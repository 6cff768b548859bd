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

from ..spectra import acquired_points, fid_to_spectrum, frequency_axis_hz, time_axis_s
from .results import SpectralFit

PURE_WATER_MM = 55510.0
CREATINE_CH3_PROTONS = 3
"""Protons of creatine's CH3 singlet (3.03 ppm), its tallest line: its line amplitude is 3 x the
basis's per-proton scale at any echo time (a singlet does not evolve under J-coupling)."""
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
WATER_T2_S_7T = {"gm": 0.050, "wm": 0.055, "csf": 1.050}
WATER_T1_S_7T = {"gm": 2.050, "wm": 1.210, "csf": 4.430}
"""Tissue water relaxation times at 7 T: T1 GM/WM from Rooney et al. MRM 2007;57:308
(doi:10.1002/mrm.21122), Dieringer et al. PLoS One 2014 (doi:10.1371/journal.pone.0091318) and
Wright et al. MAGMA 2008 (doi:10.1007/s10334-008-0104-8), CSF T1 from Rooney et al. 2007; T2
GM/WM from the 7 T literature survey compiled with FSL-MRS (Clarke et al.; Bartha et al. 2002,
Gelman et al. 1999, Stanisz et al. 2005), CSF T2 from Spijkerman et al. MAGMA 2018
(doi:10.1007/s10334-017-0659-3)."""
WATER_RELAXATION_BY_FIELD = {3.0: (WATER_T1_S_3T, WATER_T2_S_3T),
                             7.0: (WATER_T1_S_7T, WATER_T2_S_7T)}
"""Field (T) -> (water T1, water T2) per tissue class (s)."""
FIELD_MATCH_T = 0.5
"""A field within this many tesla of a tabulated one uses its values without a warning."""


def water_relaxation_for_field(field_t: float | None) -> tuple[dict, dict, float]:
    """Water T1 and T2 (s) per tissue class for a field strength: the nearest tabulated field
    (:data:`WATER_RELAXATION_BY_FIELD`), and that field. ``None`` means 3 T."""
    if field_t is None:
        field_t = 3.0
    if not np.isfinite(field_t) or field_t <= 0:
        raise ValueError(f"water relaxation: field strength must be positive, got {field_t}")
    nearest = min(WATER_RELAXATION_BY_FIELD, key=lambda f: abs(f - field_t))
    t1, t2 = WATER_RELAXATION_BY_FIELD[nearest]
    return dict(t1), dict(t2), nearest


def ratios_to_tcr(fit: SpectralFit) -> dict:
    """Amplitude of every metabolite and sum divided by tCr (Cr + PCr)."""
    tcr = fit.amplitude("tCr")
    if tcr <= 0:
        raise ValueError("ratios_to_tcr: tCr amplitude is zero; no ratio can be formed")
    names = list(fit.names) + list(fit.sums)
    return {n: fit.amplitude(n) / tcr for n in names if n != "tCr"}


def unit_peak(fid) -> tuple[np.ndarray, float]:
    """(``fid`` as a flat complex array divided by its largest magnitude, that magnitude).

    The line fits below start their damping at fixed values (10 s^-1, a few bins) and stop on
    tolerances relative to the cost, so fitted in data units their answer depended on the
    export's arbitrary scale; at unit peak magnitude it does not. A FID of zeros gives
    (zeros, 0.0)."""
    fid = np.asarray(fid, dtype=complex).reshape(-1)
    peak = float(np.max(np.abs(fid))) if fid.size else 0.0
    return (fid / peak if peak > 0 else fid), peak


def water_amplitude(water_fid: np.ndarray, dwell_s: float) -> float:
    """Water signal at t = 0 (data units) from a single-Voigt fit of the water reference FID.

    Fitting, rather than reading FID[0], ignores noise, first-point conventions (halved or
    filter-distorted FID[0] is left out) and any small signal far from the water peak. A
    zero-filled reference is fitted on its acquired points only. The fit runs on the FID
    divided by its largest magnitude (:func:`unit_peak`), so the answer scales with the data:
    fitted as stored, a reference at 1e-9 (Siemens raw exports reach 3e-9 at the end of a
    FID) or 1e12 data units came out 1-13 % off, and every concentration with it.
    """
    fid, unit = unit_peak(water_fid)
    if unit == 0:
        return 0.0
    t = time_axis_s(fid.size, dwell_s)
    spectrum = fid_to_spectrum(fid)
    freq0 = frequency_axis_hz(fid.size, dwell_s)[int(np.argmax(np.abs(spectrum)))]
    n_fit = max(16, min(acquired_points(fid), int(WATER_FIT_S / dwell_s)))  # not the zeros
    tt, yy = t[1:n_fit], fid[1:n_fit]  # skip FID[0]: often halved or distorted by filters

    def model(p):
        return (p[0] + 1j * p[1]) * np.exp(2j * np.pi * p[2] * tt - p[3] * tt - p[4] * tt ** 2)

    def residual(p):
        r = model(p) - yy
        return np.concatenate([r.real, r.imag])

    p0 = np.array([fid[0].real, fid[0].imag, freq0, 10.0, 10.0])
    # tolerances below the defaults: at unit peak the default stop left a noise-free line 5e-6 low
    fit = least_squares(residual, p0, bounds=([-np.inf, -np.inf, -np.inf, 0, 0], np.inf),
                        ftol=1e-12, xtol=1e-12, gtol=1e-12)
    return float(abs(fit.x[0] + 1j * fit.x[1])) * unit


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
                       water_t1_s: dict | None = None, field_t: float | None = None) -> float:
    """Relaxation-attenuated voxel water concentration (mM) from tissue fractions.

    Water T1/T2 not given per class come from the literature values of the nearest tabulated
    field to ``field_t`` (:func:`water_relaxation_for_field`; ``None``: 3 T)."""
    fractions = _normalised_fractions(tissue_fractions)
    content = {**WATER_CONTENT, **(water_content or {})}
    default_t1, default_t2, _ = water_relaxation_for_field(field_t)
    t2 = {**default_t2, **(water_t2_s or {})}
    t1 = {**default_t1, **(water_t1_s or {})}
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
                                water_echo_time_s: float | None = None,
                                water_repetition_time_s: float | None = None,
                                metabolite_t2_s: dict | float | None = None,
                                metabolite_t1_s: dict | float | None = None,
                                tissue_fractions: dict | None = None,
                                effective_water_concentration_mm: float | None = None,
                                water_content: dict | None = None,
                                water_t2_s: dict | None = None,
                                water_t1_s: dict | None = None,
                                water_protons: int = 2,
                                csf_corrected: bool = False,
                                field_t: float | None = None) -> dict:
    """``{name: (concentration_mm, crlb_mm)}`` for every metabolite and sum.

    ``fit`` is a :class:`SpectralFit` (CRLBs propagated) or a plain ``{name: amplitude}`` (CRLB
    NaN). ``water_signal`` is the water amplitude at t = 0 (see :func:`water_amplitude`).
    ``effective_water_concentration_mm`` (already relaxation-attenuated) overrides the tissue
    computation; otherwise ``tissue_fractions`` (gm/wm/csf, default pure GM/WM 60/40) with the
    water content and relaxation tables (of the field ``field_t`` in tesla, see
    :func:`water_relaxation_for_field`) give it, at the water reference's own echo and
    repetition times (``water_echo_time_s``, ``water_repetition_time_s``; None: the
    metabolite data's). Metabolite T1/T2 may be one value or per name
    (a sum uses the value of its first member present, else the scalar default).
    """
    if water_signal <= 0:
        raise ValueError(f"water_scaled_concentrations: water signal must be positive, "
                         f"got {water_signal}")
    fractions = tissue_fractions or DEFAULT_TISSUE_FRACTIONS
    if effective_water_concentration_mm is None:  # the water relaxes at its own TE and TR
        effective_water_concentration_mm = effective_water_mm(
            echo_time_s if water_echo_time_s is None else water_echo_time_s, fractions,
            repetition_time_s if water_repetition_time_s is None else water_repetition_time_s,
            water_content, water_t2_s, water_t1_s, field_t)
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
        r = relaxation_attenuation(echo_time_s, relaxation_time_for(metabolite_t2_s, name),
                                   repetition_time_s, relaxation_time_for(metabolite_t1_s, name))
        out[name] = (amp * scale / r, crlb * scale / r)
    return out


def _amplitudes_with_crlb(fit) -> dict:
    if isinstance(fit, SpectralFit):
        out = {n: (float(a), float(c)) for n, a, c in zip(fit.names, fit.amplitudes, fit.crlb)}
        out.update({n: (float(v), float(s)) for n, (v, s) in fit.sums.items()})
        return out
    return {n: (tuple(map(float, v)) if np.ndim(v) else (float(v), float("nan")))
            for n, v in dict(fit).items()}


def tallest_singlet_amplitude(fid: np.ndarray) -> float:
    """|FID(0)| of the tallest line of a basis FID, from a Voigt fit of that line alone.

    Works on the bin grid (no dwell time or frequency needed): the line is fitted within
    +-max(8, n/100) bins, always closer than creatine's CH2 (0.9 ppm away: at least n/40 bins
    for spectral widths up to 35 ppm), with a complex linear background. The background
    absorbs what a first-point convention does (a halved or scaled FID[0] adds a constant to
    every bin) and the tails of other lines, so neither changes the answer; other resonances
    of the entry (e.g. creatine's NH at 6.65 ppm in some basis sets) are not counted. Fitted
    at unit peak magnitude (:func:`unit_peak`): basis files carry any overall scale, and fitted
    as stored the ISMRM challenge basis at 1e-12 of its scale gave a creatine scale 9.5 % off.
    """
    fid, unit = unit_peak(fid)
    if unit == 0:
        return 0.0
    n = fid.size
    spectrum = np.fft.fft(fid)
    k0 = int(np.argmax(np.abs(spectrum)))
    half = max(8, n // 100)
    offsets = np.arange(-half, half + 1)
    idx = (k0 + offsets) % n
    k = np.arange(n)
    target = spectrum[idx]
    width_bins = max(1.0, float(np.count_nonzero(np.abs(target) >= np.abs(target).max() / 2)))

    def model(p):
        line = (p[0] + 1j * p[1]) * np.exp(2j * np.pi * (k0 + p[2]) * k / n
                                           - p[3] * k - p[4] * k ** 2)
        background = (p[5] + 1j * p[6]) + (p[7] + 1j * p[8]) * offsets / half
        return np.fft.fft(line)[idx] + background

    def residual(p):
        r = model(p) - target
        return np.concatenate([r.real, r.imag])

    start = complex(spectrum[idx].sum() / n)
    p0 = np.array([start.real, start.imag, 0.0, np.pi * width_bins / n, 0.0, 0, 0, 0, 0])
    lower = [-np.inf, -np.inf, -half / 2, 0.0, 0.0] + [-np.inf] * 4
    fit = least_squares(residual, p0, bounds=(lower, np.inf), x_scale="jac")
    return float(abs(fit.x[0] + 1j * fit.x[1])) * unit


def basis_proton_scale(names, fids) -> float:
    """FID(0) per proton of a 1 mM basis entry, from the creatine (or phosphocreatine) CH3
    singlet: its fitted line amplitude / 3 (:func:`tallest_singlet_amplitude`).

    A basis file may carry any overall scale (LCModel sets often do); amplitudes times this
    scale are on the per-mM, FID[0] = protons scale that water scaling assumes. Measuring the
    CH3 line alone makes the scale independent of the file's conventions: a halved first point
    (Osprey/FID-A sets), extra creatine resonances (NH protons at 6.65 ppm), or a CH2 line
    scaled differently. A simulated basis of this project gives 1 (0.5 for STEAM, whose
    stimulated echo holds half the magnetisation; the water reference, acquired the same way,
    carries the same half).
    """
    for name in ("Cr", "PCr"):
        if name in names:
            value = tallest_singlet_amplitude(fids[list(names).index(name)]) / CREATINE_CH3_PROTONS
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


def relaxation_table_notes(rows: list[dict], metabolite_t2_s, metabolite_t1_s) -> list[str]:
    """Warnings about per-metabolite T2/T1 tables (``[quantification] metabolite_t2_s`` /
    ``metabolite_t1_s``) for the metabolites and sums of ``rows``: keys that name none of them
    (ignored, e.g. ``naa`` for ``NAA``), and every name left without a correction (no entry, no
    ``default``). An empty table is reported by the caller (no correction at all)."""
    from ..metabolites import unmatched_names_note

    names = list(dict.fromkeys(row["metabolite"] for row in rows))
    notes = []
    for key, table, time in (("metabolite_t2_s", metabolite_t2_s, "T2"),
                             ("metabolite_t1_s", metabolite_t1_s, "T1")):
        if not isinstance(table, dict) or not table:
            continue
        unmatched = unmatched_names_note(f"[quantification] {key}", set(table) - {"default"},
                                         names + ["default"], "the fit (metabolites and sums)")
        uncorrected = [n for n in names if relaxation_time_for(table, n) is None]
        notes += [unmatched] if unmatched else []
        if uncorrected:
            notes.append(f"concentrations of {', '.join(uncorrected)} are not corrected for "
                         f"metabolite {time} ([quantification] {key} has no entry for them and "
                         "no default)")
    return notes


def relaxation_time_for(value, name: str):
    """The T2/T1 (s) of ``name`` from one value or a table (name, else a sum's first member
    present, else ``default``); None when the table has none of these: the time its
    concentration is corrected with (the group level states it per row)."""
    if value is None or np.isscalar(value):
        return value
    from .uncertainty import METABOLITE_SUMS

    if name in value:
        return value[name]
    for member in METABOLITE_SUMS.get(name, ()):
        if member in value:
            return value[member]
    return value.get("default")
