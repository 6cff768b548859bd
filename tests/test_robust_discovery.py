"""Issue 17 items 3, 5, 8 and 13 (discovery): derivatives, nested copies and output folders are
never taken as inputs; two inputs never share an output name; a filter file never changes the
participant; one participant's unreadable files fail only that participant, naming the file;
folders with invalid labels are reported and skipped; symlink loops are not walked."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import (_edit_svs, as_measured_mm, copy_good, demo, demo_master,  # noqa: E402,F401
                            paths)

from bids_app import cli, discovery  # noqa: E402


def _copy_acquisition(src: dict, folder: Path, stem: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src["svs"], folder / f"{stem}_svs.nii.gz")
    shutil.copyfile(src["svs_json"], folder / f"{stem}_svs.json")


def test_output_folder_inside_the_input_is_refused_unless_under_derivatives(demo, capsys):
    status = cli.main([str(demo), str(demo / "out"), "participant", "-w",
                       str(demo.parent / "work"), "--skip-bids-validation"])
    assert status == cli.EXIT_USAGE
    message = capsys.readouterr().err
    assert str(demo / "out") in message and "derivatives" in message
    opts = cli.build_parser().parse_args([str(demo), str(demo / "derivatives" / "dmrs"),
                                          "participant", "-w", str(demo.parent / "work")])
    cli._check_paths(opts)  # allowed: BIDS keeps derivatives there


def test_derivatives_nested_copies_and_outputs_are_not_inputs(demo):
    good = paths(demo, "01")
    mrs = good["svs"].parent
    _copy_acquisition(good, mrs, "sub-01_acq-dwpress_desc-fit")      # a derivative name
    _copy_acquisition(good, mrs / "old", "sub-01_acq-dwpress")        # a nested copy
    _copy_acquisition(good, mrs / "zz", "sub-01_acq-other")
    _copy_acquisition(good, demo / "derivatives" / "dmrs" / "sub-01" / "mrs",
                      "sub-01_acq-dwpress_desc-preproc")
    _copy_acquisition(good, demo / "out" / "sub-01" / "mrs", "sub-01_acq-dwpress")
    errors: dict = {}
    found = discovery.discover(demo, errors=errors, exclude=[demo / "out"])
    assert errors == {}
    assert [a.svs for a in found["01"]] == [good["svs"]]
    assert [a.svs.name for a in found["02"]] == ["sub-02_acq-dwsteam_svs.nii.gz"]


def test_two_inputs_mapping_to_one_output_name_are_refused(demo):
    good = paths(demo, "01")
    plain = good["svs"].with_name("sub-01_acq-dwpress_svs.nii")
    import nibabel as nib
    nib.save(nib.load(str(good["svs"])), str(plain))
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert "01" not in found and "02" in found
    assert str(plain) in errors["01"] and str(good["svs"]) in errors["01"]
    assert "same output name" in errors["01"]


def test_filter_file_may_narrow_but_never_choose_the_participant(demo, tmp_path, capsys):
    for query, key in (("svs", "subject"), ("mrsref", "subject"), ("mrsref", "session"),
                       ("mm", "session")):
        path = tmp_path / f"{query}-{key}.json"
        path.write_text(json.dumps({query: {key: "02"}}))
        with pytest.raises(discovery.DiscoveryError) as err:
            discovery.read_bids_filter_file(path)
        assert str(path) in str(err.value) and f"'{key}'" in str(err.value)
    status = cli.main([str(demo), str(tmp_path / "out"), "participant", "--participant-label",
                       "01", "--bids-filter-file", str(tmp_path / "svs-subject.json"), "-w",
                       str(tmp_path / "work"), "--skip-bids-validation"])
    assert status == cli.EXIT_USAGE and "--participant-label" in capsys.readouterr().err
    assert not (tmp_path / "out" / "sub-01" / "mrs").exists()
    # a session in the svs filter intersects the selected sessions, never replaces them
    assert discovery._narrow({"session": ["a", "b"]}, {"session": "b"}) == {"session": ["b"]}
    assert discovery._narrow({"session": ["a"]}, {"session": ["c"]}) == {"session": []}
    assert discovery._narrow({"subject": "01"}, {"acquisition": "x"}) == {
        "subject": "01", "acquisition": "x"}


def _reference_as_list(p):
    s = json.loads(p["svs_json"].read_text())
    s["ReferenceSignal"] = [s["ReferenceSignal"]]
    p["svs_json"].write_text(json.dumps(s))
    return p["svs_json"], "ReferenceSignal"


def _sidecar_array(p):
    p["svs_json"].write_text(json.dumps([json.loads(p["svs_json"].read_text())]))
    return p["svs_json"], "JSON list"


def _fifo_svs(p):
    p["svs"].unlink()
    os.mkfifo(p["svs"])
    return p["svs"], "not a regular file"


def _fifo_sidecar(p):
    p["ref_json"].unlink()
    os.mkfifo(p["ref_json"])
    return p["ref_json"], "not a regular file"


def test_one_participants_broken_files_fail_only_that_participant(demo):
    expected = {}
    for label, build in (("list", _reference_as_list), ("array", _sidecar_array),
                         ("fifo", _fifo_svs), ("fifojson", _fifo_sidecar)):
        expected[label] = build(copy_good(demo, label))
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"]
    assert sorted(errors) == sorted(expected)
    for label, (culprit, words) in expected.items():
        assert str(culprit) in errors[label] and words in errors[label], errors[label]


def test_invalid_folder_labels_are_reported_not_collapsed(demo):
    good = paths(demo, "01")
    for label in ("0 4", "05-x", "é1"):
        mrs = demo / f"sub-{label}" / "mrs"
        _copy_acquisition(good, mrs, f"sub-{label}_acq-dwpress")
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"]  # nothing under "0", "05" or a mangled label
    assert sorted(errors) == sorted(["0 4", "05-x", "é1"])
    assert all("not a valid BIDS label" in m for m in errors.values())
    assert str(demo / "sub-0 4") in errors["0 4"]


def test_symlink_loops_are_not_walked(demo):
    (demo / "sub-01" / "mrs" / "loop").symlink_to("..")
    (demo / "loop").symlink_to(".")
    (demo / "sub-02" / "loop").symlink_to(".")
    layout = discovery.load_layout(demo)
    depths = [len(Path(f.path).relative_to(demo).parts) for f in layout.get()]
    assert max(depths) <= 4, max(depths)
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert errors == {} and [a.svs for a in found["01"]] == [paths(demo, "01")["svs"]]


def test_unexpected_error_still_writes_the_summary_and_logs_the_traceback(demo, tmp_path,
                                                                          monkeypatch, capsys):
    import bids_app.run as run_module

    def broken(*args, **kwargs):
        raise RuntimeError("worker pool died")

    monkeypatch.setattr(run_module, "run_participants", broken)
    out = tmp_path / "out"
    status = cli.main([str(demo), str(out), "participant", "-w", str(tmp_path / "work"),
                       "--skip-bids-validation"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_FAILED
    assert "RuntimeError: worker pool died" in err and "Traceback" not in err
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["run_error"] == "RuntimeError: worker pool died"
    log = (out / "logs" / "dmrs-bids.log").read_text()
    assert "Traceback" in log and "worker pool died" in log
    assert not (tmp_path / "work" / cli.LOCK_NAME).exists() or cli._held_locks == []


def test_a_water_reference_filed_under_another_session_is_named_in_a_warning(demo):
    """The svs in ses-01, its mrsref in ses-02 (no ReferenceSignal): processed without a water
    reference as before, but no longer silently: the warning names both files."""
    from bids_app.discovery import discover_subject, load_layout

    src = paths(demo, "01")
    for session, keys in (("01", ("svs", "svs_json")), ("02", ("ref", "ref_json"))):
        folder = demo / "sub-01" / f"ses-{session}" / "mrs"
        folder.mkdir(parents=True)
        for key in keys:
            name = src[key].name.replace("sub-01_", f"sub-01_ses-{session}_")
            shutil.move(src[key], folder / name)
    sidecar_path = demo / "sub-01" / "ses-01" / "mrs" / src["svs_json"].name.replace(
        "sub-01_", "sub-01_ses-01_")
    sidecar = json.loads(sidecar_path.read_text())
    sidecar.pop("ReferenceSignal", None)
    sidecar_path.write_text(json.dumps(sidecar))
    (src["svs"].parent).rmdir()
    (inputs,) = discover_subject(load_layout(demo), "01")
    assert inputs.water is None
    (note,) = inputs.warnings
    assert "no water reference found" in note and "other sessions hold" in note
    assert "sub-01_ses-02_" in note and "_mrsref.nii.gz" in note


def _drop_reference_signal(sidecar: Path) -> None:
    data = json.loads(sidecar.read_text())
    data.pop("ReferenceSignal", None)
    sidecar.write_text(json.dumps(data))


def test_an_svs_without_acq_is_never_paired_with_another_acquisitions_mrsref(demo):
    """A plain sub-01_svs took sub-01_acq-dwpress_mrsref (a pybids query leaves out the
    entities the svs lacks): concentrations and eddy-current correction from the other
    acquisition's water, no word. Now only the mrsref with exactly its entities is used."""
    from bids_app.discovery import discover_subject, load_layout

    src = paths(demo, "01")
    _copy_acquisition(src, src["svs"].parent, "sub-01")
    for sidecar in (src["svs_json"], src["svs"].parent / "sub-01_svs.json"):
        _drop_reference_signal(sidecar)
    found = {a.svs.name: a for a in discover_subject(load_layout(demo), "01")}
    assert found["sub-01_acq-dwpress_svs.nii.gz"].water == src["ref"]  # same entities
    plain = found["sub-01_svs.nii.gz"]
    assert plain.water is None
    (note,) = plain.warnings
    assert "looked for sub-01_mrsref.nii.gz" in note
    assert "the folder holds sub-01_acq-dwpress_mrsref.nii.gz" in note


