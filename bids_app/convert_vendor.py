"""Vendor routes of ``dmrs-bids-convert``: spec2nii run in-process (or a NIfTI-MRS input read
directly, or a Varian ``.fid`` folder read by :mod:`pipeline.io.varian`), and the facts
spec2nii leaves out that vendor headers state (transients averaged per stored spectrum,
sequence names -> BIDS PulseSequenceType; only names of the sequence or protocol, never
exam-card or study names such as a SPAR ``examination_name``).
"""

from __future__ import annotations

import io
import sys
import tempfile
import warnings as _warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from nifti_mrs.definitions import standard_defined

from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs, write_nifti_mrs
from pipeline.io.varian import ARRAY_KEY, VarianError, read_fid, read_varian_svs
from pipeline.sequences import identify_sequence

from .convert_mapping import NIFTI_FORMAT, ConversionError

SPEC2NII_DEFAULT_ARGS = {"twix": ["-e", "image"]}
SPEC2NII_FOLDER_INPUTS = {"varian": "folder", "bruker": "file or folder"}
"""spec2nii subcommands whose input is a folder (Varian ``.fid``: ``fid`` + ``procpar``) or
may be one (Bruker: a study/scan folder or a ``fid``/``2dseq`` file); all others take files."""

OWN_READERS = {"varian": "Varian .fid folder read by dmrs-bids (pipeline.io.varian)"}
"""Formats the project reads itself instead of spec2nii. Varian: spec2nii 0.8.15 fails on every
STEAM folder at hand (``KeyError: 'vpsi'`` or ``'rcvrs'``; with the angles, a TypeError) and
gives the others an EchoTime of ``p1 + alfa`` (microseconds read as s: 6.6 s for the 9.4 T
sLASER TE 24 ms, 506.6 s for the 14.1 T SPECIAL), a wrong answer."""

READER_NOTES_KEY = "reader_notes"
"""Metadata key of an own reader's conversion notes (moved into ConversionNotes)."""

PULSE_SEQUENCE_TYPES = {"steam": "STEAM", "press": "PRESS", "slaser": "sLASER",
                        "se": "spin echo", "fid": "FID"}
"""BIDS PulseSequenceType written for each sequence identified from the vendor header."""


# --------------------------------------------------------------------------- spec2nii

def run_spec2nii(fmt: str, files: list[Path], out_dir: Path, extra_args=(),
                 anonymise: bool = True) -> list[Path]:
    """Run spec2nii ``fmt`` in-process on ``files``; the NIfTI-MRS files it wrote.

    Any failure (spec2nii raises many exception types for unreadable files) becomes a
    ConversionError naming the first input file.
    """
    from spec2nii.spec2nii import spec2nii as Spec2nii

    for f in files:
        problem = input_problem(fmt, Path(f))
        if problem:
            raise ConversionError(f"{f}: {problem}")
    args = list(extra_args) or SPEC2NII_DEFAULT_ARGS.get(fmt, [])
    argv = ["spec2nii", fmt, *map(str, files), "-o", str(out_dir), "-f", "converted", *args]
    if anonymise:
        argv.append("--anon")
    saved_argv, log = sys.argv, io.StringIO()
    try:
        sys.argv = argv
        with redirect_stdout(log), redirect_stderr(log), _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            Spec2nii()
    except SystemExit as err:
        raise ConversionError(f"{files[0]}: spec2nii {fmt} rejected the arguments {args} "
                              f"(exit {err.code}): {log.getvalue().strip()[-500:]}") from None
    except Exception as err:  # noqa: BLE001 -- third-party readers raise anything
        what = "folder" if Path(files[0]).is_dir() else "file"
        raise ConversionError(f"{files[0]}: spec2nii {fmt} could not convert this {what} "
                              f"({_spec2nii_reason(err)})") from err
    finally:
        sys.argv = saved_argv
    outputs = sorted(Path(out_dir).glob("*.nii.gz"))
    if not outputs:
        raise ConversionError(f"{files[0]}: spec2nii {fmt} wrote no NIfTI-MRS file")
    return outputs


def input_problem(fmt: str, path: Path) -> str | None:
    """Why ``path`` cannot be an input of spec2nii ``fmt`` (None: it can)."""
    kind = SPEC2NII_FOLDER_INPUTS.get(fmt, "file")
    if not path.exists():
        return f"input {kind} does not exist"
    if kind == "folder" and not path.is_dir():
        return f"spec2nii {fmt} takes a folder (e.g. a Varian .fid folder holding fid and " \
               "procpar), not a file"
    if kind == "file" and not path.is_file():
        return f"spec2nii {fmt} takes a file, not a folder"
    return None


