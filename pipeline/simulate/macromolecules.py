"""Parametric macromolecule (MM) basis: Gaussian lines at the published MM positions.

Component tables (position ppm, FWHM ppm, amplitude in proton units, i.e. relative to the
3 protons of the creatine CH3 singlet, as LCModel and Osprey scale them):

* ``"lcmodel"`` -- the five LCModel MM components (LCModel manual, section on simulated
  macromolecules ``CHSIMU``; Wilson et al., MRM 2011;65:1-12; also Osprey
  ``mm-definitions/MMLipLCModel.json``): MM09 0.91/0.14/3, MM12 1.21/0.15/2, MM14 1.43/0.17/2,
  MM17 1.67/0.15/2, MM20 = 2.08/0.15/1.33 + 2.25/0.20/0.33 + 1.95/0.15/0.33 + 3.00/0.20/0.40.
* ``"extended"`` (default) -- thirteen single Gaussians spanning 0.9-4.2 ppm, the
  parameterisation of measured metabolite-nulled MM spectra used by Osprey
  (``mm-definitions/MMLipLCModelMRSF.json``). Their positions agree within 0.05 ppm with the
  MM consensus nomenclature (Cudalbu et al., NMR Biomed 2021;34:e4393, Table 1: M0.94, M1.22,
  M1.43, M1.70, M2.05, ..., M3.00 ...). Subset note: the consensus "MM27" has no published
  width/amplitude we could source; the table has MM26 (2.60 ppm) instead, plus MM40 and MM42.

MM T2s are short (tens of ms); with ``echo_time_s`` > 0 each component is weighted by
``exp(-TE / t2_s)`` with one T2 for all (default 25 ms, the order of the values reported by
Murali-Manohar et al., MRM 2020;84:542 at 9.4 T); J-evolution of the MM multiplets is ignored.
"""

from __future__ import annotations

import numpy as np

from ..basis import Basis
from ..spectra import H1_REFERENCE_PPM, time_axis_s

LCMODEL_MM = {
    "MM09": ((0.91, 0.14, 3.0),),
    "MM12": ((1.21, 0.15, 2.0),),
    "MM14": ((1.43, 0.17, 2.0),),
    "MM17": ((1.67, 0.15, 2.0),),
    "MM20": ((2.08, 0.15, 1.33), (2.25, 0.20, 0.33), (1.95, 0.15, 0.33), (3.00, 0.20, 0.40)),
}

EXTENDED_MM = {
    "MM09": ((0.91, 0.14, 3.00),),
    "MM12": ((1.19, 0.08, 1.81),),
    "MM14": ((1.38, 0.12, 2.50),),
    "MM17": ((1.65, 0.20, 2.91),),
    "MM20": ((2.03, 0.15, 4.38),),
    "MM22": ((2.27, 0.14, 2.59),),
    "MM26": ((2.60, 0.22, 1.21),),
    "MM30": ((2.99, 0.12, 1.76),),
    "MM32": ((3.20, 0.10, 0.60),),
    "MM37": ((3.65, 0.12, 0.96),),
    "MM38": ((3.79, 0.09, 1.34),),
    "MM40": ((3.95, 0.14, 1.95),),
    "MM42": ((4.20, 0.15, 0.74),),
}

LIPID_COMPONENTS = {
    "Lip09": ((0.89, 0.14, 3.0),),
    "Lip13": ((1.28, 0.15, 2.0), (1.31, 0.09, 2.0)),
    "Lip20": ((2.04, 0.15, 1.33), (2.25, 0.15, 0.67), (2.80, 0.20, 0.87)),
}
"""Lipid components (ppm, FWHM ppm, protons): methyl 0.9, methylene 1.3, allylic/bis-allylic
2.0-2.8 ppm (the LCModel Lip09/Lip13/Lip20 line positions); for scalp-lipid contamination."""

MM_COMPONENT_SETS = {"lcmodel": LCMODEL_MM, "extended": EXTENDED_MM, "lipids": LIPID_COMPONENTS}
DEFAULT_MM_T2_S = 0.025