def test_the_mm_acquisition_differs_only_in_acq(demo):
    """acq-mm_run-1 was taken as the measured MM of an svs with no run- entity; an MM
    acquisition must carry exactly the svs's entities but its acq- label."""
    from bids_app.discovery import discover_subject, load_layout

    src = paths(demo, "01")
    mrs = src["svs"].parent
    _copy_acquisition(src, mrs, "sub-01_acq-mm_run-1")
    (acq,) = discover_subject(load_layout(demo), "01")
    assert acq.mm is None
    _copy_acquisition(src, mrs, "sub-01_acq-mm")
    as_measured_mm(mrs / "sub-01_acq-mm_svs.nii.gz")
    (acq,) = discover_subject(load_layout(demo), "01")
    assert acq.mm == mrs / "sub-01_acq-mm_svs.nii.gz"


def test_macromolecule_signal_links_the_measured_mm_whatever_its_label(demo):
    """The converter links a measured MM by ``MacromoleculeSignal``; an MM acquisition with its
    own ``acq-`` label (here ``acq-mmti600``) was never read as the MM (parametric MM fitted
    instead: tCr 5.41 for 6.09 mM on the Osprey sub-01 data) and was fitted as a metabolite
    acquisition of its own. Now the link is followed and the MM is no acquisition of its own;
    a link to the water reference, to the metabolite file or to nothing is refused, naming it."""
    from bids_app.discovery import DiscoveryError, discover_subject, load_layout
    from robust_support import _edit_json

    src = paths(demo, "01")
    mrs = src["svs"].parent
    mm = mrs / "sub-01_acq-mmti600_svs.nii.gz"
    _copy_acquisition(src, mrs, "sub-01_acq-mmti600")
    as_measured_mm(mm)
    _edit_json(mrs / "sub-01_acq-mmti600_svs.json",
               lambda j: {k: v for k, v in j.items() if k != "ReferenceSignal"})
    link = lambda target: _edit_json(src["svs_json"],  # noqa: E731
                                     lambda j: {**j, "MacromoleculeSignal": target})
    link("bids::sub-01/mrs/sub-01_acq-mmti600_svs.nii.gz")
    (acq,) = discover_subject(load_layout(demo), "01")
    assert acq.svs == src["svs"] and acq.mm == mm
    for target, words in (("bids::sub-01/mrs/" + src["ref"].name, "is the water reference"),
                          ("bids::sub-01/mrs/" + src["svs"].name, "is the metabolite file"),
                          ("bids::sub-01/mrs/sub-01_acq-none_svs.nii.gz", "does not exist")):
        link(target)
        with pytest.raises(DiscoveryError, match=words):
            discover_subject(load_layout(demo), "01")


