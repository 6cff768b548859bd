"""Re-running dmrs-bids-convert on a dataset it wrote before.

With --overwrite, a participant/session converted before and skipped now (an input became
unreadable) has the files of that earlier conversion moved, unchanged, to
BIDS_DIR/set_aside/<unit>_before-<run id>/, with its participants.tsv row when nothing of it
is left, and a warning naming them. Before, they stayed in place with their row, and dmrs-bids
processed the stale conversion beside the new one. --participant-label converts only the
participants named (a fixed one is added without --overwrite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_convert_partial import EMPTY, _entry, _scan, _written  # noqa: E402

from bids_app.convert import bids_validator_errors, main  # noqa: E402
from bids_app.convert_set_aside import aside_folder, with_set_aside_ignored  # noqa: E402
from bids_app.discovery import load_layout  # noqa: E402


def _convert(tmp_path, capsys, entries: list[str], source, *options: str):
    """Run the command line on a mapping of ``entries`` into ``tmp_path/bids``:
    (exit code, stderr, output root)."""
    mapping = tmp_path / "map.toml"
    mapping.write_text("".join(entries))
    out = tmp_path / "bids"
    code = main([str(mapping), str(out), "--source-dir", str(source), "-q", *options])
    return code, capsys.readouterr().err, out


def _bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _warnings(err: str) -> list[str]:
    prefix = "dmrs-bids-convert: warning: "
    return [line[len(prefix):] for line in err.splitlines() if line.startswith(prefix)]


def test_overwrite_sets_a_skipped_participants_earlier_conversion_aside(
        shared_data, tmp_path, capsys):
    """sub-02 was converted; its spectrum is now an empty file. With --overwrite, sub-01 is
    converted again and sub-02's earlier files move, unchanged, to set_aside/, with its
    participants.tsv row (its age column kept): dmrs-bids and the BIDS validator see only
    sub-01, and a warning names every file moved and where."""
    good = [_entry("01", "svs", _scan(tmp_path, "a.nii.gz")),
            _entry("02", "svs", _scan(tmp_path, "b.nii.gz"))]
    assert _convert(tmp_path, capsys, good, shared_data)[0] == 0
    out = tmp_path / "bids"
    (out / "participants.tsv").write_text("participant_id\tage\nsub-01\t31\nsub-02\t42\n")
    before = _bytes(out)

    code, err, out = _convert(tmp_path, capsys, [good[0], _entry("02", "svs", EMPTY)],
                              shared_data, "--overwrite")

    assert code == 2
    assert err.splitlines()[-1] == "wrote 1 of 2 participants (sub-01); skipped 1 (sub-02)"
    assert not (out / "sub-02").exists()
    assert (out / "participants.tsv").read_text() == "participant_id\tage\nsub-01\t31\n"
    [aside] = (out / "set_aside").iterdir()
    assert aside.name.startswith("sub-02_before-")
    moved = {p.relative_to(aside).as_posix(): p.read_bytes()
             for p in aside.rglob("*") if p.is_file()}
    assert moved == {"sub-02/mrs/sub-02_svs.nii.gz": before["sub-02/mrs/sub-02_svs.nii.gz"],
                     "sub-02/mrs/sub-02_svs.json": before["sub-02/mrs/sub-02_svs.json"],
                     "participants.tsv": b"participant_id\tage\nsub-02\t42\n"}
    [warning] = [w for w in _warnings(err) if "set_aside" in w]
    assert warning.startswith("sub-02 is skipped, so its files from an earlier conversion "
                              "(sub-02/mrs/sub-02_svs.nii.gz, sub-02/mrs/sub-02_svs.json) "
                              "are not current: moved, unchanged, to ")
    assert warning.endswith(f"{aside}, with its participants.tsv row; dmrs-bids will not "
                            "process them")
    assert load_layout(out).get_subjects() == ["01"]
    assert bids_validator_errors(out) == []  # set_aside/ is in .bidsignore
    assert (out / ".bidsignore").read_text() == "set_aside\n"


def test_a_skipped_session_is_set_aside_alone(shared_data, tmp_path, capsys):
    """Only the skipped session's files move (to a sub-01_ses-1 folder); sub-01 keeps its
    participants.tsv row, age included, as its new session 2 is written."""
    assert _convert(tmp_path, capsys, [
        _entry("01", "svs", _scan(tmp_path, "a.nii.gz"), session="1")], shared_data)[0] == 0
    (tmp_path / "bids/participants.tsv").write_text("participant_id\tage\nsub-01\t31\n")

    code, err, out = _convert(tmp_path, capsys, [
        _entry("01", "svs", EMPTY, session="1"),
        _entry("01", "svs", _scan(tmp_path, "b.nii.gz"), session="2")],
        shared_data, "--overwrite")

    assert code == 2
    [aside] = (out / "set_aside").iterdir()
    assert aside.name.startswith("sub-01_ses-1_before-")
    assert _written(aside) == ["sub-01/ses-1/mrs/sub-01_ses-1_svs.json",
                               "sub-01/ses-1/mrs/sub-01_ses-1_svs.nii.gz"]
    assert [p for p in _written(out) if p.startswith("sub-")] == \
        ["sub-01/ses-2/mrs/sub-01_ses-2_svs.json", "sub-01/ses-2/mrs/sub-01_ses-2_svs.nii.gz"]
    assert (out / "participants.tsv").read_text() == "participant_id\tage\nsub-01\t31\n"
    assert "with its participants.tsv row" not in err


def test_files_of_a_skipped_participant_not_from_this_mapping_stay_with_a_warning(
        shared_data, tmp_path, capsys):
    """A file in sub-02's mrs folder that this mapping does not name (written by another
    conversion) is not this conversion's to move: it stays, with the warning written
    participants get, and so does sub-02's row (sub-02 still has data)."""
    good = [_entry("01", "svs", _scan(tmp_path, "a.nii.gz")),
            _entry("02", "svs", _scan(tmp_path, "b.nii.gz"))]
    _convert(tmp_path, capsys, good, shared_data)
    out = tmp_path / "bids"
    other = out / "sub-02/mrs/sub-02_acq-other_svs.nii.gz"
    other.write_bytes((out / "sub-02/mrs/sub-02_svs.nii.gz").read_bytes())

    code, err, out = _convert(tmp_path, capsys, [good[0], _entry("02", "svs", EMPTY)],
                              shared_data, "--overwrite")

    assert code == 2 and other.is_file()
    assert not (out / "sub-02/mrs/sub-02_svs.nii.gz").exists()
    assert f"{other} was not written by this conversion (left from an earlier one?): " \
           "dmrs-bids will process it as an input; remove it if it is stale" in _warnings(err)
    assert (out / "participants.tsv").read_text().split() == \
        ["participant_id", "sub-01", "sub-02"]


