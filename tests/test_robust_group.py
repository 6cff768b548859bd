"""Issue 17 items 2 and 14: the group level uses only current, successful participant results
(the latest run's record decides), carries field strength, sequence and echo time, splits
distributions that mix field strengths, and draws any text from participants.tsv as plain
text."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bids_app import derivatives as d
from bids_app.group import run_group
from bids_app.runlog import Outcome, write_run_records, write_summary

SIDECARS = {"01": {"MagneticFieldStrength": 3.0, "SequenceName": "svs_se", "EchoTime": 0.08},
            "02": {"SpectrometerFrequency": [297.2], "PulseSequenceType": "STEAM",
                   "EchoTime": 0.015}}
ADC = {"01": 0.15, "02": 0.11}


def _participant(out: Path, bids: Path, label: str) -> None:
    """Derivatives of one participant as the participant level writes them."""
    stem = f"sub-{label}_acq-x"
    mrs = out / f"sub-{label}" / "mrs"
    d.write_tsv(mrs / f"{stem}_amplitudes.tsv",
                [{"condition": 0, "b_value": 0.0, "direction": "n/a", "metabolite": "tNAA",
                  "amplitude": 10.0, "crlb": 0.1, "crlb_percent": 1.0,
                  "concentration_mm": 10.0 + int(label)}], d.AMPLITUDES_COLUMNS)
    d.write_tsv(mrs / f"{stem}_diffusion.tsv",
                [{"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
                  "value": ADC[label], "unit": "um2/ms", "std_error": 0.01, "applicable": 1,
                  "note": ""}], d.DIFFUSION_COLUMNS)
    d.write_json(mrs / f"{stem}_qc.json", {"summary": {"snr_tnaa_b0": 30.0 + int(label)}})
    raw = bids / f"sub-{label}" / "mrs"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{stem}_svs.json").write_text(json.dumps(SIDECARS[label]))


def _study(tmp_path) -> tuple[Path, Path]:
    out, bids = tmp_path / "out", tmp_path / "in"
    for label in ("01", "02"):
        _participant(out, bids, label)
    (bids / "participants.tsv").write_text(
        "participant_id\tsite\nsub-01\t$\\foo$\nsub-02\tx_{2}$^$\n")
    started = time.time()
    outcomes = [Outcome("01"), Outcome("02")]
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)
    return out, bids


def test_latest_failed_run_fails_the_participant_and_hides_old_results(tmp_path):
    out, bids = _study(tmp_path)
    outcomes = {o.subject: o for o in run_group(out, None, bids)}
    assert outcomes["01"].ok and outcomes["02"].ok
    time.sleep(0.01)
    # a rerun of sub-01 alone fails: its old derivatives stay on disk
    later = time.time()
    rerun = [Outcome("01", ok=False, errors=["sub-01_acq-x_svs.nii.gz: file is empty"])]
    write_summary(out, rerun, "participant", later, run_label="_sub-01")
    write_run_records(out, rerun, later)
    outcomes = {o.subject: o for o in run_group(out, None, bids)}
    assert not outcomes["01"].ok and outcomes["02"].ok
    assert "latest participant-level run" in outcomes["01"].errors[0]
    assert "file is empty" in outcomes["01"].errors[0]
    for table in ("amplitudes", "diffusion", "qc"):
        rows = d.read_tsv(out / f"group_{table}.tsv")
        assert [r["participant_id"] for r in rows] == ["sub-02"], table
    assert "sub-01" in (out / "group.html").read_text()  # listed as failed


def test_summary_alone_decides_for_outputs_without_run_records(tmp_path):
    out, bids = _study(tmp_path)
    for label in ("01", "02"):
        (out / f"sub-{label}" / f"sub-{label}_run.json").unlink()
    time.sleep(0.01)
    write_summary(out, [Outcome("02", ok=False, errors=["boom"])], "participant", time.time(),
                  run_label="_sub-02")
    outcomes = {o.subject: o for o in run_group(out, None, bids)}
    assert outcomes["01"].ok and not outcomes["02"].ok and "boom" in outcomes["02"].errors[0]


def test_group_tables_carry_field_sequence_and_echo_time_and_split_fields(tmp_path):
    out, bids = _study(tmp_path)
    run_group(out, None, bids)
    for table in ("amplitudes", "diffusion", "qc"):
        rows = {r["participant_id"]: r for r in d.read_tsv(out / f"group_{table}.tsv")}
        assert rows["sub-01"]["field_strength_t"] == "3.0"
        assert rows["sub-02"]["field_strength_t"] == "7.0"  # 297.2 MHz / 42.577 MHz/T
        assert rows["sub-01"]["sequence"] == "svs_se" and rows["sub-02"]["sequence"] == "STEAM"
        assert rows["sub-01"]["echo_time_s"] == "0.08"
        assert rows["sub-02"]["echo_time_s"] == "0.015"
    from bids_app.group_report import group_parameter_figures

    diffusion = d.read_tsv(out / "group_diffusion.tsv")
    figure = group_parameter_figures(diffusion, {})[0]
    assert "tNAA 3 T" in figure["svg"] and "tNAA 7 T" in figure["svg"]


def test_site_names_with_dollar_signs_are_drawn_as_plain_text(tmp_path):
    out, bids = _study(tmp_path)
    outcomes = run_group(out, None, bids)
    assert all(o.ok for o in outcomes)
    svg = (out / "group.html").read_text()
    assert "$\\foo$" in svg and "x_{2}$^$" in svg


def test_fit_flags_stays_the_last_amplitude_column_whoever_comes_first():
    """The first participant without a water reference (no concentration columns) must not
    pull ``fit_flags`` in front of the concentrations of the next one."""
    no_water = {"metabolite": "NAA", "amplitude": 1.0, "ratio_tcr": 1.4, "fit_flags": None}
    water = {**no_water, "concentration_mm": 9.0, "concentration_crlb_mm": 0.5}
    header = d.amplitudes_columns([no_water, water], ["participant_id"])
    assert header[:2] == ["participant_id", "condition"]
    assert header[-4:] == ["ratio_tcr", "concentration_mm", "concentration_crlb_mm", "fit_flags"]
    assert d.amplitudes_columns([{"metabolite": "NAA"}]) == d.AMPLITUDES_COLUMNS
