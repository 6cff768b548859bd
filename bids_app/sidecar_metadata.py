"""The sidecar metadata of a file as pybids merges it (its own JSON and those it inherits by
BIDS inheritance, the nearest winning), the JSON files it comes from, and how messages name
them: what discovery's checks read and name. Used by :mod:`bids_app.discovery`."""

from __future__ import annotations

import json
from pathlib import Path


def _sidecar_path(path) -> Path:
    """The file's own JSON sidecar (``x.nii[.gz]`` -> ``x.json``)."""
    return Path(str(path).removesuffix(".gz").removesuffix(".nii") + ".json")


def _read_sidecar(path: Path) -> dict:
    """A sidecar already checked by ``dataset_files.json_problem`` ({} when there is none)."""
    return json.loads(path.read_text()) if path.exists() else {}


def _sidecar_of(layout, path) -> dict:
    """The sidecar if it can be read (only its ReferenceSignal is needed before the checks)."""
    try:
        return _metadata(layout, path)
    except (OSError, ValueError):
        return {}


def _metadata(layout, path) -> dict:
    try:
        return dict(layout.get_metadata(str(path)))
    except Exception:  # pybids raises various errors for files it did not index
        sidecar = _sidecar_path(path)
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


def _metadata_files(layout, path) -> list[Path]:
    """The JSON files pybids merges into the metadata of ``path``, nearest first: its own
    sidecar and those it inherits (BIDS inheritance: same suffix, no entity the file lacks,
    in its folder or above). Only its own sidecar for a file pybids did not index."""
    try:
        data = layout.get_file(str(path))
        candidates = layout.get_nearest(str(path), return_type="object", all_=True,
                                        extension=".json", suffix=data.entities["suffix"])
        entities = _naming_entities(data.entities).items()
    except Exception:  # pybids raises various errors for files it did not index
        own = _sidecar_path(path)
        return [own] if own.is_file() else []
    return [Path(c.path) for c in candidates if _naming_entities(c.entities).items() <= entities]


def stating_json(layout, path, key: str) -> Path:
    """The JSON whose ``key`` the merged metadata of ``path`` holds: the nearest of
    :func:`_metadata_files` that states it (its own sidecar when none does), so a message
    about the key names the file to correct."""
    for candidate in _metadata_files(layout, path):
        try:
            if key in json.loads(candidate.read_text()):
                return candidate
        except (OSError, ValueError, TypeError):  # unreadable or not an object: not the one
            continue
    return _sidecar_path(path)


def _naming_entities(entities: dict) -> dict:
    """The entities that name an acquisition (the suffix and extension left out)."""
    return {k: str(v) for k, v in entities.items() if k not in ("suffix", "extension")}


class _WhenFormatted:
    """Text made only when a message is formatted (``str``): :func:`_metadata_files` asks
    pybids a dataset-wide query (60 ms a file with 400 participants), and only a refusal's
    message needs its answer."""

    def __init__(self, make):
        self._make = make

    def __str__(self) -> str:
        return self._make()


def sidecars_text(path, files: list[Path]) -> str:
    """How the input checks name the sidecar metadata of ``path`` (:func:`_metadata_files`):
    its own sidecar's path, or every JSON file merged when it inherits from others (a value
    a check refuses may come from any of them)."""
    if len(files) < 2:
        return str(files[0] if files else _sidecar_path(path))
    return (f"the sidecars of {Path(path).name} merged by BIDS inheritance (the first wins: "
            f"{', '.join(map(str, files))})")
