"""Write current-standard NIfTI-MRS (:func:`write_nifti_mrs`), the inverse of
:func:`pipeline.io.nifti_mrs.read_nifti_mrs` (see its module docstring for the header keys)."""

from __future__ import annotations

import datetime as _dt
import gzip
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from nifti_mrs.definitions import nifti_mrs_version, standard_defined
from nifti_mrs.validator import check_type

from .. import __version__
from ..acquisition import Acquisition
from .files import atomic_write_bytes
from .json_values import json_dumps, to_json_value
from .nifti_mrs_header import (B_UNITS_KEY, B_UNITS_SOURCE_KEY, CONDITION_TAG, RUNTIME_KEYS,
                               WARNINGS_KEY, NiftiMrsError)

_DESCRIPTIONS = {
    B_UNITS_KEY: "Unit of the b-values in this file's headers ('s/mm2' or 'ms/um2').",
    B_UNITS_SOURCE_KEY: "How the b-value unit of the original input was decided.",
    WARNINGS_KEY: "Warnings raised when the original input was read.",
    "DiffusionGradientDuration": "Diffusion gradient duration (small delta), s.",
    "DiffusionGradientSeparation": "Diffusion gradient separation (big delta), s.",
    "DiffusionTime": "Diffusion time, s.",
    "ReferenceSignal": "BIDS URI(s) of the reference (e.g. water) acquisition.",
}


def _header_entry(key: str, value):
    """(ok, entry): standard keys as is (type-checked), user keys wrapped in Value/Description."""
    value = to_json_value(value)
    if key in standard_defined:
        if isinstance(value, int) and not isinstance(value, bool) and \
                standard_defined[key][0] == (float, int):
            value = float(value)
        return check_type(value, standard_defined[key][0]), value
    return True, {"Value": value,
                  "Description": _DESCRIPTIONS.get(key, f"{key} (from the BIDS sidecar / metadata)")}


def _processing_step(step: dict, timestamp: bool) -> dict:
    """A ``ProcessingApplied`` entry with Program/Version (and Time, if asked) filled in."""
    entry = {"Program": "dmrs-bids", "Version": __version__, "Method": "", "Details": ""}
    if timestamp:
        entry = {"Time": _dt.datetime.now().isoformat(timespec="seconds"), **entry}
    entry.update(to_json_value(step))
    return entry


def _keeps_condition_dim(acq: Acquisition) -> bool:
    """The condition dimension is written unless it is a single plain (b = 0, no direction) one."""
    return acq.n_conditions > 1 or bool(np.any(acq.b_values_s_mm2 != 0)) or \
        bool(np.any(np.isfinite(acq.directions)))


def _layout_for_writing(acq: Acquisition):
    """NIfTI data (x, y, z, points, dims...) and the dim tags, singleton dims dropped."""
    data = np.transpose(acq.fids, (3, 2, 1, 0))  # points, coils, transients, conditions
    tags, keep = [], [0]
    for axis, tag, size in ((1, "DIM_COIL", acq.n_coils), (2, "DIM_DYN", acq.n_transients),
                            (3, CONDITION_TAG, acq.n_conditions)):
        if size > 1 or (tag == CONDITION_TAG and _keeps_condition_dim(acq)):
            keep.append(axis)
            tags.append(tag)
    data = data.reshape([data.shape[a] for a in keep]) if len(keep) > 1 else data[:, 0, 0, 0]
    return data[None, None, None], tags


def _condition_header(acq: Acquisition) -> dict:
    directions = [None if np.any(np.isnan(d)) else [float(v) for v in d] for d in acq.directions]
    return {"b_value": {"Value": [float(b) for b in acq.b_values_s_mm2],
                        "Description": "b-value in s/mm^2"},
            "direction": {"Value": directions,
                          "Description": "unit gradient direction (x, y, z); null where none"}}


