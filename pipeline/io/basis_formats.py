"""Basis-set files: read LCModel ``.BASIS``, folders of LCModel ``.RAW``, jMRUI text and plain
text; read and write the project's JSON form; write LCModel ``.BASIS``.

Every reader returns a :class:`~pipeline.basis.Basis` in the project convention
(``pipeline/spectra.py``). Sources disagree on the frequency sign and on referencing, so after
reading (JSON excepted, which is ours and lossless) :func:`read_basis` decides from the data:

1. *domain*: LCModel ``.BASIS`` stores the spectrum (index 0 = receiver frequency, circularly
   shifted by ``ISHIFT`` points); ``.RAW``, jMRUI and plain-text files store FIDs. The data
   must agree: an FID starts at its largest values, a spectrum does not (:func:`check_domain`).
2. *conjugation*, per entry: metabolite signal lies at 0.5-4.2 ppm; an entry whose energy sits
   in the mirror band about the reference is conjugated (:func:`basis_tools.orient_fids`).
3. *reference peak*: a distinct peak at 0 ppm (TMS/DSS) is fitted and subtracted.
4. *referencing*: the known singlets (NAA 2.008, Cr 3.027, ... ppm) are measured and the basis
   shifted by their median offset when it exceeds 0.005 ppm.

Each decision is recorded in ``basis.provenance``. Scale: values as stored in the file
(``provenance['scale']``); LCModel's CONC/TRAMP/VOLUME per entry are kept in provenance.

The dialects live in :mod:`pipeline.io.basis_lcmodel` (LCModel) and :mod:`pipeline.io.basis_text`
(jMRUI, plain text, JSON); their public names are importable from here too.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np

from ..basis import Basis
from ..spectra import H1_REFERENCE_PPM
from . import basis_tools
from .basis_lcmodel import (  # noqa: F401  (public names re-exported from this module)
    GRID_FILE_SUFFIXES, BasisFormatError, _check_lengths, _files_in, _grid, _read_text,
    parse_lcmodel_file, parse_namelist_body, read_lcmodel_basis_raw, read_lcmodel_raw,
    read_lcmodel_raw_folder, write_lcmodel_basis)
from .basis_text import (  # noqa: F401  (public names re-exported from this module)
    JSON_FORMAT_NAME, JSON_FORMAT_VERSION, _is_jmrui, _jmrui_grid, read_jmrui_text,
    read_json_basis, read_text_fid, read_text_folder, write_json_basis)
from .files import file_sha256


# --- the one entry point -----------------------------------------------------------------

def _sniff(path: Path) -> str:
    if path.is_dir():
        entries = [p.suffix.lower() for p in _files_in(path, (".raw", ".txt"))]
        if ".raw" in entries:
            return "raw_folder"
        if ".txt" in entries:
            return "text_folder"
        raise BasisFormatError(f"{path}: folder holds no .RAW or .txt basis files")
    if not path.is_file():
        raise BasisFormatError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".raw", ".h2o"):
        return "raw_file"
    if suffix == ".txt":
        return "jmrui_file" if _is_jmrui(path) else "text_file"
    head = _read_text(path, 4096)
    if re.search(r"[$&](SEQPAR|BASIS1)\b", head, re.IGNORECASE):
        return "lcmodel_basis"
    if head.lstrip().startswith("{"):
        return "json"
    raise BasisFormatError(f"{path}: unrecognised basis format")


def _read_single(path: Path, kind: str, dwell_s, cf_mhz) -> Basis:
    if kind == "raw_file":
        fid, header = read_lcmodel_raw(path)
        dwell, cf, sources = _grid(path.parent, dwell_s, cf_mhz, header.get("HZPPPM"), path)
        fmt, fids = "LCModel .RAW file", [fid]
    elif kind == "jmrui_file":
        fids, header = read_jmrui_text(path)
        file_dwell, file_cf = _jmrui_grid(header)
        dwell, cf, sources = _grid(path.parent, dwell_s or file_dwell, cf_mhz or file_cf, None,
                                   path)
        fmt = "jMRUI text file"
    else:
        fids = [read_text_fid(path)]
        dwell, cf, sources = _grid(path.parent, dwell_s, cf_mhz, None, path)
        fmt = "plain-text file"
    names = [path.stem] if len(fids) == 1 else [f"{path.stem}_{i + 1}" for i in range(len(fids))]
    _check_lengths(path, names, fids)
    prov = {"source": str(path), "format": fmt, "domain": "time (FID)",
            "scale": "as stored in the file", "grid_source": sources}
    return Basis(names, np.array(fids), dwell, cf, H1_REFERENCE_PPM, provenance=prov)


def basis_files(path) -> list[Path]:
    """The files a basis at ``path`` is read from: itself (a ``.BASIS`` or JSON file, or a
    folder, all of whose files count), and for a single ``.RAW``, jMRUI or plain-text file
    also the makebasis inputs, control files and ``.BASIS`` beside it
    (:data:`GRID_FILE_SUFFIXES`), where its dwell time and frequency are looked up when it does
    not state them: editing one of those changes the basis read."""
    path = Path(path)
    try:
        alone = path.is_dir() or _sniff(path) in ("json", "lcmodel_basis")
    except BasisFormatError:  # unreadable or not a basis: reading it says so
        alone = True
    if alone:
        return [path]
    return [path] + [p for p in _files_in(path.parent, GRID_FILE_SUFFIXES)
                     if p.name != path.name]


def basis_sha256(path) -> str:
    """SHA-256 (hex) identifying a basis by everything it is read from (:func:`basis_files`):
    the file's (or folder's, :func:`~pipeline.io.files.file_sha256`) own when that is all,
    else of each file's name and content in that order. Raises OSError when one cannot be
    read."""
    files = basis_files(path)
    if len(files) == 1:
        return file_sha256(files[0])
    digest = hashlib.sha256()
    for item in files:
        digest.update(item.name.encode() + b"\0" + bytes.fromhex(file_sha256(item)))
    return digest.hexdigest()


def head_ratio(fids: np.ndarray) -> np.ndarray:
    """max |x[:4]| / max |x| per row: about 1 for FIDs (signal starts at its largest and
    decays), small for spectra (index 0 is the receiver frequency, where a metabolite basis
    has almost nothing)."""
    mag = np.abs(np.atleast_2d(fids))
    return mag[:, :4].max(axis=1) / np.maximum(mag.max(axis=1), 1e-300)


def check_domain(basis: Basis, stored_as_spectrum: bool) -> Basis:
    """Confirm from the data that the format's domain (time or frequency) is right.

    The FIDs as read must look like FIDs (median :func:`head_ratio` >= 0.5). If they do not
    and the other reading does (median >= 0.8), the other reading is used. The measured
    ratios and the decision go into ``provenance['domain_check']``.
    """
    alternative = np.fft.fft(basis.fids, axis=-1) if stored_as_spectrum \
        else np.fft.ifft(basis.fids, axis=-1)
    as_read, other = float(np.median(head_ratio(basis.fids))), \
        float(np.median(head_ratio(alternative)))
    switch = as_read < 0.5 and other >= 0.8
    prov = dict(basis.provenance)
    prov["domain_check"] = {"median_head_ratio_as_read": as_read,
                            "median_head_ratio_other_domain": other,
                            "decision": "other domain (data disagree with the format)"
                            if switch else "format's domain confirmed by the data"}
    fids = alternative if switch else basis.fids
    return Basis(basis.names, fids, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                 basis.nucleus, prov)


def read_basis_as_stored(path, dwell_s: float | None = None,
                         cf_mhz: float | None = None) -> Basis:
    """Any supported basis source, FIDs as the file implies (domain checked against the data,
    :func:`check_domain`), no convention or referencing decisions applied."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "json":
        return read_json_basis(path)
    if kind == "lcmodel_basis":
        return check_domain(read_lcmodel_basis_raw(path), stored_as_spectrum=True)
    if kind == "raw_folder":
        basis = read_lcmodel_raw_folder(path, dwell_s, cf_mhz)
    elif kind == "text_folder":
        basis = read_text_folder(path, dwell_s, cf_mhz)
    else:
        basis = _read_single(path, kind, dwell_s, cf_mhz)
    return check_domain(basis, stored_as_spectrum=False)


