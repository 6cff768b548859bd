"""What the raw part of an MRS-BIDS dataset holds, file by file, before pybids indexes it:
sidecars that cannot be read, folders whose labels are not BIDS labels, and which paths count
as raw MRS data at all (``sub-<label>/[ses-<label>/]mrs/`` itself; derivatives, nested copies
and output folders never do). Used by :mod:`bids_app.discovery`."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

LABEL = re.compile(r"^[A-Za-z0-9]+$")
"""A BIDS label: ASCII letters and digits only."""

# What pybids may walk (paths as "/<relative path>"): only sub-<label>/[ses-<label>/]mrs/
# itself. Anything inside a folder below mrs/, inside another datatype or session-level
# folder, or inside a top-level folder other than sub-* is pruned (so a nested copy, an
# output folder placed in the dataset or a symlink loop is never indexed or walked).
NOT_RAW_MRS = [
    re.compile(r"^/(?!sub-)[^/]+/"),
    re.compile(r"^/sub-[^/]+/(?!ses-[^/]+(?:/|$)|mrs(?:/|$))[^/]+/"),
    re.compile(r"^/sub-[^/]+/ses-[^/]+/(?!mrs(?:/|$))[^/]+/"),
    re.compile(r"^/sub-[^/]+/(?:ses-[^/]+/)?mrs/[^/]+/"),
]


def json_problem(path) -> str | None:
    """Why a JSON sidecar cannot be used (not a regular file, unreadable, not valid JSON, not
    a JSON object), or None."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return "is not a regular file (a FIFO, device or folder named like a sidecar)"
        value = json.loads(path.read_bytes())
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"holds a JSON {type(value).__name__}, not an object of key/value pairs"
    return None


def _indexed_folders(bids_dir: Path):
    """The folders whose files pybids indexes (:data:`NOT_RAW_MRS`): the dataset root,
    ``sub-*``, ``sub-*/ses-*`` and their ``mrs/`` (a JSON in any of them may be inherited)."""
    yield bids_dir
    for sub in sorted(p for p in bids_dir.glob("sub-*") if p.is_dir()):
        for folder in [sub] + sorted(p for p in sub.glob("ses-*") if p.is_dir()):
            yield folder
            if (folder / "mrs").is_dir():
                yield folder / "mrs"


def broken_json_files(bids_dir) -> dict[Path, str]:
    """JSON files of the raw dataset that pybids could not index, with the reason: in any
    folder it indexes, since it reads a subject-, session- or dataset-level JSON as
    inherited metadata and one broken file would stop the whole dataset's layout."""
    bids_dir = Path(bids_dir).resolve()
    found = {}
    for folder in _indexed_folders(bids_dir):
        for path in sorted(folder.glob("*.json")):
            problem = json_problem(path)
            if problem:
                found[path] = problem
    return found


def _name_entities(path) -> tuple[str, dict]:
    """(suffix, entities) of a BIDS file name: ``sub-01_acq-x_svs.nii.gz`` ->
    ``("svs", {"sub": "01", "acq": "x"})``; ``svs.json`` -> ``("svs", {})``."""
    parts = Path(path).name.split(".")[0].split("_")
    return parts[-1], dict(part.split("-", 1) for part in parts[:-1] if "-" in part)


def inherited_json_files(path, bids_dir) -> list[Path]:
    """The JSON sidecars ``path`` inherits by BIDS inheritance, nearest first, its own
    sidecar left out: a JSON of the same suffix, with no entity the file lacks, in the file's
    folder or one above it in the dataset (e.g. ``acq-x_svs.json`` at the root,
    ``sub-01/sub-01_svs.json``); [] for a file outside ``bids_dir`` (pybids merges nothing
    into its metadata)."""
    path, bids_dir = Path(path), Path(bids_dir)
    if not path.is_relative_to(bids_dir):
        return []
    suffix, entities = _name_entities(path)
    own = Path(str(path).removesuffix(".gz").removesuffix(".nii") + ".json")
    relative = path.relative_to(bids_dir).parts
    found = []
    for depth in range(len(relative) - 1, -1, -1):
        for candidate in sorted(bids_dir.joinpath(*relative[:depth]).glob("*.json")):
            their_suffix, their_entities = _name_entities(candidate)
            if candidate != own and their_suffix == suffix and \
                    their_entities.items() <= entities.items():
                found.append(candidate)
    return found


