"""The app's guarded input readers (``bids_app.input_checks``), the software versions recorded
with the outputs (``bids_app.versions``) and the basis-grid decision of the basis stage: each
bad input gives a ValueError naming the file and the problem."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import copy_good, paths, water_dwell, water_points  # noqa: E402

from pipeline.io import input_checks  # noqa: E402
from bids_app.versions import DEPENDENCIES, generated_by_entries, software_versions  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from bids_app.demo import write_demo_dataset

    base = tmp_path_factory.mktemp("checks")
    write_demo_dataset(base / "demo", participants=2, small=True, cache_dir=str(base / "cache"))
    return base / "demo"


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    """A file this user may not read (os.access says no: as root, permissions cannot deny)."""
    path = tmp_path / "sub-01_svs.nii.gz"
    path.write_bytes(b"x")
    real_access = os.access
    monkeypatch.setattr(input_checks.os, "access",
                        lambda p, mode: False if Path(p) == path else real_access(p, mode))
    with pytest.raises(input_checks.InputError, match="permission denied") as err:
        input_checks.check_readable(path)
    assert str(path) in str(err.value)
    with pytest.raises(input_checks.InputError, match="does not exist"):
        input_checks.check_readable(tmp_path / "absent.nii.gz")


def test_header_announcing_gigabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "sub-01_svs.nii"
    img = nib.Nifti2Image(np.zeros((1, 1, 1, 4), dtype=np.complex64), np.eye(4))
    nib.save(img, str(path))
    raw = bytearray(path.read_bytes())
    dims = np.frombuffer(raw[16:80], dtype="<i8").copy()  # NIfTI-2 dim[8] at byte 16
    dims[0], dims[4], dims[5] = 5, 2 ** 20, 2 ** 20
    raw[16:80] = dims.tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(input_checks.InputError, match="header is corrupt") as err:
        input_checks.read_acquisition(path)
    assert str(path) in str(err.value) and str(2 ** 40) in str(err.value)


@pytest.mark.parametrize("build, words", [(water_points, ["512 spectral points", "1024"]),
                                          (water_dwell, ["dwell time 0.25 ms", "0.5 ms"])])
def test_water_reference_on_another_grid(demo, build, words):
    p = copy_good(demo, "w" + build.__name__.replace("_", ""))
    build(p)
    input_checks.check_water_grid(p["svs"], p["svs"])  # same grid: fine
    with pytest.raises(input_checks.InputError) as err:
        input_checks.check_water_grid(p["svs"], p["ref"])
    assert str(p["ref"]) in str(err.value) and all(w in str(err.value) for w in words)


def test_software_versions_match_the_installed_packages():
    versions = software_versions()
    assert versions["python"] == platform.python_version()
    assert versions["packages"] == {name: version(name) for name in DEPENDENCIES}
    assert versions["blas"]["name"] == np.show_config(mode="dicts")["Build Dependencies"][
        "blas"]["name"]
    entries = generated_by_entries(versions)
    assert {"Name": "numpy", "Version": np.__version__,
            "Description": "dependency of dmrs-bids"} in entries
    assert len(entries) == len(DEPENDENCIES) + 2 and all(e["Version"] for e in entries)


def _prepare_basis(tmp_path, data: Path, basis: Path):
    from workflows.interfaces import PrepareBasis

    tmp_path.mkdir()
    node = PrepareBasis(in_file=str(data), basis_path=str(basis), options="{}")
    return node.run(cwd=str(tmp_path))


def test_basis_at_another_bandwidth_is_resampled_and_another_field_refused(
        demo, shared_data, tmp_path):
    """The 7 T LCModel basis (298.06 MHz, 3003 Hz, 8192 points) on the 7 T demo data (3000 Hz,
    1024 points) is resampled to the data grid; on the 3 T data it is refused, with the reason
    (J-couplings do not scale with the field) and the basis file named."""
    basis = shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS"
    result = _prepare_basis(tmp_path / "7t", paths(demo, "02")["svs"].with_name(
        "sub-02_acq-dwsteam_svs.nii.gz"), basis)
    report = json.loads(Path(result.outputs.out_report).read_text())
    assert report["n_points"] == 1024 and report["dwell_s"] == pytest.approx(1 / 3000)
    assert report["cf_mhz"] == pytest.approx(298.06)
    with pytest.raises(ValueError) as err:
        _prepare_basis(tmp_path / "3t", paths(demo, "01")["svs"], basis)
    message = str(err.value)
    assert str(basis) in message and "J-couplings do not scale" in message
    assert "298.06" in message and "123.2" in message


def test_submit_only_jobs_are_tagged_and_waited_for():
    import logging

    from bids_app.cluster import ClusterWaitError, run_token, tag_jobs, wait_for_jobs

    token = run_token()
    assert token.startswith("dmrs-bids-") and token != run_token()
    assert tag_jobs("SLURMGraph", {"sbatch_args": "-p debug"}, token) == {
        "sbatch_args": f"-p debug --comment={token}"}
    assert tag_jobs("MultiProc", {"n_procs": 2}, token) == {"n_procs": 2}
    queue = iter([[token, "other", token], [token, "other"], ["other"]])
    calls = []

    def comments():
        calls.append(1)
        return next(queue)

    wait_for_jobs(token, timeout_s=60, logger=logging.getLogger("t"), poll_s=0,
                  list_comments=comments)
    assert len(calls) == 3  # returned as soon as no job carried the token, not before
    with pytest.raises(ClusterWaitError, match="still queued after 0 s"):
        wait_for_jobs(token, timeout_s=0, logger=logging.getLogger("t"), poll_s=0.01,
                      list_comments=lambda: [token])
