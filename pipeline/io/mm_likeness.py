"""Is a measured macromolecule (MM) file a metabolite-nulled MM spectrum, or a metabolite
spectrum linked by mistake (the participant's other scan, the wrong run)? Judged from the data.

A metabolite spectrum has narrow singlets (NAA 2.01, tCr 3.03, tCho 3.22 ppm; a few Hz wide)
standing far above the broad signal under them, and the MM09 line at 0.9 ppm is small beside
them; in a metabolite-nulled spectrum the lines at 2.0 and 3.0 ppm are broad MM lines, with at
most small residual singlets (nulling is never perfect), and MM09 is among the tallest lines.
The measure (:func:`singlet_excess_over_mm09`) is the summed height of the three singlets above
the spectrum's running median (0.2 ppm wide: broad lines follow it, singlets stand out), over
the tallest point at 0.85-1.0 ppm, both on the magnitude spectrum: a zero- or first-order
phase, and so an unphased file, changes neither. Noise lifts every tallest point, by 0.7-2.6
noise SDs depending on the grid and the window (:func:`noise_lift_sd`), which is taken off
each height. Before (2026-12-07) an MM of fewer averages read as a metabolite spectrum (Osprey
sub-02's MM with three times its noise refused in 6 of 10 draws, four times 10 of 10); with
one lift of 2 noise SDs for every grid (the first correction) noisy metabolite spectra passed
as MM instead (review: 19 of 240 challenge draws at four times their noise, 39 of 240 at six).
With the lift of each grid (measured 2026-12-07): Osprey sub-01/02's MM refused in 0 of 100
draws at three and at four times its noise, 4 of 100 at six times; the CMRR 3 T and 7 T MM in
none of 10 at two to six times; challenge spectra pass as MM in 3 of 240 draws at four times
their noise and 11 of 240 at six times; the in-vivo spectra (Osprey, spant, Siemens 7 T,
in-vivo 7 T b = 0, the consensus STEAM) never, up to six times.

Calibration (2026-12-07), every real spectrum of ``../shared/data`` (residual water removed,
orientation from the data):

* measured MM, 18: Osprey 3 T sub-01/02 inversion-recovery SDAT 0.12/0.11, the 8
  ``mm_consensus`` Varian spectra (3/4/7/9.4/14.1 T) 0.13-0.30, the ``Mac``/``mac`` entries of
  the LCModel bases (Osprey SPECIAL 3/7 T 0.01/0.27, 7 T STEAM 0.16, 9.4 T dSPECIAL 0.34,
  challenge 3 T 0.47); largest 0.47;
* metabolite spectra, 34: ISMRM challenge 1-24 1.02-13.8, Osprey 3 T (4 scans) 2.9-5.7, spant
  4.5, Siemens 7 T (combined, uncombined) 5.3/4.9, in-vivo 7 T b = 0 12.9, ``mm_consensus``
  STEAM 4 T / 7 T 5.2/5.7; smallest 1.02 (challenge 3: low SNR, broad lines).

:data:`MAX_MM_SINGLET_EXCESS` = 0.69 lies 1.48 times above the largest MM value and 1.48 times
below the smallest metabolite value. Complex white noise alone passes (17-20 of 20 draws on
3 T and 7 T grids: nothing stands above the noise, neither singlets nor an MM line). Not told
apart either: the challenge's tumour-like spectra with little NAA and large lipid lines at
0.9/1.3 ppm (challenge 25-28: 0.47, 0.93, 1.73, 0.04; 25 and 28 fall on the MM side): such a
spectrum linked as the MM passes, as before.

Another grid at the same field (:func:`mm_band_problem`): the run resamples a measured MM onto
the basis grid (``fitting.mm_basis``); on the Osprey sub-01 data an MM cut to 1024 points,
zero-filled to 4096 or given twice the spectral width (4096 points at 0.25 ms) left every
concentration within 0.06 % and the MM amplitude within 1.7 % of the run with the MM as
acquired, but half the spectral width (1000 Hz: 0.74-8.56 ppm) cut the 0.9 ppm line: MM -24 %,
tNAA +2.3 %, tCr +2.1 %, exit 0. So only a grid that does not span the MM band is refused.
"""

from __future__ import annotations

import functools

import numpy as np

from ..spectra import H1_REFERENCE_PPM, fid_to_spectrum, ppm_axis

SINGLETS_PPM = (2.01, 3.03, 3.22)
"""NAA CH3, total creatine CH3, total choline N(CH3)3."""
SINGLET_HALF_WINDOW_PPM = 0.05
"""Each singlet is looked for within +/- this of its position (frequency offsets, drift)."""
BROAD_MEDIAN_PPM = 0.2
"""Width of the running median standing for the broad signal under the singlets."""
MM09_WINDOW_PPM = (0.85, 1.0)
MAX_MM_SINGLET_EXCESS = 0.69
"""Largest :func:`singlet_excess_over_mm09` of a metabolite-nulled MM spectrum (see the module
notes for the calibration on every real spectrum)."""


