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
from pathlib import Path

MAX_SAMPLES = 2 ** 27  # 128 Mi complex samples (2 GiB as complex128): far beyond any SVS file


class InputError(ValueError):
    """An input file cannot be used; the message names the file and the problem."""


def check_readable(path) -> Path:
    """The file (or folder) exists and this process may read it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
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
                     dim_roles: dict | None = None):
    """``pipeline.io.nifti_mrs.read_nifti_mrs`` behind the header checks above; any failure
    is an :class:`InputError` naming ``path``. ``dim_roles``: ``[conversion] dim_roles``."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    nifti_grid(path)
    try:
        return read_nifti_mrs(str(path), sidecar=sidecar, b_value_units=b_value_units,
                              dim_roles=dim_roles)
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise InputError(f"{path}: {' '.join(str(exc).split())}") from None


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


def check_water_grid(svs, water) -> None:
    """The water reference must share the metabolite data's number of points and dwell time
    (eddy-current correction and coil weights use it point by point). Headers that cannot be
    read are left to the reader, which names their problem."""
    try:
        svs_shape, svs_dwell_s = nifti_grid(svs)
        water_shape, water_dwell_s = nifti_grid(water)
    except InputError:
        return
    if len(svs_shape) < 4 or len(water_shape) < 4 or min(water_dwell_s, svs_dwell_s) <= 0:
        return
    if water_shape[3] != svs_shape[3]:
        raise InputError(f"{water}: water reference has {water_shape[3]} spectral points but "
                         f"{Path(svs).name} has {svs_shape[3]}; acquire or export both with "
                         "the same number of points")
    if abs(water_dwell_s - svs_dwell_s) > 1e-6 * svs_dwell_s:
        raise InputError(f"{water}: water reference dwell time {water_dwell_s * 1e3:g} ms "
                         f"({1 / water_dwell_s:g} Hz) differs from {Path(svs).name} "
                         f"({svs_dwell_s * 1e3:g} ms, {1 / svs_dwell_s:g} Hz)")
