"""A MagneticFieldStrength that is not a number ("3 T") in the header, the sidecar or an
inherited JSON of the metabolite file is refused at discovery naming the file, the key and its
unit (tesla). The processing takes the field from SpectrometerFrequency, but the participant
report shows the stated field, discovery checks it against the frequency and the group level
labels and splits distributions by it. Before, it passed discovery unremarked and the group
level left the field out (and the echo time with it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import (_edit_json, _edit_svs, _without, copy_good, demo,  # noqa: E402,F401
                            demo_master)

from bids_app import discovery  # noqa: E402

KEY = "MagneticFieldStrength"
TESLA = "tesla (state it as a plain number in T, e.g. 3 or 7)"


def _discovered(demo: Path) -> dict:
    """label -> error message of the participants discovery refuses (both demo participants
    and the edited one are expected to be found otherwise)."""
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert {"01", "02"} <= set(found), errors
    return errors


def _field_in_header(p: dict, value) -> None:
    """``value`` as the svs header's field (a NIfTI-MRS user entry), none in the sidecar."""
    _edit_json(p["svs_json"], lambda s: _without(s, KEY))
    _edit_svs(p, ext_fn=lambda e: {**e, KEY: {"Value": value, "Description": "field, T"}})


@pytest.mark.parametrize("value", ["3 T", ["3T"], "3", True])
def test_a_sidecar_field_that_is_not_a_number_is_refused_in_tesla(demo, value):
    p = copy_good(demo, "fs")
    _edit_json(p["svs_json"], lambda s: {**s, KEY: value})
    assert _discovered(demo) == {
        "fs": f"{p['svs']}: {p['svs_json']}: {KEY} {value!r} is not a number of {TESLA}"}


def test_a_header_field_that_is_not_a_number_is_refused_naming_the_header(demo):
    p = copy_good(demo, "fs")
    _field_in_header(p, "7 T")
    entry = {"Value": "7 T", "Description": "field, T"}
    assert _discovered(demo) == {
        "fs": f"{p['svs']} (header): {KEY} {entry!r} is not a number of {TESLA}"}


def test_an_inherited_field_that_is_not_a_number_is_refused_naming_the_jsons(demo):
    p = copy_good(demo, "fs")
    _edit_json(p["svs_json"], lambda s: _without(s, KEY))
    inherited = demo / "sub-fs" / "sub-fs_svs.json"
    inherited.write_text(json.dumps({KEY: "3 Tesla"}))
    message = _discovered(demo)["fs"]
    assert message.startswith(f"{p['svs']}: the sidecars of {p['svs'].name} merged by BIDS "
                              f"inheritance (the first wins: {p['svs_json']}, {inherited})")
    assert message.endswith(f": {KEY} '3 Tesla' is not a number of {TESLA}")


@pytest.mark.parametrize("where, value", [("sidecar", [3]), ("sidecar", None),
                                          ("header", 3.0), ("inherited", 3)])
def test_a_field_that_is_a_number_or_null_passes(demo, where, value):
    p = copy_good(demo, "fs")
    if where == "header":
        _field_in_header(p, value)
    elif where == "inherited":
        _edit_json(p["svs_json"], lambda s: _without(s, KEY))
        (demo / "acq-dwpress_svs.json").write_text(json.dumps({KEY: value}))
    else:
        _edit_json(p["svs_json"], lambda s: {**s, KEY: value})
    assert _discovered(demo) == {}


def test_the_sidecar_field_wins_over_a_header_one_that_is_not_a_number(demo):
    """The run and the group level read the merged metadata, the sidecar winning."""
    p = copy_good(demo, "fs")
    _edit_svs(p, ext_fn=lambda e: {**e, KEY: {"Value": "3 T", "Description": "field, T"}})
    assert _discovered(demo) == {}
