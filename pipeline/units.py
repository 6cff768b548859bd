"""Explicit unit conversions for b-values and diffusivities.

Files, acquisitions and output tables carry b in s/mm^2. Diffusion-model functions take b in
ms/um^2 and return diffusivities in um^2/ms, so that ``b * D`` is dimensionless without factors.
1 ms/um^2 = 1000 s/mm^2.
"""

from __future__ import annotations

import numpy as np

from .unit_names import B_VALUE_UNITS  # noqa: F401  (re-exported for the pipeline's users)

S_MM2_PER_MS_UM2 = 1000.0
GYROMAGNETIC_1H_MHZ_PER_T = 42.577478
"""Proton gyromagnetic ratio / 2 pi (MHz/T): field strength = centre frequency / this."""


def field_strength_t(cf_mhz: float) -> float:
    """Magnetic field strength (T) of a proton centre frequency (MHz)."""
    return float(cf_mhz) / GYROMAGNETIC_1H_MHZ_PER_T


NOMINAL_FIELDS_T = (1.5, 3.0, 4.0, 4.7, 7.0, 9.4, 10.5, 11.7, 14.1, 15.2, 17.2)
"""Nominal field strengths of MR systems (T): scanners are named by these, while their true
field differs (a Siemens "3 T" runs at 2.89 T, 123.2 MHz)."""
NOMINAL_FIELD_TOLERANCE = 0.05


def nominal_field_t(field_t: float) -> float:
    """The nominal field (:data:`NOMINAL_FIELDS_T`) within 5 % of ``field_t``, else the field
    to 0.1 T: 2.89 T (123.2 MHz) and 3.0 T (127.7 MHz) are both "3 T" systems."""
    nearest = min(NOMINAL_FIELDS_T, key=lambda f: abs(f - field_t))
    if abs(field_t - nearest) <= NOMINAL_FIELD_TOLERANCE * nearest:
        return nearest
    return round(float(field_t), 1)


def b_s_mm2_to_ms_um2(b_s_mm2):
    """Convert b-values from s/mm^2 to ms/um^2."""
    return np.asarray(b_s_mm2, dtype=float) / S_MM2_PER_MS_UM2


def b_ms_um2_to_s_mm2(b_ms_um2):
    """Convert b-values from ms/um^2 to s/mm^2."""
    return np.asarray(b_ms_um2, dtype=float) * S_MM2_PER_MS_UM2


def guess_b_value_units(b_values) -> str:
    """Unit of an unlabelled b-value list: all b <= 100 means ms/um^2, otherwise s/mm^2.

    Used only when neither header nor sidecar states the unit; callers must log a warning.
    Returns ``"ms/um2"`` or ``"s/mm2"``.
    """
    b = np.asarray(b_values, dtype=float)
    return "ms/um2" if b.size and np.nanmax(np.abs(b)) <= 100 else "s/mm2"


def to_s_mm2(b_values, unit: str) -> np.ndarray:
    """b-values in s/mm^2 from values in ``unit`` (``s/mm2`` or ``ms/um2``)."""
    if unit in ("s/mm2", "s/mm^2", "s mm-2"):
        return np.asarray(b_values, dtype=float)
    if unit in ("ms/um2", "ms/um^2", "ms/µm2", "ms/µm^2", "ms um-2"):
        return b_ms_um2_to_s_mm2(b_values)
    raise ValueError(f"unknown b-value unit {unit!r}: expected 's/mm2' or 'ms/um2'")
