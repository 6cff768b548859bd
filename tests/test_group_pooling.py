"""Group report: what its distributions pool and how they name outliers (session 25 follow-ups
of the group-level fault hunt). Rows are built as ``group_diffusion.tsv`` and
``group_amplitudes.tsv`` hold them (every value a string)."""

from __future__ import annotations

import pytest

from bids_app.group_report import group_parameter_figures

ADC_VALUES = (("sub-01", "acq-first", 0.30), ("sub-01", "acq-second", 0.10),
              ("sub-02", "acq-first", 0.11), ("sub-03", "acq-first", 0.12),
              ("sub-04", "acq-first", 0.105))
"""ADC-like values (um^2/ms): sub-01's first acquisition lies 12.8 robust z-scores from the
median (0.11; MAD 0.01), the other four within 1."""


def _adc_row(participant: str, acq: str, value: float, **facts) -> dict:
    return {"participant_id": participant, "session_id": "n/a", "source": f"{participant}_{acq}",
            "field_strength_t": "3.0", "sequence": "PRESS", "echo_time_s": "0.035",
            "metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
            "value": str(value), "unit": "um^2/ms", "applicable": "1", **facts}


@pytest.mark.parametrize("order", [1, -1], ids=["outlier first", "outlier second"])
def test_an_outlying_acquisition_is_named_whatever_the_row_order(order):
    """Before, points were labelled by participant, so ``dict`` kept one of sub-01's two
    values: with 0.30 first it was overwritten by 0.10 and no outlier was named."""
    rows = [_adc_row(*values) for values in ADC_VALUES[::order]]
    (figure,) = group_parameter_figures(rows, {})
    assert figure["outliers"] == ["sub-01 acq-first (tNAA)"]


def test_several_points_of_one_acquisition_are_each_kept():
    """Two conditions at an acquisition's lowest b (e.g. interleaved b = 0 scans) are two
    points: labelled by acquisition alone, one would replace the other."""
    rows = [{"participant_id": p, "session_id": "n/a", "source": f"{p}_acq-x", "condition": c,
             "b_value": "0", "metabolite": "tNAA", "concentration_mm": str(v),
             "field_strength_t": "3.0", "sequence": "PRESS", "echo_time_s": "0.035"}
            for p, c, v in (("sub-01", "0", 30.0), ("sub-01", "1", 10.0), ("sub-02", "0", 11.0),
                            ("sub-03", "0", 12.0), ("sub-04", "0", 10.5))]
    (figure,) = group_parameter_figures([], {}, rows)
    assert figure["outliers"] == ["sub-01 condition 0 (tNAA)"]


def test_acquisitions_of_one_session_are_told_apart_by_their_own_name():
    rows = [_adc_row(p, acq, v, session_id="ses-1", source=f"{p}_ses-1_{acq}")
            for p, acq, v in ADC_VALUES]
    (figure,) = group_parameter_figures(rows, {})
    assert figure["outliers"] == ["sub-01 ses-1 acq-first (tNAA)"]


def _sequence_rows(sequences) -> list[dict]:
    return [_adc_row(f"sub-{i:02d}", "acq-x", 0.11 + 0.005 * (i % 3), sequence=seq)
            for i, seq in enumerate(sequences, start=1)]


def test_press_and_steam_at_one_field_and_echo_time_are_split():
    """Before, only field strength and echo time split the columns: PRESS and STEAM values
    (different J-evolution, so different ratios and concentrations) shared one column."""
    rows = _sequence_rows(["simulated DW-PRESS", "svs_se", "STEAM", "svs_st"])
    (figure,) = group_parameter_figures(rows, {})
    assert "tNAA PRESS" in figure["svg"] and "tNAA STEAM" in figure["svg"]


def test_one_sequence_family_under_several_names_is_not_split():
    rows = _sequence_rows(["simulated DW-PRESS", "svs_se", "PRESS", "n/a"])
    (figure,) = group_parameter_figures(rows, {})
    assert "PRESS" not in figure["svg"] and "sequence n/a" not in figure["svg"]


def test_an_unknown_sequence_is_not_pooled_with_a_known_one():
    rows = _sequence_rows(["PRESS", "PRESS", "MEGA-PRESS", "MEGA-PRESS"])
    (figure,) = group_parameter_figures(rows, {})
    assert "tNAA PRESS" in figure["svg"] and "tNAA MEGA-PRESS" in figure["svg"]


