"""Display faults of the HTML reports a reviewer found reading them as a user (2026-12-07):
each test reads the generated HTML, SVG text or table rows, not the code that makes them."""

import re
from html import unescape
from types import SimpleNamespace

import numpy as np
import pytest

from bids_app.report import _environment, directional, residual_water_svg
from bids_app.report_tables import (MM_SCALE_UNIT, amplitude_table, diffusion_tables,
                                    other_amplitudes_label)
from pipeline.spectra import ppm_to_hz

CF_MHZ, DWELL_S, N_POINTS = 297.2, 1 / 4000, 2048
THREE_DIRECTIONS = np.array([[2, 2, -1], [2, -1, 2], [-1, 2, 2]], float) / 3


def texts(svg: str) -> list[str]:
    """Every text drawn in an SVG (figures keep text as text: svg.fonttype none)."""
    return re.findall(r">([^<]*)</text>", svg)


def render(**section) -> str:
    """The participant report of one acquisition with the given template values."""
    base = {"anchor": "s", "stem": "s", "svgs": {}, "provenance": {}, "files": {}, "flags": []}
    return _environment().get_template("participant_report.html.j2").render(
        subject="01", sections=[{**base, **section}], version="x", methods="", references=[],
        versions=[])


def element_with_id(html: str, element_id: str, tag: str = "section") -> str:
    """The text of the ``tag`` element with ``element_id`` (no nesting of the same tag)."""
    start = html.index(f'<{tag} id="{element_id}">')
    return html[start:html.index(f"</{tag}>", start)]


def singlet_fid(lines: dict) -> np.ndarray:
    """Lorentzian lines {ppm: amplitude} (8 Hz wide) on the report's axis conventions."""
    t = np.arange(N_POINTS) * DWELL_S
    return sum(a * np.exp(2j * np.pi * ppm_to_hz(ppm, CF_MHZ) * t - np.pi * 8.0 * t)
               for ppm, a in lines.items())


# --- 1: the residual-water flag links to a figure of the window it measures -----------------

def test_residual_water_profile_holds_the_metric_in_its_window():
    from pipeline.qc.metrics import (RESIDUAL_WATER_PPM, residual_water_profile,
                                     residual_water_ratio)

    fid = singlet_fid({2.01: 1.0, 4.7: 3.0})
    ppm, ratio = residual_water_profile(fid, DWELL_S, CF_MHZ)
    window = (ppm >= min(RESIDUAL_WATER_PPM)) & (ppm <= max(RESIDUAL_WATER_PPM))
    assert ratio[window].max() == pytest.approx(residual_water_ratio(fid, DWELL_S, CF_MHZ),
                                                rel=1e-12)
    assert ratio[window].max() > 2.5  # the water line, 3 x tNAA


def test_residual_water_figure_spans_the_window_and_draws_the_limits():
    fids = np.stack([singlet_fid({2.01: 1.0, 4.7: 3.0}), singlet_fid({2.01: 1.0})])
    pre = SimpleNamespace(fids=fids[:, None, None, :], dwell_s=DWELL_S, cf_mhz=CF_MHZ)
    svg = residual_water_svg(pre, ["b=0", "b=2000"], {"warn": 1.0, "fail": 5.0})
    drawn = texts(svg)
    assert {"5.0", "4.5", "4.0", "2.0"} <= set(drawn)  # x ticks: the window and tNAA
    assert "measured: 4.4-4.9 ppm" in drawn and "warn 1" in drawn and "fail 5" in drawn
    assert "b=0" in drawn and "b=2000" in drawn


def test_residual_water_flag_links_to_a_section_holding_that_figure():
    from pipeline.qc.flags import evaluate

    flag = next(f.to_dict() for f in evaluate({"residual_water_ratio": 3.0}, CF_MHZ)
                if f.metric == "residual_water_ratio")
    assert flag["status"] == "warn"
    html = render(flags=[flag], status="warn",
                  svgs={"residualwater": "<svg><text>water figure</text></svg>"})
    target = re.search(r'<a href="#([^"]+)">' + re.escape(flag["label"]), html).group(1)
    assert "water figure" in element_with_id(html, target)
    assert "4.4-4.9 ppm" in element_with_id(html, target)
    assert f'id="{target}"' in render(flags=[flag])  # the target exists without the figure
    # its own section, before the fit's (it was nested inside it, between figure and table)
    assert html.index(f'id="{target}"') < html.index('<section id="s-fit">')
    assert '<section id="s-fit">' not in element_with_id(html, target)


# --- 2: the powder-average note once per acquisition, and what it means ---------------------

@pytest.fixture(scope="module")
def directional_rows():
    from pipeline.diffusion import fit_all_models

    b = np.concatenate([[0.0], np.repeat([2.0, 6.0, 12.0], 3)])
    g = np.vstack([[np.nan] * 3, *[THREE_DIRECTIONS] * 3])
    rows = []
    for name, adc in (("tNAA", 0.15), ("tCr", 0.16)):
        s = np.exp(-b * adc)
        rows += fit_all_models(b, s, 0.01 * np.ones(b.size), metabolite=name,
                               models=("monoexponential", "kurtosis"), directions=g,
                               echo_time_ms=45, diffusion_time_ms=79)
    return [{k: str(v) for k, v in r.items()} for r in rows]


