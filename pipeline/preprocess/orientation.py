"""Detect frequency-mirrored (complex-conjugated) spectra before anything is fitted.

A converter that stores the complex conjugate of the FID (e.g. ``spec2nii raw`` on an LCModel
``.RAW``) mirrors the spectrum about the receiver frequency: NAA lands near 7.3 ppm and the fit
then fails silently. The evidence used here is the pattern of the three brain singlets, NAA
2.008, tCr 3.027 and tCho 3.185 ppm: the spacings 1.019 and 0.158 ppm are asymmetric, so the
pattern is found in one orientation only, whatever the receiver offset. Each orientation is
scored by the geometric mean (in noise units) of the sharp-peak heights at the three positions,
searched over a common shift; the verdict compares the two scores.

Policy (documented in the README): a clearly mirrored spectrum is corrected (conjugated) and a
warning is returned for the QC report; an undetermined orientation is left as it is, with a
warning. Water is not used: it sits at the receiver frequency in both orientations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.metabolites import SINGLET_PPM as SINGLETS_PPM
from pipeline.spectra import (fid_to_spectrum, magnitude_minus_running_median, ppm_axis,
                              time_axis_s)

MAX_SHIFT_PPM = 0.4
"""Largest frequency offset searched (ppm), far above scanner referencing errors."""
MIN_SCORE = 3.0
"""Singlet score (noise units) below which no orientation is claimed."""
MARGIN = 2.0
"""One orientation must score this many times the other for a verdict."""
BACKGROUND_WIDTH_PPM = 0.25
"""Running-median width removing broad signal (baseline, MM, lipids) before scoring."""
APODISATION_HZ = 2.0
NO_NOISE_REASON = ("no measurable noise level: most of the spectrum is smooth, so peak "
                   "heights have no noise unit")


@dataclass
class OrientationVerdict:
    """``verdict``: ``as_is``, ``mirrored`` or ``undetermined``; scores in noise units; the
    shift (ppm) at which each orientation matched the singlet pattern; ``peaks`` the height of
    each singlet (noise units) in each orientation."""

    verdict: str
    score_as_is: float
    score_mirrored: float
    shift_as_is_ppm: float
    shift_mirrored_ppm: float
    peaks: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def warning(self) -> str:
        """QC warning text ('' when the data are as expected)."""
        if self.verdict == "mirrored":
            return (f"spectrum is frequency-mirrored (complex conjugate; singlet score "
                    f"{self.score_mirrored:.1f} mirrored vs {self.score_as_is:.1f} as stored): "
                    f"conjugated before fitting")
        if self.verdict == "undetermined":
            why = self.reason or (f"singlet score {self.score_as_is:.1f} as stored vs "
                                  f"{self.score_mirrored:.1f} mirrored")
            return f"spectrum orientation undetermined ({why}): fitted as stored"
        return ""

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "score_as_is": self.score_as_is,
                "score_mirrored": self.score_mirrored, "shift_as_is_ppm": self.shift_as_is_ppm,
                "shift_mirrored_ppm": self.shift_mirrored_ppm, "peaks": self.peaks,
                "reason": self.reason, "warning": self.warning}


def sharp_peak_profile(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                       ref_ppm: float = 4.65) -> tuple[np.ndarray, np.ndarray]:
    """(ppm, magnitude spectrum minus its running median, in noise SD units).

    The magnitude ignores phase; the running median removes baseline, MM and lipid humps so
    that only narrow peaks remain; the noise SD is a robust (MAD) estimate over the spectrum.
    When that estimate is zero (more than half of the bins equal their running median
    exactly, as in smooth, noise-free or scanner-filtered spectra such as Siemens SVS_XA60)
    the heights have no noise unit: the profile is all zeros, so no orientation is claimed
    (dividing by a tiny floor gave scores of 1e+304 and a verdict from nothing).
    """
    fid = np.asarray(fid, dtype=complex)
    apodised = fid * np.exp(-np.pi * APODISATION_HZ * time_axis_s(fid.size, dwell_s))
    magnitude = np.abs(fid_to_spectrum(apodised))
    ppm = ppm_axis(fid.size, dwell_s, cf_mhz, ref_ppm)
    bin_ppm = abs(float(ppm[1] - ppm[0]))
    width = max(3, int(round(BACKGROUND_WIDTH_PPM / bin_ppm)) | 1)
    sharp = magnitude_minus_running_median(magnitude, width)
    noise = 1.4826 * np.median(np.abs(sharp - np.median(sharp)))
    if not (np.isfinite(noise) and noise > 0):
        return ppm, np.zeros_like(sharp)
    return ppm, sharp / noise


def singlet_pattern_score(fid: np.ndarray, dwell_s: float, cf_mhz: float,
                          ref_ppm: float = 4.65,
                          max_shift_ppm: float = MAX_SHIFT_PPM) -> tuple[float, float, dict]:
    """(score, shift_ppm, peak heights) of the best match of the singlet pattern.

    The score at one shift is the geometric mean of the (positive part of the) sharp-peak
    heights at the three singlet positions, each the local maximum within one bin, so a
    match needs all three peaks.
    """
    return profile_pattern_score(*sharp_peak_profile(fid, dwell_s, cf_mhz, ref_ppm),
                                 max_shift_ppm)


def profile_pattern_score(ppm: np.ndarray, sharp: np.ndarray,
                          max_shift_ppm: float = MAX_SHIFT_PPM) -> tuple[float, float, dict]:
    """:func:`singlet_pattern_score` of a computed :func:`sharp_peak_profile`."""
    ppm, local = sorted_local_maxima(ppm, sharp)
    shifts, scores, heights = pattern_scores(ppm, local, max_shift_ppm)
    best = int(np.argmax(scores))
    peaks = {name: float(h) for name, h in zip(SINGLETS_PPM, heights[:, best])}
    return float(scores[best]), float(shifts[best]), peaks


def sorted_local_maxima(ppm: np.ndarray, sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ascending ppm, the positive part of ``sharp`` as the maximum over each bin and its
    neighbours): a singlet between bins is found at either."""
    order = np.argsort(ppm)
    ppm, sharp = ppm[order], np.maximum(sharp[order], 0.0)
    return ppm, np.maximum(sharp, np.maximum(np.roll(sharp, 1), np.roll(sharp, -1)))


