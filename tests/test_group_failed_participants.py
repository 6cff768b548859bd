"""The group level shows each failed or incomplete participant with the reason from its latest
participant-level run: in ``group_status.tsv`` (one row per participant, machine-readable) and in
``group.html``, not only as a bare label."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from bids_app import cli
from bids_app import derivatives as d
from bids_app.group import STATUS_COLUMNS, missing_files, run_group, table_problem
from bids_app.runlog import Outcome, write_run_records, write_summary


def _derivatives(out: Path, label: str) -> None:
    """The tables of one participant as the participant level writes them."""
    mrs = out / f"sub-{label}" / "mrs"
    stem = f"sub-{label}_acq-x"
    d.write_tsv(mrs / f"{stem}_amplitudes.tsv",
                [{"condition": 0, "b_value": 0.0, "metabolite": "tNAA", "amplitude": 1.0}],
                d.AMPLITUDES_COLUMNS)
    d.write_tsv(mrs / f"{stem}_diffusion.tsv",
                [{"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
                  "value": 0.15, "applicable": 1}], d.DIFFUSION_COLUMNS)
    d.write_json(mrs / f"{stem}_qc.json", {"summary": {"qc_status": "pass"}})


def _status(out: Path) -> dict:
    rows = d.read_tsv(out / "group_status.tsv")
    assert list(rows[0]) == STATUS_COLUMNS
    return {r["participant_id"]: r for r in rows}


def test_failed_missing_and_unreadable_participants_are_listed_with_their_reason(tmp_path):
    out, bids = tmp_path / "out", tmp_path / "in"
    for label in ("01", "02", "03"):
        _derivatives(out, label)
        (bids / f"sub-{label}").mkdir(parents=True)
    (bids / "sub-04").mkdir()  # in the dataset, never processed
    (out / "sub-03" / "mrs" / "sub-03_acq-x_qc.json").write_text("{ not json")
    started = time.time()
    reason = "/in/sub-02/mrs/sub-02_acq-x_svs.nii.gz: the compressed file is truncated"
    outcomes = [Outcome("01"), Outcome("02", ok=False, errors=[reason]), Outcome("03")]
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)

    result = {o.subject: o for o in run_group(out, None, bids)}

    assert result["01"].ok and not any(result[s].ok for s in ("02", "03", "04"))
    status = _status(out)
    assert status["sub-01"]["status"] == "ok" and status["sub-01"]["reason"] == "n/a"
    # no run id or time for an ok participant: identical runs give identical tables
    assert status["sub-01"]["run_id"] == "n/a" and status["sub-01"]["run_finished"] == "n/a"
    assert status["sub-02"]["status"] == "failed"
    assert status["sub-02"]["reason"] == reason  # the participant level's words, as logged
    run_id = status["sub-02"]["run_id"]
    assert run_id != "n/a" and status["sub-02"]["run_finished"] != "n/a"
    assert status["sub-03"]["status"] == "failed"
    assert "sub-03_acq-x_qc.json: unreadable" in status["sub-03"]["reason"]
    assert status["sub-04"]["status"] == "failed" and status["sub-04"]["run_id"] == "n/a"
    assert "no derivatives under" in status["sub-04"]["reason"]
    html = (out / "group.html").read_text()
    assert reason in html and run_id in html
    assert "sub-03_acq-x_qc.json: unreadable" in html and "no derivatives under" in html
    # the old derivatives of the failed participant stay out of the group tables
    assert "sub-02" not in {r["participant_id"] for r in d.read_tsv(out / "group_qc.tsv")}


def test_reason_text_is_escaped_in_the_report(tmp_path):
    out = tmp_path / "out"
    _derivatives(out, "01")
    outcomes = [Outcome("01", ok=False, errors=["<script>x</script>.nii: broken"])]
    write_run_records(out, outcomes, time.time())
    run_group(out, None, None)
    html = (out / "group.html").read_text()
    assert "&lt;script&gt;x&lt;/script&gt;.nii: broken" in html and "<script>x" not in html


@pytest.mark.slow  # two small participants through the app, then the group level (~25 s)
def test_truncated_input_end_to_end_reaches_group_outputs(tmp_path):
    """The audit's reproduction: the demo with sub-02's svs file truncated."""
    from bids_app.demo import write_demo_dataset

    bids = tmp_path / "bids"
    write_demo_dataset(bids, participants=2, small=True, cache_dir=str(tmp_path / "cache"))
    svs = next((bids / "sub-02" / "mrs").glob("*_svs.nii.gz"))
    with open(svs, "r+b") as fh:
        fh.truncate(2000)
    out, config = tmp_path / "out", tmp_path / "fast.toml"
    config.write_text('[diffusion]\nmodels = ["monoexponential"]\n')
    assert cli.main([str(bids), str(out), "participant", "-w", str(tmp_path / "work"),
                     "--config", str(config), "--skip-bids-validation",
                     "--nprocs", "2"]) == cli.EXIT_FAILED
    assert cli.main([str(bids), str(out), "group"]) == cli.EXIT_FAILED

    status = _status(out)
    assert status["sub-01"]["status"] == "ok"
    assert status["sub-02"]["status"] == "failed"
    assert str(svs) in status["sub-02"]["reason"]
    assert "truncated" in status["sub-02"]["reason"]
    html = (out / "group.html").read_text()
    assert status["sub-02"]["reason"] in html


# --- damaged participant derivatives: failed with the file named, the others unaffected -------

def _truncate(path: Path) -> None:
    """Cut the file mid-line, as a full disk or a killed copy leaves it."""
    size = min(3000, path.stat().st_size - 10)
    with open(path, "r+b") as fh:
        fh.truncate(size)


def _damage(mrs: Path, how: str) -> tuple[Path, str]:
    """Damage one derivative of the acquisition in ``mrs``; the file and the expected reason."""
    if how == "truncated amplitudes":
        path = next(mrs.glob("*_amplitudes.tsv"))
        _truncate(path)
        return path, "unreadable (truncated: no newline at the end of the file)"
    if how == "garbage diffusion":
        path = next(mrs.glob("*_diffusion.tsv"))
        path.write_text("garbage")
        return path, "unreadable (the header lacks column(s) metabolite, model"
    path = next(mrs.glob("*_qc.json"))
    path.unlink()
    return path, "missing"


DAMAGES = ["truncated amplitudes", "garbage diffusion", "deleted qc"]


def _check_damaged_group(out: Path, bids, damaged: str, kept: str, path: Path,
                         reason: str) -> None:
    outcomes = {o.subject: o for o in run_group(out, None, bids)}
    assert outcomes[kept].ok and not outcomes[damaged].ok
    status = _status(out)
    assert status[f"sub-{kept}"]["status"] == "ok"
    assert status[f"sub-{damaged}"]["status"] == "failed"
    assert f"{path}: {reason}" in status[f"sub-{damaged}"]["reason"]
    assert path.name in (out / "group.html").read_text()
    kind = path.name.rsplit("_", 1)[1].split(".")[0]
    sources = {r["participant_id"] for r in d.read_tsv(out / f"group_{kind}.tsv")}
    assert f"sub-{kept}" in sources  # the undamaged participant's rows are there
    # nothing of the damaged file reaches the group table
    assert f"sub-{damaged}" not in sources


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_derivative_fails_only_its_participant(tmp_path, how):
    out = tmp_path / "out"
    for label in ("01", "02"):
        _derivatives(out, label)
    path, reason = _damage(out / "sub-02" / "mrs", how)
    _check_damaged_group(out, None, "02", "01", path, reason)


def test_table_problem_names_truncation_field_counts_and_missing_columns():
    header = "a\tb\tc\n"
    assert table_problem(header + "1\t2\t3\n", [{"a": "1", "b": "2", "c": "3"}], "abc") is None
    assert table_problem(header, [], "abc") is None  # header only (no decay): whole
    assert table_problem("", [], "abc") == "empty file"
    assert "no newline at the end" in table_problem(header + "1\t2", [{"a": "1", "b": "2",
                                                                        "c": None}], "abc")
    short = table_problem(header + "1\t2\n", [{"a": "1", "b": "2", "c": None}], "abc")
    assert short == "line 2 has 2 field(s), the header 3"
    long = table_problem(header + "1\t2\t3\t4\n",
                         [{"a": "1", "b": "2", "c": "3", None: ["4"]}], "abc")
    assert long == "line 2 has 4 field(s), the header 3"
    assert table_problem("garbage\n", [], ["a", "b"]) == "the header lacks column(s) a, b"


def test_missing_files_per_acquisition(tmp_path):
    mrs = tmp_path / "mrs"
    found = [("amplitudes.tsv", None, mrs / "sub-01_acq-a_amplitudes.tsv"),
             ("qc.json", None, mrs / "sub-01_acq-b_qc.json")]
    assert missing_files(found) == [mrs / "sub-01_acq-a_diffusion.tsv",
                                    mrs / "sub-01_acq-a_qc.json",
                                    mrs / "sub-01_acq-b_amplitudes.tsv",
                                    mrs / "sub-01_acq-b_diffusion.tsv"]


@pytest.fixture(scope="module")
def demo_outputs(tmp_path_factory):
    """Two small demo participants through the participant level, once for the module."""
    from bids_app.demo import write_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    bids = root / "bids"
    write_demo_dataset(bids, participants=2, small=True, cache_dir=str(root / "cache"))
    out, config = root / "out", root / "fast.toml"
    config.write_text('[diffusion]\nmodels = ["monoexponential"]\n')
    assert cli.main([str(bids), str(out), "participant", "-w", str(root / "work"),
                     "--config", str(config), "--skip-bids-validation",
                     "--nprocs", "2"]) == cli.EXIT_OK
    return bids, out


@pytest.mark.slow  # two small participants through the app (~20 s), then the group level
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_real_derivative_fails_only_its_participant(tmp_path, demo_outputs, how):
    """The tester's reproduction on real participant outputs: each damage reported "ok" before."""
    bids, original = demo_outputs
    out = tmp_path / "out"
    shutil.copytree(original, out)
    path, reason = _damage(out / "sub-02" / "mrs", how)
    if how == "truncated amplitudes":
        assert len(d.read_tsv(path)) > 1  # read_tsv alone keeps the rows before the cut
    _check_damaged_group(out, bids, "02", "01", path, reason)
