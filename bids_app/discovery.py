"""Finding the inputs of each participant in an MRS-BIDS dataset (pybids), and validating it.

For every ``svs`` acquisition: its sidecar, its water reference (the ``ReferenceSignal`` BIDS
URI of the sidecar, else the ``mrsref`` with the same entities) and an optional measured
macromolecule acquisition (an ``svs`` whose ``acq-`` label names MM, with otherwise the same
entities).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .dataset_files import (NOT_RAW_MRS, _path_pattern, broken_json_files,
                            inherited_json_problem, invalid_file_name, invalid_label_folders,
                            is_raw_mrs_file, json_problem)
from .sidecar_metadata import (_metadata, _metadata_files, _read_sidecar, _sidecar_of,
                               _sidecar_path, _WhenFormatted, sidecars_text, stating_json)

NIFTI_EXTENSIONS = [".nii.gz", ".nii"]


class DiscoveryError(ValueError):
    """The dataset or the selection cannot be used (unknown label, bad filter file, ...)."""


@dataclass
class AcquisitionInputs:
    """Everything one ``svs`` acquisition needs: files, sidecars, entities, output stem."""

    subject: str
    session: str | None
    svs: Path
    sidecar: dict
    entities: dict
    water: Path | None = None
    water_sidecar: dict = field(default_factory=dict)
    mm: Path | None = None
    mm_sidecar: dict = field(default_factory=dict)
    bids_root: Path | None = None
    warnings: list[str] = field(default_factory=list)
    """Problems found at discovery that do not fail the acquisition (e.g. a water reference
    expected but not found), to be shown in the report and QC."""

    def uri(self, path) -> str:
        """``bids::<path relative to the dataset root>`` (the same wherever the dataset is
        mounted, so host and container runs record identical sources); the path itself when
        outside the dataset."""
        path = Path(path)
        if self.bids_root is not None and path.is_relative_to(self.bids_root):
            return f"bids::{path.relative_to(self.bids_root).as_posix()}"
        return str(path)

    @property
    def stem(self) -> str:
        """The input file name without ``_svs.nii[.gz]`` (the ``<src>`` of output names)."""
        name = self.svs.name
        for ext in NIFTI_EXTENSIONS:
            if name.endswith("_svs" + ext):
                return name[: -len("_svs" + ext)]
        raise DiscoveryError(f"{self.svs}: not an svs NIfTI file")


def strip_prefix(label: str, prefix: str) -> str:
    """``sub-01`` -> ``01`` (labels may be given with or without the prefix)."""
    label = str(label).strip()
    return label[len(prefix) + 1:] if label.startswith(prefix + "-") else label


def read_bids_filter_file(path) -> dict:
    """A JSON filter file as fMRIPrep reads it: ``{"svs": {...}, "mrsref": {...}, "mm": {...}}``.

    Each value maps pybids entity names to a value or a list of values.
    """
    path = Path(path)
    try:
        filters = json.loads(path.read_text())
    except FileNotFoundError:
        raise DiscoveryError(f"{path}: BIDS filter file not found") from None
    except json.JSONDecodeError as exc:
        raise DiscoveryError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(filters, dict):
        raise DiscoveryError(f"{path}: BIDS filter file must hold a JSON object")
    for key, value in filters.items():
        if key not in ("svs", "mrsref", "mm"):
            raise DiscoveryError(f"{path}: unknown filter query '{key}' "
                                 "(known: svs, mrsref, mm)")
        if not isinstance(value, dict):
            raise DiscoveryError(f"{path}: filter '{key}' must be an object of entities")
        check_filter_entities(key, value, path)
    return filters


def check_filter_entities(query: str, entities: dict, source) -> None:
    """A filter may narrow a query but never choose its participant or session: those come
    from ``--participant-label``/``--session-label`` (svs) or from the svs file itself (its
    water reference and MM companion), so results can never be written under another
    participant's name."""
    for key in ("subject", "session"):
        if key not in entities:
            continue
        if key == "subject" or query != "svs":
            option = "--participant-label" if key == "subject" else "--session-label"
            raise DiscoveryError(
                f"{source}: filter '{query}' sets '{key}'; a filter file may only narrow a "
                f"query, the {key} comes from {option}" + (
                    " and, for the water reference and MM companion, from the svs file"
                    if query != "svs" else ""))


