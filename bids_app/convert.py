"""``dmrs-bids-convert``: vendor MRS files -> an MRS-BIDS dataset, through spec2nii.

A small declarative TOML mapping says, for each input file, where it goes in BIDS and how its
dynamics split into diffusion conditions. Examples are installed with the package
(``dmrs-bids-convert --example NAME``; ``--help`` lists them)::

    [dataset]
    name = "dMRS 7T STEAM in vivo"
    authors = ["..."]                  # optional; license, bids_version, anonymise also
    [sidecar]                          # optional: sidecar keys for every acquisition
    MixingTime = 0.060

    [[acquisition]]
    id = "metab"                       # optional; used by `reference` / `macromolecules`
    participant = "01"
    session = "1"                      # optional; also task, acq, run
    acq = "dwsteam"
    suffix = "svs"                     # svs | mrsref | mm (mm: an svs file, acq label "mm")
    format = "philips"                 # a spec2nii subcommand, or "nifti" for NIfTI-MRS input
                                       # (any version; may be left out for one .nii(.gz) file)
    files = ["metab_raw_act.SDAT", "metab_raw_act.SPAR"]   # relative to --source-dir; a
                                       # folder for varian (the .fid folder), file or folder
                                       # for bruker
    spec2nii_args = []                 # optional extra spec2nii arguments (e.g. ["-e", "image"])
    conjugate = false                  # optional: conjugate the data (files stored with the
                                       # opposite sign convention, e.g. ISMRM 2016 challenge RAW)
    reference = "water"                # id of the mrsref -> ReferenceSignal (BIDS URI)
    macromolecules = "mm"              # id of the MM acquisition -> MacromoleculeSignal
    dim_roles = { DIM_USER_1 = "transients" }   # optional: NIfTI-MRS dims the header leaves unclear
    [acquisition.dynamics]
    n_conditions = 10
    order = "condition_fastest"        # or "transient_fastest", or nested loops fastest first:
                                       # ["direction", "b", "transient"] (b_values then hold
                                       # one b per b step, directions one per direction step)
    check_order = true                 # default: refuse an order the data contradict (the
                                       # transients' signal size must group by condition)
    [acquisition.diffusion]
    b_values = [0, 907, ...]           # one per condition
    b_value_units = "s/mm2"            # or "ms/um2"
    directions = [[0, 0, 0], [1, 1, -0.5], ...]   # optional; [0, 0, 0] only at b = 0
    [acquisition.sidecar]
    EchoTime = 0.040
    DiffusionGradientDuration = 0.015

Outputs: ``sub-XX/[ses-YY/]mrs/*_{svs,mrsref}.nii.gz`` (current-standard NIfTI-MRS, conditions
on ``DIM_USER_0`` with b in s/mm^2) with JSON sidecars, ``dataset_description.json``,
``README`` and ``participants.tsv``. Existing outputs are never replaced without
``--overwrite``. A participant/session with an acquisition that cannot be converted is skipped
whole and named, the others are written (exit 2); its files from an earlier conversion are set
aside (``OUTPUT_DIR/set_aside/``), and ``--participant-label`` (``--session-label``) converts
it alone once fixed.
spec2nii runs in-process; nothing uses the network.

Modules: :mod:`bids_app.convert_mapping` (the mapping and its loops),
:mod:`bids_app.convert_vendor` (spec2nii and vendor-header facts),
:mod:`bids_app.convert_order_check` (is ``dynamics.order`` what the data show?),
:mod:`bids_app.convert_sidecar` (sidecars and dataset files),
:mod:`bids_app.convert_partial` (which participants/sessions are converted and skipped),
:mod:`bids_app.convert_set_aside` (the earlier outputs of skipped ones); this one converts
and holds the command line. Their public names are importable from here too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline import __version__
from pipeline.acquisition import Acquisition
from pipeline.io.input_checks import nucleus_problem
from pipeline.io.json_values import write_json
from pipeline.io.nifti_mrs import write_nifti_mrs
from pipeline.io.varian import ARRAY_KEY as VARIAN_ARRAY_KEY, arrayed_split_problem
from pipeline.sequences import means_no_mixing_time, stated_sequence

from .convert_mapping import (  # noqa: F401  (public names re-exported from this module)
    ENTITY_KEYS, LEGACY_ORDERS, LINK_KEYS, LOOPS, NIFTI_FORMAT, ORDERS, SPEC2NII_FILE_COUNTS,
    SUFFIXES, ConversionError, _diffusion_conditions, bids_relative_path, dynamics_loops,
    foreign_link_note, load_mapping, loop_sizes, n_conditions, split_dynamics, split_loops)
from .convert_order_check import check_loop_order, loop_order_verdict
from .convert_partial import (PartialConversion, nothing_written_message, partial_message,
                              participant_of, selected_entries, session_of, skipped_units,
                              unit_label, unselected_link_problem)
from .convert_set_aside import dangling_link_note, links_into, set_aside_skipped, sidecar_of
from .convert_sidecar import (  # noqa: F401  (public names re-exported from this module)
    _write_dataset_files, bids_sidecar, read_participants, sampling_sidecar)
from .convert_vendor import (  # noqa: F401  (public names re-exported from this module)
    OWN_READERS, PULSE_SEQUENCE_TYPES, READER_NOTES_KEY, SPEC2NII_DEFAULT_ARGS,
    SPEC2NII_FOLDER_INPUTS, _read_input, file_pair_problem, identified_sequence,
    identifying_keys, input_problem, pulse_sequence_hint, run_spec2nii, vendor_transient_count)
from .runlog import run_id


# --------------------------------------------------------------------------- conversion

def _mapping_conditions(entry: dict, acq: Acquisition, files: list[Path], where: str,
                        mapping_path: Path):
    """(fids, b-values, directions, units source, warnings, facts): the mapping's loops and
    diffusion lists applied to stored dynamics, or the conditions the header already holds.
    A loop order the data contradict is refused (:mod:`bids_app.convert_order_check`)."""
    loops = dynamics_loops(entry, where)
    n_cond = n_conditions(entry, loops, where)
    fids = acq.fids
    if acq.n_conditions > 1 or acq.is_diffusion:
        if "diffusion" in entry or n_cond > 1:
            raise ConversionError(f"{where}: {files[0]} already holds {acq.n_conditions} "
                                  "diffusion conditions in its header; drop the dynamics and "
                                  "diffusion tables from the mapping")
        return fids, acq.b_values_s_mm2, acq.directions, \
            acq.metadata.get("b_value_units_source", "header"), [], []
    sizes = loop_sizes(entry, loops, where)
    fids = _split_by_mapping(fids, loops, sizes, n_cond, files[0])
    b_s_mm2, directions, units_source, notes = _diffusion_conditions(entry, n_cond, where,
                                                                     mapping_path)
    check = check_loop_order(acq.fids, acq.dwell_s, loops, sizes, b_s_mm2, files[0])
    facts, warned = loop_order_verdict(check, files[0],
                                       entry.get("dynamics", {}).get("check_order", True))
    return fids, b_s_mm2, directions, units_source, notes + warned, facts


def _split_by_mapping(fids, loops: list[str], sizes: dict, n_cond: int, source):
    """Stored dynamics ``(1, n, ...)`` split into conditions by the mapping's loops (as they
    are unless it states conditions or an order)."""
    if n_cond > 1 or loops != LEGACY_ORDERS["condition_fastest"]:
        return split_loops(fids, loops, sizes, source)
    return fids


def _stored_dynamics_of_conditions(entry: dict, n_dynamics: int, where: str, source):
    """(conditions, transients): the stored dynamic each condition's transient comes from,
    as the mapping splits them."""
    loops = dynamics_loops(entry, where)
    index = np.arange(n_dynamics).reshape(1, -1, 1, 1)
    return _split_by_mapping(index, loops, loop_sizes(entry, loops, where),
                             n_conditions(entry, loops, where), source)[:, :, 0, 0]


def convert_acquisition(entry: dict, source_dir: Path, mapping: dict, mapping_path: Path,
                        where: str) -> Acquisition:
    """Read one mapping entry (NIfTI-MRS directly, else through spec2nii) and return the
    reshaped, labelled Acquisition."""
    files = [source_dir / f for f in entry["files"]]
    fmt_for_check = "dicom" if entry["format"] == NIFTI_FORMAT else entry["format"]
    problems = [(f, input_problem(fmt_for_check, f)) for f in files]
    problems = [(f, p) for f, p in problems if p]
    if problems:
        path, problem = problems[0]
        raise ConversionError(f"{where}: {problem}: {path} (names are relative to "
                              f"--source-dir, here {source_dir})")
    pairing = file_pair_problem(entry["format"], files)
    if pairing:
        raise ConversionError(f"{where}: {pairing}")
    extras = {**mapping.get("sidecar", {}), **entry.get("sidecar", {})}
    anonymise = bool(mapping.get("dataset", {}).get("anonymise", True))
    acq = _read_input(entry, files, extras, anonymise)
    arrayed = acq.metadata.pop(VARIAN_ARRAY_KEY, None)
    fids, b_s_mm2, directions, units_source, notes, facts = _mapping_conditions(
        entry, acq, files, where, mapping_path)
    split = arrayed and arrayed_split_problem(  # the blocks of an arrayed Varian fid
        arrayed, _stored_dynamics_of_conditions(entry, acq.fids.shape[1], where, files[0]),
        files[0])
    if split:
        raise ConversionError(f"{where}: {split}")
    if entry.get("conjugate", False):
        fids = fids.conj()
    nucleus = nucleus_problem(acq.nucleus, files[0])
    if nucleus:  # converted faithfully, but the app would refuse it: say so now
        notes.append(f"{nucleus}; the file is written, but dmrs-bids will refuse it")
    metadata = dict(acq.metadata)
    facts[:0] = metadata.pop(READER_NOTES_KEY, [])
    removed = metadata.pop("anonymised_keys", [])
    if removed:
        facts.append(f"{files[0]}: anonymised ([dataset] anonymise = true): header keys "
                     f"{', '.join(removed)} not copied")
    n_stored = fids.shape[0] * fids.shape[1]
    acquired = vendor_transient_count(entry["format"], files, n_stored)
    if acquired is not None:
        metadata["NumberOfTransients"] = acquired
        stored = ("the 1 stored spectrum averages" if n_stored == 1
                  else f"the {n_stored} stored spectra average")
        facts.append(f"{files[0]}: {stored} {acquired} transients (vendor header): "
                     f"NumberOfTransients = {acquired}")
    if not metadata.get("PulseSequenceType"):
        pulse_type, note = identified_sequence(metadata)
        if pulse_type is not None:
            metadata["PulseSequenceType"] = pulse_type
            facts.append(f"{files[0]}: PulseSequenceType {pulse_type} ({note})")
        else:
            notes.append(f"{files[0]}: no PulseSequenceType written ({note}); "
                         f"{pulse_sequence_hint(metadata)}")
    if means_no_mixing_time(metadata.get("MixingTime"), stated_sequence(metadata)):
        del metadata["MixingTime"]  # vendor 0 for "none"; the checks would refuse TM = 0
        facts.append(f"{files[0]}: MixingTime 0 in the vendor header left out (a "
                     f"{metadata.get('PulseSequenceType', 'non-STEAM')} sequence has none)")
    metadata["ConversionNotes"] = facts
    metadata["warnings"] = list(metadata.get("warnings", [])) + notes
    metadata["b_value_units_source"] = units_source
    metadata["OriginalFile"] = [f.name for f in files]
    return Acquisition(fids=fids, dwell_s=acq.dwell_s, cf_mhz=acq.cf_mhz,
                       b_values_s_mm2=b_s_mm2, directions=directions, nucleus=acq.nucleus,
                       ref_ppm=acq.ref_ppm, metadata=metadata, source=str(files[0]))


def _reader_text(entry: dict) -> str:
    if entry["format"] == NIFTI_FORMAT:
        return "NIfTI-MRS read by dmrs-bids"
    return OWN_READERS.get(entry["format"], f"spec2nii {entry['format']}")


def acquisition_where(mapping_path: Path, index: int, entry: dict, target: Path) -> str:
    """How messages name mapping entry ``index`` (0-based): the mapping, number and id."""
    return f"{mapping_path}: acquisition {index + 1} ({entry.get('id', target.name)})"


def read_acquisitions(entries: list, wheres: list[str], source_dir: Path, mapping: dict,
                      mapping_path: Path) -> tuple[list, dict[int, str]]:
    """Every entry converted in memory, before anything is written: (acquisitions, None where
    one failed; entry index -> why it failed). Every unreadable entry is found, not only the
    first, so a dataset with several bad files needs one round of fixes."""
    acquisitions, failures = [], {}
    for i, (entry, where) in enumerate(zip(entries, wheres)):
        try:
            acquisitions.append(convert_acquisition(entry, source_dir, mapping, mapping_path,
                                                    where))
        except ConversionError as err:  # a reader's message names the file; add the entry
            acquisitions.append(None)
            failures[i] = str(err) if str(err).startswith(where) else f"{where}: {err}"
    return acquisitions, failures


def _chosen_entries(mapping: dict, mapping_path: Path, out_dir: Path, labels,
                    session_labels=None):
    """(entries, output paths, message names, notes) of the acquisitions to convert: all, or
    those of the participants ``labels`` (``--participant-label``) and sessions
    ``session_labels`` (``--session-label``); notes name selected participants with none of
    the sessions. Refused: two entries with one output, a label the mapping lacks, a link to a
    scan left out and not in the dataset."""
    every = mapping["acquisition"]
    targets = [out_dir / bids_relative_path(e) for e in every]
    if len(set(targets)) != len(targets):
        raise ConversionError(f"{mapping_path}: two acquisitions map to the same BIDS name")
    wheres = [acquisition_where(mapping_path, i, e, t)
              for i, (e, t) in enumerate(zip(every, targets))]
    chosen, notes = selected_entries(every, labels, mapping_path, session_labels)
    problem = unselected_link_problem(every, chosen, targets, wheres, labels)
    if problem:
        raise ConversionError(problem)
    return (*([items[i] for i in chosen] for items in (every, targets, wheres)), notes)


def convert_dataset(mapping_path, output_dir, source_dir=None, overwrite: bool = False,
                    log=print, warn=None, all_or_nothing: bool = False,
                    participant_labels=None, session_labels=None) -> list[Path]:
    """Convert every acquisition of the mapping into the BIDS dataset ``output_dir``.

    ``source_dir``: where the mapping's input file names are resolved (default: the mapping
    file's folder). Refuses (before writing anything) to replace existing outputs unless
    ``overwrite``. ``log`` takes progress and notes, ``warn`` the warnings (default: ``log``
    with a "warning: " prefix; the command line sends them to stderr, which -q leaves alone).
    ``participant_labels``, ``session_labels``: convert only the acquisitions of these
    participants and sessions (None: all); earlier outputs of the others are not touched.
    Returns the written NIfTI-MRS paths. A participant/session with an acquisition that cannot
    be converted (or linking to a scan of one) is skipped whole, its files from an earlier
    conversion set aside (:mod:`bids_app.convert_set_aside`), and the others are written,
    then :class:`PartialConversion` names the problems; when nothing can be written, or with
    ``all_or_nothing`` when anything fails, a ConversionError and nothing written.
    """
    warn = warn if warn is not None else (lambda text: log(f"warning: {text}"))
    mapping_path = Path(mapping_path)
    mapping = load_mapping(mapping_path)
    source_dir = Path(source_dir) if source_dir else mapping_path.parent
    out_dir = Path(output_dir)
    entries, targets, wheres, notes = _chosen_entries(mapping, mapping_path, out_dir,
                                                      participant_labels, session_labels)
    for note in notes:
        warn(note)
    if not overwrite:
        existing = [str(t) for t in targets if t.exists() or sidecar_of(t).exists()]
        if existing:
            raise ConversionError(f"{existing[0]}: exists; use --overwrite to replace "
                                  f"({len(existing)} existing output(s))")
    read_participants(out_dir / "participants.tsv")  # a bad table stops us before writing
    acquisitions, failures = read_acquisitions(entries, wheres, source_dir, mapping,
                                               mapping_path)
    skipped, problems = skipped_units(entries, failures, wheres)
    units = [unit_label(e) for e in entries]
    if problems and (all_or_nothing or skipped >= set(units)):
        raise ConversionError(nothing_written_message(failures, problems, len(entries)))
    kept = [i for i, unit in enumerate(units) if unit not in skipped]
    participants = sorted({participant_of(entries[i]) for i in kept})
    by_unit = {u: [t for t, v in zip(targets, units) if v == u] for u in skipped}
    notes, moved = set_aside_skipped(out_dir, by_unit, run_id(time.time()), set(participants))
    for note in notes:
        warn(note)  # before writing: a move that fails leaves the new files unwritten
    every = mapping["acquisition"]  # a link may name a participant --participant-label leaves out
    by_id = {e["id"]: out_dir / bids_relative_path(e) for e in every if e.get("id")}
    entry_by_id = {e["id"]: e for e in every if e.get("id")}
    for entry, target, acq in ((entries[i], targets[i], acquisitions[i]) for i in kept):
        extras = {**mapping.get("sidecar", {}), **entry.get("sidecar", {})}
        for link, key in LINK_KEYS.items():
            if link in entry:
                extras[key] = f"bids::{by_id[entry[link]].relative_to(out_dir).as_posix()}"
                note = foreign_link_note(entry, link, entry_by_id[entry[link]])
                if note:
                    warn(f"{mapping_path}: {note}")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_nifti_mrs(acq, target, processing_step={
            "Method": "Conversion to NIfTI-MRS with diffusion conditions",
            "Details": f"{_reader_text(entry)} {' '.join(entry['files'])}; "
                       f"{acq.n_conditions} conditions x {acq.n_transients} transients "
                       f"(dynamics.order {entry.get('dynamics', {}).get('order', 'condition_fastest')})"
                       + ("; complex conjugated (mapping: conjugate = true)"
                          if entry.get("conjugate") else "")})
        write_json(sidecar_of(target), bids_sidecar(acq, extras))
        for note in acq.metadata["warnings"]:
            warn(note)
        for note in acq.metadata.get("ConversionNotes", []):
            log(f"note: {note}")
        log(f"wrote {target} ({acq.n_conditions} conditions x {acq.n_transients} transients "
            f"x {acq.n_coils} coils x {acq.n_points} points)")
    _write_dataset_files(out_dir, mapping, participants, overwrite)
    sessions = sorted({session_of(e) for e in entries}) if session_labels else None
    for path in inputs_not_written(out_dir, sorted({participant_of(e) for e in entries}),
                                   targets, sessions):
        warn(f"{path} was not written by this conversion (left from an earlier one?): "
            "dmrs-bids will process it as an input; remove it if it is stale")
    for link in links_into(out_dir, moved):
        warn(dangling_link_note(*link))
    written = [targets[i] for i in kept]
    if problems:
        raise PartialConversion(partial_message(problems, len(failures), len(entries), units,
                                                skipped), written)
    return written


def inputs_not_written(out_dir: Path, participants: list[str], targets: list[Path],
                       sessions=None) -> list[Path]:
    """NIfTI files in the ``mrs`` folders of ``participants`` (``sub-<label>``) that are not
    among ``targets``: after a re-conversion with ``--overwrite`` under renamed labels the old
    files stay, and the app would process them beside the new ones. ``sessions``
    (``ses-<label>``, ``--session-label``): only those sessions' folders are looked in (the
    others are not this conversion's); None: all of the participants'."""
    written = {Path(t).resolve() for t in targets}
    found = []
    for participant in participants:
        folder = Path(out_dir) / participant
        folders = [folder / "mrs"] + sorted(folder.glob("ses-*/mrs")) if sessions is None \
            else [folder / s / "mrs" for s in sessions]
        for mrs in folders:
            found += [p for p in sorted(mrs.glob("*.nii*")) if p.resolve() not in written]
    return found


# --------------------------------------------------------------------------- validation, CLI

def bids_validator_command(dataset) -> list[str]:
    """Command line of the offline BIDS validator (PyPI ``bids-validator-deno``), JSON report."""
    exe = shutil.which("bids-validator-deno") or str(
        Path(sys.executable).with_name("bids-validator-deno"))
    if not Path(exe).exists():
        raise ConversionError("bids-validator-deno is not installed (pip install bids-validator-deno)")
    return [exe, "--format", "json", "--no-color", str(dataset)]


def bids_validator_issues(dataset, timeout_s: float = 600) -> list[dict]:
    """Every issue (dicts with severity, code, subCode, location) the validator reports."""
    run = subprocess.run(bids_validator_command(dataset), capture_output=True, text=True,
                         timeout=timeout_s)
    try:
        return json.loads(run.stdout)["issues"]["issues"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ConversionError(f"{dataset}: bids-validator gave no report "
                              f"(exit {run.returncode}): {run.stderr[-500:]}") from err


def bids_validator_errors(dataset) -> list[str]:
    """The validator's errors as "CODE location subCode" strings (empty: the dataset is valid)."""
    return [f"{i.get('code')} {i.get('location', '')} {i.get('subCode') or ''}".strip()
            for i in bids_validator_issues(dataset) if i.get("severity") == "error"]


