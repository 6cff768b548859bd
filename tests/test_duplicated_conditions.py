"""A condition stored twice is warned about (fault injection, session 23). Truth: the demo
file untouched (no warning) and with its b = 1000 s/mm^2 condition appended again (the
injected copy is named). Before, the copy was fitted and modelled as a measurement of its own
without a word: the Glx ADC moved from 0.104 to 0.128 um^2/ms, Ins at b = 0 by 8 %."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_svs, demo, demo_master, paths  # noqa: E402,F401

from pipeline.io.nifti_mrs import read_nifti_mrs  # noqa: E402


def _with_b_1000_again(e: dict) -> dict:
    header = e["dim_6_header"]
    return {**e, "dim_6_header": {
        "b_value": {**header["b_value"], "Value": header["b_value"]["Value"] + [1000.0]},
        "direction": {**header["direction"], "Value": header["direction"]["Value"] + [None]}}}


def test_a_condition_stored_twice_is_named(demo):
    p = paths(demo, "01")
    assert not any("bit for bit" in w for w in read_nifti_mrs(p["svs"]).metadata["warnings"])
    _edit_svs(p, lambda d: np.concatenate([d, d[..., 1:2]], axis=-1), _with_b_1000_again)
    acq = read_nifti_mrs(p["svs"])
    assert acq.fids.shape[0] == 7
    (note,) = [w for w in acq.metadata["warnings"] if "bit for bit" in w]
    assert note.startswith(f"{p['svs']}: condition 6 (b = 1000 s/mm^2) holds exactly the data "
                           "of condition 1 (b = 1000 s/mm^2)")


def test_published_series_are_not_warned_about(shared_data):
    for name in ("dmrs_7t_steam_invivo/nifti/metab.nii.gz",
                 "dmrs_7t_steam_invivo/nifti/water.nii.gz",
                 "dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz"):
        acq = read_nifti_mrs(shared_data / name, b_value_units="s/mm2" if "invivo" in name
                             else "ms/um2")
        assert not any("bit for bit" in w for w in acq.metadata["warnings"]), name


def test_noiseless_repeats_are_not_judged():
    """Several transients all identical: noise-free data (a simulation), whose conditions may
    repeat legitimately; one transient per condition is judged."""
    from pipeline.io.nifti_mrs import duplicated_condition_notes

    fid = np.exp(-np.arange(64) / 10.0).astype(complex)
    b = np.array([0.0, 1000.0])
    assert duplicated_condition_notes(np.tile(fid, (2, 3, 1, 1)), b, "f") == []
    (note,) = duplicated_condition_notes(np.tile(fid, (2, 1, 1, 1)), b, "f")
    assert note.startswith("f: condition 1 (b = 1000 s/mm^2) holds exactly the data of "
                           "condition 0 (b = 0 s/mm^2)")
