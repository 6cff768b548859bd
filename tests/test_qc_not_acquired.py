"""QC counts transients not acquired (exactly zero: a scan stopped early, a dropped repetition)
apart from rejected outliers. Before 2026-12-07 they were counted as rejected: half of one demo
condition zero failed "transients rejected (worst condition)" (0.5 > 0.30) on data with no
outlier at all, and their shifts entered nothing but the rejected counts.

Truth: the same demo acquisition untouched (the same injected outlier in both runs), and
counts computed by hand.
"""

import csv
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo_master  # noqa: E402,F401

from pipeline.qc.flags import THRESHOLDS, evaluate
from pipeline.qc.metrics import drift_statistics, rejection_counts, transient_counts
from pipeline.qc.summary import summarise

CF_MHZ = 123.2
ZEROED_CONDITION, N_ZEROED = 1, 4
OUTLIER = (2, 6)  # (condition, transient) scaled down in both runs: a rejection to keep
STEM = "sub-01_acq-dwpress"


def test_counts_judge_outliers_among_the_acquired_transients():
    rejected = np.array([1, 1, 1, 1, 0, 1, 0, 0], bool)  # 4 not acquired (also left out)
    acquired = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    assert transient_counts(rejected, acquired) == {
        "n_rejected": 1, "rejected_fraction": 0.25, "n_not_acquired": 4,
        "not_acquired_fraction": 0.5}
    # a table written before the column existed: every left-out transient is an outlier
    assert transient_counts(rejected)["rejected_fraction"] == 5 / 8
    # one acquired transient: nothing could be rejected (n/a, not a passing 0)
    assert transient_counts([1, 1, 0], [0, 0, 1])["rejected_fraction"] is None
    assert rejection_counts([0, 0, 1, 1], [1, 1, 1, 0], [0, 1, 1, 1]) == {"0": 1, "1": 1}
    with pytest.raises(ValueError, match="as many rejected"):
        transient_counts([1, 0], [1])


def test_drift_statistics_leave_the_not_acquired_out():
    """Exactly-zero transients have no drift; when every acquired transient was rejected the
    figures describe the acquired ones, never the zeros' placeholder shifts."""
    acquired_shifts = np.array([1.0, 2.0, 3.0, 4.0])
    freq = np.concatenate([[0.0, 0.0], acquired_shifts])  # zeros' shifts: placeholders
    acquired = np.array([0, 0, 1, 1, 1, 1], bool)
    rejected = ~acquired
    stats = drift_statistics(freq, freq, rejected, np.zeros(6, int), acquired)
    assert stats["freq_shift_range_hz"] == pytest.approx(3.0)
    assert stats["freq_shift_mean_hz"] == pytest.approx(2.5)
    assert stats["freq_drift_hz_per_transient"] == pytest.approx(1.0)
    assert (stats["n_rejected"], stats["rejected_fraction"]) == (0, 0.0)
    assert (stats["n_not_acquired"], stats["not_acquired_fraction"]) == (2, pytest.approx(1 / 3))
    everything = drift_statistics(freq, freq, np.ones(6, bool), np.zeros(6, int), acquired)
    assert everything["freq_shift_range_hz"] == pytest.approx(3.0)
    assert everything["rejected_fraction"] == 1.0
    # two transients per condition, one of each not acquired: nothing could be rejected
    single = drift_statistics([0.0, 1.0, 0.0, 2.0], [0.0] * 4, [1, 0, 1, 0], [0, 0, 1, 1],
                              [0, 1, 0, 1])
    assert single["rejected_fraction"] is None and single["n_not_acquired"] == 2


@pytest.mark.parametrize("fraction, status", [(0.0, "pass"), (0.25, "pass"), (0.26, "warn"),
                                               (1.0, "warn")])
def test_the_not_acquired_check_warns_above_a_quarter_and_never_fails(fraction, status):
    per_condition = [{"condition": 0, "b_value": 0.0, "rejected_fraction": 0.0,
                      "not_acquired_fraction": 0.0},
                     {"condition": 1, "b_value": 3000.0, "rejected_fraction": 0.0,
                      "not_acquired_fraction": fraction}]
    summary = summarise(per_condition, [0.0, 3000.0], {})
    flags = {f.metric: f for f in evaluate(summary, CF_MHZ)}
    assert flags["not_acquired_fraction_max"].status == status
    assert flags["not_acquired_fraction_max"].value == fraction
    assert flags["rejected_fraction_max"].status == "pass"
    if status == "warn":
        assert flags["not_acquired_fraction_max"].reason.endswith(
            "at condition 1 (b = 3000 s/mm^2)")
    assert THRESHOLDS["not_acquired_fraction_max"].label.startswith("transients not acquired")


def _edit_transients(path: Path, edit) -> None:
    """Apply ``edit`` to the data array of a demo NIfTI-MRS file (..., points, DYN, USER_0)."""
    image = nib.load(path)
    data = np.asarray(image.dataobj).copy()
    edit(data)
    nib.save(type(image)(data, image.affine, header=image.header), path)


def _scale_outlier(data):
    data[..., OUTLIER[1], OUTLIER[0]] *= 0.2


