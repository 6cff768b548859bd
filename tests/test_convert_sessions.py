"""dmrs-bids-convert --session-label: only the acquisitions of the sessions named are read,
checked and written (labels with or without 'ses-'), as --participant-label does for
participants; the other sessions' files are not touched, not set aside and not warned about.
A label the mapping has no acquisition of is refused naming those it has; a selected
participant with none of the sessions is left out with a warning (as dmrs-bids does)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_convert_partial import EMPTY, _entry, _scan, _written  # noqa: E402
from test_convert_rerun import _bytes, _convert, _warnings  # noqa: E402

from bids_app.convert import inputs_not_written  # noqa: E402


def _two_sessions(tmp_path) -> list[str]:
    """sub-01 sessions 1 and 2, sub-02 session 1: readable scans."""
    return [_entry("01", "svs", _scan(tmp_path, "a1.nii.gz"), session="1"),
            _entry("01", "svs", _scan(tmp_path, "a2.nii.gz"), session="2"),
            _entry("02", "svs", _scan(tmp_path, "b1.nii.gz"), session="1")]


def test_session_label_converts_only_that_session(shared_data, tmp_path, capsys):
    """Session 1's inputs are now empty files: --session-label ses-2 never reads them (exit 0),
    writes only sub-01's session 2, and warns that sub-02 has no session 2."""
    entries = _two_sessions(tmp_path)
    entries[0] = _entry("01", "svs", EMPTY, session="1")
    entries[2] = _entry("02", "svs", EMPTY, session="1")

    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--session-label", "ses-2")

    assert code == 0, err
    assert [p for p in _written(out) if p.startswith("sub-")] == [
        "sub-01/ses-2/mrs/sub-01_ses-2_svs.json", "sub-01/ses-2/mrs/sub-01_ses-2_svs.nii.gz"]
    assert (out / "participants.tsv").read_text().split() == ["participant_id", "sub-01"]
    assert _warnings(err) == [f"sub-02: {tmp_path / 'map.toml'} has no acquisition of it in "
                              "ses-2 (--session-label; its sessions: ses-1); not converted"]


def test_session_label_with_overwrite_leaves_other_sessions_alone(
        shared_data, tmp_path, capsys):
    """All converted; then sub-01's session 2 input breaks. --overwrite --session-label 2
    with sub-02 given a session 2: sub-01/ses-2 is set aside alone, sub-02/ses-2 written, the
    session-1 files keep their bytes, and none of them is called 'not written by this
    conversion' (before the option existed, a session-1 file left in place was)."""
    entries = _two_sessions(tmp_path)
    assert _convert(tmp_path, capsys, entries, shared_data)[0] == 0
    before = _bytes(tmp_path / "bids")
    entries[1] = _entry("01", "svs", EMPTY, session="2")
    entries.append(_entry("02", "svs", _scan(tmp_path, "b2.nii.gz"), session="2"))

    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--overwrite",
                              "--session-label", "2")

    assert code == 2
    assert err.splitlines()[-1] == ("wrote 1 of 2 participants/sessions (sub-02/ses-2); "
                                    "skipped 1 (sub-01/ses-2)")
    [aside] = (out / "set_aside").iterdir()
    assert aside.name.startswith("sub-01_ses-2_before-")
    assert _written(aside) == ["sub-01/ses-2/mrs/sub-01_ses-2_svs.json",
                               "sub-01/ses-2/mrs/sub-01_ses-2_svs.nii.gz"]
    after = _bytes(out)
    for name in ("sub-01/ses-1/mrs/sub-01_ses-1_svs.nii.gz", "sub-01/ses-1/mrs/sub-01_ses-1_svs.json",
                 "sub-02/ses-1/mrs/sub-02_ses-1_svs.nii.gz", "sub-02/ses-1/mrs/sub-02_ses-1_svs.json"):
        assert after[name] == before[name]
    assert "sub-02/ses-2/mrs/sub-02_ses-2_svs.nii.gz" in after
    assert not any("not written by this conversion" in w for w in _warnings(err))
    assert (out / "participants.tsv").read_text().split() == \
        ["participant_id", "sub-01", "sub-02"]


def test_session_label_the_mapping_lacks_is_refused(shared_data, tmp_path, capsys):
    code, err, out = _convert(tmp_path, capsys, _two_sessions(tmp_path), shared_data,
                              "--session-label", "1", "ses-3")
    assert code == 2 and not out.exists()
    assert err.strip() == (f"dmrs-bids-convert: error: --session-label ses-3: "
                           f"{tmp_path / 'map.toml'} has no acquisition of it (its sessions: "
                           "ses-1, ses-2)")


def test_participant_and_session_labels_that_select_nothing_are_refused(
        shared_data, tmp_path, capsys):
    code, err, out = _convert(tmp_path, capsys, _two_sessions(tmp_path), shared_data,
                              "--participant-label", "02", "--session-label", "2")
    assert code == 2 and not out.exists()
    assert err.strip() == (f"dmrs-bids-convert: error: sub-02: {tmp_path / 'map.toml'} has no "
                           "acquisition of it in ses-2 (--session-label; its sessions: "
                           "ses-1); not converted")


def test_participant_and_session_labels_together(shared_data, tmp_path, capsys):
    code, err, out = _convert(tmp_path, capsys, _two_sessions(tmp_path), shared_data,
                              "--participant-label", "sub-01", "--session-label", "1")
    assert code == 0, err
    assert [p for p in _written(out) if p.startswith("sub-")] == [
        "sub-01/ses-1/mrs/sub-01_ses-1_svs.json", "sub-01/ses-1/mrs/sub-01_ses-1_svs.nii.gz"]


def test_a_link_to_a_session_left_out_must_be_in_the_dataset(shared_data, tmp_path, capsys):
    """Session 2's spectrum names the water reference of session 1: refused while that is not
    in the dataset, naming the session; linked once it is."""
    entries = [_entry("01", "mrsref", _scan(tmp_path, "w.nii.gz"), session="1", id="water"),
               _entry("01", "svs", _scan(tmp_path, "a.nii.gz"), session="2",
                      reference="water")]
    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--session-label", "2")
    assert code == 2 and not out.exists()
    assert f"reference 'water' names {out / 'sub-01/ses-1/mrs/sub-01_ses-1_mrsref.nii.gz'}, " \
           "which does not exist and is not converted now (its session, sub-01/ses-1, is not " \
           "among --session-label); add it or convert it first" in err
    assert _convert(tmp_path, capsys, entries, shared_data, "--session-label", "1")[0] == 0
    assert _convert(tmp_path, capsys, entries, shared_data, "--session-label", "2")[0] == 0


def test_inputs_not_written_looks_only_in_the_sessions_selected(tmp_path):
    one, two = (tmp_path / f"sub-01/ses-{s}/mrs/sub-01_ses-{s}_svs.nii.gz" for s in (1, 2))
    for path in (one, two):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    assert inputs_not_written(tmp_path, ["sub-01"], [two], ["ses-2"]) == []
    assert inputs_not_written(tmp_path, ["sub-01"], [two]) == [one]
