"""A participant that succeeded once and whose rerun fails must not look current: its earlier
outputs are moved, whole and unchanged, to ``OUT/set_aside/sub-<label>_before-<run id>/``
and ``OUT/sub-<label>.html`` becomes a page saying the latest run failed, when and why.
Before, the old report and tables stayed in place showing the earlier success while the
group level already left the participant out."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import run_app  # noqa: E402
from robust_support import demo, demo_master, paths, zero_bytes  # noqa: E402,F401

from bids_app.failed_runs import FAILED_MARK  # noqa: E402

AMPLITUDES = "sub-01/mrs/sub-01_acq-dwpress_amplitudes.tsv"


def _run(demo: Path, tmp_path: Path) -> tuple[int, dict]:
    out = tmp_path / "out"
    run, _ = run_app(demo, out, "participant", "--participant-label", "01", "-w",
                     tmp_path / "work", "--skip-bids-validation", "--nprocs", "2")
    summary = json.loads((out / "logs" / "run_summary_sub-01.json").read_text())
    return run.returncode, summary


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_failed_rerun_sets_earlier_outputs_aside_and_says_it_failed(demo, tmp_path):
    out = tmp_path / "out"
    status, first = _run(demo, tmp_path)
    assert status == 0
    good_report = (out / "sub-01.html").read_bytes()
    good_amplitudes = (out / AMPLITUDES).read_bytes()
    good_files = sorted(p.relative_to(out).as_posix() for p in (out / "sub-01").rglob("*")
                        if p.is_file() and p.name != "sub-01_run.json")
    svs = paths(demo, "01")["svs"]
    shutil.copyfile(svs, tmp_path / "good_svs.nii.gz")
    zero_bytes(paths(demo, "01"))

    status, failed = _run(demo, tmp_path)
    assert status == 1
    (reason,) = failed["participants"]["01"]["errors"]
    assert reason.startswith(f"{svs}: file is empty (0 bytes)")
    aside = out / "set_aside" / f"sub-01_before-{failed['run_id']}"
    # the earlier outputs, unchanged, with the record of the run that made them
    assert (aside / "sub-01.html").read_bytes() == good_report
    assert (aside / AMPLITUDES).read_bytes() == good_amplitudes
    assert sorted(p.relative_to(aside).as_posix() for p in (aside / "sub-01").rglob("*")
                  if p.is_file() and p.name != "sub-01_run.json") == good_files
    old_record = json.loads((aside / "sub-01" / "sub-01_run.json").read_text())
    assert old_record["status"] == "ok" and old_record["run_id"] == first["run_id"]
    # nothing of the earlier run looks current: only the failed run's record is left
    assert [p.name for p in (out / "sub-01").iterdir()] == ["sub-01_run.json"]
    assert json.loads((out / "sub-01" / "sub-01_run.json").read_text())["status"] == "failed"
    page = (out / "sub-01.html").read_text()
    assert FAILED_MARK in page and "the latest run FAILED" in page
    assert f"Run {failed['run_id']}, finished {failed['finished']}" in page
    assert reason in page
    assert f"last successful run ({first['run_id']}, finished {first['finished']})" in page
    assert f'href="set_aside/sub-01_before-{failed["run_id"]}/sub-01.html"' in page

    # failing again: the page names the newer run; nothing more is set aside
    status, again = _run(demo, tmp_path)
    assert status == 1 and again["run_id"] != failed["run_id"]
    page = (out / "sub-01.html").read_text()
    assert f"Run {again['run_id']}" in page and "were moved" not in page
    assert [p.name for p in (out / "set_aside").iterdir()] == [aside.name]

    # fixed: a successful run writes the report and tables again; the set-aside copy stays
    shutil.copyfile(tmp_path / "good_svs.nii.gz", svs)
    status, _ = _run(demo, tmp_path)
    assert status == 0
    assert FAILED_MARK not in (out / "sub-01.html").read_text()
    assert (out / AMPLITUDES).read_bytes() == good_amplitudes
    assert (aside / AMPLITUDES).read_bytes() == good_amplitudes
