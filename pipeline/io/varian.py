"""Varian/Agilent (VnmrJ) single-voxel MRS: a ``.fid`` folder holding the binary ``fid`` and
the text ``procpar``.

spec2nii 0.8.15's Varian reader fails on every STEAM ``.fid`` folder at hand (``KeyError:
'vpsi'`` where procpar states no voxel angles, ``'rcvrs'`` where it names no receivers, a
TypeError where it states the angles) and, for other sequences, overwrites the echo time with
a pulse width plus ``alfa`` (microseconds read as seconds). So the project reads these folders
itself.

``fid`` (VnmrJ User Programming, "Parameters and Data"): a 32-byte file header (blocks,
traces per block, values per trace, bytes per value, per trace, per block, version, status,
block headers per block), then per block its 28-byte header(s) and ``traces x values`` big-
endian numbers (int16, int32 or float32 by the status bits), real and imaginary interleaved.
A block is one element of an arrayed acquisition; each stores the *sum* of the ``ctcount``
transients its header names (the receiver accumulates), so :func:`block_averages` divides
by it. A block header's ``scale`` s > 0 says the stored numbers are the sum divided by 2^s
(VnmrJ shifts integer data to fit; its own reader multiplies them back), so :func:`read_fid`
multiplies each block by its 2^s.

``procpar``: per parameter a line of 11 fields (name, subtype, basic type 1 real / 2 string,
limits, groups, ...), a line ``count values...`` (strings quoted, one per line after the
first) and an enumeration line. VnmrJ states times in seconds (``te``, ``tr``, ``tm``),
frequencies in MHz (``sfrq``) and Hz (``sw``), voxel sizes ``vox1..3`` in mm and positions
``pos1..3`` in cm.

Conjugation: the stored FIDs have the app's convention (NAA at 2.0 ppm with the receiver on
water: measured on the CMRR 4 T and 7 T human STEAM spectra and the MM spectra, MM09 at 0.9
ppm), so no conjugation is applied.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..acquisition import Acquisition
from ..sequences import sequence_in_text
from .input_checks import TIMING_LIMITS_S

FILE_HEADER = struct.Struct(">6i2hi")
BLOCK_HEADER = struct.Struct(">4hi4f")
STATUS_SPECTRUM, STATUS_INT32, STATUS_FLOAT, STATUS_HYPERCOMPLEX = 0x2, 0x4, 0x8, 0x20
ORIENTATION_KEYS = ("vpsi", "vphi", "vtheta")
SIZE_KEYS = ("vox1", "vox2", "vox3")
POSITION_KEYS = ("pos1", "pos2", "pos3")
CM_TO_MM = 10.0
TIME_LIMITS_S = {key: TIMING_LIMITS_S[key] for key in ("EchoTime", "RepetitionTime", "MixingTime")}
"""Largest plausible value (s) of each procpar time: a larger one is a value in ms. The limits
discovery applies to the converted file (before 2026-12-07 TR 60-100 s and TM 3-5 s were
written here and then refused by discovery)."""
_NAME = re.compile(r"[A-Za-z_]\w*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


class VarianError(ValueError):
    """A Varian ``.fid`` folder that cannot be read; the message names the file."""


@dataclass(frozen=True)
class VarianFid:
    """The FIDs of a ``fid`` file: ``traces`` (blocks, traces, points) complex sums (the stored
    numbers times their block's :func:`block_scale`), ``transients`` (blocks,) the
    ``ctcount`` each block header states (0: not stated)."""

    traces: np.ndarray
    transients: np.ndarray


# --- procpar -----------------------------------------------------------------------------

def read_procpar(path) -> dict[str, list]:
    """Parameter name -> list of values (floats for real parameters, str for strings) of a
    VnmrJ ``procpar``. Lines that do not parse are passed over (a parameter is then absent)."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as err:
        raise VarianError(f"{path}: cannot be read ({err.strerror})") from None
    params, i = {}, 0
    while i < len(lines) - 1:
        head = lines[i].split()
        i += 1
        if len(head) != 11 or not _NAME.fullmatch(head[0]) or head[2] not in ("1", "2"):
            continue
        count, _, rest = lines[i].strip().partition(" ")
        if not count.isdigit():
            continue
        if head[2] == "1":
            try:
                params[head[0]] = [float(v) for v in rest.split()[:int(count)]]
            except ValueError:
                continue
            i += 1
        else:
            values = _QUOTED.findall(rest)
            while len(values) < int(count) and i + 1 < len(lines):
                i += 1
                values += _QUOTED.findall(lines[i])
            params[head[0]] = values[:int(count)]
            i += 1
    return params


def first_values(params: dict[str, list]) -> dict:
    """Name -> first value of :func:`read_procpar` (parameters with no value left out)."""
    return {name: values[0] for name, values in params.items() if values}


def _number(params: dict, name: str) -> float | None:
    values = params.get(name) or []
    return float(values[0]) if values and isinstance(values[0], float) else None


# --- fid ---------------------------------------------------------------------------------

def block_scale(scale: int) -> float:
    """The factor 2^scale a block's stored numbers are multiplied by to give its sum: VnmrJ
    right-shifts integer data that would overflow and records the shift in the block header's
    ``scale`` (its reader multiplies by 2 once per unit of a positive scale; 0 or less: 1)."""
    return 2.0 ** max(int(scale), 0)


def read_fid(path) -> VarianFid:
    """All FIDs of a VnmrJ ``fid`` file (see the module notes); VarianError naming the file
    when it is short, holds spectra or hypercomplex data, or its header disagrees with its
    size."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise VarianError(f"{path}: cannot be read ({err.strerror})") from None
    if len(raw) < FILE_HEADER.size:
        raise VarianError(f"{path}: {len(raw)} bytes, too short for a Varian fid file header "
                          f"({FILE_HEADER.size} bytes)")
    n_blocks, n_traces, n_values, n_bytes, _, _, _, status, n_headers = \
        FILE_HEADER.unpack_from(raw)
    if status & (STATUS_SPECTRUM | STATUS_HYPERCOMPLEX):
        raise VarianError(f"{path}: holds processed spectra or hypercomplex data (status "
                          f"{status:#x}), not FIDs; convert the raw fid")
    dtype = ">f4" if status & STATUS_FLOAT else (">i4" if status & STATUS_INT32 else ">i2")
    if np.dtype(dtype).itemsize != n_bytes:
        raise VarianError(f"{path}: its header's status {status:#x} states "
                          f"{np.dtype(dtype).itemsize}-byte {np.dtype(dtype).name} values but "
                          f"its bytes per value {n_bytes}: a corrupt or not a Varian fid")
    expected = FILE_HEADER.size + n_blocks * (BLOCK_HEADER.size * n_headers
                                              + n_traces * n_values * n_bytes)
    if min(n_blocks, n_traces, n_values, n_headers) < 1 or n_values % 2 or len(raw) != expected:
        raise VarianError(f"{path}: its header states {n_blocks} block(s) x {n_traces} "
                          f"trace(s) x {n_values // 2} complex points of {n_bytes}-byte "
                          f"{np.dtype(dtype).name} ({expected} bytes) but the file holds "
                          f"{len(raw)} bytes (truncated or not a Varian fid)")
    traces = np.empty((n_blocks, n_traces, n_values // 2), complex)
    counts = np.zeros(n_blocks, int)
    offset = FILE_HEADER.size
    for block in range(n_blocks):
        scale, *_, counts[block] = BLOCK_HEADER.unpack_from(raw, offset)[:5]
        offset += BLOCK_HEADER.size * n_headers
        values = np.frombuffer(raw, dtype, n_traces * n_values, offset) * block_scale(scale)
        offset += n_traces * n_values * n_bytes
        traces[block] = (values[0::2] + 1j * values[1::2]).reshape(n_traces, -1)
    return VarianFid(traces, counts)


def read_fid_folder(folder) -> tuple[VarianFid, dict[str, list]]:
    """(:func:`read_fid`, :func:`read_procpar`) of a ``.fid`` folder; VarianError naming the
    folder and the missing file when ``fid`` or ``procpar`` is absent."""
    folder = Path(folder)
    missing = [name for name in ("fid", "procpar") if not (folder / name).is_file()]
    if missing:
        raise VarianError(f"{folder}: a Varian .fid folder holds 'fid' and 'procpar'; "
                          f"{' and '.join(repr(m) for m in missing)} missing")
    return read_fid(folder / "fid"), read_procpar(folder / "procpar")


def block_averages(fid: VarianFid) -> tuple[np.ndarray, bool]:
    """(traces divided by their block's transient count, True) — the stored sums as
    averages; (traces as stored, False) when a block header states no count (``ctcount`` 0)."""
    if np.any(fid.transients < 1):
        return fid.traces, False
    return fid.traces / fid.transients[:, None, None], True


def count_disagreement(counts: np.ndarray, params: dict, folder: Path) -> list[str]:
    """A warning (list of one, else empty) when the blocks' ``ctcount`` is not procpar's
    ``nt`` (one value, or one per block): the fid was then processed after the acquisition
    (summed, cut or saved by another program; 4 T human STEAM: ctcount 20, nt 160), so the
    count the stored sums are divided by, and NumberOfTransients, may not be what they hold.
    Ratios to tCr do not depend on it; water scaling does unless the water reference was
    stored the same way."""
    nt = [int(v) for v in params.get("nt") or [] if isinstance(v, float)]
    if not nt or np.any(counts < 1):
        return []
    expected = nt * len(counts) if len(nt) == 1 else nt
    if list(counts) == expected:
        return []
    return [f"{folder}: the fid's block header(s) state ctcount {', '.join(map(str, counts))} "
            f"transient(s), procpar nt {', '.join(map(str, nt))}: the fid was likely processed "
            "after the acquisition (summed, cut or saved by another program); its sums are divided "
            "by ctcount and NumberOfTransients is their sum. Ratios to tCr do not depend on "
            "it; check the scale before water scaling with a reference stored otherwise"]


# --- arrayed acquisitions ------------------------------------------------------------------

POOLABLE_ARRAYS = frozenset({"nt"})
"""Arrayed procpar parameters whose elements are the same acquisition repeated (``nt``: the
transients per element), so their blocks may be pooled as transients."""
ARRAY_KEY = "varian_array"
"""Metadata key of :func:`read_varian_svs`: ``{"blocks": n, "parameters":`` the arrayed
parameters that make the blocks different acquisitions (:func:`differing_array_parameters`)
``, "elements":`` each block's element (:func:`block_elements`) ``}``; the converter pops it."""


def array_names(params: dict) -> list[str]:
    """Parameter names in procpar ``array`` (``"gdiff"``, ``"te,tm"``, jointly arrayed
    ``"(gdiff,dro)"``), in order."""
    return _NAME.findall(str((params.get("array") or [""])[0]))


def differing_array_parameters(params: dict, n_blocks: int) -> dict[str, list]:
    """Name -> procpar values of each arrayed parameter (but :data:`POOLABLE_ARRAYS`) whose
    values differ between the elements, or that procpar does not state (then an empty list),
    when the fid holds more than one block: its blocks are then different acquisitions
    (b-values, echo times, ...), not repetitions. Empty otherwise."""
    if n_blocks < 2:
        return {}
    found = {}
    for name in array_names(params):
        values = params.get(name) or []
        if name not in POOLABLE_ARRAYS and (not values or len(set(values)) > 1):
            found[name] = list(values)
    return found


def block_elements(arrayed: dict[str, list], n_blocks: int) -> list[str]:
    """Each block's array element: its values (``"gdiff = 30"``) when every differing arrayed
    parameter states one value per block (one parameter, or jointly arrayed ones), else its
    number (``"block 3"``: nested arrays, whose element order this reader does not derive)."""
    if arrayed and all(len(values) == n_blocks for values in arrayed.values()):
        return ["; ".join(_stated_values(name, values[b:b + 1]) for name, values in
                          arrayed.items()) for b in range(n_blocks)]
    return [f"block {b + 1}" for b in range(n_blocks)]


def arrayed_split_problem(record: dict, dynamics: np.ndarray, folder) -> str | None:
    """Why the conditions a mapping made of an arrayed fid's blocks (the :data:`ARRAY_KEY`
    record) mix its elements, or None. ``dynamics`` (conditions, transients): the stored
    dynamic of each condition's transients, stored block by block (block b holds dynamics
    b t .. b t + t - 1 of its t traces). A condition may pool blocks of one element only
    (repeats); one condition holding every block is :func:`pooled_array_problem`."""
    dynamics = np.asarray(dynamics)
    if dynamics.shape[0] == 1:
        return pooled_array_problem(record, folder)
    per_block = dynamics.size // record["blocks"]
    for c, row in enumerate(dynamics):
        found = list(dict.fromkeys(record["elements"][d // per_block] for d in row.ravel()))
        if len(found) > 1:
            return (f"{folder}: the mapping's condition {c + 1} of {dynamics.shape[0]} pools "
                    f"blocks of different elements of its arrayed acquisition ("
                    f"{'; '.join(found[:4])}{' ...' if len(found) > 4 else ''}): the dynamics "
                    "split does not follow the blocks. One condition per block: "
                    f"{_one_condition_per_block(record['blocks'])} (each block's {per_block} "
                    "trace(s) its transients)")
    return None


TIMING_ARRAYS = frozenset({"te", "tm", "tr", "ti"})
"""procpar timings: one value per acquisition in dmrs-bids (basis, relaxation, the inversion
of a metabolite-nulled MM), so blocks arrayed over one of them cannot be conditions of one
series (the b-values a split asks for would label different timings)."""


def arrayed_blocks_text(record: dict, folder) -> str:
    """That the blocks of an arrayed fid (the :data:`ARRAY_KEY` record) are different
    acquisitions, naming the folder and the arrayed parameters with their values."""
    stated = "; ".join(_stated_values(name, values) for name, values in
                       record["parameters"].items())
    return (f"{folder}: its {record['blocks']} blocks are the elements of an arrayed "
            f"acquisition (procpar array over {stated}): pooled as the transients of one "
            "spectrum they would average different acquisitions")


def pooled_array_problem(record: dict, folder) -> str:
    """Why the blocks of an arrayed fid (the :data:`ARRAY_KEY` record) cannot be pooled as the
    transients of one spectrum, and what to give instead: one condition per block, unless a
    timing is arrayed (:data:`TIMING_ARRAYS`), which no series can hold."""
    timings = sorted(TIMING_ARRAYS & set(record["parameters"]))
    if timings:
        return (f"{arrayed_blocks_text(record, folder)}, and dmrs-bids models one "
                f"{'/'.join(timings)} per acquisition, so they cannot be the conditions of one "
                "series either: save each element as its own .fid folder in VnmrJ and convert "
                "each")
    return (f"{arrayed_blocks_text(record, folder)}. Split them in the mapping, one condition "
            f"per block: {_one_condition_per_block(record['blocks'])}, and the b-values in "
            "[acquisition.diffusion]; or save each element as its own .fid folder in VnmrJ")


def _one_condition_per_block(n_blocks: int) -> str:
    """The mapping's dynamics that make each block of an arrayed fid one condition."""
    return f'[acquisition.dynamics] n_conditions = {n_blocks}, order = "transient_fastest"'


def _stated_values(name: str, values: list) -> str:
    """``name = v1, v2, ...`` (at most 8 values shown), or that procpar states none."""
    if not values:
        return f"{name} (no values in procpar)"
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:8])
    return f"{name} = {shown}{' ...' if len(values) > 8 else ''}"


# --- single-voxel acquisition ------------------------------------------------------------

def _grid(params: dict, folder: Path) -> tuple[float, float, str]:
    """(dwell s, MHz, nucleus) from procpar ``sw`` (Hz), ``sfrq`` (MHz), ``tn`` ("H1")."""
    sw_hz, sfrq_mhz = _number(params, "sw"), _number(params, "sfrq")
    if not sw_hz or not sfrq_mhz or sw_hz <= 0 or sfrq_mhz <= 0:
        raise VarianError(f"{folder / 'procpar'}: no positive sw (spectral width, Hz) and "
                          f"sfrq (spectrometer frequency, MHz): sw {params.get('sw')}, sfrq "
                          f"{params.get('sfrq')}")
    if not params.get("tn"):
        raise VarianError(f"{folder / 'procpar'}: no tn (the observed nucleus, e.g. \"H1\")")
    nucleus = str(params["tn"][0])
    match = re.fullmatch(r"([A-Za-z]{1,2})(\d{1,3})", nucleus)
    return 1.0 / sw_hz, sfrq_mhz, f"{match[2]}{match[1]}" if match else nucleus


def _check_one_receiver(params: dict, folder: Path) -> None:
    """VarianError when procpar ``rcvrs`` names several active receivers ("yy..."); none
    named (one 4 T MM file) means one."""
    active = str((params.get("rcvrs") or ["y"])[0]).lower().count("y")
    if active > 1:
        raise VarianError(f"{folder / 'procpar'}: rcvrs {params['rcvrs'][0]!r} states "
                          f"{active} receivers; this reader does not know how VnmrJ orders "
                          "their FIDs among the traces, so it reads single-receiver data "
                          "only (combine the receivers in VnmrJ first)")


def timing_metadata(params: dict) -> tuple[dict, list[str]]:
    """(EchoTime, RepetitionTime, MixingTime in s; notes). procpar states seconds; MixingTime
    only for a STEAM ``seqfil`` (other sequences carry a leftover ``tm``, which is neither
    written nor judged: a leftover value refused no sLASER or SPECIAL file)."""
    meta, notes = {}, []
    sequence = str((params.get("seqfil") or [""])[0])
    leftover_tm = _number(params, "tm") if sequence_in_text(sequence) != "steam" else None
    if leftover_tm is not None:
        notes.append(f"procpar tm = {leftover_tm:g} not written: seqfil {sequence!r} is not "
                     "STEAM")
    for key, name in (("EchoTime", "te"), ("RepetitionTime", "tr"), ("MixingTime", "tm")):
        value = _number(params, name)
        if value is None or (name == "tm" and leftover_tm is not None):
            continue
        if not 0 < value < TIME_LIMITS_S[key]:  # as discovery judges the converted file
            raise VarianError(f"procpar {name} = {value:g}: VnmrJ states seconds, and "
                              f"{value:g} s is not a plausible {key} (0-{TIME_LIMITS_S[key]:g} "
                              "s); a value in ms?")
        meta[key] = value
    return meta, notes


def geometry(params: dict, folder: Path) -> tuple[list, dict, list[str]]:
    """(NIfTI affine, sidecar facts, warnings): voxel size ``vox1..3`` (mm) on the diagonal
    and position ``pos1..3`` (cm -> mm) as the translation where procpar states them, with an
    identity rotation: VnmrJ's voxel angles (``vpsi``, ``vphi``, ``vtheta``) and patient
    position are not converted, so the affine places the voxel in the magnet frame at best."""
    sizes = [_number(params, k) for k in SIZE_KEYS]
    positions = [_number(params, k) for k in POSITION_KEYS]
    affine, facts = np.eye(4), {}
    if all(s is not None and s > 0 for s in sizes):
        affine[:3, :3] = np.diag(sizes)
        facts["AcquisitionVoxelSize"] = sizes
    if all(p is not None for p in positions):
        affine[:3, 3] = np.array(positions) * CM_TO_MM
    missing = [k for k in ORIENTATION_KEYS + SIZE_KEYS + POSITION_KEYS if k not in params]
    angles = [f"{k} {_number(params, k):g}" for k in ORIENTATION_KEYS if _number(params, k)
              is not None]
    reasons = ([f"procpar lacks {', '.join(missing)}"] if missing else []) + \
        ([f"procpar's {', '.join(angles)} (deg) are not converted"] if angles else [])
    warning = (f"{folder}: voxel orientation unknown ({'; '.join(reasons)}): the NIfTI affine "
               "has an identity rotation; the spectra do not depend on it, placing the voxel "
               "on an image does")
    return affine.tolist(), facts, [warning]


def read_varian_svs(folder) -> tuple[Acquisition, list[str]]:
    """A single-voxel Varian ``.fid`` folder as an Acquisition (every stored trace a
    transient, block averages, see :func:`block_averages`) with the procpar facts in its
    metadata and the geometry warning in ``metadata["warnings"]``, and the conversion notes
    (what was done to the data, what was left out). VarianError names the file and problem."""
    folder = Path(folder)
    fid, params = read_fid_folder(folder)
    dwell_s, cf_mhz, nucleus = _grid(params, folder)
    _check_one_receiver(params, folder)
    traces, averaged = block_averages(fid)
    n_points = traces.shape[-1]
    expected = _number(params, "np")
    if expected is not None and int(expected) != 2 * n_points:
        raise VarianError(f"{folder / 'fid'}: {n_points} complex points per trace, procpar np "
                          f"{expected:g} states {expected / 2:g}: fid and procpar of different "
                          "scans?")
    try:
        meta, notes = timing_metadata(params)
    except VarianError as err:
        raise VarianError(f"{folder / 'procpar'}: {err}") from None
    notes = [f"{folder}: {note}" for note in notes]
    affine, facts, warnings = geometry(params, folder)
    warnings += count_disagreement(fid.transients, params, folder)
    meta.update(facts)
    sequence = str((params.get("seqfil") or [""])[0])
    meta.update({"Manufacturer": "Varian", "SequenceName": sequence, "nifti_affine": affine,
                 "warnings": warnings, "ConversionMethod": "dmrs-bids Varian reader"})
    arrayed = differing_array_parameters(params, traces.shape[0])
    if arrayed:
        meta[ARRAY_KEY] = {"blocks": traces.shape[0], "parameters": arrayed,
                           "elements": block_elements(arrayed, traces.shape[0])}
    notes.append(f"{folder}: read by the project's Varian reader: {traces.shape[0]} block(s) x "
                 f"{traces.shape[1]} trace(s) of {n_points} points, " +
                 ("each block's stored sum divided by its transient count (ctcount "
                  f"{', '.join(str(c) for c in fid.transients)})" if averaged else
                  "stored sums kept (a block header states no transient count)"))
    shift = _number(params, "lsfid")
    if shift:
        notes.append(f"{folder}: procpar lsfid = {shift:g} (a VnmrJ processing left shift) "
                     "not applied: the FID is written as stored")
    if (params.get("array") or [""])[0] and not arrayed:
        notes.append(f"{folder}: procpar array = {params['array'][0]!r}: the blocks are its "
                     "elements (repetitions), stored in block order as transients")
    fids = traces.reshape(1, -1, 1, n_points)
    acq = Acquisition(fids=fids, dwell_s=dwell_s, cf_mhz=cf_mhz, b_values_s_mm2=np.zeros(1),
                      directions=np.full((1, 3), np.nan), nucleus=nucleus, metadata=meta,
                      source=str(folder))
    return acq, notes
