"""Read any NIfTI-MRS file into an :class:`Acquisition`; write current-standard NIfTI-MRS.

Reading is tolerant of the header forms real users have: ``mrs_v0_2`` files, plain-list dim
headers (``{"Bval": [...]}``), b-value and direction packed into one dimension, and current
``{"Value": ..., "Description": ...}`` headers. Dimensions map to the canonical order
(conditions, transients, coils, points):

* ``DIM_COIL`` -> coils;
* a ``DIM_USER_*`` or ``DIM_DYN`` whose header carries b-values (keys ``b_value``, ``bval``,
  ``Bval``, ``bvalue``, ...) and maybe directions (``direction``, ``directions``, ``bvec``,
  ``orientation``, ...) -> conditions (on ``DIM_DYN``, i.e. one label per dynamic, repeated
  (b, direction) pairs are grouped into conditions x repeats, the repeats becoming transients);
* b-values in one such dimension and directions in another (any order) -> their product,
  shell by shell (b slowest, directions within);
* ``DIM_DYN``, ``DIM_MEAS`` and singleton dimensions -> transients;
* a non-singleton ``DIM_USER_*`` without b or direction header -> :class:`NiftiMrsError` naming
  it and the setting that states its role (``dim_roles``, e.g. ``{DIM_USER_1 = "transients"}``);
  never silently pooled;
* any other non-singleton dimension (editing, indirect, ISIS, ...) -> :class:`NiftiMrsError`.

Data are taken as stored (no conjugation): the project sign convention is that of NIfTI-MRS
files written by spec2nii (``pipeline/spectra.py``).

b-value units: ``b_value_units`` in {"auto", "s/mm2", "ms/um2"}. "auto" takes the most specific
statement: the b-value entry's ``Description``/``Units`` or the ``dim_N_info`` text, then a
header key ``DiffusionBValueUnits``, then the sidecar's ``DiffusionBValueUnits`` (conflicts give
a warning); with none, it guesses with :func:`pipeline.units.guess_b_value_units` and appends a
warning. An explicit unit overrides all (with a warning where it contradicts a statement). The
decision is recorded in ``metadata["b_value_units_source"]``; b-values are returned in s/mm^2.
A decided unit (stated, requested or guessed) that makes the largest b implausible (above
250 000 s/mm^2, or above 0 but below 10 s/mm^2) is refused naming the likely unit
(:func:`pipeline.io.nifti_mrs_header.b_value_unit_problem`).

Plausibility: a SpectrometerFrequency or spectral width off by a unit (Hz or kHz for MHz, a
dwell time in ms) is refused naming the likely slip (:func:`frequency_problem`,
:func:`spectral_width_problem`); so is a dim header giving its entries different timings
(``MixingTime``, ``EchoTime``, ...: :func:`pipeline.io.nifti_mrs_header.check_timing_series`),
except an ``EchoTime`` series in a water reference read for data of a known TE, which is
reduced to one TE (:mod:`pipeline.io.echo_series`);
b-values stated in s/mm^2 that look like ms/um^2 get a warning
(:func:`pipeline.io.nifti_mrs_header.small_b_series_note`).

Written files state ``DiffusionBValueUnits = "s/mm2"`` and keep the earlier decision and
warnings (``DiffusionBValueUnitsSource``, ``ConversionWarnings``), so a round trip keeps them.

Header keys, dimension tags and their interpretation live in :mod:`pipeline.io.nifti_mrs_header`,
the writer in :mod:`pipeline.io.nifti_mrs_write`; their public names are importable from here too.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nifti_mrs.definitions import standard_defined

from ..acquisition import Acquisition
from ..spectra import H1_REFERENCE_PPM
from ..units import to_s_mm2
from .echo_series import select_water_echo_time
from .nifti_mrs_header import (  # noqa: F401  (public names re-exported from this module)
    B_UNITS_KEY, B_UNITS_SOURCE_KEY, CONDITION_CAPABLE_TAGS, CONDITION_TAG, DEFAULT_DIM_TAGS,
    DIM_ROLES, DIM_ROLES_SETTING, RUNTIME_KEYS, SIDECAR_B_UNITS_KEYS, TRANSIENT_TAGS,
    WARNINGS_KEY, NiftiMrsError, _condition_axes, _condition_lists, _decide_units, _dim_layout,
    _fail, _group_repeats, _label_groups, _unwrap, b_value_unit_problem, normalise_b_value_unit,
    normalised_nucleus, small_b_series_note, unequal_repeats_note, unit_directions,
    unread_direction_keys_note)
from .nifti_mrs_write import write_nifti_mrs  # noqa: F401  (re-exported)


# --------------------------------------------------------------------------- file loading

_NIBABEL_ERRORS = (OSError, EOFError, zlib.error, ValueError, OverflowError,
                   nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError)
"""What nibabel raises for broken headers, truncated or corrupt (gzip) streams."""

DEFLATE_MAX_RATIO = 1032
"""Largest expansion factor of a deflate (gzip) stream: a bound on a .nii.gz file's content."""


