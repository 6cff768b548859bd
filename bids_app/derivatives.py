"""The app's view of its derivatives: dataset_description.json, stale temporaries, run
labels; and, re-exported for the app's modules, the names and table schemas
(:mod:`workflows.derivatives`, where the workflow's sink reads them too) and the writers
(:mod:`pipeline.io.files`):

    OUT/sub-<label>/[ses-<label>/]mrs/<src>_desc-preproc_svs.nii.gz
                                      <src>_desc-fit_svs.nii.gz
                                      <src>_transients.tsv, _amplitudes.tsv, _diffusion.tsv,
                                      <src>_desc-amplitudes_covariance.tsv,
                                      <src>_qc.json, <src>_config.toml
    OUT/sub-<label>/figures/<src>_desc-<name>_fig.svg
    OUT/sub-<label>.html
    OUT/dataset_description.json, OUT/logs/
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.io.files import (atomic_copy, atomic_write_bytes, atomic_write_text,  # noqa: F401
                               copy_if_changed, format_tsv_value, json_text, read_tsv,
                               tsv_text, write_json, write_tsv)
from workflows.derivatives import (ACQUISITION_OUTPUTS, AMPLITUDES_COLUMNS,  # noqa: F401
                                   CONTRACT_KINDS, DIFFUSION_COLUMNS, FIT_DISPLAY_SUFFIX,
                                   LAST_AMPLITUDE_COLUMN, PIPELINE_NAME, TRANSIENTS_COLUMNS,
                                   acquisition_path, amplitudes_columns, figure_path, figures_dir,
                                   fit_display_path, logs_dir, mrs_dir, report_path,
                                   subject_dir)


def read_json_object(path) -> dict | None:
    """The JSON object in ``path``; None when the file is missing, unreadable, not JSON or
    not an object (a record or stamp that cannot be trusted is treated as absent)."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


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


def is_up_to_date(target, sources) -> bool:
    """``target`` exists and is not older than any of ``sources`` (all of which exist)."""
    target = Path(target)
    if not target.is_file():
        return False
    newest = max((Path(s).stat().st_mtime for s in sources), default=0.0)
    return target.stat().st_mtime >= newest


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
    text = json_text(dataset_description(bids_dir, version))
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return path
