"""A run refused by an input check writes nothing to the output folder (a folder that did not
exist before does not exist after); a file given as bids_dir is named as not a directory; with
``--participant-label`` the validator's per-file errors are logged only for the selected
participants (the full report stays in ``logs/bids_validation.json``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bids_app import cli
from bids_app.runlog import setup_early_logging, setup_logging


def _dataset(root: Path, description: bool = True) -> Path:
    """A tiny BIDS folder with two participants (MRS folders with a sidecar only)."""
    for label in ("01", "02"):
        mrs = root / f"sub-{label}" / "mrs"
        mrs.mkdir(parents=True)
        (mrs / f"sub-{label}_svs.json").write_text("{}")
    if description:
        (root / "dataset_description.json").write_text(
            json.dumps({"Name": "t", "BIDSVersion": "1.10.0"}))
    return root


def _refused(tmp_path, capsys, argv: list[str]) -> str:
    """Run the CLI; it must exit 2 and leave no output folder. Returns its stderr."""
    out = tmp_path / "out"
    status = cli.main([argv[0], str(out), *argv[1:]])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE, err
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_missing_dataset_description_refuses_before_writing(tmp_path, capsys):
    bids = _dataset(tmp_path / "in", description=False)
    err = _refused(tmp_path, capsys, [str(bids), "participant", "-w", str(tmp_path / "work")])
    assert "no dataset_description.json" in err and str(bids) in err


def test_invalid_dataset_description_refuses_before_writing(tmp_path, capsys):
    bids = _dataset(tmp_path / "in")
    (bids / "dataset_description.json").write_text("[1, 2]")
    err = _refused(tmp_path, capsys, [str(bids), "participant", "-w", str(tmp_path / "work"),
                                      "--skip-bids-validation"])
    assert str(bids / "dataset_description.json") in err and "not an object" in err


@pytest.mark.parametrize("make_args, expected", [
    (lambda tmp: ["--bids-filter-file", str(tmp / "absent.json")], "filter file not found"),
    (lambda tmp: ["--config", str(tmp / "bad.toml")], "water_concentration_mm"),
    (lambda tmp: ["--participant-label", "09"], "09"),
])
def test_other_input_refusals_write_nothing(tmp_path, capsys, make_args, expected):
    bids = _dataset(tmp_path / "in")
    (tmp_path / "bad.toml").write_text("[quantification]\nwater_concentration_mm = -5.0\n")
    err = _refused(tmp_path, capsys, [str(bids), "participant", "-w", str(tmp_path / "work"),
                                      "--skip-bids-validation", *make_args(tmp_path)])
    assert expected in err


def test_group_level_with_unknown_label_writes_nothing(tmp_path, capsys):
    bids = _dataset(tmp_path / "in")
    err = _refused(tmp_path, capsys, [str(bids), "group", "--participant-label", "01"])
    assert "no participant-level outputs for sub-01" in err


def test_a_file_as_bids_dir_is_named_as_not_a_directory(tmp_path, capsys):
    afile = tmp_path / "data.nii.gz"
    afile.write_bytes(b"x")
    err = _refused(tmp_path, capsys, [str(afile), "participant", "-w", str(tmp_path / "work")])
    assert f"{afile}: input BIDS directory is not a directory" in err
    assert "does not exist" not in err
    err = _refused(tmp_path, capsys, [str(tmp_path / "absent"), "participant"])
    assert "does not exist" in err


def test_validator_errors_are_logged_only_for_selected_participants(tmp_path):
    bids = tmp_path / "in"
    per_file = {bids / "sub-01" / "mrs" / "x.txt": ["NOT_INCLUDED"],
                bids / "sub-02" / "ses-1" / "mrs" / "y.txt": ["NOT_INCLUDED"],
                bids / "sub-011" / "z.txt": ["NOT_INCLUDED"],
                bids / "participants.tsv": ["TSV_ERROR"],
                bids: ["DATASET"]}
    assert cli.selected_files(per_file, bids, None) == per_file
    kept = cli.selected_files(per_file, bids, ["sub-01"])
    assert set(kept) == {bids / "sub-01" / "mrs" / "x.txt", bids / "participants.tsv", bids}
    assert set(cli.selected_files(per_file, bids, ["02", "011"])) == set(per_file) - {
        bids / "sub-01" / "mrs" / "x.txt"}


def test_records_of_the_checks_reach_the_log_file_once_it_exists(tmp_path):
    earlier = setup_early_logging(0)
    logging.getLogger("dmrs_bids").debug("discovery of sub-01 failed: a traceback")
    assert not (tmp_path / "out").exists()
    setup_logging(0, tmp_path / "out", "", earlier)
    for handler in logging.getLogger("dmrs_bids").handlers:
        handler.flush()
    log = (tmp_path / "out" / "logs" / "dmrs-bids.log").read_text()
    assert "discovery of sub-01 failed: a traceback" in log
    setup_logging(0)  # no file handler left open on tmp_path
