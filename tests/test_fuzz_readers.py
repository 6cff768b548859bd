"""Fuzzing the input readers (issue 8): whatever the bytes, header, sidecar or basis file
holds, a reader returns a valid object or raises its own error type (``NiftiMrsError``,
``BasisFormatError``) whose message names the file; any other exception (a traceback for the
user) fails the test. The readers of ``pipeline.io`` are called directly, not through the
safety net of ``bids_app.input_checks``, so a crash is found where it arises.

Inputs are mutations of small valid files: corrupted/truncated bytes, header extensions and
sidecars with random JSON values in the keys the reader looks at, LCModel and JSON basis files
with random tokens. Bounded: at most 100 examples per test, no deadline.
"""

from __future__ import annotations

import gzip
import json
import re
import string
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.acquisition import Acquisition
from pipeline.basis import Basis
from pipeline.io.basis_formats import (BasisFormatError, read_basis, read_json_basis,
                                       write_json_basis, write_lcmodel_basis)
from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs, write_nifti_mrs

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
N_POINTS = 64

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)

HEADER_KEYS = ["SpectrometerFrequency", "ResonantNucleus", "EchoTime", "dim_5", "dim_6",
               "dim_5_header", "dim_6_header", "dim_6_info", "DiffusionBValueUnits",
               "SpecFreqChemShift", "ProcessingApplied"]
SIDECAR_KEYS = ["SpectrometerFrequency", "ResonantNucleus", "EchoTime", "SpectralWidth",
                "DiffusionBValueUnits", "BValueUnits", "MixingTime", "ReferenceSignal"]


def _acquisition() -> Acquisition:
    t = np.arange(N_POINTS) * 5e-4
    fid = np.exp(2j * np.pi * 20 * t - t / 0.05)
    fids = np.tile(fid, (2, 3, 1, 1))
    return Acquisition(fids=fids, dwell_s=5e-4, cf_mhz=123.2,
                       b_values_s_mm2=np.array([0.0, 1000.0]),
                       directions=np.full((2, 3), np.nan), nucleus="1H", ref_ppm=4.65,
                       metadata={"EchoTime": 0.03}, source="fuzz")


@pytest.fixture(scope="module")
def valid_nifti(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "sub-01_svs.nii.gz"
    write_nifti_mrs(_acquisition(), path)
    return path


def _assert_clear(call, path: Path, error: type):
    """``call()`` succeeds or raises ``error`` naming ``path``; anything else propagates."""
    try:
        call()
    except error as exc:
        assert str(path) in str(exc), f"{type(exc).__name__}: {exc}"


def _rewrite(valid: Path, dest: Path, ext: dict, data=None) -> None:
    img = nib.load(str(valid))
    data = np.asarray(img.dataobj) if data is None else data
    new = nib.Nifti2Image(data, img.affine)
    new.header["pixdim"][4] = img.header["pixdim"][4]
    new.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    nib.save(new, str(dest))


def _extension(path: Path) -> dict:
    return json.loads(nib.load(str(path)).header.extensions[0].get_content())


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       cut=st.one_of(st.none(), st.integers(1, 4000)))
def test_nifti_bytes(valid_nifti, tmp_path, flips, cut):
    """Corrupted and truncated file bytes (inside the gzip stream and of the gzip itself)."""
    raw = bytearray(gzip.decompress(valid_nifti.read_bytes()))
    for pos, value in flips:
        raw[pos % len(raw)] = value
    packed = gzip.compress(bytes(raw))
    path = tmp_path / "sub-01_svs.nii.gz"
    path.write_bytes(packed[:cut] if cut else packed)
    _assert_clear(lambda: read_nifti_mrs(path), path, NiftiMrsError)


@FUZZ
@given(edits=st.dictionaries(st.sampled_from(HEADER_KEYS), json_value, min_size=1, max_size=4),
       drop=st.lists(st.sampled_from(HEADER_KEYS), max_size=3))
def test_nifti_header_extension(valid_nifti, tmp_path, edits, drop):
    ext = {k: v for k, v in _extension(valid_nifti).items() if k not in drop}
    ext.update(edits)
    path = tmp_path / "sub-01_svs.nii.gz"
    _rewrite(valid_nifti, path, ext)
    _assert_clear(lambda: read_nifti_mrs(path), path, NiftiMrsError)


