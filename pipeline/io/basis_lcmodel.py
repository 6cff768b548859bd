"""LCModel basis dialects: Fortran namelists, ``.BASIS`` (read and write), ``.RAW``/``.H2O``
files and folders of them, and where a folder's dwell time and frequency come from.

Also the error type and the small file helpers every basis reader shares. Readers here return
data as stored; :func:`pipeline.io.basis_formats.read_basis` makes the convention decisions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..basis import Basis
from ..spectra import H1_REFERENCE_PPM
from . import basis_tools

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


def _fortran_floats(tokens: list) -> np.ndarray:
    """Numbers matched by ``_FLOAT_RE`` as one float array (numpy parses the text: the same
    values as :func:`_fortran_float`, without a Python call per number)."""
    text = " ".join(tokens).replace("D", "E").replace("d", "e")
    return np.array(text.split(), dtype=float)


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
        sec["data"] = _fortran_floats(_FLOAT_RE.findall(text))
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


GRID_FILE_SUFFIXES = (".in", ".control", ".file", ".basis")
"""Files (suffix, any case) of a basis's folder read for HZPPPM and a dwell time that its
``.RAW`` or text files do not state: makebasis inputs, LCModel control files, ``.BASIS``."""


def _control_parameters(folder: Path) -> dict:
    """HZPPPM and a dwell time from a makebasis input / control file or a .BASIS beside."""
    found: dict = {}
    candidates = _files_in(folder, GRID_FILE_SUFFIXES)
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
