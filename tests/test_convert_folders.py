"""Folder inputs of the conversion mapping (issue 8): the Varian reader takes a ``.fid`` folder
and spec2nii's Bruker reader a file or a folder; every other format takes files. A folder that
cannot be converted gives exit status 2 and one line naming it and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bids_app.convert import input_problem, main

VARIAN_FID = "mm_consensus/MM_database/7T_MM_human_STEAM_CMRR.fid"


@pytest.fixture
def a_file_and_a_folder(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "scan.fid"
    folder.mkdir()
    (folder / "fid").write_bytes(b"\0" * 32)
    return folder / "fid", folder


def test_varian_takes_a_folder_only(a_file_and_a_folder):
    file, folder = a_file_and_a_folder
    assert input_problem("varian", folder) is None
    assert "takes a folder" in input_problem("varian", file)


def test_bruker_takes_a_file_or_a_folder(a_file_and_a_folder):
    file, folder = a_file_and_a_folder
    assert input_problem("bruker", folder) is None
    assert input_problem("bruker", file) is None


def test_other_formats_take_files_only(a_file_and_a_folder):
    file, folder = a_file_and_a_folder
    assert input_problem("rda", file) is None
    assert "takes a file, not a folder" in input_problem("rda", folder)
    assert input_problem("rda", folder / "absent.rda") == "input file does not exist"
    assert input_problem("varian", folder.parent / "absent.fid") == "input folder does not exist"


def _mapping(tmp_path: Path, fmt: str, name: str) -> Path:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(f'[[acquisition]]\nparticipant = "01"\nsuffix = "mm"\nformat = "{fmt}"\n'
                       f'files = ["{name}"]\n')
    return mapping


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dmrs-bids-convert: error:"), err
    return lines[0]


def test_unreadable_varian_folder_exits_2_naming_it(a_file_and_a_folder, tmp_path, capsys):
    """A ``.fid`` folder the Varian reader cannot use (a bare 32-byte fid, no procpar): one
    line naming the folder and what is missing, nothing written."""
    _, folder = a_file_and_a_folder
    assert main([str(_mapping(tmp_path, "varian", folder.name)), str(tmp_path / "out"),
                 "--source-dir", str(folder.parent), "-q"]) == 2
    line = _one_error_line(capsys)
    assert f"{folder}: a Varian .fid folder holds 'fid' and 'procpar'; 'procpar' missing" in line
    assert not (tmp_path / "out").exists()


def test_varian_given_the_fid_file_exits_2(shared_data, tmp_path, capsys):
    name = f"{VARIAN_FID}/fid"
    assert main([str(_mapping(tmp_path, "varian", name)), str(tmp_path / "out"),
                 "--source-dir", str(shared_data), "-q"]) == 2
    line = _one_error_line(capsys)
    assert str(shared_data / name) in line and "takes a folder" in line


def _procpar_value(procpar: Path, name: str) -> float:
    """First value of parameter ``name`` in a Varian procpar (the line after its name line)."""
    lines = procpar.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[:1] == [name])
    return float(lines[i + 1].split()[1])


def test_varian_fid_folder_spec2nii_reads_converts_with_procpar_te(shared_data, tmp_path):
    """A Varian folder spec2nii 0.8.15 reads (its sequence is no STEAM/PRESS, so it never looks
    for the voxel angles) becomes an MM acquisition whose grid is procpar's: sfrq (MHz), sw (Hz)
    and np / 2 complex points, and whose EchoTime is procpar's te (0.024 s), not spec2nii's
    p1 + alfa (6.6, microseconds read as seconds): the project's reader converts it."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    name = "mm_consensus/MM_database/9.4T_MM_human_sLASER_Tubingen.fid"
    procpar = shared_data / name / "procpar"
    assert main([str(_mapping(tmp_path, "varian", name)), str(tmp_path / "out"),
                 "--source-dir", str(shared_data), "-q"]) == 0
    acq = read_nifti_mrs(tmp_path / "out/sub-01/mrs/sub-01_acq-mm_svs.nii.gz")
    assert acq.cf_mhz == pytest.approx(_procpar_value(procpar, "sfrq"), rel=1e-9)
    assert 1 / acq.dwell_s == pytest.approx(_procpar_value(procpar, "sw"), rel=1e-6)
    assert acq.n_points == _procpar_value(procpar, "np") / 2
    assert acq.metadata["EchoTime"] == _procpar_value(procpar, "te") == 0.024
