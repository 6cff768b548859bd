"""Reruns into an existing output folder: the group level reads a participant's derivatives
only as the results of a participant-level run that finished and that made them.

- A run killed or interrupted midway (Ctrl-C, SIGTERM, SIGKILL) has replaced some derivatives
  and not others (measured on the demo, 2026-12-07: a rerun with other tissue fractions,
  killed once both amplitude tables were rewritten, left sub-01's tCr at 5.95 mM in the group
  table beside its report's 6.52 mM, status ``ok``): its participants are failed at group level
  until a run finishes.
- A successful rerun after an input acquisition was removed or renamed left the old
  acquisition's derivatives in the participant folder, and the group level read them as
  current (measured on the demo, 2026-12-07: sub-01 with ``acq-second`` removed from the input
  and rerun kept both ``sub-01_acq-dwpress`` and ``sub-01_acq-second`` rows in every group
  table, status ``ok``). The run record lists the acquisitions processed and the digests of
  their inputs; the group level reads only those, and fails a participant whose input is gone
  or changed since.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master  # noqa: E402,F401  (fixtures)

from bids_app import cli  # noqa: E402
from bids_app import derivatives as d  # noqa: E402
from bids_app.group import run_group  # noqa: E402
from bids_app.runlog import Outcome, run_id, write_run_records  # noqa: E402

STEM = "sub-01_acq-dwpress"


def write_results(out: Path, stem: str, concentration_mm: float) -> None:
    """The three tables the group level reads for acquisition ``stem`` of sub-01, its tNAA
    concentration ``concentration_mm``."""
    mrs = out / "sub-01" / "mrs"
    d.write_tsv(mrs / f"{stem}_amplitudes.tsv",
                [{"condition": 0, "b_value": 0.0, "direction": "n/a", "metabolite": "tNAA",
                  "amplitude": 1.0, "crlb": 0.1, "crlb_percent": 10.0,
                  "concentration_mm": concentration_mm}], d.AMPLITUDES_COLUMNS)
    d.write_tsv(mrs / f"{stem}_diffusion.tsv", [], d.DIFFUSION_COLUMNS)
    d.write_json(mrs / f"{stem}_qc.json", {"summary": {"snr_tnaa_b0": 30.0}})


def group_concentrations(out: Path, bids: Path) -> tuple[dict, dict]:
    """(participant outcomes, (participant, source) -> tNAA concentration in the group table)."""
    outcomes = {o.subject: o for o in run_group(out, None, bids)}
    rows = d.read_tsv(out / "group_amplitudes.tsv")
    return outcomes, {(r["participant_id"], r["source"]): float(r["concentration_mm"])
                      for r in rows}


def test_an_interrupted_rerun_is_not_read_as_the_earlier_run(demo, tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_results(out, STEM, 8.0)
    write_run_records(out, [Outcome("01")], time.time() - 60)  # an earlier run, ok
    outcomes, values = group_concentrations(out, demo)
    assert outcomes["01"].ok and values == {("sub-01", STEM): 8.0}

    def interrupted(*args, **kwargs):  # the rerun rewrites one table, then Ctrl-C
        write_results(out, STEM, 99.0)
        raise KeyboardInterrupt

    from bids_app import run

    monkeypatch.setattr(run, "run_participants", interrupted)
    status = cli.main([str(demo), str(out), "participant", "--participant-label", "01",
                       "-w", str(tmp_path / "work"), "--skip-bids-validation"])
    assert status == cli.EXIT_FAILED
    outcomes, values = group_concentrations(out, demo)
    assert not outcomes["01"].ok and values == {}
    assert "did not finish" in outcomes["01"].errors[0]
    status_row = d.read_tsv(out / "group_status.tsv")[0]
    assert status_row["status"] == "failed" and "did not finish" in status_row["reason"]


@pytest.mark.parametrize("killed_twice", [False, True])
def test_the_record_of_an_unfinished_run_keeps_the_last_finished_one(tmp_path, killed_twice):
    from bids_app.failed_runs import earlier_record, mark_running, read_json_object

    out = tmp_path / "out"
    write_run_records(out, [Outcome("01")], 1000.0)
    mark_running(out, ["01"], 2000.0)
    if killed_twice:
        mark_running(out, ["01"], 3000.0)
    record = read_json_object(out / "sub-01" / "sub-01_run.json")
    assert record["status"] == "running"
    assert record["started_epoch"] == (3000.0 if killed_twice else 2000.0)
    assert earlier_record(record)["status"] == "ok"
    assert earlier_record(record)["run_id"] == run_id(1000.0)


def fake_run(out: Path, concentrations: dict):
    """``run_participants`` that writes each acquisition's tables (tNAA at
    ``concentrations[stem]`` mM) instead of processing it, and succeeds."""
    def run_participants(inputs, config, output_dir, **kwargs):
        for acquisitions in inputs.values():
            for a in acquisitions:
                write_results(out, a.stem, concentrations[a.stem])
        return [Outcome(subject) for subject in inputs]
    return run_participants


def participant_run(demo: Path, out: Path, tmp_path: Path) -> int:
    return cli.main([str(demo), str(out), "participant", "--participant-label", "01", "-w",
                     str(tmp_path / "work"), "--skip-bids-validation"])


def test_only_the_acquisitions_and_inputs_the_latest_run_processed_are_current(
        demo, tmp_path, monkeypatch):
    from bids_app import run

    out, mrs = tmp_path / "out", demo / "sub-01" / "mrs"
    second = "sub-01_acq-second"
    for path in sorted(mrs.glob(f"{STEM}_*")):
        shutil.copyfile(path, mrs / path.name.replace(STEM, second))
    monkeypatch.setattr(run, "run_participants", fake_run(out, {STEM: 8.0, second: 5.0}))
    assert participant_run(demo, out, tmp_path) == cli.EXIT_OK
    outcomes, values = group_concentrations(out, demo)
    assert outcomes["01"].ok
    assert values == {("sub-01", STEM): 8.0, ("sub-01", second): 5.0}
    record = json.loads((out / "sub-01" / "sub-01_run.json").read_text())
    assert sorted(e["source"] for e in record["acquisitions"]) == [STEM, second]

    for path in mrs.glob(f"{second}_*"):  # the second acquisition leaves the study
        path.unlink()
    assert participant_run(demo, out, tmp_path) == cli.EXIT_OK
    assert (out / "sub-01" / "mrs" / f"{second}_amplitudes.tsv").exists()  # left behind
    outcomes, values = group_concentrations(out, demo)
    assert outcomes["01"].ok and values == {("sub-01", STEM): 8.0}

    sidecar = mrs / f"{STEM}_svs.json"  # the input is corrected after the run
    metadata = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**metadata, "SequenceName": "DW-PRESS v2"}))
    outcomes, values = group_concentrations(out, demo)
    assert not outcomes["01"].ok and values == {}
    assert outcomes["01"].errors[0].startswith(f"{sidecar}: changed since run ")
    assert participant_run(demo, out, tmp_path) == cli.EXIT_OK  # rerun: current again
    outcomes, values = group_concentrations(out, demo)
    assert outcomes["01"].ok and values == {("sub-01", STEM): 8.0}

    shutil.rmtree(demo / "sub-01")  # the participant leaves the input
    outcomes, values = group_concentrations(out, demo)
    assert not outcomes["01"].ok and values == {}
    assert any(e.startswith(f"{mrs / STEM}_svs.nii.gz: no longer in the input")
               for e in outcomes["01"].errors)


@pytest.mark.parametrize("inherited", ["acq-dwpress_svs.json", "sub-01/sub-01_svs.json",
                                       "acq-dwpress_mrsref.json"])
def test_an_edited_inherited_sidecar_makes_the_results_stale(demo, tmp_path, monkeypatch,
                                                             inherited):
    """BIDS inheritance: a dataset- or subject-level JSON applies to the files below it, so an
    edit there after the run changes the input as much as an edit of the file's own sidecar.
    Before (demo, 2026-12-07): EchoTime moved to the dataset-level ``acq-dwpress_svs.json``,
    sub-01 processed at TE 80 ms, then the JSON edited to TE 30 ms: the group level read the
    TE 80 ms results as current (status ok, exit 0); the run record listed only each file's own
    sidecar."""
    from bids_app import run

    key = "EchoTime"
    own = demo / "sub-01" / "mrs" / f"{STEM}_{Path(inherited).stem.split('_')[-1]}.json"
    metadata = json.loads(own.read_text())
    (demo / inherited).write_text(json.dumps({key: metadata.pop(key)}))
    own.write_text(json.dumps(metadata))
    out = tmp_path / "out"
    monkeypatch.setattr(run, "run_participants", fake_run(out, {STEM: 8.0}))
    assert participant_run(demo, out, tmp_path) == cli.EXIT_OK
    outcomes, values = group_concentrations(out, demo)
    assert outcomes["01"].ok and values == {("sub-01", STEM): 8.0}

    (demo / inherited).write_text(json.dumps({key: 0.03}))  # edited after the run
    outcomes, values = group_concentrations(out, demo)
    assert not outcomes["01"].ok and values == {}
    record = json.loads((out / "sub-01" / "sub-01_run.json").read_text())
    assert outcomes["01"].errors == [
        f"{demo / inherited}: changed since run {record['run_id']} processed it: the results "
        f"of {STEM} are not current (rerun the participant level)"]
    assert f"bids::{inherited}" in record["acquisitions"][0]["inputs"]


def test_a_sidecar_added_after_the_run_makes_the_results_stale(demo, tmp_path, monkeypatch):
    """A JSON sidecar added after the run that applies to an input (here a subject-level one
    overriding the dataset-level EchoTime) changes what pybids reads as much as an edit.
    Before (review, 2026-12-07): the group level read the TE 80 ms results as current (status
    ok, exit 0). Records that do not say they list inherited sidecars (older versions) are not
    judged this way: every inherited JSON would look added."""
    from bids_app import run

    own = demo / "sub-01" / "mrs" / f"{STEM}_svs.json"
    metadata = json.loads(own.read_text())
    (demo / "acq-dwpress_svs.json").write_text(json.dumps({"EchoTime": metadata.pop("EchoTime")}))
    own.write_text(json.dumps(metadata))
    out = tmp_path / "out"
    monkeypatch.setattr(run, "run_participants", fake_run(out, {STEM: 8.0}))
    assert participant_run(demo, out, tmp_path) == cli.EXIT_OK
    assert group_concentrations(out, demo)[0]["01"].ok

    added = demo / "sub-01" / "sub-01_svs.json"
    added.write_text(json.dumps({"EchoTime": 0.03}))  # added after the run
    outcomes, values = group_concentrations(out, demo)
    record_path = out / "sub-01" / "sub-01_run.json"
    record = json.loads(record_path.read_text())
    assert not outcomes["01"].ok and values == {}
    assert outcomes["01"].errors == [
        f"{added}: added since run {record['run_id']} processed {STEM} (a JSON sidecar that "
        "applies to its inputs now): its results are not current (rerun the participant level)"]

    for entry in record["acquisitions"]:  # a record of an older version
        del entry["sidecars"]
    record_path.write_text(json.dumps(record))
    assert group_concentrations(out, demo)[0]["01"].ok
