"""Malformed basis files (issue 8): the JSON and LCModel readers raise ``BasisFormatError``
naming the file and the problem, never AttributeError/TypeError or an unnamed ValueError."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.io.basis_formats import (BasisFormatError, read_basis, read_json_basis,
                                       write_json_basis, write_lcmodel_basis)


def _basis() -> Basis:
    t = np.arange(256) * 2.5e-4
    fids = np.stack([np.exp(-2j * np.pi * (d - 4.65) * 123.2 * t - t / 0.1)
                     for d in (2.008, 3.027)])
    return Basis(["NAA", "Cr"], fids, 2.5e-4, 123.2, 4.65, "1H", {})


@pytest.fixture
def json_doc(tmp_path) -> dict:
    path = tmp_path / "basis.json"
    write_json_basis(_basis(), path)
    return json.loads(path.read_text())


def _json_error(tmp_path: Path, doc) -> str:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(BasisFormatError) as info:
        read_json_basis(path)
    assert str(path) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("doc", [[1, 2], "text", None, 3.5])
def test_json_document_not_an_object(tmp_path, doc):
    assert "not a dmrs-bids-basis JSON file" in _json_error(tmp_path, doc)


@pytest.mark.parametrize("names, problem", [
    (None, "non-empty list of texts"), ([["NAA"], "Cr"], "non-empty list of texts"),
    ([], "non-empty list of texts"), (["NAA", "NAA"], "not unique"),
    (["NAA", "Cr", "Cho"], "expected (3 names"),
])
def test_json_names(tmp_path, json_doc, names, problem):
    json_doc["names"] = names
    assert problem in _json_error(tmp_path, json_doc)


@pytest.mark.parametrize("key, value, problem", [
    ("fids_real", {"a": 1}, "not a table of numbers"),
    ("fids_imag", [[1.0, 2.0], [3.0]], "not a table of numbers"),
    ("fids_real", [], "has shape (0,)"),
    ("fids_imag", [[0.0] * 255, [0.0] * 255], "differ in shape"),
    ("fids_real", [[float("nan")] * 256, [0.0] * 256], "non-finite"),
    ("n_points", 512, "n_points 512 but the FIDs have 256 points"),
    ("dwell_s", None, "dwell_s None is not a positive finite number"),
    ("cf_mhz", -123.2, "cf_mhz -123.2 is not a positive finite number"),
    ("ref_ppm", "4.65", "ref_ppm '4.65' is not a finite number"),
    ("nucleus", 1, "nucleus must be a text"),
])
def test_json_values(tmp_path, json_doc, key, value, problem):
    json_doc[key] = value
    assert problem in _json_error(tmp_path, json_doc)


def test_json_round_trip_still_bit_exact(tmp_path):
    path = tmp_path / "basis.json"
    write_json_basis(_basis(), path)
    back = read_json_basis(path)
    assert back.names == ["NAA", "Cr"] and np.array_equal(back.fids, _basis().fids)


@pytest.fixture
def lcmodel_text(tmp_path) -> str:
    path = tmp_path / "basis.BASIS"
    write_lcmodel_basis(_basis(), path)
    return path.read_text()


def _lcmodel_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.BASIS"
    path.write_text(text)
    with pytest.raises(BasisFormatError) as info:
        read_basis(path)
    assert str(path) in str(info.value)
    return str(info.value)


def _set(text: str, key: str, value: str) -> str:
    return re.sub(rf"(\b{key} = )[^,\n]*", lambda m: m.group(1) + value, text)


@pytest.mark.parametrize("key, value, problem", [
    ("BADELT", "nan", "BADELT = nan is not a positive number"),
    ("BADELT", "T", "BADELT or HZPPPM missing or not a positive number"),
    ("HZPPPM", "'x'", "BADELT or HZPPPM missing or not a positive number"),
    ("ISHIFT", "'x'", "ISHIFT = 'x', not a whole number"),
    ("ISHIFT", "1.5", "ISHIFT = 1.5, not a whole number"),
    ("METABO", "'NAA'", "two entries are named 'NAA'"),
    ("BADELT", "1.0", "cannot place the basis in the project convention"),
])
def test_lcmodel_header_values(tmp_path, lcmodel_text, key, value, problem):
    assert problem in _lcmodel_error(tmp_path, _set(lcmodel_text, key, value))


def test_lcmodel_entry_without_data(tmp_path, lcmodel_text):
    head, _, _ = lcmodel_text.partition(" $NMUSED\n FILRAW = 'Cr'")
    text = head + " $BASIS\n ID = 'Cr',\n METABO = 'Cr'\n $END\n"
    assert "entry 'Cr' has no data" in _lcmodel_error(tmp_path, _set(text, "NDATAB", "'?'"))


def test_raw_file_with_text_frequency_names_the_file(tmp_path):
    path = tmp_path / "x.RAW"
    path.write_text(" $SEQPAR\n HZPPPM = 'high'\n $END\n $NMID\n ID = 'x'\n $END\n"
                    + "1.0 0.0\n0.5 0.1\n" * 8)
    with pytest.raises(BasisFormatError, match=re.escape(f"{path}: HZPPPM 'high'")):
        read_basis(path, dwell_s=2.5e-4)


def test_raw_folder_with_clashing_stems_names_the_folder(tmp_path):
    body = " $NMID\n ID = 'x'\n $END\n" + "1.0 0.0\n0.5 0.1\n" * 8
    (tmp_path / "NAA.RAW").write_text(body)
    (tmp_path / "NAA.raw").write_text(body)
    with pytest.raises(BasisFormatError, match=re.escape(f"{tmp_path}: entry names")):
        read_basis(tmp_path, dwell_s=2.5e-4, cf_mhz=123.2)


def _jmrui(signals: list[list[complex]]) -> str:
    text = ("jMRUI Data Textfile\n\nSamplingInterval: 2.5E-1\nTransmitterFrequency: 1.232E8\n"
            f"DatasetsInFile: {len(signals)}\n\nsig(real)\tsig(imag)\n")
    for i, signal in enumerate(signals):
        text += f"Signal {i + 1} out of {len(signals)} in file\n"
        text += "".join(f"{z.real:.6E}\t{z.imag:.6E}\n" for z in signal)
    return text


def test_jmrui_file_with_signals_of_different_lengths(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text(_jmrui([[1, 0.5j, 0.25], [1, 0.5j]]))
    with pytest.raises(BasisFormatError, match=re.escape(f"{path}: entries have different")):
        read_basis(path)


def test_jmrui_fortran_d_exponents_read_as_e(tmp_path):
    """jMRUI exports from Fortran tools may write 1.0D+00; the values are the same numbers."""
    from pipeline.io.basis_formats import read_jmrui_text

    text = _jmrui([[1.5 + 0.25j, -0.125 + 2j]])
    path_e, path_d = tmp_path / "e.txt", tmp_path / "d.txt"
    path_e.write_text(text)
    path_d.write_text(text.replace("E+", "D+").replace("E-", "D-"))
    signals_e, _ = read_jmrui_text(path_e)
    signals_d, _ = read_jmrui_text(path_d)
    assert np.array_equal(signals_d[0], signals_e[0])
    assert np.array_equal(signals_e[0], [1.5 + 0.25j, -0.125 + 2j])
