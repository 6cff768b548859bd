"""Read any NIfTI-MRS file into an :class:`Acquisition`; write current-standard NIfTI-MRS.

Reading is tolerant of the header forms real users have: ``mrs_v0_2`` files, plain-list dim
headers (``{"Bval": [...]}``), b-value and direction packed into one dimension, and current
``{"Value": ..., "Description": ...}`` headers. Dimensions map to the canonical order
(conditions, transients, coils, points):

* ``DIM_COIL`` -> coils;
* a ``DIM_USER_*`` or ``DIM_DYN`` whose header carries b-values (keys ``b_value``, ``bval``,
  ``Bval``, ``bvalue``, ...) and maybe directions (``direction``, ``directions``, ``bvec``,
  ``orientation``, ...) -> conditions (on ``DIM_DYN``, i.e. one label per dynamic, repeated
  (b, direction) pairs are grouped into conditions x repeats, the repeats becoming transients);
* b-values in one such dimension and directions in another (any order) -> their product,
  shell by shell (b slowest, directions within);
* ``DIM_DYN``, ``DIM_MEAS`` and singleton dimensions -> transients;
* a non-singleton ``DIM_USER_*`` without b or direction header -> :class:`NiftiMrsError` naming
  it and the setting that states its role (``dim_roles``, e.g. ``{DIM_USER_1 = "transients"}``);
  never silently pooled;
* any other non-singleton dimension (editing, indirect, ISIS, ...) -> :class:`NiftiMrsError`.

Data are taken as stored (no conjugation): the project sign convention is that of NIfTI-MRS
files written by spec2nii (``pipeline/spectra.py``).

b-value units: ``b_value_units`` in {"auto", "s/mm2", "ms/um2"}. "auto" takes the most specific
statement: the b-value entry's ``Description``/``Units`` or the ``dim_N_info`` text, then a
header key ``DiffusionBValueUnits``, then the sidecar's ``DiffusionBValueUnits`` (conflicts give
a warning); with none, it guesses with :func:`pipeline.units.guess_b_value_units` and appends a
warning. An explicit unit overrides all (with a warning where it contradicts a statement). The
decision is recorded in ``metadata["b_value_units_source"]``; b-values are returned in s/mm^2.

Written files state ``DiffusionBValueUnits = "s/mm2"`` and keep the earlier decision and
warnings (``DiffusionBValueUnitsSource``, ``ConversionWarnings``), so a round trip keeps them.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import math
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nifti_mrs.definitions import nifti_mrs_version, standard_defined
from nifti_mrs.validator import check_type

from .. import __version__
from ..acquisition import Acquisition
from ..spectra import H1_REFERENCE_PPM
from ..units import guess_b_value_units, to_s_mm2
from .files import atomic_write_bytes
from .json_values import to_json_value

B_UNITS_KEY = "DiffusionBValueUnits"
B_UNITS_SOURCE_KEY = "DiffusionBValueUnitsSource"
WARNINGS_KEY = "ConversionWarnings"
SIDECAR_B_UNITS_KEYS = (B_UNITS_KEY, "BValueUnits", "b_value_units")
RUNTIME_KEYS = ("warnings", "b_value_units_source", "nifti_affine")
"""Metadata keys the reader fills itself (not copied into the header as such)."""

CONDITION_TAG = "DIM_USER_0"
TRANSIENT_TAGS = ("DIM_DYN", "DIM_MEAS", "DIM_USER_0", "DIM_USER_1", "DIM_USER_2")
CONDITION_CAPABLE_TAGS = ("DIM_DYN", "DIM_USER_0", "DIM_USER_1", "DIM_USER_2")
DEFAULT_DIM_TAGS = {5: "DIM_COIL", 6: "DIM_DYN", 7: "DIM_INDIRECT_0"}

_B_KEYS = {"bval", "bvals", "bvalue", "bvalues", "b", "diffusionbvalue", "diffusionbvalues"}
_DIRECTION_KEYS = {"direction", "directions", "bvec", "bvecs", "gradientdirection",
                   "gradientdirections", "diffusiongradientdirection",
                   "diffusiongradientorientation", "orientation"}

_DESCRIPTIONS = {
    B_UNITS_KEY: "Unit of the b-values in this file's headers ('s/mm2' or 'ms/um2').",
    B_UNITS_SOURCE_KEY: "How the b-value unit of the original input was decided.",
    WARNINGS_KEY: "Warnings raised when the original input was read.",
    "DiffusionGradientDuration": "Diffusion gradient duration (small delta), s.",
    "DiffusionGradientSeparation": "Diffusion gradient separation (big delta), s.",
    "DiffusionTime": "Diffusion time, s.",
    "ReferenceSignal": "BIDS URI(s) of the reference (e.g. water) acquisition.",
}


class NiftiMrsError(ValueError):
    """A NIfTI-MRS file (or its sidecar) cannot be read as a (d)MRS acquisition."""


# --------------------------------------------------------------------------- small helpers

def _fail(path, problem: str) -> NiftiMrsError:
    return NiftiMrsError(f"{path}: {problem}")


def normalise_b_value_unit(text: str) -> str | None:
    """'s/mm2' or 'ms/um2' from a unit string or free text mentioning one, else None."""
    t = str(text).lower().replace("µ", "u").replace("μ", "u").replace(" ", "")
    if re.search(r"ms/um|msum-?2|ms\.um", t):
        return "ms/um2"
    if re.search(r"s/mm|smm-?2|s\.mm", t):
        return "s/mm2"
    return None


def _canonical_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _unwrap(value):
    """The value of a user-defined ``{"Value": ..., "Description": ...}`` entry (else as is)."""
    if isinstance(value, dict) and "Value" in value:
        return value["Value"]
    return value


def _description(value) -> str | None:
    return value.get("Description") if isinstance(value, dict) else None


def _expand_dim_values(values, size: int, path, where: str) -> list:
    """A dim-header list, or ``{"start", "increment"}``, as a list of ``size`` entries."""
    if isinstance(values, dict) and "start" in values and "increment" in values:
        start, step = values["start"], values["increment"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, step)):
            raise _fail(path, f"{where} start/increment {start!r}/{step!r} are not numbers")
        return [start + i * step for i in range(size)]
    if not isinstance(values, (list, tuple)):
        raise _fail(path, f"{where} is neither a list nor a start/increment object")
    if len(values) != size:
        raise _fail(path, f"{where} has {len(values)} entries but its dimension has {size}")
    return list(values)


# --------------------------------------------------------------------------- file loading

_NIBABEL_ERRORS = (OSError, EOFError, zlib.error, ValueError, OverflowError,
                   nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError)
"""What nibabel raises for broken headers, truncated or corrupt (gzip) streams."""

DEFLATE_MAX_RATIO = 1032
"""Largest expansion factor of a deflate (gzip) stream: a bound on a .nii.gz file's content."""