def _narrow(base: dict, extra: dict) -> dict:
    """``base`` with the filter ``extra`` applied: entities the base query fixes (session)
    are intersected, never replaced."""
    query = dict(base)
    for key, value in (extra or {}).items():
        if key in base and key not in ("suffix", "extension"):
            wanted = value if isinstance(value, list) else [value]
            have = base[key] if isinstance(base[key], list) else [base[key]]
            query[key] = [v for v in have if v in wanted]
        else:
            query[key] = value
    return query


def load_layout(bids_dir, exclude=()):
    """A pybids layout of the raw dataset: only ``sub-*/[ses-*/]mrs/`` itself (derivatives,
    nested folders and ``exclude``, e.g. an output folder, never indexed). Broken JSON files,
    at any level, are left out of the index (pybids would refuse the whole dataset); the
    acquisitions that own or inherit them fail in :func:`discover_subject`, naming them.
    Folders with invalid labels are left out (see :func:`invalid_label_folders`)."""
    from bids import BIDSLayout
    from bids.layout import BIDSLayoutIndexer
    from bids.layout.validation import DEFAULT_LOCATIONS_TO_IGNORE

    bids_dir = Path(bids_dir)
    description = bids_dir / "dataset_description.json"
    if not description.is_file():
        raise DiscoveryError(f"{bids_dir}: not a BIDS dataset (no dataset_description.json)")
    problem = json_problem(description)
    if problem:
        raise DiscoveryError(f"{description}: {problem}")
    ignore = list(DEFAULT_LOCATIONS_TO_IGNORE) + NOT_RAW_MRS
    ignore += [_path_pattern(bids_dir, path) for path in broken_json_files(bids_dir)]
    ignore += [_path_pattern(bids_dir, bids_dir / name) for name in invalid_label_folders(bids_dir)]
    ignore += [_path_pattern(bids_dir, p) for p in exclude]
    return BIDSLayout(str(bids_dir), validate=False, derivatives=False,
                      indexer=BIDSLayoutIndexer(ignore=ignore))


def resolve_bids_uri(uri: str, bids_dir: Path, source, key: str = "ReferenceSignal") -> Path:
    """The file a ``ReferenceSignal`` (``key``) value points to (``bids::path``,
    ``bids:name:path`` via ``DatasetLinks``, or a path relative to the dataset root);
    ``source``: the file a message names as stating it."""
    bids_dir = Path(bids_dir)
    if uri.startswith("bids::"):
        return bids_dir / uri[len("bids::"):]
    if uri.startswith("bids:"):
        name, _, rel = uri[len("bids:"):].partition(":")
        description = json.loads((bids_dir / "dataset_description.json").read_text())
        links = description.get("DatasetLinks", {})
        if name not in links:
            raise DiscoveryError(f"{source}: {key} {uri!r} names dataset {name!r}, "
                                 "which DatasetLinks of dataset_description.json does not define")
        base = Path(links[name])
        return (base if base.is_absolute() else bids_dir / base) / rel
    return bids_dir / uri


def _labels(wanted, kind: str) -> list[str]:
    """``--participant-label``/``--session-label`` values without prefix, each once."""
    return list(dict.fromkeys(strip_prefix(w, "sub" if kind == "participant" else "ses")
                              for w in wanted))


def _selected(available: list[str], wanted, kind: str, bids_dir) -> list[str]:
    if not wanted:
        return sorted(available)
    labels = _labels(wanted, kind)
    missing = [lab for lab in labels if lab not in available]
    if missing:
        raise DiscoveryError(
            f"{bids_dir}: {kind} label(s) {', '.join(missing)} not found in the dataset "
            f"(available: {', '.join(sorted(available)) or 'none'})")
    return labels


