"""A sidecar link (ReferenceSignal, MacromoleculeSignal) to the wrong kind of file is refused at
discovery naming the JSON that states the link, the key, its value, the file it points to and
what is wrong with that file. Before, the messages named only the file pointed to (the JSON to
correct was left to guess, and an inherited one could not be found from the message), and a
link to a file that is not NIfTI (e.g. a sidecar .json) passed discovery and failed in the run
('not a readable NIfTI file', after the participant had started), as did an MM spectrum of
another field strength (the run's macromolecules step: 'resample_basis: ... differ by 141.92 %')."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_json, _edit_svs, demo, demo_master, paths  # noqa: E402,F401

from bids_app.discovery import DiscoveryError, discover_subject, load_layout  # noqa: E402


def _refusal(demo) -> str:
    with pytest.raises(DiscoveryError) as err:
        discover_subject(load_layout(demo), "01")
    return str(err.value)


def _link(p: dict, key: str, target: Path, demo: Path) -> str:
    """Set ``key`` of sub-01's svs sidecar to ``target``; the BIDS URI written."""
    uri = f"bids::{target.relative_to(demo).as_posix()}"
    _edit_json(p["svs_json"], lambda j: {**j, key: uri})
    return uri


def _copy(source: Path, name: str, scale: float) -> dict:
    """A copy of ``source`` (NIfTI-MRS, with its sidecar) named ``name`` in its folder, the data
    multiplied by ``scale`` (other bytes, same spectrum shape)."""
    copy = source.with_name(name)
    shutil.copyfile(source, copy)
    shutil.copyfile(str(source).replace(".nii.gz", ".json"), str(copy).replace(".nii.gz", ".json"))
    _edit_svs({"svs": copy}, lambda d: d * scale)
    return {"svs": copy}


@pytest.mark.parametrize("key, target_of, problem", [
    ("ReferenceSignal", lambda p, demo: p["svs"],
     "the water reference is the metabolite file {svs} itself; point ReferenceSignal at the "
     "unsuppressed water acquisition"),
    ("ReferenceSignal", lambda p, demo: _copy(p["svs"], "sub-01_acq-sup_mrsref.nii.gz", 3)["svs"],
     "not an unsuppressed water reference for sub-01_acq-dwpress_svs.nii.gz: "),
    ("ReferenceSignal", lambda p, demo: paths(demo, "02")["svs"].with_name(
        "sub-02_acq-dwsteam_svs.nii.gz"),
     "water reference dwell time 0.333333 ms (3000 Hz) differs from "
     "sub-01_acq-dwpress_svs.nii.gz (0.5 ms, 2000 Hz)"),
    ("ReferenceSignal", lambda p, demo: p["ref_json"],
     "which is not a NIfTI-MRS file (.nii or .nii.gz); point it at the unsuppressed water "
     "reference acquisition"),
    ("MacromoleculeSignal", lambda p, demo: p["ref"],
     "the measured macromolecule spectrum is the water reference {ref}; point "
     "MacromoleculeSignal at the metabolite-nulled acquisition"),
    ("MacromoleculeSignal", lambda p, demo: p["svs"],
     "the measured macromolecule spectrum is the metabolite file {svs}; point "
     "MacromoleculeSignal at the metabolite-nulled acquisition"),
    ("MacromoleculeSignal", lambda p, demo: _copy(p["ref"], "sub-01_acq-mm_svs.nii.gz", 0.5)["svs"],
     "the measured macromolecule spectrum of sub-01_acq-dwpress_svs.nii.gz looks like "
     "unsuppressed water"),
    ("MacromoleculeSignal", lambda p, demo: paths(demo, "02")["svs"].with_name(
        "sub-02_acq-dwsteam_svs.nii.gz"),  # 7 T data given to 3 T: failed in the run's MM step
     "the measured macromolecule spectrum's SpectrometerFrequency 298.06 MHz differs by 141.9 % "
     "(more than 1 %) from the 123.2 MHz of sub-01_acq-dwpress_svs.nii.gz: measured at another "
     "field strength"),
    ("MacromoleculeSignal", lambda p, demo: p["svs_json"],
     "which is not a NIfTI-MRS file (.nii or .nii.gz); point it at the metabolite-nulled "
     "macromolecule acquisition"),
])
def test_a_link_to_the_wrong_kind_of_file_names_the_json_stating_it(demo, key, target_of,
                                                                      problem):
    p = paths(demo, "01")
    target = target_of(p, demo)
    uri = _link(p, key, target, demo)
    message = _refusal(demo)
    assert message.startswith(f"{p['svs_json']}: {key} {uri!r} points to {target}"), message
    assert problem.format(svs=p["svs"], ref=p["ref"]) in message


def test_an_inherited_link_names_the_inherited_json(demo):
    """The MacromoleculeSignal stated in a subject-level JSON (BIDS inheritance), not in the
    file's own sidecar: the message names that JSON."""
    p = paths(demo, "01")
    inherited = demo / "sub-01" / "sub-01_acq-dwpress_svs.json"
    uri = f"bids::sub-01/mrs/{p['ref'].name}"
    inherited.write_text(f'{{"MacromoleculeSignal": "{uri}"}}')
    message = _refusal(demo)
    assert message.startswith(f"{inherited}: MacromoleculeSignal {uri!r} points to {p['ref']}: "
                              "the measured macromolecule spectrum is the water reference")


def test_a_water_reference_found_by_name_is_named_itself(demo):
    """No link: the mrsref paired by its name is water-suppressed; the message names that file
    (no JSON states a link)."""
    p = paths(demo, "01")
    _edit_json(p["svs_json"], lambda j: {k: v for k, v in j.items() if k != "ReferenceSignal"})
    shutil.copyfile(p["svs"], p["ref"])
    _edit_svs({"svs": p["ref"]}, lambda d: d * 3)
    message = _refusal(demo)
    assert message.startswith(f"{p['ref']}: not an unsuppressed water reference for "
                              "sub-01_acq-dwpress_svs.nii.gz: "), message
