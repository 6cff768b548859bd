"""A SpectrometerFrequency (or SpectralWidth, NumberOfSpectralPoints) that is not a number, in
the header or the sidecar of the metabolite file, water reference or measured MM file, is
refused at discovery naming the file, the key and the unit it is stated in. Before, these went
through the timing parser and were reported as "not a number of seconds"; a frequency that
was not a number where only one of header and sidecar stated one passed discovery."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import (_edit_json, _edit_svs, _without, copy_good, demo,  # noqa: E402,F401
                            demo_master)
from test_companion_frequency_agreement import _with_mm  # noqa: E402

from bids_app import discovery  # noqa: E402

MHZ = "MHz (state it as a plain number in MHz, e.g. 123.2 at 3 T)"


def _state(p: dict, of: str, where: str, key: str, value) -> None:
    """``key`` of file ``of`` (svs, ref, mm) set to ``value`` in its header or sidecar (None:
    left out)."""
    def edit(metadata: dict) -> dict:
        return _without(metadata, key) if value is None else {**metadata, key: value}
    if where == "header":
        _edit_svs(p, key=of, ext_fn=edit)
    else:
        _edit_json(p[f"{of}_json"], edit)


def _only_error(demo: Path, label: str) -> str:
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"] and sorted(errors) == [label], errors
    return errors[label]


@pytest.mark.parametrize("value", ["297.2 MHz", ["abc"]])
@pytest.mark.parametrize("of", ["svs", "ref", "mm"])
@pytest.mark.parametrize("where", ["header", "sidecar"])
def test_a_frequency_that_is_not_a_number_is_refused_in_mhz(demo, where, of, value):
    p = _with_mm(copy_good(demo, "cf"), "cf") if of == "mm" else copy_good(demo, "cf")
    _state(p, of, where, "SpectrometerFrequency", value)
    stated = f"{p[of]} (header)" if where == "header" else p[f"{of}_json"]
    prefix = "" if where == "header" else f"{p[of]}: "
    assert _only_error(demo, "cf") == (
        f"{prefix}{stated}: SpectrometerFrequency {value!r} is not a number of {MHZ}")


@pytest.mark.parametrize("of", ["svs", "ref"])
def test_a_frequency_stated_once_and_not_a_number_is_refused_at_discovery(demo, of):
    """Only the sidecar states it (the header none): before, discovery passed the file and
    the run failed on it later."""
    p = copy_good(demo, "once")
    _state(p, of, "header", "SpectrometerFrequency", None)
    _state(p, of, "sidecar", "SpectrometerFrequency", "123.2 MHz")
    assert _only_error(demo, "once") == (f"{p[of]}: {p[f'{of}_json']}: SpectrometerFrequency "
                                         f"'123.2 MHz' is not a number of {MHZ}")


@pytest.mark.parametrize("key, value, unit", [
    ("SpectralWidth", "2000 Hz", "Hz (state it as a plain number in Hz, e.g. 2000)"),
    ("NumberOfSpectralPoints", "1024 points", "points (state it as a plain integer, e.g. 2048)"),
])
def test_a_width_or_point_count_that_is_not_a_number_names_its_unit(demo, key, value, unit):
    p = copy_good(demo, "grid")
    _state(p, "svs", "sidecar", key, value)
    assert _only_error(demo, "grid") == (
        f"{p['svs']}: {p['svs_json']}: {key} {value!r} is not a number of {unit}")


def test_timings_are_still_refused_in_seconds(demo):
    p = copy_good(demo, "te")
    _state(p, "svs", "sidecar", "EchoTime", "80 ms")
    assert _only_error(demo, "te").endswith(
        "EchoTime '80 ms' is not a number of seconds (BIDS timings are plain numbers in s, "
        "e.g. 0.08 for 80 ms)")
