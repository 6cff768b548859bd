"""Is a measured macromolecule (MM) file a metabolite-nulled MM spectrum, or a metabolite
spectrum linked by mistake (the participant's other scan, the wrong run)? Judged from the data.

A metabolite spectrum has narrow singlets (NAA 2.01, tCr 3.03, tCho 3.22 ppm; a few Hz wide)
standing far above the broad signal under them, and the MM09 line at 0.9 ppm is small beside
them; in a metabolite-nulled spectrum the lines at 2.0 and 3.0 ppm are broad MM lines, with at
most small residual singlets (nulling is never perfect), and MM09 is among the tallest lines.
The measure (:func:`singlet_excess_over_mm09`) is the summed height of the three singlets above
the spectrum's running median (0.2 ppm wide: broad lines follow it, singlets stand out), over
the tallest point at 0.85-1.0 ppm, both on the magnitude spectrum: a zero- or first-order
phase, and so an unphased file, changes neither. Noise lifts every tallest point by about two
noise SDs (:data:`NOISE_BIAS_SD`), which is taken off each height: before (2026-12-07), an MM of
fewer averages read as a metabolite spectrum (Osprey sub-02's MM with three times its noise
refused in 6 of 10 draws, four times 10 of 10); now none of 10 draws at two, three, four or
six times its noise is refused (Osprey sub-01/02, CMRR 3 T and 7 T MM; at most 0.45).

Calibration (2026-12-07), every real spectrum of ``../shared/data`` (residual water removed,
orientation from the data):

* measured MM, 18: Osprey 3 T sub-01/02 inversion-recovery SDAT 0.10/0.10, the 8
  ``mm_consensus`` Varian spectra (3/4/7/9.4/14.1 T) 0.13-0.30, the ``Mac``/``mac`` entries of
  the LCModel bases (Osprey SPECIAL 3/7 T 0.01/0.27, 7 T STEAM 0.20, 9.4 T dSPECIAL 0.35,
  challenge 3 T 0.47); largest 0.47;
* metabolite spectra, 34: ISMRM challenge 1-24 0.95-13.4, Osprey 3 T (4 scans) 2.9-5.6, spant
  4.4, Siemens 7 T (combined, uncombined) 5.2/4.8, in-vivo 7 T b = 0 12.6, ``mm_consensus``
  STEAM 4 T / 7 T 5.2/5.7; smallest 0.95 (challenge 3: low SNR, broad lines).

:data:`MAX_MM_SINGLET_EXCESS` = 0.67 lies 1.43 times above the largest MM value and 1.41 times
below the smallest metabolite value. The price of the noise correction: a metabolite spectrum
of low SNR can pass as an MM once its singlets stand only a few noise SDs above the broad
signal (re-measured in review, 2026-12-07, 10 draws each on the 34 metabolite spectra: at
twice their noise challenge 3 passes in 2 draws; three times challenge 3 and 13, 2 each;
four times 7 of the 24 challenge spectra, 3 and 12-17, 19 of 240 draws; six times 10 of them,
39 of 240; the 10 in-vivo spectra, Osprey, spant, Siemens 7 T, in-vivo 7 T b = 0 and the
consensus STEAM, never up to six times). Complex white noise alone passes too (18-19 of 20
draws on 3 T and 7 T grids: nothing stands above the noise, neither singlets nor an MM line).
Not told apart either: the challenge's tumour-like spectra with little NAA
and large lipid lines at 0.9/1.3 ppm (challenge 25-28: 0.43, 0.85, 1.60, 0.04; 25 and 28 fall
on the MM side): such a spectrum linked as the MM passes, as before.

Another grid at the same field (:func:`mm_band_problem`): the run resamples a measured MM onto
the basis grid (``fitting.mm_basis``); on the Osprey sub-01 data an MM cut to 1024 points,
zero-filled to 4096 or given twice the spectral width (4096 points at 0.25 ms) left every
concentration within 0.06 % and the MM amplitude within 1.7 % of the run with the MM as
acquired, but half the spectral width (1000 Hz: 0.74-8.56 ppm) cut the 0.9 ppm line: MM -24 %,
tNAA +2.3 %, tCr +2.1 %, exit 0. So only a grid that does not span the MM band is refused.
"""

