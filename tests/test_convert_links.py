"""Mapping links (``reference``, ``macromolecules``) must name a scan of the right kind; a link
to another participant's or session's scan is written with a warning (a group-average MM is
common practice; another person's water is almost always a slip). Before, a link to sub-02's
water was written for sub-01 with exit 0 and no word, and a reference naming an ``svs`` scan or
itself was written as given."""

from __future__ import annotations

import pytest

from bids_app.convert import convert_dataset, main
from bids_app.convert_mapping import (ConversionError, foreign_link_note, link_problem,
                                      load_mapping)

METAB = {"id": "metab", "participant": "01", "session": "1", "suffix": "svs",
         "reference": "water", "macromolecules": "mm"}


def _scan(suffix: str, **keys) -> dict:
    return {"participant": "01", "session": "1", "suffix": suffix, **keys}


@pytest.mark.parametrize("link, target, expected", [
    ("reference", _scan("mrsref"), None),
    ("macromolecules", _scan("mm"), None),
    ("reference", _scan("mrsref", participant="02"), None),
    ("reference", _scan("svs"), "names a 'svs' acquisition; reference must name a 'mrsref' one"),
    ("macromolecules", _scan("mrsref"), "macromolecules must name a 'mm' one"),
    ("reference", METAB, "names this acquisition itself")])
def test_link_problems(link, target, expected):
    _assert_message(link_problem(METAB, link, target), expected)


def _assert_message(message: str | None, expected: str | None) -> None:
    """``message`` is None when nothing is expected, else holds ``expected``."""
    if expected is None:
        assert message is None
    else:
        assert expected in message


@pytest.mark.parametrize("link, target, expected", [
    ("reference", _scan("mrsref"), None),
    ("reference", _scan("mrsref", participant="02"),
     "(participant '01') names a scan of participant '02': it will be used as this scan's "
     "water reference"),
    ("macromolecules", _scan("mm", session="2"), "names a scan of session '2'"),
    ("macromolecules", _scan("mm", session=None), "used as this scan's measured MM"),
    ("reference", _scan("mrsref", participant="sub-01", session="ses-1"), None)])
def test_foreign_link_notes(link, target, expected):
    _assert_message(foreign_link_note(METAB, link, target), expected)


def test_no_link_no_problem():
    assert link_problem({"participant": "01", "suffix": "svs"}, "reference", None) is None
    assert foreign_link_note({"participant": "01", "suffix": "svs"}, "reference", None) is None


def _mapping(tmp_path, water_suffix: str = "mrsref", water_participant: str = "01"):
    path = tmp_path / "m.toml"
    path.write_text(
        '[[acquisition]]\nid = "metab"\nparticipant = "01"\nsuffix = "svs"\nformat = "raw"\n'
        'files = ["datasets_LCModel/dataset1.RAW"]\nreference = "water"\n'
        'sidecar = { EchoTime = 0.030 }\nconjugate = true\n'
        'spec2nii_args = ["-i", "123.2", "-b", "4000", "-n", "1H"]\n'
        f'[[acquisition]]\nid = "water"\nparticipant = "{water_participant}"\n'
        f'suffix = "{water_suffix}"\nformat = "raw"\n'
        'files = ["datasets_LCModel/dataset1.H2O"]\nsidecar = { EchoTime = 0.030 }\n'
        'spec2nii_args = ["-i", "123.2", "-b", "4000", "-n", "1H"]\n')
    return path


def test_mapping_with_a_link_to_the_wrong_kind_is_refused(tmp_path):
    with pytest.raises(ConversionError, match=r"acquisition 1 \(metab\): reference 'water' "
                                              r"names a 'svs' acquisition"):
        load_mapping(_mapping(tmp_path, water_suffix="svs"))


def test_link_to_another_participant_is_written_with_a_warning(shared_data, tmp_path):
    messages = []
    out = tmp_path / "bids"
    convert_dataset(_mapping(tmp_path, water_participant="02"), out,
                    shared_data / "ismrm2016_fitting_challenge", log=messages.append)
    warned = [m for m in messages if "names a scan of participant '02'" in m]
    assert len(warned) == 1 and warned[0].startswith("warning: ")
    sidecar = (out / "sub-01/mrs/sub-01_svs.json").read_text()
    assert '"ReferenceSignal": "bids::sub-02/mrs/sub-02_mrsref.nii.gz"' in sidecar


@pytest.mark.parametrize("quiet", [["-q"], []])
def test_link_warning_reaches_stderr_with_and_without_quiet(shared_data, tmp_path, capsys,
                                                            quiet):
    """The warning about another participant's water is on stderr, prefixed like the errors,
    also with -q (which used to drop it with the progress lines); -q silences only stdout."""
    out = tmp_path / "bids"
    code = main([*quiet, str(_mapping(tmp_path, water_participant="02")), str(out),
                 "--source-dir", str(shared_data / "ismrm2016_fitting_challenge")])
    captured = capsys.readouterr()
    assert code == 0
    warned = [line for line in captured.err.splitlines()
              if "names a scan of participant '02'" in line]
    assert len(warned) == 1 and warned[0].startswith("dmrs-bids-convert: warning: ")
    assert "names a scan of participant" not in captured.out
    assert ("wrote " in captured.out) is not bool(quiet)
