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
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from ..basis import Basis
from ..spectra import H1_REFERENCE_PPM
from . import basis_tools
from .json_values import to_json_value

JSON_FORMAT_NAME = "dmrs-bids-basis"
JSON_FORMAT_VERSION = 1

_FLOAT_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?")
_TOKEN_RE = re.compile(
    r"'(?:[^']|'')*'"                   # single-quoted string, '' escapes a quote
    r'|"(?:[^"]|"")*"'                  # double-quoted string
    r"|(?P<key>[A-Za-z_][\w%]*(?:\([^)]*\))?)\s*="  # key =
    r"|[^\s,=]+")                       # bare value
_SECTION_START_RE = re.compile(r"^\s*[$&](?P<name>[A-Za-z]\w*)\b(?P<rest>.*)$")
_SECTION_END_RE = re.compile(r"[$&]END\b", re.IGNORECASE)


class BasisFormatError(ValueError):
    """A basis file that cannot be read; the message names the file and the problem."""


def _read_text(path: Path, limit: int = -1) -> str:
    """The file's text (undecodable bytes replaced; the first ``limit`` characters if given)."""
    try:
        with open(path, errors="replace") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise BasisFormatError(f"{path}: cannot read ({exc})") from exc


def _files_in(folder: Path, suffixes: tuple) -> list[Path]:
    """Files of ``folder`` whose suffix (lower case) is one of ``suffixes``, sorted."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    except OSError as exc:
        raise BasisFormatError(f"{folder}: cannot list the folder ({exc})") from exc


# --- Fortran namelists -------------------------------------------------------------------

def _fortran_float(token: str) -> float:
    """A number matched by ``_FLOAT_RE`` (Fortran ``D`` exponents allowed)."""
    return float(token.replace("D", "E").replace("d", "e"))


def _namelist_value(token: str):
    if token[0] in "'\"":
        quote = token[0]
        return token[1:-1].replace(quote * 2, quote).strip()
    low = token.lower().strip(".")
    if low in ("t", "true"):
        return True
    if low in ("f", "false"):
        return False
    try:
        number = float(token.replace("D", "E").replace("d", "e"))
    except ValueError:
        return token
    if re.fullmatch(r"[-+]?\d{1,18}", token):
        return int(token)
    return number


def parse_namelist_body(text: str) -> dict:
    """Key/value pairs of a Fortran namelist body (keys upper-cased; lists for many values)."""
    values: dict = {}
    key = None
    for match in _TOKEN_RE.finditer(text):
        if match.group("key"):
            key = match.group("key").upper()
            values[key] = []
        elif key is not None:
            values[key].append(_namelist_value(match.group(0)))
    return {k: (v[0] if len(v) == 1 else (None if not v else v)) for k, v in values.items()}


def _split_end(line: str):
    """(content before an end marker, found) for a namelist line, ignoring quoted text."""
    unquoted = re.sub(r"'(?:[^']|'')*'", lambda m: " " * len(m.group(0)), line)
    match = _SECTION_END_RE.search(unquoted)
    if match:
        return line[:match.start()], True
    stripped = unquoted.rstrip()
    if stripped.endswith("/"):
        return line[:len(stripped) - 1], True
    return line, False


def parse_lcmodel_file(path) -> list[dict]:
    """Namelist sections and the numbers that follow each, in file order.

    Returns ``[{"name": "BASIS", "values": {...}, "data": np.ndarray(float)}, ...]``. Accepts
    ``$NAME``/``&NAME`` openings, ``$END``/``&END``/``/`` closings, end markers on the last
    value line, any spacing around ``=`` and Fortran ``D`` exponents.
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
    sections: list[dict] = []
    body: list[str] | None = None
    data: list[str] = []
    for line in lines:
        if body is None:
            start = _SECTION_START_RE.match(line)
            if start and start.group("name").upper() != "END":
                if sections:
                    sections[-1]["data_lines"] = data
                data = []
                body = []
                sections.append({"name": start.group("name").upper()})
                line = start.group("rest")
            else:
                data.append(line)
                continue
        content, ended = _split_end(line)
        body.append(content)
        if ended:
            sections[-1]["values"] = parse_namelist_body("\n".join(body))
            body = None
    if body is not None:
        raise BasisFormatError(f"{path}: namelist ${sections[-1]['name']} has no $END")
    if sections:
        sections[-1]["data_lines"] = data
    for sec in sections:
        text = "\n".join(sec.pop("data_lines", []))
        sec["data"] = np.array([_fortran_float(x) for x in _FLOAT_RE.findall(text)])
    return sections