def gaussian_line_fid(t_s: np.ndarray, ppm: float, fwhm_ppm: float, amplitude: float,
                      cf_mhz: float, ref_ppm: float = H1_REFERENCE_PPM) -> np.ndarray:
    """FID of one Gaussian line: real spectrum a Gaussian of FWHM ``fwhm_ppm`` at ``ppm``,
    FID[0] = ``amplitude`` (protons)."""
    freq_hz = (ref_ppm - ppm) * cf_mhz
    fwhm_hz = fwhm_ppm * cf_mhz
    return amplitude * np.exp(2j * np.pi * freq_hz * t_s
                              - (np.pi * fwhm_hz * t_s) ** 2 / (4 * np.log(2)))


def _component_table(components) -> dict:
    if components is None:
        return dict(EXTENDED_MM)
    if isinstance(components, str):
        if components not in MM_COMPONENT_SETS:
            raise ValueError(f"unknown MM component set {components!r}; "
                             f"choose from {sorted(MM_COMPONENT_SETS)}")
        return dict(MM_COMPONENT_SETS[components])
    if isinstance(components, dict):
        return {name: tuple(tuple(map(float, p)) for p in peaks)
                for name, peaks in components.items()}
    known = {**LCMODEL_MM, **LIPID_COMPONENTS, **EXTENDED_MM}
    missing = [c for c in components if c not in known]
    if missing:
        raise ValueError(f"unknown MM components {missing}; known: {sorted(known)}")
    return {c: known[c] for c in components}


def parametric_mm_basis(cf_mhz: float, dwell_s: float, n_points: int, components=None,
                        echo_time_s: float = 0.0, t2_s: float = DEFAULT_MM_T2_S,
                        include_combined: bool = False,
                        ref_ppm: float = H1_REFERENCE_PPM) -> Basis:
    """One basis entry per MM component (Gaussian lines), optionally plus their sum "MM".

    ``components``: ``None`` (the ``"extended"`` set), a set name (``"lcmodel"``,
    ``"extended"``, ``"lipids"``), a list of component names, or a dict ``name -> [(ppm, fwhm_ppm, amp)]``.
    Scale: FID[0] = amplitude in protons (1 mM convention of ``Basis``), times
    ``exp(-echo_time_s / t2_s)``.
    """
    if cf_mhz <= 0 or dwell_s <= 0 or n_points <= 0:
        raise ValueError(f"parametric_mm_basis: cf_mhz, dwell_s, n_points must be positive "
                         f"(got {cf_mhz}, {dwell_s}, {n_points})")
    table = _component_table(components)
    t = time_axis_s(n_points, dwell_s)
    weight = float(np.exp(-echo_time_s / t2_s)) if echo_time_s > 0 else 1.0
    names = list(table)
    fids = [weight * sum(gaussian_line_fid(t, ppm, fwhm, amp, cf_mhz, ref_ppm)
                         for ppm, fwhm, amp in table[name]) for name in names]
    if include_combined:
        if "MM" in names:
            raise ValueError("a component may not be named 'MM' when include_combined=True")
        names.append("MM")
        fids.append(np.sum(fids, axis=0))
    prov = {"source": "parametric macromolecules (pipeline.simulate.macromolecules)",
            "components": {n: [list(p) for p in table[n]] for n in table},
            "component_columns": ["ppm", "fwhm_ppm", "amplitude_protons"],
            "echo_time_s": echo_time_s, "t2_s": t2_s, "t2_weight": weight,
            "scale": "FID[0] = amplitude in protons (creatine CH3 = 3)"}
    return Basis(names, np.array(fids), dwell_s, cf_mhz, ref_ppm, provenance=prov)


def with_lipids(basis: Basis) -> Basis:
    """``basis`` plus the parametric lipid components (``LIPID_COMPONENTS``) on its own grid:
    what ``[macromolecules] lipids = true`` adds to every fitted basis."""
    return basis.with_entries(parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                                                  components=LIPID_COMPONENTS))
