"""A failed participant's reason (run summary, run record, console line) names only its own
problem. The BIDS validator's per-file errors go to the run summary's dataset-level
``bids_validation`` section; before, every validator line of a file whose path merely began
with the participant's folder was appended, so sub-1's reason repeated sub-10's
"BIDS validator: sub-10_notes.txt: NOT_INCLUDED"."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import run_app  # noqa: E402
from robust_support import copy_good, demo, demo_master, zero_bytes  # noqa: E402,F401

from bids_app.bids_validation import validator_executable  # noqa: E402
from bids_app.runlog import validation_section  # noqa: E402


def test_failure_reason_holds_only_the_participants_own_problem(demo, tmp_path):
    if validator_executable() is None:
        pytest.skip("bids-validator-deno is not installed")
    broken = copy_good(demo, "1")
    zero_bytes(broken)
    neighbour = copy_good(demo, "10")
    (neighbour["svs"].parent / "sub-10_notes.txt").write_text("not a BIDS file\n")
    out = tmp_path / "out"
    run, _ = run_app(demo, out, "participant", "--participant-label", "1", "10",
                     "-w", tmp_path / "work", "--nprocs", "2")
    assert run.returncode == 1, run.stderr[-2000:]
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    own = f"{broken['svs']}: file is empty (0 bytes); it holds no MRS data (convert)"
    assert summary["participants"]["1"]["errors"] == [own]
    assert summary["participants"]["10"] | {"elapsed_s": 0} == {
        "status": "ok", "errors": [], "elapsed_s": 0}
    record = json.loads((out / "sub-1" / "sub-1_run.json").read_text())
    assert record["status"] == "failed" and record["errors"] == [own]
    (line,) = [ln for ln in run.stderr.splitlines() if "sub-1: FAILED" in ln]
    assert own in line and "sub-10" not in line and "BIDS validator" not in line
    # the validator's findings stay in the dataset-level section, each under its own file
    errors = summary["bids_validation"]["errors"]
    assert errors["sub-10/mrs/sub-10_notes.txt"] == ["NOT_INCLUDED"]
    assert "EMPTY_FILE" in errors["sub-1/mrs/sub-1_acq-dwpress_svs.nii.gz"]
    assert summary["bids_validation"]["report"] == "logs/bids_validation.json"


def test_validation_section_paths_are_relative_and_absent_when_skipped(tmp_path):
    per_file = {tmp_path / "sub-2" / "mrs" / "a.json": ["JSON_INVALID", "JSON_INVALID"],
                tmp_path: ["README_FILE_MISSING"]}
    assert validation_section(per_file, tmp_path) == {"bids_validation": {
        "errors": {".": ["README_FILE_MISSING"], "sub-2/mrs/a.json": ["JSON_INVALID"]},
        "report": "logs/bids_validation.json"}}
    assert validation_section({}, tmp_path) == {"bids_validation": {
        "errors": {}, "report": "logs/bids_validation.json"}}
    assert validation_section(None, tmp_path) is None