def _announced_bytes(header) -> int:
    """Bytes the header says the file holds: data offset + voxels x bytes per voxel."""
    n_voxels = 1
    for n in header.get_data_shape():
        n_voxels *= int(n)
    return int(header.get_data_offset()) + n_voxels * header.get_data_dtype().itemsize


def _check_announced_size(header, path: Path) -> None:
    """Refuse a header announcing more data than the file can hold, before reading any.

    Plain files must hold the announced bytes; gzip files cannot expand by more than
    :data:`DEFLATE_MAX_RATIO`. This avoids a huge allocation for a corrupt header.
    """
    size = path.stat().st_size
    compressed = path.name.lower().endswith(".gz")
    capacity = size * DEFLATE_MAX_RATIO if compressed else size
    announced = _announced_bytes(header)
    if announced > capacity:
        raise _fail(path, f"the header announces {announced} bytes (shape "
                          f"{tuple(header.get_data_shape())}, {header.get_data_dtype()}) but the "
                          f"{'compressed ' if compressed else ''}file has {size} bytes; the "
                          "header is corrupt or the file truncated")


def _load_image(path: Path):
    """(image, data array) of the NIfTI file at ``path``; NiftiMrsError for any defect."""
    if not path.is_file():
        raise _fail(path, "file does not exist")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    try:
        img = nib.load(str(path))
        _check_announced_size(img.header, path)
        data = np.asanyarray(img.dataobj)
    except NiftiMrsError:
        raise
    except _NIBABEL_ERRORS as err:
        raise _fail(path, f"not a readable NIfTI file ({type(err).__name__}: {err})") from err
    except MemoryError as err:
        raise _fail(path, "not enough memory to read the data the header announces") from err
    return img, data