def _biexponential_decay(b_ms_um2):
    """A decay whose apparent diffusivity falls with b (fractions 0.7 / 0.3 at 0.3 / 0.03
    um^2/ms), as metabolite decays do: its mono-exponential ADC depends on the b-range."""
    import numpy as np

    b = np.asarray(b_ms_um2, float)
    return 0.7 * np.exp(-0.3 * b) + 0.3 * np.exp(-0.03 * b)


@pytest.mark.parametrize("b_ms_um2, adc_b_max, kurtosis_b_max", [
    ((0, 1, 3, 6, 10, 20), 3000.0, 10000.0),   # the small 3 T demo's shells
    ((0, 1, 2, 3), 3000.0, 3000.0),
    ((0, 2.5, 5, 10), 5000.0, 10000.0)])
def test_each_diffusion_row_states_the_b_range_it_was_fitted_on(b_ms_um2, adc_b_max,
                                                                 kurtosis_b_max):
    """Before, nothing in ``_diffusion.tsv`` (or ``group_diffusion.tsv``) said which b-values
    a model used (the note only when points were left out): ADCs fitted to b <= 3 and b <= 5
    ms/um^2 were indistinguishable, though they differ (0.197 against 0.183 um^2/ms below)."""
    import numpy as np

    from pipeline.diffusion.table import diffusion_table

    b_s_mm2 = np.asarray(b_ms_um2, float) * 1000
    signal = 10.0 * _biexponential_decay(b_ms_um2)
    rows = diffusion_table({"tNAA": (signal, np.full(signal.shape, 0.01))}, b_s_mm2,
                           models=("monoexponential", "kurtosis"), uncertainty="jacobian")
    b_max = {(r["model"], r["parameter"]): r["b_max_s_mm2"] for r in rows}
    assert b_max[("monoexponential", "ADC")] == b_max[("monoexponential", "AIC")] == adc_b_max
    assert b_max[("kurtosis", "K")] == kurtosis_b_max


def test_the_mono_exponential_adc_differs_between_b_ranges():
    """Why the column matters: the same decay's ADC fitted on b <= 3 and on b <= 5 ms/um^2
    (0.197 and 0.183 um^2/ms)."""
    import numpy as np

    from pipeline.diffusion.table import diffusion_table

    adc = {}
    for b_ms_um2 in ((0, 1, 2, 3), (0, 2.5, 5)):
        signal = 10.0 * _biexponential_decay(b_ms_um2)
        rows = diffusion_table({"tNAA": (signal, np.full(signal.shape, 0.01))},
                               np.asarray(b_ms_um2, float) * 1000, models=("monoexponential",),
                               uncertainty="jacobian")
        row = next(r for r in rows if r["parameter"] == "ADC")
        adc[row["b_max_s_mm2"]] = row["value"]
    assert set(adc) == {3000.0, 5000.0}
    assert adc[3000.0] > adc[5000.0] * 1.05


def test_group_tables_read_diffusion_tables_without_the_added_column(tmp_path):
    """A ``_diffusion.tsv`` written before ``b_max_s_mm2`` existed is read (``n/a``), not
    failed as damaged; a current one carries its value into ``group_diffusion.tsv``."""
    import time

    from bids_app import derivatives as d
    from bids_app.group import run_group
    from bids_app.runlog import Outcome, write_run_records, write_summary
    from pipeline.io.files import read_tsv

    out = tmp_path / "out"
    old_columns = [c for c in d.DIFFUSION_COLUMNS if c != "b_max_s_mm2"]
    for label, columns, b_max in (("01", old_columns, None), ("02", d.DIFFUSION_COLUMNS, 3000.0)):
        stem, mrs = f"sub-{label}_acq-x", out / f"sub-{label}" / "mrs"
        d.write_tsv(mrs / f"{stem}_amplitudes.tsv", [], d.AMPLITUDES_COLUMNS)
        row = {"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
               "value": 0.15, "unit": "um^2/ms", "applicable": 1, "b_max_s_mm2": b_max}
        d.write_tsv(mrs / f"{stem}_diffusion.tsv", [{k: row.get(k) for k in columns}], columns)
        d.write_json(mrs / f"{stem}_qc.json", {"summary": {}, "flags": []})
    outcomes, started = [Outcome("01"), Outcome("02")], time.time()
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)
    assert all(o.ok for o in run_group(out))
    rows = {r["participant_id"]: r for r in read_tsv(out / "group_diffusion.tsv")}
    assert rows["sub-01"]["b_max_s_mm2"] == "n/a" and rows["sub-02"]["b_max_s_mm2"] == "3000.0"