def _announced_bytes(header) -> int:
    """Bytes the header says the file holds: data offset + voxels x bytes per voxel."""
    n_voxels = 1
    for n in header.get_data_shape():
        n_voxels *= int(n)
    return int(header.get_data_offset()) + n_voxels * header.get_data_dtype().itemsize


def _check_announced_size(header, path: Path) -> None:
    """Refuse a header announcing more data than the file can hold, before reading any.

    Plain files must hold the announced bytes; gzip files cannot expand by more than
    :data:`DEFLATE_MAX_RATIO`. This avoids a huge allocation for a corrupt header.
    """
    size = path.stat().st_size
    compressed = path.name.lower().endswith(".gz")
    capacity = size * DEFLATE_MAX_RATIO if compressed else size
    announced = _announced_bytes(header)
    if announced > capacity:
        raise _fail(path, f"the header announces {announced} bytes (shape "
                          f"{tuple(header.get_data_shape())}, {header.get_data_dtype()}) but the "
                          f"{'compressed ' if compressed else ''}file has {size} bytes; the "
                          "header is corrupt or the file truncated")


def _load_image(path: Path):
    """(image, data array) of the NIfTI file at ``path``; NiftiMrsError for any defect."""
    if not path.is_file():
        raise _fail(path, "file does not exist")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    try:
        img = nib.load(str(path))
        _check_announced_size(img.header, path)
        data = np.asanyarray(img.dataobj)
    except NiftiMrsError:
        raise
    except _NIBABEL_ERRORS as err:
        raise _fail(path, f"not a readable NIfTI file ({type(err).__name__}: {err})") from err
    except MemoryError as err:
        raise _fail(path, "not enough memory to read the data the header announces") from err
    return img, data


def _header_extension(img, path: Path) -> dict:
    codes = img.header.extensions.get_codes()
    if 44 not in codes:
        raise _fail(path, "no NIfTI-MRS JSON header extension (ecode 44); not a NIfTI-MRS file")
    raw = img.header.extensions[codes.index(44)].get_content()
    try:
        ext = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise _fail(path, f"NIfTI-MRS header extension is not valid JSON ({err})") from err
    if not isinstance(ext, dict):
        raise _fail(path, "NIfTI-MRS header extension is not a JSON object")
    return ext


def _check_data(data: np.ndarray, path: Path) -> None:
    if not np.iscomplexobj(data):
        raise _fail(path, f"data are {data.dtype}, NIfTI-MRS requires complex samples")
    if not 4 <= data.ndim <= 7:
        raise _fail(path, f"data have {data.ndim} dimensions, NIfTI-MRS requires 4 to 7")
    if data.shape[:3] != (1, 1, 1):
        raise _fail(path, f"spatial size {data.shape[:3]}: only single-voxel data are supported")
    if not np.all(np.isfinite(data)):
        raise _fail(path, f"{np.count_nonzero(~np.isfinite(data))} samples are NaN or infinite")
    if not np.any(data):
        raise _fail(path, "every sample is 0: the file holds no signal (an empty or aborted "
                          "export?)")