PAIRED_FILE_SUFFIXES = {"philips": (".sdat", ".spar")}
"""spec2nii subcommands that read a data file and its header file, in this order."""


def file_pair_problem(fmt: str, files: list[Path]) -> str | None:
    """Why ``files`` are not the data/header pair spec2nii ``fmt`` reads (None: they are, or
    ``fmt`` takes no pair). Given the other way round, spec2nii philips fails with a
    UnicodeDecodeError; a .SDAT with another scan's .SPAR would read that scan's parameters."""
    order = PAIRED_FILE_SUFFIXES.get(fmt)
    if order is None:
        return None
    suffixes = tuple(Path(f).suffix.lower() for f in files)
    names = ", ".join(Path(f).name for f in files)
    if sorted(suffixes) != sorted(order):
        return (f"spec2nii {fmt} needs a {order[0].upper()} file and its {order[1].upper()}; "
                f"the mapping lists {names}")
    if suffixes != order:
        return (f"list the {order[0].upper()} first, then its {order[1].upper()} "
                f"(spec2nii {fmt} reads them in that order); the mapping lists {names}")
    stems = {Path(f).with_suffix("").name.lower() for f in files}
    if len(stems) > 1:
        return (f"{names} are not one scan's pair (the names differ before the suffix): a "
                f"{order[0].upper()} read with another scan's {order[1].upper()} takes that "
                "scan's parameters; rename them to one name if they do belong together")
    return None


def _spec2nii_reason(err: Exception) -> str:
    """One line saying why spec2nii failed (a missing header field for a KeyError)."""
    text = " ".join(str(err).split()) or "no details"
    if isinstance(err, KeyError):
        return f"KeyError: header field {text} that spec2nii needs is missing"
    return f"{type(err).__name__}: {text}"[:500]


def _choose_output(outputs: list[Path], wanted: str | None, source: Path) -> Path:
    if wanted:
        hits = [p for p in outputs if p.name.startswith(f"converted_{wanted}") or
                p.name == f"{wanted}.nii.gz"]
        if len(hits) != 1:
            raise ConversionError(f"{source}: output {wanted!r} not among spec2nii outputs "
                                  f"{[p.name for p in outputs]}")
        return hits[0]
    if len(outputs) > 1:
        raise ConversionError(f"{source}: spec2nii wrote several files "
                              f"{[p.name for p in outputs]}; choose one with `output = ...`")
    return outputs[0]


def identifying_keys(metadata: dict) -> list[str]:
    """Header keys ``spec2nii --anon`` removes: those the NIfTI-MRS standard marks for
    anonymisation (PatientName, PatientID, PatientDoB, DeviceSerialNumber,
    ManufacturersModelName, OriginalFile) and user-defined ``private_*`` keys."""
    return [k for k in metadata if (k in standard_defined and standard_defined[k][3])
            or k.startswith("private_")]


def _read_input(entry: dict, files: list[Path], extras: dict, anonymise: bool) -> Acquisition:
    """The entry's input as an Acquisition: a NIfTI-MRS file read directly (format "nifti"),
    anything else through spec2nii. With ``anonymise`` a NIfTI-MRS input loses the keys
    spec2nii's ``--anon`` removes (:func:`identifying_keys`; mapping extras are kept), named
    in ``metadata["anonymised_keys"]``."""
    dim_roles = entry.get("dim_roles") or None
    if entry["format"] == NIFTI_FORMAT:
        try:
            acq = read_nifti_mrs(files[0], sidecar=extras, dim_roles=dim_roles)
        except NiftiMrsError as err:
            raise ConversionError(str(err)) from err
        removed = [k for k in identifying_keys(acq.metadata) if k not in extras] \
            if anonymise else []
        for key in removed:
            del acq.metadata[key]
        acq.metadata["anonymised_keys"] = removed
        return acq
    with tempfile.TemporaryDirectory(prefix="dmrs-bids-convert-") as tmp:
        if entry["format"] == "varian":
            return _read_varian(files[0], Path(tmp), extras, dim_roles)
        outputs = run_spec2nii(entry["format"], files, Path(tmp), entry.get("spec2nii_args", ()),
                               anonymise)
        converted = _choose_output(outputs, entry.get("output"), files[0])
        try:
            return read_nifti_mrs(converted, sidecar=extras, dim_roles=dim_roles)
        except NiftiMrsError as err:
            raise ConversionError(f"{files[0]}: spec2nii output unusable: "
                                  f"{str(err).split(': ', 1)[-1]}") from err


