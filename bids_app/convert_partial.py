"""Which participants (or participant sessions) ``dmrs-bids-convert`` writes when some
acquisitions cannot be converted: each is written whole or not at all, so one bad scan stops
its own participant/session, never the others.

A participant/session is skipped when one of its acquisitions fails, or when one of its links
(``reference``, ``macromolecules``) names a scan of a skipped one: its sidecar would point at a
file that is not written.
"""

from __future__ import annotations

from pathlib import Path

from .convert_mapping import LINK_KEYS, ConversionError, bids_relative_path


class PartialConversion(ConversionError):
    """Some participants/sessions were written, others skipped: the message lists each problem
    and ends with the summary line. ``written``: the NIfTI-MRS paths written."""

    def __init__(self, message: str, written: list[Path]):
        super().__init__(message)
        self.written = written


def unit_label(entry: dict) -> str:
    """``sub-XX`` or ``sub-XX/ses-YY``: the folder written or skipped as a whole."""
    return bids_relative_path(entry).parent.parent.as_posix()


def skipped_units(entries: list[dict], failures: dict[int, str],
                  wheres: list[str]) -> tuple[set[str], list[str]]:
    """(skipped units, one problem line per skipped acquisition or link). ``failures`` maps an
    entry index to why it cannot be converted; ``wheres`` names each entry in messages. Links
    are followed until no more units are skipped (a link may name a scan skipped for a link)."""
    units = [unit_label(e) for e in entries]
    skipped = {units[i] for i in failures}
    problems = [f"{units[i]}: {failures[i]}" for i in sorted(failures)]
    index_by_id = {e["id"]: i for i, e in enumerate(entries) if e.get("id")}
    added = True
    while added:
        added = False
        for i, entry in enumerate(entries):
            problem = None if units[i] in skipped else \
                _dangling_link(entry, index_by_id, units, skipped)
            if problem:
                skipped.add(units[i])
                problems.append(f"{units[i]}: {wheres[i]}: {problem}; {units[i]} is not "
                                "written either (its sidecar would name a missing file)")
                added = True
    return skipped, problems


def _dangling_link(entry: dict, index_by_id: dict, units: list[str],
                   skipped: set[str]) -> str | None:
    """The first of ``entry``'s links naming a scan of a skipped unit, described, or None."""
    for link in LINK_KEYS:
        if link in entry and units[index_by_id[entry[link]]] in skipped:
            return (f"{link} {entry[link]!r} names a scan of {units[index_by_id[entry[link]]]}, "
                    "which is not written")
    return None


def nothing_written_message(failures: dict[int, str], problems: list[str],
                            n_entries: int) -> str:
    """The error when nothing is written: a lone unreadable acquisition as its own one line,
    otherwise a count, then one line per problem."""
    if len(problems) == 1:
        return next(iter(failures.values()))
    return (f"{len(failures)} of {n_entries} acquisitions cannot be converted (nothing was "
            "written):\n" + "\n".join(f"  - {p}" for p in problems))


def partial_message(problems: list[str], n_failed: int, n_entries: int, units: list[str],
                    skipped: set[str]) -> str:
    """The error of a partial conversion: the count, one line per problem, and a last line
    summing up which participants/sessions were written and which skipped."""
    everyone = sorted(set(units))
    written = [u for u in everyone if u not in skipped]
    kind = "participants/sessions" if any("/" in u for u in everyone) else "participants"
    return (f"{n_failed} of {n_entries} acquisitions cannot be converted; their {kind}, "
            "and those linking to their scans, are not written:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\nwrote {len(written)} of {len(everyone)} {kind} ({', '.join(written)}); "
              f"skipped {len(everyone) - len(written)} ({', '.join(sorted(skipped))})")
