"""The MM motion check (0.8-1.0 ppm integral, run by the QC stage after the fit) needs a few
spectral points in its window, its flanks and a signal-free band. A grid too coarse for it
used to fail the participant only after preprocessing and fitting ("MM window ... holds too
few points"); the input checks now refuse it before any processing, naming the file, its
points, dwell time, spectral width and what the check needs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import run_app  # noqa: E402
from robust_support import (_edit_json, _edit_svs, _without, copy_good, demo,  # noqa: E402,F401
                            demo_master)

from pipeline.preprocess.motion import mm_amplitude_check, motion_grid_problem  # noqa: E402

CF_3T_MHZ, DWELL_S = 123.2, 1 / 2000.0  # the 3 T demo participant's grid (1024 points)


def test_grid_problem_counts_the_points_and_says_what_is_needed():
    assert motion_grid_problem(1024, DWELL_S, CF_3T_MHZ) is None
    problem = motion_grid_problem(128, DWELL_S, CF_3T_MHZ)
    # 2000 Hz / 128 points = 15.6 Hz = 0.127 ppm per point: 2 points in 0.8-1.0 ppm, none in
    # the 0.08 ppm flanks, 10 in -1.5..-0.2 ppm
    assert ("128 points at a dwell time of 0.5 ms (spectral width 2000 Hz, -3.34 to 12.77 ppm "
            "at 123.2 MHz; 0.127 ppm per point) put 2 points in the window and 0 in its 0.08 "
            "ppm flanks") in problem
    assert "at most 10 in a signal-free band" in problem
    assert "at most 0.08 ppm per point (at least 203 acquired points" in problem
    assert all(motion_grid_problem(n, DWELL_S, CF_3T_MHZ) is None for n in range(203, 2049))
    narrow = motion_grid_problem(1024, 1 / 500.0, 298.06)  # 500 Hz: 3.81 to 5.49 ppm only
    assert "covering 0.72 to 1.08 ppm" in narrow and "put 0 points in the window" in narrow
    # the QC stage refuses with the same words
    with pytest.raises(ValueError) as err:
        mm_amplitude_check(np.ones((2, 128), complex), DWELL_S, CF_3T_MHZ)
    assert str(err.value) == problem


def _coarse(demo: Path, label: str, n_points: int) -> dict:
    """A copy of the 3 T demo participant cut to its first ``n_points`` points (data and
    water reference), so its spectral grid is coarser."""
    p = copy_good(demo, label)
    for key, sidecar in (("svs", "svs_json"), ("ref", "ref_json")):
        _edit_svs(p, lambda d: np.ascontiguousarray(d[:, :, :, :n_points]), key=key)
        _edit_json(p[sidecar], lambda s: {**s, "NumberOfSpectralPoints": n_points})
    return p


# Before the fix both ran preprocessing and the fit, then failed in the QC stage: 180 points
# with "no signal-free band (-1.5..-0.2 or 8.5..9.5 ppm) in the spectral width to estimate
# noise for the MM check", the narrow window with "MM window (0.9, 0.91) ppm or its flanks
# hold too few points".
@pytest.mark.parametrize("label, n_points, config, grid", [
    ("coarse", 180, "", "0.8-1 ppm) cannot run on this spectral grid: 180 points at a dwell "
                        "time of 0.5 ms (spectral width 2000 Hz, -3.38 to 12.77 ppm at 123.2 "
                        "MHz; 0.0902 ppm per point) put 2 points in the window and 2 in its "
                        "0.08 ppm flanks"),
    ("01", None, "[preprocessing]\nmotion_ppm_range = [0.9, 0.91]\n",
     "0.9-0.91 ppm) cannot run on this spectral grid: 1024 points at a dwell time of 0.5 ms "
     "(spectral width 2000 Hz, -3.45 to 12.77 ppm at 123.2 MHz; 0.0159 ppm per point) put 1 "
     "points in the window"),
])
def test_grid_too_coarse_for_the_motion_check_fails_before_any_processing(
        demo, tmp_path, label, n_points, config, grid):
    svs = _coarse(demo, label, n_points)["svs"] if n_points else \
        demo / "sub-01" / "mrs" / "sub-01_acq-dwpress_svs.nii.gz"
    (tmp_path / "c.toml").write_text(config)
    out, work = tmp_path / "out", tmp_path / "work"
    run, _ = run_app(demo, out, "participant", "--participant-label", label, "-w", work,
                     "--skip-bids-validation", "--nprocs", "1", "--config", tmp_path / "c.toml")
    assert run.returncode == 1, run.stderr[-2000:]
    summary = json.loads((out / "logs" / f"run_summary_sub-{label}.json").read_text())
    (message,) = summary["participants"][label]["errors"]
    assert message.startswith(f"{svs}: the MM motion check ([preprocessing] motion_ppm_range "
                              + grid), message
    assert "motion_check = false" in message
    # refused by the input checks: no step of the participant's workflow ran
    assert not any(work.rglob(f"sub_{label}_wf")), sorted(work.rglob("*"))[:20]
    assert not (out / f"sub-{label}" / "mrs").exists()


def test_the_check_follows_the_configuration(demo, tmp_path):
    """motion_check = false skips it; a window wider than the grid's spacing passes."""
    from bids_app import discovery

    _coarse(demo, "coarse", 128)

    errors: dict = {}
    found = discovery.discover(demo, ["coarse"], errors=errors, motion_ppm_range=None)
    assert not errors and len(found["coarse"]) == 1
    discovery.discover(demo, ["coarse"], errors=errors, motion_ppm_range=[0.8, 1.0])
    assert "128 points" in errors["coarse"]
    errors.clear()
    discovery.discover(demo, ["01"], errors=errors, motion_ppm_range=[0.8, 1.0])
    assert not errors