def _read_varian(folder: Path, tmp: Path, extras: dict, dim_roles) -> Acquisition:
    """A Varian ``.fid`` folder through the project's reader, written as NIfTI-MRS into
    ``tmp`` and read back with the mapping's sidecar like a spec2nii output (the same checks
    and merging); the reader's notes under :data:`READER_NOTES_KEY`, its arrayed parameters
    under ``ARRAY_KEY`` (not written into the file)."""
    try:
        acq, notes = read_varian_svs(folder)
    except VarianError as err:
        raise ConversionError(str(err)) from err
    arrayed = acq.metadata.pop(ARRAY_KEY, None)
    written = write_nifti_mrs(acq, tmp / "converted.nii.gz")
    try:
        converted = read_nifti_mrs(written, sidecar=extras, dim_roles=dim_roles)
    except NiftiMrsError as err:
        raise ConversionError(f"{folder}: {str(err).split(': ', 1)[-1]}") from err
    converted.metadata[READER_NOTES_KEY] = notes
    if arrayed:
        converted.metadata[ARRAY_KEY] = arrayed
    return converted


def _header_text_values(path: Path, separator: str, keys: tuple) -> dict:
    """``key <separator> value`` lines of a vendor text header (SPAR, RDA), for ``keys``."""
    found = {}
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError:
        return found
    for line in text.splitlines():
        if line.startswith(">>> End of header"):
            break
        key, sep, value = line.partition(separator)
        if sep and key.strip().lower() in keys:
            found[key.strip().lower()] = value.strip()
    return found


def vendor_transient_count(fmt: str, files: list[Path], n_stored: int) -> int | None:
    """Transients the scanner acquired, from the vendor header, when the stored data are
    averages of several (None: the stored count is the count, or the header does not say).

    Philips SPAR: ``averages`` per stored row x ``rows``; Siemens RDA and DICOM:
    ``NumberOfAverages``; Varian: the ``ctcount`` of the fid's block headers, summed.
    """
    try:
        if fmt == "philips":
            spar = next(f for f in files if f.suffix.lower() == ".spar")
            values = _header_text_values(spar, ":", ("averages", "rows"))
            count = int(float(values["averages"])) * int(float(values.get("rows", 1)))
        elif fmt == "rda":
            values = _header_text_values(files[0], ":", ("numberofaverages",))
            count = int(float(values["numberofaverages"]))
        elif fmt == "dicom":
            count = _siemens_dicom_averages(files[0])
        elif fmt == "varian":
            count = int(read_fid(Path(files[0]) / "fid").transients.sum())
        else:
            return None
    except (StopIteration, KeyError, ValueError, TypeError, IndexError):
        return None
    return count if count > n_stored and count % n_stored == 0 else None


def _siemens_dicom_averages(path: Path) -> int:
    """NumberOfAverages of a Siemens spectroscopy DICOM: the enhanced (XA) attribute, else the
    CSA image header (VB/VE). KeyError when neither states it."""
    import warnings

    import pydicom
    from nibabel.nicom import csareader

    dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
    for element in dataset.iterall():
        if element.keyword == "NumberOfAverages" and element.value not in (None, ""):
            return int(float(element.value))
    for tag in ((0x0029, 0x1110), (0x0029, 0x1010)):
        if tag in dataset:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                items = csareader.read(dataset[tag].value)["tags"]["NumberOfAverages"]["items"]
            return int(float(items[0]))
    raise KeyError("NumberOfAverages")


def identified_sequence(metadata: dict) -> tuple[str | None, str]:
    """(BIDS PulseSequenceType or None, note) from the header's sequence names."""
    try:
        sequence, where = identify_sequence(metadata)
    except ValueError as err:
        return None, str(err)
    return PULSE_SEQUENCE_TYPES[sequence], f"sequence {sequence} from {where}"


def pulse_sequence_hint(metadata: dict) -> str:
    """What to write when no PulseSequenceType could be identified: STEAM when a positive
    MixingTime is known (only STEAM has a mixing time, so suggesting PRESS would give a basis
    of the wrong sequence), otherwise the common choices, STEAM with its MixingTime."""
    mixing = metadata.get("MixingTime")
    if isinstance(mixing, (list, tuple)) and len(mixing) == 1:
        mixing = mixing[0]
    if isinstance(mixing, (int, float)) and not isinstance(mixing, bool) and mixing > 0:
        return (f"MixingTime {mixing:g} s is given, so the sequence is STEAM: add sidecar = "
                '{ PulseSequenceType = "STEAM" } to the mapping')
    return ('give it in the mapping\'s sidecar table, e.g. sidecar = { PulseSequenceType = '
            '"PRESS" } or, for STEAM, sidecar = { PulseSequenceType = "STEAM", MixingTime = '
            '<TM in s> } (also "sLASER", "spin echo")')