def example_mappings() -> dict[str, str]:
    """Example mappings installed with the package: name -> first comment line."""
    from importlib.resources import files

    folder = files("bids_app.conversion_examples")
    examples = {}
    for item in sorted(folder.iterdir(), key=lambda x: x.name):
        if item.name.endswith(".toml"):
            first = item.read_text().splitlines()[0] if item.read_text() else ""
            examples[item.name.removesuffix(".toml")] = first.lstrip("# ").strip()
    return examples


def example_text(name: str) -> str:
    """The text of the example mapping ``name`` (ConversionError listing the names if unknown)."""
    from importlib.resources import files

    known = example_mappings()
    if name.removesuffix(".toml") not in known:
        raise ConversionError(f"--example {name!r}: no such example; choose one of "
                              f"{', '.join(known)}")
    return files("bids_app.conversion_examples").joinpath(
        f"{name.removesuffix('.toml')}.toml").read_text()


class _ExampleAction(argparse.Action):
    """Print an example mapping and exit (positional arguments are then not needed)."""

    def __call__(self, parser, namespace, value, option_string=None):
        try:
            sys.stdout.write(example_text(value))
        except ConversionError as err:
            parser.exit(2, f"dmrs-bids-convert: error: {err}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:26s} {text[:90]}" for name, text in example_mappings().items())
    parser = argparse.ArgumentParser(
        prog="dmrs-bids-convert",
        description="Build an MRS-BIDS dataset from vendor MRS files (Philips SDAT/SPAR and "
                    "DICOM, Siemens twix/DICOM/RDA, GE, Bruker, Varian, LCModel RAW, jMRUI, "
                    "text ... whatever spec2nii reads) or from NIfTI-MRS files (format = "
                    "\"nifti\", any version), following a TOML mapping that also says how the "
                    "dynamics split into diffusion conditions. b-values in the mapping are in "
                    "s/mm2 or ms/um2 as its b_value_units says; the dataset states them in "
                    "s/mm^2. Mapping keys: README section 'Bringing your data'.",
        epilog="example mappings (print one with --example NAME):\n" + listing +
               "\n\nexit status: 0 converted (and valid with --validate); 2 bad arguments, "
               "mapping or input files (a one-line message), or participants/sessions skipped "
               "for unreadable inputs (each named, then a summary line); 1 the BIDS validator "
               "found errors.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mapping", type=Path, help="TOML mapping file (see --example)")
    parser.add_argument("output_dir", type=Path, help="BIDS dataset folder to create or add to")
    parser.add_argument("--source-dir", type=Path, default=argparse.SUPPRESS,
                        help="folder the mapping's file names are relative to "
                             "(default: the mapping file's folder)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (otherwise refuse before writing "
                             "anything); those of a participant/session skipped now are moved "
                             "to OUTPUT_DIR/set_aside/")
    parser.add_argument("--participant-label", nargs="+", metavar="LABEL",
                        help="convert only these participants' acquisitions (with or without "
                             "'sub-'); the others are neither read nor touched, e.g. to add "
                             "participants skipped earlier once their inputs are fixed")
    parser.add_argument("--session-label", nargs="+", metavar="LABEL",
                        help="convert only these sessions' acquisitions (with or without "
                             "'ses-'; with --participant-label, of those participants); other "
                             "sessions are neither read nor touched. A participant with none "
                             "of them is left out with a warning")
    parser.add_argument("--all-or-nothing", action="store_true",
                        help="write nothing when any acquisition cannot be converted "
                             "(default: skip only its participant/session, write the others, "
                             "exit 2)")
    parser.add_argument("--validate", action="store_true",
                        help="run the BIDS validator (bids-validator-deno, offline) afterwards; "
                             "exit 1 on errors")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print no progress or notes; warnings and errors still go to "
                             "stderr")
    parser.add_argument("--example", action=_ExampleAction, metavar="NAME",
                        help="print the example mapping NAME (listed below) and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def warn_on_stderr(text: str) -> None:
    """Print one warning on stderr, prefixed like the errors: a warning needs the user's
    attention, so neither -q nor a redirected stdout may hide it."""
    print(f"dmrs-bids-convert: warning: {text}", file=sys.stderr)


def _convert(args, log) -> PartialConversion | None:
    """Run the conversion the arguments ask for; a partial one is returned (to be reported
    last, after validating what was written), any other error raised."""
    try:
        convert_dataset(args.mapping, args.output_dir, getattr(args, "source_dir", None),
                        args.overwrite, log, warn_on_stderr, args.all_or_nothing,
                        args.participant_label, args.session_label)
    except PartialConversion as partial:
        return partial
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    log = (lambda *_: None) if args.quiet else print
    try:
        partial = _convert(args, log)
        errors = bids_validator_errors(args.output_dir) if args.validate else []
    except (ValueError, OSError) as err:
        print(f"dmrs-bids-convert: error: {err}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"dmrs-bids-convert: BIDS validator error: {e}", file=sys.stderr)
    if args.validate and not errors:
        log(f"BIDS validator: {args.output_dir} is valid")
    if partial is not None:  # last, so the summary closes the output
        print(f"dmrs-bids-convert: error: {partial}", file=sys.stderr)
        return 2
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
