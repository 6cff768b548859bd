"""The one atomic writer, JSON text, TSV form and number parser (pipeline/io/files.py)."""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from pipeline.io import files


def test_to_float_reads_numbers_and_missing_and_names_bad_text():
    assert files.to_float("1.5") == 1.5 and files.to_float(2) == 2.0
    assert files.to_float("-1e-3") == -0.001
    for missing in ("n/a", "", None, "nan", " n/a "):
        assert np.isnan(files.to_float(missing))
    with pytest.raises(ValueError, match=r"not a number: 'abc'"):
        files.to_float("abc")


def test_tsv_round_trip_keeps_columns_and_writes_n_a():
    rows = [{"a": 1, "b": float("nan"), "c": np.float32(0.5), "d": True, "extra": "x\ty"}]
    text = files.tsv_text(rows, ["a", "b", "c", "d"])
    assert text == "a\tb\tc\td\textra\n1\tn/a\t0.5\t1\tx y\n"


def test_tsv_writes_non_finite_numbers_as_n_a():
    # the %CRLB of a zero amplitude is infinite: the TSVs say n/a (as the README promises and
    # the JSON outputs write null), never "inf" that spreadsheet readers take as text
    text = files.tsv_text([{"crlb_percent": float("inf"), "x": np.float64(-np.inf),
                            "y": np.float32("nan"), "z": 2.5}], ["crlb_percent", "x", "y", "z"])
    assert text.splitlines()[1].split("\t") == ["n/a", "n/a", "n/a", "2.5"]


def test_json_text_turns_numpy_values_into_plain_json():
    content = {"b": np.arange(3), "a": np.float64(0.25), "p": Path("/x"), "t": (1, 2),
               "i": np.int64(7), "flag": np.bool_(True)}
    assert json.loads(files.json_text(content)) == {"a": 0.25, "b": [0, 1, 2], "flag": True,
                                                    "i": 7, "p": "/x", "t": [1, 2]}
    assert files.json_text({"b": 1, "a": 2}).startswith('{\n  "a": 2')  # sorted keys


def test_atomic_write_leaves_no_temporary_and_ordinary_permissions(tmp_path):
    path = files.atomic_write_text(tmp_path / "sub" / "x.tsv", "hello\n")
    assert path.read_text() == "hello\n"
    assert [p.name for p in path.parent.iterdir()] == ["x.tsv"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = files.atomic_write_text(tmp_path / "x.json", "old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_copy_if_changed_leaves_identical_files_untouched(tmp_path):
    src = files.atomic_write_text(tmp_path / "a.txt", "same")
    assert files.copy_if_changed(src, tmp_path / "out" / "b.txt") is True
    before = (tmp_path / "out" / "b.txt").stat().st_mtime_ns
    assert files.copy_if_changed(src, tmp_path / "out" / "b.txt") is False
    assert (tmp_path / "out" / "b.txt").stat().st_mtime_ns == before
