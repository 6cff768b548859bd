"""``dmrs-bids-convert``: vendor MRS files -> an MRS-BIDS dataset, through spec2nii.

A small declarative TOML mapping says, for each input file, where it goes in BIDS and how its
dynamics split into diffusion conditions. Examples are installed with the package
(``dmrs-bids-convert --example NAME``; ``--help`` lists them)::

    [dataset]
    name = "dMRS 7T STEAM in vivo"
    authors = ["..."]                  # optional; license, bids_version, anonymise also
    [sidecar]                          # optional: sidecar keys for every acquisition
    MixingTime = 0.060

    [[acquisition]]
    id = "metab"                       # optional; used by `reference` / `macromolecules`
    participant = "01"
    session = "1"                      # optional; also task, acq, run
    acq = "dwsteam"
    suffix = "svs"                     # svs | mrsref | mm (mm: an svs file, acq label "mm")
    format = "philips"                 # a spec2nii subcommand, or "nifti" for NIfTI-MRS input
                                       # (any version; may be left out for one .nii(.gz) file)
    files = ["metab_raw_act.SDAT", "metab_raw_act.SPAR"]   # relative to --source-dir; a
                                       # folder for varian (the .fid folder), file or folder
                                       # for bruker
    spec2nii_args = []                 # optional extra spec2nii arguments (e.g. ["-e", "image"])
    conjugate = false                  # optional: conjugate the data (files stored with the
                                       # opposite sign convention, e.g. ISMRM 2016 challenge RAW)
    reference = "water"                # id of the mrsref -> ReferenceSignal (BIDS URI)
    macromolecules = "mm"              # id of the MM acquisition -> MacromoleculeSignal
    dim_roles = { DIM_USER_1 = "transients" }   # optional: NIfTI-MRS dims the header leaves unclear
    [acquisition.dynamics]
    n_conditions = 10
    order = "condition_fastest"        # or "transient_fastest", or nested loops fastest first:
                                       # ["direction", "b", "transient"] (b_values then hold
                                       # one b per b step, directions one per direction step)
    [acquisition.diffusion]
    b_values = [0, 907, ...]           # one per condition
    b_value_units = "s/mm2"            # or "ms/um2"
    directions = [[0, 0, 0], [1, 1, -0.5], ...]   # optional; zero vector = none
    [acquisition.sidecar]
    EchoTime = 0.040
    DiffusionGradientDuration = 0.015

Outputs: ``sub-XX/[ses-YY/]mrs/*_{svs,mrsref}.nii.gz`` (current-standard NIfTI-MRS, conditions
on ``DIM_USER_0`` with b in s/mm^2) with JSON sidecars, ``dataset_description.json``,
``README`` and ``participants.tsv``. Existing outputs are never replaced without
``--overwrite``. spec2nii runs in-process; nothing uses the network.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import warnings as _warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from pipeline import __version__
from pipeline.acquisition import Acquisition
from pipeline.io.json_values import write_json
from pipeline.io.nifti_mrs import (NiftiMrsError, normalise_b_value_unit, read_nifti_mrs,
                                   unit_directions, write_nifti_mrs)
from pipeline.sequences import identify_sequence
from pipeline.units import field_strength_t, guess_b_value_units, to_s_mm2

SPEC2NII_FILE_COUNTS = {"philips": 2, "philips_dl": 3, "philips_dcm": 1, "twix": 1, "dicom": 1,
                        "rda": 1, "ge": 1, "text": 1, "jmrui": 1, "raw": 1, "bruker": 1,
                        "varian": 1, "uih": 1}
"""spec2nii subcommands and how many input paths (files, or folders: see below) each takes."""

SPEC2NII_DEFAULT_ARGS = {"twix": ["-e", "image"]}
SPEC2NII_FOLDER_INPUTS = {"varian": "folder", "bruker": "file or folder"}
"""spec2nii subcommands whose input is a folder (Varian ``.fid``: ``fid`` + ``procpar``) or
may be one (Bruker: a study/scan folder or a ``fid``/``2dseq`` file); all others take files."""
NIFTI_FORMAT = "nifti"
"""An input already in NIfTI-MRS (any version): read directly, no spec2nii."""
SUFFIXES = ("svs", "mrsref", "mm")
ORDERS = ("condition_fastest", "transient_fastest")
LOOPS = ("transient", "condition", "b", "direction")
"""Names of nested acquisition loops in ``dynamics.order`` (a list, fastest first)."""
LEGACY_ORDERS = {"condition_fastest": ["condition", "transient"],
                 "transient_fastest": ["transient", "condition"]}
ENTITY_KEYS = (("session", "ses"), ("task", "task"), ("acq", "acq"), ("run", "run"))

_HEADER_TO_SIDECAR = {
    "Manufacturer": "Manufacturer", "ManufacturersModelName": "ManufacturersModelName",
    "DeviceSerialNumber": "DeviceSerialNumber", "SoftwareVersions": "SoftwareVersions",
    "InstitutionName": "InstitutionName", "InstitutionAddress": "InstitutionAddress",
    "SequenceName": "SequenceName", "EchoTime": "EchoTime", "RepetitionTime": "RepetitionTime",
    "MixingTime": "MixingTime", "InversionTime": "InversionTime",
    "ExcitationFlipAngle": "FlipAngle", "WaterSuppressed": "WaterSuppression",
    "PulseSequenceType": "PulseSequenceType", "NumberOfTransients": "NumberOfTransients",
}
"""NIfTI-MRS header keys copied into the BIDS sidecar (header name -> BIDS name)."""

PULSE_SEQUENCE_TYPES = {"steam": "STEAM", "press": "PRESS", "slaser": "sLASER",
                        "se": "spin echo", "fid": "FID"}
"""BIDS PulseSequenceType written for each sequence identified from the vendor header."""


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
    return mapping


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
    unit = diffusion.get("b_value_units", "auto")
    if unit != "auto" and normalise_b_value_unit(unit) is None:
        raise ConversionError(f"{where}: b_value_units {unit!r} is not s/mm2, ms/um2 or auto")


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


# --------------------------------------------------------------------------- spec2nii

def run_spec2nii(fmt: str, files: list[Path], out_dir: Path, extra_args=(),
                 anonymise: bool = True) -> list[Path]:
    """Run spec2nii ``fmt`` in-process on ``files``; the NIfTI-MRS files it wrote.

    Any failure (spec2nii raises many exception types for unreadable files) becomes a
    ConversionError naming the first input file.
    """
    from spec2nii.spec2nii import spec2nii as Spec2nii

    for f in files:
        problem = input_problem(fmt, Path(f))
        if problem:
            raise ConversionError(f"{f}: {problem}")
    args = list(extra_args) or SPEC2NII_DEFAULT_ARGS.get(fmt, [])
    argv = ["spec2nii", fmt, *map(str, files), "-o", str(out_dir), "-f", "converted", *args]
    if anonymise:
        argv.append("--anon")
    saved_argv, log = sys.argv, io.StringIO()
    try:
        sys.argv = argv
        with redirect_stdout(log), redirect_stderr(log), _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            Spec2nii()
    except SystemExit as err:
        raise ConversionError(f"{files[0]}: spec2nii {fmt} rejected the arguments {args} "
                              f"(exit {err.code}): {log.getvalue().strip()[-500:]}") from None
    except Exception as err:  # noqa: BLE001 -- third-party readers raise anything
        what = "folder" if Path(files[0]).is_dir() else "file"
        raise ConversionError(f"{files[0]}: spec2nii {fmt} could not convert this {what} "
                              f"({_spec2nii_reason(err)})") from err
    finally:
        sys.argv = saved_argv
    outputs = sorted(Path(out_dir).glob("*.nii.gz"))
    if not outputs:
        raise ConversionError(f"{files[0]}: spec2nii {fmt} wrote no NIfTI-MRS file")
    return outputs


def input_problem(fmt: str, path: Path) -> str | None:
    """Why ``path`` cannot be an input of spec2nii ``fmt`` (None: it can)."""
    kind = SPEC2NII_FOLDER_INPUTS.get(fmt, "file")
    if not path.exists():
        return f"input {kind} does not exist"
    if kind == "folder" and not path.is_dir():
        return f"spec2nii {fmt} takes a folder (e.g. a Varian .fid folder holding fid and " \
               "procpar), not a file"
    if kind == "file" and not path.is_file():
        return f"spec2nii {fmt} takes a file, not a folder"
    return None


def _spec2nii_reason(err: Exception) -> str:
    """One line saying why spec2nii failed (a missing header field for a KeyError)."""
    text = " ".join(str(err).split()) or "no details"
    if isinstance(err, KeyError):
        return f"KeyError: header field {text} that spec2nii needs is missing"
    return f"{type(err).__name__}: {text}"[:500]


def _choose_output(outputs: list[Path], wanted: str | None, source: Path) -> Path:
    if wanted:
        hits = [p for p in outputs if p.name.startswith(f"converted_{wanted}") or
                p.name == f"{wanted}.nii.gz"]
        if len(hits) != 1:
            raise ConversionError(f"{source}: output {wanted!r} not among spec2nii outputs "
                                  f"{[p.name for p in outputs]}")
        return hits[0]
    if len(outputs) > 1:
        raise ConversionError(f"{source}: spec2nii wrote several files "
                              f"{[p.name for p in outputs]}; choose one with `output = ...`")
    return outputs[0]


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
    b_s_mm2 = to_s_mm2(b_raw, unit)
    directions = unit_directions(dirs, b_s_mm2, where)
    return b_s_mm2, directions, source, notes


# --------------------------------------------------------------------------- sidecars

def sampling_sidecar(acq: Acquisition) -> dict:
    """The MRS-BIDS sidecar keys that follow from the data themselves (nucleus, MHz, Hz,
    points, transients over all conditions), shared by conversion and the demo dataset."""
    return {
        "ResonantNucleus": [acq.nucleus],
        "SpectrometerFrequency": [acq.cf_mhz],
        "SpectralWidth": 1.0 / acq.dwell_s,
        "NumberOfSpectralPoints": acq.n_points,
        "NumberOfTransients": acq.n_conditions * acq.n_transients,
    }


def bids_sidecar(acq: Acquisition, extras: dict) -> dict:
    """MRS-BIDS sidecar of ``acq``: header facts, then mapping extras (which win)."""
    sidecar = sampling_sidecar(acq)
    sidecar.update({bids: acq.metadata[key] for key, bids in _HEADER_TO_SIDECAR.items()
                    if _informative(key, acq.metadata.get(key))})
    if acq.nucleus == "1H":
        sidecar["MagneticFieldStrength"] = round(field_strength_t(acq.cf_mhz), 1)
    sidecar.update(extras)
    if acq.is_diffusion:
        sidecar["DiffusionBValueUnits"] = "s/mm2"
    return sidecar


def _informative(key: str, value) -> bool:
    """False for absent or empty header values, and for zero Mixing/InversionTime (vendor
    headers fill these with 0 when the sequence has none)."""
    if value is None or value == "":
        return False
    return not (key in ("MixingTime", "InversionTime") and value == 0)


def _write_dataset_files(out_dir: Path, mapping: dict, participants: list[str],
                         overwrite: bool) -> None:
    info = mapping.get("dataset", {})
    description = out_dir / "dataset_description.json"
    if overwrite or not description.exists():
        content = {"Name": info.get("name", "dMRS dataset converted by dmrs-bids-convert"),
                   "BIDSVersion": info.get("bids_version", "1.10.0"), "DatasetType": "raw",
                   "GeneratedBy": [{"Name": "dmrs-bids-convert", "Version": __version__}]}
        for key, bids_key in (("authors", "Authors"), ("license", "License")):
            if key in info:
                content[bids_key] = info[key]
        write_json(description, content)
    readme = out_dir / "README"
    if not readme.exists():
        readme.write_text(f"{info.get('name', 'dMRS dataset')}\n\nConverted from vendor files by "
                          f"dmrs-bids-convert {__version__} (spec2nii).\n")
    _merge_participants(out_dir / "participants.tsv", participants)


def _merge_participants(path: Path, participants: list[str]) -> None:
    """Add missing participant rows to participants.tsv (other columns 'n/a')."""
    if path.exists():
        lines = path.read_text().splitlines()
        header, rows = lines[0].split("\t"), [ln.split("\t") for ln in lines[1:] if ln.strip()]
    else:
        header, rows = ["participant_id"], []
    known = {r[0] for r in rows}
    for pid in participants:
        if pid not in known:
            rows.append([pid] + ["n/a"] * (len(header) - 1))
            known.add(pid)
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")


# --------------------------------------------------------------------------- conversion

def _read_input(entry: dict, files: list[Path], extras: dict, anonymise: bool) -> Acquisition:
    """The entry's input as an Acquisition: a NIfTI-MRS file read directly (format "nifti"),
    anything else through spec2nii."""
    dim_roles = entry.get("dim_roles") or None
    if entry["format"] == NIFTI_FORMAT:
        try:
            return read_nifti_mrs(files[0], sidecar=extras, dim_roles=dim_roles)
        except NiftiMrsError as err:
            raise ConversionError(str(err)) from err
    with tempfile.TemporaryDirectory(prefix="dmrs-bids-convert-") as tmp:
        outputs = run_spec2nii(entry["format"], files, Path(tmp), entry.get("spec2nii_args", ()),
                               anonymise)
        converted = _choose_output(outputs, entry.get("output"), files[0])
        try:
            return read_nifti_mrs(converted, sidecar=extras, dim_roles=dim_roles)
        except NiftiMrsError as err:
            raise ConversionError(f"{files[0]}: spec2nii output unusable: "
                                  f"{str(err).split(': ', 1)[-1]}") from err


def _header_text_values(path: Path, separator: str, keys: tuple) -> dict:
    """``key <separator> value`` lines of a vendor text header (SPAR, RDA), for ``keys``."""
    found = {}
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError:
        return found
    for line in text.splitlines():
        if line.startswith(">>> End of header"):
            break
        key, sep, value = line.partition(separator)
        if sep and key.strip().lower() in keys:
            found[key.strip().lower()] = value.strip()
    return found


def vendor_transient_count(fmt: str, files: list[Path], n_stored: int) -> int | None:
    """Transients the scanner acquired, from the vendor header, when the stored data are
    averages of several (None: the stored count is the count, or the header does not say).

    Philips SPAR: ``averages`` per stored row x ``rows``; Siemens RDA and DICOM:
    ``NumberOfAverages``.
    """
    try:
        if fmt == "philips":
            spar = next(f for f in files if f.suffix.lower() == ".spar")
            values = _header_text_values(spar, ":", ("averages", "rows"))
            count = int(float(values["averages"])) * int(float(values.get("rows", 1)))
        elif fmt == "rda":
            values = _header_text_values(files[0], ":", ("numberofaverages",))
            count = int(float(values["numberofaverages"]))
        elif fmt == "dicom":
            count = _siemens_dicom_averages(files[0])
        else:
            return None
    except (StopIteration, KeyError, ValueError, TypeError, IndexError):
        return None
    return count if count > n_stored and count % n_stored == 0 else None


def _siemens_dicom_averages(path: Path) -> int:
    """NumberOfAverages of a Siemens spectroscopy DICOM: the enhanced (XA) attribute, else the
    CSA image header (VB/VE). KeyError when neither states it."""
    import warnings

    import pydicom
    from nibabel.nicom import csareader

    dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
    for element in dataset.iterall():
        if element.keyword == "NumberOfAverages" and element.value not in (None, ""):
            return int(float(element.value))
    for tag in ((0x0029, 0x1110), (0x0029, 0x1010)):
        if tag in dataset:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                items = csareader.read(dataset[tag].value)["tags"]["NumberOfAverages"]["items"]
            return int(float(items[0]))
    raise KeyError("NumberOfAverages")


def vendor_names(fmt: str, files: list[Path]) -> dict:
    """Sequence-bearing header texts spec2nii does not copy (Philips SPAR
    ``examination_name``, as ``SeriesDescription``); empty for other formats."""
    if fmt != "philips":
        return {}
    spar = next((f for f in files if f.suffix.lower() == ".spar"), None)
    name = _header_text_values(spar, ":", ("examination_name",)).get("examination_name") \
        if spar else None
    return {"SeriesDescription": name} if name else {}


def identified_sequence(metadata: dict) -> tuple[str | None, str]:
    """(BIDS PulseSequenceType or None, note) from the header's sequence names."""
    try:
        sequence, where = identify_sequence(metadata)
    except ValueError as err:
        return None, str(err)
    return PULSE_SEQUENCE_TYPES[sequence], f"sequence {sequence} from {where}"


