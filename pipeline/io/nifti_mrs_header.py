"""NIfTI-MRS header interpretation: the keys and tags the project reads and writes, which
dimension holds what (coils, transients, b-values, directions) and in which b-value unit.

The rules are stated in :mod:`pipeline.io.nifti_mrs` (the reader); the writer
(:mod:`pipeline.io.nifti_mrs_write`) shares the keys and tags defined here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..units import guess_b_value_units, to_s_mm2

B_UNITS_KEY = "DiffusionBValueUnits"
B_UNITS_SOURCE_KEY = "DiffusionBValueUnitsSource"
WARNINGS_KEY = "ConversionWarnings"
SIDECAR_B_UNITS_KEYS = (B_UNITS_KEY, "BValueUnits", "b_value_units")
RUNTIME_KEYS = ("warnings", "b_value_units_source", "nifti_affine")
"""Metadata keys the reader fills itself (not copied into the header as such)."""
B_MAX_PLAUSIBLE_S_MM2 = 250_000.0
"""Largest plausible b-value (s/mm^2; 250 ms/um^2): published dMRS b-values reach about 60
ms/um^2, so a larger one means b-values in s/mm^2 read as ms/um^2."""
B_MIN_WEIGHTED_S_MM2 = 10.0
"""A largest b-value above 0 but below this (s/mm^2) weights nothing: b-values in ms/um^2 read
as s/mm^2."""

SMALL_B_SERIES_MAX_S_MM2 = 100.0
"""A series stated in s/mm^2 whose b-values are all at most this, with at least
:data:`SMALL_B_SERIES_MIN_VALUES` distinct nonzero ones, is warned about as ms/um^2 labelled
s/mm^2 (the same 100 that :func:`pipeline.units.guess_b_value_units` uses): b = 100 s/mm^2
attenuates a metabolite (D ~ 0.15 um^2/ms) by 1.5 %, so such a series measures no decay."""
SMALL_B_SERIES_MIN_VALUES = 3

CONDITION_TAG = "DIM_USER_0"
TRANSIENT_TAGS = ("DIM_DYN", "DIM_MEAS", "DIM_USER_0", "DIM_USER_1", "DIM_USER_2")
CONDITION_CAPABLE_TAGS = ("DIM_DYN", "DIM_USER_0", "DIM_USER_1", "DIM_USER_2")
DEFAULT_DIM_TAGS = {5: "DIM_COIL", 6: "DIM_DYN", 7: "DIM_INDIRECT_0"}

_B_KEYS = {"bval", "bvals", "bvalue", "bvalues", "b", "diffusionbvalue", "diffusionbvalues"}
_DIRECTION_KEYS = {"direction", "directions", "bvec", "bvecs", "gradientdirection",
                   "gradientdirections", "diffusiongradientdirection",
                   "diffusiongradientorientation", "orientation"}


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


def implausible_largest_b(largest_s_mm2: float) -> str | None:
    """Why a largest b-value (s/mm^2) cannot be a dMRS acquisition's, or None when it is 0 or
    in [:data:`B_MIN_WEIGHTED_S_MM2`, :data:`B_MAX_PLAUSIBLE_S_MM2`]. Shared by the header
    b-values (:func:`b_value_unit_problem`) and those computed from gradient chronograms."""
    if largest_s_mm2 > B_MAX_PLAUSIBLE_S_MM2:
        return (f"above {B_MAX_PLAUSIBLE_S_MM2:g} s/mm^2 (250 ms/um^2; published dMRS "
                "b-values reach about 60 ms/um^2)")
    if 0 < largest_s_mm2 < B_MIN_WEIGHTED_S_MM2:
        return f"below {B_MIN_WEIGHTED_S_MM2:g} s/mm^2, i.e. no diffusion weighting"
    return None


def b_value_unit_problem(b_raw, unit: str) -> tuple[str, str | None] | None:
    """Why b-values ``b_raw`` in ``unit`` cannot be right, and the unit they likely are in
    (the one :func:`pipeline.units.guess_b_value_units` gives, None when it gives no plausible
    values either); None when the largest b (s/mm^2) is 0 or in
    [:data:`B_MIN_WEIGHTED_S_MM2`, :data:`B_MAX_PLAUSIBLE_S_MM2`]."""
    b_s_mm2 = to_s_mm2(b_raw, unit)
    largest = float(np.max(b_s_mm2)) if b_s_mm2.size else 0.0
    why = implausible_largest_b(largest)
    if why is None:
        return None
    likely = guess_b_value_units(b_raw)
    if likely == unit or b_value_unit_problem(b_raw, likely) is not None:
        likely = None
    values = ", ".join(f"{b:g}" for b in np.unique(np.asarray(b_raw, dtype=float))[:12])
    return (f"b-values [{values}] in {unit} give a largest b of {largest:.10g} s/mm^2, {why}; "
            + (f"they look like {likely}" if likely else
               "neither s/mm2 nor ms/um2 makes them plausible: check the b-values"), likely)


def small_b_series_note(b_raw, unit: str, stated_where: str, fix: str, path) -> str | None:
    """A warning when b-values stated in s/mm^2 look like ms/um^2 (every b at most
    :data:`SMALL_B_SERIES_MAX_S_MM2`, largest at least :data:`B_MIN_WEIGHTED_S_MM2`, at least
    :data:`SMALL_B_SERIES_MIN_VALUES` distinct nonzero values), else None. A warning, not a
    refusal: a real low-b (IVIM-type) series looks the same, and ``fix`` names the setting that
    corrects or confirms the unit. Crusher-only b-values (largest below 10 s/mm^2) are left to
    :func:`b_value_unit_problem`."""
    b = np.asarray(b_raw, dtype=float)
    nonzero = np.unique(b[b > 0])
    if unit != "s/mm2" or nonzero.size < SMALL_B_SERIES_MIN_VALUES or \
            not B_MIN_WEIGHTED_S_MM2 <= nonzero.max() <= SMALL_B_SERIES_MAX_S_MM2:
        return None
    values = ", ".join(f"{v:g}" for v in np.unique(b)[:12])
    return (f"{path}: b-values [{values}] are stated as s/mm2 ({stated_where}), but all "
            f"{nonzero.size} nonzero ones are at most {SMALL_B_SERIES_MAX_S_MM2:g} s/mm^2, "
            "which weights metabolites by under 2 %: these look like ms/um2 labelled s/mm2 "
            f"(read as s/mm2 the decays come out flat and b = 0 amplitudes wrong). {fix}")


def _canonical_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _unwrap(value):
    """The value of a user-defined ``{"Value": ..., "Description": ...}`` entry (else as is)."""
    if isinstance(value, dict) and "Value" in value:
        return value["Value"]
    return value


def normalised_nucleus(text) -> str:
    """A nucleus written as NIfTI-MRS does ("1H", "31P"): mass number first, element symbol
    capitalised, so "1h", "H1" and " 1H " are the proton (a reader comparing the text as given
    took "1h" for another nucleus and put the ppm reference at 0). Text it cannot parse is
    returned stripped."""
    plain = str(text).strip()
    number = "".join(c for c in plain if c.isdigit())
    letters = "".join(c for c in plain if c.isalpha())
    if not number or not letters or len(number) + len(letters) != len(plain):
        return plain
    return f"{number}{letters.capitalize()}"


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


# --------------------------------------------------------------------------- dimensions

DIM_ROLES = ("transients", "b", "direction", "conditions", "coils")
"""Roles a user may give a dimension (``dim_roles``, keyed by tag or ``dim_N``)."""

DIM_ROLES_SETTING = "[conversion] dim_roles (dmrs-bids config) or dim_roles (dmrs-bids-convert mapping)"


def _has_key(header: dict, keys: set) -> bool:
    return any(_canonical_key(k) in keys for k in header)


def _short_values(values) -> str:
    """A dim-header list (or start/increment object) as short text for an error message."""
    if isinstance(values, dict) and {"start", "increment"} <= set(values):
        return f"start {values['start']}, increment {values['increment']}"
    if isinstance(values, (list, tuple)):
        return ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")
    return repr(values)


def _stated_diffusion(header: dict) -> str:
    """The b-values and directions a dim header states, for error messages."""
    return " and ".join(f"{key!r} [{_short_values(_unwrap(value))}]"
                        for key, value in header.items()
                        if _canonical_key(key) in _B_KEYS | _DIRECTION_KEYS)


def _varies(values, size: int) -> bool:
    """Whether a dim-header value (a list, or the ``{"start", "increment"}`` form) gives the
    ``size`` entries of its dimension more than one distinct value."""
    if size < 2:
        return False
    if isinstance(values, dict) and {"start", "increment"} <= set(values):
        return values["increment"] != 0
    return isinstance(values, (list, tuple)) and len({repr(v) for v in values}) > 1


def _states_distinct_conditions(header: dict, size: int) -> bool:
    """Whether a dim header labels the ``size`` entries of its dimension with more than one
    b-value or direction (so pooling them would merge diffusion conditions); one entry, or the
    same b and direction on every entry (one condition per file), labels nothing to merge.
    Lists and the start/increment form (b = start + i * increment) are both read."""
    return any(_varies(_unwrap(value), size) for key, value in header.items()
               if _canonical_key(key) in _B_KEYS | _DIRECTION_KEYS)


TIMING_KEYS = ("EchoTime", "MixingTime", "DiffusionTime", "DiffusionGradientSeparation",
               "DiffusionGradientDuration")
"""Timings the basis simulation and the diffusion models take as one value per acquisition:
a dim header stating several (a TE or diffusion-time series in one file) is refused, since
its conditions would be pooled into one series (one ADC over two mixing times)."""


def check_timing_series(header: dict, dim: int, size: int, path) -> None:
    """Refuse a ``dim_N_header`` giving the entries of its dimension different values of a
    :data:`TIMING_KEYS` timing (equal values on every entry are one timing: accepted)."""
    wanted = {_canonical_key(k): k for k in TIMING_KEYS}
    for key, value in header.items():
        values = _unwrap(value)
        if _canonical_key(key) in wanted and _varies(values, size):
            raise _fail(path, f"dim_{dim}_header {key!r} gives its {size} entries different "
                              f"{wanted[_canonical_key(key)]} values [{_short_values(values)}]: "
                              "dmrs-bids models one timing per acquisition, and these entries "
                              "would be pooled into one diffusion series. Split the series into "
                              "one file per timing (each with its own sidecar value)")


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
    if role in ("transients", "coils") and _states_distinct_conditions(header, size):
        raise _fail(path, f"dim_roles gives dim_{dim} ({tag}) the role {role!r}, but its "
                          f"header states {_stated_diffusion(header)}: as {role} the diffusion "
                          "conditions would be merged into one spectrum. dim_roles applies to "
                          "every file, so a role meant for other files whose dimension has no "
                          "header reaches this one too: remove it and give those files a dim "
                          "header, or process them with their own config")
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
        check_timing_series(header, dim, size, path)
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


def _looks_like_vectors(value, size: int) -> bool:
    """A list of ``size`` entries, each a 3-vector of numbers (or None for b = 0)."""
    if not isinstance(value, list) or len(value) != size:
        return False
    vectors = [v for v in value if v is not None]
    return bool(vectors) and all(
        isinstance(v, (list, tuple)) and len(v) == 3
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        for v in vectors)


def unread_direction_keys_note(layout: dict, data_shape, path) -> str | None:
    """A warning when the diffusion dimension's header states no direction under a known key
    (:data:`_DIRECTION_KEYS`) but holds a 3-vector per condition under another (e.g.
    ``diffusion_direction``): those directions are not read, so no tensor is fitted and
    direction-dependent steps treat the data as direction-free."""
    axis = layout["conditions"] if layout["conditions"] is not None else layout["direction"]
    header = (layout["conditions_header"] if layout["conditions"] is not None
              else layout["direction_header"]) or {}
    if axis is None or _has_key(header, _DIRECTION_KEYS):
        return None
    keys = [k for k, v in header.items() if _looks_like_vectors(_unwrap(v), data_shape[axis])]
    if not keys:
        return None
    return (f"{path}: dim_{axis + 1}_header holds a 3-vector per condition under "
            f"{', '.join(repr(k) for k in keys)}, which is not a known gradient-direction key "
            f"(known: {', '.join(sorted(_DIRECTION_KEYS))}): the directions were not read; "
            "rename the key (e.g. to 'direction') if they are the gradient directions")


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


def unit_directions(directions, b_s_mm2: np.ndarray, path, warnings: list | None = None
                    ) -> np.ndarray:
    """(n, 3) unit vectors; NaN rows where none applies (missing, b = 0, or the zero vectors
    :func:`check_zero_directions` lets pass)."""
    out = np.full((b_s_mm2.size, 3), np.nan)
    if directions is None:
        return out
    zero = []
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
        elif b_s_mm2[i] >= B_MIN_WEIGHTED_S_MM2:  # below: a crusher's b on a "b = 0" condition
            zero.append(i)
    check_zero_directions(zero, b_s_mm2, bool(np.any(np.isfinite(out))), path, warnings)
    return out


def check_zero_directions(zero: list[int], b_s_mm2: np.ndarray, others_have_directions: bool,
                          path, warnings: list | None) -> None:
    """Diffusion-weighted conditions ``zero`` (b of at least ``B_MIN_WEIGHTED_S_MM2``; a few
    s/mm^2 from crushers on a reference condition is no weighting) whose direction is
    [0, 0, 0]: a zero-length gradient cannot weight b > 0. Refused when other weighted conditions have directions
    (read as "no direction", they would change the shell and direction grouping of the
    powder average and tensor); a warning when none has one (isotropic or trace weighting,
    or directions unknown: the file holds no direction information)."""
    if not zero:
        return
    listed = ", ".join(f"{i} (b = {b_s_mm2[i]:g} s/mm^2)" for i in zero[:8])
    listed += f" and {len(zero) - 8} more" if len(zero) > 8 else ""
    if others_have_directions:
        raise _fail(path, f"diffusion-weighted condition(s) {listed} have gradient direction "
                          "[0, 0, 0] while the other diffusion-weighted conditions have "
                          "directions: a zero-length gradient cannot weight b > 0 (only b = 0 "
                          "may have [0, 0, 0]). Give their directions in the header, or "
                          "correct their b-values if they are b = 0 conditions")
    if warnings is not None:
        warnings.append(f"{path}: every diffusion-weighted condition has gradient direction "
                        f"[0, 0, 0] (conditions {listed}); read as no direction (isotropic or "
                        "trace weighting, or directions unknown): no direction grouping or "
                        "tensor fit. Give the directions in the header if they are known")


def _label_groups(b_s_mm2: np.ndarray, directions: np.ndarray) -> list[list[int]]:
    """Indices of each distinct (b, direction) pair, in order of first appearance."""
    keys = [(b, *np.nan_to_num(d, nan=9.0)) for b, d in zip(b_s_mm2, directions)]
    return [[i for i, k in enumerate(keys) if k == u] for u in dict.fromkeys(keys)]


def _group_repeats(groups: list[list[int]]):
    """``(order, n_unique)`` for label groups (:func:`_label_groups`) that repeat equally
    often, ``order`` the indices grouped by label; None when every label is unique or the
    counts differ."""
    n_dynamics = sum(len(g) for g in groups)
    if len(groups) == n_dynamics or len({len(g) for g in groups}) != 1:
        return None
    return np.concatenate(groups), len(groups)


def unequal_repeats_note(groups: list[list[int]], b_s_mm2: np.ndarray, path) -> str | None:
    """A warning when labels along DIM_DYN (:func:`_label_groups`) repeat, but not equally
    often: the repeats cannot be grouped into conditions of equal transients, so every dynamic
    stays a condition of its own (one transient each: no alignment or outlier rejection within
    a condition). None when the labels are unique or repeat equally."""
    if len(groups) == len(b_s_mm2) or len({len(g) for g in groups}) == 1:
        return None
    shown = ", ".join(f"b = {b_s_mm2[g[0]]:g} s/mm^2: {len(g)}" for g in groups[:6])
    more = f" and {len(groups) - 6} more" if len(groups) > 6 else ""
    return (f"{path}: the {len(groups)} distinct (b-value, direction) labels along DIM_DYN "
            f"repeat unequally ({shown}{more} dynamics), so the repeats cannot be grouped as "
            f"transients of one condition each: each of the {len(b_s_mm2)} dynamics is kept as "
            "a condition of one transient (no alignment or outlier rejection within a "
            "condition). If dynamics with one label are different directions, give their "
            "directions in the header; if they are repeats, give every label equally often")


# --------------------------------------------------------------------------- units

def _decide_units(b_raw, requested: str, sidecar: dict, ext: dict, dim_unit, dim_unit_where,
                  path: Path, warnings: list):
    """(unit, source description) for the b-values of ``path``; refuses a unit (stated,
    requested or guessed) that makes them implausible (:func:`b_value_unit_problem`)."""
    unit, source = _unit_decision(b_raw, requested, sidecar, ext, dim_unit, dim_unit_where,
                                  path, warnings)
    found = b_value_unit_problem(b_raw, unit)
    if found is None:
        if not source.startswith(("user", "guessed")) and B_UNITS_SOURCE_KEY not in ext:
            note = small_b_series_note(
                b_raw, unit, source, 'If they are in ms/um2, correct the stated unit or set '
                'b_value_units = "ms/um2" (--b-value-units, config [conversion] '
                'b_value_units); if they really are s/mm2, confirm with b_value_units = "s/mm2"',
                path)
            warnings.extend([note] if note else [])
        return unit, source
    problem, likely = found
    option = "--b-value-units (config [conversion] b_value_units)"
    if source.startswith("user"):
        how = f"the unit {unit} was requested with {option}" + (
            f"; request {likely}, or auto to use the unit the header or sidecar states"
            if likely else "")
    elif source.startswith("guessed"):
        how = "no unit is stated"
    else:
        where = (f"{source} (it wins over a sidecar's {B_UNITS_KEY})"
                 if source.startswith("header") else source)
        how = f"the unit {unit} is stated in the {where}" + (
            f"; correct it there to \"{likely}\", or override it with --b-value-units "
            f"{likely} (config [conversion] b_value_units)" if likely else "")
    raise _fail(path, f"{problem}: {how}")


def _unit_decision(b_raw, requested: str, sidecar: dict, ext: dict, dim_unit, dim_unit_where,
                   path: Path, warnings: list):
    """(unit, source description) as stated, requested or guessed (see :func:`_decide_units`)."""
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