def test_the_grid_comes_from_the_header_and_a_zero_filled_one_from_its_samples(demo,
                                                                                monkeypatch):
    """Before, every multi-condition svs was read in full (files up to 2 GiB, in the main
    process before anything ran) only to learn its grid. Now the header gives it; the data
    are read whole only when the file is zero-filled (its last points all 0)."""
    from pipeline.io import input_checks
    from pipeline.io.input_checks import InputError, check_motion_grid

    good = demo / "sub-01" / "mrs" / "sub-01_acq-dwpress_svs.nii.gz"
    coarse = _coarse(demo, "coarse", 180)["svs"]
    filled = copy_good(demo, "filled")  # 180 acquired points exported as 1024
    _edit_svs(filled, lambda d: np.concatenate(
        [d[:, :, :, :180], np.zeros_like(d[:, :, :, 180:])], axis=3))

    def read_whole(*args, **kwargs):
        raise AssertionError("the data were read in full")

    with monkeypatch.context() as patch:
        patch.setattr(input_checks, "read_acquisition", read_whole)
        patch.setattr(input_checks, "_acquired_points", read_whole)
        check_motion_grid(good, [0.8, 1.0])
        with pytest.raises(InputError, match=f"^{re.escape(str(coarse))}: .* 180 points at"):
            check_motion_grid(coarse, [0.8, 1.0])
    with pytest.raises(InputError, match=f"^{re.escape(str(filled['svs']))}: .* 180 points at"):
        check_motion_grid(filled["svs"], [0.8, 1.0])


def _set_header_frequency(p: dict, cf_mhz) -> None:
    """The svs header's SpectrometerFrequency set to ``cf_mhz`` (None: left out)."""
    stated = {} if cf_mhz is None else {"SpectrometerFrequency": [cf_mhz]}
    _edit_svs(p, ext_fn=lambda e: {**_without(e, "SpectrometerFrequency"), **stated})


def _verdict(svs: Path, sidecar: dict | None) -> str:
    """'pass', or the span and frequency of the grid :func:`check_motion_grid` refused."""
    from pipeline.io.input_checks import InputError, check_motion_grid

    try:
        check_motion_grid(svs, [0.8, 1.0], sidecar)
    except InputError as err:
        return re.search(r"Hz, (.* MHz);", str(err)).group(1)
    return "pass"


@pytest.mark.parametrize("header_mhz, sidecar_mhz", [(297.2, 123.2), (123.2, 297.2)])
def test_the_grid_is_judged_at_the_sidecar_frequency_as_the_run_reads_it(demo, header_mhz,
                                                                          sidecar_mhz):
    """2000 Hz at 123.2 MHz spans -3.45 to 12.77 ppm; at 297.2 MHz 1.29 to 8.01 ppm, without
    the 0.8-1.0 ppm window. The run reads the sidecar's frequency, and so does the check:
    before, it read the header's alone."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    p = copy_good(demo, "cf")
    _set_header_frequency(p, header_mhz)
    sidecar = {"SpectrometerFrequency": [sidecar_mhz]}
    assert read_nifti_mrs(p["svs"], sidecar=sidecar).cf_mhz == sidecar_mhz
    verdicts = {mhz: "pass" if mhz == 123.2 else "1.29 to 8.01 ppm at 297.2 MHz"
                for mhz in (header_mhz, sidecar_mhz)}
    assert _verdict(p["svs"], sidecar) == verdicts[sidecar_mhz]
    assert _verdict(p["svs"], None) == verdicts[header_mhz]  # the header alone: the other


def test_a_header_without_frequency_is_judged_at_the_sidecar_one_at_discovery(demo):
    """The header states no SpectrometerFrequency and the sidecar does (the reader takes it
    from there): the check skipped such a file, which failed only after the fit."""
    from bids_app import discovery
    from pipeline.io.nifti_mrs import read_nifti_mrs

    p = _coarse(demo, "nocf", 180)
    _set_header_frequency(p, None)
    assert read_nifti_mrs(p["svs"], sidecar=json.loads(p["svs_json"].read_text())).cf_mhz == 123.2
    errors: dict = {}
    found = discovery.discover(demo, ["nocf"], errors=errors, motion_ppm_range=[0.8, 1.0])
    assert not found and errors["nocf"].startswith(f"{p['svs']}: the MM motion check"), errors
    assert "180 points at a dwell time of 0.5 ms" in errors["nocf"]
    assert "at 123.2 MHz" in errors["nocf"]