def phase_aligned_mean(fids: np.ndarray) -> np.ndarray:
    """Mean of FIDs ``(n, points)`` (transients, coils, conditions) after turning each to the
    phase of the strongest one (its inner product with it made real), so that uncombined coils
    or phase-cycled transients add up instead of cancelling."""
    rows = np.atleast_2d(np.asarray(fids, dtype=complex))
    reference = rows[np.argmax(np.sum(np.abs(rows) ** 2, axis=1))]
    overlap = rows.conj() @ reference
    turn = overlap / np.maximum(np.abs(overlap), 1e-300)
    return np.mean(rows * turn[:, None], axis=0)


def _without_water_and_oriented(fid: np.ndarray, dwell_s: float, cf_mhz: float) -> np.ndarray:
    """``fid`` (receiver at 4.65 ppm) with its residual water removed (HLSVD,
    ``preprocess.water``; a residual water tail otherwise lifts the whole band) and conjugated
    when its signal lies on the mirror side of water (``basis_tools.conjugation_score`` < 0:
    the sign alone decides, an undecided score still picks the likelier side)."""
    from ..preprocess.water import remove_residual_water
    from .basis_tools import conjugation_score

    fid, _ = remove_residual_water(fid, dwell_s, cf_mhz, follow_singlets=False)
    return np.conj(fid) if conjugation_score(fid, dwell_s, cf_mhz) < 0 else fid


def _profile(fid: np.ndarray, dwell_s: float, cf_mhz: float):
    """(ppm, magnitude, excess) of ``fid`` zero-filled twice: the magnitude spectrum and its
    height above its running median (:data:`BROAD_MEDIAN_PPM` wide)."""
    from scipy.ndimage import median_filter

    padded = np.zeros(2 * np.size(fid), dtype=complex)
    padded[:np.size(fid)] = fid
    magnitude = np.abs(fid_to_spectrum(padded))
    ppm = ppm_axis(padded.size, dwell_s, cf_mhz)
    bins = max(3, int(round(BROAD_MEDIAN_PPM / abs(ppm[1] - ppm[0]))))
    return ppm, magnitude, magnitude - median_filter(magnitude, size=bins, mode="nearest")


def _heights(ppm: np.ndarray, magnitude: np.ndarray, excess: np.ndarray) -> np.ndarray:
    """The tallest excess within +-:data:`SINGLET_HALF_WINDOW_PPM` of each singlet, then the
    tallest magnitude at 0.85-1.0 ppm (MM09)."""
    def tallest(values, low, high):
        inside = values[(ppm >= low) & (ppm <= high)]
        return float(inside.max()) if inside.size else 0.0

    return np.array([tallest(excess, c - SINGLET_HALF_WINDOW_PPM, c + SINGLET_HALF_WINDOW_PPM)
                     for c in SINGLETS_PPM] + [tallest(magnitude, *MM09_WINDOW_PPM)])


NOISE_LIFT_DRAWS = 64
"""Noise draws of :func:`noise_lift_sd` (fixed seed: the same grid always gives the same
lift)."""


@functools.lru_cache(maxsize=32)
def noise_lift_sd(n_points: int, dwell_s: float, cf_mhz: float) -> tuple:
    """How far noise lifts, on average, each height :func:`_heights` reads, in noise SDs of
    the real spectrum, on this grid: simulated on a broad MM-like spectrum (Lorentzian lines
    0.1 ppm wide, 30 noise SDs tall, at the three singlets and at 0.9 ppm) with complex white
    noise. The lift grows with the bins a window holds (review, 2026-12-07: 0.19 at 3 T
    512 x 0.25 ms, 2.0 at 2048 x 0.5 ms, 2.4 at 9.4 T 8192 x 0.1 ms), so one value for every
    grid took too much off short acquisitions, and a metabolite spectrum passed as MM more
    easily there."""
    t = np.arange(n_points) * dwell_s
    width_hz = 0.1 * cf_mhz
    clean = sum(np.exp(2j * np.pi * (ppm - H1_REFERENCE_PPM) * cf_mhz * t - np.pi * width_hz * t)
                for ppm in (*SINGLETS_PPM, 0.9))
    clean *= 30.0 / (np.max(np.abs(fid_to_spectrum(clean))) / np.sqrt(n_points))
    reference = _heights(*_profile(clean / np.sqrt(n_points), dwell_s, cf_mhz))
    rng = np.random.default_rng(0)
    lifts = []
    for _ in range(NOISE_LIFT_DRAWS):
        noise = rng.standard_normal(n_points) + 1j * rng.standard_normal(n_points)
        lifts.append(_heights(*_profile((clean + noise) / np.sqrt(n_points), dwell_s, cf_mhz))
                     - reference)
    # never negative: on grids whose windows hold 0-1 bins the mean can dip below 0
    # (-0.12 at 3 T, 2048 points at 100 kHz), which would add to the heights
    return tuple(max(float(v), 0.0) for v in np.mean(lifts, axis=0))


