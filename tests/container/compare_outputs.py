"""Compare the numeric outputs of two dmrs-bids derivative folders, bit for bit.

What is compared (everything a study would take numbers from):
- every ``*.tsv`` (per-acquisition amplitudes, diffusion, transients; group tables): the text,
  byte for byte — numbers are written with ``repr`` precision, so equal text = equal bits;
- every ``*.json`` under ``sub-*/`` (QC metrics, stage records): equal after parsing, floats
  compared by their bits (so NaN equals NaN);
- every ``*.nii.gz``: the data array (dtype, shape and bytes) and the NIfTI-MRS header
  extension (JSON, as above);
- ``dataset_description.json``: dataset type, BIDS version, pipeline name and version (not the
  container, source path or dependency versions, which say where the run happened).
What is not: ``logs/`` (timings, absolute paths), HTML reports and SVG figures (they carry the
run's paths and dates). Where the input dataset sits at another path in each run (``/data`` in a
container), ``--same-path A_PATH=B_PATH`` makes JSON strings under those folders compare equal.

Usage: ``python compare_outputs.py DIR_A DIR_B [--same-path A_PATH=B_PATH ...]`` — prints the
differences, exit 1 if any.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

def _same_value(a, b) -> bool:
    """Deep equality with floats compared by their IEEE-754 bits."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return a == b


def _with_placeholders(value, prefixes: list[str]):
    """``value`` with each string starting with one of ``prefixes`` rewritten to ``<path i>``."""
    if isinstance(value, str):
        for i, prefix in enumerate(prefixes):
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                return f"<path {i}>" + value[len(prefix.rstrip("/")):]
        return value
    if isinstance(value, dict):
        return {k: _with_placeholders(v, prefixes) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_placeholders(v, prefixes) for v in value]
    return value


def _pipeline_identity(description: dict) -> dict:
    """What a dataset_description says about the computation: dataset type and the pipeline's
    name and version (the container, the source path and the environment's versions say where
    the run happened)."""
    generated = (description.get("GeneratedBy") or [{}])[0]
    return {"DatasetType": description.get("DatasetType"),
            "BIDSVersion": description.get("BIDSVersion"),
            "Pipeline": [generated.get("Name"), generated.get("Version")]}


def _nifti_parts(path: Path) -> tuple[str, tuple, bytes, list]:
    """dtype, shape, raw data bytes and parsed header extensions of a NIfTI(-MRS) file."""
    import nibabel as nib
    import numpy as np

    image = nib.load(str(path))
    extensions = []
    for ext in image.header.extensions:
        content = ext.get_content()
        try:
            extensions.append(json.loads(content))
        except (ValueError, TypeError):
            extensions.append(bytes(content))
    raw = np.asanyarray(image.dataobj).tobytes()
    return str(image.get_data_dtype()), tuple(image.shape), raw, extensions


def compare_file(a: Path, b: Path, relative: str, same_paths=None) -> list[str]:
    """Differences between two outputs with the same relative path (empty when identical);
    ``same_paths`` maps folders of run A to the folders that stand for them in run B."""
    same_paths = same_paths or {}
    if a.suffix == ".tsv" or a.name.endswith("_config.toml"):
        if a.read_bytes() != b.read_bytes():
            return [f"{relative}: text differs"]
        return []
    if a.name.endswith(".nii.gz"):
        dtype_a, shape_a, data_a, ext_a = _nifti_parts(a)
        dtype_b, shape_b, data_b, ext_b = _nifti_parts(b)
        problems = []
        if (dtype_a, shape_a) != (dtype_b, shape_b):
            problems.append(f"{relative}: dtype/shape {dtype_a}{shape_a} vs {dtype_b}{shape_b}")
        elif data_a != data_b:
            problems.append(f"{relative}: data arrays differ")
        if not _same_value(_with_placeholders(ext_a, list(same_paths)),
                           _with_placeholders(ext_b, list(same_paths.values()))):
            problems.append(f"{relative}: NIfTI-MRS header extension differs")
        return problems
    if a.suffix == ".json":
        json_a, json_b = json.loads(a.read_text()), json.loads(b.read_text())
        if a.name == "dataset_description.json":
            json_a, json_b = _pipeline_identity(json_a), _pipeline_identity(json_b)
        json_a = _with_placeholders(json_a, list(same_paths))
        json_b = _with_placeholders(json_b, list(same_paths.values()))
        if not _same_value(json_a, json_b):
            return [f"{relative}: JSON values differ"]
    return []


def compared_files(root: Path) -> set[str]:
    """Relative paths of the outputs this module compares."""
    root = Path(root)
    chosen = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or relative.parts[0] in ("logs", "set_aside") \
                or path.name.endswith("_run.json"):
            continue  # logs and run records (run id, time) differ between runs by design;
            # set_aside holds what failed or interrupted runs left (bids_app.failed_runs)
        if path.suffix == ".tsv" or path.name.endswith((".nii.gz", "_config.toml")) \
                or (path.suffix == ".json" and (relative.parts[0].startswith("sub-")
                                                or path.name == "dataset_description.json")):
            chosen.add(relative.as_posix())
    return chosen


def compare_derivatives(dir_a, dir_b, same_paths=None) -> tuple[list[str], int]:
    """(differences, number of files compared) between two derivative folders."""
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    files_a, files_b = compared_files(dir_a), compared_files(dir_b)
    problems = [f"{p}: only in {dir_a}" for p in sorted(files_a - files_b)]
    problems += [f"{p}: only in {dir_b}" for p in sorted(files_b - files_a)]
    common = sorted(files_a & files_b)
    for relative in common:
        problems += compare_file(dir_a / relative, dir_b / relative, relative, same_paths)
    return problems, len(common)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Compare two dmrs-bids output folders bit for bit.")
    parser.add_argument("dir_a", type=Path)
    parser.add_argument("dir_b", type=Path)
    parser.add_argument("--same-path", action="append", default=[], metavar="A_PATH=B_PATH",
                        help="a folder of run A and the folder standing for it in run B")
    args = parser.parse_args(argv)
    same_paths = dict(item.split("=", 1) for item in args.same_path)
    problems, n_files = compare_derivatives(args.dir_a, args.dir_b, same_paths)
    for line in problems:
        print(line)
    if n_files == 0:
        print(f"no output files to compare in {args.dir_a} and {args.dir_b}")
        return 1
    print(f"compared {n_files} files: {'identical' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
