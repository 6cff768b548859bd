"""dmrs-bids-convert checks the Philips .SDAT/.SPAR pair before spec2nii reads it: given the
other way round spec2nii failed with "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xb4"
(no hint of the cause), and a .SDAT listed with another scan's .SPAR converted with exit 0,
taking that scan's parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bids_app.convert import main
from bids_app.convert_vendor import file_pair_problem


@pytest.mark.parametrize("files, expected", [
    (["a.SDAT", "a.SPAR"], None),
    (["x/a.sdat", "x/a.spar"], None),
    (["a.SPAR", "a.SDAT"], "list the .SDAT first, then its .SPAR"),
    (["a.SDAT", "a.txt"], "needs a .SDAT file and its .SPAR; the mapping lists a.SDAT, a.txt"),
    (["a.SDAT", "a.SDAT"], "needs a .SDAT file and its .SPAR"),
    (["WS.SDAT", "W.SPAR"], "WS.SDAT, W.SPAR are not one scan's pair")])
def test_philips_pair_problems(files, expected):
    problem = file_pair_problem("philips", [Path(f) for f in files])
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_formats_without_a_pair_are_not_checked():
    assert file_pair_problem("twix", [Path("b.SPAR"), Path("a.SDAT")]) is None
    assert file_pair_problem("rda", [Path("a.rda")]) is None


def _convert(shared_data: Path, tmp_path: Path, sdat: str, spar: str, first: str, second: str):
    """Copies of spant's pair named ``sdat``/``spar``, converted with ``first``, ``second``."""
    src = shared_data / "spant_sdat/inst/extdata"
    (tmp_path / "src").mkdir()
    shutil.copy(src / "philips_spar_sdat_WS.SDAT", tmp_path / "src" / sdat)
    shutil.copy(src / "philips_spar_sdat_WS.SPAR", tmp_path / "src" / spar)
    mapping = tmp_path / "m.toml"
    mapping.write_text(f'[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       f'format = "philips"\nfiles = ["{first}", "{second}"]\n')
    return main([str(mapping), str(tmp_path / "bids"), "--source-dir", str(tmp_path / "src"),
                 "-q"])


def test_reversed_pair_is_refused_naming_the_order(shared_data, tmp_path, capsys):
    assert _convert(shared_data, tmp_path, "WS.SDAT", "WS.SPAR", "WS.SPAR", "WS.SDAT") == 2
    err = capsys.readouterr().err
    assert "list the .SDAT first, then its .SPAR" in err and "UnicodeDecodeError" not in err
    assert not (tmp_path / "bids").exists()


def test_pair_of_two_scans_is_refused(shared_data, tmp_path, capsys):
    assert _convert(shared_data, tmp_path, "WS.SDAT", "W.SPAR", "WS.SDAT", "W.SPAR") == 2
    assert "not one scan's pair" in capsys.readouterr().err
    assert not (tmp_path / "bids").exists()


def test_pair_in_order_converts(shared_data, tmp_path):
    assert _convert(shared_data, tmp_path, "WS.SDAT", "WS.SPAR", "WS.SDAT", "WS.SPAR") == 0
    assert (tmp_path / "bids" / "sub-01" / "mrs" / "sub-01_svs.nii.gz").is_file()