from __future__ import annotations

import numpy as np

from ..spectra import H1_REFERENCE_PPM, fid_to_spectrum, ppm_axis

SINGLETS_PPM = (2.01, 3.03, 3.22)
"""NAA CH3, total creatine CH3, total choline N(CH3)3."""
SINGLET_HALF_WINDOW_PPM = 0.05
"""Each singlet is looked for within +/- this of its position (frequency offsets, drift)."""
BROAD_MEDIAN_PPM = 0.2
"""Width of the running median standing for the broad signal under the singlets."""
MM09_WINDOW_PPM = (0.85, 1.0)
NOISE_BIAS_SD = 2.0
"""Noise SDs (of the real spectrum) that noise adds, on average, to the tallest point of a
0.1 ppm window of the magnitude spectrum over a broad line: 1.82-2.19 measured (600 windows per
grid; 3 T 2048 x 0.5 ms and 4096 x 0.25 ms, 7 T 1024 x 0.33 ms and 2048 x 0.25 ms, 9.4 T 4096 x
0.2 ms; 2026-12-07). Without it an MM of fewer averages read as a metabolite spectrum. It
depends on how many bins the window holds (review, 2026-12-07): 1.63 at 3 T 1024 x 0.5 ms,
1.24 at 512 x 0.5 ms, 0.19 at 512 x 0.25 ms, 2.38 at 9.4 T 8192 x 0.1 ms; on short
acquisitions one value over-subtracts, so a metabolite spectrum passes as MM more easily. A
bias per grid is not built."""
MAX_MM_SINGLET_EXCESS = 0.67
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


def singlet_excess_over_mm09(fid: np.ndarray, dwell_s: float, cf_mhz: float) -> float:
    """The measure of the module notes on one prepared FID (receiver at 4.65 ppm, water
    removed, standard orientation): the three singlets' heights above the running median of
    the magnitude spectrum (zero-filled twice), summed, over the magnitude's tallest point at
    0.85-1.0 ppm; each height less the noise's own contribution (:data:`NOISE_BIAS_SD` noise
    SDs, never below 0; the 0.9 ppm height never below one SD), so that fewer averages do not
    raise it. Dimensionless."""
    from scipy.ndimage import median_filter

    from ..qc.metrics import noise_sd

    padded = np.zeros(2 * np.size(fid), dtype=complex)
    padded[:np.size(fid)] = fid
    magnitude = np.abs(fid_to_spectrum(padded))
    ppm = ppm_axis(padded.size, dwell_s, cf_mhz)
    bins = max(3, int(round(BROAD_MEDIAN_PPM / abs(ppm[1] - ppm[0]))))
    excess = magnitude - median_filter(magnitude, size=bins, mode="nearest")
    # the noise SD of the FID turned to the phase of its largest point: a zero-order phase
    # leaves it as it is
    largest = fid[int(np.argmax(np.abs(fid)))]
    turned = fid * np.conj(largest) / max(abs(largest), 1e-300)
    bias = NOISE_BIAS_SD * noise_sd(turned, dwell_s, cf_mhz)

    def tallest(values, low, high):
        inside = values[(ppm >= low) & (ppm <= high)]
        return float(inside.max()) if inside.size else 0.0

    singlets = sum(max(tallest(excess, c - SINGLET_HALF_WINDOW_PPM,
                                c + SINGLET_HALF_WINDOW_PPM) - bias, 0.0)
                   for c in SINGLETS_PPM)
    mm09 = max(tallest(magnitude, *MM09_WINDOW_PPM) - bias, bias / NOISE_BIAS_SD)
    return singlets / max(mm09, 1e-300)


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
            "metabolite-nulled MM spectra 0.01-0.47, metabolite spectra 0.95-13.4): a metabolite "
            "spectrum")
