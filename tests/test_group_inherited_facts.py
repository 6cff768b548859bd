"""The group level's acquisition facts (field strength, sequence, echo time) are those the
participant run used: the metadata it recorded in each acquisition's ``desc-preproc_svs``
header (the input's header merged with its sidecars by BIDS inheritance), else the input's
sidecar metadata merged as discovery merges it. Before, the group level read each
acquisition's own sidecar alone, so a fact stated in an inherited JSON was lost: the demo's
3 T PRESS was labelled 2.9 T (from its frequency), 'PRESS' and echo time n/a."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import demo, demo_master  # noqa: E402,F401

from bids_app import cli  # noqa: E402
from bids_app import derivatives as d  # noqa: E402
from bids_app.demo import SMALL_METABOLITES, demo_designs  # noqa: E402
from bids_app.group import acquisition_facts, facts_reader, run_group  # noqa: E402
from bids_app.runlog import Outcome, write_run_records, write_summary  # noqa: E402

MOVED = ("MagneticFieldStrength", "SequenceName", "EchoTime")
INHERITED = {"01": "acq-dwpress_svs.json", "02": "sub-02/sub-02_svs.json"}
"""Where each demo participant's facts go: a dataset-level and a subject-level JSON."""
STEMS = {"01": "sub-01_acq-dwpress", "02": "sub-02_acq-dwsteam"}


def _expected_facts() -> dict:
    """The demo's facts as its sidecars state them (3 T PRESS, 7 T STEAM)."""
    return {f"sub-{label}": {"field_strength_t": f"{design.field_t:.1f}",
                             "sequence": f"simulated DW-{design.pulse_sequence_type}",
                             "echo_time_s": f"{design.echo_time_s:g}"}
            for label, design in zip(STEMS, demo_designs(small=True))}


def _move_facts(root: Path, labels=tuple(STEMS)) -> None:
    """Each participant's MOVED keys out of its own sidecar into its INHERITED JSON."""
    for label in labels:
        own = root / f"sub-{label}" / "mrs" / f"{STEMS[label]}_svs.json"
        sidecar = json.loads(own.read_text())
        (root / INHERITED[label]).write_text(json.dumps({k: sidecar.pop(k) for k in MOVED}))
        own.write_text(json.dumps(sidecar, indent=1))


def _tables_without_preproc(out: Path) -> None:
    """The tables the group level reads, for both demo participants, no preproc header."""
    for label, stem in STEMS.items():
        mrs = out / f"sub-{label}" / "mrs"
        d.write_tsv(mrs / f"{stem}_amplitudes.tsv",
                    [{"condition": 0, "b_value": 0.0, "metabolite": "tNAA", "amplitude": 1.0,
                      "concentration_mm": 10.0 + int(label)}], d.AMPLITUDES_COLUMNS)
        d.write_tsv(mrs / f"{stem}_diffusion.tsv",
                    [{"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
                      "value": 0.1 + int(label) / 100, "unit": "um2/ms", "applicable": 1}],
                    d.DIFFUSION_COLUMNS)
        d.write_json(mrs / f"{stem}_qc.json", {"summary": {"snr_tnaa_b0": 30.0}})
    outcomes, started = [Outcome(label) for label in STEMS], time.time()
    write_summary(out, outcomes, "participant", started)
    write_run_records(out, outcomes, started)


def _group(out: Path, bids: Path, labels=None) -> dict:
    """The group tables and report as text, after a group-level run."""
    assert all(o.ok for o in run_group(out, labels, bids))
    names = ["group_amplitudes.tsv", "group_diffusion.tsv", "group_qc.tsv", "group.html"]
    return {name: (out / name).read_text() for name in names}


def _facts(out: Path) -> dict:
    return {r["participant_id"]: {k: r[k] for k in ("field_strength_t", "sequence",
                                                    "echo_time_s")}
            for r in d.read_tsv(out / "group_qc.tsv")}


