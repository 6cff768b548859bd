"""Group level: concentrations quantified with different settings are labelled and not pooled.

Found (demo, exit 0): sub-03, identical data to sub-01, rerun with ``[quantification]
metabolite_t2_s = {NAA = 0.25, default = 0.16}`` had tNAA 12.59 mM against 9.14 (x1.377 =
exp(0.08/0.25)) and tCr 10.65 against 6.46 (x1.649 = exp(0.08/0.16)) in one ``tNAA PRESS``
column of group.html, and ``group_amplitudes.tsv`` did not say which rows were T2-corrected.
The participant outputs here are written by the participant level's own quantification
(:func:`pipeline.fitting.water_scaling.quantify_rows`) from one set of amplitudes."""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import numpy as np
import pytest

from bids_app import derivatives as d
from bids_app.group import collect_tables, run_group
from bids_app.group_report import group_parameter_figures
from bids_app.runlog import Outcome, write_run_records, write_summary
from pipeline.basis import Basis
from pipeline.fitting.quantification import ratio_to_tcr_column
from pipeline.fitting.water_scaling import quantify_rows

CF_MHZ, DWELL_S, N_POINTS = 123.2, 2.5e-4, 2048
TE_S, TR_S = 0.08, 3.0
AMPLITUDES = {"NAA": 8.0, "Cr": 3.2, "tNAA": 8.0, "tCr": 6.4}
T2_TABLE = {"NAA": 0.25, "default": 0.16}
OLD_HEADER = (["participant_id", "session_id", "source", "field_strength_t", "sequence",
               "echo_time_s"] + d.AMPLITUDES_COLUMNS
              + ["ratio_tcr", "concentration_mm", "concentration_crlb_mm"])
"""``group_amplitudes.tsv``'s columns before, in their order (then ``fit_flags``, last)."""


def _singlet(ppm: float, amplitude: float) -> np.ndarray:
    t = np.arange(N_POINTS) * DWELL_S
    return amplitude * np.exp(-2j * np.pi * (ppm - 4.65) * CF_MHZ * t - t / 0.08)


def _participant_rows(quantification: dict) -> tuple[list[dict], dict]:
    """Amplitude rows with concentrations, and the quantification report, as the participant
    level makes them (a creatine basis of 3 protons per mM, water of 40000 units)."""
    rows = [{"condition": 0, "b_value": 0.0, "direction": "n/a", "metabolite": name,
             "amplitude": amp, "crlb": 0.1 * amp, "crlb_percent": 10.0, "fit_flags": "n/a"}
            for name, amp in AMPLITUDES.items()]
    basis = Basis(names=["Cr"], fids=_singlet(3.03, 3.0)[None], dwell_s=DWELL_S,
                  cf_mhz=CF_MHZ)
    metadata = {"EchoTime": TE_S, "RepetitionTime": TR_S}
    return quantify_rows(ratio_to_tcr_column(rows), quantification, _singlet(4.65, 40000.0),
                         DWELL_S, basis, metadata, CF_MHZ, "x", "", metadata)


def _study(tmp_path: Path, settings: dict) -> Path:
    """Participant-level outputs of one acquisition per participant (label -> its
    ``[quantification]`` table; None: a ``_qc.json`` of an older version, no stages)."""
    out = tmp_path / "out"
    for label, quantification in settings.items():
        rows, report = _participant_rows(quantification or {})
        stem, mrs = f"sub-{label}_acq-x", out / f"sub-{label}" / "mrs"
        d.write_tsv(mrs / f"{stem}_amplitudes.tsv", rows, d.amplitudes_columns(rows))
        d.write_tsv(mrs / f"{stem}_diffusion.tsv", [], d.DIFFUSION_COLUMNS)
        qc = {"summary": {}, "flags": []}
        if quantification is not None:
            qc["stages"] = {"fit.json": {"quantification": report}}
        d.write_json(mrs / f"{stem}_qc.json", qc)
    outcomes, started = [Outcome(label) for label in settings], time.time()
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)
    return out


