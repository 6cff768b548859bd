"""The one JSON conversion behind every file the project writes: exact and lossless."""

import json
from pathlib import Path

import numpy as np

from pipeline.io.json_values import to_json_value, write_json


def test_numpy_values_become_exact_plain_json():
    value = {1: np.float64(0.1), "a": (np.int16(3), np.array([[1.5, 2.0]])),
             "z": np.complex128(1 - 2j), "p": Path("/x/y.json"), "s": "text", "n": None,
             "c": [0.25 + 4j]}
    plain = to_json_value(value)
    assert plain == {"1": 0.1, "a": [3, [[1.5, 2.0]]], "z": [1.0, -2.0], "p": "/x/y.json",
                     "s": "text", "n": None, "c": [[0.25, 4.0]]}
    assert type(plain["1"]) is float and type(plain["a"][0]) is int
    assert json.loads(json.dumps(plain)) == plain  # round trip, bit-exact floats


def test_float_precision_is_kept():
    x = np.nextafter(np.float64(1.0), 2.0)
    assert json.loads(json.dumps(to_json_value([x])))[0] == x


def test_write_json_creates_the_folder_and_reads_back(tmp_path):
    path = write_json(tmp_path / "a" / "b" / "sidecar.json", {"EchoTime": np.float32(0.5),
                                                              "b": np.arange(3)})
    text = path.read_text()
    assert path == tmp_path / "a" / "b" / "sidecar.json" and text.endswith("}\n")
    assert json.loads(text) == {"EchoTime": 0.5, "b": [0, 1, 2]}
    assert text.splitlines()[1] == '  "EchoTime": 0.5,'  # indented, one key a line
