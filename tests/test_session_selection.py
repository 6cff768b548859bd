"""--session-label selects sessions across the dataset: a participant without any of them is
skipped (logged, ``skipped`` in the run summary, ``skipped`` in group_status.tsv, exit 0), not
failed; a session label no participant has is refused before anything runs (exit 2)."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master  # noqa: E402,F401

from bids_app import cli, discovery, group  # noqa: E402


def _into_sessions(root: Path, sessions: dict) -> None:
    """Move each participant's files into the given ``ses-`` folders (copies), the water
    reference found by its entities (ReferenceSignal dropped)."""
    for sub, labels in sessions.items():
        src = root / f"sub-{sub}" / "mrs"
        for ses in labels:
            dst = root / f"sub-{sub}" / f"ses-{ses}" / "mrs"
            dst.mkdir(parents=True)
            for path in src.iterdir():
                new = dst / path.name.replace(f"sub-{sub}_", f"sub-{sub}_ses-{ses}_")
                shutil.copyfile(path, new)
                if new.suffix == ".json":
                    sidecar = json.loads(new.read_text())
                    sidecar.pop("ReferenceSignal", None)
                    new.write_text(json.dumps(sidecar))
        shutil.rmtree(src)


@pytest.fixture
def sessions(demo):
    """sub-01 with sessions 1 and 2, sub-02 with session 1 only."""
    _into_sessions(demo, {"01": ("1", "2"), "02": ("1",)})
    return demo


def test_a_participant_without_the_selected_session_is_skipped_not_failed(sessions):
    errors, skipped = {}, {}
    found = discovery.discover(sessions, session_labels=["2"], errors=errors, skipped=skipped)
    assert errors == {}
    assert [a.session for a in found["01"]] == ["2"]
    assert skipped == {"02": f"{sessions / 'sub-02'}: no session 2 (--session-label; its "
                             "sessions: 1)"}


def test_a_session_label_no_participant_has_is_refused(sessions, tmp_path, capsys):
    status = cli.main([str(sessions), str(tmp_path / "out"), "participant", "-w",
                       str(tmp_path / "work"), "--session-label", "3", "--skip-bids-validation"])
    assert status == cli.EXIT_USAGE
    assert (f"{sessions}: session label(s) 3 not found in the dataset (available: 1, 2)"
            in capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_session_selection_runs_exit_0_and_the_group_reports_skipped(sessions, tmp_path):
    """The probe: sub-02 (session 1 only) was FAILED by --session-label 2, exit 1, and the
    group level listed it as failed and exited 1."""
    out = tmp_path / "out"
    status = cli.main([str(sessions), str(out), "participant", "-w", str(tmp_path / "work"),
                       "--session-label", "2", "--skip-bids-validation", "--nprocs", "1"])
    assert status == cli.EXIT_OK
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (["01"], [], ["02"])
    entry = summary["participants"]["02"]
    assert entry["status"] == "skipped" and "no session 2" in entry["reason"]
    assert not (out / "sub-02").exists()  # no run record: the run did not process it
    log = (out / "logs" / "dmrs-bids.log").read_text()
    assert "sub-02: skipped: " in log and "FAILED" not in log
    assert cli.main([str(sessions), str(out), "group"]) == cli.EXIT_OK
    with open(out / "group_status.tsv", newline="") as fh:
        rows = {r["participant_id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert rows["sub-01"]["status"] == "ok"
    assert rows["sub-02"]["status"] == "skipped" and "no session 2" in rows["sub-02"]["reason"]
    assert rows["sub-02"]["run_id"] == summary["run_id"]
    html = (out / "group.html").read_text()
    assert "Skipped (never processed" in html and "Failed or without" not in html


def test_a_skipping_run_leaves_an_earlier_result_current(tmp_path):
    """A participant processed before and skipped by a later --session-label run: the group
    level still reads the earlier (ok) run; the skip is not a run of it."""
    out = tmp_path / "out"
    (out / "sub-02").mkdir(parents=True)
    (out / "sub-02" / "sub-02_run.json").write_text(json.dumps(
        {"run_id": "early", "finished_epoch": 1.0, "status": "ok", "errors": []}))
    (out / "logs").mkdir()
    (out / "logs" / "run_summary.json").write_text(json.dumps(
        {"run_id": "late", "finished_epoch": 2.0, "participants": {
            "02": {"status": "skipped", "errors": [], "reason": "no session 2"}}}))
    assert group.latest_run(out, "02")["run_id"] == "early"
    assert group.latest_run(out, "02", "skipped")["run_id"] == "late"


def test_discover_subject_called_with_none_of_its_sessions_raises(sessions):
    """discover() leaves such a participant out (skipped) before calling discover_subject;
    called directly anyway, it refuses: it finds no svs file, it never takes another session."""
    with pytest.raises(discovery.DiscoveryError, match="no single-voxel"):
        discovery.discover_subject(discovery.load_layout(sessions), "02", ["2"])
