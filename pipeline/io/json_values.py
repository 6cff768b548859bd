"""Plain-JSON values from the numpy-laden dictionaries the pipeline builds.

One conversion for every JSON the project writes (NIfTI-MRS header extensions, basis JSON,
synthetic ground truth, BIDS sidecars, stage reports and ``_qc.json``), so that they all spell
numbers the same way; :func:`json_dumps` makes the text strict JSON (no ``NaN``/``Infinity``,
which ``json.dumps`` writes by default and strict parsers refuse).
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePath

import numpy as np


def to_json_value(value):
    """``value`` with numpy scalars/arrays as Python numbers/lists, tuples as lists, complex
    numbers as ``[real, imag]``, paths as strings and dict keys as strings (recursively);
    anything else is returned unchanged for ``json`` to accept or refuse."""
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist())
    if isinstance(value, (complex, np.complexfloating)):
        return [float(value.real), float(value.imag)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    return value


def finite_json_value(value):
    """:func:`to_json_value` with every non-finite float (NaN, ±inf) as None (JSON null), as
    the TSVs write them ``n/a``: strict JSON has no such numbers."""
    value = to_json_value(value)
    if isinstance(value, dict):
        return {k: finite_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_dumps(content, **options) -> str:
    """Strict JSON text of ``content`` (:func:`finite_json_value`; ``allow_nan=False`` so that
    a non-finite number left anywhere raises instead of writing invalid JSON). ``options``:
    those of ``json.dumps`` (indent, sort_keys, default)."""
    return json.dumps(finite_json_value(content), allow_nan=False, **options)


def write_json(path, content) -> Path:
    """Write ``content`` as indented strict JSON (a BIDS sidecar, a dataset description, a
    truth file) with a final newline, creating the parent folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json_dumps(content, indent=2) + "\n")
    return path
