"""The ``dmrs-bids-convert`` TOML mapping: reading and checking it, the nested acquisition
loops of ``dynamics.order``, splitting stored dynamics into diffusion conditions, the BIDS
path of each entry and its b-values/directions (mapping keys: :mod:`bids_app.convert`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from pipeline.io.nifti_mrs import (b_value_unit_problem, normalise_b_value_unit,
                                   small_b_series_note, unit_directions)
from pipeline.units import guess_b_value_units, to_s_mm2

SPEC2NII_FILE_COUNTS = {"philips": 2, "philips_dl": 3, "philips_dcm": 1, "twix": 1, "dicom": 1,
                        "rda": 1, "ge": 1, "text": 1, "jmrui": 1, "raw": 1, "bruker": 1,
                        "varian": 1, "uih": 1}
"""spec2nii subcommands and how many input paths (files, or folders: see below) each takes."""

NIFTI_FORMAT = "nifti"
"""An input already in NIfTI-MRS (any version): read directly, no spec2nii."""
SUFFIXES = ("svs", "mrsref", "mm")
ORDERS = ("condition_fastest", "transient_fastest")
LOOPS = ("transient", "condition", "b", "direction")
"""Names of nested acquisition loops in ``dynamics.order`` (a list, fastest first)."""
LEGACY_ORDERS = {"condition_fastest": ["condition", "transient"],
                 "transient_fastest": ["transient", "condition"]}
ENTITY_KEYS = (("session", "ses"), ("task", "task"), ("acq", "acq"), ("run", "run"))
LABEL_PATTERNS = {"run": r"[0-9]+"}
"""BIDS entity values: labels are alphanumeric (``[0-9a-zA-Z+]+``, BIDS 1.10 schema), a run is
an index (digits). A ``_`` or ``-`` in a label would split the file name into other entities
(``acq-press_30`` reads as ``acq-press``), so the app would pair the wrong files."""


class ConversionError(ValueError):
    """A mapping entry or an input file cannot be converted (the message names it)."""


# --------------------------------------------------------------------------- mapping

def load_mapping(path) -> dict:
    """The TOML mapping at ``path``, checked; raises ConversionError naming the problem."""
    path = Path(path)
    if path.suffix.lower() != ".toml":
        raise ConversionError(f"{path}: the mapping must be a TOML file ending in .toml")
    try:
        mapping = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConversionError(f"{path}: cannot read the TOML mapping ({err})") from err
    entries = mapping.get("acquisition")
    if not isinstance(entries, list) or not entries:
        raise ConversionError(f"{path}: no [[acquisition]] entries")
    ids = [e.get("id") for e in entries if e.get("id")]
    if len(ids) != len(set(ids)):
        raise ConversionError(f"{path}: acquisition ids are not unique: {ids}")
    for i, entry in enumerate(entries):
        _check_entry(entry, f"{path}: acquisition {i + 1} ({entry.get('id', 'no id')})", set(ids))
    by_id = {e["id"]: e for e in entries if e.get("id")}
    for i, entry in enumerate(entries):
        for link in LINK_SUFFIXES:
            problem = link_problem(entry, link, by_id.get(entry.get(link)))
            if problem:
                raise ConversionError(f"{path}: acquisition {i + 1} "
                                      f"({entry.get('id', 'no id')}): {problem}")
    return mapping


LINK_SUFFIXES = {"reference": "mrsref", "macromolecules": "mm"}
"""Mapping link -> the suffix of the acquisition it must name (ReferenceSignal is the water
reference, MacromoleculeSignal the metabolite-nulled MM scan)."""
LINK_KEYS = {"reference": "ReferenceSignal", "macromolecules": "MacromoleculeSignal"}
"""Mapping link -> the BIDS sidecar key it writes."""


def link_problem(entry: dict, link: str, target: dict | None) -> str | None:
    """Why ``entry``'s ``link`` (``reference`` or ``macromolecules``) cannot name ``target``
    (None: it can, or there is no link): itself, or a scan of the wrong kind."""
    if target is None:
        return None
    name = f"{link} {entry[link]!r}"
    if target is entry:
        return f"{name} names this acquisition itself"
    if target["suffix"] != LINK_SUFFIXES[link]:
        return (f"{name} names a {target['suffix']!r} acquisition; {link} must name a "
                f"{LINK_SUFFIXES[link]!r} one")
    return None


def foreign_link_note(entry: dict, link: str, target: dict | None) -> str | None:
    """A warning when ``entry``'s ``link`` names a scan of another participant or session:
    written (a shared or group-average MM spectrum is common practice), but a water reference
    of another person scales this spectrum with that person's water. The app warns again.
    Labels compare as the file names write them (``sub-01`` and ``01`` are one participant)."""
    if target is None:
        return None
    for key, entity in (("participant", "sub"), ("session", "ses")):
        mine, theirs = _entity_label(entry, key, entity), _entity_label(target, key, entity)
        if mine != theirs:
            return (f"{link} {entry[link]!r} of acquisition {entry.get('id', '')!r} "
                    f"({key} {mine or '(none)'!r}) names a scan of {key} "
                    f"{theirs or '(none)'!r}: it will be used as this scan's "
                    f"{'water reference' if link == 'reference' else 'measured MM'}")
    return None


def _entity_label(entry: dict, key: str, entity: str) -> str:
    """The BIDS label of ``entry[key]`` without its ``<entity>-`` prefix ('' when absent)."""
    value = entry.get(key)
    return "" if value in (None, "") else str(value).removeprefix(f"{entity}-")


def _is_nifti_name(name) -> bool:
    return str(name).lower().endswith((".nii", ".nii.gz"))


def _check_entry(entry: dict, where: str, ids: set) -> None:
    files = entry.get("files")
    if "format" not in entry and isinstance(files, list) and len(files) == 1 and \
            _is_nifti_name(files[0]):
        entry["format"] = NIFTI_FORMAT  # a lone .nii(.gz) file needs no format key
    for key in ("participant", "suffix", "format", "files"):
        if key not in entry:
            raise ConversionError(f"{where}: missing key {key!r}")
    if entry["suffix"] not in SUFFIXES:
        raise ConversionError(f"{where}: suffix {entry['suffix']!r} is not one of {SUFFIXES}")
    for key, entity in (("participant", "sub"),) + ENTITY_KEYS:
        problem = label_problem(key, entity, entry.get(key))
        if problem:
            raise ConversionError(f"{where}: {problem}")
    fmt = entry["format"]
    counts = {NIFTI_FORMAT: 1, **SPEC2NII_FILE_COUNTS}
    if fmt not in counts:
        raise ConversionError(f"{where}: format {fmt!r} is neither {NIFTI_FORMAT!r} (NIfTI-MRS "
                              f"input) nor a spec2nii subcommand ({', '.join(SPEC2NII_FILE_COUNTS)})")
    if len(entry["files"]) != counts[fmt]:
        raise ConversionError(f"{where}: format {fmt} takes {counts[fmt]} file(s), "
                              f"got {len(entry['files'])}")
    if not isinstance(entry.get("dim_roles", {}), dict):
        raise ConversionError(f"{where}: dim_roles must be a table, e.g. "
                              '{ DIM_USER_1 = "transients" }')
    for link in ("reference", "macromolecules"):
        if link in entry and entry[link] not in ids:
            raise ConversionError(f"{where}: {link} {entry[link]!r} is not the id of an acquisition")
    loops = dynamics_loops(entry, where)
    n_cond = n_conditions(entry, loops, where)
    diffusion = entry.get("diffusion", {})
    nested = "b" in loops
    if "b_values" in diffusion and not nested and len(diffusion["b_values"]) != n_cond:
        raise ConversionError(f"{where}: {len(diffusion['b_values'])} b-values for "
                              f"{n_cond} conditions")
    if n_cond > 1 and "b_values" not in diffusion:
        raise ConversionError(f"{where}: {n_cond} conditions need diffusion.b_values")
    if "directions" in diffusion and not nested and len(diffusion["directions"]) != n_cond:
        raise ConversionError(f"{where}: {len(diffusion['directions'])} directions for "
                              f"{n_cond} conditions")
    if not isinstance(entry.get("conjugate", False), bool):
        raise ConversionError(f"{where}: conjugate must be true or false")
    if not isinstance(entry.get("dynamics", {}).get("check_order", True), bool):
        raise ConversionError(f"{where}: dynamics.check_order must be true or false")
    unit = diffusion.get("b_value_units", "auto")
    if unit != "auto" and normalise_b_value_unit(unit) is None:
        raise ConversionError(f"{where}: b_value_units {unit!r} is not s/mm2, ms/um2 or auto")


def label_problem(key: str, entity: str, value) -> str | None:
    """Why mapping value ``value`` of ``key`` (BIDS entity ``entity``, its ``entity-`` prefix
    allowed) is not a valid BIDS label (:data:`LABEL_PATTERNS`), or None (valid or absent)."""
    if value is None or value == "":
        return None
    label = str(value).removeprefix(f"{entity}-")
    pattern = LABEL_PATTERNS.get(key, r"[0-9a-zA-Z+]+")
    if re.fullmatch(pattern, label):
        return None
    kind = "a run is a number (digits only)" if key == "run" else \
        "BIDS labels are alphanumeric (letters and digits, '+' allowed)"
    hint = re.sub(r"[^0-9]" if key == "run" else r"[^0-9a-zA-Z+]", "", label)
    return (f"{key} = {value!r} is not a valid BIDS {entity} label: {kind}; '_' and '-' "
            f"separate entities in BIDS file names, so the file would be matched as another "
            f"acquisition" + (f" (e.g. {key} = {hint!r})" if hint else ""))


def dynamics_loops(entry: dict, where: str) -> list[str]:
    """``dynamics.order`` as a list of nested loops, fastest first.

    Either a legacy word ("condition_fastest", "transient_fastest") or a list of loop names
    from :data:`LOOPS`, e.g. ``["direction", "b", "transient"]``: the direction changes from
    one stored dynamic to the next, then the b-value, then the repeat. With "b" (and
    "direction"), ``diffusion.b_values`` holds one b per step of the b loop and
    ``diffusion.directions`` one direction per step of the direction loop.
    """
    order = entry.get("dynamics", {}).get("order", "condition_fastest")
    if isinstance(order, str):
        if order not in LEGACY_ORDERS:
            raise ConversionError(f"{where}: dynamics.order must be one of {ORDERS} or a list "
                                  f"of loops from {LOOPS}, fastest first")
        return list(LEGACY_ORDERS[order])
    loops = [str(x) for x in order] if isinstance(order, list) else []
    unknown = [x for x in loops if x not in LOOPS]
    if not loops or unknown or len(set(loops)) != len(loops) or "transient" not in loops:
        raise ConversionError(f"{where}: dynamics.order {order!r} must list distinct loops "
                              f"from {LOOPS} (fastest first), including 'transient'")
    if "condition" in loops and ("b" in loops or "direction" in loops):
        raise ConversionError(f"{where}: dynamics.order mixes 'condition' with 'b'/'direction'; "
                              "use either one condition loop or separate b and direction loops")
    if "direction" in loops and "b" not in loops:
        raise ConversionError(f"{where}: dynamics.order has a 'direction' loop but no 'b' loop")
    return loops


def loop_sizes(entry: dict, loops: list[str], where: str) -> dict:
    """Steps of each non-transient loop: b -> len(b_values), direction -> len(directions),
    condition -> dynamics.n_conditions."""
    diffusion, sizes = entry.get("diffusion", {}), {}
    for loop in loops:
        if loop == "condition":
            sizes[loop] = int(entry.get("dynamics", {}).get("n_conditions", 1))
        elif loop == "b":
            if "b_values" not in diffusion:
                raise ConversionError(f"{where}: dynamics.order has a 'b' loop but "
                                      "diffusion.b_values is missing (one per b step)")
            sizes[loop] = len(diffusion["b_values"])
        elif loop == "direction":
            if "directions" not in diffusion:
                raise ConversionError(f"{where}: dynamics.order has a 'direction' loop but "
                                      "diffusion.directions is missing (one per direction step)")
            sizes[loop] = len(diffusion["directions"])
    for loop, size in sizes.items():
        if size < 1:
            raise ConversionError(f"{where}: the {loop} loop has {size} steps; needs >= 1")
    return sizes


def n_conditions(entry: dict, loops: list[str], where: str) -> int:
    """Number of diffusion conditions the loops define (b steps x direction steps)."""
    sizes = loop_sizes(entry, loops, where)
    n = int(np.prod([sizes[k] for k in sizes])) if sizes else 1
    stated = entry.get("dynamics", {}).get("n_conditions")
    if stated is not None and int(stated) != n:
        raise ConversionError(f"{where}: dynamics.n_conditions = {stated} but the loops in "
                              f"dynamics.order give {n} conditions")
    return n


def split_loops(fids: np.ndarray, loops: list[str], sizes: dict, source) -> np.ndarray:
    """(1, n_dyn, coils, points) -> (conditions, transients, coils, points) for nested loops
    listed fastest first. Conditions come out b slowest, direction within (shell by shell)."""
    if fids.shape[0] != 1:
        raise ConversionError(f"{source}: converted data already have {fids.shape[0]} conditions")
    n_dyn = fids.shape[1]
    n_other = int(np.prod([sizes[k] for k in loops if k != "transient"]))
    if n_dyn % n_other:
        raise ConversionError(f"{source}: {n_dyn} dynamics do not split into "
                              f"{' x '.join(f'{sizes[k]} {k}' for k in loops if k != 'transient')}"
                              " steps (dynamics.order / diffusion lists)")
    steps = dict(sizes, transient=n_dyn // n_other)
    slowest_first = loops[::-1]
    shaped = fids[0].reshape(*[steps[k] for k in slowest_first], *fids.shape[2:])
    wanted = [k for k in ("condition", "b", "direction", "transient") if k in loops]
    shaped = np.moveaxis(shaped, [slowest_first.index(k) for k in wanted], range(len(wanted)))
    return shaped.reshape(n_other, steps["transient"], *fids.shape[2:])


def bids_relative_path(entry: dict) -> Path:
    """``sub-XX/[ses-YY/]mrs/sub-XX[_ses-YY][_task-][_acq-][_run-]_<suffix>.nii.gz``."""
    sub = f"sub-{str(entry['participant']).removeprefix('sub-')}"
    suffix = entry["suffix"]
    labels = dict(entry)
    if suffix == "mm":
        labels.setdefault("acq", "mm")
        suffix = "svs"
    parts, folder = [sub], Path(sub)
    for key, entity in ENTITY_KEYS:
        if labels.get(key) not in (None, ""):
            value = str(labels[key]).removeprefix(f"{entity}-")
            parts.append(f"{entity}-{value}")
            if key == "session":
                folder = folder / f"ses-{value}"
    return folder / "mrs" / ("_".join(parts + [suffix]) + ".nii.gz")


# --------------------------------------------------------------------------- dynamics

def split_dynamics(fids: np.ndarray, n_conditions: int, order: str, source) -> np.ndarray:
    """(1, n_dyn, coils, points) -> (n_conditions, n_dyn / n_conditions, coils, points).

    ``order="condition_fastest"``: dynamic k is condition k % n_conditions (b varies fastest);
    ``"transient_fastest"``: dynamic k is condition k // n_transients.
    """
    if order not in LEGACY_ORDERS:
        raise ConversionError(f"{source}: unknown dynamics order {order!r}")
    return split_loops(fids, LEGACY_ORDERS[order], {"condition": n_conditions}, source)


def _diffusion_conditions(entry: dict, n_cond: int, where: str, mapping_path: Path):
    """b-values (s/mm^2), unit directions, units decision text and warnings of one entry."""
    diffusion = entry.get("diffusion", {})
    if "b_values" not in diffusion:
        return np.zeros(n_cond), np.full((n_cond, 3), np.nan), "no diffusion weighting (b = 0)", []
    loops = dynamics_loops(entry, where)
    b_raw = np.asarray(diffusion["b_values"], dtype=float)
    dirs = diffusion.get("directions")
    if "b" in loops and "direction" in loops:
        b_raw = np.repeat(b_raw, len(dirs))
        dirs = [d for _ in diffusion["b_values"] for d in dirs]
    elif "b" in loops and dirs is not None and len(dirs) != len(b_raw):
        raise ConversionError(f"{where}: {len(dirs)} directions for {len(b_raw)} b steps "
                              "(add a 'direction' loop to dynamics.order)")
    if np.any(b_raw < 0) or not np.all(np.isfinite(b_raw)):
        raise ConversionError(f"{where}: b-values must be finite and >= 0, got {b_raw.tolist()}")
    unit = diffusion.get("b_value_units", "auto")
    notes = []
    if unit == "auto":
        unit = guess_b_value_units(b_raw)
        notes.append(f"{where}: b_value_units not given; guessed {unit} from the values")
        source = f"guessed from values ({unit})"
    else:
        unit = normalise_b_value_unit(unit)
        source = f"conversion mapping {mapping_path.name} ({unit})"
    found = b_value_unit_problem(b_raw, unit)
    if found is not None:
        problem, likely = found
        fix = f'set diffusion.b_value_units = "{likely}"' if likely else "correct them"
        raise ConversionError(f"{where}: diffusion {problem}; {fix}")
    small = small_b_series_note(b_raw, unit, "diffusion.b_value_units", 'If they are in ms/um2, '
                                'set diffusion.b_value_units = "ms/um2"', where)
    notes.extend([small] if small else [])
    b_s_mm2 = to_s_mm2(b_raw, unit)
    directions = unit_directions(dirs, b_s_mm2, where, notes)
    return b_s_mm2, directions, source, notes
