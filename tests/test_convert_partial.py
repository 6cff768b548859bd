"""dmrs-bids-convert with some unreadable inputs: each participant (or session) is written
whole or not at all. The good ones are written; one with an unreadable acquisition, or with a
link (water reference, MM) to a scan that is not written, is skipped whole and named on stderr
with the file and the reason; exit 2 and a closing summary line. Before, one unreadable file
stopped the whole dataset (nothing written)."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.convert import PartialConversion, convert_dataset, main
from bids_app.convert_partial import skipped_units
from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import write_nifti_mrs

EMPTY = "bids_examples_mrs/mrs_fmrs/sub-02/mrs/sub-02_task-pain_svs.nii.gz"
"""A real 0-byte .nii.gz of the official MRS-BIDS examples (all their NIfTI files are empty)."""


def _scan(folder, name: str) -> str:
    """A small readable NIfTI-MRS file ``folder/name`` (an exponentially decaying FID, two
    transients); its absolute path for the mapping."""
    t = np.arange(256) * 2.5e-4
    fid = np.exp(-t / 0.05) * np.exp(2j * np.pi * 50 * t)
    acq = Acquisition(fids=np.tile(fid, (1, 2, 1, 1)), dwell_s=2.5e-4, cf_mhz=297.2,
                      b_values_s_mm2=[0.0], directions=[[np.nan] * 3],
                      metadata={"EchoTime": 0.011, "PulseSequenceType": "STEAM",
                                "MixingTime": 0.02})
    write_nifti_mrs(acq, folder / name)
    return str(folder / name)


def _entry(participant: str, suffix: str, path: str, **keys) -> str:
    extra = "".join(f'{k} = "{v}"\n' for k, v in keys.items())
    return (f'[[acquisition]]\nparticipant = "{participant}"\nsuffix = "{suffix}"\n'
            f'files = ["{path}"]\n{extra}')


def _run(tmp_path, capsys, entries: list[str], source):
    """Run the command line on a mapping of ``entries``: (exit code, stderr, output root)."""
    mapping = tmp_path / "map.toml"
    mapping.write_text("".join(entries))
    out = tmp_path / "bids"
    code = main([str(mapping), str(out), "--source-dir", str(source), "-q"])
    return code, capsys.readouterr().err, out


def _written(out) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_good_participant_written_bad_one_not_at_all(shared_data, tmp_path, capsys):
    """sub-02's water reference is readable but its spectrum is an empty file: none of sub-02
    is written (no half participant, no participants.tsv row); sub-01 is, whole."""
    code, err, out = _run(tmp_path, capsys, [
        _entry("01", "svs", _scan(tmp_path, "a.nii.gz")),
        _entry("02", "svs", EMPTY),
        _entry("02", "mrsref", _scan(tmp_path, "b.nii.gz"))], shared_data)
    assert code == 2
    assert _written(out) == ["README", "dataset_description.json", "participants.tsv",
                             "sub-01/mrs/sub-01_svs.json", "sub-01/mrs/sub-01_svs.nii.gz"]
    assert (out / "participants.tsv").read_text().split() == ["participant_id", "sub-01"]
    problem = [line for line in err.splitlines() if str(shared_data / EMPTY) in line]
    assert len(problem) == 1
    assert problem[0].startswith("  - sub-02: ") and "acquisition 2" in problem[0]
    assert problem[0].endswith("file is empty (0 bytes)")
    assert err.splitlines()[-1] == "wrote 1 of 2 participants (sub-01); skipped 1 (sub-02)"
    assert "Traceback" not in err


def test_link_to_a_skipped_water_reference_skips_the_linking_participant(
        shared_data, tmp_path, capsys):
    """sub-01's spectrum names sub-02's water reference, an empty file: sub-01 would point at
    a file that is not written, so it is skipped too, naming the link; sub-03 is written."""
    code, err, out = _run(tmp_path, capsys, [
        _entry("01", "svs", _scan(tmp_path, "a.nii.gz"), id="metab", reference="water"),
        _entry("02", "mrsref", EMPTY, id="water"),
        _entry("03", "svs", _scan(tmp_path, "c.nii.gz"))], shared_data)
    assert code == 2
    assert [p for p in _written(out) if p.startswith("sub-")] == \
        ["sub-03/mrs/sub-03_svs.json", "sub-03/mrs/sub-03_svs.nii.gz"]
    assert (out / "participants.tsv").read_text().split() == ["participant_id", "sub-03"]
    lines = err.splitlines()
    assert any(line.startswith("  - sub-02: ") and str(shared_data / EMPTY) in line
               for line in lines)
    link = [line for line in lines if line.startswith("  - sub-01: ")]
    assert len(link) == 1
    assert "acquisition 1 (metab): reference 'water' names a scan of sub-02, which is not " \
           "written" in link[0]
    assert lines[-1] == "wrote 1 of 3 participants (sub-03); skipped 2 (sub-01, sub-02)"


def test_link_to_a_skipped_scan_with_no_one_left_writes_nothing(shared_data, tmp_path, capsys):
    """When the skips leave nobody, nothing is written (no dataset files either), as before;
    the link is still named."""
    code, err, out = _run(tmp_path, capsys, [
        _entry("01", "svs", _scan(tmp_path, "a.nii.gz"), id="metab", reference="water"),
        _entry("02", "mrsref", EMPTY, id="water")], shared_data)
    assert code == 2 and not out.exists()
    assert "1 of 2 acquisitions cannot be converted (nothing was written)" in err
    assert "reference 'water' names a scan of sub-02" in err


def test_a_bad_session_skips_that_session_only(shared_data, tmp_path):
    """Sessions are written or skipped one by one: ses-2 of sub-01 is written and sub-01 is a
    participant; convert_dataset raises PartialConversion holding the written paths."""
    mapping = tmp_path / "map.toml"
    mapping.write_text(_entry("01", "svs", EMPTY, session="1")
                       + _entry("01", "svs", _scan(tmp_path, "a.nii.gz"), session="2"))
    out = tmp_path / "bids"
    with pytest.raises(PartialConversion) as info:
        convert_dataset(mapping, out, shared_data, log=lambda *_: None)
    assert info.value.written == [out / "sub-01/ses-2/mrs/sub-01_ses-2_svs.nii.gz"]
    assert not (out / "sub-01/ses-1").exists()
    assert (out / "participants.tsv").read_text().split() == ["participant_id", "sub-01"]
    assert str(info.value).splitlines()[-1] == \
        "wrote 1 of 2 participants/sessions (sub-01/ses-2); skipped 1 (sub-01/ses-1)"


def test_all_or_nothing_keeps_the_old_behaviour(shared_data, tmp_path, capsys):
    mapping = tmp_path / "map.toml"
    mapping.write_text(_entry("01", "svs", _scan(tmp_path, "a.nii.gz"))
                       + _entry("02", "svs", EMPTY))
    out = tmp_path / "bids"
    code = main([str(mapping), str(out), "--source-dir", str(shared_data), "-q",
                 "--all-or-nothing"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.startswith("dmrs-bids-convert: error: ") and "file is empty (0 bytes)" in err
    assert len(err.strip().splitlines()) == 1


def _link(participant: str, ident: str, **links) -> dict:
    return {"participant": participant, "suffix": "svs", "id": ident, **links}


def test_skips_follow_chains_of_links():
    """sub-03 names sub-01's scan, which names sub-02's failed one: both are skipped, in the
    order the chain is followed; sub-04 (no link) is not."""
    entries = [_link("01", "a", reference="b"), _link("02", "b"),
               _link("03", "c", macromolecules="a"), _link("04", "d")]
    wheres = [f"acquisition {i + 1}" for i in range(4)]
    skipped, problems = skipped_units(entries, {1: "acquisition 2: unreadable"}, wheres)
    assert skipped == {"sub-01", "sub-02", "sub-03"}
    assert problems[0] == "sub-02: acquisition 2: unreadable"
    assert problems[1].startswith("sub-01: acquisition 1: reference 'b' names a scan of sub-02")
    assert problems[2].startswith("sub-03: acquisition 3: macromolecules 'a' names a scan of "
                                  "sub-01")
    assert len(problems) == 3


def test_links_inside_a_skipped_participant_add_no_message():
    """A link within the failed participant needs no second line: it is skipped already."""
    entries = [_link("01", "a", reference="b"), _link("01", "b")]
    skipped, problems = skipped_units(entries, {1: "acquisition 2: unreadable"}, ["x", "y"])
    assert skipped == {"sub-01"} and problems == ["sub-01: acquisition 2: unreadable"]