H1_FREQUENCY_LIMITS_MHZ = (10.0, 1300.0)
"""Plausible 1H SpectrometerFrequency (MHz): 0.25 T (10.6 MHz, low-field systems) to 30.5 T
(1.3 GHz, the strongest NMR magnets); clinical 1.5-7 T is 64-298 MHz, preclinical 9.4-21.1 T
400-900 MHz. A value in Hz or kHz (x 1e6, x 1e3), or in GHz, falls outside."""
OTHER_FREQUENCY_LIMITS_MHZ = (1.0, 1300.0)
"""The same for other nuclei, whose lower gyromagnetic ratios (31P 0.40, 13C 0.25, 2H 0.15 of
1H) put them down to about 1 MHz at low field."""
SPECTRAL_WIDTH_LIMITS_HZ = (100.0, 200_000.0)
"""Plausible spectral width (1 / dwell time, Hz): in-vivo 1H MRS uses 1-8 kHz (1.5-7 T),
preclinical and 31P up to ~20 kHz, oversampled raw data twice that; 200 kHz covers NMR-style
acquisitions. A dwell time in ms or us stored as seconds gives 1e3 or 1e6 times less."""


def _unit_slip(value: float, low: float, high: float, unit: str, scales: dict) -> str:
    """' (it looks like <unit>: <value/scale> <unit>)' for the first scale that brings ``value``
    into [low, high], else ''."""
    for name, scale in scales.items():
        if low <= value / scale <= high:
            return f"; it looks like {name} ({value / scale:g} {unit} once converted)"
    return ""


def frequency_problem(cf_mhz: float, nucleus: str) -> str | None:
    """Why a SpectrometerFrequency (MHz) cannot be a scanner's, or None (see the limits)."""
    low, high = H1_FREQUENCY_LIMITS_MHZ if nucleus == "1H" else OTHER_FREQUENCY_LIMITS_MHZ
    if low <= cf_mhz <= high:
        return None
    slip = _unit_slip(cf_mhz, low, high, "MHz", {"Hz": 1e6, "kHz": 1e3, "GHz": 1e-3})
    return (f"SpectrometerFrequency {cf_mhz:g} MHz is outside {low:g}-{high:g} MHz, the range "
            f"of {nucleus} on real scanners (0.25-30 T){slip}. NIfTI-MRS states it in MHz: "
            "correct the header or the sidecar (for LCModel .RAW, spec2nii reads the $SEQPAR "
            "hzpppm and takes it over -i)")


def spectral_width_problem(dwell_s: float, time_unit: str) -> str | None:
    """Why a dwell time (s) gives an implausible spectral width, or None (see the limits)."""
    low, high = SPECTRAL_WIDTH_LIMITS_HZ
    width = 1.0 / dwell_s
    if low <= width <= high:
        return None
    slip = _unit_slip(width, low, high, "Hz", {"a dwell time in ms": 1e-3,
                                               "a dwell time in us": 1e-6})
    stated = f" (the NIfTI time unit says {time_unit})" if time_unit not in ("sec", "unknown") \
        else ""
    return (f"spectral width {width:g} Hz (1 / dwell time {dwell_s:g} s, pixdim[4]) is outside "
            f"{low:g}-{high:g} Hz{slip}{stated}. NIfTI-MRS stores the dwell time in seconds: "
            "correct pixdim[4] (or the spectral width given to the converter)")


