"""What the discovery-time checks see in the signal itself, from a bounded read of each
file (:func:`leading_fids`): a late-starting FID (an uncorrected digital-filter group delay), a
water reference that is not unsuppressed water, a measured MM spectrum that is. Each raises
:class:`~pipeline.io.input_checks.InputError` naming the file; files these checks cannot read
are left to the run, which names their problems."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .input_checks import (InputError, _same_file, frequency_mismatch, header_extension,
                           nifti_grid, stated_timing_problems)
from .mm_likeness import metabolite_spectrum_problem, mm_band_problem, mm_singlet_excess

WATER_CHECK_MAX_FIDS = 4096
"""FIDs of each file the discovery-time water-reference check reads at most: those stored
first (all of a typical file; 64 MiB of 2048-point complex64 FIDs). Discovery runs in the main
process for every participant before anything starts, and uncombined multi-coil files reach
gigabytes; the check needs only a mean magnitude spectrum."""


def _file_key(path) -> tuple | None:
    """(resolved path, modification time, size): a cache key that changes when the file does;
    None when it cannot be stat'ed."""
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return str(Path(path).resolve()), info.st_mtime_ns, info.st_size


def leading_fids(path, max_fids: int = WATER_CHECK_MAX_FIDS) -> np.ndarray | None:
    """Up to ``max_fids`` FIDs of NIfTI-MRS ``path``, those stored first, as ``(n, points)``
    (the data are read only that far: the dimensions after the spectral one are sliced from
    the fastest-varying outward); read-only. None when the file's data are not complex
    single-voxel samples (the reader names that problem in the run). The discovery checks of
    one acquisition (late start, water reference, measured MM) ask for the same files, so the
    last few reads are kept: each file is read once."""
    key = _file_key(path)
    return None if key is None else _leading_fids_of(key, max_fids)