def _check_option(name: str, value: str, allowed: tuple) -> None:
    """A caller's option must be one of ``allowed`` (a programming error, not a file's)."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}")


def standardise_basis(basis: Basis, convention: str = "auto", remove_reference: bool = True,
                      referencing: str = "auto") -> Basis:
    """Apply the data-driven decisions (conjugation, 0 ppm reference removal, referencing)."""
    _check_option("convention", convention, ("auto", "as_stored", "conjugate"))
    _check_option("referencing", referencing, ("auto", "as_stored"))
    prov = dict(basis.provenance)
    fids = basis.fids
    if convention == "auto":
        fids, conjugated, scores = basis_tools.orient_fids(fids, basis.dwell_s, basis.cf_mhz,
                                                           basis.ref_ppm)
        prov["convention"] = {
            "decision": "per entry from the data: signal must lie in 0.5-4.2 ppm rather than "
                        "its mirror image about the reference",
            "conjugated": dict(zip(basis.names, conjugated)),
            "log10_band_ratio": dict(zip(basis.names, scores))}
    elif convention == "conjugate":
        fids = np.conj(fids)
        prov["convention"] = {"decision": "conjugated on request"}
    else:
        prov["convention"] = {"decision": "as stored, on request"}
    out = Basis(basis.names, fids, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                basis.nucleus, prov)
    if remove_reference:
        out = basis_tools.remove_reference_peak(out, 0.0, only_if_present=True)
    if referencing == "auto":
        out = basis_tools.reference_basis(out)
    return out


def read_basis(path, dwell_s: float | None = None, cf_mhz: float | None = None, *,
               convention: str = "auto", remove_reference: bool = True,
               referencing: str = "auto") -> Basis:
    """Read a basis from any supported source into the project convention.

    ``path``: an LCModel ``.BASIS`` file, a folder of LCModel ``.RAW`` files, a folder of jMRUI
    or plain-text ``.txt`` files, a single such file, or the project's ``.json``. ``dwell_s``
    and ``cf_mhz`` are needed only where the files do not state them (plain text, bare
    ``.RAW``). JSON is returned exactly as written; every other source goes through
    :func:`standardise_basis` (decisions recorded in ``provenance``).
    """
    path = Path(path)
    basis = read_basis_as_stored(path, dwell_s, cf_mhz)
    if _sniff(path) == "json":
        return basis
    if not math.isfinite(np.abs(basis.fids).sum()):
        raise BasisFormatError(f"{path}: basis contains non-finite values")
    _check_option("convention", convention, ("auto", "as_stored", "conjugate"))
    _check_option("referencing", referencing, ("auto", "as_stored"))
    try:
        return standardise_basis(basis, convention, remove_reference, referencing)
    except ValueError as exc:  # the data cannot be measured (e.g. a grid without 0.5-4.2 ppm)
        raise BasisFormatError(f"{path}: cannot place the basis in the project convention "
                               f"({exc}); check its dwell time and frequency") from exc
