"""The group level's acquisition facts when the ``desc-preproc_svs`` file is gone: read from the
``desc-fit_svs`` header, which the participant run writes with the same metadata; only with
both gone from the input's sidecars as they are now, with a warning naming the files. Before,
a missing preproc file sent the group level to the input at once: with the facts moved to an
inherited JSON and that JSON removed after the run, sub-01's sequence became 'PRESS' (its own
sidecar's PulseSequenceType) instead of the 'simulated DW-PRESS' the run used, silently."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master  # noqa: E402,F401
from test_group_inherited_facts import (INHERITED, STEMS, _expected_facts, _facts,  # noqa: E402
                                        _group, participant_run)

from bids_app import derivatives as d  # noqa: E402
from bids_app.group import facts_reader  # noqa: E402


def test_without_preproc_the_fit_header_gives_the_facts_the_run_used(demo, tmp_path):
    out = participant_run(demo, tmp_path)
    d.acquisition_path(out, "01", None, STEMS["01"], "preproc").unlink()
    (demo / INHERITED["01"]).unlink()  # the input no longer states them
    warnings: list[str] = []
    assert facts_reader(out, demo, warnings.append)("01", None, STEMS["01"]) == {
        "field_strength_t": 3.0, "sequence": "simulated DW-PRESS", "echo_time_s": 0.08}
    assert warnings == []
    _group(out, None, ["01"])  # given the input, the removed JSON makes the results stale
    assert _facts(out) == {"sub-01": _expected_facts()["sub-01"]}
    assert _expected_facts()["sub-01"]["sequence"] == "simulated DW-PRESS"


def test_without_either_header_the_input_is_read_with_a_warning(demo, tmp_path):
    out = participant_run(demo, tmp_path)
    for kind in ("preproc", "fit"):
        d.acquisition_path(out, "01", None, STEMS["01"], kind).unlink()
    warnings: list[str] = []
    facts = facts_reader(out, demo, warnings.append)("01", None, STEMS["01"])
    assert facts == {"field_strength_t": 3.0, "sequence": "simulated DW-PRESS",
                     "echo_time_s": 0.08}  # the inherited JSON is still there
    preproc = d.acquisition_path(out, "01", None, STEMS["01"], "preproc")
    assert warnings == [f"{preproc} and {STEMS['01']}_desc-fit_svs.nii.gz are missing or "
                        "unreadable (their headers record the metadata the participant run "
                        "used): its field strength, sequence and echo time are read from the "
                        f"input's sidecars in {demo} as they are now"]
    warnings.clear()
    assert facts_reader(out, None, warnings.append)("01", None, STEMS["01"]) == \
        dict.fromkeys(["field_strength_t", "sequence", "echo_time_s"])
    assert warnings[0].endswith("are n/a (no BIDS_DIR given)")


def _recorded_run_without_echo_time(tmp_path: Path) -> tuple[Path, Path]:
    """(output folder, BIDS folder): a desc-fit header recording the run's field and sequence
    but no EchoTime (no preproc file); the input's sidecar states EchoTime 0.035 s."""
    import json

    import numpy as np

    from pipeline.acquisition import Acquisition
    from pipeline.io.nifti_mrs_write import write_nifti_mrs

    bids = tmp_path / "bids"
    (bids / "sub-01" / "mrs").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "t", "BIDSVersion": "1.10.0"}))
    (bids / "sub-01" / "mrs" / "sub-01_svs.json").write_text(json.dumps(
        {"EchoTime": 0.035, "SequenceName": "PRESS (input)", "MagneticFieldStrength": 3}))
    (bids / "sub-01" / "mrs" / "sub-01_svs.nii.gz").write_bytes(b"")
    out = tmp_path / "out"
    fit = d.acquisition_path(out, "01", None, "sub-01", "fit")
    fit.parent.mkdir(parents=True)
    acq = Acquisition(np.ones((1, 1, 1, 8), complex), 2.5e-4, 123.2, np.zeros(1),
                      np.full((1, 3), np.nan),
                      metadata={"SequenceName": "PRESS (run)", "MagneticFieldStrength": 3.0})
    write_nifti_mrs(acq, fit)
    return out, bids


def test_a_fact_the_record_lacks_comes_from_the_input_with_a_warning(tmp_path):
    """The record states field and sequence but no echo time: those two from the record, the
    echo time from the input, and a warning naming it (before: echo time n/a, no word)."""
    out, bids = _recorded_run_without_echo_time(tmp_path)
    warnings: list[str] = []
    facts = facts_reader(out, bids, warnings.append)("01", None, "sub-01")
    assert facts == {"field_strength_t": 3.0, "sequence": "PRESS (run)", "echo_time_s": 0.035}
    assert len(warnings) == 1 and "do not record its echo time" in warnings[0]
    assert str(bids) in warnings[0] and "sub-01" in warnings[0]
    warnings.clear()
    assert facts_reader(out, None, warnings.append)("01", None, "sub-01")["echo_time_s"] is None
    assert warnings == []  # nothing read instead: nothing to warn about
