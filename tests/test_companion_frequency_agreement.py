"""The water reference and the measured MM file must state one SpectrometerFrequency in their
NIfTI-MRS header and their sidecar, as the metabolite file must (within 1e-4). The reader only
warns and uses the sidecar's, so before, such a file passed discovery when its sidecar agreed
with the data (its header 0.4 % off), or was refused as a reference of another field (its
sidecar off) without the contradiction being named."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import (_edit_json, _edit_svs, as_measured_mm, copy_good, demo,  # noqa: E402,F401
                            demo_master)

from bids_app import discovery  # noqa: E402

CF_MHZ = 123.2  # the 3 T demo participant's


def _scaled(value, factor: float) -> list:
    return [float(np.ravel(value)[0]) * factor]


def _set_frequency(p: dict, key: str, where: str, factor: float) -> None:
    """``key``'s (ref, mm) SpectrometerFrequency times ``factor`` in its header or sidecar."""
    if where == "header":
        _edit_svs(p, key=key, ext_fn=lambda e: {
            **e, "SpectrometerFrequency": _scaled(e["SpectrometerFrequency"], factor)})
    else:
        _edit_json(p[f"{key}_json"], lambda s: {
            **s, "SpectrometerFrequency": _scaled(s["SpectrometerFrequency"], factor)})


def _contradiction(path: Path, sidecar: Path, where: str, factor: float) -> str:
    """The message naming the file and both values."""
    header, stated = (CF_MHZ * factor, CF_MHZ) if where == "header" else (CF_MHZ, CF_MHZ * factor)
    return (f"{path}: contradictory or impossible metadata: SpectrometerFrequency is "
            f"{header:g} MHz in the header of {path} but {stated:g} MHz in {sidecar}")


@pytest.mark.parametrize("where", ["header", "sidecar"])
def test_a_water_reference_whose_header_and_sidecar_disagree_is_refused(demo, where):
    p = copy_good(demo, "wcf")
    _set_frequency(p, "ref", where, 1.004)
    rounded = copy_good(demo, "round")  # converters' rounding stays allowed
    _set_frequency(rounded, "ref", where, 1 + 5e-5)
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02", "round"] and sorted(errors) == ["wcf"], errors
    assert errors["wcf"] == _contradiction(p["ref"], p["ref_json"], where, 1.004)


def _with_mm(p: dict, label: str) -> dict:
    """``p`` with a measured MM file (``acq-mm``): the svs's header with MM lines for data
    (:func:`as_measured_mm`), its sidecar's keys but ReferenceSignal."""
    mm = p["svs"].with_name(f"sub-{label}_acq-mm_svs.nii.gz")
    p = {**p, "mm": mm, "mm_json": mm.with_name(f"sub-{label}_acq-mm_svs.json")}
    shutil.copyfile(p["svs"], mm)
    as_measured_mm(mm)
    sidecar = json.loads(p["svs_json"].read_text())
    sidecar.pop("ReferenceSignal")
    p["mm_json"].write_text(json.dumps(sidecar))
    return p


@pytest.mark.parametrize("where", ["header", "sidecar"])
def test_a_measured_mm_file_whose_header_and_sidecar_disagree_is_refused(demo, where):
    p = _with_mm(copy_good(demo, "mmcf"), "mmcf")
    errors: dict = {}
    (acquisition,) = discovery.discover(demo, ["mmcf"], errors=errors)["mmcf"]
    assert acquisition.mm == p["mm"] and not errors  # the MM is found and used
    _set_frequency(p, "mm", where, 1.004)
    assert not discovery.discover(demo, ["mmcf"], errors=errors)
    assert errors["mmcf"] == _contradiction(p["mm"], p["mm_json"], where, 1.004)
