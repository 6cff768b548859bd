"""What becomes of the earlier outputs of a participant (or session) ``dmrs-bids-convert``
skips.

With ``--overwrite``, a participant/session converted before and skipped now (one of its
acquisitions cannot be converted any more) would keep the files of that earlier conversion
and its ``participants.tsv`` row: the dataset would mix a stale conversion with the new one,
and dmrs-bids would process the stale files as current. So the files this conversion would
have replaced (the mapping's NIfTI-MRS files of the skipped unit and their sidecars) are
moved, unchanged, to ``BIDS_DIR/set_aside/<unit>_before-<run id>/`` at their places relative
to ``BIDS_DIR``; the participant's ``participants.tsv`` row goes with them when nothing of
the participant is left. Nothing is deleted: the inputs that made them may be the ones now
broken. ``set_aside/`` stays inside ``BIDS_DIR`` (a folder beside it could be outside a
container's mount, and lost); dmrs-bids indexes only ``sub-*/[ses-*/]mrs/``, and a
``.bidsignore`` line keeps it from the BIDS validator. Other files of the unit, not written
by this mapping, are only warned about (as for written participants), and so are links left
in the dataset to a file moved (:func:`links_into`: dmrs-bids would refuse them at its run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .convert_sidecar import read_participants, write_participants

SET_ASIDE_DIR = "set_aside"
"""Folder of ``BIDS_DIR`` holding the earlier outputs of skipped participants/sessions."""


def sidecar_of(target: Path) -> Path:
    """The JSON sidecar of the NIfTI file ``target`` (``x.nii.gz`` -> ``x.json``)."""
    return target.with_suffix("").with_suffix(".json")


def earlier_outputs(targets: list[Path]) -> list[Path]:
    """The files among ``targets`` and their sidecars that exist: left by an earlier
    conversion (this one writes nothing of a skipped unit)."""
    return [p for t in targets for p in (t, sidecar_of(t)) if p.exists()]


def aside_folder(out_dir: Path, unit: str, run: str) -> Path:
    """``BIDS_DIR/set_aside/sub-XX[_ses-YY]_before-<run>``: one folder per unit and run, so
    nothing set aside earlier is ever replaced."""
    return Path(out_dir) / SET_ASIDE_DIR / f"{unit.replace('/', '_')}_before-{run}"


def move_aside(out_dir: Path, paths: list[Path], dest: Path) -> None:
    """Move each of ``paths`` (inside ``out_dir``) to the same place under ``dest`` (one
    rename each), then remove the folders this empties."""
    for path in paths:
        target = dest / path.relative_to(out_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        _remove_empty_folders(path.parent, Path(out_dir))


def _remove_empty_folders(folder: Path, out_dir: Path) -> None:
    """Remove ``folder`` and its parents below ``out_dir`` while they are empty."""
    while folder != out_dir and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def has_files(folder: Path) -> bool:
    """Whether any file is left in ``folder`` (at any depth)."""
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def drop_participant_row(table: Path, participant: str, dest: Path) -> bool:
    """Move ``participant``'s row of ``table`` (participants.tsv) into ``dest/participants.tsv``
    (its other columns, e.g. age, are kept there); False when it has no row."""
    header, rows = read_participants(table)
    kept = [row for row in rows if row[0] != participant]
    if len(kept) == len(rows):
        return False
    write_participants(dest / "participants.tsv", header,
                       [row for row in rows if row[0] == participant])
    write_participants(table, header, kept)
    return True


def with_set_aside_ignored(bidsignore: str) -> str:
    """The text of a ``.bidsignore`` with a ``set_aside`` line added unless it has one (the
    validator does not honour ``set_aside/`` for the folder itself)."""
    if SET_ASIDE_DIR in bidsignore.splitlines():
        return bidsignore
    return bidsignore + ("" if not bidsignore or bidsignore.endswith("\n") else "\n") \
        + SET_ASIDE_DIR + "\n"


LINK_KEYS = ("ReferenceSignal", "MacromoleculeSignal")
"""Sidecar keys that name another file of the dataset (a BIDS URI)."""


def _linked_path(out_dir: Path, uri) -> Path | None:
    """The file of ``out_dir`` a link value names (``bids::path`` or a path relative to the
    dataset), None for anything else (another dataset's ``bids:name:``, not a string)."""
    if not isinstance(uri, str) or not uri or (uri.startswith("bids:")
                                               and not uri.startswith("bids::")):
        return None
    return (out_dir / uri.removeprefix("bids::")).resolve()


def links_into(out_dir: Path, moved: dict[Path, Path]) -> list[tuple[Path, str, str, Path]]:
    """(JSON, key, value, folder moved to) of every link left in the dataset's JSON files
    (top-level and under ``sub-*/``: sidecars and the JSONs they inherit) to a file of
    ``moved`` (resolved path -> the folder it went to): a JSON this conversion did not write
    (another mapping's, a hand-made one, or one of a participant or session the selection left
    out) whose link now dangles, which dmrs-bids refuses for that participant at its run.
    Called after the conversion is written, so a sidecar it rewrote is judged as rewritten."""
    found = []
    for path in sorted(out_dir.glob("*.json")) + sorted(out_dir.glob("sub-*/**/*.json")):
        try:
            sidecar = json.loads(path.read_text())
        except (OSError, ValueError):  # not this check's to report
            continue
        for key in LINK_KEYS if isinstance(sidecar, dict) else ():
            target = _linked_path(out_dir, sidecar.get(key))
            if target in moved:
                found.append((path, key, sidecar[key], moved[target]))
    return found


def dangling_link_note(path: Path, key: str, uri: str, dest: Path) -> str:
    """The warning on a link :func:`links_into` found."""
    return (f"{path}: {key} {uri!r} points to a file just moved to {dest} (not current); "
            "dmrs-bids will refuse the acquisitions that read this JSON until that scan is "
            "converted again or the link is changed")


def set_aside_skipped(out_dir, targets_by_unit: dict[str, list[Path]], run: str,
                      written: set[str]) -> tuple[list[str], dict[Path, Path]]:
    """Move the earlier outputs of each skipped unit (``sub-XX`` or ``sub-XX/ses-YY`` ->
    its mapping targets) aside, with the participant's row when nothing of it is left and it
    is not among ``written`` (participants this conversion writes). Returns one message per
    unit that had any, and the files moved (resolved path -> the folder they went to), for
    :func:`links_into` once the conversion is written."""
    out_dir = Path(out_dir)
    messages, moved = [], {}
    for unit, targets in sorted(targets_by_unit.items()):
        found = earlier_outputs(targets)
        if not found:
            continue
        dest = aside_folder(out_dir, unit, run)
        move_aside(out_dir, found, dest)
        moved.update({path.resolve(): dest for path in found})
        participant = unit.split("/")[0]
        row = (participant not in written and not has_files(out_dir / participant)
               and drop_participant_row(out_dir / "participants.tsv", participant, dest))
        messages.append(
            f"{unit} is skipped, so its files from an earlier conversion ("
            + ", ".join(p.relative_to(out_dir).as_posix() for p in found)
            + f") are not current: moved, unchanged, to {dest}"
            + (", with its participants.tsv row" if row else "")
            + "; dmrs-bids will not process them")
    if messages:
        ignore = out_dir / ".bidsignore"
        text = ignore.read_text() if ignore.exists() else ""
        if with_set_aside_ignored(text) != text:
            ignore.write_text(with_set_aside_ignored(text))
    return messages, moved