def singlet_excess_over_mm09(fid: np.ndarray, dwell_s: float, cf_mhz: float) -> float:
    """The measure of the module notes on one prepared FID (receiver at 4.65 ppm, water
    removed, standard orientation): the three singlets' heights above the running median of
    the magnitude spectrum (zero-filled twice), summed, over the magnitude's tallest point at
    0.85-1.0 ppm; each height less the noise's own lift on this grid (:func:`noise_lift_sd`
    times the noise SD; never below 0, the 0.9 ppm height never below one SD), so that fewer
    averages do not raise it. Dimensionless."""
    from ..qc.metrics import noise_sd

    heights = _heights(*_profile(fid, dwell_s, cf_mhz))
    # the noise SD of the FID turned to the phase of its largest point: a zero-order phase
    # leaves it as it is
    largest = fid[int(np.argmax(np.abs(fid)))]
    turned = fid * np.conj(largest) / max(abs(largest), 1e-300)
    sigma = noise_sd(turned, dwell_s, cf_mhz)
    lifted = heights - sigma * np.asarray(noise_lift_sd(np.size(fid), float(dwell_s),
                                                        float(cf_mhz)))
    singlets = float(np.sum(np.maximum(lifted[:-1], 0.0)))
    return singlets / max(lifted[-1], sigma, 1e-300)


def mm_singlet_excess(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                      ref_ppm: float = H1_REFERENCE_PPM) -> float | None:
    """:func:`singlet_excess_over_mm09` of FIDs ``(n, points)`` of an MM file whose receiver
    sits at ``ref_ppm`` (SpecFreqChemShift): phase-aligned mean, moved onto a 4.65 ppm
    receiver, residual water removed, oriented. None when the grid does not reach 0.85-3.27
    ppm or the data are not finite (the run names such problems)."""
    from .basis_tools import shift_fids_ppm

    fid = phase_aligned_mean(fids)
    if not np.all(np.isfinite(fid)) or not np.any(fid):
        return None
    fid = shift_fids_ppm(fid, dwell_s, cf_mhz, ref_ppm - H1_REFERENCE_PPM)
    ppm = ppm_axis(fid.size, dwell_s, cf_mhz)
    if ppm.min() > MM09_WINDOW_PPM[0] or ppm.max() < max(SINGLETS_PPM) + 0.05:
        return None
    return singlet_excess_over_mm09(_without_water_and_oriented(fid, dwell_s, cf_mhz),
                                    dwell_s, cf_mhz)


def mm_band_problem(n_points: int, dwell_s: float, cf_mhz: float,
                    ref_ppm: float = H1_REFERENCE_PPM) -> str | None:
    """Why an MM spectrum of ``n_points`` at ``dwell_s`` (receiver at ``ref_ppm``) cannot give
    its lines, or None: its spectral width must span the band the MM step keeps
    (``mm_spectra.DEFAULT_BAND_PPM``, 0.2-4.4 ppm), or the 0.9 ppm line is cut (module
    notes)."""
    from .mm_spectra import DEFAULT_BAND_PPM

    half_ppm = 1 / (2 * dwell_s * cf_mhz)
    low, high = ref_ppm - half_ppm, ref_ppm + half_ppm
    if low <= min(DEFAULT_BAND_PPM) and high >= max(DEFAULT_BAND_PPM):
        return None
    return (f"its grid ({n_points} points, dwell {dwell_s * 1e3:g} ms, {1 / dwell_s:g} Hz) "
            f"spans {low:.2f}-{high:.2f} ppm, not the {min(DEFAULT_BAND_PPM):g}-"
            f"{max(DEFAULT_BAND_PPM):g} ppm of the macromolecule lines")


def metabolite_spectrum_problem(excess: float | None) -> str | None:
    """Why an MM file whose :func:`mm_singlet_excess` is ``excess`` is a metabolite spectrum,
    or None."""
    if excess is None or excess <= MAX_MM_SINGLET_EXCESS:
        return None
    return (f"its NAA/tCr/tCho singlets stand {excess:.2f} times the height of its 0.9 ppm "
            f"line above the broad signal (limit {MAX_MM_SINGLET_EXCESS:g}; real "
            "metabolite-nulled MM spectra 0.01-0.47, metabolite spectra 1.0-13.8): a metabolite "
            "spectrum")