def _mapping_conditions(entry: dict, acq: Acquisition, files: list[Path], where: str,
                        mapping_path: Path):
    """(fids, b-values, directions, units source, notes): the mapping's loops and diffusion
    lists applied to stored dynamics, or the conditions the header already holds."""
    loops = dynamics_loops(entry, where)
    n_cond = n_conditions(entry, loops, where)
    fids = acq.fids
    if acq.n_conditions > 1 or acq.is_diffusion:
        if "diffusion" in entry or n_cond > 1:
            raise ConversionError(f"{where}: {files[0]} already holds {acq.n_conditions} "
                                  "diffusion conditions in its header; drop the dynamics and "
                                  "diffusion tables from the mapping")
        return fids, acq.b_values_s_mm2, acq.directions, \
            acq.metadata.get("b_value_units_source", "header"), []
    if n_cond > 1 or loops != LEGACY_ORDERS["condition_fastest"]:
        fids = split_loops(fids, loops, loop_sizes(entry, loops, where), files[0])
    b_s_mm2, directions, units_source, notes = _diffusion_conditions(entry, n_cond, where,
                                                                     mapping_path)
    return fids, b_s_mm2, directions, units_source, notes


def convert_acquisition(entry: dict, source_dir: Path, mapping: dict, mapping_path: Path,
                        where: str) -> Acquisition:
    """Read one mapping entry (NIfTI-MRS directly, else through spec2nii) and return the
    reshaped, labelled Acquisition."""
    files = [source_dir / f for f in entry["files"]]
    fmt_for_check = "dicom" if entry["format"] == NIFTI_FORMAT else entry["format"]
    problems = [(f, input_problem(fmt_for_check, f)) for f in files]
    problems = [(f, p) for f, p in problems if p]
    if problems:
        path, problem = problems[0]
        raise ConversionError(f"{where}: {problem}: {path} (names are relative to "
                              f"--source-dir, here {source_dir})")
    extras = {**mapping.get("sidecar", {}), **entry.get("sidecar", {})}
    anonymise = bool(mapping.get("dataset", {}).get("anonymise", True))
    acq = _read_input(entry, files, extras, anonymise)
    fids, b_s_mm2, directions, units_source, notes = _mapping_conditions(
        entry, acq, files, where, mapping_path)
    if entry.get("conjugate", False):
        fids = fids.conj()
    metadata = dict(acq.metadata)
    n_stored = fids.shape[0] * fids.shape[1]
    acquired = vendor_transient_count(entry["format"], files, n_stored)
    facts = []
    if acquired is not None:
        metadata["NumberOfTransients"] = acquired
        facts.append(f"{files[0]}: the {n_stored} stored spectra average {acquired} transients "
                     "(vendor header): NumberOfTransients = " + str(acquired))
    if not metadata.get("PulseSequenceType"):
        pulse_type, note = identified_sequence({**vendor_names(entry["format"], files),
                                                **metadata})
        if pulse_type is not None:
            metadata["PulseSequenceType"] = pulse_type
            facts.append(f"{files[0]}: PulseSequenceType {pulse_type} ({note})")
        else:
            notes.append(f"{files[0]}: no PulseSequenceType written ({note}); give it in "
                         "the mapping's sidecar table, e.g. sidecar = { PulseSequenceType = "
                         '"PRESS" }')
    metadata["ConversionNotes"] = facts
    metadata["warnings"] = list(metadata.get("warnings", [])) + notes
    metadata["b_value_units_source"] = units_source
    metadata["OriginalFile"] = [f.name for f in files]
    return Acquisition(fids=fids, dwell_s=acq.dwell_s, cf_mhz=acq.cf_mhz,
                       b_values_s_mm2=b_s_mm2, directions=directions, nucleus=acq.nucleus,
                       ref_ppm=acq.ref_ppm, metadata=metadata, source=str(files[0]))


