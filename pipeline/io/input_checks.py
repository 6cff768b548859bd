"""The app's guarded entry points to its input files: every problem becomes an
:class:`InputError` (a ``ValueError``) naming the file and the problem, never a traceback.

The science readers (``pipeline.io``) raise clear errors for the defects they know; these
wrappers add what a reader cannot see on its own (permissions, a water reference on another
grid) and put the path into reader errors that name only a folder or an entry. The readers
themselves raise only their own ValueError subclasses, whatever the bytes (fuzzed in
tests/test_fuzz_readers.py), so no other exception type is caught here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from ..sequences import means_no_mixing_time, stated_sequence
from ..spectra import MIN_ZERO_FILL_POINTS, acquired_points, water_points_kept
from .nifti_mrs_header import _unwrap, normalised_nucleus

MAX_SAMPLES = 2 ** 27  # 128 Mi complex samples (2 GiB as complex128): far beyond any SVS file


class InputError(ValueError):
    """An input file cannot be used; the message names the file and the problem."""


def check_readable(path) -> Path:
    """The file (or folder) exists and this process may read it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(f"{path}: not a regular file (a FIFO, socket or device named like an "
                         "input file); replace it with the real file")
    if not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
        raise InputError(f"{path}: permission denied (not readable by this user); fix the "
                         "file's permissions or run as a user who can read it")
    return path


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text}"


def nifti_grid(path) -> tuple[tuple, float]:
    """(shape, dwell time in s) from the NIfTI header alone (no data read)."""
    import nibabel as nib

    path = check_readable(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes); it holds no MRS data")
    try:
        header = nib.load(str(path)).header
        shape, dwell_s = tuple(int(n) for n in header.get_data_shape()), \
            float(header["pixdim"][4])
    except Exception as exc:  # nibabel raises many types for broken headers
        raise InputError(f"{path}: not a readable NIfTI file ({_describe(exc)})") from None
    n_samples = 1
    for n in shape:
        n_samples *= n
    if n_samples > MAX_SAMPLES:
        raise InputError(f"{path}: the header announces {n_samples} samples (shape {shape}), "
                         "more than any single-voxel MRS file holds; the header is corrupt")
    return shape, dwell_s


