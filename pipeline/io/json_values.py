"""Plain-JSON values from the numpy-laden dictionaries the pipeline builds.

One conversion for every JSON the project writes (NIfTI-MRS header extensions, basis JSON,
synthetic ground truth, BIDS sidecars), so that they all spell numbers the same way.
"""

from __future__ import annotations

import json
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


def write_json(path, content) -> Path:
    """Write ``content`` as indented JSON (a BIDS sidecar, a dataset description, a truth
    file) with a final newline, creating the parent folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json_value(content), indent=2) + "\n")
    return path