def _first(value, key: str, path: Path):
    """First element of a list-valued header key (or the scalar)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise _fail(path, f"{key} is an empty list")
        return value[0]
    return value


# --------------------------------------------------------------------------- metadata

def _header_metadata(ext: dict) -> dict:
    """Header keys other than dim descriptions and the required ones, unwrapped."""
    skip = re.compile(r"^dim_\d(_info|_header)?$")
    return {k: (v if k in standard_defined else _unwrap(v))
            for k, v in ext.items() if not skip.match(k)}


def _merge_sidecar(meta: dict, sidecar: dict, dwell_s: float, path: Path, warnings: list) -> dict:
    """Header metadata updated by the sidecar; conflicts on key acquisition facts reported."""
    nucleus_h = meta.get("ResonantNucleus")
    nucleus_s = sidecar.get("ResonantNucleus")
    if nucleus_h is not None and nucleus_s is not None and \
            normalised_nucleus(_first(nucleus_h, "ResonantNucleus", path)) != \
            normalised_nucleus(_first(nucleus_s, "ResonantNucleus", path)):
        raise _fail(path, f"ResonantNucleus {nucleus_h} in the header but {nucleus_s} in the sidecar")
    width_s = sidecar.get("SpectralWidth")
    if width_s is not None and abs(_number(width_s, "SpectralWidth", path) * dwell_s - 1) > 1e-3:
        raise _fail(path, f"sidecar SpectralWidth {width_s} Hz disagrees with the header dwell "
                          f"time {dwell_s:g} s (= {1 / dwell_s:g} Hz)")
    for key, tol in (("SpectrometerFrequency", 1e-6), ("EchoTime", 1e-6)):
        if key in meta and key in sidecar:
            vh, vs = _number(meta[key], key, path), _number(sidecar[key], key, path)
            if abs(vh - vs) > tol * max(1.0, abs(vh)):
                warnings.append(f"{path}: {key} is {vh:g} in the NIfTI-MRS header but {vs:g} "
                                f"in the sidecar; using the sidecar value {vs:g}")
    merged = dict(meta)
    merged.update(sidecar)
    return merged


def merged_metadata(ext: dict, sidecar: dict, dwell_s: float, path, warnings: list) -> dict:
    """The header extension's metadata updated by the BIDS sidecar, as the reader takes them
    (the sidecar wins; conflicts on key facts reported in ``warnings`` or raised): the one
    rule for the reader and the discovery checks, so both judge the same numbers."""
    return _merge_sidecar(_header_metadata(ext), sidecar, dwell_s, Path(path), warnings)


def receiver_frequency(meta: dict, nucleus: str, path) -> tuple[float, float]:
    """(SpectrometerFrequency in MHz, SpecFreqChemShift in ppm) of :func:`merged_metadata`
    ``meta``: the frequency axis the run uses. NiftiMrsError when the frequency is absent or
    not positive, or the shift not finite."""
    path = Path(path)
    cf_mhz = _number(meta.get("SpectrometerFrequency"), "SpectrometerFrequency", path)
    if not 0 < cf_mhz < math.inf:
        raise _fail(path, f"SpectrometerFrequency {cf_mhz!r} MHz is not a positive number")
    return cf_mhz, _reference_ppm(meta, nucleus, path)


def _number(value, key: str, path: Path) -> float:
    """A numeric header/sidecar value (first element of a list), or NiftiMrsError."""
    try:
        return float(_first(value, key, path))
    except (TypeError, ValueError, OverflowError) as err:
        raise _fail(path, f"{key} {value!r} is not a number") from err


def _one_echo_time(value, path: Path) -> float:
    """The file's EchoTime (s); a list (header or sidecar) must state one value, repeated or
    not (within ``input_checks.ECHO_TIME_TOLERANCE_S``): several differing ones were read as
    the first, the data relaxed and simulated at it (review, 2026-12-07). A series belongs in
    a dim header, where a water reference's is used (``echo_series``)."""
    from .input_checks import ECHO_TIME_TOLERANCE_S

    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise _fail(path, "EchoTime is an empty list")
    numbers = [_number(v, "EchoTime", path) for v in values]
    if max(numbers) - min(numbers) > ECHO_TIME_TOLERANCE_S:
        raise _fail(path, f"EchoTime lists {len(numbers)} different values "
                          f"{[round(v, 6) for v in numbers]} s: dmrs-bids takes one echo time "
                          "per file; state a series of echo times in the dim header of the "
                          "dimension that holds it (dim_N_header {\"EchoTime\": [...]}), where a "
                          "water reference's is used and a metabolite file's refused")
    return numbers[0]


def _stored_warnings(ext: dict) -> list[str]:
    """Warnings an earlier write recorded in the header (a list of texts; a lone text kept)."""
    stored = _unwrap(ext.get(WARNINGS_KEY, []))
    return [str(w) for w in stored] if isinstance(stored, list) else [str(stored)]


