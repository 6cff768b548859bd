"""Is a water reference really unsuppressed water? (issue 17 item 4)

An unsuppressed water reference has a water line thousands of times taller than any metabolite
line; a water-suppressed metabolite acquisition (given by mistake, e.g. ``ReferenceSignal``
pointing at the svs file itself) has a residual water line of the order of the metabolites.
The ratio of the tallest magnitude point in the water window to the tallest in the metabolite
window separates the two by orders of magnitude. Magnitude spectra of each transient are
averaged, so frequency drift and phase never hide the water line.
"""

from __future__ import annotations

import numpy as np

from ..spectra import fid_to_spectrum, ppm_axis

WATER_WINDOW_PPM = (4.2, 5.2)
METABOLITE_WINDOW_PPM = (1.8, 3.4)
MIN_WATER_DOMINANCE = 3.0
"""Smallest water/metabolite peak ratio accepted for a water reference."""
MIN_DOMINANCE_OVER_DATA = 4.0
"""The reference's ratio must also be this many times the metabolite data's own ratio: water
suppression lowers the water line by orders of magnitude, so a reference that is no more
water-dominated than the data is not unsuppressed (the demo's simulated references give 33-45
against 0.9-1.4 for their metabolite data; the same file gives 1)."""
MIN_WATER_HEIGHT_OVER_DATA = 10.0
"""Or: the reference's water line (per transient) is this many times taller than the data's
residual water line. Real data with a large residual water line put its tail into the
metabolite window, so the ratios alone can be close (Osprey's Philips PRESS example: 41 for the
reference against 25 for the data) while the water lines differ 36-fold; a suppressed file
given as the reference has a water line of the data's height (ratio ~1)."""
MAX_SUPPRESSED_HEIGHT_OVER_DATA = 2.0
CLEAR_WATER_DOMINANCE = 25.0
"""A reference whose water line is at most :data:`MAX_SUPPRESSED_HEIGHT_OVER_DATA` times the
data's residual water line, and whose own water/metabolite ratio is below
:data:`CLEAR_WATER_DOMINANCE`, is water-suppressed: the metabolite-nulled macromolecule scan of
Osprey's Philips example dominates its small lines 15.3 times (the data: 3.3), enough for the
ratio test, but its water line is 0.68 times the data's, where the real reference's is 318
times (given as ``ReferenceSignal`` by mistake it made tCr 3103 mM). Heights alone do not
decide: they depend on export scaling, coil combination and summed transients (one Osprey
protocol's references span 0.12 to 1375), while real references dominate 40-66 times in all
11 real files and the MM scans 6.8 and 15.3. A measured macromolecule spectrum whose water line
is at least :data:`MIN_WATER_HEIGHT_OVER_DATA` times the data's and that dominates at least
:data:`CLEAR_WATER_DOMINANCE` times looks like unsuppressed water."""


def looks_like_unsuppressed_water(dominance: float, height_over_data: float) -> bool:
    """Both signs of an unsuppressed water scan: its water line dominates its spectrum
    clearly and is far taller than the data's residual water (for a measured MM spectrum
    named by mistake)."""
    return (dominance >= CLEAR_WATER_DOMINANCE
            and height_over_data >= MIN_WATER_HEIGHT_OVER_DATA)


def _mean_magnitude(fids: np.ndarray, dwell_s: float, cf_mhz: float, ref_ppm: float):
    """(ppm axis, mean magnitude spectrum over every transient)."""
    fids = np.asarray(fids)
    n_points = fids.shape[-1]
    magnitude = np.mean(np.abs(fid_to_spectrum(fids.reshape(-1, n_points))), axis=0)
    return ppm_axis(n_points, dwell_s, cf_mhz, ref_ppm), magnitude


def _window_peak(ppm, magnitude, window_ppm) -> float | None:
    """Tallest point of ``magnitude`` within ``window_ppm`` (None when no point falls in it)."""
    inside = magnitude[(ppm >= window_ppm[0]) & (ppm <= window_ppm[1])]
    return float(inside.max()) if inside.size else None


