"""What a participant-level run processed, so the group level reads only current results.

A successful run's record (``OUT/sub-<label>/sub-<label>_run.json``) lists its acquisitions
(``acquisitions``: session, source, and the SHA-256 of each input file: the svs data, its water
reference and MM file, each one's own JSON sidecar and the JSON sidecars each inherits by BIDS
inheritance (dataset- or subject-level), by ``bids::`` path). The group level
then reads only those acquisitions' derivatives (another acquisition's files left in the
participant folder are from an input removed or renamed since) and, given the BIDS_DIR, fails
the participant when one of those inputs is gone or differs from what the run read: its
results are no longer those of its input. Likewise the ``--basis`` each acquisition was
fitted with, as its ``_qc.json`` records it (:func:`changed_basis`), with or without BIDS_DIR.
"""

from __future__ import annotations

from pathlib import Path

from .config import ConfigError, file_digest
from .dataset_files import inherited_json_files
from .sidecar_metadata import _sidecar_path

BIDS_URI = "bids::"


def input_files(acquisition) -> list[Path]:
    """The files one acquisition's results depend on: data, water reference and MM file, each
    one's own JSON sidecar when it has one, and the JSONs each inherits (a dataset- or
    subject-level sidecar whose EchoTime the run used is as much its input as its own)."""
    files = []
    for path in (acquisition.svs, acquisition.water, acquisition.mm):
        if path is not None:
            files += [Path(path)] + sidecars_of(path, acquisition.bids_root)
    return list(dict.fromkeys(files))


def sidecars_of(path, bids_root) -> list[Path]:
    """The JSON sidecars that apply to a data file: its own when it has one, and those it
    inherits within ``bids_root`` (none without one)."""
    own = [p for p in [_sidecar_path(path)] if p.is_file()]
    return own + (inherited_json_files(path, bids_root) if bids_root is not None else [])


def _digest(path: Path, *how) -> str | None:
    """:func:`~bids_app.config.file_digest` (``how``: its digest function), None when the file
    cannot be read."""
    try:
        return file_digest(path, *how)
    except (ConfigError, OSError):
        return None


SIDECARS_LISTED = "own and inherited"
"""``sidecars`` of a run record's acquisition whose ``inputs`` list every JSON sidecar that
applied to its files (records from before 2026-12-07 list only each file's own), so a sidecar
that applies now and is not listed was added since the run."""


def acquisition_entry(acquisition) -> dict:
    """One acquisition of a run record: session (label, or None), source (the output stem),
    ``inputs``: ``bids::`` path -> SHA-256 (None when unreadable), and ``sidecars``
    (:data:`SIDECARS_LISTED`)."""
    return {"session": acquisition.session, "source": acquisition.stem,
            "inputs": {acquisition.uri(p): _digest(p) for p in input_files(acquisition)},
            "sidecars": SIDECARS_LISTED}


def recorded_acquisitions(acquisitions, previous: dict | None,
                          run_sessions: set | None) -> list[dict] | None:
    """The ``acquisitions`` of a successful run's record: this run's, plus, for a run of
    some sessions only (``run_sessions``), the earlier record's acquisitions of the other
    sessions (left in place). None when that earlier record does not list them (outputs of
    an older version): the group level then reads every acquisition's files, as before."""
    entries = [acquisition_entry(a) for a in acquisitions]
    if not run_sessions:
        return entries
    earlier = (previous or {}).get("acquisitions")
    if not isinstance(earlier, list):
        return None
    return entries + [e for e in earlier if isinstance(e, dict)
                      and e.get("session") not in run_sessions]


def current_sources(run: dict | None) -> set | None:
    """(session, source) of the acquisitions a run record lists; None when it lists none."""
    entries = (run or {}).get("acquisitions")
    if not isinstance(entries, list):
        return None
    return {(e.get("session"), e.get("source")) for e in entries if isinstance(e, dict)}