def _reference_ppm(meta: dict, nucleus: str, path: Path) -> float:
    """Chemical shift of the receiver frequency: SpecFreqChemShift, else the nucleus default."""
    if "SpecFreqChemShift" in meta:
        ref_ppm = _number(meta["SpecFreqChemShift"], "SpecFreqChemShift", path)
        if not math.isfinite(ref_ppm):
            raise _fail(path, f"SpecFreqChemShift {ref_ppm!r} is not a finite number")
        return ref_ppm
    return H1_REFERENCE_PPM if nucleus == "1H" else 0.0


def _diffusion_conditions(fids: np.ndarray, layout: dict, data_shape, ext: dict,
                          sidecar: dict, b_value_units: str, path: Path, warnings: list):
    """(fids, b-values in s/mm^2, unit directions, b-unit decision) of the diffusion dims.

    Repeated (b, direction) labels along DIM_DYN are grouped into conditions x repeats, the
    repeats joining the transients. A unit decision recorded by an earlier write is kept.
    """
    b_raw, dim_unit, dim_unit_where, directions_raw = _condition_lists(layout, data_shape, path)
    if directions_raw is None:
        note = unread_direction_keys_note(layout, data_shape, path)
        if note:
            warnings.append(note)
    unit, units_source = _decide_units(b_raw, b_value_units, sidecar, ext, dim_unit,
                                       dim_unit_where, path, warnings)
    b_s_mm2 = to_s_mm2(b_raw, unit)
    directions = unit_directions(directions_raw, b_s_mm2, path, warnings)
    on_dynamics = layout["conditions"] is not None and layout["condition_tag"] == "DIM_DYN"
    groups = _label_groups(b_s_mm2, directions) if on_dynamics else None
    grouping = _group_repeats(groups) if on_dynamics else None
    note = unequal_repeats_note(groups, b_s_mm2, path) if on_dynamics else None
    if note:
        warnings.append(note)
    if grouping is not None:
        order, n_unique = grouping
        n_rep = order.size // n_unique
        fids = fids[order].reshape(n_unique, n_rep * fids.shape[1], *fids.shape[2:])
        b_s_mm2, directions = b_s_mm2[order[::n_rep]], directions[order[::n_rep]]
        warnings.append(f"{path}: {n_unique} distinct (b-value, direction) pairs each "
                        f"repeated {n_rep} times along the diffusion dimension; grouped "
                        "the repeats as transients")
    if B_UNITS_SOURCE_KEY in ext and units_source.startswith("header"):
        units_source = str(_unwrap(ext[B_UNITS_SOURCE_KEY]))
    return fids, b_s_mm2, directions, units_source


# --------------------------------------------------------------------------- public reader

def _time_unit(img) -> str:
    """The time unit the header's xyzt_units states (nibabel's label: "sec", "msec", ...,
    "unknown"), from its time bits alone: it only words a hint, so spatial bits or a time
    code NIfTI does not define are not an error (nibabel raised a bare KeyError for both)."""
    from nibabel.nifti1 import unit_codes

    return unit_codes.label.get(int(img.header["xyzt_units"]) & 0x38, "unknown")


