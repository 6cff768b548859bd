"""Measured macromolecule (MM) spectra as a one-entry basis named "MM".

Sources:

* Philips SDAT/SPAR of a metabolite-nulled inversion-recovery acquisition (e.g.
  ``osprey_3t/.../*PRESS-Inverted_TI-600*``), read with spec2nii's Philips reader functions;
* Varian ``.fid`` folders (``fid`` + ``procpar``), e.g. the MM consensus data collection
  (``mm_consensus/MM_database``). Their ``text`` files hold only the acquisition comment (no
  spectrum), and spec2nii's Varian reader fails on them, so they are read by
  :mod:`pipeline.io.varian` (the stored traces averaged);
* an entry named ``Mac``/``MM`` (or ``MM_*``) of any basis :func:`basis_formats.read_basis`
  reads, or the entry given by ``entry=``.

Processing, each step recorded in ``provenance``: a residual water line at 4.65 ppm fitted
and removed, conjugation detected from the data (MM signal lies in 0.5-4.2 ppm), a 0 ppm
reference line removed, zero-order phase set so that FID[0] (the integral of the whole
spectrum) is real and positive, signal outside ``band_ppm`` (residual water, reference,
noise) removed by a raised-cosine window, optional referencing of the 0.9 ppm peak, optional
resampling onto the data's grid.

Scale: the lines within +/-0.14 ppm of the 0.9 ppm peak hold 3 protons
(:func:`line_area_protons`), i.e. the MM09 amplitude of the parametric LCModel MM set
(``pipeline.simulate.macromolecules``), so a fitted MM amplitude of 1 means "as much MM09 as
LCModel's default".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..basis import Basis
from ..spectra import H1_REFERENCE_PPM, fid_to_spectrum, spectrum_to_fid
from . import basis_tools
from .basis_formats import BasisFormatError, read_basis
from .varian import (VarianError, arrayed_blocks_text, differing_array_parameters,
                     first_values, read_fid_folder)

MM_ENTRY_NAMES = ("mm", "mac", "macromolecules")
MM09_WINDOW_PPM = (0.7, 1.1)
MM09_HALF_WIDTH_PPM = 0.14
MM09_PROTONS = 3.0
DEFAULT_BAND_PPM = (0.2, 4.4)
BAND_TAPER_PPM = 0.1


# --- Varian ------------------------------------------------------------------------------

def read_varian_fid(folder) -> tuple[np.ndarray, float, float, dict]:
    """Averaged complex FID (the mean of the stored traces), dwell time (s), frequency (MHz)
    and procpar first values of a Varian ``.fid`` folder (:mod:`pipeline.io.varian`).
    BasisFormatError when its blocks are the elements of an array over a parameter other
    than ``nt`` (``varian.differing_array_parameters``): they would be averaged into one MM."""
    try:
        fid, params = read_fid_folder(folder)
        dwell_s, cf_mhz = 1.0 / float(params["sw"][0]), float(params["sfrq"][0])
    except VarianError as exc:
        raise BasisFormatError(str(exc)) from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BasisFormatError(f"{Path(folder) / 'procpar'}: no numeric sw/sfrq ({exc})") from exc
    arrayed = differing_array_parameters(params, fid.traces.shape[0])
    if arrayed:  # e.g. an MM arrayed over the inversion time: its blocks are not repeats
        record = {"blocks": fid.traces.shape[0], "parameters": arrayed}
        raise BasisFormatError(f"{arrayed_blocks_text(record, folder)}: give one element as "
                               "the measured MM (a .fid folder of one block)")
    traces = fid.traces.reshape(-1, fid.traces.shape[-1])
    return traces.mean(axis=0), dwell_s, cf_mhz, first_values(params)


# --- Philips -----------------------------------------------------------------------------

def _sdat_spar_pair(path: Path) -> tuple[Path, Path]:
    stem = path.with_suffix("")
    pair = {}
    for cand in path.parent.iterdir():
        if cand.with_suffix("") == stem and cand.suffix.lower() in (".sdat", ".spar"):
            pair[cand.suffix.lower()] = cand
    if set(pair) != {".sdat", ".spar"}:
        raise BasisFormatError(f"{path}: needs both .SDAT and .SPAR beside each other")
    return pair[".sdat"], pair[".spar"]


def read_philips_sdat(path) -> tuple[np.ndarray, float, float, dict]:
    """Averaged FID (as stored), dwell time (s), frequency (MHz) and SPAR parameters of a
    Philips SDAT/SPAR pair (``path`` may name either file)."""
    from spec2nii.Philips.philips import read_sdat, read_spar
    sdat, spar = _sdat_spar_pair(Path(path))
    params = read_spar(spar)
    try:
        samples, rows = int(params["samples"]), int(params["rows"])
        dwell_s = 1.0 / float(params["sample_frequency"])
        cf_mhz = float(params["synthesizer_frequency"]) / 1e6
    except (KeyError, ValueError) as exc:
        raise BasisFormatError(f"{spar}: missing samples/rows/frequencies ({exc})") from exc
    data = np.asarray(read_sdat(sdat, samples, rows), dtype=complex)
    fid = data.reshape(samples, rows).mean(axis=1) if rows > 1 else data.reshape(samples)
    return fid, dwell_s, cf_mhz, dict(params)


# --- processing --------------------------------------------------------------------------

def _band_window(ppm: np.ndarray, band_ppm, taper_ppm: float = BAND_TAPER_PPM) -> np.ndarray:
    low, high = min(band_ppm), max(band_ppm)
    rise = np.clip((ppm - low) / taper_ppm, 0, 1)
    fall = np.clip((high - ppm) / taper_ppm, 0, 1)
    return 0.5 * (1 - np.cos(np.pi * rise)) * 0.5 * (1 - np.cos(np.pi * fall))


def mm09_peak_ppm(basis: Basis, name: str = "MM") -> float:
    """Position of the highest point of the real spectrum within 0.7-1.1 ppm."""
    ppm = basis.ppm()
    real = fid_to_spectrum(basis.fid(name)).real
    inside = np.flatnonzero((ppm >= MM09_WINDOW_PPM[0]) & (ppm <= MM09_WINDOW_PPM[1]))
    return float(ppm[inside[np.argmax(real[inside])]])


def mm_basis_from_fid(fid: np.ndarray, dwell_s: float, cf_mhz: float, source: str,
                      band_ppm=DEFAULT_BAND_PPM, reference_mm09_ppm: float | None = None,
                      provenance: dict | None = None) -> Basis:
    """The one-entry "MM" basis from a measured MM FID (see the module notes for the steps
    and the scale)."""
    prov = {"source": source, **(provenance or {})}
    # residual water sits at the receiver frequency, where conjugation cannot move it, and
    # its tails would blur the conjugation test: fit it out first
    basis = Basis(["MM"], np.asarray(fid)[None], dwell_s, cf_mhz, H1_REFERENCE_PPM,
                  provenance=prov)
    basis = basis_tools.remove_reference_peak(basis, H1_REFERENCE_PPM, only_if_present=True)
    if "reference_peak_removed" in basis.provenance:
        basis.provenance["water_removed"] = basis.provenance.pop("reference_peak_removed")
    oriented, conjugated, score = basis_tools.orient_fids(basis.fids, dwell_s, cf_mhz)
    basis.provenance["convention"] = {"conjugated": conjugated[0],
                                      "log10_band_ratio": score[0]}
    basis = Basis(["MM"], oriented, dwell_s, cf_mhz, H1_REFERENCE_PPM,
                  provenance=basis.provenance)
    basis = basis_tools.remove_reference_peak(basis, 0.0, only_if_present=True)
    ppm = basis.ppm()
    spectrum = fid_to_spectrum(basis.fids[0])
    # FID[0] is the integral of the whole spectrum: real and positive for absorption lines
    phase_rad = float(np.angle(basis.fids[0][0]))
    spectrum = spectrum * np.exp(-1j * phase_rad) * _band_window(ppm, band_ppm)
    mm_fid = spectrum_to_fid(spectrum)
    prov = dict(basis.provenance)
    prov["zero_order_phase_deg"] = float(np.rad2deg(phase_rad))
    prov["band_ppm"] = [float(min(band_ppm)), float(max(band_ppm))]
    basis = Basis(["MM"], mm_fid[None], dwell_s, cf_mhz, H1_REFERENCE_PPM, provenance=prov)
    if reference_mm09_ppm is not None:
        shift = reference_mm09_ppm - mm09_peak_ppm(basis)
        basis.fids = basis_tools.shift_fids_ppm(basis.fids, dwell_s, cf_mhz, shift)
        basis.provenance["mm09_shift_ppm"] = shift
    return _scale_to_mm09(basis)


def line_area_protons(fid: np.ndarray, mask: np.ndarray) -> float:
    """Proton count of the lines within ``mask`` (bins of ``fid_to_spectrum``): twice the real
    area per point of the spectrum of the FID with its t = 0 sample halved. (The DFT weighs
    that sample fully, which puts half of every line's area into a flat offset; a line of
    FID[0] = A has area A/2 per point without the offset.)"""
    halved = np.array(fid, dtype=complex)
    halved[0] *= 0.5
    return float(2 * fid_to_spectrum(halved).real[mask].sum() / halved.size)


def _scale_to_mm09(basis: Basis) -> Basis:
    peak = mm09_peak_ppm(basis)
    window = np.abs(basis.ppm() - peak) <= MM09_HALF_WIDTH_PPM
    area_protons = line_area_protons(basis.fids[0], window)
    if area_protons <= 0:
        raise ValueError(f"{basis.provenance.get('source')}: no positive MM peak near 0.9 ppm; "
                         "not a macromolecule spectrum?")
    factor = MM09_PROTONS / area_protons
    prov = dict(basis.provenance)
    prov.update({"mm09_peak_ppm": peak, "scale_factor": float(factor),
                 "scale": f"lines within +/-{MM09_HALF_WIDTH_PPM} ppm of the 0.9 ppm peak "
                          f"hold {MM09_PROTONS} protons (LCModel MM09 amplitude)"})
    return Basis(["MM"], basis.fids * factor, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                 basis.nucleus, prov)


def mm_entry_name(names) -> str:
    """The name of the macromolecule entry of a basis (``Mac``, ``MM``, ``MM_*``)."""
    for name in names:
        low = name.strip().lower()
        if low in MM_ENTRY_NAMES or low.startswith(("mm_", "mac_")):
            return name
    raise KeyError(f"no macromolecule entry (Mac/MM) among {list(names)}")


# --- entry point -------------------------------------------------------------------------

def read_measured_mm(path, dwell_s: float | None = None, n_points: int | None = None,
                     cf_mhz: float | None = None, *, entry: str | None = None,
                     band_ppm=DEFAULT_BAND_PPM, reference_mm09_ppm: float | None = None,
                     ref_ppm: float | None = None, source_dwell_s: float | None = None,
                     source_cf_mhz: float | None = None) -> Basis:
    """A measured MM spectrum as a one-entry Basis named "MM".

    ``path``: a Philips ``.SDAT``/``.SPAR``, a Varian ``.fid`` folder, or any basis
    :func:`read_basis` reads (its ``Mac``/``MM`` entry, or ``entry``). With ``dwell_s``,
    ``n_points`` and ``cf_mhz`` the result is resampled onto that grid
    (:func:`basis_tools.resample_basis`, which refuses a different field strength).
    ``source_dwell_s``/``source_cf_mhz`` are passed to :func:`read_basis` for basis sources
    that do not state their grid (plain text, bare ``.RAW``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".sdat", ".spar"):
        fid, dwell, cf, params = read_philips_sdat(path)
        basis = mm_basis_from_fid(fid, dwell, cf, str(path), band_ppm, reference_mm09_ppm,
                                  {"format": "Philips SDAT/SPAR", "domain": "time (FID)",
                                   "echo_time_s": float(params.get("echo_time", 0)) / 1000})
    elif path.is_dir() and (path / "procpar").is_file():
        fid, dwell, cf, params = read_varian_fid(path)
        basis = mm_basis_from_fid(fid, dwell, cf, str(path), band_ppm, reference_mm09_ppm,
                                  {"format": "Varian fid", "domain": "time (FID)",
                                   "grid_note": "receiver assumed on water (4.65 ppm); the "
                                                "procpar rfl/rfp referencing is not used"})
    else:
        source = read_basis(path, source_dwell_s, source_cf_mhz)
        try:
            name = entry or mm_entry_name(source.names)
            source.index(name)
        except KeyError as exc:  # the caller's error type: the file lacks the entry
            raise BasisFormatError(f"{path}: {exc.args[0]}") from None
        basis = mm_basis_from_fid(source.fid(name), source.dwell_s, source.cf_mhz,
                                  f"{path} [{name}]", band_ppm, reference_mm09_ppm,
                                  {"format": source.provenance.get("format"),
                                   "basis_decisions": {k: source.provenance[k] for k in
                                                       ("convention", "referencing")
                                                       if k in source.provenance}})
    if dwell_s is not None and n_points is not None and cf_mhz is not None:
        basis = basis_tools.resample_basis(basis, dwell_s, n_points, cf_mhz, ref_ppm=ref_ppm)
    elif any(v is not None for v in (dwell_s, n_points, cf_mhz)):
        raise ValueError("read_measured_mm: give all of dwell_s, n_points and cf_mhz to "
                         "resample, or none")
    return basis
