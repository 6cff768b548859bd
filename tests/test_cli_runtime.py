"""Run-time environment of the CLI (issue 9 fixes): work directory default and writability,
per-participant log names for array tasks, dependency versions in dataset_description.json
(written atomically, identical content), stale temporaries, BLAS threads and LOGNAME."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from bids_app import cli, derivatives


def _opts(work_dir=None):
    return argparse.Namespace(work_dir=work_dir)


def test_work_dir_from_option_then_environment_then_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {cli.WORK_DIR_VARIABLE: str(tmp_path / "scratch")}
    assert cli.work_dir(_opts(), environ={}) == tmp_path / "work"
    assert cli.work_dir(_opts(), environ=env) == tmp_path / "scratch"
    assert cli.work_dir(_opts(Path("mine")), environ=env) == tmp_path / "mine"


def test_unwritable_work_dir_is_one_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bids = tmp_path / "bids"
    bids.mkdir()
    status = cli.main([str(bids), str(tmp_path / "out"), "participant", "-w",
                       str(blocker / "work")])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert f"work directory {blocker / 'work'} is not writable" in err
    assert cli.WORK_DIR_VARIABLE in err and "Traceback" not in err
    cli.check_writable(tmp_path / "ok", "work directory")
    assert list((tmp_path / "ok").iterdir()) == []  # the probe file is gone


def test_run_label_separates_array_tasks():
    assert derivatives.run_label(["sub-07"]) == derivatives.run_label(["07"]) == "_sub-07"
    assert derivatives.run_label(None) == derivatives.run_label(["01", "02"]) == ""


def test_dataset_description_lists_dependency_versions_and_is_stable(tmp_path):
    from importlib.metadata import version

    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "study"}')
    path = derivatives.write_dataset_description(tmp_path / "out", bids, "0.1.0")
    generated = json.loads(path.read_text())["GeneratedBy"]
    assert generated[0]["Name"] == "dmrs-bids"
    versions = {g["Name"]: g["Version"] for g in generated[1:]}
    assert versions["numpy"] == np.__version__ and versions["nipype"] == version("nipype")
    assert versions["nifti-mrs"] == version("nifti-mrs") and "Python" in versions
    assert derivatives.software_versions()["packages"]["spec2nii"] == version("spec2nii")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    derivatives.write_dataset_description(tmp_path / "out", bids, "0.1.0")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before  # same content: untouched
    assert list((tmp_path / "out").glob(".*.tmp")) == []


def test_stale_temporaries_are_removed_only_for_the_selected_participants(tmp_path):
    mine = tmp_path / "sub-01" / "mrs" / ".sub-01_qc.json.123.tmp"
    report = tmp_path / ".sub-01.html.123.tmp"
    other = tmp_path / "sub-02" / "mrs" / ".sub-02_qc.json.456.tmp"  # another array task's
    for path in (mine, report, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    removed = derivatives.remove_stale_temporaries(tmp_path, ["01"])
    assert sorted(removed) == sorted([mine, report])
    assert not mine.exists() and not report.exists() and other.exists()


def test_single_threaded_blas_is_set_before_numpy_loads():
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    code = ("import sys, os, bids_app.cli\n"
            "print('numpy' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'], "
            "os.environ['OMP_NUM_THREADS'])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.stdout.split() == ["False", "1", "1"], run.stderr


def test_omp_nthreads_and_logname_reach_the_workers_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("LOGNAME", raising=False)
    for name in cli.THREAD_VARIABLES:
        monkeypatch.setenv(name, "1")
    status = cli.main([str(tmp_path / "absent"), str(tmp_path / "out"), "participant",
                       "--omp-nthreads", "3"])
    assert status == cli.EXIT_USAGE  # absent input: stops after the environment is set
    assert os.environ["LOGNAME"] == getpass.getuser()
    assert all(os.environ[name] == "3" for name in cli.THREAD_VARIABLES)
