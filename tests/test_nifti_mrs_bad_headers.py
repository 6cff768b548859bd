"""Corrupt NIfTI headers and wrongly typed header keys (issue 8): ``read_nifti_mrs`` raises
its own ``NiftiMrsError`` naming the file, before any huge allocation, and never a
MemoryError, OverflowError, nibabel HeaderDataError or TypeError."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import (DEFLATE_MAX_RATIO, NiftiMrsError, read_nifti_mrs,
                                   write_nifti_mrs)

DIM_OFFSET = 16  # NIfTI-2: dim[0..7] as int64 from byte 16


def _acquisition() -> Acquisition:
    t = np.arange(64) * 5e-4
    fids = np.tile(np.exp(2j * np.pi * 20 * t - t / 0.05), (2, 3, 1, 1))
    return Acquisition(fids=fids, dwell_s=5e-4, cf_mhz=123.2,
                       b_values_s_mm2=np.array([0.0, 1000.0]), directions=np.full((2, 3), np.nan),
                       nucleus="1H", ref_ppm=4.65, metadata={"EchoTime": 0.03}, source="test")


@pytest.fixture
def nii(tmp_path) -> Path:
    return write_nifti_mrs(_acquisition(), tmp_path / "sub-01_svs.nii")


def _with_dim(raw: bytes, index: int, value: int) -> bytes:
    out = bytearray(raw)
    start = DIM_OFFSET + 8 * index
    out[start:start + 8] = struct.pack("<q", value)
    return bytes(out)


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(NiftiMrsError) as info:
        read_nifti_mrs(path, **kwargs)
    assert str(path) in str(info.value)
    return str(info.value)


def test_fixture_layout_is_nifti2_with_expected_dims(nii):
    raw = nii.read_bytes()
    assert struct.unpack("<i", raw[:4]) == (540,)
    assert struct.unpack("<8q", raw[DIM_OFFSET:DIM_OFFSET + 64])[:7] == (6, 1, 1, 1, 64, 3, 2)
    assert read_nifti_mrs(nii).fids.shape == (2, 3, 1, 64)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_header_announcing_a_huge_array_is_refused_before_reading(nii, tmp_path, suffix):
    raw = _with_dim(nii.read_bytes(), 4, 2 ** 40)  # 2^40 points x 6 x 8 bytes
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    header = nib.load(str(nii)).header
    announced = header.get_data_offset() + 2 ** 40 * 6 * header.get_data_dtype().itemsize
    message = _error(path)
    assert f"the header announces {announced} bytes" in message


def test_bound_for_compressed_files_is_the_deflate_limit(nii, tmp_path):
    """A gzip file may hold up to 1032x its size: a header within that bound is read as far
    as the (truncated) data allow, still a NiftiMrsError; one beyond it is refused early."""
    bytes_per_point = 6 * nib.load(str(nii)).header.get_data_dtype().itemsize
    bound_points = len(gzip.compress(nii.read_bytes())) * DEFLATE_MAX_RATIO // bytes_per_point
    within = tmp_path / "within.nii.gz"
    within.write_bytes(gzip.compress(_with_dim(nii.read_bytes(), 4, bound_points // 2)))
    assert "not a readable NIfTI file" in _error(within)
    beyond = tmp_path / "beyond.nii.gz"
    beyond.write_bytes(gzip.compress(_with_dim(nii.read_bytes(), 4, 2 * bound_points)))
    assert "the header announces" in _error(beyond)


def test_header_nibabel_rejects_becomes_niftimrserror(nii, tmp_path):
    path = tmp_path / "bad.nii"
    path.write_bytes(_with_dim(nii.read_bytes(), 0, 9))  # dim[0] > 7
    assert "not a readable NIfTI file" in _error(path)


def _rewrite(nii: Path, tmp_path: Path, **edits) -> Path:
    img = nib.load(str(nii))
    ext = json.loads(img.header.extensions[0].get_content())
    ext.update(edits)
    new = nib.Nifti2Image(np.asarray(img.dataobj), img.affine)
    new.header["pixdim"][4] = img.header["pixdim"][4]
    new.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    path = tmp_path / "edited.nii"
    nib.save(new, str(path))
    return path


@pytest.mark.parametrize("value", [None, "high", [], {"a": 1}])
def test_spec_freq_chem_shift_of_wrong_type(nii, tmp_path, value):
    assert "SpecFreqChemShift" in _error(_rewrite(nii, tmp_path, SpecFreqChemShift=value))


def test_spec_freq_chem_shift_number_is_the_reference(nii, tmp_path):
    assert read_nifti_mrs(_rewrite(nii, tmp_path, SpecFreqChemShift=4.7)).ref_ppm == 4.7


@pytest.mark.parametrize("key, value", [("EchoTime", "short"), ("EchoTime", -0.03),
                                        ("SpectrometerFrequency", [0.0]),
                                        ("SpectrometerFrequency", None)])
def test_required_numbers_of_wrong_type_or_range(nii, tmp_path, key, value):
    assert key in _error(_rewrite(nii, tmp_path, **{key: value}))


def test_start_increment_of_non_numbers(nii, tmp_path):
    header = {"b_value": {"Value": {"start": "0", "increment": None}}}
    message = _error(_rewrite(nii, tmp_path, dim_6_header=header))
    assert "start/increment" in message


def test_stored_warnings_as_a_lone_text_are_kept(nii, tmp_path):
    acq = read_nifti_mrs(_rewrite(nii, tmp_path, ConversionWarnings={"Value": "one warning"}))
    assert acq.metadata["warnings"] == ["one warning"]
