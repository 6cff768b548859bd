"""The discovery-time nucleus and metadata checks judge the sidecar metadata the run reads:
pybids merges a file's own JSON sidecar with those it inherits (a subject-level or top-level
``*_svs.json`` / ``*_mrsref.json``; the nearest wins). Before, the checks read each file's own
sidecar only, so a key stated by inheritance passed the checks unseen and the run then used
it (a wrong SpectrometerFrequency or a TE in ms) or failed on it after discovery."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_json, _without, copy_good, demo, demo_master  # noqa: E402,F401

from bids_app import discovery  # noqa: E402
from pipeline.io.nifti_mrs import read_nifti_mrs  # noqa: E402


def _inherited(demo: Path, label: str, key: str, value, where: str, of: str = "svs") -> dict:
    """Participant ``label`` whose ``of`` file (svs or ref) states ``key`` not in its own
    sidecar but in the inherited JSON ``where`` (relative to the dataset)."""
    p = copy_good(demo, label)
    _edit_json(p[f"{of}_json"], lambda s: _without(s, key))
    inherited = demo / where
    inherited.parent.mkdir(parents=True, exist_ok=True)
    inherited.write_text(json.dumps({key: value}))
    return {**p, "inherited": inherited}


def _run_metadata(demo: Path, path: Path) -> dict:
    """The sidecar metadata the run reads ``path`` with (discovery's, by pybids)."""
    return discovery._metadata(discovery.load_layout(demo), path)


def test_an_inherited_frequency_is_checked_against_the_header(demo):
    p = _inherited(demo, "inh", "SpectrometerFrequency", [127.7],
                   "sub-inh/sub-inh_acq-dwpress_svs.json")
    # the run reads the data at the inherited 127.7 MHz, not the header's 123.2 MHz
    assert read_nifti_mrs(p["svs"], sidecar=_run_metadata(demo, p["svs"])).cf_mhz == 127.7
    discovery.check_inputs(p["svs"], p["ref"], None)  # the own sidecar alone: passed
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"] and sorted(errors) == ["inh"], errors
    message = errors["inh"]
    assert message.startswith(f"{p['svs']}: contradictory or impossible metadata: "
                              f"SpectrometerFrequency is 123.2 MHz in the header of {p['svs']} "
                              "but 127.7 MHz in the sidecars of sub-inh_acq-dwpress_svs.nii.gz "
                              "merged by BIDS inheritance"), message
    assert f"{p['svs_json']}, {p['inherited']})" in message, message


def test_an_inherited_timing_is_checked_and_the_nearest_sidecar_wins(demo):
    """A dataset-level ``acq-dwpress_svs.json`` with TE in ms applies to every dwpress
    participant; one whose own sidecar states TE keeps its own (sub-01 passes)."""
    p = _inherited(demo, "te", "EchoTime", 80, "acq-dwpress_svs.json")
    assert read_nifti_mrs(p["svs"], sidecar=_run_metadata(demo, p["svs"])) \
        .metadata["EchoTime"] == 80  # TE 80 s in the run
    discovery.check_inputs(p["svs"], p["ref"], None)
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"] and sorted(errors) == ["te"], errors
    assert "EchoTime (TE) = 80 s is outside (0, 1) s" in errors["te"], errors["te"]
    assert str(p["inherited"]) in errors["te"], errors["te"]


def test_an_inherited_nucleus_of_the_water_reference_is_checked(demo):
    p = _inherited(demo, "nuc", "ResonantNucleus", "31P",
                   "sub-nuc/sub-nuc_acq-dwpress_mrsref.json", of="ref")
    with pytest.raises(ValueError, match="ResonantNucleus"):  # the run's reader refuses it
        read_nifti_mrs(p["ref"], sidecar=_run_metadata(demo, p["ref"]))
    discovery.check_inputs(p["svs"], p["ref"], None)  # ... after discovery passed it
    errors: dict = {}
    discovery.discover(demo, errors=errors)
    assert sorted(errors) == ["nuc"], errors
    assert errors["nuc"].startswith(f"{p['ref']}: ResonantNucleus is 1H in the header but 31P "
                                    "in the sidecars of sub-nuc_acq-dwpress_mrsref.nii.gz"), \
        errors["nuc"]
    assert str(p["inherited"]) in errors["nuc"]


def test_the_sidecars_are_named_as_pybids_merges_them(demo):
    """Own sidecar alone: its path (the messages as before); a JSON with an entity the file
    lacks (``run-1``) or of another ``acq-`` is not inherited."""
    svs = demo / "sub-01" / "mrs" / "sub-01_acq-dwpress_svs.nii.gz"
    own = svs.with_name("sub-01_acq-dwpress_svs.json")
    for name, key in (("acq-dwpress_run-1_svs.json", "RunKey"),
                      ("acq-dwsteam_svs.json", "SteamKey"), ("svs.json", "TopKey")):
        (demo / name).write_text(json.dumps({key: 1}))
    files = discovery._metadata_files(discovery.load_layout(demo), svs)
    assert files == [own, demo / "svs.json"]
    assert {"RunKey", "SteamKey", "TopKey"} & set(_run_metadata(demo, svs)) == {"TopKey"}
    assert discovery.sidecars_text(svs, [own]) == str(own)
    assert discovery.sidecars_text(svs, files) == (
        f"the sidecars of {svs.name} merged by BIDS inheritance (the first wins: {own}, "
        f"{demo / 'svs.json'})")
