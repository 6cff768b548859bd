"""Derivative paths (BIDS-derivatives naming), atomic writes and dataset_description.json.

Output names are a contract read by users' scripts; they are defined here only:

    OUT/sub-<label>/[ses-<label>/]mrs/<src>_desc-preproc_svs.nii.gz
                                      <src>_desc-fit_svs.nii.gz
                                      <src>_transients.tsv, _amplitudes.tsv, _diffusion.tsv,
                                      <src>_qc.json, <src>_config.toml
    OUT/sub-<label>/figures/<src>_desc-<name>_fig.svg
    OUT/sub-<label>.html
    OUT/dataset_description.json, OUT/logs/
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

# Derivative kinds of one acquisition -> file-name suffix after "<src>_".
ACQUISITION_OUTPUTS = {
    "preproc": "desc-preproc_svs.nii.gz",
    "fit": "desc-fit_svs.nii.gz",
    "transients": "transients.tsv",
    "amplitudes": "amplitudes.tsv",
    "diffusion": "diffusion.tsv",
    "qc": "qc.json",
    "config": "config.toml",
}

TRANSIENTS_COLUMNS = ["condition", "b_value", "direction", "transient", "freq_shift_hz",
                      "phase_shift_deg", "rejected"]
AMPLITUDES_COLUMNS = ["condition", "b_value", "direction", "metabolite", "amplitude", "crlb",
                      "crlb_percent"]
DIFFUSION_COLUMNS = ["metabolite", "model", "parameter", "value", "unit", "std_error",
                     "applicable", "note", "reason"]

PIPELINE_NAME = "dmrs-bids"


def subject_dir(output_dir, subject: str) -> Path:
    return Path(output_dir) / f"sub-{subject}"


def mrs_dir(output_dir, subject: str, session: str | None) -> Path:
    """``OUT/sub-<label>/[ses-<label>/]mrs``."""
    base = subject_dir(output_dir, subject)
    return (base / f"ses-{session}" / "mrs") if session else base / "mrs"


def acquisition_path(output_dir, subject: str, session: str | None, stem: str,
                     kind: str) -> Path:
    """Path of one derivative (``kind`` in :data:`ACQUISITION_OUTPUTS`) of input ``stem``."""
    if kind not in ACQUISITION_OUTPUTS:
        raise KeyError(f"unknown derivative kind {kind!r}; known: {sorted(ACQUISITION_OUTPUTS)}")
    return mrs_dir(output_dir, subject, session) / f"{stem}_{ACQUISITION_OUTPUTS[kind]}"


def figures_dir(output_dir, subject: str) -> Path:
    return subject_dir(output_dir, subject) / "figures"


def figure_path(output_dir, subject: str, stem: str, name: str, ext: str = "svg") -> Path:
    return figures_dir(output_dir, subject) / f"{stem}_desc-{name}_fig.{ext}"


def report_path(output_dir, subject: str) -> Path:
    return Path(output_dir) / f"sub-{subject}.html"


def logs_dir(output_dir) -> Path:
    return Path(output_dir) / "logs"


# --- atomic writes ---------------------------------------------------------------------------

def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to a temporary name beside ``path``, flush it to disk, then
    ``os.replace`` it: readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src, dest) -> Path:
    """Copy ``src`` to ``dest`` atomically (temporary file + ``os.replace``)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dest)
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def remove_stale_temporaries(output_dir, subjects) -> list[Path]:
    """Delete ``.<name>.<pid>.tmp`` files a killed run left in these participants' folders
    (other participants' folders may belong to concurrent array tasks and are left alone)."""
    removed = []
    for subject in subjects:
        folder = subject_dir(output_dir, subject)
        candidates = list(folder.rglob(".*.tmp")) if folder.is_dir() else []
        candidates += list(Path(output_dir).glob(f".sub-{subject}.html.*.tmp"))
        for path in candidates:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def run_label(participant_labels) -> str:
    """Suffix of this run's log and summary names: ``_sub-<label>`` when exactly one
    participant is selected (an array task), so concurrent tasks never share a log file."""
    labels = list(participant_labels or [])
    if len(labels) != 1:
        return ""
    label = str(labels[0]).strip()
    label = label[4:] if label.startswith("sub-") else label
    return f"_sub-{label}"