def check_participant_labels(bids_dir, participant_labels) -> None:
    """Unknown ``--participant-label`` values, from the dataset's ``sub-*`` folders, raise
    :class:`DiscoveryError` (the message discovery gives): checked before the run writes
    anything, so a typo leaves no output or work folder behind."""
    if participant_labels:
        available = [p.name.removeprefix("sub-") for p in Path(bids_dir).glob("sub-*")
                     if p.is_dir()]
        _selected(available, participant_labels, "participant", bids_dir)


def select_subjects(layout, participant_labels=None) -> list[str]:
    """Subject labels to process; an unknown label raises :class:`DiscoveryError`."""
    return _selected(layout.get_subjects(), participant_labels, "participant", layout.root)


def _query(layout, base: dict, extra: dict | None) -> list:
    root = Path(layout.root)
    query = _narrow(base, extra)
    if any(value == [] for value in query.values()):
        return []  # the filter and the selection have nothing in common
    return [f for f in layout.get(return_type="object", **query)
            if is_raw_mrs_file(f.path, root)]


FILE_TYPE_ENTITIES = ("suffix", "extension", "datatype")
"""Entities that say what kind of file it is, not which acquisition it belongs to."""


def same_acquisition(entities: dict, other: dict, ignore=()) -> bool:
    """Whether two files' entities name the same acquisition: equal apart from the file-type
    entities and ``ignore``, an entity one lacks absent from the other too (a pybids query
    leaves out entities the svs lacks, so ``sub-01_svs`` would match any ``acq-``/``run-``)."""
    def key(ents):
        return {k: str(v) for k, v in ents.items() if k not in FILE_TYPE_ENTITIES + tuple(ignore)}
    return key(entities) == key(other)


def _counterpart(layout, entities: dict, suffix: str, extra: dict | None) -> list:
    """Files with exactly the entities of ``entities`` but another suffix."""
    query = {k: v for k, v in entities.items() if k not in ("suffix", "extension")}
    query.update(suffix=suffix, extension=NIFTI_EXTENSIONS)
    return [f for f in _query(layout, query, extra)
            if same_acquisition(entities, f.get_entities())]


def linked_file(layout, svs, sidecar: dict, key: str,
                warnings: list | None = None) -> Path | None:
    """The file the ``key`` (``ReferenceSignal``, ``MacromoleculeSignal``: one BIDS URI) of
    ``svs``'s merged ``sidecar`` metadata points to, None without one; DiscoveryError naming
    the JSON that states it (its own sidecar or an inherited one, :func:`stating_json`) when
    it is not a string or points to nothing. A file of another participant or session is
    used, with a warning appended to ``warnings``."""
    svs_path = svs.path
    uri = sidecar.get(key)
    stated = _WhenFormatted(lambda: str(stating_json(layout, svs_path, key)))
    if uri is not None and not isinstance(uri, str):
        kind = "number" if isinstance(uri, (int, float)) and not isinstance(uri, bool) \
            else type(uri).__name__  # pybids reads an integer as its PaddedInt
        raise DiscoveryError(f"{stated}: {key} must be one BIDS URI string, got a {kind} "
                             f"({uri!r})")
    if not uri:
        return None
    path = resolve_bids_uri(uri, Path(layout.root), stated, key)
    if not path.exists():
        raise DiscoveryError(f"{svs_path}: {key} {uri!r} in {stated} points to {path}, which "
                             "does not exist")
    if not path.is_file() or not path.name.endswith(tuple(NIFTI_EXTENSIONS)):
        raise DiscoveryError(f"{stated}: {key} {uri!r} points to {path}, which is not a "
                             f"NIfTI-MRS file (.nii or .nii.gz); point it at the "
                             f"{LINKED_KIND[key]}")
    note = foreign_reference_note(svs.get_entities(), path, uri, key)
    if note and warnings is not None:
        warnings.append(f"{svs_path}: {note}")
    return path


LINKED_KIND = {"ReferenceSignal": "unsuppressed water reference acquisition",
               "MacromoleculeSignal": "metabolite-nulled macromolecule acquisition"}
"""What each link key must point at (as messages word it)."""