def water_peaks(fids: np.ndarray, dwell_s: float, cf_mhz: float, ref_ppm: float = 4.65
                ) -> tuple[float, float]:
    """(:func:`water_height`, :func:`water_dominance`) from one mean magnitude spectrum (the
    transients Fourier-transformed once); ValueError as :func:`water_dominance`."""
    ppm, magnitude = _mean_magnitude(fids, dwell_s, cf_mhz, ref_ppm)
    water = _window_peak(ppm, magnitude, WATER_WINDOW_PPM)
    metabolites = _window_peak(ppm, magnitude, METABOLITE_WINDOW_PPM)
    if water is None or metabolites is None:
        raise ValueError(f"spectral width {1 / dwell_s:g} Hz at {cf_mhz:g} MHz does not cover "
                         f"both {WATER_WINDOW_PPM} and {METABOLITE_WINDOW_PPM} ppm")
    return water, water / max(metabolites, np.finfo(float).tiny)


def water_height(fids: np.ndarray, dwell_s: float, cf_mhz: float, ref_ppm: float = 4.65
                 ) -> float:
    """Tallest point of the mean magnitude spectrum in 4.2-5.2 ppm (per transient)."""
    ppm, magnitude = _mean_magnitude(fids, dwell_s, cf_mhz, ref_ppm)
    water = _window_peak(ppm, magnitude, WATER_WINDOW_PPM)
    return float("nan") if water is None else water


def water_dominance(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                    ref_ppm: float = 4.65) -> float:
    """Tallest point of the mean magnitude spectrum in 4.2-5.2 ppm over the tallest in
    1.8-3.4 ppm (``fids``: any shape, points last). For unsuppressed water the magnitude tail
    of the water line (falling as 1/offset) bounds the ratio to about offset / half-width,
    i.e. ~40-80 at 3 T; water-suppressed data give ~0.1-10."""
    return water_peaks(fids, dwell_s, cf_mhz, ref_ppm)[1]


def water_reference_problem(reference_dominance: float, data_dominance: float,
                            height_over_data: float | None = None) -> str | None:
    """Why a reference whose :func:`water_dominance` is ``reference_dominance`` cannot be the
    unsuppressed water reference of data whose own ratio is ``data_dominance``, or None.
    ``height_over_data``: the reference's :func:`water_height` over the data's (accepted when
    at least :data:`MIN_WATER_HEIGHT_OVER_DATA`; refused at most
    :data:`MAX_SUPPRESSED_HEIGHT_OVER_DATA` unless the reference dominates its own spectrum
    :data:`CLEAR_WATER_DOMINANCE` times)."""
    if (height_over_data is not None and height_over_data <= MAX_SUPPRESSED_HEIGHT_OVER_DATA
            and reference_dominance < CLEAR_WATER_DOMINANCE):
        return (f"its water line is only {height_over_data:.3g} times the data's residual water "
                "line (an unsuppressed water reference's is tens to thousands of times taller; "
                f"more than {MAX_SUPPRESSED_HEIGHT_OVER_DATA:g} is required unless its water line "
                f"dominates its spectrum {CLEAR_WATER_DOMINANCE:g} times; here "
                f"{reference_dominance:.3g}): a water-suppressed acquisition such as the "
                "metabolite-nulled macromolecule scan; it looks "
                "water-suppressed")
    if reference_dominance >= max(MIN_WATER_DOMINANCE,
                                  MIN_DOMINANCE_OVER_DATA * data_dominance):
        return None
    if height_over_data is not None and height_over_data >= MIN_WATER_HEIGHT_OVER_DATA:
        return None
    return (f"its water peak is {reference_dominance:.3g} times its tallest peak in "
            f"{METABOLITE_WINDOW_PPM[0]}-{METABOLITE_WINDOW_PPM[1]} ppm, against "
            f"{data_dominance:.3g} in the metabolite data (an unsuppressed water reference "
            f"gives at least {MIN_WATER_DOMINANCE:g} and {MIN_DOMINANCE_OVER_DATA:g} times the "
            "data's ratio)"
            + ("" if height_over_data is None else
               f", and its water line is only {height_over_data:.3g} times the data's (at least "
               f"{MIN_WATER_HEIGHT_OVER_DATA:g} for unsuppressed water)")
            + "; it looks water-suppressed")
