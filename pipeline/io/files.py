"""The project's one atomic writer, one JSON text form, one TSV form and one number parser.

Every file the app, the workflow nodes and the science core write goes through
:func:`atomic_write_bytes` (readers see the old file or the whole new one, never a part);
every JSON is :func:`json_text` (numpy values as Python numbers, sorted keys); every TSV cell is
:func:`format_tsv_value`; every TSV cell read back as a number is :func:`to_float`; every
content digest is :func:`file_sha256`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import shutil
import uuid
from pathlib import Path


# --- atomic writes ---------------------------------------------------------------------------

def _temporary_beside(path: Path) -> Path:
    """A fresh temporary name in ``path``'s folder (``.<name>.<pid>.<random>.tmp``), so that
    the final ``os.replace`` never crosses file systems and concurrent writers never share
    it. The file is created by the writer with the ordinary permissions (umask)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")


def atomic_write_bytes(path, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to a temporary name beside ``path`` (flushed to disk when ``fsync``),
    then ``os.replace`` it over ``path``; the parent folder is created. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src, dest) -> Path:
    """Copy ``src`` to ``dest`` atomically (temporary file beside ``dest``, then rename)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(dest)
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def copy_if_changed(src, dest) -> bool:
    """Atomic copy unless ``dest`` already holds the same bytes (its time stamp then stays,
    so a rerun that changes nothing leaves outputs, and what depends on them, untouched).
    Returns whether a copy was made."""
    src, dest = Path(src), Path(dest)
    if dest.is_file() and dest.stat().st_size == src.stat().st_size \
            and dest.read_bytes() == src.read_bytes():
        return False
    atomic_copy(src, dest)
    return True


# --- JSON ------------------------------------------------------------------------------------

def json_text(content) -> str:
    """``content`` as indented strict JSON with sorted keys and a final newline; numpy
    scalars and arrays, tuples and paths become plain JSON values, non-finite numbers null
    (:func:`json_values.json_dumps`)."""
    from .json_values import json_dumps  # numpy: loaded when first needed

    return json_dumps(content, indent=2, sort_keys=True) + "\n"


def write_json(path, content) -> Path:
    """:func:`json_text` written atomically."""
    return atomic_write_text(path, json_text(content))


# --- TSV -------------------------------------------------------------------------------------

def format_tsv_value(value) -> str:
    """TSV cell: ``n/a`` for None and non-finite numbers (NaN, ±inf: e.g. the %CRLB of a zero
    amplitude; the JSON outputs write them as null), compact repr for floats, 0/1 for
    booleans."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        value = float(value)
        if not math.isfinite(value):
            return "n/a"
        return repr(value)
    if type(value).__name__.startswith(("int", "uint")):
        return str(int(value))
    if type(value).__name__ == "bool_":
        return "1" if value else "0"
    return str(value).replace("\t", " ").replace("\n", " ")


def tsv_text(rows: list[dict], columns: list[str]) -> str:
    """Rows as TSV with ``columns`` first (extra keys appended in first-seen order)."""
    extra = []
    for row in rows:
        extra += [k for k in row if k not in columns and k not in extra]
    header = list(columns) + extra
    out = io.StringIO()
    out.write("\t".join(header) + "\n")
    for row in rows:
        out.write("\t".join(format_tsv_value(row.get(k)) for k in header) + "\n")
    return out.getvalue()


def write_tsv(path, rows: list[dict], columns: list[str]) -> Path:
    """:func:`tsv_text` written atomically."""
    return atomic_write_text(path, tsv_text(rows, columns))


def read_tsv(path) -> list[dict]:
    """Rows of a TSV as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


MISSING_TEXT = ("n/a", "", "nan", "NaN")


def to_float(value) -> float:
    """A table cell as a float: missing (None, ``n/a``, empty, ``nan``) is NaN; numbers pass
    through; any other text raises ``ValueError`` naming the value (a corrupt table must not
    turn silently into missing values)."""
    if value is None or (isinstance(value, str) and value.strip() in MISSING_TEXT):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None


def file_sha256(path) -> str:
    """SHA-256 (hex) of a file's bytes, or of a folder's files (relative names and contents,
    sorted; e.g. a folder of LCModel .RAW basis files): what identifies an input by content,
    wherever it lies. Raises OSError when a file cannot be read."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(bytes.fromhex(file_sha256(item)))
        return digest.hexdigest()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