def link_text(layout, svs_path, key: str, uri: str, path: Path) -> _WhenFormatted:
    """How a message names the link that chose ``path`` for ``svs_path``: the JSON stating
    ``key`` (:func:`stating_json`, looked up only when a message is made), the key, its value
    and the file it points to."""
    return _WhenFormatted(lambda: f"{stating_json(layout, svs_path, key)}: {key} {uri!r} "
                                  f"points to {path}")


def with_link(message: str, links: dict) -> str:
    """``message`` (an input check's, naming its file first) about a file a link chose
    (``links``: path -> :func:`link_text`) begun with the link instead: the JSON to correct
    is named, not only the file it points to."""
    for path, link in links.items():
        if message.startswith(f"{path}: "):
            return f"{link}: {message.removeprefix(f'{path}: ')}"
    return message


def _water_for(layout, svs, sidecar: dict, filters: dict, warnings: list | None = None):
    path = linked_file(layout, svs, sidecar, "ReferenceSignal", warnings)
    if path is not None:
        return path
    entities = {k: v for k, v in svs.get_entities().items()}
    matches = _counterpart(layout, entities, "mrsref", filters.get("mrsref"))
    if len(matches) > 1:
        names = ", ".join(Path(m.path).name for m in matches)
        raise DiscoveryError(f"{svs.path}: several mrsref files match ({names}); "
                             "set ReferenceSignal in the sidecar")
    if not matches and warnings is not None:
        note = missing_reference_note(layout, svs)
        if note:
            warnings.append(note)
    return Path(matches[0].path) if matches else None


def foreign_reference_note(entities: dict, reference: Path, uri: str,
                           key: str = "ReferenceSignal") -> str | None:
    """A warning when ``key`` (``ReferenceSignal``, ``MacromoleculeSignal``) points at another
    participant's (or session's) file: allowed (a shared reference scan), but easy to get
    wrong when sidecars are copied between participants."""
    labels = dict(re.findall(r"(sub|ses)-([a-zA-Z0-9]+)", Path(reference).name))
    for label, entity in (("sub", "subject"), ("ses", "session")):
        if label in labels and entity in entities and labels[label] != str(entities[entity]):
            return (f"{key} {uri!r} is a file of {label}-{labels[label]}, not of "
                    f"{label}-{entities[entity]}: used as given; check the sidecar if it was "
                    "copied from another participant")
    return None


def missing_reference_note(layout, svs) -> str | None:
    """When no water reference matches ``svs`` but the same participant/session has mrsref
    files (e.g. another ``acq-`` label): a warning naming what was looked for and what is
    there, since without a reference there is no eddy-current correction, no coil weights from
    water and no concentrations."""
    entities = svs.get_entities()
    near = {k: entities[k] for k in ("subject", "session") if k in entities}
    others = _query(layout, {**near, "suffix": "mrsref", "extension": NIFTI_EXTENSIONS}, None)
    where = "the folder holds"
    if not others and "session" in near:  # e.g. the reference filed under another session
        others = _query(layout, {"subject": near["subject"], "suffix": "mrsref",
                                 "extension": NIFTI_EXTENSIONS}, None)
        where = "the participant's other sessions hold"
    if not others:
        return None
    wanted = svs.filename.replace("_svs.", "_mrsref.")
    found = ", ".join(sorted(Path(o.path).name for o in others))
    return (f"{svs.path}: no water reference found: looked for {wanted} (no ReferenceSignal "
            f"in the sidecar), but {where} {found}; processed without a water "
            "reference (no eddy-current correction, coil weights or concentrations). Set "
            "ReferenceSignal in the sidecar to use one.")


def _is_mm(entities: dict, mm_labels) -> bool:
    return entities.get("acquisition") in set(mm_labels)