def _complex_pairs(values: np.ndarray, path, what: str) -> np.ndarray:
    if values.size % 2:
        raise BasisFormatError(f"{path}: {what} has an odd number of values ({values.size})")
    return values[0::2] + 1j * values[1::2]


def _positive_number(value) -> float | None:
    """``value`` as a float when it is a positive finite number (not a flag), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


# --- LCModel .BASIS ----------------------------------------------------------------------

def read_lcmodel_basis_raw(path) -> Basis:
    """LCModel ``.BASIS`` as stored: FIDs = ifft of the ISHIFT-corrected spectra, no convention
    or referencing decisions (see :func:`read_basis` for those)."""
    path = Path(path)
    sections = parse_lcmodel_file(path)
    by_name = {}
    for sec in sections:
        by_name.setdefault(sec["name"], sec["values"])
    if "BASIS1" not in by_name or "BASIS" not in by_name:
        raise BasisFormatError(f"{path}: not an LCModel .BASIS file (no $BASIS1/$BASIS section)")
    head = by_name["BASIS1"]
    seqpar = by_name.get("SEQPAR", {})
    dwell_s = head.get("BADELT")
    n_data = head.get("NDATAB")
    cf_mhz = seqpar.get("HZPPPM", head.get("HZPPPM"))
    if isinstance(dwell_s, bool) or not isinstance(dwell_s, (int, float)) or \
            _positive_number(cf_mhz) is None:
        raise BasisFormatError(f"{path}: BADELT or HZPPPM missing or not a positive number")
    if _positive_number(dwell_s) is None:
        raise BasisFormatError(f"{path}: BADELT = {dwell_s} is not a positive number (an "
                               "encrypted LCModel basis cannot be read; use a basis made for "
                               "your sequence)")
    names, fids, entries = [], [], []
    for sec in sections:
        if sec["name"] != "BASIS":
            continue
        vals = sec["values"]
        name = str(vals.get("METABO") or vals.get("ID") or f"metab{len(names)}").strip()
        spectrum = _complex_pairs(sec["data"], path, f"entry {name!r}")
        if isinstance(n_data, int) and spectrum.size != n_data:
            raise BasisFormatError(f"{path}: entry {name!r} has {spectrum.size} complex points, "
                                   f"NDATAB = {n_data}")
        if spectrum.size == 0:
            raise BasisFormatError(f"{path}: entry {name!r} has no data")
        ishift = vals.get("ISHIFT") or 0
        if isinstance(ishift, bool) or not isinstance(ishift, int):
            raise BasisFormatError(f"{path}: entry {name!r} has ISHIFT = {ishift!r}, "
                                   "not a whole number")
        if name in names:
            raise BasisFormatError(f"{path}: two entries are named {name!r}")
        fids.append(np.fft.ifft(np.roll(spectrum, -ishift)))
        names.append(name)
        entries.append({k: vals[k] for k in ("ID", "CONC", "TRAMP", "VOLUME", "ISHIFT")
                        if k in vals})
    if not names:
        raise BasisFormatError(f"{path}: no $BASIS entries")
    if len(set(len(f) for f in fids)) != 1:
        raise BasisFormatError(f"{path}: entries have different numbers of points")
    echo_ms = seqpar.get("ECHOT")
    prov = {"source": str(path), "format": "LCModel .BASIS",
            "domain": "frequency (spectrum stored; FID = ifft of the ISHIFT-rolled spectrum)",
            "scale": "as stored in the file",
            "lcmodel": {"SEQPAR": seqpar, "BASIS1": head, "entries": dict(zip(names, entries))}}
    if isinstance(echo_ms, (int, float)) and not isinstance(echo_ms, bool) and echo_ms >= 0:
        prov["echo_time_s"] = echo_ms / 1000.0
    return Basis(names, np.array(fids), float(dwell_s), float(cf_mhz), H1_REFERENCE_PPM,
                 provenance=prov)


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _namelist_text(name: str, values: dict) -> str:
    items = [f" {k} = {_format_value(v)}" for k, v in values.items()]
    return f" ${name}\n" + ",\n".join(items) + "\n $END\n"


def _fortran_e(values: np.ndarray, per_line: int, width: int, digits: int) -> str:
    values = np.where(np.abs(values) < 1e-99, 0.0, values)
    cells = [f"{v:{width}.{digits}E}" for v in values]
    return "".join("".join(cells[i:i + per_line]) + "\n" for i in range(0, len(cells), per_line))


def write_lcmodel_basis(basis: Basis, path, values_per_line: int = 6, width: int = 16,
                        digits: int = 8, echo_time_s: float | None = None,
                        sequence: str = "", fwhm_ppm: float | None = None,
                        title: str | None = None) -> None:
    """Write an LCModel ``.BASIS``: ``$SEQPAR``, ``$BASIS1``, then per entry ``$NMUSED``,
    ``$BASIS`` and its spectrum (``fft`` of the FID, ISHIFT = 0) in ``FMTBAS = (6E16.8)``.

    Nine significant digits per value: a write->read round trip changes each stored value by
    at most 5e-9 of itself. The basis must be in the project convention (as every Basis is).
    """
    path = Path(path)
    if abs(basis.ref_ppm - H1_REFERENCE_PPM) > 1e-9:
        basis = basis_tools.resample_basis(basis, basis.dwell_s, basis.n_points, basis.cf_mhz,
                                           ref_ppm=H1_REFERENCE_PPM)
    if echo_time_s is None:
        echo_time_s = basis.provenance.get("echo_time_s")
    if fwhm_ppm is None:
        fwhm_ppm = basis.provenance.get("fwhm_ppm", -1.0)
    seqpar = {"FWHMBA": float(fwhm_ppm), "HZPPPM": float(basis.cf_mhz),
              "ECHOT": float(echo_time_s) * 1000.0 if echo_time_s is not None else -1.0,
              "SEQ": sequence or str(basis.provenance.get("sequence", ""))}
    head = {"IDBASI": (title or str(basis.provenance.get("title", "dmrs-bids basis")))[:80],
            "FMTBAS": f"({values_per_line}E{width}.{digits})",
            "BADELT": float(basis.dwell_s), "NDATAB": int(basis.n_points)}
    parts = [_namelist_text("SEQPAR", seqpar), _namelist_text("BASIS1", head)]
    for name, fid in zip(basis.names, basis.fids):
        spectrum = np.fft.fft(fid)
        flat = np.empty(2 * spectrum.size)
        flat[0::2], flat[1::2] = spectrum.real, spectrum.imag
        parts.append(_namelist_text("NMUSED", {"FILRAW": name, "XTRASH": 0.0}))
        parts.append(_namelist_text("BASIS", {"ID": name, "METABO": name, "CONC": 1.0,
                                              "TRAMP": 1.0, "VOLUME": 1.0, "ISHIFT": 0}))
        parts.append(_fortran_e(flat, values_per_line, width, digits))
    path.write_text("".join(parts))


# --- LCModel .RAW / .H2O -----------------------------------------------------------------

def read_lcmodel_raw(path) -> tuple[np.ndarray, dict]:
    """Time-domain data of an LCModel ``.RAW``/``.H2O`` file, as stored, and its header
    (merged ``$SEQPAR``/``$NMID`` keys, upper-case)."""
    path = Path(path)
    sections = parse_lcmodel_file(path)
    if not sections or "NMID" not in [s["name"] for s in sections]:
        raise BasisFormatError(f"{path}: not an LCModel .RAW file (no $NMID ... $END header)")
    header: dict = {}
    for sec in sections:
        header.update(sec["values"])
    data = sections[-1]["data"]
    if data.size == 0:
        raise BasisFormatError(f"{path}: no data after the $NMID header")
    return _complex_pairs(data, path, "data"), header


def _control_parameters(folder: Path) -> dict:
    """HZPPPM and a dwell time from a makebasis input / control file or a .BASIS beside."""
    found: dict = {}
    candidates = _files_in(folder, (".in", ".control", ".file", ".basis"))
    for cand in candidates:
        try:
            sections = parse_lcmodel_file(cand)
        except ValueError:
            continue
        for sec in sections:
            vals = sec["values"]
            cf_mhz = _positive_number(vals.get("HZPPPM"))
            if cf_mhz is not None and "cf_mhz" not in found:
                found["cf_mhz"], found["cf_source"] = cf_mhz, str(cand)
            for key in ("DELTAT", "BADELT"):
                dwell_s = _positive_number(vals.get(key))
                if dwell_s is not None and "dwell_s" not in found:
                    found["dwell_s"], found["dwell_source"] = dwell_s, str(cand)
    return found


def _grid(folder: Path, dwell_s, cf_mhz, header_cf=None,
          source: Path | None = None) -> tuple[float, float, dict]:
    """(dwell_s, cf_mhz, where each came from): given, file header, or a control file in
    ``folder``; errors name ``source`` (default: the folder)."""
    source = source or folder
    sources = {}
    if cf_mhz is None and header_cf is not None:
        cf_mhz = _positive_number(header_cf)
        if cf_mhz is None:
            raise BasisFormatError(f"{source}: HZPPPM {header_cf!r} in the file header is not "
                                   "a positive number")
        sources["cf_mhz"] = "file header"
    if dwell_s is None or cf_mhz is None:
        found = _control_parameters(folder)
        if dwell_s is None and "dwell_s" in found:
            dwell_s, sources["dwell_s"] = found["dwell_s"], found["dwell_source"]
        if cf_mhz is None and "cf_mhz" in found:
            cf_mhz, sources["cf_mhz"] = found["cf_mhz"], found["cf_source"]
    if dwell_s is None or cf_mhz is None:
        raise BasisFormatError(
            f"{source}: the files state no {'dwell time' if dwell_s is None else 'frequency'}; "
            "pass dwell_s= and cf_mhz= to read_basis")
    sources.setdefault("dwell_s", "given")
    sources.setdefault("cf_mhz", "given")
    return float(dwell_s), float(cf_mhz), sources


def read_lcmodel_raw_folder(folder, dwell_s: float | None = None,
                            cf_mhz: float | None = None) -> Basis:
    """One basis entry per ``*.RAW`` file (name = file stem), FIDs as stored.

    ``.RAW`` files carry no dwell time: it comes from the arguments, a makebasis ``.IN`` /
    control file or a ``.BASIS`` in the same folder, in that order (recorded in provenance).
    """
    folder = Path(folder)
    files = _files_in(folder, (".raw",))
    if not files:
        raise BasisFormatError(f"{folder}: no .RAW files")
    names, fids, header_cf = [], [], None
    for file in files:
        fid, header = read_lcmodel_raw(file)
        header_cf = header.get("HZPPPM", header_cf)
        names.append(file.stem)
        fids.append(fid)
    _check_lengths(folder, names, fids)
    dwell_s, cf_mhz, sources = _grid(folder, dwell_s, cf_mhz, header_cf)
    prov = {"source": str(folder), "format": "LCModel .RAW folder", "domain": "time (FID)",
            "scale": "as stored in the files", "grid_source": sources}
    return Basis(names, np.array(fids), dwell_s, cf_mhz, H1_REFERENCE_PPM, provenance=prov)


def _check_lengths(source, names, fids):
    """Entries of a folder must have distinct names and one length."""
    if len(set(names)) != len(names):
        raise BasisFormatError(f"{source}: entry names (file stems) are not unique: {names}")
    lengths = {n: len(f) for n, f in zip(names, fids)}
    if len(set(lengths.values())) != 1:
        raise BasisFormatError(f"{source}: entries have different lengths {lengths}")


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
    Path(path).write_text(json.dumps(doc, default=str))


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
