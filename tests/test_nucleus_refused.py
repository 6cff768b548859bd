"""Probe s19b nucleus-31p: a file whose ResonantNucleus is not 1H fails its participant at
discovery, naming the file, the key and the value (it was fitted as proton data with a 1H
basis, conjugated as "frequency-mirrored", and reported "ok"); header and sidecar must agree
on the nucleus; the workflow reader and dmrs-bids-convert say so too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import (_edit_json, _edit_svs, _without, copy_good, demo,  # noqa: E402,F401
                            demo_master, paths)

from bids_app import discovery  # noqa: E402
from bids_app.convert import convert_dataset  # noqa: E402
from bids_app.input_checks import InputError, read_acquisition  # noqa: E402
from pipeline.acquisition import Acquisition  # noqa: E402
from pipeline.io.nifti_mrs import read_nifti_mrs, write_nifti_mrs  # noqa: E402
from pipeline.spectra import H1_REFERENCE_PPM  # noqa: E402


def _set_nucleus(p: dict, header=None, sidecar=None, key: str = "svs") -> None:
    """Participant files of ``p`` with ResonantNucleus ``header`` / ``sidecar`` (None: kept)."""
    if header is not None:
        _edit_svs(p, ext_fn=lambda e: {**e, "ResonantNucleus": header}, key=key)
    if sidecar is not None:
        _edit_json(p[f"{key}_json"], lambda s: {**s, "ResonantNucleus": sidecar})


def test_a_non_proton_nucleus_fails_the_participant_at_discovery(demo):
    _set_nucleus(copy_good(demo, "p31"), header=["31P"], sidecar="31P")
    c13 = copy_good(demo, "c13hdr")
    _set_nucleus(c13, header=["13C"])
    _edit_json(c13["svs_json"], lambda s: _without(s, "ResonantNucleus"))  # header only
    _set_nucleus(copy_good(demo, "refp31"), header=["31P"], sidecar=["31P"], key="ref")
    _set_nucleus(copy_good(demo, "lower"), header=["1h"], sidecar="H1")  # the proton, spelt
    _set_nucleus(copy_good(demo, "p31low"), header=["p31"], sidecar="31p")  # other ways
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02", "lower"], found
    assert sorted(errors) == ["c13hdr", "p31", "p31low", "refp31"], errors
    for label, culprit, value in (("p31", "svs", "31P"), ("c13hdr", "svs", "13C"),
                                  ("refp31", "ref", "31P"), ("p31low", "svs", "31P")):
        message = errors[label]
        assert str(paths(demo, label)[culprit]) in message, message
        assert f"ResonantNucleus is {value};" in message, message
        assert "only 1H" in message, message
    assert "(header)" in errors["c13hdr"]
    assert str(paths(demo, "p31")["svs_json"]) in errors["p31"]
    proton = read_nifti_mrs(paths(demo, "lower")["svs"])  # "1h" was given a 0 ppm reference
    assert proton.nucleus == "1H" and proton.ref_ppm == H1_REFERENCE_PPM


def test_header_and_sidecar_must_agree_on_the_nucleus(demo):
    _set_nucleus(copy_good(demo, "clash"), header=["1H"], sidecar="31P")
    errors: dict = {}
    discovery.discover(demo, errors=errors)
    p = paths(demo, "clash")
    assert errors["clash"].startswith(str(p["svs"])), errors
    assert ("ResonantNucleus is 1H in the header but 31P in " + str(p["svs_json"])
            in errors["clash"]), errors["clash"]
    # a sidecar that agrees in another spelling of the same list passes
    _set_nucleus(p, sidecar="1H")
    errors.clear()
    assert "clash" in discovery.discover(demo, errors=errors) and not errors


def test_the_workflow_reader_refuses_a_non_proton_file(demo):
    p = copy_good(demo, "p31")
    read_acquisition(p["svs"])  # 1H passes
    _set_nucleus(p, header=["31P"])
    with pytest.raises(InputError, match=r"sub-p31_acq-dwpress_svs\.nii\.gz: ResonantNucleus "
                                         r"is 31P; dmrs-bids processes only 1H"):
        read_acquisition(p["svs"])


def test_convert_warns_when_it_writes_a_non_proton_file(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    fids = np.exp(-np.arange(256) / 40.0)[None, None, None, :] * (1 + 0.5j)
    write_nifti_mrs(Acquisition(fids=fids, dwell_s=1 / 4000, cf_mhz=49.9, b_values_s_mm2=[0],
                                directions=np.full((1, 3), np.nan), nucleus="31P", ref_ppm=0.0,
                                metadata={"EchoTime": 0.002}), source / "p.nii.gz")
    mapping = tmp_path / "m.toml"
    mapping.write_text('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       'format = "nifti"\nfiles = ["p.nii.gz"]\n')
    lines: list = []
    out = convert_dataset(mapping, tmp_path / "bids", source, log=lines.append)[0]
    warned = [line for line in lines if line.startswith("warning:") and "ResonantNucleus" in line]
    assert len(warned) == 1, lines
    assert str(source / "p.nii.gz") in warned[0] and "ResonantNucleus is 31P" in warned[0]
    assert "dmrs-bids will refuse it" in warned[0]
    assert json.loads(out.with_suffix("").with_suffix(".json").read_text())[
        "ResonantNucleus"] == ["31P"]
