"""A participant's work folder is reused only by the code that made it (bids_app.work_cache):
nipype keys a cached step by its inputs, not by the code that ran it, so after an upgrade a
rerun with the same -w would pass the old version's results off as the new one's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bids_app.work_cache import (STAMP_NAME, code_stamp, reuse_or_clear, source_digest,
                                 stamp_difference)
from robust_support import demo, demo_master  # noqa: F401  (fixtures)

STAMP = {"dmrs_bids": "1.0.0", "python": "3.11.7", "packages": {"numpy": "2.1.0"},
         "source_sha256": "a" * 64}


def _cached_step(folder: Path) -> Path:
    step = folder / "acq_wf" / "fit" / "result_fit.pklz"
    step.parent.mkdir(parents=True)
    step.write_bytes(b"cached result")
    return step


def test_a_folder_made_by_the_same_code_is_kept(tmp_path):
    folder = tmp_path / "sub_01_wf"
    assert reuse_or_clear(folder, STAMP) == ""  # absent: created and stamped
    step = _cached_step(folder)
    assert reuse_or_clear(folder, STAMP) == ""
    assert step.read_bytes() == b"cached result"
    assert json.loads((folder / STAMP_NAME).read_text()) == STAMP


@pytest.mark.parametrize("found, words", [
    ({**STAMP, "dmrs_bids": "0.9.0"}, "made by dmrs-bids 0.9.0, this is 1.0.0"),
    ({**STAMP, "packages": {"numpy": "1.26.4"}}, "other versions of numpy"),
    ({**STAMP, "source_sha256": "b" * 64}, "the app's files differ"),
    (None, "no code stamp"),
])
def test_a_folder_made_by_other_code_is_removed_with_the_reason(tmp_path, found, words):
    folder = tmp_path / "sub_01_wf"
    folder.mkdir()
    if found is not None:
        (folder / STAMP_NAME).write_text(json.dumps(found))
    step = _cached_step(folder)
    note = reuse_or_clear(folder, STAMP)
    assert words in note and str(folder) in note
    assert not step.exists()  # nothing of the other code's results is served
    assert json.loads((folder / STAMP_NAME).read_text()) == STAMP


def test_source_digest_follows_every_file_and_ignores_byte_code(tmp_path):
    root = tmp_path / "pkg"
    (root / "__pycache__").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "templates").mkdir()
    (root / "templates" / "page.html").write_text("<p>")
    before = source_digest([root])
    (root / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert source_digest([root]) == before
    (root / "templates" / "page.html").write_text("<p>!")
    assert source_digest([root]) != before


def test_the_current_stamp_names_the_installed_app():
    """The stamp holds what is installed, read here independently (package metadata, the
    source files' bytes): an upgrade of any of them makes a folder another code's."""
    from importlib.metadata import version

    import bids_app
    import pipeline
    import workflows

    stamp = code_stamp()
    assert stamp["dmrs_bids"] == pipeline.__version__
    assert stamp["packages"]["nipype"] == version("nipype")
    assert stamp["packages"]["numpy"] == version("numpy")
    roots = [Path(m.__file__).parent for m in (bids_app, workflows, pipeline)]
    assert stamp["source_sha256"] == source_digest(roots)
    assert stamp_difference({**stamp, "packages": {**stamp["packages"], "numpy": "0"}},
                            stamp) == "it was made with other versions of numpy"


@pytest.mark.slow  # two participant runs of the small demo
def test_a_rerun_after_an_upgrade_recomputes_instead_of_serving_the_old_results(
        demo, tmp_path, capfd):  # noqa: F811
    from bids_app import cli

    def run() -> int:
        return cli.main([str(demo), str(tmp_path / "out"), "participant", "--participant-label",
                         "01", "-w", str(tmp_path / "work"), "--nprocs", "1",
                         "--skip-bids-validation"])

    assert run() == 0
    folder = tmp_path / "work" / "dmrs_bids_wf" / "sub_01_wf"
    results = sorted(folder.rglob("result_*.pklz"))
    assert results and (folder / STAMP_NAME).is_file()
    marker = results[0].parent / "marker_from_the_old_version"
    marker.write_text("old")
    stamp = json.loads((folder / STAMP_NAME).read_text())
    (folder / STAMP_NAME).write_text(json.dumps({**stamp, "dmrs_bids": "0.0.1"}))
    capfd.readouterr()
    assert run() == 0
    assert not marker.exists()  # the old folder went; every step ran again
    assert sorted(folder.rglob("result_*.pklz"))
    printed = capfd.readouterr()
    assert "made by dmrs-bids 0.0.1" in printed.out + printed.err  # the run's warning


@pytest.mark.slow  # one participant run of the small demo
def test_an_unusable_work_folder_fails_only_its_participant(demo, tmp_path):  # noqa: F811
    """Its work folder cannot be made (here a file stands where the folder goes; in practice,
    e.g., root-owned files of an earlier container run): that participant fails naming the
    folder, the other is processed."""
    from bids_app import cli

    blocked = tmp_path / "work" / "dmrs_bids_wf" / "sub_01_wf"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    status = cli.main([str(demo), str(tmp_path / "out"), "participant", "-w",
                       str(tmp_path / "work"), "--nprocs", "2", "--skip-bids-validation"])
    assert status == 1
    summary = json.loads((tmp_path / "out" / "logs" / "run_summary.json").read_text())
    assert summary["succeeded"] == ["02"] and summary["failed"] == ["01"]
    (reason,) = summary["participants"]["01"]["errors"]
    assert str(blocked) in reason and "work folder" in reason