def read_acquisition(path, sidecar: dict | None = None, b_value_units: str = "auto",
                     dim_roles: dict | None = None, water_for_echo_time_s: float | None = None):
    """``pipeline.io.nifti_mrs.read_nifti_mrs`` behind the header checks above; any failure
    is an :class:`InputError` naming ``path``, and so is a nucleus other than 1H (nothing
    downstream could tell). ``dim_roles``: ``[conversion] dim_roles``;
    ``water_for_echo_time_s``: the metabolite data's TE when ``path`` is their water
    reference (its EchoTime series is then used, not refused: ``pipeline.io.echo_series``)."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    nifti_grid(path)
    try:
        acq = read_nifti_mrs(str(path), sidecar=sidecar, b_value_units=b_value_units,
                             dim_roles=dim_roles, water_for_echo_time_s=water_for_echo_time_s)
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise InputError(f"{path}: {' '.join(str(exc).split())}") from None
    problem = nucleus_problem(acq.nucleus, path)
    if problem:
        raise InputError(problem)
    return acq


def read_basis_file(path, **kwargs):
    """``pipeline.io.basis_formats.read_basis`` with every failure an :class:`InputError`
    naming ``path``."""
    from pipeline.io.basis_formats import read_basis

    check_readable(path)
    try:
        return read_basis(path, **kwargs)
    except ValueError as exc:
        if str(path) in str(exc) or Path(path).name in str(exc):
            raise
        raise InputError(f"{path}: not a usable basis set ({' '.join(str(exc).split())})") \
            from None


def _acquired_points(path) -> int:
    """Acquired points of a NIfTI-MRS file (its spectral axis without trailing zero-filling,
    ``spectra.acquired_points``); 0 when its data cannot be read (the reader names why)."""
    import nibabel as nib

    try:
        return acquired_points(np.moveaxis(np.asanyarray(nib.load(str(path)).dataobj), 3, -1))
    except Exception:  # nibabel raises many types; the reader reports them
        return 0


def check_water_grid(svs, water) -> None:
    """The water reference must share the metabolite data's number of points, or fit their
    acquired points when either is zero-filled (preprocessing cuts both to those,
    ``spectra.water_points_kept``), and dwell time (eddy-current correction and coil weights use it point by point). Headers
    that cannot be read are left to the reader, which names their problem."""
    try:
        svs_shape, svs_dwell_s = nifti_grid(svs)
        water_shape, water_dwell_s = nifti_grid(water)
    except InputError:
        return
    if len(svs_shape) < 4 or len(water_shape) < 4 or min(water_dwell_s, svs_dwell_s) <= 0:
        return
    if water_shape[3] != svs_shape[3]:
        data_acquired = _acquired_points(svs)
        kept = water_points_kept(svs_shape[3], data_acquired, water_shape[3],
                                 _acquired_points(water))
        if kept != data_acquired:
            acquired = (f" ({data_acquired} acquired, the rest zero-filled)"
                        if 0 < data_acquired < svs_shape[3] else "")
            raise InputError(f"{water}: water reference has {water_shape[3]} spectral points "
                             f"but {Path(svs).name} has {svs_shape[3]}{acquired}; acquire or "
                             "export both with the same number of points")
    if abs(water_dwell_s - svs_dwell_s) > 1e-6 * svs_dwell_s:
        raise InputError(f"{water}: water reference dwell time {water_dwell_s * 1e3:g} ms "
                         f"({1 / water_dwell_s:g} Hz) differs from {Path(svs).name} "
                         f"({svs_dwell_s * 1e3:g} ms, {1 / svs_dwell_s:g} Hz)")


# --- header/sidecar agreement and physical timings (issue 17 item 5) -------------------------

TIMING_KEYS = {"EchoTime": "TE", "RepetitionTime": "TR", "MixingTime": "TM",
               "DiffusionGradientDuration": "δ", "DiffusionGradientSeparation": "Δ",
               "DiffusionTime": "diffusion time"}
"""Timings (s) checked wherever they are stated: each must lie in (0, its limit)."""
TIMING_LIMITS_S = {"EchoTime": 1.0, "RepetitionTime": 60.0, "DiffusionGradientDuration": 1.0,
                   "MixingTime": 3.0, "DiffusionGradientSeparation": 3.0, "DiffusionTime": 3.0}
"""Largest plausible value of each timing (s). TE and δ stay below a second; the mixing time,
Δ and the diffusion time of long-diffusion-time DW-STEAM reach 1-2 s (dMRS consensus,
Ligneul et al. 2024), so they may go to 3 s; TR is 1.5-10 s in MRS (up to about 20 s for a
fully relaxed water scan; 2-5 s in every file of the shared data). A value in ms (TM 60, Δ 84,
TR 3000) is far above each. TR sets the water's T1 saturation in water scaling: a TR of 3000
read as seconds made every concentration 18 % high."""
CF_TOLERANCE = 1e-4
"""Relative SpectrometerFrequency difference tolerated between header and sidecar (rounding
in converters); a larger one changes every ppm position and so the fit."""


def header_extension(path) -> dict:
    """The NIfTI-MRS header extension (ecode 44) as a dict, {} when absent or unreadable."""
    import json

    import nibabel as nib

    try:
        for ext in nib.load(str(path)).header.extensions:
            if ext.get_code() == 44:
                value = json.loads(ext.get_content())
                return value if isinstance(value, dict) else {}
    except Exception:  # the reader reports broken headers with their reason
        return {}
    return {}


STATED_UNITS = {
    "SpectrometerFrequency": "MHz (state it as a plain number in MHz, e.g. 123.2 at 3 T)",
    "SpectralWidth": "Hz (state it as a plain number in Hz, e.g. 2000)",
    "NumberOfSpectralPoints": "points (state it as a plain integer, e.g. 2048)",
    "MagneticFieldStrength": "tesla (state it as a plain number in T, e.g. 3 or 7)",
}
"""The unit each non-timing number is stated in, and its form, for the message refusing a
value that is not a number; timings (:data:`TIMING_KEYS`) are in seconds."""
SECONDS = "seconds (BIDS timings are plain numbers in s, e.g. 0.08 for 80 ms)"


def _number(value, key: str, where) -> float:
    """A header or sidecar number (first element of a list), or InputError naming the key and
    the unit it is stated in (:data:`STATED_UNITS`, else seconds). A NIfTI-MRS user-defined
    entry ``{"Value": ..., "Description": ...}`` (how the converter and the app write
    DiffusionGradientDuration, DiffusionTime, ...) counts as its Value."""
    plain = _unwrap(value)
    first = plain[0] if isinstance(plain, list) and plain else plain
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        raise InputError(f"{where}: {key} {value!r} is not a number of "
                         f"{STATED_UNITS.get(key, SECONDS)}")
    return float(first)


def timing_problems(metadata: dict, where, sequence: str | None = None) -> list[str]:
    """Timings outside (0, their limit) (``TIMING_LIMITS_S``), and δ > Δ, in one header or
    sidecar. ``sequence``: the
    acquisition's pulse sequence (``pipeline.sequences``; None when unknown); MixingTime = 0
    on any sequence but STEAM is taken as absent."""
    problems, values = [], {}
    for key, symbol in TIMING_KEYS.items():
        if _unwrap(metadata.get(key)) is None:
            continue
        values[key] = value = _number(metadata[key], key, where)
        if key == "MixingTime" and means_no_mixing_time(value, sequence):
            continue
        limit = TIMING_LIMITS_S[key]
        if not 0 < value < limit:
            problems.append(f"{key} ({symbol}) = {value:g} s is outside (0, {limit:g}) s")
    small, big = (values.get("DiffusionGradientDuration"),
                  values.get("DiffusionGradientSeparation"))
    if small is not None and big is not None and small > big:
        problems.append(f"DiffusionGradientDuration (δ = {small:g} s) is longer than "
                        f"DiffusionGradientSeparation (Δ = {big:g} s)")
    return problems


ECHO_TIME_TOLERANCE_S = 1e-4
"""Largest EchoTime difference (s) between a file's header and its sidecar taken as rounding
(converters write TE to the microsecond). More is two echo times: the run would simulate the
basis and relax the water at the sidecar's, with only a warning (on the demo, header 0.08 s and
sidecar 0.035 s gave Ins -84 %, Glx -74 %, tCr -19 %, exit 0)."""


def echo_time_contradiction(path, header: dict, sidecar: dict, where_sidecar,
                            series_s=()) -> str | None:
    """How the sidecar's EchoTime contradicts the header's (more than
    :data:`ECHO_TIME_TOLERANCE_S` apart), or None (also when either states none, or when
    both are echo times of the file's own EchoTime series ``series_s``, s: a water reference
    whose run uses the entries of one of them, ``echo_series``)."""
    if _unwrap(header.get("EchoTime")) is None or _unwrap(sidecar.get("EchoTime")) is None:
        return None
    in_header = _number(header["EchoTime"], "EchoTime", f"{path} (header)")
    in_sidecar = _number(sidecar["EchoTime"], "EchoTime", where_sidecar)
    if abs(in_header - in_sidecar) <= ECHO_TIME_TOLERANCE_S:
        return None
    if all(any(abs(value - te) <= ECHO_TIME_TOLERANCE_S for te in series_s)
           for value in (in_header, in_sidecar)):
        return None
    return (f"EchoTime {in_header:g} s in the header of {path} contradicts {in_sidecar:g} s in "
            f"{where_sidecar} (the basis and the water relaxation depend on it; correct the "
            "wrong one)")


def stated_timing_problems(path, header: dict, sidecar: dict, where_sidecar,
                           series_s=()) -> list[str]:
    """:func:`timing_problems` of the NIfTI-MRS ``header`` extension and of the ``sidecar``
    metadata of ``path``, each problem prefixed with where it is stated, and an EchoTime on
    which they disagree (:func:`echo_time_contradiction`, ``series_s`` its echo times); the
    sequence (for MixingTime = 0) is the one the two state together."""
    sequence = stated_sequence({k: _unwrap(v) for k, v in {**header, **sidecar}.items()})
    problems = []
    for source, where in ((header, f"{path} (header)"), (sidecar, where_sidecar)):
        problems += [f"{where}: {p}" for p in timing_problems(source, where, sequence)]
    contradiction = None if problems else echo_time_contradiction(path, header, sidecar,
                                                                  where_sidecar, series_s)
    return problems + ([contradiction] if contradiction else [])


def check_metadata(path, sidecar: dict, sidecar_path=None) -> None:
    """The sidecar agrees with the NIfTI header on SpectrometerFrequency, SpectralWidth (the
    dwell time) and NumberOfSpectralPoints, and every timing is physical; InputError naming
    the file and each contradiction otherwise (the README promises that contradictory
    metadata fails the participant)."""
    path = Path(path)
    try:
        _check_metadata(path, sidecar, sidecar_path or f"sidecar of {path}")
    except InputError as exc:
        raise _naming(path, exc) from None


def check_frequency_agreement(path, sidecar: dict, sidecar_path=None) -> None:
    """The header and the sidecar of ``path`` agree on SpectrometerFrequency, as
    :func:`check_metadata` demands of the metabolite file: for the water reference and the
    MM file, whose reader would only warn and use the sidecar's. InputError naming the file
    and both values otherwise."""
    path = Path(path)
    try:
        problem = frequency_contradiction(path, header_extension(path), sidecar,
                                          sidecar_path or f"sidecar of {path}")
    except InputError as exc:
        raise _naming(path, exc) from None
    if problem:
        raise InputError(f"{path}: contradictory or impossible metadata: {problem}")


def _naming(path: Path, exc: InputError) -> InputError:
    """``exc`` with a message that starts with ``path``."""
    return InputError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}")


def frequency_contradiction(path, header: dict, sidecar: dict, where_sidecar) -> str | None:
    """How the sidecar's SpectrometerFrequency contradicts the header's (more than
    :data:`CF_TOLERANCE` apart: every ppm position would move), or None; InputError naming
    the key and MHz when either states one that is not a number."""
    key = "SpectrometerFrequency"
    stated = [_number(source[key], key, where) for source, where in (
        (header, f"{path} (header)"), (sidecar, where_sidecar)) if key in source]
    if len(stated) < 2:
        return None  # a value that is not a number is refused even where only one states it
    cf_header, cf_sidecar = stated
    if abs(cf_header - cf_sidecar) <= CF_TOLERANCE * abs(cf_header):
        return None
    return (f"SpectrometerFrequency is {cf_header:g} MHz in the header of {path} but "
            f"{cf_sidecar:g} MHz in {where_sidecar}")


FIELD_TOLERANCE = 0.10
"""Largest relative difference between a stated MagneticFieldStrength and the field the 1H
SpectrometerFrequency gives: scanners are labelled by nominal field (a "3 T" Siemens at
123.2 MHz is 2.89 T, 3.6 % off; a "7 T" at 297.2 MHz 6.98 T), while another field is 20 % or
more away (11.7 T stated on 400 MHz data: 9.4 T)."""


def field_problems(header: dict, sidecar: dict, path, where_sidecar) -> list[str]:
    """A MagneticFieldStrength (sidecar or header) that contradicts the 1H SpectrometerFrequency
    by more than :data:`FIELD_TOLERANCE`: the processing uses the frequency, while the reports
    and group tables show the stated field, and the group level splits by it (before
    2026-12-07 a sidecar's 11.7 T on 400 MHz data went into group_qc.tsv unremarked).
    InputError naming the key and tesla when the field used is not a number ("3 T": before,
    passed unremarked and left out of the group tables)."""
    from ..units import field_strength_t

    merged = {**header, **sidecar}
    if _unwrap(merged.get("MagneticFieldStrength")) is None:
        return []
    where = where_sidecar if "MagneticFieldStrength" in sidecar else f"{path} (header)"
    stated = _number(merged["MagneticFieldStrength"], "MagneticFieldStrength", where)
    nucleus = _unwrap(merged.get("ResonantNucleus", "1H"))
    nucleus = normalised_nucleus(nucleus[0] if isinstance(nucleus, list) and nucleus else nucleus)
    if "SpectrometerFrequency" not in merged or nucleus != "1H":
        return []
    try:
        cf_mhz = _number(merged["SpectrometerFrequency"], "SpectrometerFrequency", where)
    except InputError:
        return []  # not a number: refused by frequency_contradiction, naming where it is
    implied = field_strength_t(cf_mhz)
    if stated > 0 and abs(stated - implied) <= FIELD_TOLERANCE * implied:
        return []
    return [f"MagneticFieldStrength {stated:g} T in {where} contradicts the SpectrometerFrequency "
            f"{cf_mhz:g} MHz ({implied:.3g} T for 1H)"]


def _check_metadata(path: Path, sidecar: dict, where_sidecar) -> None:
    try:
        shape, dwell_s = nifti_grid(path)
    except InputError:
        return  # an unreadable header is reported by the reader, per acquisition
    header = header_extension(path)
    problems = stated_timing_problems(path, header, sidecar, where_sidecar)
    frequency = frequency_contradiction(path, header, sidecar, where_sidecar)
    problems += [frequency] if frequency else []
    problems += field_problems(header, sidecar, path, where_sidecar)
    if sidecar.get("SpectralWidth") is not None and dwell_s > 0:
        width_hz = _number(sidecar["SpectralWidth"], "SpectralWidth", where_sidecar)
        if abs(width_hz * dwell_s - 1) > 1e-3:
            problems.append(f"SpectralWidth {width_hz:g} Hz in {where_sidecar} disagrees with "
                            f"the header dwell time {dwell_s:g} s (= {1 / dwell_s:g} Hz)")
    points = sidecar.get("NumberOfSpectralPoints")
    if points is not None and len(shape) >= 4:
        n_points = _number(points, "NumberOfSpectralPoints", where_sidecar)
        if n_points != shape[3]:
            problems.append(f"NumberOfSpectralPoints {n_points:g} in {where_sidecar} "
                            f"disagrees with the {shape[3]} points in the header of {path}")
    if problems:
        raise InputError(f"{path}: contradictory or impossible metadata: "
                         + "; ".join(problems))


# --- resonant nucleus ------------------------------------------------------------------------

SUPPORTED_NUCLEUS = "1H"
"""The only nucleus processed: the basis simulation, the ppm reference (4.65 ppm at the
receiver), the metabolite list and the QC limits are all proton ones. Other nuclei (31P, 13C)
would be fitted with a 1H basis on a wrong ppm axis: a wrong answer, so they are refused."""


def _nuclei(value) -> list[str]:
    """ResonantNucleus as a list of texts (NIfTI-MRS writes ``["1H"]``, sidecars often "1H")."""
    plain = _unwrap(value)
    return [normalised_nucleus(v) for v in (plain if isinstance(plain, list) else [plain])]


def nucleus_problem(value, where) -> str | None:
    """Why a stated ResonantNucleus cannot be processed (``where`` names its file), or None."""
    if _nuclei(value) == [SUPPORTED_NUCLEUS]:
        return None
    return (f"{where}: ResonantNucleus is {', '.join(_nuclei(value))}; dmrs-bids processes only "
            f"{SUPPORTED_NUCLEUS} (proton) MRS: its basis sets, ppm reference and QC are "
            "proton ones")


def check_nucleus(path, sidecar: dict, sidecar_path=None) -> None:
    """The header and the sidecar agree on ResonantNucleus where both state it, and the nucleus
    is 1H; InputError naming the file, the key and its value otherwise (before any
    processing: a 31P file would otherwise be fitted as proton data and pass)."""
    path = Path(path)
    where_sidecar = sidecar_path or f"sidecar of {path}"
    header = header_extension(path).get("ResonantNucleus")
    stated = sidecar.get("ResonantNucleus")
    if header is not None and stated is not None and _nuclei(header) != _nuclei(stated):
        raise InputError(f"{path}: ResonantNucleus is {', '.join(_nuclei(header))} in the header "
                         f"but {', '.join(_nuclei(stated))} in {where_sidecar}; correct the "
                         "wrong one")
    for value, where in ((stated, where_sidecar), (header, f"{path} (header)")):
        problem = nucleus_problem(value, where) if value is not None else None
        if problem:
            raise InputError(problem if str(where).startswith(str(path)) else f"{path}: {problem}")


def _header_conditions(path, shape: tuple) -> int:
    """Diffusion conditions of a NIfTI-MRS file as its header lays them out (dims 5-7 and
    their tags, classified as the reader does without ``dim_roles``); reads no data."""
    from .nifti_mrs_header import _condition_axes, _dim_layout

    shape_only = np.broadcast_to(np.zeros((), np.int8), shape)  # the layout needs only shapes
    layout = _dim_layout(header_extension(path), shape_only, Path(path), [])
    return int(np.prod([shape[axis] for axis in _condition_axes(layout)]))


def _zero_filled(path, n_points: int) -> bool:
    """Whether every FID ends in ``MIN_ZERO_FILL_POINTS`` zeros (a zero-filled export, whose
    acquired points ``spectra.acquired_points`` finds), reading only those last points: the
    bytes themselves in a .nii, a streamed decompression of a .nii.gz, never the whole array."""
    import nibabel as nib

    if n_points < MIN_ZERO_FILL_POINTS:
        return False
    tail = nib.load(str(path)).dataobj[:, :, :, n_points - MIN_ZERO_FILL_POINTS:]
    return not np.any(np.asarray(tail) != 0)


def _grid_points(path, n_points: int) -> int:
    """The points the run keeps of a file with ``n_points`` (``spectra.acquired_points``):
    all of them unless it is zero-filled, which only then costs one full read of its data;
    0 when its data cannot be read (the reader names why)."""
    try:
        zero_filled = _zero_filled(path, n_points)
    except Exception:  # nibabel raises many types; the reader reports them
        return 0
    return _acquired_points(path) if zero_filled else n_points


def check_motion_grid(svs, ppm_range, sidecar: dict | None = None) -> None:
    """The spectral grid of ``svs`` (its acquired points, dwell time and frequency) can hold
    the MM motion check's window (``[preprocessing] motion_ppm_range``), which runs after the
    fit on data of two or more conditions; InputError naming the file, its grid and what it
    needs otherwise, before any processing. The grid comes from the header: files reach
    2 GiB, and this runs in the main process for every file before anything starts (only a
    zero-filled export is read whole, :func:`_grid_points`). Its SpectrometerFrequency is the
    one the run uses, the header's merged with ``sidecar`` (the sidecar wins,
    ``signal_checks.stated_frequency``). Files the reader cannot read without the run's
    options are left to the run, which names their problem."""
    from pipeline.preprocess.motion import motion_grid_problem

    from .signal_checks import stated_frequency

    try:
        shape, dwell_s = nifti_grid(svs)
        conditions = _header_conditions(svs, shape) if len(shape) >= 4 else 0
    except ValueError:  # InputError and the header reader's NiftiMrsError
        return
    frequency = stated_frequency(svs, sidecar)
    if conditions < 2 or frequency is None or not 0 < dwell_s < 1:
        return
    n_points = _grid_points(svs, shape[3])
    problem = motion_grid_problem(n_points, dwell_s, frequency[0], ppm_range) \
        if n_points else None
    if problem:
        raise InputError(f"{svs}: {problem}")


# --- water reference sanity (issue 17 item 4) ------------------------------------------------

def _same_file(a, b) -> bool:
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve() or os.path.samefile(a, b):
            return True
        size = a.stat().st_size
        return 0 < size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


MAX_REFERENCE_FREQUENCY_PPM = 1000.0
"""Largest difference (ppm of the data's frequency) between the spectrometer frequencies of
the data and their water reference: a scan's water and metabolite acquisitions differ by at
most a few ppm (the receiver offset some sequences put on the metabolites), another field
strength or nucleus by far more (297.0 against 298.06 MHz is 3556 ppm)."""


def frequency_mismatch(data_cf_mhz: float, water_cf_mhz: float) -> str | None:
    """How the water reference's spectrometer frequency contradicts the data's, or None."""
    ppm = abs(water_cf_mhz - data_cf_mhz) / data_cf_mhz * 1e6
    if ppm <= MAX_REFERENCE_FREQUENCY_PPM:
        return None
    return (f"SpectrometerFrequency {water_cf_mhz:.6g} MHz differs by {ppm:.0f} ppm from the "
            f"{data_cf_mhz:.6g} MHz of")
