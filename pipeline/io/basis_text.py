"""jMRUI text exports, plain two-column text FIDs (files and folders of them), and the
project's lossless JSON basis form (read and write).

Readers return data as stored; :func:`pipeline.io.basis_formats.read_basis` makes the
convention decisions (JSON excepted, which is ours and read back bit-exactly).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from ..basis import Basis
from ..spectra import H1_REFERENCE_PPM
from .basis_lcmodel import (_FLOAT_RE, BasisFormatError, _check_lengths, _files_in,
                            _fortran_float, _grid, _read_text)
from .json_values import json_dumps, to_json_value

JSON_FORMAT_NAME = "dmrs-bids-basis"
JSON_FORMAT_VERSION = 1


# --- jMRUI text and plain text -----------------------------------------------------------

def read_jmrui_text(path) -> tuple[list[np.ndarray], dict]:
    """Signals (time domain, as stored) and header of a jMRUI ``.txt`` export."""
    path = Path(path)
    lines = _read_text(path).splitlines()
    if not lines or not lines[0].strip().lower().startswith("jmrui data textfile"):
        raise BasisFormatError(f"{path}: not a jMRUI text file")
    header, signals, current = {}, [], None
    for line in lines[1:]:
        if re.match(r"\s*Signal \d+ out of \d+", line):
            current = []
            signals.append(current)
        elif current is None:
            if ":" in line:
                key, _, value = line.partition(":")
                header[key.strip()] = value.strip()
        else:
            numbers = _FLOAT_RE.findall(line)
            if len(numbers) >= 2:
                current.append(_fortran_float(numbers[0]) + 1j * _fortran_float(numbers[1]))
    if not signals or not signals[0]:
        raise BasisFormatError(f"{path}: jMRUI file without signal data")
    return [np.array(s) for s in signals], header


def _jmrui_grid(header: dict) -> tuple[float | None, float | None]:
    """(dwell_s, cf_mhz) from a jMRUI header (SamplingInterval in ms, TransmitterFrequency in
    Hz); None where the header lacks one."""
    def number(key):
        try:
            return float(header[key])
        except (KeyError, ValueError):
            return None
    dwell_ms, cf_hz = number("SamplingInterval"), number("TransmitterFrequency")
    return (dwell_ms / 1000.0 if dwell_ms else None), (cf_hz / 1e6 if cf_hz else None)


def _is_jmrui(path: Path) -> bool:
    first_line = _read_text(path, 200).split("\n", 1)[0]
    return first_line.strip().lower().startswith("jmrui data textfile")


def read_text_fid(path) -> np.ndarray:
    """A plain-text FID: one complex point per line, real and imaginary columns."""
    path = Path(path)
    try:
        table = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise BasisFormatError(f"{path}: not a plain-text table of numbers ({exc})") from exc
    if table.shape[1] < 2:
        raise BasisFormatError(f"{path}: expected real and imaginary columns")
    return table[:, 0] + 1j * table[:, 1]


def read_text_folder(folder, dwell_s: float | None = None, cf_mhz: float | None = None) -> Basis:
    """A folder of ``.txt`` basis files, jMRUI exports or plain two-column FIDs (name = stem).

    jMRUI headers give dwell and frequency; plain text has none: pass ``dwell_s``/``cf_mhz``.
    """
    folder = Path(folder)
    files = _files_in(folder, (".txt",))
    if not files:
        raise BasisFormatError(f"{folder}: no .txt files")
    names, fids, grids = [], [], set()
    kinds = {_is_jmrui(f) for f in files}
    if len(kinds) > 1:
        raise BasisFormatError(f"{folder}: mixes jMRUI and plain-text files")
    jmrui = kinds.pop()
    for file in files:
        if jmrui:
            signals, header = read_jmrui_text(file)
            grids.add(_jmrui_grid(header))
            stems = [file.stem] if len(signals) == 1 else \
                [f"{file.stem}_{i + 1}" for i in range(len(signals))]
            names.extend(stems)
            fids.extend(signals)
        else:
            names.append(file.stem)
            fids.append(read_text_fid(file))
    _check_lengths(folder, names, fids)
    sources = {}
    if jmrui:
        if len(grids) != 1:
            raise BasisFormatError(f"{folder}: jMRUI files disagree on dwell/frequency {grids}")
        file_dwell, file_cf = grids.pop()
        if dwell_s is None and file_dwell:
            dwell_s, sources["dwell_s"] = file_dwell, "jMRUI header"
        if cf_mhz is None and file_cf:
            cf_mhz, sources["cf_mhz"] = file_cf, "jMRUI header"
    dwell_s, cf_mhz, more = _grid(folder, dwell_s, cf_mhz)
    sources = {**more, **sources}
    prov = {"source": str(folder), "format": "jMRUI text folder" if jmrui else
            "plain-text folder", "domain": "time (FID)", "scale": "as stored in the files",
            "grid_source": sources}
    return Basis(names, np.array(fids), dwell_s, cf_mhz, H1_REFERENCE_PPM, provenance=prov)


# --- JSON --------------------------------------------------------------------------------

def write_json_basis(basis: Basis, path) -> None:
    """Lossless JSON: names, complex FIDs (real and imaginary lists), dwell, cf, reference,
    nucleus, provenance. Floats are written with ``repr`` precision, so reading is bit-exact."""
    doc = {"format": JSON_FORMAT_NAME, "version": JSON_FORMAT_VERSION,
           "names": list(basis.names), "dwell_s": float(basis.dwell_s),
           "cf_mhz": float(basis.cf_mhz), "ref_ppm": float(basis.ref_ppm),
           "nucleus": basis.nucleus, "n_points": int(basis.n_points),
           "fids_real": basis.fids.real.tolist(), "fids_imag": basis.fids.imag.tolist(),
           "provenance": to_json_value(basis.provenance)}
    Path(path).write_text(json_dumps(doc, default=str))


def _json_number(doc: dict, key: str, path: Path, positive: bool) -> float:
    """A finite (and, if asked, positive) number of the JSON document, or BasisFormatError."""
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or (positive and value <= 0):
        raise BasisFormatError(f"{path}: {key} {value!r} is not a "
                               f"{'positive ' if positive else ''}finite number")
    return float(value)


def _json_names(doc: dict, path: Path) -> list[str]:
    names = doc["names"]
    if not isinstance(names, list) or not names or \
            not all(isinstance(n, str) and n for n in names):
        raise BasisFormatError(f"{path}: names must be a non-empty list of texts, not {names!r}")
    if len(set(names)) != len(names):
        raise BasisFormatError(f"{path}: basis names are not unique: {names}")
    return names


def _json_fids(doc: dict, n_names: int, path: Path) -> np.ndarray:
    """Complex FIDs (n_names, n_points) from the real and imaginary tables."""
    parts = []
    for key in ("fids_real", "fids_imag"):
        try:
            table = np.array(doc[key], dtype=float)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BasisFormatError(f"{path}: {key} is not a table of numbers ({exc})") from None
        if table.ndim != 2 or table.shape[0] != n_names or table.shape[1] == 0:
            raise BasisFormatError(f"{path}: {key} has shape {table.shape}, expected "
                                   f"({n_names} names, n_points >= 1)")
        if not np.all(np.isfinite(table)):
            raise BasisFormatError(f"{path}: {key} holds non-finite values")
        parts.append(table)
    if parts[0].shape != parts[1].shape:
        raise BasisFormatError(f"{path}: fids_real {parts[0].shape} and fids_imag "
                               f"{parts[1].shape} differ in shape")
    n_points = doc.get("n_points", parts[0].shape[1])
    if n_points != parts[0].shape[1]:
        raise BasisFormatError(f"{path}: n_points {n_points!r} but the FIDs have "
                               f"{parts[0].shape[1]} points")
    return parts[0] + 1j * parts[1]


def read_json_basis(path) -> Basis:
    """Inverse of :func:`write_json_basis` (bit-exact); the document's structure and types
    are checked, every problem a BasisFormatError naming the file."""
    path = Path(path)
    try:
        doc = json.loads(_read_text(path))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BasisFormatError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT_NAME:
        raise BasisFormatError(f"{path}: not a {JSON_FORMAT_NAME} JSON file (a JSON object "
                               f"with \"format\": \"{JSON_FORMAT_NAME}\")")
    missing = [k for k in ("names", "dwell_s", "cf_mhz", "fids_real", "fids_imag") if k not in doc]
    if missing:
        raise BasisFormatError(f"{path}: missing keys {missing}")
    names = _json_names(doc, path)
    fids = _json_fids(doc, len(names), path)
    dwell_s = _json_number(doc, "dwell_s", path, positive=True)
    cf_mhz = _json_number(doc, "cf_mhz", path, positive=True)
    ref_ppm = _json_number(doc, "ref_ppm", path, positive=False) if "ref_ppm" in doc \
        else H1_REFERENCE_PPM
    nucleus, provenance = doc.get("nucleus", "1H"), doc.get("provenance", {})
    if not isinstance(nucleus, str) or not isinstance(provenance, dict):
        raise BasisFormatError(f"{path}: nucleus must be a text and provenance an object")
    return Basis(names, fids, dwell_s, cf_mhz, ref_ppm, nucleus, provenance)