@FUZZ
@given(b_values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                   st.integers(-10, 10**5), st.text(max_size=3), st.none()),
                         max_size=4),
       directions=st.lists(st.one_of(st.none(), st.lists(st.floats(-2, 2), max_size=4),
                                     st.text(max_size=3)), max_size=4),
       shape=st.sampled_from([(1, 1, 1, N_POINTS), (1, 1, 1, N_POINTS, 3),
                              (1, 1, 1, N_POINTS, 3, 2), (1, 1, 1, N_POINTS, 3, 2, 1),
                              (1, 1, 1, N_POINTS, 1, 1, 2)]))
def test_nifti_diffusion_dimension(valid_nifti, tmp_path, b_values, directions, shape):
    ext = _extension(valid_nifti)
    ext["dim_6_header"] = {"b_value": {"Value": b_values, "Description": "b"},
                           "direction": {"Value": directions}}
    data = np.ones(shape, dtype=np.complex64)
    path = tmp_path / "sub-01_svs.nii.gz"
    _rewrite(valid_nifti, path, ext, data)
    _assert_clear(lambda: read_nifti_mrs(path), path, NiftiMrsError)


@FUZZ
@given(sidecar=st.dictionaries(st.sampled_from(SIDECAR_KEYS), json_value, max_size=5),
       units=st.sampled_from(["auto", "s/mm2", "ms/um2"]))
def test_sidecar_values(valid_nifti, sidecar, units):
    _assert_clear(lambda: read_nifti_mrs(valid_nifti, sidecar=sidecar, b_value_units=units),
                  valid_nifti, NiftiMrsError)


def _basis() -> Basis:
    t = np.arange(N_POINTS) * 2.5e-4
    fids = np.stack([np.exp(-2j * np.pi * (d - 4.65) * 123.2 * t - t / 0.1)
                     for d in (2.01, 3.03, 3.2)])
    return Basis(["NAA", "Cr", "Cho"], fids, 2.5e-4, 123.2, 4.65, "1H", {})


@pytest.fixture(scope="module")
def basis_files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("basis")
    files = {"lcmodel": folder / "fuzz.BASIS", "json": folder / "fuzz.json"}
    write_lcmodel_basis(_basis(), files["lcmodel"])
    write_json_basis(_basis(), files["json"])
    return {k: v.read_text() for k, v in files.items()}


TOKENS = st.one_of(st.text(alphabet=string.printable, max_size=6),
                   st.sampled_from(["$NMID", "$END", "/", "$BASIS1", "$SYSTEM", "&", "=", "'",
                                    "HZPPPM=", "NDATAB=", "BADELT=", "1.E+", "nan", "-inf",
                                    "0", "-1", "\n"]))


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1), TOKENS, st.integers(0, 12)), min_size=1,
                      max_size=5))
def test_lcmodel_basis_text(basis_files, tmp_path, edits):
    """Random tokens spliced into (and text cut out of) a valid LCModel .BASIS file."""
    text = basis_files["lcmodel"]
    for where, token, cut in edits:
        i = int(where * len(text))
        text = text[:i] + token + text[i + cut:]
    path = tmp_path / "fuzz.BASIS"
    path.write_text(text)
    _assert_clear(lambda: read_basis(path), path, BasisFormatError)


RAW_TEXT = (" $SEQPAR\n HZPPPM = 123.2, ECHOT = 30.0\n $END\n $NMID\n ID = 'fuzz', "
            "FMTDAT = '(2E16.6)', VOLUME = 1.0, TRAMP = 1.0\n $END\n"
            + "".join(f"{np.cos(k / 3):16.6E}{np.sin(k / 3):16.6E}\n" for k in range(16)))


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1), TOKENS, st.integers(0, 12)), min_size=1,
                      max_size=5))
def test_lcmodel_raw_text(tmp_path, edits):
    """Random tokens spliced into a valid LCModel .RAW file (dwell time given)."""
    text = RAW_TEXT
    for where, token, cut in edits:
        i = int(where * len(text))
        text = text[:i] + token + text[i + cut:]
    path = tmp_path / "fuzz.RAW"
    path.write_text(text)
    _assert_clear(lambda: read_basis(path, dwell_s=2.5e-4), path, BasisFormatError)