def read_nifti_mrs(path, sidecar: dict | None = None, b_value_units: str = "auto",
                   dim_roles: dict | None = None,
                   water_for_echo_time_s: float | None = None) -> Acquisition:
    """Read a NIfTI-MRS file (any header generation) into an :class:`Acquisition`.

    ``sidecar``: the BIDS JSON sidecar (it wins over the header; conflicts are reported).
    ``b_value_units``: "auto", "s/mm2" or "ms/um2" (see the module docstring).
    ``dim_roles``: roles of dimensions the header leaves unclear, keyed by tag or ``dim_N``
    (e.g. ``{"DIM_USER_1": "transients"}``; roles in :data:`DIM_ROLES`).
    ``water_for_echo_time_s``: given when the file is the water reference of metabolite data
    of this EchoTime (s): an EchoTime series in a dim header is then not refused but reduced
    to the entries :func:`pipeline.io.echo_series.select_water_echo_time` picks, whose TE
    becomes the ``EchoTime`` (with a warning). Without it such a series is refused.
    Raises :class:`NiftiMrsError` naming the file and the problem.
    """
    path = Path(path)
    sidecar = dict(sidecar or {})
    img, data = _load_image(path)
    _check_data(data, path)
    ext = _header_extension(img, path)
    dwell_s = float(img.header["pixdim"][4])
    if not 0 < dwell_s < 1:
        raise _fail(path, f"dwell time {dwell_s!r} s (pixdim[4]) is not plausible")
    width = spectral_width_problem(dwell_s, _time_unit(img))
    if width:
        raise _fail(path, width)
    warnings = _stored_warnings(ext)
    used_echo_time_s = None
    if water_for_echo_time_s is not None:
        ext, data, used_echo_time_s, note = select_water_echo_time(
            ext, data, path, water_for_echo_time_s, dwell_s)
        warnings += [note] if note else []

    meta = merged_metadata(ext, sidecar, dwell_s, path, warnings)
    if used_echo_time_s is not None:
        meta["EchoTime"] = used_echo_time_s  # the entries used, not a single stated value
    for key in ("SpectrometerFrequency", "ResonantNucleus", "EchoTime"):
        if key not in meta:
            raise _fail(path, f"required key {key} is in neither the NIfTI-MRS header nor the sidecar")
    nucleus = normalised_nucleus(_first(meta["ResonantNucleus"], "ResonantNucleus", path))
    cf_mhz, ref_ppm = receiver_frequency(meta, nucleus, path)
    echo_time_s = _one_echo_time(meta["EchoTime"], path)
    if isinstance(meta["EchoTime"], (list, tuple)):
        meta["EchoTime"] = echo_time_s  # one value: what every later step reads
    if not 0 <= echo_time_s < math.inf:
        raise _fail(path, f"EchoTime {echo_time_s!r} s is not a non-negative number")
    frequency = frequency_problem(cf_mhz, nucleus)
    if frequency:
        raise _fail(path, frequency)

    layout = _dim_layout(ext, data, path, warnings, dim_roles)
    coil_axes = [layout["coil"]] if layout["coil"] is not None else []
    cond_axes = _condition_axes(layout)
    fids = _canonical_fids(data, cond_axes, layout["transients"], coil_axes)
    if cond_axes:
        fids, b_s_mm2, directions, units_source = _diffusion_conditions(
            fids, layout, data.shape, ext, sidecar, b_value_units, path, warnings)
    else:
        b_s_mm2, directions = np.zeros(1), np.full((1, 3), np.nan)
        units_source = "no diffusion dimension (b = 0)"

    _check_empty_conditions(fids, b_s_mm2, path)
    warnings += duplicated_condition_notes(fids, b_s_mm2, path)
    warnings += duplicated_transient_notes(fids, b_s_mm2, path)
    for key in (B_UNITS_KEY, B_UNITS_SOURCE_KEY, WARNINGS_KEY, "BValueUnits", "b_value_units"):
        meta.pop(key, None)
    meta["warnings"] = warnings
    meta["b_value_units_source"] = units_source
    meta["nifti_affine"] = np.asarray(img.affine, dtype=float).tolist()
    return Acquisition(fids=fids, dwell_s=dwell_s, cf_mhz=cf_mhz, b_values_s_mm2=b_s_mm2,
                       directions=directions, nucleus=nucleus,
                       ref_ppm=ref_ppm, metadata=meta, source=str(path))


def _check_empty_conditions(fids: np.ndarray, b_s_mm2: np.ndarray, path: Path) -> None:
    """Refuse a file in which a whole condition is 0 (an aborted scan): it would reach the fit
    as an empty spectrum. Empty transients within a condition are left out by preprocessing
    (``pipeline.preprocess.steps.outlier_step``), with a flag."""
    empty = [c for c in range(fids.shape[0]) if not np.any(fids[c])]
    if empty and fids.shape[0] > 1:
        listed = ", ".join(f"{c} (b = {b_s_mm2[c]:g} s/mm^2)" for c in empty)
        raise _fail(path, f"condition(s) {listed} of {fids.shape[0]} hold only zeros (an "
                          "aborted or unfilled acquisition?); remove them from the file")


