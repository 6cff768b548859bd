"""Pairing the water reference with the metabolite data: which water condition corrects which
data condition (b-value and gradient direction), and whether the water was stored in the data's
sign convention (the eddy-current test). Split from :mod:`pipeline.preprocess.steps`."""

from __future__ import annotations

import numpy as np

from ..acquisition import Acquisition
from ..spectra import fid_to_spectrum, ppm_axis
from .average import acquired_mean
from .eddy import eddy_current_correct, water_snr


WATER_ORIENTATION_MARGIN = 0.1
"""Mean log ratio of singlet heights (1.8-3.4 ppm) beyond which the eddy-current test calls the
water reference mirrored: where the wrong sign costs the singlets about 10 % of their height.
Measured (2026-12-07): the in-vivo 7 T DW-STEAM set +0.222 as stored over its nine
diffusion-weighted conditions (-0.02 to +0.40 each; its b = 0 condition +0.04) and -0.222 with
its water conjugated; single spectra score near 0 either way (Siemens 7 T STEAM +0.065 /
-0.060 conjugated, Osprey Philips -0.09 to +0.09, spant Philips -0.037): too close to tell, so
they are not judged (:data:`ORIENTATION_MIN_B_S_MM2`)."""

ORIENTATION_MIN_B_S_MM2 = 100.0
"""Only conditions at or above this b-value (s/mm^2), corrected with a water condition at or
above it too, are judged: the test needs the eddy currents of diffusion gradients in both.
Without them the water's own lineshape phase decides it: Osprey Philips sub-01 (b = 0 only,
converted with spec2nii) scored -0.090 as stored, +0.090 with its water conjugated, and with
its FID one point late -0.137, which conjugated the right water and took 18-30 % off every
concentration (2026-12-07); relabelled b = 1000 with its b = 0 water, the same (review). The
eddy-current correction with the stored water there broadens tNAA from 7.5 to 8.6 Hz, with the
conjugate to 7.4 Hz, so no singlet height tells the sign. The in-vivo 7 T set with only its
b = 0 water: +0.028 / -0.028, not judged now."""


def water_orientation_score(fids: np.ndarray, water_fids: np.ndarray, water_b,
                            acq: Acquisition, water_directions=None) -> float | None:
    """Whether the water reference has the metabolite data's sign convention: the mean over
    the diffusion-weighted conditions paired with diffusion-weighted water (both b >=
    :data:`ORIENTATION_MIN_B_S_MM2`; None, not judged, when there are none) of log(height
    with the water as stored / height with its complex conjugate), where height is the
    tallest magnitude point over 1.8-3.4 ppm (NAA, Cr, Cho) of the condition's average after
    eddy-current correction with that water (as ``eddy_step`` pairs them). Correction with the
    right sign removes the eddy currents' phase and sharpens the singlets; with the wrong sign
    it doubles it. Positive: same convention; negative: mirrored; near 0 the data's eddy
    currents are too small to tell."""
    ppm = ppm_axis(fids.shape[-1], acq.dwell_s, acq.cf_mhz, acq.ref_ppm)
    singlets = (ppm > 1.8) & (ppm < 3.4)
    water_b = np.asarray(water_b, dtype=float)

    def height(fid):
        return float(np.max(np.abs(fid_to_spectrum(fid)[singlets]))) or np.finfo(float).tiny

    weighted = [c for c in range(fids.shape[0])
                if _diffusion_weighted_pair(water_b, c, acq, water_directions)]
    if not weighted:
        return None
    lowest = acquired_mean(water_fids[int(np.argmin(water_b))])
    ratios = []
    for c in weighted:
        average = acquired_mean(fids[c])
        reference = select_water_reference(water_fids, water_b, c, acq.b_values_s_mm2[c],
                                           0.0, [], "", water_directions, acq.directions[c])
        stored = eddy_current_correct(average, reference, acq.dwell_s, reference_fid=lowest)
        mirrored = eddy_current_correct(average, np.conj(reference), acq.dwell_s,
                                        reference_fid=np.conj(lowest))
        ratios.append(np.log(height(stored.corrected) / height(mirrored.corrected)))
    return float(np.mean(ratios))