def test_powder_note_is_shown_once_above_the_tables_and_kept_in_every_tsv_row(
        directional_rows):
    fitted = [r for r in directional_rows
              if r["model"] != "tensor" and r["parameter"] not in ("AIC", "BIC")]
    assert all("directions would be needed" in r["note"] for r in fitted)  # TSV unchanged
    html = render(**diffusion_tables(directional_rows), has_decay=True)
    assert html.count("worst-case direction-average error") == 1
    assert html.count("diffusion time 79 ms") == 1
    shared = html.index("Note for every model row below")
    assert shared < html.index("<th>applicable</th>")  # above the tables


def test_report_says_once_what_the_note_means_for_applicable_rows(directional_rows):
    tables = diffusion_tables(directional_rows)
    assert any(r["applicable"] == "1" for r in tables["main_parameters"])
    html = unescape(render(**tables, has_decay=True))
    assert html.count("\"applicable: yes\" below judges each model") == 1
    assert "possibly biased by up to that error" in html


def test_a_row_keeps_its_own_note_parts():
    rows = [{"metabolite": m, "model": "monoexponential", "parameter": "ADC", "value": "0.1",
             "applicable": "1", "note": f"{own}; diffusion time 79 ms (x)"}
            for m, own in (("tNAA", "fitted on b <= 5"), ("tCr", "at bound: ADC"))]
    tables = diffusion_tables(rows)
    assert tables["shared_note"] == "diffusion time 79 ms (x)" and not tables["powder_caveat"]
    assert [r["own_note"] for r in tables["parameters"]] == ["fitted on b <= 5", "at bound: ADC"]
    one = diffusion_tables(rows[:1])  # one row's note is its own, not the acquisition's
    assert one["shared_note"] == "" and one["parameters"][0]["own_note"] == rows[0]["note"]


# --- 3: the collapsed amplitudes' label, and macromolecules without mM ----------------------

def _amplitude(name, crlb_percent, concentration="1.0"):
    return {"condition": "0", "b_value": "0", "direction": "n/a", "metabolite": name,
            "amplitude": "1.0", "crlb": "0.1", "crlb_percent": crlb_percent, "ratio_tcr": "0.5",
            "concentration_mm": concentration, "concentration_crlb_mm": "0.1",
            "fit_flags": "n/a"}


def test_collapsed_amplitudes_are_labelled_by_what_collapses_them():
    rows = [_amplitude(n, c) for n, c in (("tNAA", "3"), ("NAA", "3"), ("MM09", "8"),
                                          ("Lip13", "1800"), ("Ala", "n/a"))]
    main, other = amplitude_table(rows)
    assert [r["metabolite"] for r in main] == ["tNAA", "MM09", "NAA"]
    assert [r["metabolite"] for r in other] == ["Ala", "Lip13"]
    html = render(amplitudes=main, other_amplitudes=other,
                  other_amplitudes_label=other_amplitudes_label(len(other)))
    summary = re.search(r"<summary>(\d+ more[^<]*)</summary>", html).group(1)
    assert summary.startswith("2 more") and "%CRLB &gt; 50" in summary
    assert "macromolecule" not in summary.lower()


def test_macromolecules_are_shown_on_their_scale_not_in_mm():
    rows = [_amplitude(n, "5", c) for n, c in (("NAA", "8.4"), ("MM09", "3.8"), ("MM", "37.3"),
                                               ("Lip09", "0.2"))]
    main, _ = amplitude_table(rows)
    html = render(amplitudes=main, other_amplitudes=[])
    cells = {m: u for m, u in re.findall(r"<tr><td>(\w+)</td>.*?<td>([^<]*)</td></tr>", html)}
    assert cells == {"NAA": "mM", "MM09": MM_SCALE_UNIT, "MM": MM_SCALE_UNIT,
                     "Lip09": MM_SCALE_UNIT}
    assert "<th>mM</th>" not in html


# --- 8 and 9: captions that say what is plotted ------------------------------------------------

def test_drift_caption_says_drift_and_that_the_correction_is_its_negative():
    html = render(aligned=True, svgs={"drift": "<svg></svg>"})
    caption = html[html.index("-fig-drift"):]
    assert "correction = −drift" in caption[:600]
    assert "correction applied" not in html


def test_decay_caption_says_points_are_per_direction_for_directional_data():
    b = np.concatenate([[0.0], np.repeat([2000.0, 6000.0], 3)])
    pre = SimpleNamespace(b_values_s_mm2=b,
                          directions=np.vstack([[np.nan] * 3, THREE_DIRECTIONS, THREE_DIRECTIONS]))
    plain = SimpleNamespace(b_values_s_mm2=b, directions=np.full((b.size, 3), np.nan))
    # one direction and its opposite tilted by 1 degree (chronograms): one direction
    x, tilted = np.array([1.0, 0, 0]), np.array([-np.cos(0.0175), np.sin(0.0175), 0])
    one = SimpleNamespace(b_values_s_mm2=b[:3], directions=np.vstack([[np.nan] * 3, x, tilted]))
    # a crusher-only "b0" (5 s/mm^2) along y beside weighting along x only: one direction
    crusher = SimpleNamespace(b_values_s_mm2=np.array([5.0, 2000.0, 6000.0]),
                              directions=np.array([[0, 1.0, 0], x, x]))
    assert directional(pre) and not directional(plain) and not directional(one)
    assert not directional(crusher)
    svgs = {"decay": "<svg></svg>"}
    assert "Points are per gradient direction" in render(directional=True, svgs=svgs)
    assert "Points are per gradient direction" not in render(directional=False, svgs=svgs)