@functools.lru_cache(maxsize=3)  # the svs, its water reference and its MM
def _leading_fids_of(key: tuple, max_fids: int) -> np.ndarray | None:
    import nibabel as nib

    try:
        image = nib.load(key[0])
        shape = image.shape
        if len(shape) < 4 or shape[:3] != (1, 1, 1) or \
                not np.issubdtype(image.get_data_dtype(), np.complexfloating):
            return None
        index, kept = [0, 0, 0, slice(None)], 1
        for size in shape[4:]:
            take = min(size, max(1, max_fids // kept))
            index.append(slice(0, take))
            kept *= take
        fids = np.asarray(image.dataobj[tuple(index)])
    except Exception:  # nibabel raises many types; the reader reports them in the run
        return None
    fids = np.moveaxis(fids.reshape(shape[3], -1, order="F"), 0, -1)  # rows in stored order
    fids.flags.writeable = False  # shared by the checks through the cache
    return fids


def stated_frequency(path, sidecar: dict | None = None) -> tuple[float, float] | None:
    """(SpectrometerFrequency in MHz, SpecFreqChemShift in ppm) of ``path`` as the run reads
    them: its header merged with ``sidecar`` by the reader's rule (the sidecar wins,
    :func:`~pipeline.io.nifti_mrs.merged_metadata`), so the checks judge the spectrum the run
    fits. None when they cannot be read: the run names why. 1H is assumed (the nucleus is
    checked before)."""
    from .nifti_mrs import merged_metadata, receiver_frequency

    try:
        _, dwell_s = nifti_grid(path)
        meta = merged_metadata(header_extension(path), dict(sidecar or {}), dwell_s, path, [])
        return receiver_frequency(meta, "1H", path)
    except ValueError:  # InputError and the reader's NiftiMrsError
        return None


def _water_peaks_of(path, frequency: tuple[float, float] | None) -> tuple[float, float] | None:
    """(:func:`~pipeline.qc.reference.water_peaks`: water height, water dominance) of a file
    on the axis ``frequency`` (:func:`stated_frequency`) from :func:`leading_fids`; None when
    it cannot be judged (unreadable, a grid that does not cover both windows): the run names
    such problems."""
    from pipeline.qc.reference import water_peaks

    try:
        _, dwell_s = nifti_grid(path)
    except ValueError:
        return None
    fids = leading_fids(path)
    if frequency is None or not 0 < dwell_s < 1 or fids is None or \
            not np.all(np.isfinite(fids)):
        return None
    try:
        return water_peaks(fids, dwell_s, *frequency)
    except ValueError:
        return None


def _echo_times(water) -> list[float]:
    """The echo times (s) of the water reference's EchoTime series (``echo_series``), [] when
    it holds none or its series cannot be read (the run names that problem)."""
    from .echo_series import file_echo_series

    try:
        series = file_echo_series(water)
    except ValueError:
        return []
    return series[1] if series else []


def check_water_reference(svs, water, svs_sidecar: dict | None = None,
                          water_sidecar: dict | None = None) -> None:
    """The water reference is not the metabolite file itself, states physical timings in
    seconds (its EchoTime and RepetitionTime set its relaxation in water scaling: a TE of 80
    read as seconds made every concentration 1e-315 mM, exit 0) and is unsuppressed water (its
    water line dominates far more than in the metabolite data; see
    ``pipeline.qc.reference``); InputError naming the reference otherwise. The sidecars are
    those the run reads the files with: their SpectrometerFrequency and SpecFreqChemShift win
    over the headers' (:func:`stated_frequency`). Reads the headers and at most
    :data:`WATER_CHECK_MAX_FIDS` FIDs of each file (:func:`leading_fids`); files it cannot
    judge are left to the run, which names their problems."""
    from pipeline.qc.reference import water_reference_problem

    if _same_file(svs, water):
        raise InputError(f"{water}: the water reference is the metabolite file {svs} itself; "
                         "point ReferenceSignal at the unsuppressed water acquisition")
    timing = stated_timing_problems(water, header_extension(water), water_sidecar or {},
                                    f"sidecar metadata of {water}", _echo_times(water))
    if timing:
        raise InputError(f"{water}: contradictory or impossible water-reference timing: "
                         + "; ".join(timing))
    data_axis, water_axis = stated_frequency(svs, svs_sidecar), stated_frequency(water,
                                                                                 water_sidecar)
    if data_axis is None or water_axis is None:
        return
    mismatch = frequency_mismatch(data_axis[0], water_axis[0])
    if mismatch:
        raise InputError(f"{water}: water reference {mismatch} {Path(svs).name}: not a reference "
                         "of the same scan; point ReferenceSignal at the right file")
    data_peaks, peaks = _water_peaks_of(svs, data_axis), _water_peaks_of(water, water_axis)
    if data_peaks is None or peaks is None:
        return
    problem = water_reference_problem(peaks[1], data_peaks[1],
                                      peaks[0] / max(data_peaks[0], 1e-300))
    if problem:
        raise InputError(f"{water}: not an unsuppressed water reference for {Path(svs).name}: "
                         f"{problem}")


def check_macromolecule_signal(svs, mm, water=None, svs_sidecar: dict | None = None,
                               mm_sidecar: dict | None = None, check_nulled: bool = True) -> None:
    """A measured macromolecule spectrum (``MacromoleculeSignal`` or an ``acq-mm`` file) is
    neither the metabolite file, nor its water reference, nor of another field strength
    (:func:`mm_field_problem`), nor unsuppressed water (a link set
    to the water scan by mistake would be fitted as the MM: its water line at least
    ``MIN_WATER_HEIGHT_OVER_DATA`` times the data's and dominating its own spectrum, see
    ``qc.reference.looks_like_unsuppressed_water``), nor on a grid whose width misses the MM
    lines (:func:`mm_band_problem`; other grids are resampled), nor, with ``check_nulled``, a
    metabolite spectrum (:func:`metabolite_spectrum_problem`: another scan linked by mistake
    was fitted as the MM, exit 0); InputError naming it otherwise. The sidecars: as in
    :func:`check_water_reference`."""
    from pipeline.qc.reference import looks_like_unsuppressed_water

    for other, what in ((svs, "the metabolite file"), (water, "the water reference")):
        if other is not None and _same_file(mm, other):
            raise InputError(f"{mm}: the measured macromolecule spectrum is {what} {other}; "
                             "point MacromoleculeSignal at the metabolite-nulled acquisition")
    data_axis, mm_axis = stated_frequency(svs, svs_sidecar), stated_frequency(mm, mm_sidecar)
    field = mm_field_problem(data_axis[0], mm_axis[0]) if data_axis and mm_axis else None
    if field:
        raise InputError(f"{mm}: the measured macromolecule spectrum's {field} "
                         f"{Path(svs).name}: measured at another field strength; point "
                         "MacromoleculeSignal at an MM spectrum of this field")
    data_peaks, peaks = _water_peaks_of(svs, data_axis), _water_peaks_of(mm, mm_axis)
    if data_peaks and peaks and looks_like_unsuppressed_water(
            peaks[1], peaks[0] / max(data_peaks[0], 1e-300)):
        raise InputError(f"{mm}: the measured macromolecule spectrum of {Path(svs).name} looks "
                         f"like unsuppressed water (its water line is {peaks[0] / data_peaks[0]:.3g} "
                         "times the data's residual water line); point MacromoleculeSignal at "
                         "the metabolite-nulled, water-suppressed acquisition")
    band = _mm_band_problem_of(mm, mm_axis)
    if band:
        raise InputError(f"{mm}: the measured macromolecule spectrum of {Path(svs).name}: {band} "
                         f"(the data: {_grid_text(svs)}); acquire or export the MM with a "
                         "spectral width that covers them")
    problem = metabolite_spectrum_problem(_singlet_excess_of(mm, mm_axis)) if check_nulled \
        else None
    if problem:
        raise InputError(f"{mm}: the measured macromolecule spectrum of {Path(svs).name} is not "
                         f"metabolite-nulled: {problem}; point MacromoleculeSignal at the "
                         "metabolite-nulled acquisition (or, if this file is one, set "
                         "[macromolecules] check_nulled = false)")


def _grid_text(path) -> str:
    """"N points, dwell D ms, W Hz" of a NIfTI-MRS file from its header."""
    shape, dwell_s = nifti_grid(path)
    return f"{shape[3]} points, dwell {dwell_s * 1e3:g} ms, {1 / dwell_s:g} Hz"


def _mm_band_problem_of(path, frequency: tuple[float, float] | None) -> str | None:
    """:func:`~pipeline.io.mm_likeness.mm_band_problem` of an MM file from its header on the
    axis ``frequency``; None when it cannot be judged (the run names why)."""
    try:
        shape, dwell_s = nifti_grid(path)
    except ValueError:
        return None
    if frequency is None or len(shape) < 4 or not 0 < dwell_s < 1:
        return None
    return mm_band_problem(shape[3], dwell_s, *frequency)


def _singlet_excess_of(path, frequency: tuple[float, float] | None) -> float | None:
    """:func:`~pipeline.io.mm_likeness.mm_singlet_excess` of a file from
    :func:`leading_fids` on the axis ``frequency`` (:func:`stated_frequency`); None when it
    cannot be judged (the run names why)."""
    try:
        _, dwell_s = nifti_grid(path)
    except ValueError:
        return None
    fids = leading_fids(path)
    if frequency is None or fids is None or not 0 < dwell_s < 1:
        return None
    return mm_singlet_excess(fids, dwell_s, *frequency)


def mm_field_problem(data_cf_mhz: float, mm_cf_mhz: float) -> str | None:
    """How a measured MM spectrum's spectrometer frequency contradicts the data's, or None:
    the run rescales the MM spectrum (as a basis entry, ``basis_tools.resample_basis``) by at
    most ``FIELD_MISMATCH_TOLERANCE`` (1 %; J-couplings do not scale with the field) and
    fails beyond it, so an MM of another field is refused here, naming its link, rather than
    in the run's macromolecules step."""
    from .basis_tools import FIELD_MISMATCH_TOLERANCE

    change = abs(mm_cf_mhz / data_cf_mhz - 1)
    if change <= FIELD_MISMATCH_TOLERANCE:
        return None
    return (f"SpectrometerFrequency {mm_cf_mhz:.6g} MHz differs by {100 * change:.1f} % "
            f"(more than {100 * FIELD_MISMATCH_TOLERANCE:g} %) from the {data_cf_mhz:.6g} "
            "MHz of")


LATE_START_MIN_POINTS = 16
"""Peak position (points) of the mean FID magnitude from which an FID counts as starting late.
Every file in ../shared/data peaks within its first 3 points (the 7 T in-vivo set at point 2);
a Bruker digital-filter group delay left in the data is 33-77 points at the usual decimations."""
LATE_START_MAX_FIRST_FRACTION = 0.2
"""...and the first point at most this fraction of that peak."""


def late_start_problem(fids: np.ndarray) -> str | None:
    """Why FIDs ``(n, points)`` start late, or None. An FID's magnitude is largest at or
    within a few points of its start; one that rises for tens of points first holds an
    uncorrected digital-filter group delay (Bruker), which a fit reads as a huge first-order
    phase (probe: tCr = tCho = 0 and a tNAA ADC 0.092 for about 0.12, exit 0)."""
    magnitude = np.abs(np.asarray(fids)).reshape(-1, np.shape(fids)[-1]).mean(axis=0)
    head = magnitude[:max(magnitude.size // 4, 2 * LATE_START_MIN_POINTS)]
    peak = int(np.argmax(head))
    if peak < LATE_START_MIN_POINTS or head[0] > LATE_START_MAX_FIRST_FRACTION * head[peak]:
        return None
    return (f"the FID rises to its largest value at point {peak} (point 0 is "
            f"{head[0] / head[peak]:.1%} of it): the data start late, as with an uncorrected "
            "digital-filter group delay (Bruker GRPDLY); remove the first points (spec2nii "
            "does this when it converts Bruker data) and convert again")


def check_fid_start(path) -> None:
    """InputError naming ``path`` when its FIDs start late (:func:`late_start_problem`),
    judged on at most :data:`WATER_CHECK_MAX_FIDS` FIDs; files it cannot read are left to the
    run."""
    fids = leading_fids(path)
    if fids is None or not np.all(np.isfinite(fids)) or not np.any(fids):
        return
    problem = late_start_problem(fids)
    if problem:
        raise InputError(f"{path}: {problem}")