def duplicated_condition_notes(fids: np.ndarray, b_s_mm2: np.ndarray, path) -> list[str]:
    """A warning for each condition whose data (every transient and coil) are bit for bit
    those of an earlier one: measured data never repeat their noise, so it is the same
    acquisition stored twice (a file listed twice when a series was assembled). Each copy
    would count as a measurement of its own: a demo file with its b = 1000 s/mm^2 condition
    appended again moved the Glx ADC from 0.104 to 0.128 um^2/ms and Ins at b = 0 by 8 %,
    without a word. Conditions without noise (several transients, all identical: a noiseless
    simulation, whose conditions may repeat legitimately) are not judged."""
    first: dict = {}
    notes = []
    for c in range(fids.shape[0]):
        noiseless = fids.shape[1] > 1 and bool(np.all(fids[c] == fids[c][:1]))
        if not np.any(fids[c]) or noiseless:
            continue  # all zeros: refused or left out elsewhere
        digest = hashlib.sha256(np.ascontiguousarray(fids[c]).tobytes()).hexdigest()
        if digest in first:
            earlier = first[digest]
            notes.append(f"{path}: condition {c} (b = {b_s_mm2[c]:g} s/mm^2) holds exactly the "
                         f"data of condition {earlier} (b = {b_s_mm2[earlier]:g} s/mm^2), bit "
                         "for bit: the same acquisition stored twice? Each copy is fitted and "
                         "modelled as a measurement of its own; remove the copy")
        else:
            first[digest] = c
    return notes


def duplicated_transients(fids: np.ndarray) -> np.ndarray:
    """(n_conditions, n_transients) bool: the transients (every coil) that are bit for bit an
    earlier one of their condition. A measured transient never repeats its noise, so they are
    copies (an export or a concatenation that stored averages twice). Transients that are all
    zero, and conditions whose transients are all identical (noiseless simulations), are not
    judged."""
    copies = np.zeros(fids.shape[:2], dtype=bool)
    for c in range(fids.shape[0]):
        live = [k for k in range(fids.shape[1]) if np.any(fids[c, k])]
        if len(live) < 2 or all(np.array_equal(fids[c, k], fids[c, live[0]]) for k in live):
            continue
        seen = set()
        for k in live:
            digest = hashlib.sha256(np.ascontiguousarray(fids[c, k]).tobytes()).hexdigest()
            copies[c, k] = digest in seen
            seen.add(digest)
    return copies


def duplicated_transient_notes(fids: np.ndarray, b_s_mm2: np.ndarray, path) -> list[str]:
    """A warning naming the conditions with copies (:func:`duplicated_transients`) and how many.
    A copy is not an independent measurement: each copy's twin would sit in its leave-one-out
    alignment template (the in-vivo 7 T set with every transient stored twice moved amplitudes
    by up to 18 %, tCho at b = 0 +17 %, Ins +13 %, and the tCho ADC from 0.065 to 0.079
    um^2/ms, without a word, before 2026-12-07), so preprocessing leaves them out
    (``preprocess.steps.without_copies``)."""
    copies = duplicated_transients(fids)
    found = [f"{c} (b = {b_s_mm2[c]:g} s/mm^2: {int(copies[c].sum())} of "
             f"{int(sum(np.any(t) for t in fids[c]))})"
             for c in range(fids.shape[0]) if copies[c].any()]
    if not found:
        return []
    return [f"{path}: transients that repeat earlier ones of their condition bit for bit in "
            f"condition(s) {', '.join(found)}: averages stored twice? A copy is not an "
            "independent measurement: the copies are left out (counted as not acquired in "
            "_transients.tsv); remove them from the file"]


def _canonical_fids(data: np.ndarray, cond_axes: list, trans_axes: list, coil_axes: list):
    """Data as (conditions, transients, coils, points): several transient dims flattened."""
    moved = np.moveaxis(data[0, 0, 0], [a - 3 for a in cond_axes + trans_axes + coil_axes] + [0],
                        range(len(cond_axes) + len(trans_axes) + len(coil_axes) + 1))
    n_cond = int(np.prod([data.shape[a] for a in cond_axes])) if cond_axes else 1
    n_coil = data.shape[coil_axes[0]] if coil_axes else 1
    return moved.reshape(n_cond, -1, n_coil, data.shape[3])
