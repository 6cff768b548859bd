"""``dmrs-bids-convert``: vendor MRS files -> an MRS-BIDS dataset, through spec2nii.

A small declarative TOML mapping says, for each input file, where it goes in BIDS and how its
dynamics split into diffusion conditions. Example (``bids_app/conversion_examples/``)::

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
    format = "philips"                 # a spec2nii subcommand
    files = ["metab_raw_act.SDAT", "metab_raw_act.SPAR"]   # relative to --source-dir; a
                                       # folder for varian (the .fid folder), file or folder
                                       # for bruker
    spec2nii_args = []                 # optional extra spec2nii arguments (e.g. ["-e", "image"])
    conjugate = false                  # optional: conjugate the data (files stored with the
                                       # opposite sign convention, e.g. ISMRM 2016 challenge RAW)
    reference = "water"                # id of the mrsref -> ReferenceSignal (BIDS URI)
    macromolecules = "mm"              # id of the MM acquisition -> MacromoleculeSignal
    [acquisition.dynamics]
    n_conditions = 10
    order = "condition_fastest"        # or "transient_fastest"
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
from pipeline.units import field_strength_t, guess_b_value_units, to_s_mm2

SPEC2NII_FILE_COUNTS = {"philips": 2, "philips_dl": 3, "philips_dcm": 1, "twix": 1, "dicom": 1,
                        "rda": 1, "ge": 1, "text": 1, "jmrui": 1, "raw": 1, "bruker": 1,
                        "varian": 1, "uih": 1}
"""spec2nii subcommands and how many input paths (files, or folders: see below) each takes."""

SPEC2NII_DEFAULT_ARGS = {"twix": ["-e", "image"]}
SPEC2NII_FOLDER_INPUTS = {"varian": "folder", "bruker": "file or folder"}
"""spec2nii subcommands whose input is a folder (Varian ``.fid``: ``fid`` + ``procpar``) or
may be one (Bruker: a study/scan folder or a ``fid``/``2dseq`` file); all others take files."""
SUFFIXES = ("svs", "mrsref", "mm")
ORDERS = ("condition_fastest", "transient_fastest")
ENTITY_KEYS = (("session", "ses"), ("task", "task"), ("acq", "acq"), ("run", "run"))

_HEADER_TO_SIDECAR = {
    "Manufacturer": "Manufacturer", "ManufacturersModelName": "ManufacturersModelName",
    "DeviceSerialNumber": "DeviceSerialNumber", "SoftwareVersions": "SoftwareVersions",
    "InstitutionName": "InstitutionName", "InstitutionAddress": "InstitutionAddress",
    "SequenceName": "SequenceName", "EchoTime": "EchoTime", "RepetitionTime": "RepetitionTime",
    "MixingTime": "MixingTime", "InversionTime": "InversionTime",
    "ExcitationFlipAngle": "FlipAngle", "WaterSuppressed": "WaterSuppression",
}
"""NIfTI-MRS header keys copied into the BIDS sidecar (header name -> BIDS name)."""


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


def _check_entry(entry: dict, where: str, ids: set) -> None:
    for key in ("participant", "suffix", "format", "files"):
        if key not in entry:
            raise ConversionError(f"{where}: missing key {key!r}")
    if entry["suffix"] not in SUFFIXES:
        raise ConversionError(f"{where}: suffix {entry['suffix']!r} is not one of {SUFFIXES}")
    fmt = entry["format"]
    if fmt not in SPEC2NII_FILE_COUNTS:
        raise ConversionError(f"{where}: format {fmt!r} is not a spec2nii subcommand "
                              f"({', '.join(SPEC2NII_FILE_COUNTS)})")
    if len(entry["files"]) != SPEC2NII_FILE_COUNTS[fmt]:
        raise ConversionError(f"{where}: format {fmt} takes {SPEC2NII_FILE_COUNTS[fmt]} file(s), "
                              f"got {len(entry['files'])}")
    for link in ("reference", "macromolecules"):
        if link in entry and entry[link] not in ids:
            raise ConversionError(f"{where}: {link} {entry[link]!r} is not the id of an acquisition")
    dynamics = entry.get("dynamics", {})
    if dynamics.get("order", "condition_fastest") not in ORDERS:
        raise ConversionError(f"{where}: dynamics.order must be one of {ORDERS}")
    n_cond = int(dynamics.get("n_conditions", 1))
    diffusion = entry.get("diffusion", {})
    if n_cond < 1:
        raise ConversionError(f"{where}: dynamics.n_conditions must be >= 1")
    if "b_values" in diffusion and len(diffusion["b_values"]) != n_cond:
        raise ConversionError(f"{where}: {len(diffusion['b_values'])} b-values for "
                              f"{n_cond} conditions")
    if n_cond > 1 and "b_values" not in diffusion:
        raise ConversionError(f"{where}: {n_cond} conditions need diffusion.b_values")
    if "directions" in diffusion and len(diffusion["directions"]) != n_cond:
        raise ConversionError(f"{where}: {len(diffusion['directions'])} directions for "
                              f"{n_cond} conditions")
    if not isinstance(entry.get("conjugate", False), bool):
        raise ConversionError(f"{where}: conjugate must be true or false")
    unit = diffusion.get("b_value_units", "auto")
    if unit != "auto" and normalise_b_value_unit(unit) is None:
        raise ConversionError(f"{where}: b_value_units {unit!r} is not s/mm2, ms/um2 or auto")


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
    if fids.shape[0] != 1:
        raise ConversionError(f"{source}: converted data already have {fids.shape[0]} conditions")
    n_dyn = fids.shape[1]
    if n_dyn % n_conditions:
        raise ConversionError(f"{source}: {n_dyn} dynamics do not split into "
                              f"{n_conditions} conditions")
    n_trans = n_dyn // n_conditions
    rest = fids.shape[2:]
    if order == "condition_fastest":
        return fids[0].reshape(n_trans, n_conditions, *rest).transpose(1, 0, 2, 3)
    if order == "transient_fastest":
        return fids[0].reshape(n_conditions, n_trans, *rest)
    raise ConversionError(f"{source}: unknown dynamics order {order!r}")


def _diffusion_conditions(entry: dict, n_cond: int, where: str, mapping_path: Path):
    """b-values (s/mm^2), unit directions, units decision text and warnings of one entry."""
    diffusion = entry.get("diffusion", {})
    if "b_values" not in diffusion:
        return np.zeros(n_cond), np.full((n_cond, 3), np.nan), "no diffusion weighting (b = 0)", []
    b_raw = np.asarray(diffusion["b_values"], dtype=float)
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
    directions = unit_directions(diffusion.get("directions"), b_s_mm2, where)
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
    sidecar = {bids: acq.metadata[key] for key, bids in _HEADER_TO_SIDECAR.items()
               if _informative(key, acq.metadata.get(key))}
    sidecar.update(sampling_sidecar(acq))
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

def convert_acquisition(entry: dict, source_dir: Path, mapping: dict, mapping_path: Path,
                        where: str) -> Acquisition:
    """Run spec2nii on one mapping entry and return the reshaped, labelled Acquisition."""
    files = [source_dir / f for f in entry["files"]]
    problems = [(f, input_problem(entry["format"], f)) for f in files]
    problems = [(f, p) for f, p in problems if p]
    if problems:
        path, problem = problems[0]
        raise ConversionError(f"{where}: {problem}: {path} (names are relative to "
                              f"--source-dir, here {source_dir})")
    extras = {**mapping.get("sidecar", {}), **entry.get("sidecar", {})}
    anonymise = bool(mapping.get("dataset", {}).get("anonymise", True))
    with tempfile.TemporaryDirectory(prefix="dmrs-bids-convert-") as tmp:
        outputs = run_spec2nii(entry["format"], files, Path(tmp), entry.get("spec2nii_args", ()),
                               anonymise)
        converted = _choose_output(outputs, entry.get("output"), files[0])
        try:
            acq = read_nifti_mrs(converted, sidecar=extras)
        except NiftiMrsError as err:
            raise ConversionError(f"{files[0]}: spec2nii output unusable: "
                                  f"{str(err).split(': ', 1)[-1]}") from err
    dynamics = entry.get("dynamics", {})
    n_cond = int(dynamics.get("n_conditions", 1))
    fids = split_dynamics(acq.fids, n_cond, dynamics.get("order", "condition_fastest"), files[0])
    if entry.get("conjugate", False):
        fids = fids.conj()
    b_s_mm2, directions, units_source, notes = _diffusion_conditions(entry, n_cond, where,
                                                                     mapping_path)
    metadata = dict(acq.metadata)
    metadata["warnings"] = list(metadata.get("warnings", [])) + notes
    metadata["b_value_units_source"] = units_source
    metadata["OriginalFile"] = [f.name for f in files]
    return Acquisition(fids=fids, dwell_s=acq.dwell_s, cf_mhz=acq.cf_mhz,
                       b_values_s_mm2=b_s_mm2, directions=directions, nucleus=acq.nucleus,
                       ref_ppm=acq.ref_ppm, metadata=metadata, source=str(files[0]))


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
            "Details": f"spec2nii {entry['format']} {' '.join(entry['files'])}; dynamics split "
                       f"into {acq.n_conditions} conditions x {acq.n_transients} transients "
                       f"({entry.get('dynamics', {}).get('order', 'condition_fastest')})"
                       + ("; complex conjugated (mapping: conjugate = true)"
                          if entry.get("conjugate") else "")})
        write_json(target.with_suffix("").with_suffix(".json"), bids_sidecar(acq, extras))
        for note in acq.metadata["warnings"]:
            log(f"warning: {note}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmrs-bids-convert",
        description="Build an MRS-BIDS dataset from vendor MRS files (Philips SDAT/SPAR and "
                    "DICOM, Siemens twix/DICOM/RDA, GE, Bruker, Varian, LCModel RAW, jMRUI, "
                    "text ... whatever spec2nii reads) following a TOML mapping that also says "
                    "how the dynamics split into diffusion conditions. b-values in the "
                    "mapping are in s/mm2 or ms/um2 as its b_value_units says; the dataset "
                    "states them in s/mm^2.",
        epilog="exit status: 0 converted (and valid with --validate); 2 bad arguments, "
               "mapping or input files (a one-line message); 1 the BIDS "
               "validator found errors.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("mapping", type=Path, help="TOML mapping file (see "
                        "bids_app/conversion_examples/)")
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
