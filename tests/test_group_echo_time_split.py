"""Group distributions split by echo time when one field strength holds several (fault
injection, session 23). Two demo participants with the same simulated data, one stated at
TE 35 ms (header and sidecar), the other at the demo's 80 ms: before, group.html pooled their
concentrations and ADCs in one column per metabolite (split by field strength only), although
values at different echo times are not comparable (T2 weighting; concentrations are not
T2-corrected by default); the group tables already carried ``echo_time_s``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import read_tsv  # noqa: E402
from fault_support import demo_with_copies, run_levels  # noqa: E402
from robust_support import _edit_json, _edit_svs  # noqa: E402

pytestmark = pytest.mark.slow  # participant level for two demo participants, then the group


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("te")
    bids, copies = demo_with_copies(base, ("02",))
    _edit_svs(copies["02"], ext_fn=lambda e: {**e, "EchoTime": 0.035})
    _edit_json(copies["02"]["svs_json"], lambda s: {**s, "EchoTime": 0.035})
    return run_levels(bids, base, ("participant", "group"))


def test_the_group_tables_state_each_echo_time(group):
    rows = {r["participant_id"]: r for r in read_tsv(group / "group_amplitudes.tsv")}
    assert rows["sub-01"]["echo_time_s"] == "0.08" and rows["sub-02"]["echo_time_s"] == "0.035"
    assert rows["sub-01"]["field_strength_t"] == rows["sub-02"]["field_strength_t"] == "3.0"


def test_distributions_are_split_by_echo_time(group):
    from bids_app.group_report import group_parameter_figures

    diffusion = read_tsv(group / "group_diffusion.tsv")
    amplitudes = read_tsv(group / "group_amplitudes.tsv")
    figures = group_parameter_figures(diffusion, {}, amplitudes)
    adc = next(f for f in figures if f["title"] == "ADC (monoexponential)")
    concentration = next(f for f in figures if "concentration" in f["title"])
    for figure in (adc, concentration):
        assert "tNAA TE 35 ms" in figure["svg"] and "tNAA TE 80 ms" in figure["svg"]
    html = (group / "group.html").read_text()
    assert "tNAA TE 35 ms" in html and "tNAA TE 80 ms" in html


def test_one_echo_time_is_not_labelled():
    from bids_app.group_report import group_parameter_figures

    rows = [{"participant_id": f"sub-0{i}", "metabolite": "tNAA", "model": "monoexponential",
             "parameter": "ADC", "value": str(v), "unit": "um^2/ms", "applicable": "1",
             "field_strength_t": "3.0", "echo_time_s": te}
            for i, v, te in ((1, 0.15, "0.08"), (2, 0.16, "0.08"), (3, 0.14, "n/a"))]
    (figure,) = group_parameter_figures(rows, {})
    assert "TE" not in figure["svg"]