def _header_extension(img, path: Path) -> dict:
    codes = img.header.extensions.get_codes()
    if 44 not in codes:
        raise _fail(path, "no NIfTI-MRS JSON header extension (ecode 44); not a NIfTI-MRS file")
    raw = img.header.extensions[codes.index(44)].get_content()
    try:
        ext = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise _fail(path, f"NIfTI-MRS header extension is not valid JSON ({err})") from err
    if not isinstance(ext, dict):
        raise _fail(path, "NIfTI-MRS header extension is not a JSON object")
    return ext


def _check_data(data: np.ndarray, path: Path) -> None:
    if not np.iscomplexobj(data):
        raise _fail(path, f"data are {data.dtype}, NIfTI-MRS requires complex samples")
    if not 4 <= data.ndim <= 7:
        raise _fail(path, f"data have {data.ndim} dimensions, NIfTI-MRS requires 4 to 7")
    if data.shape[:3] != (1, 1, 1):
        raise _fail(path, f"spatial size {data.shape[:3]}: only single-voxel data are supported")
    if not np.all(np.isfinite(data)):
        raise _fail(path, f"{np.count_nonzero(~np.isfinite(data))} samples are NaN or infinite")


def _first(value, key: str, path: Path):
    """First element of a list-valued header key (or the scalar)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise _fail(path, f"{key} is an empty list")
        return value[0]
    return value


# --------------------------------------------------------------------------- dimensions

DIM_ROLES = ("transients", "b", "direction", "conditions", "coils")
"""Roles a user may give a dimension (``dim_roles``, keyed by tag or ``dim_N``)."""

DIM_ROLES_SETTING = "[conversion] dim_roles (dmrs-bids config) or dim_roles (dmrs-bids-convert mapping)"


def _has_key(header: dict, keys: set) -> bool:
    return any(_canonical_key(k) in keys for k in header)


def _user_role(dim_roles: dict, dim: int, tag: str, path: Path):
    """The role the user gave dim ``dim`` (by ``dim_N`` or by tag), or None."""
    role = dim_roles.get(f"dim_{dim}", dim_roles.get(tag))
    if role is not None and role not in DIM_ROLES:
        raise _fail(path, f"dim_roles gives dim_{dim} ({tag}) the role {role!r}; "
                          f"expected one of {DIM_ROLES}")
    return role


def _dim_role(dim: int, tag: str, size: int, header: dict, dim_roles: dict, path: Path) -> str:
    """What dimension ``dim`` holds: "coils", "transients", "b", "direction" or "conditions"
    (b and direction packed together). A non-singleton dimension that cannot be interpreted
    is an error naming it and the setting to give (never pooled into the transients)."""
    role = _user_role(dim_roles, dim, tag, path)
    has_b, has_dir = _has_key(header, _B_KEYS), _has_key(header, _DIRECTION_KEYS)
    if role is not None:
        if role in ("b", "conditions") and not has_b:
            raise _fail(path, f"dim_roles makes dim_{dim} ({tag}) hold b-values but its header "
                              f"has no b-value key ({sorted(header) or 'no header'})")
        if role == "direction" and not has_dir:
            raise _fail(path, f"dim_roles makes dim_{dim} ({tag}) hold directions but its header "
                              f"has no direction key ({sorted(header) or 'no header'})")
        return role
    if tag == "DIM_COIL":
        return "coils"
    if tag in CONDITION_CAPABLE_TAGS and (has_b or has_dir):
        return "conditions" if has_b and has_dir else ("b" if has_b else "direction")
    if tag in ("DIM_DYN", "DIM_MEAS") or size == 1:
        return "transients"
    if tag.startswith("DIM_USER"):
        what = f"header keys {sorted(header)}" if header else "no dim header"
        raise _fail(path, f"dim_{dim} is {tag} (size {size}) with {what}: dmrs-bids cannot "
                          "tell whether it holds b-values, directions or repeated transients "
                          "(b-value keys: b_value, bval, Bval, bvalue; direction keys: "
                          "direction, directions, bvec, orientation). Add them to the header, "
                          f"or state its role with {DIM_ROLES_SETTING}, e.g. "
                          f'dim_roles = {{{tag} = "transients"}}')
    raise _fail(path, f"dim_{dim} is {tag} (size {size}), which dmrs-bids does not "
                      "handle (editing, indirect, ISIS, phase-cycle or metabolite-cycle "
                      "data); split or combine it first")


def _dim_layout(ext: dict, data: np.ndarray, path: Path, warnings: list,
                dim_roles: dict | None = None) -> dict:
    """Classify dims 5..7 into coil / transient / diffusion axes (numpy axis indices).

    Diffusion conditions come from one dimension holding b (and maybe direction) per entry,
    or from two dimensions, one of b-values and one of directions, in either order; the
    conditions are then their product, b slowest (shell by shell, directions within).
    """
    dim_roles = dict(dim_roles or {})
    layout = {"coil": None, "transients": [], "b": None, "direction": None,
              "conditions": None, "condition_tag": None}
    for dim in range(5, data.ndim + 1):
        axis, size = dim - 1, data.shape[dim - 1]
        tag = ext.get(f"dim_{dim}")
        if tag is None:
            tag = DEFAULT_DIM_TAGS[dim]
            warnings.append(f"{path}: dim_{dim} has no tag; assumed {tag} (NIfTI-MRS default)")
        if not isinstance(tag, str):
            raise _fail(path, f"dim_{dim} tag {tag!r} is not a text such as 'DIM_DYN'")
        header = ext.get(f"dim_{dim}_header") or {}
        if not isinstance(header, dict):
            raise _fail(path, f"dim_{dim}_header is not a JSON object")
        role = _dim_role(dim, tag, size, header, dim_roles, path)
        if role == "transients":
            layout["transients"].append(axis)
            continue
        slot = "coil" if role == "coils" else role
        if layout[slot] is not None:
            what = {"coil": "coils", "b": "b-values", "direction": "directions",
                    "conditions": "b-values"}[slot]
            raise _fail(path, f"{what} in two dimensions (dim_{layout[slot] + 1} and dim_{dim}); "
                              f"state which one with {DIM_ROLES_SETTING}")
        layout[slot] = axis
        if slot != "coil":
            layout[f"{slot}_info"] = str(ext.get(f"dim_{dim}_info", ""))
            layout[f"{slot}_header"] = header
            layout["condition_tag"] = tag
    if layout["conditions"] is not None and (layout["b"] is not None or
                                             layout["direction"] is not None):
        other = layout["b"] if layout["b"] is not None else layout["direction"]
        raise _fail(path, f"dim_{layout['conditions'] + 1} holds b-values and directions, and "
                          f"dim_{other + 1} holds more; state the roles with {DIM_ROLES_SETTING}")
    if layout["direction"] is not None and layout["b"] is None:
        raise _fail(path, f"dim_{layout['direction'] + 1} holds gradient directions but no "
                          "dimension holds b-values: add a b-value key (b_value, bval, Bval) to "
                          "a dim header, or convert with dmrs-bids-convert and diffusion.b_values")
    if layout["b"] is not None and layout["direction"] is None:
        layout["conditions"], layout["b"] = layout["b"], None
        layout["conditions_info"], layout["conditions_header"] = \
            layout.pop("b_info"), layout.pop("b_header")
    return layout


def _condition_axes(layout: dict) -> list:
    """numpy axes of the diffusion conditions, slowest first (b before direction)."""
    if layout["conditions"] is not None:
        return [layout["conditions"]]
    if layout["b"] is not None:
        return [layout["b"], layout["direction"]]
    return []


def _b_list(header: dict, info: str, dim: int, size: int, path: Path):
    """Raw b-values of one dim header, their stated unit (or None) and where it was stated."""
    where = f"dim_{dim}_header"
    b_key = next(k for k in header if _canonical_key(k) in _B_KEYS)
    b_entry = header[b_key]
    b_raw = _expand_dim_values(_unwrap(b_entry), size, path, f"{where} {b_key!r}")
    try:
        b_raw = np.asarray(b_raw, dtype=float)
    except (TypeError, ValueError) as err:
        raise _fail(path, f"{where} {b_key!r} holds non-numeric b-values") from err
    if b_raw.ndim != 1 or not np.all(np.isfinite(b_raw)):
        raise _fail(path, f"{where} {b_key!r} holds non-finite or non-scalar b-values")
    if np.any(b_raw < 0):
        raise _fail(path, f"{where} {b_key!r} holds negative b-values: {b_raw[b_raw < 0].tolist()}")
    for text, label in ((_description(b_entry), f"{where} {b_key!r} Description"),
                        (b_entry.get("Units") if isinstance(b_entry, dict) else None,
                         f"{where} {b_key!r} Units"),
                        (info, f"dim_{dim}_info")):
        if text and normalise_b_value_unit(text):
            return b_raw, normalise_b_value_unit(text), label
    return b_raw, None, None


def _direction_list(header: dict, dim: int, size: int, path: Path):
    d_key = next((k for k in header if _canonical_key(k) in _DIRECTION_KEYS), None)
    if d_key is None:
        return None
    return _expand_dim_values(_unwrap(header[d_key]), size, path, f"dim_{dim}_header {d_key!r}")


def _condition_lists(layout: dict, data_shape, path: Path):
    """Raw b-values per condition, their stated unit (or None + where it was looked for) and
    directions per condition (None when no header gives them)."""
    if layout["conditions"] is not None:
        axis = layout["conditions"]
        size = data_shape[axis]
        b_raw, unit, where = _b_list(layout["conditions_header"], layout["conditions_info"],
                                     axis + 1, size, path)
        return b_raw, unit, where, _direction_list(layout["conditions_header"], axis + 1, size,
                                                   path)
    b_axis, d_axis = layout["b"], layout["direction"]
    n_b, n_d = data_shape[b_axis], data_shape[d_axis]
    b_raw, unit, where = _b_list(layout["b_header"], layout["b_info"], b_axis + 1, n_b, path)
    dirs = _direction_list(layout["direction_header"], d_axis + 1, n_d, path)
    return np.repeat(b_raw, n_d), unit, where, [dirs[j] for _ in range(n_b) for j in range(n_d)]


def unit_directions(directions, b_s_mm2: np.ndarray, path) -> np.ndarray:
    """(n, 3) unit vectors; NaN rows where none applies (missing, zero vector or b = 0)."""
    out = np.full((b_s_mm2.size, 3), np.nan)
    if directions is None:
        return out
    for i, d in enumerate(directions):
        if d is None:
            continue
        try:
            vec = np.asarray(d, dtype=float).reshape(-1)
        except (TypeError, ValueError) as err:
            raise _fail(path, f"direction {i} ({d!r}) is not numeric") from err
        if vec.size != 3 or not np.all(np.isfinite(vec)):
            raise _fail(path, f"direction {i} ({d!r}) is not a finite 3-vector")
        norm = np.linalg.norm(vec)
        if norm > 0 and b_s_mm2[i] > 0:
            out[i] = vec if abs(norm - 1) < 1e-12 else vec / norm
    return out


def _group_repeats(b_s_mm2: np.ndarray, directions: np.ndarray):
    """Order and counts of repeated (b, direction) pairs, or None when every pair is unique.

    Returns ``(order, n_unique)`` with ``order`` the indices grouped by pair in order of first
    appearance, when every pair repeats equally often.
    """
    keys = [(b, *np.nan_to_num(d, nan=9.0)) for b, d in zip(b_s_mm2, directions)]
    unique = list(dict.fromkeys(keys))
    if len(unique) == len(keys):
        return None
    groups = [[i for i, k in enumerate(keys) if k == u] for u in unique]
    if len({len(g) for g in groups}) != 1:
        return None
    return np.concatenate(groups), len(unique)


# --------------------------------------------------------------------------- units

def _decide_units(b_raw, requested: str, sidecar: dict, ext: dict, dim_unit, dim_unit_where,
                  path: Path, warnings: list):
    """(unit, source description) for the b-values of ``path``."""
    stated = []  # most specific first: the b-value entry itself describes those numbers
    if dim_unit:
        stated.append((dim_unit, f"header {dim_unit_where}"))
    if B_UNITS_KEY in ext:
        stated.append((normalise_b_value_unit(_unwrap(ext[B_UNITS_KEY])), f"header {B_UNITS_KEY}"))
    for key in SIDECAR_B_UNITS_KEYS:
        if key in sidecar:
            stated.append((normalise_b_value_unit(sidecar[key]), f"sidecar {key}"))
    for unit, where in stated:
        if unit is None:
            raise _fail(path, f"{where} does not name a b-value unit (expected 's/mm2' or 'ms/um2')")
    if requested != "auto":
        unit = normalise_b_value_unit(requested)
        if unit is None:
            raise _fail(path, f"unknown b-value unit {requested!r}: expected auto, s/mm2 or ms/um2")
        for stated_unit, where in stated:
            if stated_unit != unit:
                warnings.append(f"{path}: b-value unit {unit} requested by the user overrides "
                                f"{stated_unit} stated in the {where}")
        return unit, f"user ({unit})"
    if stated:
        unit, where = stated[0]
        for other, other_where in stated[1:]:
            if other != unit:
                warnings.append(f"{path}: {where} says b-values are in {unit} but "
                                f"{other_where} says {other}; using {unit}")
        return unit, where
    unit = guess_b_value_units(b_raw)
    warnings.append(f"{path}: b-value unit not stated in header or sidecar; guessed {unit} "
                    f"(max b = {np.max(b_raw):g}; all b <= 100 means ms/um2)")
    return unit, f"guessed from values ({unit})"


# --------------------------------------------------------------------------- metadata

def _header_metadata(ext: dict) -> dict:
    """Header keys other than dim descriptions and the required ones, unwrapped."""
    skip = re.compile(r"^dim_\d(_info|_header)?$")
    return {k: (v if k in standard_defined else _unwrap(v))
            for k, v in ext.items() if not skip.match(k)}


def _merge_sidecar(meta: dict, sidecar: dict, dwell_s: float, path: Path, warnings: list) -> dict:
    """Header metadata updated by the sidecar; conflicts on key acquisition facts reported."""
    nucleus_h = meta.get("ResonantNucleus")
    nucleus_s = sidecar.get("ResonantNucleus")
    if nucleus_h is not None and nucleus_s is not None and \
            _first(nucleus_h, "ResonantNucleus", path) != _first(nucleus_s, "ResonantNucleus", path):
        raise _fail(path, f"ResonantNucleus {nucleus_h} in the header but {nucleus_s} in the sidecar")
    width_s = sidecar.get("SpectralWidth")
    if width_s is not None and abs(_number(width_s, "SpectralWidth", path) * dwell_s - 1) > 1e-3:
        raise _fail(path, f"sidecar SpectralWidth {width_s} Hz disagrees with the header dwell "
                          f"time {dwell_s:g} s (= {1 / dwell_s:g} Hz)")
    for key, tol in (("SpectrometerFrequency", 1e-6), ("EchoTime", 1e-6)):
        if key in meta and key in sidecar:
            vh, vs = _number(meta[key], key, path), _number(sidecar[key], key, path)
            if abs(vh - vs) > tol * max(1.0, abs(vh)):
                warnings.append(f"{path}: {key} is {vh:g} in the NIfTI-MRS header but {vs:g} "
                                f"in the sidecar; using the sidecar value {vs:g}")
    merged = dict(meta)
    merged.update(sidecar)
    return merged


def _number(value, key: str, path: Path) -> float:
    """A numeric header/sidecar value (first element of a list), or NiftiMrsError."""
    try:
        return float(_first(value, key, path))
    except (TypeError, ValueError, OverflowError) as err:
        raise _fail(path, f"{key} {value!r} is not a number") from err


def _stored_warnings(ext: dict) -> list[str]:
    """Warnings an earlier write recorded in the header (a list of texts; a lone text kept)."""
    stored = _unwrap(ext.get(WARNINGS_KEY, []))
    return [str(w) for w in stored] if isinstance(stored, list) else [str(stored)]


def _reference_ppm(meta: dict, nucleus: str, path: Path) -> float:
    """Chemical shift of the receiver frequency: SpecFreqChemShift, else the nucleus default."""
    if "SpecFreqChemShift" in meta:
        ref_ppm = _number(meta["SpecFreqChemShift"], "SpecFreqChemShift", path)
        if not math.isfinite(ref_ppm):
            raise _fail(path, f"SpecFreqChemShift {ref_ppm!r} is not a finite number")
        return ref_ppm
    return H1_REFERENCE_PPM if nucleus == "1H" else 0.0


def _diffusion_conditions(fids: np.ndarray, layout: dict, data_shape, ext: dict,
                          sidecar: dict, b_value_units: str, path: Path, warnings: list):
    """(fids, b-values in s/mm^2, unit directions, b-unit decision) of the diffusion dims.

    Repeated (b, direction) labels along DIM_DYN are grouped into conditions x repeats, the
    repeats joining the transients. A unit decision recorded by an earlier write is kept.
    """
    b_raw, dim_unit, dim_unit_where, directions_raw = _condition_lists(layout, data_shape, path)
    unit, units_source = _decide_units(b_raw, b_value_units, sidecar, ext, dim_unit,
                                       dim_unit_where, path, warnings)
    b_s_mm2 = to_s_mm2(b_raw, unit)
    directions = unit_directions(directions_raw, b_s_mm2, path)
    grouping = _group_repeats(b_s_mm2, directions) \
        if layout["conditions"] is not None and layout["condition_tag"] == "DIM_DYN" else None
    if grouping is not None:
        order, n_unique = grouping
        n_rep = order.size // n_unique
        fids = fids[order].reshape(n_unique, n_rep * fids.shape[1], *fids.shape[2:])
        b_s_mm2, directions = b_s_mm2[order[::n_rep]], directions[order[::n_rep]]
        warnings.append(f"{path}: {n_unique} distinct (b-value, direction) pairs each "
                        f"repeated {n_rep} times along the diffusion dimension; grouped "
                        "the repeats as transients")
    if B_UNITS_SOURCE_KEY in ext and units_source.startswith("header"):
        units_source = str(_unwrap(ext[B_UNITS_SOURCE_KEY]))
    return fids, b_s_mm2, directions, units_source


# --------------------------------------------------------------------------- public reader

def read_nifti_mrs(path, sidecar: dict | None = None, b_value_units: str = "auto",
                   dim_roles: dict | None = None) -> Acquisition:
    """Read a NIfTI-MRS file (any header generation) into an :class:`Acquisition`.

    ``sidecar``: the BIDS JSON sidecar (it wins over the header; conflicts are reported).
    ``b_value_units``: "auto", "s/mm2" or "ms/um2" (see the module docstring).
    ``dim_roles``: roles of dimensions the header leaves unclear, keyed by tag or ``dim_N``
    (e.g. ``{"DIM_USER_1": "transients"}``; roles in :data:`DIM_ROLES`).
    Raises :class:`NiftiMrsError` naming the file and the problem.
    """
    path = Path(path)
    sidecar = dict(sidecar or {})
    img, data = _load_image(path)
    _check_data(data, path)
    ext = _header_extension(img, path)
    dwell_s = float(img.header["pixdim"][4])
    if not 0 < dwell_s < 1:
        raise _fail(path, f"dwell time {dwell_s!r} s (pixdim[4]) is not plausible")
    warnings = _stored_warnings(ext)

    meta = _merge_sidecar(_header_metadata(ext), sidecar, dwell_s, path, warnings)
    for key in ("SpectrometerFrequency", "ResonantNucleus", "EchoTime"):
        if key not in meta:
            raise _fail(path, f"required key {key} is in neither the NIfTI-MRS header nor the sidecar")
    cf_mhz = _number(meta["SpectrometerFrequency"], "SpectrometerFrequency", path)
    if not 0 < cf_mhz < math.inf:
        raise _fail(path, f"SpectrometerFrequency {cf_mhz!r} MHz is not a positive number")
    echo_time_s = _number(meta["EchoTime"], "EchoTime", path)
    if not 0 <= echo_time_s < math.inf:
        raise _fail(path, f"EchoTime {echo_time_s!r} s is not a non-negative number")
    nucleus = str(_first(meta["ResonantNucleus"], "ResonantNucleus", path))

    layout = _dim_layout(ext, data, path, warnings, dim_roles)
    coil_axes = [layout["coil"]] if layout["coil"] is not None else []
    cond_axes = _condition_axes(layout)
    fids = _canonical_fids(data, cond_axes, layout["transients"], coil_axes)
    if cond_axes:
        fids, b_s_mm2, directions, units_source = _diffusion_conditions(
            fids, layout, data.shape, ext, sidecar, b_value_units, path, warnings)
    else:
        b_s_mm2, directions = np.zeros(1), np.full((1, 3), np.nan)
        units_source = "no diffusion dimension (b = 0)"

    for key in (B_UNITS_KEY, B_UNITS_SOURCE_KEY, WARNINGS_KEY, "BValueUnits", "b_value_units"):
        meta.pop(key, None)
    meta["warnings"] = warnings
    meta["b_value_units_source"] = units_source
    meta["nifti_affine"] = np.asarray(img.affine, dtype=float).tolist()
    return Acquisition(fids=fids, dwell_s=dwell_s, cf_mhz=cf_mhz, b_values_s_mm2=b_s_mm2,
                       directions=directions, nucleus=nucleus,
                       ref_ppm=_reference_ppm(meta, nucleus, path), metadata=meta, source=str(path))


def _canonical_fids(data: np.ndarray, cond_axes: list, trans_axes: list, coil_axes: list):
    """Data as (conditions, transients, coils, points): several transient dims flattened."""
    moved = np.moveaxis(data[0, 0, 0], [a - 3 for a in cond_axes + trans_axes + coil_axes] + [0],
                        range(len(cond_axes) + len(trans_axes) + len(coil_axes) + 1))
    n_cond = int(np.prod([data.shape[a] for a in cond_axes])) if cond_axes else 1
    n_coil = data.shape[coil_axes[0]] if coil_axes else 1
    return moved.reshape(n_cond, -1, n_coil, data.shape[3])


# --------------------------------------------------------------------------- writer

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
    header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode("utf-8")))
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
