"""Participant and group reports of the demo dataset and of the in-vivo 7 T set, rendered in
headless Chromium offline: no console errors, nothing fetched from the network, every figure
present and non-empty, every summary link lands on a section; screenshots go to
``test-artifacts/`` for a person to look at."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from datasets import make_invivo_bids
from report_render import chromium, external_references, render

pytestmark = [pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                                 "(the test command installs the Debian package)"),
              pytest.mark.slow]  # runs the app on the demo and the in-vivo sets
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MAX_TWO_PARTICIPANTS_BYTES = 5 * 1024 * 1024
FAST_CONFIG = """
[diffusion]
models = ["monoexponential", "kurtosis", "sticks"]
"""
ENV = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"}


def run_app(*args) -> subprocess.CompletedProcess:
    """The ``dmrs-bids`` CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "bids_app.cli", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=900)


def _check(run):
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_demo")
    bids, out = root / "demo", root / "out"
    _check(subprocess.run([sys.executable, "-m", "bids_app.simulate_cli", str(bids), "--small"],
                          capture_output=True, text=True, env=ENV, timeout=600))
    config = root / "config.toml"
    config.write_text(FAST_CONFIG)
    _check(run_app(bids, out, "participant", "-w", root / "work", "--nprocs", "2",
                   "--config", config, "--skip-bids-validation"))
    _check(run_app(bids, out, "group"))
    first = {p: p.read_bytes() for p in sorted(out.glob("sub-*.html"))
             + sorted(out.glob("sub-*/figures/*.svg"))}
    _check(run_app(bids, out, "participant", "--reports-only", "--skip-bids-validation"))
    again = {p: p.read_bytes() for p in first}
    return {"out": out, "first": first, "again": again}


