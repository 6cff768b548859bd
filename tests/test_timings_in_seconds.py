"""Timings the water scaling reads are refused at discovery when they cannot be seconds (fault
injection, session 23). Before, RepetitionTime was not checked anywhere, and no timing of the
water reference was: on the small demo (truth: the untouched run), a water-reference EchoTime
of 80 (ms) gave every concentration 1.8e-315 mM and a RepetitionTime of 3000 (ms), in the data
and water sidecars or the water's alone, every concentration 18 % high; exit 0, QC as before.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_json, _edit_svs, demo, demo_master, paths  # noqa: E402,F401

from bids_app.discovery import DiscoveryError, discover_subject, load_layout  # noqa: E402
from pipeline.io.input_checks import timing_problems  # noqa: E402


def _discover(bids: Path):
    return discover_subject(load_layout(bids), "01")


def _refusal(bids: Path) -> str:
    with pytest.raises(DiscoveryError) as err:
        _discover(bids)
    return str(err.value)


def test_the_untouched_demo_passes(demo):
    assert _discover(demo)


@pytest.mark.parametrize("key, value", [("EchoTime", 80.0), ("RepetitionTime", 3000.0)])
def test_water_reference_timing_in_ms_in_its_sidecar_is_refused(demo, key, value):
    p = paths(demo, "01")
    _edit_json(p["ref_json"], lambda s: {**s, key: value})
    message = _refusal(demo)
    assert str(p["ref"]) in message
    assert f"{key} ({'TE' if key == 'EchoTime' else 'TR'}) = {value:g} s is outside" in message


def test_water_reference_timing_in_ms_in_its_header_is_refused(demo):
    p = paths(demo, "01")
    _edit_svs(p, ext_fn=lambda e: {**e, "RepetitionTime": 3000.0}, key="ref")
    message = _refusal(demo)
    assert f"{p['ref']} (header): RepetitionTime (TR) = 3000 s is outside (0, 60) s" in message


def test_data_repetition_time_in_ms_is_refused(demo):
    p = paths(demo, "01")
    _edit_json(p["svs_json"], lambda s: {**s, "RepetitionTime": 3000.0})
    message = _refusal(demo)
    assert str(p["svs"]) in message
    assert "RepetitionTime (TR) = 3000 s is outside (0, 60) s" in message


def test_repetition_times_of_the_shared_data_pass():
    """TR 2, 4 and 5 s: every value in the shared data's sidecars and headers; 20 s is a fully
    relaxed water scan."""
    for tr_s in (2.0, 4.0, 5.0, 20.0):
        assert timing_problems({"RepetitionTime": tr_s}, "h") == []
    assert timing_problems({"RepetitionTime": 0.0}, "h") == [
        "RepetitionTime (TR) = 0 s is outside (0, 60) s"]


@pytest.mark.parametrize("key", ["svs", "ref"])
def test_an_echo_time_on_which_header_and_sidecar_disagree_is_refused(demo, key):
    """Header 0.08 s, sidecar 0.035 s: before, the run used the sidecar's with a warning (data:
    Ins -84 %, Glx -74 %, tCr -19 % on the demo; water reference: every concentration x 1.67
    for TE 0.03 s in its sidecar). Microsecond rounding is not a contradiction."""
    p = paths(demo, "01")
    _edit_json(p[f"{key}_json"], lambda s: {**s, "EchoTime": 0.0800004})
    assert _discover(demo)
    _edit_json(p[f"{key}_json"], lambda s: {**s, "EchoTime": 0.035})
    message = _refusal(demo)
    assert f"EchoTime 0.08 s in the header of {p[key]} contradicts 0.035 s in " in message
    # the data's JSON is named; the water's sidecar metadata (which may be inherited) by its file
    assert (str(p["svs_json"]) if key == "svs" else f"sidecar metadata of {p['ref']}") in message