def participant_run(demo: Path, tmp_path: Path) -> Path:
    """sub-01 processed (small basis, one model) with its facts moved to its inherited JSON;
    the output folder."""
    _move_facts(demo, ["01"])
    config = tmp_path / "c.toml"
    config.write_text(f"[basis]\nmetabolites = {json.dumps(SMALL_METABOLITES)}\n"
                      '[diffusion]\nmodels = ["monoexponential"]\n')
    out = tmp_path / "out"
    assert cli.main([str(demo), str(out), "participant", "--participant-label", "01", "-w",
                     str(tmp_path / "work"), "--skip-bids-validation", "--nprocs", "1",
                     "--config", str(config)]) == 0
    return out


def test_inherited_facts_of_the_input_give_the_same_group_tables_and_report(demo, tmp_path):
    """Derivatives that record no metadata (no preproc file): the input's, merged."""
    out = tmp_path / "out"
    _tables_without_preproc(out)
    before = _group(out, demo)
    assert _facts(out) == _expected_facts()
    assert "tNAA 3 T" in before["group.html"] and "tNAA 7 T" in before["group.html"]
    _move_facts(demo)
    assert _group(out, demo) == before


def test_the_group_shows_the_facts_the_run_recorded_even_once_the_input_changed(demo, tmp_path):
    """Facts inherited by the participant run come from its preproc header; removing the
    inherited JSON afterwards does not change them (the input's NIfTI header states only TE),
    but makes the run's results stale: the JSON was one of its inputs (since session 26)."""
    out = participant_run(demo, tmp_path)
    expected = {"sub-01": _expected_facts()["sub-01"]}
    _group(out, demo, ["01"])
    assert _facts(out) == expected
    (demo / INHERITED["01"]).unlink()
    assert facts_reader(out, demo)("01", None, STEMS["01"]) == {
        "field_strength_t": 3.0, "sequence": "simulated DW-PRESS", "echo_time_s": 0.08}
    (outcome,) = run_group(out, ["01"], demo)
    assert not outcome.ok and outcome.errors[0].startswith(
        f"{demo / INHERITED['01']}: no longer in the input")


def test_each_fact_is_read_on_its_own_and_user_entries_by_their_value():
    facts = acquisition_facts({"MagneticFieldStrength": "3 T", "SpectrometerFrequency": [297.2],
                               "SequenceName": {"Value": "svs_se", "Description": "x"},
                               "EchoTime": {"Value": 0.03, "Description": "y"}})
    assert facts == {"field_strength_t": 7.0, "sequence": "svs_se", "echo_time_s": 0.03}
    assert acquisition_facts({"MagneticFieldStrength": [3], "PulseSequenceType": "STEAM",
                              "EchoTime": True}) == \
        {"field_strength_t": 3.0, "sequence": "STEAM", "echo_time_s": None}
    assert acquisition_facts({}) == dict.fromkeys(["field_strength_t", "sequence",
                                                  "echo_time_s"])


def test_fields_are_grouped_by_the_nominal_field_of_the_system():
    """A Siemens 3 T system runs at 123.2 MHz (2.89 T), Philips and GE at 127.7 MHz (3.0 T):
    one group, not "2.9 T" beside "3 T" (as before)."""
    siemens = acquisition_facts({"SpectrometerFrequency": [123.2]})["field_strength_t"]
    philips = acquisition_facts({"SpectrometerFrequency": [127.7]})["field_strength_t"]
    stated = acquisition_facts({"MagneticFieldStrength": 2.893620})["field_strength_t"]
    assert siemens == philips == stated == 3.0
    assert acquisition_facts({"SpectrometerFrequency": [297.2]})["field_strength_t"] == 7.0
    assert acquisition_facts({"SpectrometerFrequency": [400.2]})["field_strength_t"] == 9.4
    # a field no system is named by stays as measured, to 0.1 T
    assert acquisition_facts({"MagneticFieldStrength": 5.5})["field_strength_t"] == 5.5