def test_when_nothing_can_be_written_the_earlier_conversion_stays_whole(
        shared_data, tmp_path, capsys):
    """No one convertible: nothing is written and nothing moved; the dataset is the earlier
    conversion, whole (not a mix)."""
    assert _convert(tmp_path, capsys, [_entry("01", "svs", _scan(tmp_path, "a.nii.gz"))],
                    shared_data)[0] == 0
    before = _bytes(tmp_path / "bids")
    code, err, out = _convert(tmp_path, capsys, [_entry("01", "svs", EMPTY)], shared_data,
                              "--overwrite")
    assert code == 2 and "file is empty (0 bytes)" in err
    assert _bytes(out) == before


def test_participant_label_adds_a_fixed_participant_without_overwrite(
        shared_data, tmp_path, capsys):
    """sub-02 was skipped; once its input is fixed, --participant-label 02 converts it alone
    (no --overwrite needed, sub-01's files untouched) and adds its participants.tsv row."""
    first = [_entry("01", "svs", _scan(tmp_path, "a.nii.gz")), _entry("02", "svs", EMPTY)]
    assert _convert(tmp_path, capsys, first, shared_data)[0] == 2
    sub01 = _bytes(tmp_path / "bids" / "sub-01")
    fixed = [first[0], _entry("02", "svs", _scan(tmp_path, "b.nii.gz"))]

    code, err, out = _convert(tmp_path, capsys, fixed, shared_data, "--participant-label",
                              "sub-02")

    assert code == 0, err
    assert _bytes(out / "sub-01") == sub01
    assert _written(out / "sub-02") == ["mrs/sub-02_svs.json", "mrs/sub-02_svs.nii.gz"]
    assert (out / "participants.tsv").read_text().split() == \
        ["participant_id", "sub-01", "sub-02"]
    assert not (out / "set_aside").exists()


def test_participant_label_the_mapping_lacks_is_refused(shared_data, tmp_path, capsys):
    code, err, out = _convert(tmp_path, capsys, [
        _entry("01", "svs", _scan(tmp_path, "a.nii.gz"))], shared_data,
        "--participant-label", "01", "03")
    assert code == 2 and not out.exists()
    assert err.strip() == (f"dmrs-bids-convert: error: --participant-label sub-03: "
                           f"{tmp_path / 'map.toml'} has no acquisition of it (its "
                           "participants: sub-01)")


def test_participant_label_and_a_link_to_a_participant_left_out(shared_data, tmp_path, capsys):
    """sub-02's spectrum names sub-01's water reference: with sub-01 left out, that is refused
    while the reference is not in the dataset, and linked as usual once it is."""
    entries = [_entry("01", "mrsref", _scan(tmp_path, "w.nii.gz"), id="water"),
               _entry("02", "svs", _scan(tmp_path, "b.nii.gz"), reference="water")]
    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--participant-label", "02")
    assert code == 2 and not out.exists()
    assert "acquisition 2 (sub-02_svs.nii.gz): reference 'water' names " \
           f"{out / 'sub-01/mrs/sub-01_mrsref.nii.gz'}, which does not exist and is not " \
           "converted now (its participant, sub-01, is not among --participant-label)" in err

    assert _convert(tmp_path, capsys, entries, shared_data, "--participant-label", "01")[0] == 0
    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--participant-label", "02")
    assert code == 0, err
    sidecar = json.loads((out / "sub-02/mrs/sub-02_svs.json").read_text())
    assert sidecar["ReferenceSignal"] == "bids::sub-01/mrs/sub-01_mrsref.nii.gz"


def test_set_aside_line_is_added_once_to_a_bidsignore():
    assert with_set_aside_ignored("") == "set_aside\n"
    assert with_set_aside_ignored("extra/") == "extra/\nset_aside\n"
    assert with_set_aside_ignored("extra/\nset_aside\n") == "extra/\nset_aside\n"


def test_aside_folder_names_the_unit_and_the_run(tmp_path):
    assert aside_folder(tmp_path, "sub-01/ses-2", "20261207T093900Z-7") == \
        tmp_path / "set_aside" / "sub-01_ses-2_before-20261207T093900Z-7"