def _linked_mm_files(files: list, layout) -> set:
    """Resolved paths of the svs files that another svs's ``MacromoleculeSignal`` names: they
    are measured macromolecule spectra, whatever their ``acq-`` label, and never processed as
    metabolite acquisitions of their own (links that cannot be resolved are reported when
    their svs is discovered)."""
    linked = set()
    for svs in files:
        try:
            path = linked_file(layout, svs, _sidecar_of(layout, svs.path),
                               "MacromoleculeSignal")
        except (DiscoveryError, OSError, ValueError):
            continue
        if path is not None and path.resolve() != Path(svs.path).resolve():  # a self-link
            linked.add(path.resolve())                                    # is refused later
    return linked


def discover_subject(layout, subject: str, session_labels=None, filters: dict | None = None,
                     mm_labels=("mm",), motion_ppm_range=None,
                     check_mm_nulled: bool = True) -> list[AcquisitionInputs]:
    """All svs acquisitions of one subject with their water reference and MM companion
    (``motion_ppm_range``, ``check_mm_nulled``: see :func:`check_inputs`). :func:`discover`
    leaves out a subject with none of ``session_labels`` (:func:`no_selected_session`); called
    with one anyway, it finds no svs file and raises :class:`DiscoveryError`."""
    filters = filters or {}
    bids_dir = Path(layout.root)
    misnamed = invalid_file_name(bids_dir, subject)
    if misnamed:
        raise DiscoveryError(misnamed)
    base = {"subject": subject, "suffix": "svs", "extension": NIFTI_EXTENSIONS}
    if session_labels:
        sessions = layout.get_sessions(subject=subject)
        base["session"] = [s for s in _labels(session_labels, "session") if s in sessions]
    files = _query(layout, base, filters.get("svs"))
    mm_files = [f for f in files if _is_mm(f.get_entities(), mm_labels)]
    linked_mm = _linked_mm_files(files, layout)
    inputs = []
    for svs in sorted(files, key=lambda f: f.path):
        entities = svs.get_entities()
        if _is_mm(entities, mm_labels) or Path(svs.path).resolve() in linked_mm:
            continue
        warnings: list[str] = []
        _check_inherited_json(bids_dir, svs.path)  # before its links are read
        sidecar = _sidecar_of(layout, svs.path)
        water = _water_for(layout, svs, sidecar, filters, warnings)
        mm_path = linked_file(layout, svs, sidecar, "MacromoleculeSignal", warnings)
        if mm_path is None:
            mm = _mm_for(entities, mm_files)
            mm_path = Path(mm.path) if mm else None
        _check_inherited_json(bids_dir, water, mm_path)
        links = {path: link_text(layout, svs.path, key, sidecar[key], path)
                 for path, key in ((water, "ReferenceSignal"), (mm_path, "MacromoleculeSignal"))
                 if path is not None and sidecar.get(key)}
        check_inputs(Path(svs.path), water, mm_path, motion_ppm_range,
                     lambda path: _metadata(layout, path),
                     lambda path: _WhenFormatted(
                         lambda: sidecars_text(path, _metadata_files(layout, path))), links,
                     check_mm_nulled)
        sidecar = _metadata(layout, svs.path)
        if water is not None:
            warnings += _water_echo_series(svs.path, sidecar, water)
        inputs.append(AcquisitionInputs(
            subject=subject, session=entities.get("session"), svs=Path(svs.path),
            sidecar=sidecar, entities={k: v for k, v in entities.items()
                                       if k not in ("extension",)},
            water=water, water_sidecar=_metadata(layout, water) if water else {},
            mm=mm_path, mm_sidecar=_metadata(layout, mm_path) if mm_path else {},
            bids_root=bids_dir,
            warnings=warnings))
    if not files and not _query(layout, base, None):  # none at all, not filtered out
        raise DiscoveryError(no_svs_message(layout, subject))
    check_unique_outputs(inputs)
    return inputs


def _water_echo_series(svs, metadata: dict, water: Path) -> list[str]:
    """The warning that the water reference holds an EchoTime series and which of its TEs the
    run uses (``pipeline.io.echo_series``), as a list ([] when it holds none); DiscoveryError
    naming the file for a series the run cannot use."""
    from pipeline.io.echo_series import stated_echo_time_s, water_echo_series_note

    try:
        note = water_echo_series_note(water, stated_echo_time_s(svs, metadata))
    except ValueError as exc:
        raise DiscoveryError(str(exc)) from None
    return [note] if note else []