@pytest.fixture(scope="module")
def invivo_out(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("report_invivo")
    bids = make_invivo_bids(root / "bids", shared_data)
    config = root / "config.toml"
    config.write_text(FAST_CONFIG)
    out = root / "out"
    _check(run_app(bids, out, "participant", "-w", root / "work", "--nprocs", "2",
                   "--config", config, "--skip-bids-validation", "--basis",
                   shared_data / "dmrs_7t_steam_invivo" / "basis_STEAM_TE45_TM60.BASIS"))
    _check(run_app(bids, out, "group"))
    return out


def _svg_blocks(dom: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", dom, flags=re.DOTALL)


def check_report(html: Path, name: str, min_figures: int) -> str:
    """Render offline; assert the report is whole, self-contained and clean."""
    text = html.read_text(encoding="utf-8")
    assert external_references(text) == []
    assert "<script" not in text.lower() and "<link" not in text.lower()
    rendered = render(html, ARTIFACTS / f"{name}.png")
    assert rendered.console == [], rendered.console
    svgs = _svg_blocks(rendered.dom)
    assert len(svgs) >= min_figures
    for svg in svgs:    # drawn content: paths or embedded raster images, not an empty frame
        assert len(re.findall(r"<(path|image|use)\b", svg)) >= 5, svg[:300]
    targets = set(re.findall(r'href="#([^"]+)"', rendered.dom))
    ids = set(re.findall(r'\bid="([^"]+)"', rendered.dom))
    assert targets and targets <= ids, targets - ids
    assert rendered.screenshot.stat().st_size > 10_000
    return rendered.dom


def _figure_ids(dom: str, stem: str) -> set:
    return {m for m in re.findall(r'id="(' + re.escape(stem) + r'-fig-[a-z]+)"', dom)}


def test_rebuilt_reports_and_figures_are_byte_identical(demo_out):
    assert len(demo_out["first"]) >= 10
    changed = [str(p) for p, b in demo_out["first"].items() if demo_out["again"][p] != b]
    assert changed == []


def test_demo_reports_render_offline_and_completely(demo_out):
    demo_out = demo_out["out"]
    for subject, stem in (("01", "sub-01_acq-dwpress"), ("02", "sub-02_acq-dwsteam")):
        dom = check_report(demo_out / f"sub-{subject}.html", f"demo_sub-{subject}", 4)
        assert _figure_ids(dom, stem) == {f"{stem}-fig-{n}" for n in
                                          ("transients", "drift", "fit", "residualwater",
                                           "decay")}
        # the same figures are written as SVG files
        for name in ("transients", "drift", "fit", "residualwater", "decay"):
            svg = demo_out / f"sub-{subject}" / "figures" / f"{stem}_desc-{name}_fig.svg"
            assert svg.stat().st_size > 1000 and svg.read_text().lstrip().startswith("<svg")
        assert "Methods" in dom and "Ligneul" in dom and "Wilson" in dom
    group = check_report(demo_out / "group.html", "demo_group", 3)
    assert 'href="sub-01.html"' in group and 'href="sub-02.html"' in group


def test_two_participant_reports_are_small(demo_out):
    demo_out = demo_out["out"]
    total = sum((demo_out / n).stat().st_size for n in ("sub-01.html", "sub-02.html",
                                                        "group.html"))
    assert total <= MAX_TWO_PARTICIPANTS_BYTES


def test_summary_flags_link_to_their_evidence(demo_out):
    demo_out = demo_out["out"]
    text = (demo_out / "sub-01.html").read_text()
    stem = "sub-01_acq-dwpress"
    links = re.findall(r'<a href="#(' + re.escape(stem) + r'-[a-z]+)">', text)
    assert {f"{stem}-acquisition", f"{stem}-fit", f"{stem}-transients"} <= set(links)


def test_invivo_report_renders(invivo_out):
    stem = "sub-01_acq-dwsteam"
    dom = check_report(invivo_out / "sub-01.html", "invivo_sub-01", 4)
    assert _figure_ids(dom, stem) >= {f"{stem}-fig-{n}" for n in ("transients", "drift", "fit",
                                                                   "decay")}
    check_report(invivo_out / "group.html", "invivo_group", 1)


def test_qc_json_and_group_qc_carry_the_flags(demo_out):
    import csv
    import json

    out = demo_out["out"]
    with open(out / "group_qc.tsv", newline="") as fh:
        rows = {r["participant_id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert list(rows) == ["sub-01", "sub-02"]
    for subject, stem in (("01", "sub-01_acq-dwpress"), ("02", "sub-02_acq-dwsteam")):
        qc = json.loads((out / f"sub-{subject}/mrs/{stem}_qc.json").read_text())
        flags = {f["metric"]: f for f in qc["flags"]}
        assert set(flags) >= {"linewidth_water_ppm", "snr_tnaa_b0", "fit_quality_max",
                              "crlb_percent_max", "rejected_fraction_max", "similarity_after"}
        # simulated with realistic lines, SNR and little drift: every spectral metric is
        # measured and none fails ...
        spectral = {m: f for m, f in flags.items() if m != "rejected_fraction_max"}
        assert all(f["status"] in ("pass", "warn") for f in spectral.values()), spectral
        # ... and the rejection flag fails exactly when the outlier stage flagged a condition
        assert (flags["rejected_fraction_max"]["status"] == "fail") == \
            bool(qc["flagged_conditions"])
        assert {"snr_tcr", "similarity_before", "similarity_after",
                "residual_water_ratio"} <= set(qc["per_condition"][0])
        row = rows[f"sub-{subject}"]
        assert row["session_id"] == "n/a" and row["qc_status"] == qc["summary"]["qc_status"]
        assert float(row["snr_tnaa_b0"]) == qc["summary"]["snr_tnaa_b0"]


def test_invivo_report_shows_the_fit_flags_of_its_amplitude_rows(invivo_out):
    """Each lowest-b amplitude row whose ``fit_flags`` says something (on these data: Ala
    pulled onto the lipid/MM line at 1.4 ppm, its own shift at a limit, 5 mM) shows it in the
    report's amplitude table, next to the number."""
    import csv
    import html

    tsv = next((invivo_out / "sub-01" / "mrs").glob("*_amplitudes.tsv"))
    rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
    b_min = min(float(r["b_value"]) for r in rows)
    flagged = {r["metabolite"]: r["fit_flags"] for r in rows
               if float(r["b_value"]) == b_min and r["fit_flags"] != "n/a"}
    assert flagged, "expected at least one flagged amplitude on the in-vivo data"
    text = html.unescape((invivo_out / "sub-01.html").read_text(encoding="utf-8"))
    assert "<th>fit flags</th>" in text
    for name, flags in flagged.items():
        assert re.search(rf"<td>{re.escape(name)}</td>.*?<td class=\"flag-text\">"
                         rf"{re.escape(flags)}</td>", text), name


def test_a_figure_that_cannot_be_drawn_costs_no_results(demo_out, tmp_path, monkeypatch):
    """A drawing fault (the probe's: a dash pattern passed as a format string) failed the
    whole participant, tables included. Now the report is written with the tables and says
    which figure is missing and why; the workflow's figure step returns the others."""
    import shutil

    from bids_app import derivatives as d
    from bids_app import report

    out = tmp_path / "out"
    shutil.copytree(demo_out["out"], out)
    stem = "sub-01_acq-dwpress"
    (out / "sub-01" / "figures" / f"{stem}_desc-decay_fig.svg").unlink()

    def broken(*args, **kwargs):
        raise ValueError("'(0, (5, 1))' is not a valid format string")
    monkeypatch.setattr(report, "decay_svg", broken)
    entry = {"subject": "01", "session": None, "stem": stem,
             **{kind: str(d.acquisition_path(out, "01", None, stem, kind))
                for kind in d.CONTRACT_KINDS}}
    html = report.write_participant_report(out, "01", [entry]).read_text(encoding="utf-8")
    assert ("Missing figures: the decay figure could not be drawn (ValueError: "
            "&#39;(0, (5, 1))&#39; is not a valid format string)") in html
    assert f'id="{stem}-fig-fit"' in html and "tNAA" in html
    assert not (out / "sub-01" / "figures" / f"{stem}_desc-decay_fig.svg").exists()
