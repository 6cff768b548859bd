"""File exchange between workflow nodes: NIfTI-MRS acquisitions, JSON bases, TSV tables.

Nodes pass files, never in-memory objects, so nipype can hash and cache them. Intermediate
spectra are uncompressed ``.nii`` (fast); derivatives are ``.nii.gz``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline import __version__
from pipeline.acquisition import Acquisition
from pipeline.io.files import copy_if_changed, json_text, read_tsv, to_float, tsv_text  # noqa: F401
from pipeline.io.input_checks import read_acquisition

PROGRAM = "dmrs-bids"


def check_not_empty(path) -> Path:
    """Refuse missing or 0-byte inputs with a message naming the file."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes); it holds no MRS data")
    return path


def processing_step(method: str, details: str) -> dict:
    """A ``ProcessingApplied`` entry (no time stamp, so reruns give identical files)."""
    return {"Program": PROGRAM, "Version": __version__, "Method": method, "Details": details}


def load_acquisition(path, sidecar: dict | None = None, b_value_units: str = "auto",
                     dim_roles: dict | None = None,
                     water_for_echo_time_s: float | None = None) -> Acquisition:
    """Read NIfTI-MRS through the guarded reader: any defect is one ValueError naming the
    file. ``dim_roles``: ``[conversion] dim_roles`` (which DIM_USER_* holds what);
    ``water_for_echo_time_s``: the metabolite data's TE when ``path`` is their water
    reference (an EchoTime series in it is then used: ``pipeline.io.echo_series``)."""
    return read_acquisition(check_not_empty(path), sidecar=sidecar,
                            b_value_units=b_value_units, dim_roles=dim_roles,
                            water_for_echo_time_s=water_for_echo_time_s)


def save_acquisition(acq: Acquisition, name: str, method: str, details: str) -> str:
    """Write ``acq`` in the node's working directory; returns the absolute path."""
    from pipeline.io.nifti_mrs import write_nifti_mrs

    path = Path(os.getcwd()) / name
    write_nifti_mrs(acq, str(path), processing_step=processing_step(method, details))
    return str(path)


def write_json_file(name: str, content) -> str:
    """``content`` as JSON in the node's working directory; returns the absolute path."""
    path = Path(os.getcwd()) / name
    path.write_text(json_text(content))
    return str(path)


def read_json_file(path) -> dict:
    return json.loads(Path(path).read_text())


def write_table(name: str, rows: list[dict], columns: list[str]) -> str:
    """Rows as TSV in the node's working directory; returns the absolute path."""
    path = Path(os.getcwd()) / name
    path.write_text(tsv_text(rows, columns))
    return str(path)


def read_table(path) -> list[dict]:
    return read_tsv(path)


def options_table(spec_value) -> dict:
    """A node's options input (canonical JSON text) as a dict; {} when unset or empty."""
    from nipype.interfaces.base import isdefined

    return json.loads(spec_value) if isdefined(spec_value) and spec_value else {}


def optional_input(value):
    """A node input's value, or None when unset or empty."""
    from nipype.interfaces.base import isdefined

    return value if isdefined(value) and value else None


def condition_labels(acq: Acquisition) -> list[dict]:
    """Per-condition ``condition``, ``b_value`` (s/mm^2) and ``direction`` columns."""
    return [{"condition": i, "b_value": float(b), "direction": d}
            for i, (b, d) in enumerate(zip(acq.b_values_s_mm2, acq.direction_labels()))]