def _check_inherited_json(bids_dir: Path, *paths) -> None:
    """DiscoveryError naming a broken JSON that one of ``paths`` inherits."""
    for problem in (inherited_json_problem(p, bids_dir) for p in paths if p is not None):
        if problem:
            raise DiscoveryError(problem)


def no_selected_session(layout, subject: str, session_labels) -> str | None:
    """Why ``subject`` is left out of a ``--session-label`` run: it has none of the selected
    sessions (None when it has one, or no session is selected)."""
    if not session_labels:
        return None
    wanted = _labels(session_labels, "session")
    own = layout.get_sessions(subject=subject)
    if set(wanted) & set(own):
        return None
    return (f"{Path(layout.root) / ('sub-' + subject)}: no session {', '.join(wanted)} "
            f"(--session-label; its sessions: {', '.join(sorted(own)) or 'none'})")


def no_svs_message(layout, subject: str) -> str:
    """Why a subject has nothing to process, naming the MRS files it does have (e.g. only
    ``_mrsi``: dmrs-bids processes single-voxel ``_svs`` data only)."""
    others = sorted({f.get_entities().get("suffix") for f in layout.get(
        subject=subject, datatype="mrs", return_type="object")} - {"svs", None})
    folder = Path(layout.root) / f"sub-{subject}"
    if others:
        return (f"{folder}: no single-voxel (_svs) MRS file; found only "
                f"{', '.join('_' + o for o in others)} files, which dmrs-bids does not "
                "process (single-voxel svs only)")
    return f"{folder}: no single-voxel (_svs) MRS file found"


def check_unique_outputs(inputs: list[AcquisitionInputs]) -> None:
    """Two inputs whose derivatives would share names (``x_svs.nii`` beside ``x_svs.nii.gz``)
    are refused, naming both: whichever ran last would silently overwrite the other."""
    seen: dict = {}
    for acq in inputs:
        key = (acq.subject, acq.session, acq.stem)
        if key in seen:
            raise DiscoveryError(f"{acq.svs} and {seen[key]} map to the same output name "
                                 f"{acq.stem}_*; keep only one of them")
        seen[key] = acq.svs


def check_inputs(svs: Path, water: Path | None, mm: Path | None,
                 motion_ppm_range=None, metadata_of=None, where_of=None,
                 links: dict | None = None, check_mm_nulled: bool = True) -> None:
    """Every file of the acquisition (and its sidecar) is readable by this user and states 1H
    as its nucleus (header and sidecar agreeing), the water reference shares the data's
    spectral grid, and with ``motion_ppm_range`` (the MM motion check is on) the data's grid
    can hold its window; DiscoveryError naming the file otherwise
    (an unreadable file would otherwise stall nipype while it hashes the inputs; a grid too
    coarse for the motion check would fail only after the fit). ``metadata_of``: path -> the
    sidecar metadata the run reads that file with (with BIDS inheritance), so the checks judge
    what the run uses; ``where_of``: path -> how messages name that metadata. Default: the
    file's own JSON sidecar. ``links``: the water reference or MM a sidecar link chose ->
    :func:`link_text`; when such a file is not the kind of file the link must name (not water,
    the metabolite file, another grid), the message names the link (:func:`with_link`); a
    problem of the file itself (unreadable, its header against its sidecar) names the file.
    ``check_mm_nulled``: refuse an MM file that is a metabolite spectrum (``[macromolecules]
    check_nulled``; ``pipeline.io.mm_likeness``)."""
    from .input_checks import (InputError, check_fid_start, check_frequency_agreement,
                               check_macromolecule_signal, check_metadata, check_motion_grid,
                               check_nucleus, check_readable, check_water_grid,
                               check_water_reference)

    files = [p for p in (svs, water, mm) if p is not None]
    sidecars = [_sidecar_path(p) for p in files]
    metadata_of = metadata_of or (lambda path: _read_sidecar(_sidecar_path(path)))
    where_of = where_of or _sidecar_path
    try:
        for path in files + [s for s in sidecars if s.exists()]:
            check_readable(path)
        for sidecar in sidecars:
            problem = json_problem(sidecar) if sidecar.exists() else None
            if problem:
                raise InputError(f"{sidecar}: sidecar {problem}")
        metadata = {path: metadata_of(path) for path in files}
        for path in files:
            check_nucleus(path, metadata[path], where_of(path))
        check_metadata(svs, metadata[svs], where_of(svs))
        for path in files[1:]:  # the water reference and MM: their frequency, as the svs's
            check_frequency_agreement(path, metadata[path], where_of(path))
        for path in files:
            check_fid_start(path)
        if motion_ppm_range is not None:
            check_motion_grid(svs, motion_ppm_range, metadata[svs])
    except InputError as exc:
        raise DiscoveryError(str(exc)) from None
    try:  # is each companion the kind of file it must be? A link that chose it is named
        if water is not None:
            check_water_grid(svs, water)
            check_water_reference(svs, water, metadata[svs], metadata[water])
        if mm is not None:
            check_macromolecule_signal(svs, mm, water, metadata[svs], metadata[mm],
                                       check_mm_nulled)
    except InputError as exc:
        raise DiscoveryError(with_link(str(exc), links or {})) from None


