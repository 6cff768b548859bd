"""Mapping links (``reference``, ``macromolecules``) must name a scan of the right kind of the
same participant and session. Before, a metabolite scan of sub-01 linked to sub-02's water was
converted with exit 0 and a ReferenceSignal pointing into sub-02: one person's spectrum scaled
with another's water."""

from __future__ import annotations

import pytest

from bids_app.convert_mapping import ConversionError, link_problem, load_mapping

METAB = {"id": "metab", "participant": "01", "session": "1", "suffix": "svs",
         "reference": "water", "macromolecules": "mm"}


def _scan(suffix: str, **keys) -> dict:
    return {"participant": "01", "session": "1", "suffix": suffix, **keys}


@pytest.mark.parametrize("link, target, expected", [
    ("reference", _scan("mrsref"), None),
    ("macromolecules", _scan("mm"), None),
    ("reference", _scan("mrsref", participant="02"),
     "belongs to participant '02', this acquisition to '01'"),
    ("reference", _scan("mrsref", session="2"), "belongs to session '2'"),
    ("macromolecules", _scan("mm", session=None), "belongs to session"),
    ("reference", _scan("svs"), "names a 'svs' acquisition; reference must name a 'mrsref' one"),
    ("macromolecules", _scan("mrsref"), "macromolecules must name a 'mm' one"),
    ("reference", METAB, "names this acquisition itself")])
def test_link_problems(link, target, expected):
    problem = link_problem(METAB, link, target)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_no_link_no_problem():
    assert link_problem({"participant": "01", "suffix": "svs"}, "reference", None) is None


def _mapping(tmp_path, water_participant: str):
    path = tmp_path / "m.toml"
    path.write_text(
        '[[acquisition]]\nid = "metab"\nparticipant = "01"\nsuffix = "svs"\nformat = "raw"\n'
        'files = ["a.RAW"]\nreference = "water"\n'
        f'[[acquisition]]\nid = "water"\nparticipant = "{water_participant}"\n'
        'suffix = "mrsref"\nformat = "raw"\nfiles = ["a.H2O"]\n')
    return path


def test_mapping_with_a_link_to_another_participant_is_refused(tmp_path):
    with pytest.raises(ConversionError, match=r"acquisition 1 \(metab\): reference 'water' "
                                              r"belongs to participant '02'"):
        load_mapping(_mapping(tmp_path, "02"))
    assert load_mapping(_mapping(tmp_path, "01"))["acquisition"][0]["reference"] == "water"