JMRUI_TEXT = ("jMRUI Data Textfile\n\nFilename: fuzz.txt\n\nPointsInDataset: 16\n"
              "DatasetsInFile: 1\nSamplingInterval: 2.5E-1\nTransmitterFrequency: 1.232E8\n"
              "\nSignal and FFT\nsig(real)\tsig(imag)\nSignal 1 out of 1 in file\n"
              + "".join(f"{np.cos(k / 3) * np.exp(-k / 8):.6E}\t{np.sin(k / 3):.6E}\n"
                        for k in range(16)))


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1), TOKENS | st.sampled_from(
    ["SamplingInterval: ", "TransmitterFrequency: ", "Signal 2 out of 2 in file\n", "\t"]),
    st.integers(0, 12)), min_size=1, max_size=5))
def test_jmrui_text(tmp_path, edits):
    """Random tokens spliced into a valid jMRUI text export."""
    text = JMRUI_TEXT
    for where, token, cut in edits:
        i = int(where * len(text))
        text = text[:i] + token + text[i + cut:]
    path = tmp_path / "fuzz.txt"
    path.write_text(text)
    _assert_clear(lambda: read_basis(path), path, BasisFormatError)


@FUZZ
@given(key=st.sampled_from(["BADELT", "NDATAB", "HZPPPM", "ISHIFT", "METABO", "ID"]),
       value=st.one_of(st.sampled_from(["nan", "inf", "-1", "0", "T", "1.5", "'x'", "'NAA'",
                                        "1E999", "2*3", "''"]),
                       st.text(alphabet=string.printable, max_size=6)))
def test_lcmodel_basis_values(basis_files, tmp_path, key, value):
    """One header value of a valid LCModel .BASIS replaced by a wrong one."""
    text = re.sub(rf"(\b{key} = )[^,\n]*", lambda m: m.group(1) + value,
                  basis_files["lcmodel"])
    path = tmp_path / "fuzz.BASIS"
    path.write_text(text)
    _assert_clear(lambda: read_basis(path), path, BasisFormatError)


@FUZZ
@given(edits=st.dictionaries(st.sampled_from(["format", "names", "dwell_s", "cf_mhz", "ref_ppm",
                                              "nucleus", "fids_real", "fids_imag", "n_points"]),
                             json_value, min_size=1, max_size=3),
       whole=st.one_of(st.none(), json_value))
def test_json_basis(basis_files, tmp_path, edits, whole):
    doc = json.loads(basis_files["json"])
    doc.update(edits)
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(doc if whole is None else whole))
    _assert_clear(lambda: read_json_basis(path), path, BasisFormatError)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200),
                     json_value.map(lambda v: json.dumps(v).encode()),
                     st.text(max_size=60).map(str.encode)))
def test_sidecar_files(tmp_path, raw):
    """Any bytes in a sidecar file: discovery says why it cannot be used, or reads it."""
    from bids_app.discovery import json_problem

    path = tmp_path / "sub-01_svs.json"
    path.write_bytes(raw)
    problem = json_problem(path)
    try:
        value = json.loads(raw)
    except ValueError:
        assert problem.startswith("not valid JSON")
        return
    if isinstance(value, dict):
        assert problem is None
    else:  # a sidecar must be an object of key/value pairs (a JSON array aborted runs once)
        assert "not an object of key/value pairs" in problem


def test_undefined_unit_code_is_read_as_an_unknown_unit(valid_nifti, tmp_path):
    """A corrupted xyzt_units (NIfTI-2 header byte 500; found by the byte fuzzing above) made
    nibabel raise a bare KeyError from the reader. The unit only words a hint: the file reads
    as the valid one, for spatial bits (4: no such spatial code) and time bits (56) alike."""
    raw = bytearray(gzip.decompress(valid_nifti.read_bytes()))
    expected = read_nifti_mrs(valid_nifti)
    for code in (4, 13, 56):
        raw[500] = code
        path = tmp_path / f"units{code}_svs.nii.gz"
        path.write_bytes(gzip.compress(bytes(raw)))
        got = read_nifti_mrs(path)
        np.testing.assert_array_equal(got.fids, expected.fids)
        assert got.dwell_s == expected.dwell_s