def _reader_text(entry: dict) -> str:
    return "NIfTI-MRS read by dmrs-bids" if entry["format"] == NIFTI_FORMAT \
        else f"spec2nii {entry['format']}"


def convert_dataset(mapping_path, output_dir, source_dir=None, overwrite: bool = False,
                    log=print) -> list[Path]:
    """Convert every acquisition of the mapping into the BIDS dataset ``output_dir``.

    ``source_dir``: where the mapping's input file names are resolved (default: the mapping
    file's folder). Refuses (before writing anything) to replace existing outputs unless
    ``overwrite``. Returns the written NIfTI-MRS paths.
    """
    mapping_path = Path(mapping_path)
    mapping = load_mapping(mapping_path)
    source_dir = Path(source_dir) if source_dir else mapping_path.parent
    out_dir = Path(output_dir)
    entries = mapping["acquisition"]
    targets = [out_dir / bids_relative_path(e) for e in entries]
    if len(set(targets)) != len(targets):
        raise ConversionError(f"{mapping_path}: two acquisitions map to the same BIDS name")
    if not overwrite:
        existing = [str(t) for t in targets
                    if t.exists() or t.with_suffix("").with_suffix(".json").exists()]
        if existing:
            raise ConversionError(f"{existing[0]}: exists; use --overwrite to replace "
                                  f"({len(existing)} existing output(s))")
    by_id = {e["id"]: t for e, t in zip(entries, targets) if e.get("id")}
    acquisitions = [  # all inputs converted before anything is written
        convert_acquisition(entry, source_dir, mapping, mapping_path,
                            f"{mapping_path}: acquisition {i + 1} ({entry.get('id', target.name)})")
        for i, (entry, target) in enumerate(zip(entries, targets))]
    for entry, target, acq in zip(entries, targets, acquisitions):
        extras = {**mapping.get("sidecar", {}), **entry.get("sidecar", {})}
        for link, key in (("reference", "ReferenceSignal"), ("macromolecules", "MacromoleculeSignal")):
            if link in entry:
                extras[key] = f"bids::{by_id[entry[link]].relative_to(out_dir).as_posix()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_nifti_mrs(acq, target, processing_step={
            "Method": "Conversion to NIfTI-MRS with diffusion conditions",
            "Details": f"{_reader_text(entry)} {' '.join(entry['files'])}; "
                       f"{acq.n_conditions} conditions x {acq.n_transients} transients "
                       f"(dynamics.order {entry.get('dynamics', {}).get('order', 'condition_fastest')})"
                       + ("; complex conjugated (mapping: conjugate = true)"
                          if entry.get("conjugate") else "")})
        write_json(target.with_suffix("").with_suffix(".json"), bids_sidecar(acq, extras))
        for note in acq.metadata["warnings"]:
            log(f"warning: {note}")
        for note in acq.metadata.get("ConversionNotes", []):
            log(f"note: {note}")
        log(f"wrote {target} ({acq.n_conditions} conditions x {acq.n_transients} transients "
            f"x {acq.n_coils} coils x {acq.n_points} points)")
    participants = sorted({f"sub-{str(e['participant']).removeprefix('sub-')}" for e in entries})
    _write_dataset_files(out_dir, mapping, participants, overwrite)
    return targets