def _zero(data):
    data[..., :N_ZEROED, ZEROED_CONDITION] = 0


def _run(bids: Path, out: Path, work: Path) -> Path:
    from bids_app import cli

    for level in ("participant", "group"):
        status = cli.main([str(bids), str(out), level, "--participant-label", "01", "-w",
                           str(work), "--skip-bids-validation", "--nprocs", "2"])
        assert status == cli.EXIT_OK, level
    return out


@pytest.fixture(scope="module")
def runs(demo_master, tmp_path_factory):
    """The app (participant and group level) on the demo's sub-01 with one outlier injected:
    untouched, and with half of one condition's transients exactly zero."""
    base = tmp_path_factory.mktemp("not_acquired")
    out = {}
    for name, edits in (("untouched", [_scale_outlier]), ("zeroed", [_scale_outlier, _zero])):
        bids = base / f"bids-{name}"
        shutil.copytree(demo_master, bids, symlinks=True)
        for edit in edits:
            _edit_transients(bids / "sub-01" / "mrs" / f"{STEM}_svs.nii.gz", edit)
        out[name] = _run(bids, base / f"out-{name}", base / f"work-{name}")
    return out


def _qc(out: Path) -> dict:
    return json.loads((out / "sub-01" / "mrs" / f"{STEM}_qc.json").read_text())


def _transients(out: Path) -> list[dict]:
    with open(out / "sub-01" / "mrs" / f"{STEM}_transients.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_the_transients_table_marks_the_zeroed_transients_not_acquired(runs):
    rows = _transients(runs["zeroed"])
    assert list(rows[0])[-2:] == ["rejected", "acquired"]  # added last, nothing renamed
    zeroed = {(int(r["condition"]), int(r["transient"])) for r in rows if r["acquired"] == "0"}
    assert zeroed == {(ZEROED_CONDITION, t) for t in range(N_ZEROED)}
    assert all(r["rejected"] == "1" for r in rows if r["acquired"] == "0")  # left out
    assert all(r["acquired"] == "1" for r in _transients(runs["untouched"]))


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_qc_counts_the_zeroed_transients_apart_from_the_rejected(runs):
    untouched, zeroed = _qc(runs["untouched"]), _qc(runs["zeroed"])
    # the injected outlier is rejected in both runs: the rejection counts are real ones
    assert untouched["rejected_per_condition"][str(OUTLIER[0])] >= 1
    assert zeroed["rejected_per_condition"] == untouched["rejected_per_condition"]
    assert zeroed["summary"]["n_rejected"] == untouched["summary"]["n_rejected"]
    n_conditions = len(zeroed["per_condition"])
    assert zeroed["not_acquired_per_condition"] == {
        str(c): N_ZEROED if c == ZEROED_CONDITION else 0 for c in range(n_conditions)}
    assert zeroed["summary"]["n_not_acquired"] == N_ZEROED
    assert untouched["summary"]["n_not_acquired"] == 0
    entry = zeroed["per_condition"][ZEROED_CONDITION]
    assert (entry["n_not_acquired"], entry["not_acquired_fraction"]) == (N_ZEROED, 0.5)
    assert entry["n_rejected"] == untouched["per_condition"][ZEROED_CONDITION]["n_rejected"]
    assert zeroed["stages"]["outliers.json"]["n_not_acquired"] == N_ZEROED
    assert (zeroed["stages"]["outliers.json"]["n_rejected"]
            == untouched["stages"]["outliers.json"]["n_rejected"])


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_the_rejection_verdict_is_the_untouched_one_and_the_new_check_warns(runs):
    untouched, zeroed = ({f["metric"]: f for f in _qc(runs[k])["flags"]}
                         for k in ("untouched", "zeroed"))
    for key in ("status", "value"):
        assert zeroed["rejected_fraction_max"][key] == untouched["rejected_fraction_max"][key]
    assert untouched["not_acquired_fraction_max"]["status"] == "pass"
    missing = zeroed["not_acquired_fraction_max"]
    assert (missing["status"], missing["value"]) == ("warn", 0.5)
    assert f"at condition {ZEROED_CONDITION}" in missing["reason"]
    assert "not_acquired_fraction_max" in _qc(runs["zeroed"])["summary"]["qc_warned"]


@pytest.mark.slow  # an app run end to end: over 20 s on 2 cores
def test_reports_and_group_table_show_the_not_acquired_check(runs):
    out = runs["zeroed"]
    html = (out / "sub-01.html").read_text()
    assert "transients not acquired (exactly zero; worst condition)" in html
    with open(out / "group_qc.tsv", newline="") as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    assert float(row["not_acquired_fraction_max"]) == 0.5
    assert int(row["n_not_acquired"]) == N_ZEROED
    assert "not_acquired_fraction_max" in row["qc_warned"]
    from bids_app.group_report import qc_panels
    panel = next(p for p in qc_panels([row]) if p["metric"] == "not_acquired_fraction_max")
    assert [v for _, v in panel["values"]] == [0.5]
    assert "not acquired (exactly" in (out / "group.html").read_text()  # the panel's title