def _header_extension_for(acq: Acquisition, tags: list, processing_step: dict | None,
                          timestamp: bool) -> dict:
    meta = acq.metadata
    ext = {"SpectrometerFrequency": [float(acq.cf_mhz)], "ResonantNucleus": [str(acq.nucleus)]}
    dropped = []
    for key, value in meta.items():
        if key in RUNTIME_KEYS or key in ext or key in (B_UNITS_KEY, B_UNITS_SOURCE_KEY,
                                                       WARNINGS_KEY, "ProcessingApplied"):
            continue
        ok, entry = _header_entry(key, value)
        if ok:
            ext[key] = entry
        else:
            dropped.append(key)
    if "SpectralWidth" in ext:
        ext["SpectralWidth"] = 1.0 / acq.dwell_s
    for i, tag in enumerate(tags):
        ext[f"dim_{5 + i}"] = tag
        if tag == CONDITION_TAG:
            ext[f"dim_{5 + i}_info"] = "Diffusion conditions (b-value, gradient direction)"
            ext[f"dim_{5 + i}_header"] = _condition_header(acq)
    if CONDITION_TAG in tags:
        ext[B_UNITS_KEY] = {"Value": "s/mm2", "Description": _DESCRIPTIONS[B_UNITS_KEY]}
        if meta.get("b_value_units_source"):
            ext[B_UNITS_SOURCE_KEY] = {"Value": str(meta["b_value_units_source"]),
                                       "Description": _DESCRIPTIONS[B_UNITS_SOURCE_KEY]}
    warnings = list(meta.get("warnings", [])) + [
        f"metadata key {k} dropped: value does not fit the NIfTI-MRS standard type" for k in dropped]
    if warnings:
        ext[WARNINGS_KEY] = {"Value": [str(w) for w in warnings],
                             "Description": _DESCRIPTIONS[WARNINGS_KEY]}
    history = list(to_json_value(meta.get("ProcessingApplied", [])))
    if processing_step is not None:
        history.append(_processing_step(processing_step, timestamp))
    if history:
        ext["ProcessingApplied"] = history
    return ext


def _nifti_image(data: np.ndarray, dwell_s: float, ext: dict, affine) -> nib.Nifti2Image:
    affine = np.asarray(affine if affine is not None else np.eye(4), dtype=float)
    img = nib.Nifti2Image(data, affine)
    header = img.header
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header["pixdim"][4] = dwell_s
    header["intent_name"] = f"mrs_v{nifti_mrs_version[0]}_{nifti_mrs_version[1]}".encode()
    header.set_xyzt_units(xyz="mm", t="sec")
    header.extensions.append(nib.nifti1.Nifti1Extension(44, json_dumps(ext).encode("utf-8")))
    return img


def write_nifti_mrs(acq: Acquisition, path, processing_step: dict | None = None,
                    timestamp: bool = False) -> Path:
    """Write ``acq`` as current-standard NIfTI-MRS at ``path`` (atomically); returns the path.

    Conditions go on ``DIM_USER_0`` (b-values in s/mm^2, unit directions, null where none),
    transients on ``DIM_DYN``, coils on ``DIM_COIL``; singleton dimensions are dropped (a single
    condition is kept only when it carries a b-value or direction). ``processing_step`` (e.g.
    ``{"Method": "Frequency and phase correction", "Details": "..."}``) is appended to
    ``ProcessingApplied`` with Program and Version filled in unless given (and the current
    Time when ``timestamp`` is true; off by default so that reruns give identical files).
    ``.nii.gz`` output is gzip-compressed without a timestamp, so equal inputs give equal bytes.
    """
    path = Path(path)
    if not re.search(r"\.nii(\.gz)?$", path.name):
        raise NiftiMrsError(f"{path}: NIfTI-MRS file names end in .nii or .nii.gz")
    data, tags = _layout_for_writing(acq)
    ext = _header_extension_for(acq, tags, processing_step, timestamp)
    img = _nifti_image(data, acq.dwell_s, ext, acq.metadata.get("nifti_affine"))
    payload = img.to_bytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=1, mtime=0)
    return atomic_write_bytes(path, payload, fsync=False)
