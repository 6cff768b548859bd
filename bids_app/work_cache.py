"""A participant's work folder is reused only by the code that made it.

nipype's cache key for a step is the step's inputs, not the code that runs it: after an upgrade
(a new container, a ``pip install -U``) a rerun with the same ``-w`` would serve the earlier
version's results as this version's, with exit 0. So each participant's work folder carries a
stamp of the code (the app's version, its dependencies' versions and a digest of the app's own
files); a folder whose stamp differs, or that has none, is a cache of other code and is
removed before the run, with a warning. Same code: the folder and every cached step are kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path

from .derivatives import read_json_object

STAMP_NAME = "dmrs_bids_code.json"
"""File in each participant's work folder naming the code that made it."""
SOURCE_PACKAGES = ("bids_app", "workflows", "pipeline")
"""The app's own packages, whose files the digest covers (code, templates, defaults)."""


def source_digest(roots) -> str:
    """SHA-256 over every file under ``roots`` (relative path and bytes, in sorted order),
    byte-code caches left out: changes whenever any of the app's files does."""
    digest = hashlib.sha256()
    for root in map(Path, roots):
        files = sorted(p for p in root.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for path in files:
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_stamp() -> dict:
    """The code a cached result depends on: the app's version, Python and the dependencies'
    versions, and :func:`source_digest` of the installed app."""
    import importlib

    from pipeline import __version__

    from .versions import software_versions

    roots = [Path(importlib.import_module(p).__file__).parent for p in SOURCE_PACKAGES]
    versions = software_versions()
    return {"dmrs_bids": __version__, "python": versions["python"],
            "packages": versions["packages"], "source_sha256": source_digest(roots)}


def stamp_difference(found: dict | None, current: dict) -> str:
    """What differs between a folder's stamp and the current code, in words ('' if nothing)."""
    if found is None:
        return "it has no code stamp (made before dmrs-bids stamped its work folders)"
    if found.get("dmrs_bids") != current["dmrs_bids"]:
        return f"it was made by dmrs-bids {found.get('dmrs_bids')}, this is {current['dmrs_bids']}"
    changed = sorted(name for name, version in current["packages"].items()
                     if found.get("packages", {}).get(name) != version)
    if changed or found.get("python") != current["python"]:
        return "it was made with other versions of " + ", ".join(
            changed + (["Python"] if found.get("python") != current["python"] else []))
    if found.get("source_sha256") != current["source_sha256"]:
        return "it was made by other code of the same version (the app's files differ)"
    return ""


def reuse_or_clear(folder, stamp: dict | None = None) -> str:
    """Keep a participant's work ``folder`` when it was made by the current code (``stamp``,
    default :func:`code_stamp`); else remove it, as a cache of other code, and say why ('' when
    kept or absent). Either way the folder then exists with the current stamp."""
    folder = Path(folder)
    stamp = stamp or code_stamp()
    why = ""
    if folder.is_dir():
        why = stamp_difference(read_json_object(folder / STAMP_NAME), stamp)
        if why:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP_NAME).write_text(json.dumps(stamp, indent=1, sort_keys=True))
    return f"its work folder {folder} was not reused: {why}" if why else ""