def _mm_for(entities: dict, mm_files: list):
    """The MM acquisition with exactly the same entities but ``acq`` (its ``acq-`` label names
    MM); None if none or ambiguous."""
    hits = [f for f in mm_files
            if same_acquisition(entities, f.get_entities(), ignore=("acquisition",))]
    return hits[0] if len(hits) == 1 else None


def discover(bids_dir, participant_labels=None, session_labels=None, filters=None,
             mm_labels=("mm",), errors: dict | None = None,
             exclude=(), motion_ppm_range=None, skipped: dict | None = None,
             check_mm_nulled: bool = True) -> dict[str, list[AcquisitionInputs]]:
    """Inputs per subject label; raises :class:`DiscoveryError` for unknown participant labels
    and for session labels no participant of the dataset has. A participant without any of the
    selected sessions is left out, the reason stored in ``skipped`` (it is not a failure: one
    ``--session-label`` serves a dataset whose participants have different sessions).

    A problem of one subject (a dangling ``ReferenceSignal``, any unexpected
    error while reading its files, an invalid folder label) raises too, unless ``errors`` is
    given: the message is then stored there under the subject's label (the folder name for an
    invalid label) and the other subjects are still returned. ``exclude``: folders never
    indexed (an output or work folder inside the dataset). ``motion_ppm_range``: the MM
    motion check's window when the check is on; ``check_mm_nulled``: see :func:`check_inputs`.
    """
    layout = load_layout(bids_dir, exclude)
    invalid = invalid_label_folders(bids_dir)
    if invalid and errors is None:
        raise DiscoveryError(next(iter(invalid.values())))
    if errors is not None and not participant_labels:
        for folder, message in invalid.items():
            errors[folder.removeprefix("sub-")] = message
    if session_labels:
        _selected(layout.get_sessions(), session_labels, "session", bids_dir)
    found = {}
    for sub in select_subjects(layout, participant_labels):
        reason = no_selected_session(layout, sub, session_labels)
        if reason:
            if skipped is not None:
                skipped[sub] = reason
            continue
        try:
            found[sub] = discover_subject(layout, sub, session_labels, filters, mm_labels,
                                          motion_ppm_range, check_mm_nulled)
        except DiscoveryError as exc:
            if errors is None:
                raise
            errors[sub] = str(exc)
        except Exception as exc:  # contain it: one participant's files never stop the study
            if errors is None:
                raise
            from .runlog import format_exception, get_logger
            get_logger().debug("discovery of sub-%s failed:\n%s", sub, format_exception(exc))
            errors[sub] = (f"{Path(bids_dir) / ('sub-' + sub)}: discovery failed "
                           f"({type(exc).__name__}: {' '.join(str(exc).split())})")
    return found
