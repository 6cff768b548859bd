"""FIDs that start whole sampling points late or early, found from the first-order phase of a
series' condition fits and undone before the conditions are fitted again.

A FID whose first point was lost (an export's other first-point convention) is the true FID
one dwell later: its spectrum carries a first-order phase of one point,
``-360 * dwell * cf`` degrees per ppm (35.8 deg/ppm at 7 T and 3 kHz). Each condition's fit
follows such a phase, but the joint fit of a series lands on a wrong one (published 7 T
set one point late: b = 0 Ins/tCr -5.7 %, MM decay error 0.005 -> 0.018; two points: at the
phase's search limit, tCho/tCr -30 %; exit 0). Moving the FIDs back by the whole points
restores the data but for the lost points, which are set to 0: a constant over the spectrum,
which the baseline takes.
"""

from __future__ import annotations

import numpy as np

MIN_DELAY_POINTS = 0.75
"""Smallest median delay (in sampling points) acted on: the real spectra measured here fit
within 0.42 points on 7 T grids (35.8-37 deg/ppm a point) and within 1.1 points on 3 T grids
of 4 kHz (11.1 deg/ppm a point, single spectra with a first-order phase the baseline trades)."""
WHOLE_POINT_TOLERANCE = 0.25
"""A median delay further than this from a whole number of points is not a lost point."""
MAX_DELAY_POINTS = 8
"""Most points moved in all (each move is followed by a refit of every condition). Moves that
never take the fits off the search limit are undone (not a delay: e.g. data the basis does
not describe), and a move back to a delay already tried ends the search."""
MIN_CONDITIONS = 3
"""The median needs this many conditions; one spectrum's first-order phase is not reliable
enough (ISMRM challenge spectra, single fits: up to 1.1 points on their 4 kHz grid)."""


def one_point_phase1_deg_per_ppm(dwell_s: float, cf_mhz: float) -> float:
    """First-order phase (deg/ppm, the fits' ``phase1_deg_per_ppm``) of a FID one point late."""
    return -360.0 * dwell_s * cf_mhz


def whole_point_delay(phase1_deg_per_ppm, dwell_s: float, cf_mhz: float,
                      limit_deg_per_ppm: float = np.inf) -> int:
    """Whole points by which a series' FIDs start late (> 0) or early (< 0), from the median
    first-order phase of its conditions' fits; 0 unless the median is at least
    ``MIN_DELAY_POINTS`` and within ``WHOLE_POINT_TOLERANCE`` of a whole number of points,
    from at least ``MIN_CONDITIONS`` fits. A median at the search limit
    (``limit_deg_per_ppm``, within 5 %; of any number of fits, one spectrum too: the fit
    failed there) measures only a lower bound: the whole points below it (at least 1), so
    that a caller moving the FIDs by them and fitting again can measure the rest."""
    phases = np.asarray(phase1_deg_per_ppm, dtype=float)
    median = float(np.median(phases))
    delay = median / one_point_phase1_deg_per_ppm(dwell_s, cf_mhz)
    if at_phase1_limit(phases, limit_deg_per_ppm) and abs(delay) >= MIN_DELAY_POINTS:
        return int(np.sign(delay)) * max(1, int(abs(delay)))
    points = int(round(delay))
    if (phases.size < MIN_CONDITIONS or abs(delay) < MIN_DELAY_POINTS
            or abs(delay - points) > WHOLE_POINT_TOLERANCE):
        return 0
    return points


def at_phase1_limit(phase1_deg_per_ppm, limit_deg_per_ppm: float) -> bool:
    """Whether the median first-order phase of the fits is at the search limit (within 5 %)."""
    return abs(float(np.median(phase1_deg_per_ppm))) >= 0.95 * limit_deg_per_ppm


def phase1_limit_deg_per_ppm(upper_phi1_s: float, cf_mhz: float) -> float:
    """The fits' first-order phase search limit in deg/ppm, from its bound in seconds (the
    model's ``phi1``: a time shift)."""
    return 360.0 * abs(upper_phi1_s) * cf_mhz


def started_on_time(fids: np.ndarray, delay_points: int) -> np.ndarray:
    """``fids`` (..., n_points) moved ``delay_points`` later (> 0: the lost first points become
    0) or earlier (< 0: the extra leading points are dropped, zeros at the end)."""
    out = np.zeros_like(fids)
    n = delay_points
    if n > 0:
        out[..., n:] = fids[..., :-n]
    elif n < 0:
        out[..., :n] = fids[..., -n:]
    else:
        out[...] = fids
    return out


def on_input_grid(fid: np.ndarray, delay_points: int) -> np.ndarray:
    """A model FID fitted after :func:`started_on_time` back on the input's time grid: moved
    circularly, which turns its spectrum by exactly the first-order phase of the move (a
    model confined to the fit window has signal at both ends of its FID, which a cut would
    lose)."""
    return np.roll(fid, -delay_points, axis=-1)