def inherited_json_problem(path, bids_dir) -> str | None:
    """Why a JSON sidecar that ``path`` inherits (:func:`inherited_json_files`) cannot be
    read, naming it, or None. :func:`broken_json_files` keeps such files out of the pybids
    index, so the run would read the metadata without them; the file's own sidecar is left to
    discovery's checks, which name it as such."""
    for candidate in inherited_json_files(path, bids_dir):
        problem = json_problem(candidate)
        if problem:
            return (f"{candidate}: sidecar inherited by {Path(path).name} (BIDS inheritance) "
                    f"{problem}")
    return None


def invalid_label_folders(bids_dir) -> dict[str, str]:
    """``sub-*`` (and their ``ses-*``) folders whose label is not a BIDS label (ASCII letters
    and digits), folder name -> reason. pybids would drop or truncate them (``sub-0 4`` ->
    ``0``), so they are reported and skipped instead."""
    bids_dir = Path(bids_dir)
    found = {}
    for folder in sorted(bids_dir.glob("sub-*")):
        if not folder.is_dir():
            continue
        if not LABEL.match(folder.name[4:]):
            found[folder.name] = (f"{folder}: participant folder label {folder.name[4:]!r} is "
                                  "not a valid BIDS label (ASCII letters and digits only); "
                                  "skipped")
            continue
        for ses in sorted(folder.glob("ses-*")):
            if ses.is_dir() and not LABEL.match(ses.name[4:]):
                found[folder.name] = (f"{ses}: session folder label {ses.name[4:]!r} is not "
                                      "a valid BIDS label (ASCII letters and digits only); "
                                      "participant skipped")
    return found


def _path_pattern(bids_dir, path) -> re.Pattern:
    """A pybids ignore pattern for ``path`` and everything below it (never matching when
    ``path`` is outside the dataset)."""
    try:
        relative = Path(path).resolve().relative_to(Path(bids_dir).resolve()).as_posix()
    except ValueError:
        return re.compile(r"(?!)")
    return re.compile("^/" + re.escape(relative) + "(?:/|$)")


def is_raw_mrs_file(path, bids_root) -> bool:
    """``path`` lies directly in ``sub-<label>/[ses-<label>/]mrs/``, its name starts with those
    entities and it carries no ``desc-`` entity (derivatives do; raw data never does)."""
    try:
        parts = Path(path).relative_to(bids_root).parts
    except ValueError:
        return False
    if len(parts) == 3 and parts[1] == "mrs":
        prefix = parts[0] + "_"
    elif len(parts) == 4 and parts[1].startswith("ses-") and parts[2] == "mrs":
        prefix = f"{parts[0]}_{parts[1]}_"
    else:
        return False
    name = parts[-1]
    return name.startswith(prefix) and "_desc-" not in name


ENTITY_FILE_NAME = re.compile(r"^sub-[A-Za-z0-9]+(?:_[a-zA-Z]+-[A-Za-z0-9]+)*_[^_]+$")
"""The entities of a raw BIDS file name: ``sub-<label>``, then ``_<key>-<label>`` pairs
(labels of ASCII letters and digits), then one last part (the suffix and extension, not
judged here: a misnamed suffix pairs with nothing)."""


def invalid_file_name(bids_dir, subject: str) -> str | None:
    """Why a NIfTI/JSON file in the participant's ``mrs/`` folders has a name that is not a
    BIDS name, or None. pybids reads ``sub-01_acq-press_30_mrsref`` as ``acq-press`` and
    ``acq-press-60`` as ``acq-press`` too, so the two acquisitions would share a water
    reference (the converter refuses such labels; files made otherwise are caught here)."""
    folder = Path(bids_dir) / f"sub-{subject}"
    for mrs in [folder / "mrs"] + sorted(folder.glob("ses-*/mrs")):
        for path in sorted(mrs.glob("*")) if mrs.is_dir() else []:
            if path.name.endswith((".nii", ".nii.gz", ".json")) and \
                    not ENTITY_FILE_NAME.match(path.name):
                return (f"{path}: not a BIDS file name (entities are key-label pairs whose "
                        "labels hold only ASCII letters and digits, e.g. acq-press30, not "
                        "acq-press_30 or acq-press-30): its entities would be misread and "
                        "acquisitions paired wrongly; rename it")
    return None
