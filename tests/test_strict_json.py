"""Every JSON the app writes is strict JSON (fresh-eyes trial, item 4): a non-finite number
(``residual_water_ratio`` was ``Infinity`` in one ``_qc.json``) is written as null, as the TSVs
write n/a, through the one helper all JSON writers use (``pipeline.io.json_values.json_dumps``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.io.json_values import finite_json_value, json_dumps

RESULT = {"summary": {"residual_water_ratio": float("inf"), "snr": np.float64(12.5),
                      "linewidth_hz": np.float32("nan")},
          "per_condition": [{"fit_residual": -np.inf, "b_value": np.int64(3000)}],
          "array": np.array([1.0, np.nan, np.inf]), "complex": complex(np.inf, 2.0)}
EXPECTED = {"summary": {"residual_water_ratio": None, "snr": 12.5, "linewidth_hz": None},
            "per_condition": [{"fit_residual": None, "b_value": 3000}],
            "array": [1.0, None, None], "complex": [None, 2.0]}


def strict_loads(text: str):
    """``json.loads`` refusing NaN/Infinity/-Infinity, as strict parsers (jq, browsers) do."""
    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null():
    assert finite_json_value(RESULT) == EXPECTED
    assert strict_loads(json_dumps(RESULT)) == EXPECTED
    with pytest.raises(ValueError, match="Out of range float"):  # nothing slips through
        json_dumps({"odd": object()}, default=lambda _: float("nan"))


def test_every_json_writer_writes_strict_json(tmp_path, monkeypatch):
    from pipeline.io import files, json_values
    from workflows.fileio import write_json_file

    monkeypatch.chdir(tmp_path)  # workflow nodes write into their working directory
    written = [write_json_file("qc.json", RESULT), files.write_json(tmp_path / "a.json", RESULT),
               json_values.write_json(tmp_path / "b.json", RESULT)]
    for path in written:
        assert strict_loads(open(path).read()) == EXPECTED, path


def test_nifti_mrs_header_and_basis_json_are_strict(tmp_path):
    from pipeline.acquisition import Acquisition
    from pipeline.basis import Basis
    from pipeline.io.basis_formats import write_json_basis
    from pipeline.io.input_checks import header_extension
    from pipeline.io.nifti_mrs import write_nifti_mrs

    fids = np.exp(-np.arange(64) / 10.0)[None, None, None, :] * (1 + 0j)
    acq = Acquisition(fids, 2.5e-4, 123.2, [0.0], np.full((1, 3), np.nan),
                      metadata={"EchoTime": 0.03, "QcScore": float("inf")})
    path = write_nifti_mrs(acq, tmp_path / "x.nii.gz")
    header = header_extension(path)
    assert header["QcScore"]["Value"] is None and header["EchoTime"] == 0.03
    basis = Basis(["NAA"], fids[0, 0], 2.5e-4, 123.2, provenance={"scale": float("nan")})
    write_json_basis(basis, tmp_path / "basis.json")
    doc = strict_loads((tmp_path / "basis.json").read_text())
    assert doc["provenance"]["scale"] is None and doc["fids_real"][0][0] == 1.0