def _diffusion_weighted_pair(water_b, c: int, acq: Acquisition, water_directions) -> bool:
    """Whether data condition ``c`` and the water condition matched to it
    (:func:`matching_water_condition`) are both at b >= :data:`ORIENTATION_MIN_B_S_MM2`."""
    b_c = float(acq.b_values_s_mm2[c])
    if not b_c >= ORIENTATION_MIN_B_S_MM2:
        return False
    matched = matching_water_condition(water_b, c, b_c, water_directions, acq.directions[c])
    return matched is not None and float(water_b[matched]) >= ORIENTATION_MIN_B_S_MM2


# --- eddy-current correction -----------------------------------------------------------------

def same_b_value(a, b):
    """Whether b-values (s/mm^2) match for pairing water with data: within 5 % or 20 s/mm^2."""
    return np.isclose(a, b, rtol=0.05, atol=20)


def same_direction(u, v) -> bool:
    """Whether two gradient directions pair water with data: the same unit vector (cosine
    above 0.99; polarity counts, as eddy currents follow the gradient's sign), or either one
    unknown (NaN, or no direction given), when b alone decides."""
    if u is None or v is None:
        return True
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v))):
        return True
    norms = float(np.linalg.norm(u) * np.linalg.norm(v))
    return norms > 0 and float(u @ v) / norms > 0.99


def matching_water_condition(water_b, c: int, b_c: float, water_directions=None,
                             direction=None) -> int | None:
    """Index of the water condition recorded at data condition ``c``'s b-value and gradient
    direction (:func:`same_b_value`, :func:`same_direction`): ``c`` itself when it matches,
    else the first that does (a water series stored in another order, or with its directions
    in another order within a shell); None when none does."""
    water_b = np.atleast_1d(np.asarray(water_b, dtype=float))
    dirs = [None] * water_b.size if water_directions is None else list(water_directions)
    found = [w for w in range(water_b.size)
             if same_b_value(water_b[w], b_c) and same_direction(dirs[w], direction)]
    return c if c in found else (found[0] if found else None)


def select_water_reference(water_fids: np.ndarray, water_b, c: int, b_c: float,
                           min_water_snr: float, flags: list, label: str,
                           water_directions=None, direction=None) -> np.ndarray:
    """Averaged water FID for ECC of condition ``c``: the matched one, else the lowest b.

    The matched reference (same b within 5 % and, where both state one, the same gradient
    direction: :func:`matching_water_condition`) is used when its SNR reaches
    ``min_water_snr``; otherwise the lowest-b reference is used and a warning is appended to
    ``flags``.
    """
    n_water = water_fids.shape[0]
    lowest = int(np.argmin(water_b))
    matched = matching_water_condition(water_b, c, b_c, water_directions, direction)
    if matched is not None:
        candidate = acquired_mean(water_fids[matched])
        if water_snr(candidate) >= min_water_snr:
            return candidate
        flags.append(f"ECC: {label}: water reference SNR {water_snr(candidate):.1f} below "
                     f"{min_water_snr:g} even before denoising; used the lowest-b reference")
    elif n_water > 1:
        flags.append(f"ECC: {label}: no condition-matched water reference; used the lowest-b one")
    return acquired_mean(water_fids[lowest])


def single_water_flags(water_b, b_values_s_mm2) -> list[str]:
    """The warning for a series whose water reference has one condition: the other
    conditions' eddy currents (which grow with the diffusion gradients) are then corrected
    with that water's, not their own."""
    water_b = np.atleast_1d(np.asarray(water_b, dtype=float))
    b = np.asarray(b_values_s_mm2, dtype=float)
    others = int(np.count_nonzero(~same_b_value(b, water_b[0])))
    if water_b.size != 1 or not others:
        return []
    return [f"ECC: the water reference has one condition (b = {water_b[0]:g} s/mm^2): the "
            f"{others} condition(s) at other b-values are corrected with it, so their own "
            "eddy currents are not removed (acquire a water reference per condition to "
            "remove them)"]