def test_a_water_scan_given_as_the_measured_mm_is_refused(demo):
    """A water reference copied under an MM name (unsuppressed water, other bytes) would be
    fitted as the macromolecule spectrum: refused as looking like unsuppressed water."""
    from bids_app.discovery import DiscoveryError, discover_subject, load_layout

    src = paths(demo, "01")
    mrs = src["svs"].parent
    mm = mrs / "sub-01_acq-mm_svs.nii.gz"
    shutil.copyfile(src["ref"], mm)
    _edit_svs({"svs": mm}, lambda d: 0.5 * d)
    with pytest.raises(DiscoveryError, match="looks like unsuppressed water"):
        discover_subject(load_layout(demo), "01")


def test_entity_labels_with_underscores_or_hyphens_fail_the_participant(demo):
    """sub-01_acq-press-60_svs (no water of its own) was paired with sub-01_acq-press_30_mrsref:
    pybids reads both labels as acq-press, and the 60 ms data were 'water-scaled' with the
    30 ms water (tCr 9.48 mM, exit 0). Such names now fail the participant, naming the file;
    the other participant is found as before."""
    src = paths(demo, "01")
    mrs = src["svs"].parent
    for old, new in ((src["svs"], "sub-01_acq-press-60_svs.nii.gz"),
                     (src["ref"], "sub-01_acq-press_30_mrsref.nii.gz")):
        old.rename(mrs / new)
        Path(str(old).replace(".nii.gz", ".json")).rename(mrs / new.replace(".nii.gz", ".json"))
    _drop_reference_signal(mrs / "sub-01_acq-press-60_svs.json")  # paired by entities only
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert "01" not in found and "02" in found
    assert "not a BIDS file name" in errors["01"] and "sub-01_acq-press" in errors["01"]
