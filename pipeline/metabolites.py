"""Metabolite sums and ppm windows: defined here once, for fitting, simulation, QC, the
workflow and the report.

Sums (CONTRIBUTING): tNAA = NAA + NAAG, tCr = Cr + PCr, tCho = GPC + PCh (+ free Cho when a
basis has it; ``PCho`` is another spelling of PCh), Glx = Glu + Gln. A sum adds the members
that are present, so a basis without Cho gives GPC + PCh.
"""

from __future__ import annotations

import difflib

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



def unmatched_names_note(key: str, given, available, what: str = "the basis") -> str:
    """A warning naming ``key`` and the names in ``given`` that are not in ``available`` (the
    names of ``what``; a near spelling suggested, e.g. ``naa`` -> ``NAA``), with the available
    names; '' when all match. Names are matched exactly, as the fit uses them: a near miss would otherwise be
    ignored without a word."""
    available = list(dict.fromkeys(available))
    unmatched = [n for n in dict.fromkeys(given) if n not in available]
    if not unmatched:
        return ""
    hints = [f"{near!r} for {n!r}" for n in unmatched
             for near in [_near_name(n, available)] if near]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    verb = "matches" if len(unmatched) == 1 else "match"
    return (f"{key}: {', '.join(map(repr, unmatched))} {verb} no name in {what}{hint}; "
            f"ignored. Available: {', '.join(available) or '(none)'}")


def _near_name(name: str, available: list) -> str:
    """The available name equal to ``name`` but for case, else the closest spelling, or ''."""
    same = [a for a in available if a.lower() == str(name).lower()]
    close = difflib.get_close_matches(str(name), available, n=1, cutoff=0.75)
    return (same or close or [""])[0]
