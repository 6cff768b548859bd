"""A ``ReferenceSignal`` or ``MacromoleculeSignal`` stated in an inherited JSON (BIDS
inheritance: a subject- or dataset-level ``*_svs.json``) is followed as the file's own would
be, and a message about an invalid one names the JSON that states it. Before, a link that was
not one string was blamed on the file's own sidecar (which may not even exist), a dangling
link named no JSON, and a ``bids:<dataset>:`` link to an undefined dataset was called a
ReferenceSignal even when it was the MacromoleculeSignal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_json, _without, copy_good, demo, demo_master  # noqa: E402,F401

from bids_app import discovery  # noqa: E402
from bids_app.sidecar_metadata import stating_json  # noqa: E402


def _link_inherited(demo: Path, label: str, key: str, value, where: str) -> dict:
    """Participant ``label`` whose svs states ``key`` = ``value`` only in the inherited JSON
    ``where`` (relative to the dataset); its own sidecar has no ReferenceSignal."""
    p = copy_good(demo, label)
    _edit_json(p["svs_json"], lambda s: _without(s, "ReferenceSignal"))
    inherited = demo / where
    inherited.write_text(json.dumps({key: value}))
    return {**p, "inherited": inherited}


def _only_error(demo: Path, label: str) -> str:
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"] and sorted(errors) == [label], errors
    return errors[label]


def test_an_inherited_reference_signal_is_followed(demo):
    """The reference renamed (``acq-water``), so only the inherited link can find it."""
    water = demo / "sub-inh" / "mrs" / "sub-inh_acq-water_mrsref.nii.gz"
    p = _link_inherited(demo, "inh", "ReferenceSignal", "bids::sub-inh/mrs/" + water.name,
                        "sub-inh/sub-inh_acq-dwpress_svs.json")
    p["ref"].rename(water)
    p["ref_json"].rename(water.with_name("sub-inh_acq-water_mrsref.json"))
    (acquisition,) = discovery.discover(demo, ["inh"])["inh"]
    assert acquisition.water == water


@pytest.mark.parametrize("key", ["ReferenceSignal", "MacromoleculeSignal"])
def test_a_dangling_inherited_link_names_the_json_that_states_it(demo, key):
    uri = "bids::sub-dang/mrs/sub-dang_acq-none_svs.nii.gz"
    p = _link_inherited(demo, "dang", key, uri, "sub-dang/sub-dang_acq-dwpress_svs.json")
    assert _only_error(demo, "dang") == (
        f"{p['svs']}: {key} {uri!r} in {p['inherited']} points to "
        f"{demo / 'sub-dang/mrs/sub-dang_acq-none_svs.nii.gz'}, which does not exist")


@pytest.mark.parametrize("value, kind", [(5, "number"), (["bids::a", "bids::b"], "list")])
def test_an_inherited_link_that_is_not_one_string_names_that_json(demo, value, kind):
    p = _link_inherited(demo, "many", "MacromoleculeSignal", value,
                        "sub-many/sub-many_acq-dwpress_svs.json")
    assert _only_error(demo, "many") == (
        f"{p['inherited']}: MacromoleculeSignal must be one BIDS URI string, got a {kind} "
        f"({value!r})")


def test_an_undefined_linked_dataset_names_the_json_and_the_key(demo):
    p = _link_inherited(demo, "ds", "MacromoleculeSignal", "bids:other:sub-ds/mm_svs.nii.gz",
                        "sub-ds/sub-ds_acq-dwpress_svs.json")
    assert _only_error(demo, "ds") == (
        f"{p['inherited']}: MacromoleculeSignal 'bids:other:sub-ds/mm_svs.nii.gz' names dataset "
        "'other', which DatasetLinks of dataset_description.json does not define")


def test_the_json_named_is_the_nearest_that_states_the_key(demo):
    """The value used is the nearest JSON's: the own sidecar's over a subject-level one, a
    subject-level one's over the dataset-level one; without the key anywhere, the own sidecar."""
    p = copy_good(demo, "near")
    subject = demo / "sub-near" / "sub-near_acq-dwpress_svs.json"
    subject.write_text(json.dumps({"ReferenceSignal": "bids::x", "Subject": 1}))
    top = demo / "acq-dwpress_svs.json"
    top.write_text(json.dumps({"ReferenceSignal": "bids::y", "MacromoleculeSignal": "bids::z"}))
    layout = discovery.load_layout(demo)
    assert stating_json(layout, p["svs"], "ReferenceSignal") == p["svs_json"]
    assert stating_json(layout, p["svs"], "Subject") == subject
    assert stating_json(layout, p["svs"], "MacromoleculeSignal") == top
    assert stating_json(layout, p["svs"], "NoSuchKey") == p["svs_json"]
    _edit_json(p["svs_json"], lambda s: _without(s, "ReferenceSignal"))
    assert stating_json(discovery.load_layout(demo), p["svs"], "ReferenceSignal") == subject
