"""A broken JSON that a file inherits (BIDS inheritance: a subject-, session- or dataset-level
``*_svs.json`` / ``*_mrsref.json``, or one in ``mrs/`` without the file's full name) fails only
the participants whose files inherit it, naming it and its problem. Before, such a file outside
``mrs/`` made the pybids layout raise OSError and no participant was discovered; one inside
``mrs/`` was left out of the index unnamed, and the participant was processed without it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master, paths  # noqa: E402,F401
from test_session_selection import _into_sessions  # noqa: E402

from bids_app import cli, discovery  # noqa: E402
from bids_app.dataset_files import inherited_json_problem  # noqa: E402

BROKEN = {"{bad": "not valid JSON (Expecting property name enclosed in double quotes",
          "[1]": "holds a JSON list, not an object of key/value pairs"}


def _expected(json_file: Path, inheritor: Path, content: str) -> str:
    return (f"{json_file}: sidecar inherited by {inheritor.name} (BIDS inheritance) "
            f"{BROKEN[content]}")


@pytest.mark.parametrize("content", sorted(BROKEN))
@pytest.mark.parametrize("where, inheritor", [
    ("sub-01/sub-01_svs.json", "svs"),
    ("sub-01/mrs/sub-01_svs.json", "svs"),
    ("sub-01/sub-01_acq-dwpress_mrsref.json", "ref"),
    ("acq-dwpress_svs.json", "svs"),  # dataset level, but only sub-01's acquisition is dwpress
])
def test_a_broken_inherited_json_fails_only_the_participants_that_inherit_it(
        demo, where, inheritor, content):
    (demo / where).write_text(content)
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["02"] and sorted(errors) == ["01"], errors
    expected = _expected(demo / where, paths(demo, "01")[inheritor], content)
    assert errors["01"].startswith(expected), errors["01"]


def test_a_broken_session_level_json_fails_the_participant_not_other_sessions_runs(demo):
    _into_sessions(demo, {"01": ("1", "2"), "02": ("1",)})
    broken = demo / "sub-01" / "ses-1" / "sub-01_ses-1_svs.json"
    broken.write_text("{bad")
    svs = demo / "sub-01/ses-1/mrs/sub-01_ses-1_acq-dwpress_svs.nii.gz"
    errors: dict = {}
    assert sorted(discovery.discover(demo, errors=errors)) == ["02"]
    assert errors["01"].startswith(_expected(broken, svs, "{bad")), errors
    errors.clear()  # a run of session 2 does not read session 1's files
    found = discovery.discover(demo, session_labels=["2"], errors=errors)
    assert not errors and [a.session for a in found["01"]] == ["2"]


def test_a_broken_dataset_level_json_that_every_file_inherits_fails_each_named(demo, tmp_path,
                                                                               capsys):
    broken = demo / "svs.json"
    broken.write_text("{bad")
    status = cli.main([str(demo), str(tmp_path / "out"), "participant", "-w",
                       str(tmp_path / "work"), "--skip-bids-validation"])
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "logs" / "run_summary.json").read_text())
    assert status == 1 and summary["failed"] == ["01", "02"] and not summary["succeeded"]
    for label in ("01", "02"):
        (message,) = summary["participants"][label]["errors"]
        assert message.startswith(f"{broken}: sidecar inherited by sub-{label}_acq-"), message
        assert "not valid JSON" in message
    assert "OSError" not in err and "Traceback" not in err


def test_broken_json_files_that_nothing_inherits_stop_nothing(demo):
    """A broken JSON of another acquisition or suffix (``participants.json`` too, which made
    the layout raise before) leaves every participant as it was."""
    for name in ("acq-other_svs.json", "participants.json", "sub-01/sub-01_run-1_svs.json",
                 "sub-01/mrs/sub-01_acq-dwpress_T1w.json"):
        (demo / name).write_text("{bad")
    errors: dict = {}
    assert sorted(discovery.discover(demo, errors=errors)) == ["01", "02"] and not errors


def test_inherited_json_problem_follows_bids_inheritance(tmp_path):
    """Nearest first; the file's own sidecar, JSONs of another suffix, with an entity the file
    lacks or outside its folders are not inherited; a file outside the dataset inherits
    nothing."""
    mrs = tmp_path / "sub-01" / "mrs"
    mrs.mkdir(parents=True)
    svs = mrs / "sub-01_acq-x_svs.nii.gz"
    for name in ("sub-01/mrs/sub-01_acq-x_svs.json", "sub-01/mrs/sub-01_acq-x_mrsref.json",
                 "sub-01/sub-01_acq-x_run-1_svs.json", "sub-01/mrs/sub-01_acq-y_svs.json",
                 "sub-02/sub-02_svs.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{bad")
    assert inherited_json_problem(svs, tmp_path) is None
    (tmp_path / "svs.json").write_text("[]")
    assert inherited_json_problem(svs, tmp_path) == _expected(tmp_path / "svs.json", svs, "[1]")
    (tmp_path / "sub-01" / "sub-01_acq-x_svs.json").write_text("{bad")
    assert inherited_json_problem(svs, tmp_path).startswith(
        _expected(tmp_path / "sub-01" / "sub-01_acq-x_svs.json", svs, "{bad"))
    assert inherited_json_problem(svs, mrs / "elsewhere") is None
