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
by this mapping, are only warned about (as for written participants).
"""

from __future__ import annotations

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


def set_aside_skipped(out_dir, targets_by_unit: dict[str, list[Path]], run: str,
                      written: set[str]) -> list[str]:
    """Move the earlier outputs of each skipped unit (``sub-XX`` or ``sub-XX/ses-YY`` ->
    its mapping targets) aside, with the participant's row when nothing of it is left and it
    is not among ``written`` (participants this conversion writes); one message per unit
    that had any."""
    out_dir = Path(out_dir)
    messages = []
    for unit, targets in sorted(targets_by_unit.items()):
        found = earlier_outputs(targets)
        if not found:
            continue
        dest = aside_folder(out_dir, unit, run)
        move_aside(out_dir, found, dest)
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
    return messages
