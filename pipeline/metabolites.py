"""Metabolite sums and ppm windows: defined here once, for fitting, simulation, QC, the
workflow and the report.

Sums (CONTRIBUTING): tNAA = NAA + NAAG, tCr = Cr + PCr, tCho = GPC + PCh (+ free Cho when a
basis has it; ``PCho`` is another spelling of PCh), Glx = Glu + Gln. A sum adds the members
that are present, so a basis without Cho gives GPC + PCh.
"""

from __future__ import annotations

METABOLITE_SUMS = {
    "tNAA": ("NAA", "NAAG"),
    "tCr": ("Cr", "PCr"),
    "tCho": ("GPC", "PCh", "PCho", "Cho"),
    "Glx": ("Glu", "Gln"),
}
SUM_NAMES = tuple(METABOLITE_SUMS)

INOSITOL_NAMES = ("Ins", "mI")
"""Spellings of myo-inositol in bases (drawn as one trace in the fit figure)."""

FIT_WINDOW_PPM = (0.2, 4.0)
"""Default linear-combination fit window ([fitting] ppm_range). It ends at 4.0 ppm, as
LCModel's does, because residual water is removed down to 4.0 ppm
(``pipeline.preprocess.water.RESIDUAL_WATER_WINDOW_PPM``; issue 13, challenge dataset 24)."""

PEAK_WINDOWS_PPM = {
    "tNAA": (1.9, 2.1),
    "tCr": (2.9, 3.1),
    "tCho": (3.15, 3.28),
    "water": (4.2, 5.1),
}
"""Windows of the main singlets (and water) for SNR and linewidth ([qc] defaults)."""


def sum_members(name: str) -> tuple[str, ...]:
    """Members of a sum (empty for a single metabolite)."""
    return METABOLITE_SUMS.get(name, ())

SINGLET_PPM = {"tNAA": 2.008, "tCr": 3.027, "tCho": 3.185}
"""Positions of the strong singlets (NAA CH3, Cr CH3, Cho N(CH3)3; Govindaraju 2000) that
orientation checks and singlet referencing look for."""