def input_path(uri: str, bids_dir) -> Path:
    """A recorded input (``bids::`` path, else absolute) in ``bids_dir``."""
    return Path(bids_dir) / uri[len(BIDS_URI):] if uri.startswith(BIDS_URI) else Path(uri)


def changed_inputs(run: dict | None, bids_dir) -> list[str]:
    """Each input of the run's acquisitions that is no longer in ``bids_dir`` or no longer
    what the run read (another SHA-256), as a message naming the file and the run; [] without
    a ``bids_dir`` or a record that lists acquisitions."""
    if bids_dir is None or current_sources(run) is None:
        return []
    problems, run_id = [], run.get("run_id", "?")
    for entry in run["acquisitions"]:
        inputs = entry.get("inputs") if isinstance(entry, dict) else None
        for uri, digest in (inputs or {}).items():
            path = input_path(uri, bids_dir)
            if not path.is_file():
                problems.append(f"{path}: no longer in the input (removed or renamed since "
                                f"run {run_id} processed it): the results of "
                                f"{entry.get('source')} are not current")
            elif digest and _digest(path) != digest:
                problems.append(f"{path}: changed since run {run_id} processed it: the "
                                f"results of {entry.get('source')} are not current (rerun "
                                "the participant level)")
        problems += [f"{path}: added since run {run_id} processed {entry.get('source')} (a JSON "
                     "sidecar that applies to its inputs now): its results are not current "
                     "(rerun the participant level)" for path in added_sidecars(entry, bids_dir)]
    return problems


def added_sidecars(entry, bids_dir) -> list[Path]:
    """JSON sidecars that apply now to a recorded acquisition's data files (their own or
    inherited) and that its record does not list: added since the run; [] for records that
    did not list inherited sidecars (:data:`SIDECARS_LISTED`)."""
    if not isinstance(entry, dict) or entry.get("sidecars") != SIDECARS_LISTED:
        return []
    bids_dir, recorded = Path(bids_dir), set(entry.get("inputs") or {})
    added = []
    for uri in recorded:
        path = input_path(uri, bids_dir)
        if path.suffix == ".json" or not path.is_file():
            continue
        for sidecar in sidecars_of(path, bids_dir):
            if sidecar.is_relative_to(bids_dir) and \
                    f"{BIDS_URI}{sidecar.relative_to(bids_dir).as_posix()}" not in recorded:
                added.append(sidecar)
    return sorted(set(added))


def changed_basis(report: dict | None, run: dict | None, source: str) -> str | None:
    """A message naming the ``--basis`` acquisition ``source`` was fitted with (its
    ``basis_report.json``, ``report``) and the run (``run``'s record) when it is still where
    the run read it (``basis_report.json`` -> ``path``) but is no longer what the run read:
    another SHA-256 than its recorded ``identity``, which covers the control files a single
    ``.RAW``'s grid may come from (``read_with``; an identity recorded before 2026-12-08
    without them is compared with the file alone). None when the same, when no file identity
    is recorded, or when the path is gone (a group level run elsewhere, e.g. in a container
    without the basis mounted, cannot check it)."""
    from pipeline.io.basis_formats import basis_files, basis_sha256

    report = report if isinstance(report, dict) else {}
    identity, path = report.get("identity"), report.get("path")
    if not isinstance(identity, dict) or not isinstance(identity.get("sha256"), str) \
            or identity.get("source") != "file" or not isinstance(path, str) or not path \
            or not Path(path).exists():
        return None
    with_beside = "read_with" in identity  # else recorded before the files beside counted
    read = basis_files(path) if with_beside else [Path(path)]
    digest = _digest(Path(path), *([basis_sha256] if with_beside else []))
    if digest in (None, identity["sha256"]):  # None: unreadable now, not judged
        return None
    return (f"{', '.join(str(p) for p in read)}: changed since run "
            f"{(run or {}).get('run_id', '?')} fitted {source} with it (--basis): its results "
            "are not current (rerun the participant level)")
