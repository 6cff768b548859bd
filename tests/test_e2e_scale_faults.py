"""Faults of scale through the whole app (fault injection, session 23), one run of the small
demo with three participants holding the same data: ``01`` untouched (the truth), ``tiny``
with data and water reference both at 1e-12 of their scale (a different export: the
concentrations must not change; before, every one came out 1.7 % low), and ``lowsvs`` with
the data alone at 1e-6 (a water reference at another scale than the data: the concentrations
are 1e-6 of the truth and must be warned about; before, tNAA 9e-6 mM passed with every QC flag
as in the untouched run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import read_tsv  # noqa: E402
from fault_support import demo_with_copies, run_levels  # noqa: E402
from robust_support import _edit_svs  # noqa: E402

pytestmark = pytest.mark.slow  # one app run of three demo participants (about 30 s)

STEM = "acq-dwpress"
MAIN = ("tNAA", "tCr", "tCho", "Ins", "Glx")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("scale")
    bids, copies = demo_with_copies(base, ("tiny", "lowsvs"))
    _edit_svs(copies["tiny"], lambda d: d * 1e-12)
    _edit_svs(copies["tiny"], lambda d: d * 1e-12, key="ref")
    _edit_svs(copies["lowsvs"], lambda d: d * 1e-6)
    return run_levels(bids, base)


def _lowest_b_mm(out: Path, label: str) -> dict:
    rows = read_tsv(out / f"sub-{label}" / "mrs" / f"sub-{label}_{STEM}_amplitudes.tsv")
    return {r["metabolite"]: float(r["concentration_mm"]) for r in rows
            if float(r["b_value"]) == 0.0 and r["metabolite"] in MAIN}


def _warnings(out: Path, label: str) -> list[str]:
    qc = json.loads((out / f"sub-{label}" / "mrs" / f"sub-{label}_{STEM}_qc.json").read_text())
    return qc["warnings"]


def test_a_file_stored_at_another_scale_gives_the_same_concentrations(outputs):
    truth, tiny = _lowest_b_mm(outputs, "01"), _lowest_b_mm(outputs, "tiny")
    assert set(truth) == set(MAIN) and 5 < truth["tNAA"] < 15
    for name in MAIN:
        assert tiny[name] == pytest.approx(truth[name], rel=1e-4), name
    assert not any("implausible" in w for w in _warnings(outputs, "tiny"))


def test_a_water_reference_at_another_scale_than_the_data_is_warned_about(outputs):
    truth, low = _lowest_b_mm(outputs, "01"), _lowest_b_mm(outputs, "lowsvs")
    for name in MAIN:
        assert low[name] == pytest.approx(truth[name] * 1e-6, rel=1e-4), name
    (note,) = [w for w in _warnings(outputs, "lowsvs") if "implausible" in w]
    assert f"is {max(low.values()):.4g} mM" in note and "stored at the data's scale" in note
    assert not any("implausible" in w for w in _warnings(outputs, "01"))
