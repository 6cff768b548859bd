"""Probe s19b group-qc-figure: group.html's QC panels plot the values the QC flags judge (the
worst-condition maxima, linewidths and drift in ppm) with the limits those flags applied; they
plotted the run means (rejected_fraction 0.048 beside a failing rejected_fraction_max 0.375,
fit_quality_mean 0.998 beside the judged 1.10). group_qc.tsv keeps its columns."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bids_app import derivatives as d
from bids_app.group import collect_tables, run_group
from bids_app.group_report import QC_DISTRIBUTIONS, group_qc_figure
from bids_app.runlog import Outcome, write_run_records, write_summary
from pipeline.qc.flags import THRESHOLDS, evaluate

CF_MHZ = 297.2
SUMMARIES = {  # sub-02: the probe's numbers (whole-run means low, worst condition failing)
    "01": {"snr_tnaa_b0": 38.0, "linewidth_water_hz": 10.55, "linewidth_tnaa_hz": 8.41,
           "fit_quality_mean": 0.984, "fit_quality_max": 1.074, "rejected_fraction": 0.042,
           "rejected_fraction_max": 0.125, "freq_shift_range_hz": 3.44},
    "02": {"snr_tnaa_b0": 51.8, "linewidth_water_hz": 19.86, "linewidth_tnaa_hz": 18.72,
           "fit_quality_mean": 0.998, "fit_quality_max": 1.100, "rejected_fraction": 0.048,
           "rejected_fraction_max": 0.375, "freq_shift_range_hz": 13.38},
}


def _study(tmp_path: Path, overrides: dict | None = None) -> Path:
    """Participant-level outputs of two acquisitions, flags judged as the participant level
    judges them (``overrides``: ``[qc] thresholds``, per label)."""
    out = tmp_path / "out"
    for label, summary in SUMMARIES.items():
        stem = f"sub-{label}_acq-x"
        mrs = out / f"sub-{label}" / "mrs"
        d.write_tsv(mrs / f"{stem}_amplitudes.tsv", [], d.AMPLITUDES_COLUMNS)
        d.write_tsv(mrs / f"{stem}_diffusion.tsv", [], d.DIFFUSION_COLUMNS)
        flags = evaluate(summary, CF_MHZ, (overrides or {}).get(label))
        d.write_json(mrs / f"{stem}_qc.json",
                     {"summary": summary, "flags": [f.to_dict() for f in flags]})
    outcomes, started = [Outcome("01"), Outcome("02")], time.time()
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)
    return out


def _panels(out: Path) -> dict:
    tables, _ = collect_tables(out, ["01", "02"])
    figure = group_qc_figure(tables["qc"], tables["qc_flags"])
    return {p["metric"]: p for p in figure["panels"]}, figure["svg"]


def test_qc_panels_plot_the_judged_values_with_their_limits(tmp_path):
    panels, svg = _panels(_study(tmp_path))
    assert set(panels) <= set(QC_DISTRIBUTIONS) == set(THRESHOLDS)
    rejected = panels["rejected_fraction_max"]
    assert dict(rejected["values"]) == {"sub-01": 0.125, "sub-02": 0.375}
    assert rejected["limits"] == {"warn": 0.10, "fail": 0.30}
    assert rejected["title"] == "transients rejected (worst condition)"
    fit = panels["fit_quality_max"]
    assert dict(fit["values"]) == {"sub-01": 1.074, "sub-02": 1.100}
    assert fit["limits"] == {"warn": 1.5, "fail": 2.5} and "worst condition" in fit["title"]
    water = panels["linewidth_water_ppm"]  # judged in ppm, not Hz
    assert water["unit"] == "ppm"
    assert dict(water["values"])["sub-02"] == pytest.approx(19.86 / CF_MHZ)
    drift = dict(panels["freq_shift_range_ppm"]["values"])
    assert drift["sub-02"] == pytest.approx(13.38 / CF_MHZ)
    plotted = {v for p in panels.values() for _, v in p["values"]}
    assert not plotted & {0.042, 0.048, 0.984, 0.998, 19.86, 10.55}  # no run means, no Hz
    for text in ("transients rejected (worst", "fit residual SD / noise SD", "fail 0.3",
                 "warn 0.1"):  # titles wrap: one SVG text per line
        assert text in svg, text


def test_limits_follow_the_thresholds_the_flags_applied(tmp_path):
    same = {"rejected_fraction_max": {"warn": 0.2, "fail": 0.4}}
    panels, svg = _panels(_study(tmp_path / "a", {"01": same, "02": same}))
    assert panels["rejected_fraction_max"]["limits"] == {"warn": 0.2, "fail": 0.4}
    assert "fail 0.4" in svg
    # runs judged against different limits: no single line would be right, so none
    panels, _ = _panels(_study(tmp_path / "b", {"01": same}))
    assert panels["rejected_fraction_max"]["limits"] is None
    assert panels["fit_quality_max"]["limits"] == {"warn": 1.5, "fail": 2.5}


def test_group_run_keeps_the_group_qc_columns_and_shows_the_judged_panels(tmp_path):
    out = _study(tmp_path)
    run_group(out)
    header = (out / "group_qc.tsv").read_text().splitlines()[0].split("\t")
    assert "qc_flags" not in header and "warn_limit" not in header
    assert {"rejected_fraction", "rejected_fraction_max", "fit_quality_mean",
            "linewidth_water_hz"} <= set(header)
    html = (out / "group.html").read_text()
    assert "transients rejected (worst" in html
    assert "fit residual SD / noise SD" in html and "fail 0.3" in html


def test_qc_json_flags_record_the_limits_applied():
    flags = {f.metric: f.to_dict() for f in evaluate(
        SUMMARIES["02"], CF_MHZ, {"fit_quality_max": {"fail": 3.0}})}
    assert flags["fit_quality_max"]["warn_limit"] == 1.5
    assert flags["fit_quality_max"]["fail_limit"] == 3.0
    assert json.loads(json.dumps(flags))["rejected_fraction_max"]["status"] == "fail"
