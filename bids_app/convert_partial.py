"""Which participants (or participant sessions) ``dmrs-bids-convert`` writes when some
acquisitions cannot be converted: each is written whole or not at all, so one bad scan stops
its own participant/session, never the others.

A participant/session is skipped when one of its acquisitions fails, or when one of its links
(``reference``, ``macromolecules``) names a scan of a skipped one: its sidecar would point at a
file that is not written. ``--participant-label`` and ``--session-label`` limit the
conversion to some participants and sessions (e.g. one skipped before, now fixed); a link to a
scan they leave out must find that scan in the dataset.
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


def participant_of(entry: dict) -> str:
    """``sub-XX``: the participant of a mapping entry."""
    return bids_relative_path(entry).parts[0]


def session_of(entry: dict) -> str | None:
    """``ses-YY``: the session of a mapping entry (None without one)."""
    folder = bids_relative_path(entry).parent.parent
    return folder.name if folder.name.startswith("ses-") else None


def _prefixed(labels, prefix: str) -> set[str]:
    """Command-line labels with their BIDS prefix (given with or without it)."""
    return {f"{prefix}-{str(label).strip().removeprefix(prefix + '-')}" for label in labels}


def _unknown_labels(wanted: set[str], known: set[str], option: str, mapping_path,
                    kind: str) -> None:
    """ConversionError when ``wanted`` holds a label the mapping has no acquisition of."""
    unknown = sorted(wanted - known)
    if unknown:
        raise ConversionError(f"{option} {' '.join(unknown)}: {mapping_path} has no "
                              f"acquisition of it (its {kind}: "
                              f"{', '.join(sorted(known)) or 'none'})")


def selected_entries(entries: list[dict], labels, mapping_path,
                     session_labels=None) -> tuple[list[int], list[str]]:
    """(indices of the entries to convert, notes on the participants left out): those of the
    participants ``labels`` (``--participant-label``) in the sessions ``session_labels``
    (``--session-label``), each with or without its ``sub-``/``ses-`` prefix; None or empty:
    no limit. A label the mapping has no acquisition of is a ConversionError naming those it
    has (sessions: of any participant, as dmrs-bids judges its own ``--session-label``). A
    selected participant with none of the sessions is left out with a note, as dmrs-bids
    does; nothing selected at all is a ConversionError."""
    participants = [participant_of(e) for e in entries]
    chosen = list(range(len(entries)))
    if labels:
        wanted = _prefixed(labels, "sub")
        _unknown_labels(wanted, set(participants), "--participant-label", mapping_path,
                        "participants")
        chosen = [i for i in chosen if participants[i] in wanted]
    if not session_labels:
        return chosen, []
    sessions = [session_of(e) for e in entries]
    wanted = _prefixed(session_labels, "ses")
    _unknown_labels(wanted, set(sessions) - {None}, "--session-label", mapping_path,
                    "sessions")
    kept = [i for i in chosen if sessions[i] in wanted]
    left_out = sorted({participants[i] for i in chosen} - {participants[i] for i in kept})
    notes = [f"{sub}: {mapping_path} has no acquisition of it in {', '.join(sorted(wanted))} "
             f"(--session-label; its sessions: {_sessions_of(sub, participants, sessions)}); "
             "not converted" for sub in left_out]
    if not kept:
        raise ConversionError("; ".join(notes))
    return kept, notes


def _sessions_of(participant: str, participants: list[str], sessions: list) -> str:
    """The sessions the mapping has of ``participant``, as text (``none`` without any)."""
    own = {s for p, s in zip(participants, sessions) if p == participant and s}
    return ", ".join(sorted(own)) or "none"


def _left_out_reason(entry: dict, labels) -> str:
    """Why a scan is not converted now: its participant is not among ``labels``
    (``--participant-label``) or its session not among ``--session-label``."""
    if labels and participant_of(entry) not in _prefixed(labels, "sub"):
        return f"its participant, {participant_of(entry)}, is not among --participant-label"
    return f"its session, {unit_label(entry)}, is not among --session-label"


def unselected_link_problem(entries: list[dict], chosen: list[int], targets: list[Path],
                            wheres: list[str], labels=None) -> str | None:
    """Why a chosen entry cannot be written for a link to a scan left out by the selection
    (``--participant-label`` ``labels``, ``--session-label``) that is not in the dataset (its
    sidecar would name a missing file), or None. ``targets`` and ``wheres`` hold every
    entry's output path and name."""
    index_by_id = {e["id"]: i for i, e in enumerate(entries) if e.get("id")}
    for i in chosen:
        for link in LINK_KEYS:
            linked = index_by_id.get(entries[i].get(link))
            if linked is not None and linked not in chosen and not targets[linked].exists():
                return (f"{wheres[i]}: {link} {entries[i][link]!r} names {targets[linked]}, "
                        f"which does not exist and is not converted now "
                        f"({_left_out_reason(entries[linked], labels)}); add it or convert "
                        "it first")
    return None


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
        if link in entry and entry[link] in index_by_id \
                and units[index_by_id[entry[link]]] in skipped:  # (one left out: in the dataset)
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