def _table(out: Path) -> tuple[list[str], dict]:
    with open(out / "group_amplitudes.tsv", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        rows = list(reader)
    return reader.fieldnames, {(r["participant_id"], r["metabolite"]): r for r in rows}


def _concentration_svg(out: Path, labels) -> tuple[str, list[str]]:
    tables, _ = collect_tables(out, labels)
    for fig in group_parameter_figures(tables["diffusion"], {}, tables["amplitudes"]):
        if fig["title"].startswith("concentration"):
            return fig["svg"], fig["outliers"]
    raise AssertionError("no concentration figure")


MIXED_T2 = {"01": {}, "02": {}, "03": {"metabolite_t2_s": T2_TABLE}, "04": {}}


def test_group_amplitudes_state_the_metabolite_t2_of_each_concentration(tmp_path):
    out = _study(tmp_path, MIXED_T2)
    run_group(out)
    header, rows = _table(out)
    assert header[:len(OLD_HEADER)] == OLD_HEADER and header[-1] == "fit_flags"
    assert header[len(OLD_HEADER):-3] == ["metabolite_t2_s", "metabolite_t1_s",
                                          "tissue_fractions", "quantification_settings"]
    assert header[-2] == "basis"  # since session 26 (tests/test_group_basis_sources.py)
    assert header[-3] == "mm_model"  # since session 27 (tests/test_group_mm_model.py)
    for name, t2_s in (("tNAA", 0.25), ("tCr", 0.16), ("NAA", 0.25), ("Cr", 0.16)):
        corrected, plain = rows[("sub-03", name)], rows[("sub-01", name)]
        ratio = float(corrected["concentration_mm"]) / float(plain["concentration_mm"])
        assert ratio == pytest.approx(math.exp(TE_S / t2_s), rel=1e-9)  # 1.377, 1.649
        assert float(corrected["metabolite_t2_s"]) == t2_s
        assert plain["metabolite_t2_s"] == "n/a" and plain["metabolite_t1_s"] == "n/a"
    assert "metabolite_t2_s=NAA:0.25,default:0.16" in rows[("sub-03", "tNAA")][
        "quantification_settings"]
    assert "metabolite_t2_s=none" in rows[("sub-01", "tNAA")]["quantification_settings"]
    assert rows[("sub-01", "tNAA")]["tissue_fractions"].startswith("gm=0.6 wm=0.4 csf=0")


def test_t2_corrected_and_uncorrected_concentrations_are_split_with_a_warning(tmp_path,
                                                                              caplog):
    out = _study(tmp_path, MIXED_T2)
    svg, outliers = _concentration_svg(out, list(MIXED_T2))
    assert "tNAA T2 0.25 s" in svg and "tNAA no T2 correction" in svg
    assert "tCr T2 0.16 s" in svg and "tCr no T2 correction" in svg
    assert not outliers  # pooled, the corrected 1.377 x value was sub-03's 'outlier'
    logger = logging.getLogger("test_group_quantification")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        run_group(out, logger=logger)
    (warning,) = [r.getMessage() for r in caplog.records if "quantified" in r.getMessage()]
    assert "sub-03: metabolite_t2_s=NAA:0.25,default:0.16" in warning
    assert "sub-01, sub-02, sub-04: metabolite_t2_s=none" in warning


def test_one_quantification_for_all_is_not_split(tmp_path, caplog):
    settings = {label: {"metabolite_t2_s": T2_TABLE} for label in ("01", "02", "03", "04")}
    settings["05"] = None  # an older _qc.json: not stated, no split by itself
    out = _study(tmp_path, settings)
    svg, _ = _concentration_svg(out, list(settings))
    assert "T2 0.25 s" not in svg and "correction" not in svg
    logger = logging.getLogger("test_group_quantification")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        run_group(out, logger=logger)
    assert not [r for r in caplog.records if "quantified" in r.getMessage()]
    _, rows = _table(out)
    assert [rows[("sub-05", "tNAA")][c] for c in ("metabolite_t2_s", "tissue_fractions",
                                                  "quantification_settings")] == ["n/a"] * 3


def test_per_tissue_and_per_voxel_concentrations_are_split(tmp_path):
    fractions = {"gm": 0.5, "wm": 0.3, "csf": 0.2}
    settings = {label: {"tissue_fractions": fractions} for label in ("01", "02", "03")}
    settings["04"] = {"tissue_fractions": fractions, "csf_corrected": False}
    out = _study(tmp_path, settings)
    run_group(out)
    _, rows = _table(out)
    per_voxel, per_tissue = (float(rows[(p, "tNAA")]["concentration_mm"])
                             for p in ("sub-04", "sub-01"))
    assert per_tissue / per_voxel == pytest.approx(1 / (1 - 0.2), rel=1e-9)
    assert "csf_corrected=false" in rows[("sub-04", "tNAA")]["quantification_settings"]
    svg, _ = _concentration_svg(out, list(settings))
    assert "csf_corrected=false" in svg and "csf_corrected=true" in svg
