"""Validation spectra that do not share the fit's assumptions, and an LCModel runner (issue 13).

Written independently of ``pipeline.simulate.synthetic`` and of the fit model: spectra are
built from OTHER groups' basis sets (ISMRM 2016 challenge, Osprey GE/Philips/Siemens PRESS
35 ms, the pregame 7 T STEAM basis) with features of measured data:

- lineshape: a measured water reference (Osprey sub-01/02, spant, 7 T in-vivo dMRS water),
  demodulated, phased at t = 0, its noisy tail tapered, stretched in time to a drawn linewidth
  and multiplied onto every metabolite FID (a convolution of the spectrum: non-Voigt and
  asymmetric as measured);
- macromolecules: measured metabolite-nulled spectra (Osprey inversion recovery TI 600 ms at
  3 T; mm_consensus human STEAM at 3 T / 7 T) moved onto the target ppm axis;
- lipids (broad lines at 0.9, 1.3, 1.6, 2.0, 2.25 ppm), a smooth random baseline (broad
  Gaussians in ppm), one to three residual water lines anywhere in 4.0-5.2 ppm;
- zero- and first-order phase, a frequency offset up to +-0.15 ppm, SNR 20-200 (tNAA peak
  height over the noise SD of one real spectral point).

Concentrations (mM) are drawn uniformly in the in-vivo ranges of Govindaraju, Young & Maudsley,
NMR Biomed 2000;13:129 (Table 1), narrowed where de Graaf, In Vivo NMR Spectroscopy (3rd ed.,
Table 2.1) gives typical grey-matter values. The truth of a ratio to tCr is the ratio of the
drawn concentrations: every entry of one basis file is on one per-mM scale. File readers of
the package (``read_basis``, ``read_philips_sdat``, ``read_measured_mm``) are used only to
read the published files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LCMODEL_BINARY = Path("/tmp/lcmodel/lcmodel")
REFERENCE_PPM = 4.65

CONCENTRATION_RANGES_MM = {
    "NAA": (9.0, 14.0), "NAAG": (0.6, 2.0), "Cr": (3.5, 5.5), "PCr": (3.0, 5.0),
    "GPC": (0.5, 1.5), "PCh": (0.2, 0.8), "Ins": (4.0, 8.0), "sIns": (0.2, 0.5),
    "Glu": (7.0, 12.0), "Gln": (2.0, 5.0), "GABA": (1.0, 2.0), "GSH": (1.0, 3.0),
    "Tau": (1.0, 2.5), "Lac": (0.2, 1.0), "Asp": (1.0, 2.0), "PE": (1.0, 2.0),
    "Asc": (0.5, 1.5), "Glc": (1.0, 2.0), "Ala": (0.1, 0.6), "Gly": (0.2, 0.8),
}
"""In-vivo brain concentration ranges (mM), Govindaraju et al. 2000 / de Graaf (see above)."""

SPELLINGS = {"PCho": "PCh", "Scyllo": "sIns", "mI": "Ins", "GSH": "GSH"}
"""Basis-file spellings -> the canonical names used for the truth and the table."""

SUMS = {"tNAA": ("NAA", "NAAG"), "tCr": ("Cr", "PCr"), "tCho": ("GPC", "PCh"),
        "Glx": ("Glu", "Gln")}
REPORTED = ("tNAA", "tCho", "Ins", "Glu", "Gln", "Glx", "GSH", "GABA", "Tau", "Asp", "sIns",
            "Lac", "PE")
"""Ratios to tCr compared in the benchmark (tCr's own error enters every one of them)."""


@dataclass(frozen=True)
class BasisSource:
    """A published basis and the acquisition the app would be told it came from."""

    label: str
    relative_path: str
    sequence: str          # for the app's own simulated basis
    echo_time_s: float
    mixing_time_s: float | None
    n_points: int          # data length (the basis is longer)
    field: str             # "3T" / "7T": picks lineshapes and MM spectra


SOURCES = (
    BasisSource("ismrm_press30", "ismrm2016_fitting_challenge/basisset_LCModel/press3T_30ms.BASIS",
                "press", 0.030, None, 2048, "3T"),
    BasisSource("osprey_ge_press35",
                "osprey_3t/fit/basissets/3T/ge/unedited/press/35/3T_PRESS_GE_35ms_noMM.BASIS",
                "press", 0.035, None, 2048, "3T"),
    BasisSource("osprey_philips_press35", "osprey_3t/fit/basissets/3T/philips/unedited/press/35/"
                "3T_PRESS_Philips_35ms_noMM.BASIS", "press", 0.035, None, 2048, "3T"),
    BasisSource("osprey_siemens_press35", "osprey_3t/fit/basissets/3T/siemens/unedited/press/35/"
                "3T_PRESS_Siemens_35ms_noMM.BASIS", "press", 0.035, None, 2048, "3T"),
    BasisSource("pregame_steam7t", "dmrs_7t_steam_synthetic/basis_STEAM_TE45_TM60.BASIS",
                "steam", 0.045, 0.060, 1024, "7T"),
)

WATER_REFERENCES = (
    "osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-01/ses-01/mrs/sub-01_ses-01_press_ref/"
    "sub-01_ses-01_PRESS_raw-ref_noID.SDAT",
    "osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-02/ses-01/mrs/sub-02_ses-01_press_ref/"
    "sub-02_ses-01_PRESS_raw-ref_noID.SDAT",
    "spant_sdat/inst/extdata/philips_spar_sdat_W.SDAT",
    "dmrs_7t_steam_invivo/water_raw_act.SDAT",
)
MM_SPECTRA = {
    "3T": ("osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-01/ses-01/mrs/"
           "sub-01_ses-01_press-inverted/sub-01_ses-01_PRESS-Inverted_TI-600_raw-act_noID.SDAT",
           "osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-02/ses-01/mrs/"
           "sub-02_ses-01_press-inverted/sub-02_ses-01_PRESS-Inverted_TI-600_raw-act_noID.SDAT",
           "mm_consensus/MM_database/3T_MM_human_STEAM_CMRR.fid"),
    "7T": ("mm_consensus/MM_database/7T_MM_human_STEAM_CMRR.fid",
           "mm_consensus/MM_database/9.4T_MM_human_sLASER_Tubingen.fid"),
}
LINEWIDTH_PPM = {"3T": (0.035, 0.075), "7T": (0.025, 0.05)}
"""Drawn FWHM of the lineshape kernel (ppm): typical in-vivo water linewidths."""


# --- reading published material -----------------------------------------------------------

def canonical(name: str) -> str:
    return SPELLINGS.get(name, name)


def is_mm_entry(name: str) -> bool:
    return name.lower().startswith(("mac", "mm", "lip"))


def load_basis(shared: Path, source: BasisSource):
    """The published basis without its MM entry (the spectra get a measured MM instead)."""
    from pipeline.io.basis_formats import read_basis

    basis = read_basis(shared / source.relative_path)
    keep = [n for n in basis.names if not is_mm_entry(n) and canonical(n) in
            CONCENTRATION_RANGES_MM]
    return basis.subset(keep)


@dataclass
class Kernel:
    """A lineshape as a time-domain multiplier k(t), k(0) = 1, on its own sampling grid."""

    label: str
    values: np.ndarray
    dwell_s: float
    fwhm_hz: float


def fwhm_hz(kernel: np.ndarray, dwell_s: float, zero_fill: int = 8) -> float:
    """FWHM (Hz) of |spectrum| of a time-domain kernel."""
    n = kernel.size * zero_fill
    spectrum = np.abs(np.fft.fft(kernel, n))
    above = np.count_nonzero(spectrum >= spectrum.max() / 2)
    return above / (n * dwell_s)


def kernel_from_water(fid: np.ndarray, dwell_s: float, label: str) -> Kernel:
    """Measured water FID -> lineshape kernel: demodulated to 0 Hz, phase and scale so that
    k(0) = 1 (extrapolated from points 1-2: FID[0] may be halved or filtered), the tail beyond
    where the signal reaches 5x the noise tapered to zero."""
    fid = np.asarray(fid, dtype=complex)
    n = fid.size
    spectrum = np.fft.fft(fid, 8 * n)
    freqs = np.fft.fftfreq(8 * n, dwell_s)
    peak_hz = freqs[int(np.argmax(np.abs(spectrum)))]
    t = np.arange(n) * dwell_s
    demod = fid * np.exp(-2j * np.pi * peak_hz * t)
    start = 2 * demod[1] - demod[2]
    k = demod / start
    noise = np.std(k[-n // 8:])
    envelope = np.convolve(np.abs(k), np.ones(9) / 9, mode="same")
    below = np.nonzero(envelope < 5 * noise)[0]
    end = int(below[0]) if below.size else n
    taper = np.zeros(n)
    rise = max(8, end // 3)
    taper[:end] = 1.0
    ramp = np.arange(rise)
    taper[end - rise:end] = 0.5 * (1 + np.cos(np.pi * (ramp + 1) / rise))
    k = k * taper
    k[0] = 1.0
    return Kernel(label, k, dwell_s, fwhm_hz(k, dwell_s))


def water_kernels(shared: Path) -> list[Kernel]:
    from pipeline.io.mm_spectra import read_philips_sdat

    kernels = []
    for rel in WATER_REFERENCES:
        path = shared / rel
        if path.exists():
            fid, dwell_s, _, _ = read_philips_sdat(path)
            kernels.append(kernel_from_water(fid, dwell_s, Path(rel).parts[0] + ":" +
                                             Path(rel).stem))
    if not kernels:
        raise FileNotFoundError(f"no measured water reference found under {shared}")
    return kernels


def kernel_on_grid(kernel: Kernel, dwell_s: float, n_points: int, target_fwhm_hz: float):
    """k(alpha t) sampled on the target grid, alpha = target / measured FWHM."""
    alpha = target_fwhm_hz / kernel.fwhm_hz
    t_source = np.arange(kernel.values.size) * kernel.dwell_s
    t = alpha * np.arange(n_points) * dwell_s
    real = np.interp(t, t_source, kernel.values.real, right=0.0)
    imag = np.interp(t, t_source, kernel.values.imag, right=0.0)
    return real + 1j * imag


@dataclass
class MeasuredMM:
    label: str
    ppm: np.ndarray        # ascending
    spectrum: np.ndarray   # complex, absorption-phased


def measured_mm(shared: Path, field_label: str) -> list[MeasuredMM]:
    from pipeline.io.mm_spectra import read_measured_mm

    out = []
    for rel in MM_SPECTRA[field_label]:
        path = shared / rel
        if not path.exists():
            continue
        basis = read_measured_mm(path)
        ppm = basis.ppm()
        spectrum = np.fft.fftshift(np.fft.fft(basis.fids[0]))
        order = np.argsort(ppm)
        out.append(MeasuredMM(Path(rel).name, ppm[order], spectrum[order]))
    if not out:
        raise FileNotFoundError(f"no measured MM spectrum for {field_label} under {shared}")
    return out


# --- spectra on the data grid -------------------------------------------------------------

def ppm_axis(n_points: int, dwell_s: float, cf_mhz: float) -> np.ndarray:
    """ppm of each bin of fftshift(fft(fid)) (ppm decreases with the bin index)."""
    freq_hz = np.fft.fftshift(np.fft.fftfreq(n_points, dwell_s))
    return REFERENCE_PPM - freq_hz / cf_mhz


def to_spectrum(fid):
    return np.fft.fftshift(np.fft.fft(fid, axis=-1), axes=-1)


def to_fid(spectrum):
    return np.fft.ifft(np.fft.ifftshift(spectrum, axes=-1), axis=-1)


MM_APODISATION_HZ = 4.0
"""Lorentzian apodisation (Hz) of the moved MM spectrum: the measured spectra carry noise and
band edges that would otherwise make an FID that never decays (MM lines are 15-40 Hz wide)."""


def mm_on_grid(mm: MeasuredMM, ppm: np.ndarray, dwell_s: float) -> np.ndarray:
    """Measured MM spectrum moved onto a target ppm axis: interpolated, band 0.5-4.2 ppm with
    cosine edges, apodised (:data:`MM_APODISATION_HZ`), tail beyond 250 ms tapered off.
    Returns the FID on the target grid."""
    real = np.interp(ppm, mm.ppm, mm.spectrum.real, left=0.0, right=0.0)
    imag = np.interp(ppm, mm.ppm, mm.spectrum.imag, left=0.0, right=0.0)
    band = np.clip(np.minimum((ppm - 0.5) / 0.2, (4.2 - ppm) / 0.2), 0.0, 1.0)
    band = 0.5 - 0.5 * np.cos(np.pi * band)
    fid = to_fid((real + 1j * imag) * band)
    t = np.arange(fid.size) * dwell_s
    window = np.exp(-np.pi * MM_APODISATION_HZ * t)
    window *= np.where(t < 0.25, 1.0, np.exp(-((t - 0.25) / 0.05) ** 2))
    return fid * window


def line_fid(t, ppm, cf_mhz, fwhm_hz, gauss_fraction=0.0):
    """One Lorentz-Gauss line at ``ppm`` with FID[0] = 1."""
    freq = -(ppm - REFERENCE_PPM) * cf_mhz
    lor = np.exp(-np.pi * fwhm_hz * (1 - gauss_fraction) * t)
    gau = np.exp(-(np.pi * fwhm_hz * gauss_fraction * t) ** 2 / (4 * np.log(2)))
    return np.exp(2j * np.pi * freq * t) * lor * gau


LIPID_LINES = ((0.90, 0.16, 0.3), (1.30, 0.16, 1.0), (1.60, 0.12, 0.15), (2.02, 0.14, 0.2),
               (2.25, 0.14, 0.12))
"""Lipid CH3, (CH2)n, CH2-C-CO, CH2-C=C, CH2-CO: (ppm, FWHM ppm, relative area)."""


@dataclass
class ValidationSpectrum:
    source: str
    fid: np.ndarray
    dwell_s: float
    cf_mhz: float
    truth_mm: dict                       # canonical name -> concentration (mM)
    noise_sd: float                      # SD of one real point of fftshift(fft(fid))
    params: dict = field(default_factory=dict)

    def truth_ratio(self, name: str) -> float:
        value = lambda n: sum(self.truth_mm.get(m, 0.0) for m in SUMS.get(n, (n,)))  # noqa
        return value(name) / value("tCr")


def delayed(fid: np.ndarray, dwell_s: float, delay_s: float) -> np.ndarray:
    """s(t + delay) on the same grid (band-limited interpolation on a 4x zero-padded FID,
    so nothing wraps round to the end)."""
    n = fid.size
    padded = np.fft.fft(fid, 4 * n)
    freq = np.fft.fftfreq(4 * n, dwell_s)
    return np.fft.ifft(padded * np.exp(2j * np.pi * freq * delay_s))[:n]


def peak_height(spectrum, ppm, lo=1.9, hi=2.1) -> float:
    return float(np.abs(spectrum[(ppm > lo) & (ppm < hi)]).max())


def smooth_baseline(rng, ppm: np.ndarray, max_height: float) -> np.ndarray:
    """3-6 broad Gaussians in ppm (centres 0-4.5 ppm, SD 0.4-1.5 ppm, random phase), each
    of height up to ``max_height``: a smooth baseline spectrum."""
    baseline = np.zeros(ppm.size, complex)
    for _ in range(int(rng.integers(3, 7))):
        centre, sd = rng.uniform(0.0, 4.5), rng.uniform(0.4, 1.5)
        height = rng.uniform(-1.0, 1.0) * max_height
        baseline += height * np.exp(1j * rng.uniform(-np.pi, np.pi)) * np.exp(
            -0.5 * ((ppm - centre) / sd) ** 2)
    return baseline


def draw_spectrum(rng, source: BasisSource, basis, kernels, mms) -> ValidationSpectrum:
    """One spectrum with independently drawn concentrations and features (see module notes)."""
    n = source.n_points
    dwell, cf = basis.dwell_s, basis.cf_mhz
    t = np.arange(n) * dwell
    ppm = ppm_axis(n, dwell, cf)
    truth = {canonical(name): float(rng.uniform(*CONCENTRATION_RANGES_MM[canonical(name)]))
             for name in basis.names}
    kernel = kernels[int(rng.integers(len(kernels)))]
    width_ppm = float(rng.uniform(*LINEWIDTH_PPM[source.field]))
    k = kernel_on_grid(kernel, dwell, n, width_ppm * cf)
    metab = sum(truth[canonical(name)] * basis.fids[i, :n] for i, name in enumerate(basis.names))
    metab = metab * k
    naa_height = peak_height(to_spectrum(metab), ppm)
    # macromolecules: measured, 0.9 ppm peak at 20-60 % of the tNAA peak
    mm = mms[int(rng.integers(len(mms)))]
    mm_fid = mm_on_grid(mm, ppm, dwell)
    mm_height = peak_height(to_spectrum(mm_fid), ppm, 0.8, 1.05)
    mm_ratio = float(rng.uniform(0.2, 0.6))
    mm_fid = mm_fid * (mm_ratio * naa_height / mm_height)
    # lipids in 60 % of spectra: (CH2)n peak 0-50 % of tNAA
    lip_ratio = float(rng.uniform(0.0, 0.5)) if rng.random() < 0.6 else 0.0
    lip = sum(area * line_fid(t, p, cf, w * cf, 0.7) for p, w, area in LIPID_LINES)
    lip_height = peak_height(to_spectrum(lip), ppm, 1.2, 1.4)
    lip_fid = lip * (lip_ratio * naa_height / lip_height)
    # residual water: 1-3 lines placed (after the offset) anywhere in 4.0-5.2 ppm with the
    # in-vivo lineshape; peak 0.3-10 x the tNAA peak near water, 0.1-2 x below 4.4 ppm
    offset_ppm = float(rng.uniform(-0.15, 0.15))
    water = np.zeros(n, complex)
    water_lines = []
    for _ in range(int(rng.integers(1, 4))):
        centre = float(rng.uniform(4.0, 5.2))
        width = float(rng.uniform(0.0, 10.0))  # Hz beyond the lineshape
        line = line_fid(t, centre, cf, width) * k
        low, high = (0.3, 10.0) if centre >= 4.4 else (0.1, 2.0)
        height = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        scale = height * naa_height / peak_height(to_spectrum(line), ppm, centre - 0.05,
                                                  centre + 0.05)
        water += scale * np.exp(1j * rng.uniform(-np.pi, np.pi)) * line
        water_lines.append((centre, width, height))
    # global frequency offset of the tissue signal, then phase
    signal = (metab + mm_fid + lip_fid) * np.exp(-2j * np.pi * offset_ppm * cf * t) + water
    # smooth baseline: 3-6 broad Gaussians in ppm (0-4.5 ppm), up to 15 % of the tNAA peak
    baseline = smooth_baseline(rng, ppm, 0.15 * naa_height)
    # zero-order phase and an acquisition delay (first-order phase up to 8 deg/ppm): the FID
    # is sampled from s(t + delay), without wrap-around
    phase0_deg = float(rng.uniform(-90, 90))
    delay_s = float(rng.uniform(0.0, 8.0 / (360.0 * cf)))
    # the baseline is made causal (its anti-causal half would wrap round to the FID's end):
    # an FID distortion near t = 0 whose absorption part is the drawn shape
    baseline_fid = to_fid(baseline)
    baseline_fid[n // 2:] = 0.0
    baseline_fid[1:n // 2] *= 2.0
    fid = delayed(signal + baseline_fid, dwell, delay_s)
    fid = fid * np.exp(1j * np.deg2rad(phase0_deg))
    phase1_deg_ppm = -360.0 * delay_s * cf
    snr = float(np.exp(rng.uniform(np.log(20), np.log(200))))
    noise_sd = naa_height / snr
    sigma_t = noise_sd / np.sqrt(n)
    fid = fid + sigma_t * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    params = {"kernel": kernel.label, "linewidth_ppm": width_ppm, "mm": mm.label,
              "mm_to_naa": mm_ratio, "lipid_to_naa": lip_ratio, "water_lines": water_lines,
              "offset_ppm": offset_ppm, "phase0_deg": phase0_deg,
              "phase1_deg_per_ppm": phase1_deg_ppm, "snr": snr}
    return ValidationSpectrum(source.label, fid, dwell, cf, truth, noise_sd, params)


def validation_set(shared: Path, n_spectra: int, seed: int = 0, sources=SOURCES):
    """``n_spectra`` spectra spread evenly over the available ``sources`` (round robin).

    Returns ``(spectra, bases)``: bases maps a source label to (source, published basis)."""
    rng = np.random.default_rng(seed)
    bases = {s.label: (s, load_basis(shared, s)) for s in sources
             if (shared / s.relative_path).exists()}
    kernels = water_kernels(shared)
    mms = {f: measured_mm(shared, f) for f in {s.field for s, _ in bases.values()}}
    labels = list(bases)
    spectra = []
    for i in range(n_spectra):
        source, basis = bases[labels[i % len(labels)]]
        spectra.append(draw_spectrum(rng, source, basis, kernels, mms[source.field]))
    return spectra, bases


# --- LCModel ------------------------------------------------------------------------------

def lcmodel_available() -> bool:
    return LCMODEL_BINARY.is_file()


def write_raw(path: Path, fid: np.ndarray, cf_mhz: float, echo_time_s: float) -> None:
    """LCModel .RAW: same sign convention as the project (see the LCModel peer's README)."""
    lines = [" $SEQPAR", f" ECHOT={echo_time_s * 1000:.3f}", f" HZPPPM={cf_mhz:.6f}",
             " SEQ='PRESS'", " $END", " $NMID", " ID='validation', FMTDAT='(2E16.6)'",
             " VOLUME=1., TRAMP=1.", " $END"]
    lines += [f"{v.real:16.6E}{v.imag:16.6E}" for v in fid]
    path.write_text("\n".join(lines) + "\n")


def write_control(path: Path, basis_path: Path, raw_path: Path, out_stem: Path, n_points: int,
                  dwell_s: float, cf_mhz: float, echo_time_s: float) -> None:
    """Control file as a standard LCModel user would write: 0.2-4.0 ppm, default baseline,
    LCModel's own lipid/MM components (the basis has none)."""
    text = f""" $LCMODL
 title='validation'
 key=210387309
 filbas='{basis_path}'
 filraw='{raw_path}'
 filtab='{out_stem}.table'
 filcoo='{out_stem}.coord'
 filps='{out_stem}.ps'
 ltable=7
 lcoord=9
 lps=8
 nunfil={n_points}
 deltat={dwell_s:.9e}
 hzpppm={cf_mhz:.6f}
 echot={echo_time_s * 1000:.2f}
 ppmst=4.0
 ppmend=0.2
 neach=99
 $END
"""
    path.write_text(text)


_TABLE_ROW = re.compile(r"^\s*([-+0-9.Ee]+)\s+([0-9]+)%\s+([-+0-9.Ee]+)\+?\s*([A-Za-z0-9+_-]+)")


def parse_table(text: str) -> dict:
    """``{name: concentration}`` from an LCModel .table (rows 'conc %SD /Cr name'; a '+'
    glued to the name flags an exceeded prior; 'NAA+NAAG' style sums are kept)."""
    out = {}
    in_conc = False
    for line in text.splitlines():
        if "Conc." in line and "%SD" in line:
            in_conc = True
            continue
        if in_conc:
            if not line.strip() or line.strip().startswith("$$"):
                if out:
                    break
                continue
            tokens = line.split()
            if len(tokens) < 3:
                continue
            try:
                conc = float(tokens[0])
            except ValueError:
                break
            name = tokens[-1]
            if len(tokens) == 3:  # '0.570+GABA': ratio and name glued by '+'
                name = tokens[2].split("+", 1)[-1] if "+" in tokens[2] else tokens[2]
            out[name] = conc
    return out


def parse_coord(text: str) -> dict:
    """ppm axis, phased data, fit and baseline from an LCModel .coord file (each block is
    NY values after its header line; NY from 'NN points on ppm-axis = NY')."""
    lines = text.splitlines()
    keys = {"points on ppm-axis": "ppm", "phased data points": "data",
            "points of the fit": "fit", "background values": "baseline"}
    blocks, n_y, i = {}, 0, 0
    while i < len(lines):
        hit = next((v for k, v in keys.items() if k in lines[i]), None)
        if hit == "ppm":
            n_y = int(lines[i].split()[0])
        i += 1
        if hit and n_y:
            values: list = []
            while len(values) < n_y and i < len(lines):
                values += [float(x) for x in lines[i].split()]
                i += 1
            blocks[hit] = np.array(values[:n_y])
    return blocks


@dataclass
class LCModelResult:
    concentrations: dict
    coord: dict
    seconds: float
    table: str


def run_lcmodel(workdir: Path, basis_path: Path, fid, dwell_s, cf_mhz, echo_time_s,
                stem: str = "spec") -> LCModelResult:
    raw = workdir / f"{stem}.RAW"
    control = workdir / f"{stem}.control"
    out = workdir / stem
    write_raw(raw, fid, cf_mhz, echo_time_s)
    write_control(control, basis_path, raw, out, len(fid), dwell_s, cf_mhz, echo_time_s)
    start = time.perf_counter()
    with control.open() as handle:
        subprocess.run([str(LCMODEL_BINARY)], stdin=handle, cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    seconds = time.perf_counter() - start
    table = Path(f"{out}.table").read_text(errors="replace")
    coord = parse_coord(Path(f"{out}.coord").read_text(errors="replace"))
    return LCModelResult(parse_table(table), coord, seconds, table)


def lcmodel_ratio(concentrations: dict, name: str) -> float:
    """Ratio to tCr from LCModel concentrations (canonical names; sums from members)."""
    canon = {}
    for key, value in concentrations.items():
        canon[canonical(key)] = value
    total = lambda n: (canon[n] if n in canon else  # noqa: E731
                       sum(canon.get(m, 0.0) for m in SUMS.get(n, ())))
    if "tCr" in canon or ("Cr+PCr" in canon):
        tcr = canon.get("Cr+PCr", canon.get("tCr"))
    else:
        tcr = total("tCr")
    key = {"tNAA": "NAA+NAAG", "tCho": "GPC+PCh", "Glx": "Glu+Gln"}.get(name)
    value = canon.get(key) if key and key in canon else total(name)
    return value / tcr if tcr > 0 else float("nan")


def lcmodel_residual_ratio(result: LCModelResult, spectrum: ValidationSpectrum) -> float:
    """LCModel's residual SD over its window divided by the noise SD, in LCModel's units.

    The .coord data are the phased, zero-filled spectrum in LCModel's scale, on LCModel's
    referenced ppm axis. Scale and axis offset are found by regressing them on the known FID's
    spectrum (same zero-filling) with a complex factor linear in ppm (absorbs zero- and
    first-order phase), over ppm offsets of +-0.3 ppm (best fit kept)."""
    coord = result.coord
    ppm, data = coord["ppm"], coord["data"]
    n = spectrum.fid.size
    zf = np.fft.fftshift(np.fft.fft(spectrum.fid, 2 * n))
    axis = REFERENCE_PPM - np.fft.fftshift(np.fft.fftfreq(2 * n, spectrum.dwell_s)) / \
        spectrum.cf_mhz
    order = np.argsort(axis)
    x = ppm - ppm.mean()

    def score(offset):
        at = ppm + offset
        s = np.interp(at, axis[order], zf.real[order]) + 1j * np.interp(at, axis[order],
                                                                        zf.imag[order])
        design = np.column_stack([s.real, -s.imag, x * s.real, -x * s.imag])
        coef, *_ = np.linalg.lstsq(design, data, rcond=None)
        return 1.0 - np.var(data - design @ coef) / np.var(data), abs(complex(coef[0], coef[1]))

    # coarse 0.01 ppm grid (lines are >= 0.02 ppm wide), then 0.0005 ppm around its best
    coarse = max(np.arange(-0.3, 0.3, 0.01), key=lambda o: score(o)[0])
    best = max((score(o) for o in np.arange(coarse - 0.01, coarse + 0.01, 0.0005)),
               key=lambda r: r[0])
    resid = data - coord["fit"]
    return float(np.std(resid) / (best[1] * spectrum.noise_sd))


def lcmodel_basis_file(basis, path: Path, echo_time_s: float) -> Path:
    """The generating basis in LCModel .BASIS form (as read, i.e. the project's convention,
    which is LCModel's; see the LCModel peer's README)."""
    from pipeline.io.basis_formats import write_lcmodel_basis

    write_lcmodel_basis(basis, path, echo_time_s=echo_time_s, sequence="PRESS")
    return path


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="vs_lcmodel_"))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- the comparison of one spectrum (shared by the benchmark and its test) ----------------

COMPARED = ("tNAA", "tCr", "tCho", "Ins", "Glu", "Gln", "Glx", "GSH", "GABA", "Tau", "Asp",
            "sIns", "Lac", "PE")
"""Reported per metabolite: ratio to tCr (tCr itself: tCr/tNAA)."""
RESIDUAL_PPM = (0.2, 4.0)


def app_timings(source: BasisSource, basis_config: dict) -> dict:
    """Extra ``simulate_basis`` arguments the app uses for ``source`` from its ``[basis]``
    config: ``timings`` (none by default: the simulator's symmetric PRESS split) and, for
    PRESS, ``press_refocus_bandwidth_hz`` (slice-selective refocusing)."""
    extra = dict(basis_config.get("timings", {}))
    bandwidth = float(basis_config.get("press_refocus_bandwidth_hz", 0.0) or 0.0)
    if source.sequence == "press" and bandwidth > 0:
        extra.setdefault("refocus_bandwidth_hz", bandwidth)
    return extra


class AppAndLCModel:
    """The app with its defaults and LCModel as its user would run it, for one published basis.

    App: its own simulated basis for the stated sequence/TE/TM on the data grid, the default
    macromolecule handling for data without a measured MM (parametric MM; lipids if the
    default config adds them), residual-water removal, then the default fit options
    (``bids_app/default_config.toml``, or ``config_path`` merged over it as ``--config`` does).
    ``mm_components``: another parametric MM set than the app's default (a measurement
    option). LCModel twice: with the generating basis as ``.BASIS`` ("lcm": an oracle basis no real
    user has) and with the app's own simulated metabolite entries as ``.BASIS`` ("lcmown": the
    information the app has; LCModel adds its own MM/lipids). The two LCModel columns measure
    the fitter against the fitter and the cost of the basis mismatch separately.
    """

    def __init__(self, source: BasisSource, basis, workdir: Path, use_lcmodel: bool = True,
                 config_path=None, timings: dict | None = None, cache_dir=None,
                 mm_components=None):
        from bids_app.config import load_config
        from pipeline.fitting import FitOptions
        from pipeline.fitting import model as M
        from pipeline.simulate.basis_simulation import simulate_basis
        from pipeline.simulate.macromolecules import parametric_mm_basis, with_lipids

        config = load_config(config_path)  # the defaults, or a user's TOML over them
        cf, dwell, n = basis.cf_mhz, basis.dwell_s, source.n_points
        app = simulate_basis(source.sequence, cf, dwell, n, echo_time_s=source.echo_time_s,
                             mixing_time_s=source.mixing_time_s,
                             cache_dir=str(cache_dir or workdir / "cache"),
                             **(app_timings(source, config["basis"]) if timings is None
                                else timings))
        metabolite_names = app.names
        if config["macromolecules"]["mode"] in ("auto", "parametric"):
            app = app.with_entries(parametric_mm_basis(cf, dwell, n, components=mm_components,
                                                       echo_time_s=source.echo_time_s))
        if config["macromolecules"].get("lipids", False):
            app = with_lipids(app)
        self.source, self.workdir = source, workdir
        self.app_basis = app
        self.options = FitOptions.from_dict(config["fitting"])
        self.preprocessing = config["preprocessing"]
        self.problem = M.build_problem(app, dwell, n, cf, self.options, None)
        self.lcm_basis = lcmodel_basis_file(basis, workdir / f"{source.label}.BASIS",
                                            source.echo_time_s) if use_lcmodel else None
        self.metabolite_names = list(metabolite_names)
        own = app.subset(self.metabolite_names)
        self.lcm_app_basis = lcmodel_basis_file(own, workdir / f"{source.label}_app.BASIS",
                                                source.echo_time_s) if use_lcmodel else None

    def fit_app(self, spectrum: ValidationSpectrum):
        from pipeline.fitting import fit_spectrum
        from pipeline.preprocess.water import remove_residual_water

        start = time.perf_counter()
        fid = spectrum.fid
        if self.preprocessing.get("residual_water", True):
            fid, _ = remove_residual_water(
                fid, spectrum.dwell_s, spectrum.cf_mhz,
                window_ppm=self.preprocessing["residual_water_window_ppm"],
                n_components=self.preprocessing["residual_water_components"])
        fit = fit_spectrum(fid, self.app_basis, spectrum.dwell_s, spectrum.cf_mhz,
                           self.options, problem=self.problem)
        return fit, time.perf_counter() - start

    def compare(self, spectrum: ValidationSpectrum, names=COMPARED, stem: str = "spec") -> dict:
        """Relative errors (estimate/truth - 1; a failed estimate counts as -1) of each ratio
        for both programs, residual SD / noise SD and seconds, as one flat row."""
        fit, seconds = self.fit_app(spectrum)
        row = {"source": spectrum.source, "snr": spectrum.params["snr"],
               "seconds_app": seconds, "resid_app": app_residual_ratio(fit, spectrum),
               "stiffness_app": fit.extra.get("baseline_stiffness", float("nan")),
               "seconds_lcm": float("nan"), "resid_lcm": float("nan"),
               "seconds_lcmown": float("nan"), "resid_lcmown": float("nan")}
        lcm = None
        if self.lcm_basis is not None:
            lcm = run_lcmodel(self.workdir, self.lcm_basis, spectrum.fid, spectrum.dwell_s,
                              spectrum.cf_mhz, self.source.echo_time_s, stem=stem)
            row["seconds_lcm"] = lcm.seconds
            row["resid_lcm"] = lcmodel_residual_ratio(lcm, spectrum)
        lcm_own = None
        if self.lcm_app_basis is not None:
            lcm_own = run_lcmodel(self.workdir, self.lcm_app_basis, spectrum.fid,
                                  spectrum.dwell_s, spectrum.cf_mhz, self.source.echo_time_s,
                                  stem=f"{stem}_own")
            row["seconds_lcmown"] = lcm_own.seconds
            row["resid_lcmown"] = lcmodel_residual_ratio(lcm_own, spectrum)
        for name in names:
            if not all(m in spectrum.truth_mm for m in SUMS.get(name, (name,))):
                continue
            truth = spectrum.truth_ratio("tCr") / spectrum.truth_ratio("tNAA") \
                if name == "tCr" else spectrum.truth_ratio(name)
            row[f"{name}_app"] = relative_error(app_ratio(fit, name), truth)
            if lcm is not None:
                row[f"{name}_lcm"] = relative_error(lcm_ratio_or_inverse(lcm, name), truth)
            if lcm_own is not None:
                row[f"{name}_lcmown"] = relative_error(lcm_ratio_or_inverse(lcm_own, name),
                                                       truth)
        return row


def app_ratio(fit, name: str) -> float:
    """The app's ratio to tCr (tCr: tCr/tNAA); NaN when the denominator is not positive."""
    def value(n):
        if n in fit.names or n in fit.sums:
            return fit.amplitude(n)
        return sum(fit.amplitude(m) for m in SUMS.get(n, ()) if m in fit.names)
    numerator, denominator = (value("tCr"), value("tNAA")) if name == "tCr" else \
        (value(name), value("tCr"))
    return numerator / denominator if denominator > 0 else float("nan")


def lcm_ratio_or_inverse(result: LCModelResult, name: str) -> float:
    if name == "tCr":
        naa = lcmodel_ratio(result.concentrations, "tNAA")
        return 1.0 / naa if naa > 0 else float("nan")
    return lcmodel_ratio(result.concentrations, name)


def app_residual_ratio(fit, spectrum: ValidationSpectrum) -> float:
    ppm = ppm_axis(spectrum.fid.size, spectrum.dwell_s, spectrum.cf_mhz)
    window = (ppm >= RESIDUAL_PPM[0]) & (ppm <= RESIDUAL_PPM[1])
    return float(np.std(to_spectrum(fit.residual_fid)[window].real) / spectrum.noise_sd)


def relative_error(estimate: float, truth: float) -> float:
    """estimate/truth - 1; a failed estimate (not finite) counts as -100 %."""
    return estimate / truth - 1.0 if np.isfinite(estimate) else -1.0


def rms(values) -> float:
    values = np.asarray(values, float)
    return float(np.sqrt(np.mean(values ** 2))) if values.size else float("nan")
