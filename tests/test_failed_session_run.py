"""A failed ``--session-label`` run sets aside only the sessions it ran. Before, it moved
everything under ``OUT/sub-<label>/`` (the other sessions too) to ``set_aside/``: a later
successful run of the failed session then left the untouched session out of the group tables,
silently."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import checksums, demo, demo_master  # noqa: E402,F401
from test_session_selection import _into_sessions  # noqa: E402

from bids_app import cli  # noqa: E402
from bids_app.failed_runs import FAILED_MARK, stale_outputs  # noqa: E402

PARTIAL = "sub-01/ses-2/mrs/sub-01_ses-2_acq-dwpress_transients.tsv"
"""What a run stopped partway leaves of session 2 (written before the failed run here)."""


def _run(bids: Path, out: Path, work: Path, session: str) -> tuple[int, dict]:
    status = cli.main([str(bids), str(out), "participant", "--participant-label", "01",
                       "--session-label", session, "-w", str(work),
                       "--skip-bids-validation", "--nprocs", "2"])
    return status, json.loads((out / "logs" / "run_summary_sub-01.json").read_text())


def _session_files(out: Path, session: str) -> dict:
    """Checksums of one session's outputs of sub-01: its folder and its figures."""
    return {k: v for k, v in checksums(out / "sub-01").items()
            if k.startswith(f"ses-{session}/") or k.startswith(f"figures/sub-01_ses-{session}_")}


def _group_sessions(out: Path) -> set:
    with open(out / "group_amplitudes.tsv", newline="") as fh:
        return {(r["participant_id"], r["session_id"]) for r in csv.DictReader(fh, delimiter="\t")}


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_a_failed_session_run_leaves_the_other_sessions_in_place(demo, tmp_path):
    _into_sessions(demo, {"01": ("1", "2"), "02": ("1",)})
    out = tmp_path / "out"
    status, _ = _run(demo, out, tmp_path / "w1", "1")
    assert status == cli.EXIT_OK
    ses1 = _session_files(out, "1")
    assert any(k.startswith("ses-1/mrs/") for k in ses1) and any(k.startswith("figures/")
                                                                  for k in ses1)
    partial = out / PARTIAL
    partial.parent.mkdir(parents=True)
    partial.write_text("condition\tb_value\n")
    svs2 = demo / "sub-01" / "ses-2" / "mrs" / "sub-01_ses-2_acq-dwpress_svs.nii.gz"
    good = svs2.read_bytes()
    svs2.write_bytes(b"")

    status, failed = _run(demo, out, tmp_path / "w2", "2")
    assert status == cli.EXIT_FAILED
    aside = out / "set_aside" / f"sub-01_before-{failed['run_id']}"
    # session 1 was not run: it stays, byte for byte; session 2's outputs were set aside
    assert _session_files(out, "1") == ses1
    assert not (out / "sub-01" / "ses-2").exists()
    assert (aside / PARTIAL).read_text() == "condition\tb_value\n"
    assert not (aside / "sub-01" / "ses-1").exists()
    page = (out / "sub-01.html").read_text()
    assert FAILED_MARK in page
    assert "The outputs present when this run failed for session(s) 2 were moved" in page
    assert "processed only session(s) 2" in page
    assert "Its other sessions (ses-1) were not touched" in page

    # fixed: session 2 succeeds, and the group tables hold both sessions again
    svs2.write_bytes(good)
    status, _ = _run(demo, out, tmp_path / "w3", "2")
    assert status == cli.EXIT_OK
    assert _session_files(out, "1") == ses1
    assert cli.main([str(demo), str(out), "group", "--participant-label", "01"]) == cli.EXIT_OK
    assert _group_sessions(out) == {("sub-01", "ses-1"), ("sub-01", "ses-2")}


def test_stale_outputs_of_a_session_run_are_its_sessions_and_the_report(tmp_path):
    out = tmp_path / "out"
    for rel in ("sub-01/ses-1/mrs/a.tsv", "sub-01/ses-2/mrs/b.tsv", "sub-01/sub-01_run.json",
                "sub-01/figures/sub-01_ses-1_acq-x_desc-fit_fig.svg",
                "sub-01/figures/sub-01_ses-2_acq-x_desc-fit_fig.svg", "sub-01.html"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("x")
    names = [p.relative_to(out).as_posix() for p in stale_outputs(out, "01", ["ses-2"])]
    assert names == ["sub-01/ses-2", "sub-01/figures/sub-01_ses-2_acq-x_desc-fit_fig.svg",
                     "sub-01.html"]
    assert len(stale_outputs(out, "01")) == 4  # no selection: all but the run record
