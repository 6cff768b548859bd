"""Spin-system data: every default metabolite present, sourced, with the published proton counts."""

import json

import pytest

from pipeline.simulate.basis_simulation import DEFAULT_METABOLITES
from pipeline.simulate.spin_systems import (SPIN_SYSTEMS_PATH, get_spin_system,
                                            load_spin_systems, parse_spin_systems)

# non-exchangeable protons per molecule (glucose: the anomer-weighted 7 CH protons)
PROTONS = {"NAA": 6, "NAAG": 11, "Cr": 5, "PCr": 5, "GPC": 18, "PCh": 13, "Ins": 6, "sIns": 6,
           "Glu": 5, "Gln": 5, "GABA": 6, "GSH": 10, "Tau": 4, "Lac": 4, "Ala": 4, "Asp": 3,
           "Glc": 7, "PE": 4, "Asc": 4, "H2O": 2, "Cho": 13, "Gly": 2}


def test_every_default_metabolite_and_water_is_defined_with_a_source():
    systems = load_spin_systems()
    for name in DEFAULT_METABOLITES + ["H2O"]:
        assert name in systems
        assert "G2000" in systems[name].source or "G2015" in systems[name].source \
            or name == "H2O"


@pytest.mark.parametrize("name,protons", sorted(PROTONS.items()))
def test_proton_counts(name, protons):
    assert get_spin_system(name).n_protons == pytest.approx(protons)


def test_published_singlet_shifts():
    assert get_spin_system("NAA").fragments[0].groups[0].ppm == 2.008
    assert get_spin_system("Cr").fragments[0].groups[0].ppm == 3.027
    assert get_spin_system("Cho").fragments[0].groups[0].ppm == 3.185
    assert get_spin_system("sIns").fragments[0].groups[0].ppm == 3.340


def test_lookup_is_case_insensitive_and_unknown_names_fail():
    assert get_spin_system("naa").name == "NAA"
    with pytest.raises(ValueError, match="no spin system named 'XYZ'"):
        get_spin_system("XYZ")


def _one(fragment):
    return {"metabolites": {"Bad": {"source": "test", "fragments": [fragment]}}}


@pytest.mark.parametrize("fragment,problem", [
    ({"spins": [{"ppm": 2.0, "protons": 1}], "j_hz": [[0, 1, 7.0]]}, "outside"),
    ({"spins": [{"ppm": 2.0}]}, "needs 'ppm' and 'protons'"),
    ({"spins": [{"ppm": 2.0, "protons": 1}], "weight": 0}, "weight"),
    ({"spins": [{"ppm": 2.0, "protons": 1}],
      "hetero": [{"nucleus": "31P", "spin": 0.3, "j_hz": [[0, 6.0]]}]}, "half-integer"),
])
def test_bad_entries_name_the_file_and_the_problem(fragment, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_spin_systems(_one(fragment), "my_systems.json")
    assert "my_systems.json" in str(info.value) and "'Bad'" in str(info.value)


def test_missing_source_is_rejected(tmp_path):
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"metabolites": {"X": {"fragments": [
        {"spins": [{"ppm": 1.0, "protons": 1}]}]}}}))
    with pytest.raises(ValueError, match="source"):
        load_spin_systems(path)


def test_packaged_file_is_valid_json_with_references():
    data = json.loads(SPIN_SYSTEMS_PATH.read_text())
    assert set(data["references"]) == {"G2000", "G2015"}