def copy_if_changed(src, dest) -> bool:
    """Atomic copy unless ``dest`` already holds the same bytes (its time stamp then stays,
    so a rerun that changes nothing leaves outputs, and what depends on them, untouched).
    Returns whether a copy was made."""
    src, dest = Path(src), Path(dest)
    if dest.is_file() and dest.stat().st_size == src.stat().st_size \
            and dest.read_bytes() == src.read_bytes():
        return False
    atomic_copy(src, dest)
    return True


def is_up_to_date(target, sources) -> bool:
    """``target`` exists and is not older than any of ``sources`` (all of which exist)."""
    target = Path(target)
    if not target.is_file():
        return False
    newest = max((Path(s).stat().st_mtime for s in sources), default=0.0)
    return target.stat().st_mtime >= newest


def write_json(path, content) -> Path:
    return atomic_write_text(path, json.dumps(content, indent=2, sort_keys=True,
                                              default=_json_default) + "\n")


def _json_default(value):
    try:
        import numpy as np
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # numpy is a hard dependency; kept for clarity of the fallback
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- TSV -------------------------------------------------------------------------------------

def format_tsv_value(value) -> str:
    """TSV cell: ``n/a`` for None/NaN, compact repr for floats, 0/1 for booleans."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        value = float(value)
        if value != value:
            return "n/a"
        return repr(value)
    if type(value).__name__.startswith(("int", "uint")):
        return str(int(value))
    if type(value).__name__ == "bool_":
        return "1" if value else "0"
    return str(value).replace("\t", " ").replace("\n", " ")


def tsv_text(rows: list[dict], columns: list[str]) -> str:
    """Rows as TSV with ``columns`` first (extra keys appended in first-seen order)."""
    extra = []
    for row in rows:
        extra += [k for k in row if k not in columns and k not in extra]
    header = list(columns) + extra
    out = io.StringIO()
    out.write("\t".join(header) + "\n")
    for row in rows:
        out.write("\t".join(format_tsv_value(row.get(k)) for k in header) + "\n")
    return out.getvalue()


def write_tsv(path, rows: list[dict], columns: list[str]) -> Path:
    return atomic_write_text(path, tsv_text(rows, columns))


def read_tsv(path) -> list[dict]:
    """Rows of a TSV as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# --- dataset_description.json ----------------------------------------------------------------

def container_info(environ=None) -> dict | None:
    """``{"Type": ..., "Tag": ...}`` from ``DMRS_BIDS_CONTAINER`` ("docker:tag", or a tag)."""
    value = (environ if environ is not None else os.environ).get("DMRS_BIDS_CONTAINER", "")
    if not value:
        return None
    kind, sep, tag = value.partition(":")
    if sep and kind in ("docker", "singularity", "apptainer", "podman"):
        return {"Type": kind, "Tag": tag}
    return {"Type": "docker", "Tag": value}


def software_versions() -> dict:
    """Python, dependency and BLAS versions of this environment (for reports and
    ``dataset_description.json``): ``{"python", "packages": {name: version}, "blas"}``."""
    from .versions import software_versions as versions

    return versions()


def dataset_description(bids_dir, version: str, environ=None) -> dict:
    """The derivative dataset's description (DatasetType derivative, GeneratedBy: the pipeline,
    then Python, each dependency and the BLAS with their versions; sources)."""
    from .versions import generated_by_entries

    generated = {"Name": PIPELINE_NAME, "Version": version,
                 "CodeURL": "https://pypi.org/project/dmrs-bids/"}
    container = container_info(environ)
    if container:
        generated["Container"] = container
    source_name = None
    desc = Path(bids_dir) / "dataset_description.json"
    if desc.is_file():
        try:
            source_name = json.loads(desc.read_text()).get("Name")
        except json.JSONDecodeError:
            source_name = None
    return {
        "Name": f"{PIPELINE_NAME} derivatives" + (f" of {source_name}" if source_name else ""),
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated] + generated_by_entries(software_versions()),
        "SourceDatasets": [{"URL": Path(bids_dir).resolve().as_uri()}],
    }


def write_dataset_description(output_dir, bids_dir, version: str) -> Path:
    """Atomic, and only when the content changes: concurrent array tasks of one study write
    the same bytes, so whichever lands last, the file is whole and identical."""
    path = Path(output_dir) / "dataset_description.json"
    text = json.dumps(dataset_description(bids_dir, version), indent=2, sort_keys=True,
                      default=_json_default) + "\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return path