# --------------------------------------------------------------------------- validation, CLI

def bids_validator_command(dataset) -> list[str]:
    """Command line of the offline BIDS validator (PyPI ``bids-validator-deno``), JSON report."""
    exe = shutil.which("bids-validator-deno") or str(
        Path(sys.executable).with_name("bids-validator-deno"))
    if not Path(exe).exists():
        raise ConversionError("bids-validator-deno is not installed (pip install bids-validator-deno)")
    return [exe, "--format", "json", "--no-color", str(dataset)]


def bids_validator_issues(dataset, timeout_s: float = 600) -> list[dict]:
    """Every issue (dicts with severity, code, subCode, location) the validator reports."""
    run = subprocess.run(bids_validator_command(dataset), capture_output=True, text=True,
                         timeout=timeout_s)
    try:
        return json.loads(run.stdout)["issues"]["issues"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ConversionError(f"{dataset}: bids-validator gave no report "
                              f"(exit {run.returncode}): {run.stderr[-500:]}") from err


def bids_validator_errors(dataset) -> list[str]:
    """The validator's errors as "CODE location subCode" strings (empty: the dataset is valid)."""
    return [f"{i.get('code')} {i.get('location', '')} {i.get('subCode') or ''}".strip()
            for i in bids_validator_issues(dataset) if i.get("severity") == "error"]


def example_mappings() -> dict[str, str]:
    """Example mappings installed with the package: name -> first comment line."""
    from importlib.resources import files

    folder = files("bids_app.conversion_examples")
    examples = {}
    for item in sorted(folder.iterdir(), key=lambda x: x.name):
        if item.name.endswith(".toml"):
            first = item.read_text().splitlines()[0] if item.read_text() else ""
            examples[item.name.removesuffix(".toml")] = first.lstrip("# ").strip()
    return examples


def example_text(name: str) -> str:
    """The text of the example mapping ``name`` (ConversionError listing the names if unknown)."""
    from importlib.resources import files

    known = example_mappings()
    if name.removesuffix(".toml") not in known:
        raise ConversionError(f"--example {name!r}: no such example; choose one of "
                              f"{', '.join(known)}")
    return files("bids_app.conversion_examples").joinpath(
        f"{name.removesuffix('.toml')}.toml").read_text()


class _ExampleAction(argparse.Action):
    """Print an example mapping and exit (positional arguments are then not needed)."""

    def __call__(self, parser, namespace, value, option_string=None):
        try:
            sys.stdout.write(example_text(value))
        except ConversionError as err:
            parser.exit(2, f"dmrs-bids-convert: error: {err}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:26s} {text[:90]}" for name, text in example_mappings().items())
    parser = argparse.ArgumentParser(
        prog="dmrs-bids-convert",
        description="Build an MRS-BIDS dataset from vendor MRS files (Philips SDAT/SPAR and "
                    "DICOM, Siemens twix/DICOM/RDA, GE, Bruker, Varian, LCModel RAW, jMRUI, "
                    "text ... whatever spec2nii reads) or from NIfTI-MRS files (format = "
                    "\"nifti\", any version), following a TOML mapping that also says how the "
                    "dynamics split into diffusion conditions. b-values in the mapping are in "
                    "s/mm2 or ms/um2 as its b_value_units says; the dataset states them in "
                    "s/mm^2. Mapping keys: README section 'Bringing your data'.",
        epilog="example mappings (print one with --example NAME):\n" + listing +
               "\n\nexit status: 0 converted (and valid with --validate); 2 bad arguments, "
               "mapping or input files (a one-line message); 1 the BIDS validator found errors.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mapping", type=Path, help="TOML mapping file (see --example)")
    parser.add_argument("output_dir", type=Path, help="BIDS dataset folder to create or add to")
    parser.add_argument("--source-dir", type=Path, default=argparse.SUPPRESS,
                        help="folder the mapping's file names are relative to "
                             "(default: the mapping file's folder)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (otherwise refuse before writing anything)")
    parser.add_argument("--validate", action="store_true",
                        help="run the BIDS validator (bids-validator-deno, offline) afterwards; "
                             "exit 1 on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument("--example", action=_ExampleAction, metavar="NAME",
                        help="print the example mapping NAME (listed below) and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    log = (lambda *_: None) if args.quiet else print
    try:
        convert_dataset(args.mapping, args.output_dir, getattr(args, "source_dir", None),
                        args.overwrite, log)
        errors = bids_validator_errors(args.output_dir) if args.validate else []
    except (ValueError, OSError) as err:
        print(f"dmrs-bids-convert: error: {err}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"dmrs-bids-convert: BIDS validator error: {e}", file=sys.stderr)
    if args.validate and not errors:
        log(f"BIDS validator: {args.output_dir} is valid")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