def pattern_scores(ppm: np.ndarray, local: np.ndarray, max_shift_ppm: float,
                   axis_scale: float = 1.0, centre_ppm: float = 4.65
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shifts in ppm, score at each shift, singlet heights (3, n_shifts)) of the singlet
    pattern placed at ``centre_ppm + (ppm - centre_ppm) * axis_scale + shift`` on a
    :func:`sorted_local_maxima` profile: the geometric mean of the three heights, so a match
    needs all three peaks. ``axis_scale`` 1 is the header's frequency axis."""
    bin_ppm = float(ppm[1] - ppm[0])
    shifts = np.arange(-max_shift_ppm, max_shift_ppm + bin_ppm / 2, bin_ppm)
    positions = (centre_ppm + (np.array(list(SINGLETS_PPM.values())) - centre_ppm) * axis_scale)
    heights = np.interp(positions[:, None] + shifts[None, :], ppm, local, left=0.0, right=0.0)
    scores = np.exp(np.mean(np.log(np.maximum(heights, 1e-12)), axis=0))
    return shifts, scores, heights


def detect_mirrored(fid: np.ndarray, dwell_s: float, cf_mhz: float, ref_ppm: float = 4.65,
                    margin: float = MARGIN, min_score: float = MIN_SCORE) -> OrientationVerdict:
    """Whether ``fid`` (one FID, or a stack averaged over its leading axes) is mirrored.

    Pure: scores the singlet pattern in the FID as stored and in its complex conjugate; no
    verdict when the spectrum has no measurable noise level (:func:`sharp_peak_profile`).
    """
    fid = np.asarray(fid, dtype=complex)
    mean_fid = fid.reshape(-1, fid.shape[-1]).mean(axis=0)
    profile = sharp_peak_profile(mean_fid, dwell_s, cf_mhz, ref_ppm)
    if not np.any(profile[1]):
        return OrientationVerdict("undetermined", 0.0, 0.0, 0.0, 0.0, reason=NO_NOISE_REASON)
    as_is = profile_pattern_score(*profile)
    mirrored = singlet_pattern_score(np.conj(mean_fid), dwell_s, cf_mhz, ref_ppm)
    if mirrored[0] >= min_score and mirrored[0] > margin * as_is[0]:
        verdict = "mirrored"
    elif as_is[0] >= min_score and as_is[0] > margin * mirrored[0]:
        verdict = "as_is"
    else:
        verdict = "undetermined"
    return OrientationVerdict(verdict, as_is[0], mirrored[0], as_is[1], mirrored[1],
                              {"as_is": as_is[2], "mirrored": mirrored[2]})


def apply_mirror_policy(fids: np.ndarray, dwell_s: float, cf_mhz: float, ref_ppm: float = 4.65,
                policy: str = "fix", water_fids: np.ndarray | None = None):
    """Apply the mirror policy: returns ``(fids, water_fids, verdict)``.

    ``policy``: ``fix`` conjugates mirrored data (metabolite and water FIDs alike; the verdict's
    ``warning`` goes to the QC report), ``refuse`` raises ``ValueError`` for mirrored data,
    ``off`` skips the check (verdict None).
    """
    if policy not in ("fix", "refuse", "off"):
        raise ValueError(f"mirror policy must be 'fix', 'refuse' or 'off', got {policy!r}")
    if policy == "off":
        return fids, water_fids, None
    verdict = detect_mirrored(fids, dwell_s, cf_mhz, ref_ppm)
    if verdict.verdict != "mirrored":
        return fids, water_fids, verdict
    if policy == "refuse":
        raise ValueError(f"input {verdict.warning.split(':')[0]}; convert it with the correct "
                         f"sign convention or set the mirror policy to 'fix'")
    water = None if water_fids is None else np.conj(water_fids)
    return np.conj(fids), water, verdict
