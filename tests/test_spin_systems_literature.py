"""The spin table against the published values (truth = the papers, not this code).

Shifts (ppm, DSS = 0, 37 C, pH 7) and J couplings (Hz) of Govindaraju, Young, Maudsley,
NMR Biomed 2000;13:129-153, Table 2 ("G2000"), and of its corrigendum, Govind, Young,
Maudsley, NMR Biomed 2015;28:923-924 ("G2015": GABA, taurine, PCh, PE, choline, GPC). The
values are the paper's as two independent groups transcribed them (VeSPA's metabolite library,
which states it was re-checked against G2000 and G2015, and spant's molecule parameters, which
cite the same papers); the two agree to the last digit. The NAA and NAAG rows were also read
from the authors' online copy of Table 2 (mrir.med.miami.edu). Group labels are the app's
(``spin_systems.json``); a pair (a, b) is the coupling between two labelled groups. The paper
gives shifts to 4 decimals and couplings to 3, so the tolerances are half a unit in that place.

The last test pins the audit of the ISMRM 2016 challenge basis (``audit`` note of Gln in
``spin_systems.json``): its glutamine puts the alpha proton near 3.763 ppm, while G2000 and three
independently simulated vendor bases (Osprey, PRESS TE 35) have 3.753 ppm.
"""

import dataclasses

import pytest

from pipeline.simulate.spin_systems import get_spin_system

PPM_TOL = 0.00005 + 1e-9
HZ_TOL = 0.0005 + 1e-9

PUBLISHED = {
    # metabolite: ({group label: ppm}, {(label, label): J_hz}), source
    "NAA": ({"acetyl 2CH3": 2.0080, "asp 2CH": 4.3817, "asp 3CH2 a": 2.6727,
             "asp 3CH2 b": 2.4863},
            {("asp 2CH", "asp 3CH2 a"): 3.861, ("asp 2CH", "asp 3CH2 b"): 9.821,
             ("asp 3CH2 a", "asp 3CH2 b"): -15.592}),
    "NAAG": ({"acetyl 2CH3": 2.042, "aspartyl 2CH": 4.607, "aspartyl 3CH2 a": 2.721,
              "aspartyl 3CH2 b": 2.519, "glutamate 2CH": 4.128, "glutamate 3CH2 a": 2.049,
              "glutamate 3CH2 b": 1.881, "glutamate 4CH2 a": 2.180, "glutamate 4CH2 b": 2.190},
             {("aspartyl 2CH", "aspartyl 3CH2 a"): 4.412,
              ("aspartyl 2CH", "aspartyl 3CH2 b"): 9.515,
              ("aspartyl 3CH2 a", "aspartyl 3CH2 b"): -15.910}),
    "Glu": ({"2CH": 3.7433, "3CH2 a": 2.0375, "3CH2 b": 2.1200, "4CH2 a": 2.3378,
             "4CH2 b": 2.3520},
            {("2CH", "3CH2 a"): 7.331, ("2CH", "3CH2 b"): 4.651, ("3CH2 a", "3CH2 b"): -14.849,
             ("3CH2 a", "4CH2 a"): 6.413, ("3CH2 a", "4CH2 b"): 8.406,
             ("3CH2 b", "4CH2 a"): 8.478, ("3CH2 b", "4CH2 b"): 6.875,
             ("4CH2 a", "4CH2 b"): -15.915}),
    "Gln": ({"2CH": 3.7530, "3CH2 a": 2.1290, "3CH2 b": 2.1090, "4CH2 a": 2.4320,
             "4CH2 b": 2.4540},
            {("2CH", "3CH2 a"): 5.847, ("2CH", "3CH2 b"): 6.500, ("3CH2 a", "3CH2 b"): -14.504,
             ("3CH2 a", "4CH2 a"): 9.165, ("3CH2 a", "4CH2 b"): 6.347,
             ("3CH2 b", "4CH2 a"): 6.324, ("3CH2 b", "4CH2 b"): 9.209,
             ("4CH2 a", "4CH2 b"): -15.371}),
    "GSH": ({"glycine 2CH2": 3.769, "cysteine 2CH": 4.5608, "cysteine 3CH2 a": 2.9264,
             "cysteine 3CH2 b": 2.9747, "glutamate 2CH": 3.769, "glutamate 3CH2 a": 2.159,
             "glutamate 3CH2 b": 2.146, "glutamate 4CH2 a": 2.510, "glutamate 4CH2 b": 2.560},
            {("cysteine 2CH", "cysteine 3CH2 a"): 7.09, ("cysteine 2CH", "cysteine 3CH2 b"): 4.71,
             ("cysteine 3CH2 a", "cysteine 3CH2 b"): -14.06,
             ("glutamate 2CH", "glutamate 3CH2 a"): 6.34,
             ("glutamate 2CH", "glutamate 3CH2 b"): 6.36,
             ("glutamate 3CH2 a", "glutamate 3CH2 b"): -15.48,
             ("glutamate 3CH2 a", "glutamate 4CH2 a"): 6.70,
             ("glutamate 3CH2 a", "glutamate 4CH2 b"): 7.60,
             ("glutamate 3CH2 b", "glutamate 4CH2 a"): 7.60,
             ("glutamate 3CH2 b", "glutamate 4CH2 b"): 6.70,
             ("glutamate 4CH2 a", "glutamate 4CH2 b"): -15.92}),
    "GABA": ({"4CH2 a": 3.0128, "4CH2 b": 3.0128, "3CH2 a": 1.8890, "3CH2 b": 1.8890,
              "2CH2 a": 2.2840, "2CH2 b": 2.2840},  # G2015
             {("4CH2 a", "4CH2 b"): -12.021, ("4CH2 a", "3CH2 a"): 5.372,
              ("4CH2 a", "3CH2 b"): 7.127, ("4CH2 b", "3CH2 a"): 10.578,
              ("4CH2 b", "3CH2 b"): 6.982, ("3CH2 a", "3CH2 b"): -13.121,
              ("3CH2 a", "2CH2 a"): 7.755, ("3CH2 a", "2CH2 b"): 7.432,
              ("3CH2 b", "2CH2 a"): 6.173, ("3CH2 b", "2CH2 b"): 7.933,
              ("2CH2 a", "2CH2 b"): -10.744}),
    "Tau": ({"1CH2 a": 3.4206, "1CH2 b": 3.4206, "2CH2 a": 3.2459, "2CH2 b": 3.2459},  # G2015
            {("1CH2 a", "1CH2 b"): -12.438, ("1CH2 a", "2CH2 a"): 6.742,
             ("1CH2 a", "2CH2 b"): 6.464, ("1CH2 b", "2CH2 a"): 6.403,
             ("1CH2 b", "2CH2 b"): 6.792, ("2CH2 a", "2CH2 b"): -12.930}),
    "Asp": ({"2CH": 3.8914, "3CH2 a": 2.8011, "3CH2 b": 2.6533},
            {("2CH", "3CH2 a"): 3.647, ("2CH", "3CH2 b"): 9.107, ("3CH2 a", "3CH2 b"): -17.426}),
    "Ins": ({"1CH": 3.5217, "2CH": 4.0538, "3CH": 3.5217, "4CH": 3.6144, "5CH": 3.2690,
             "6CH": 3.6144},
            {("1CH", "2CH"): 2.889, ("2CH", "3CH"): 3.006, ("3CH", "4CH"): 9.997,
             ("4CH", "5CH"): 9.485, ("5CH", "6CH"): 9.482, ("1CH", "6CH"): 9.998}),
    "Lac": ({"2CH": 4.0974, "3CH3": 1.3142}, {("2CH", "3CH3"): 6.933}),
    "Ala": ({"2CH": 3.7746, "3CH3": 1.4667}, {("2CH", "3CH3"): 7.234}),
    "PE": ({"1CH2 a": 3.9765, "2CH2 a": 3.2160},  # G2015
           {("1CH2 a", "1CH2 b"): -14.56, ("1CH2 a", "2CH2 a"): 3.182,
            ("1CH2 a", "2CH2 b"): 6.716, ("1CH2 b", "2CH2 a"): 7.204,
            ("1CH2 b", "2CH2 b"): 2.980, ("2CH2 a", "2CH2 b"): -14.71}),
    "PCh": ({"N(CH3)3": 3.208, "1CH2 a": 4.2805, "2CH2 a": 3.6410},  # G2015
            {("1CH2 a", "1CH2 b"): -14.89, ("1CH2 a", "2CH2 a"): 2.284,
             ("1CH2 a", "2CH2 b"): 7.231, ("1CH2 b", "2CH2 a"): 7.326,
             ("1CH2 b", "2CH2 b"): 2.235, ("2CH2 a", "2CH2 b"): -14.19}),
    "GPC": ({"N(CH3)3": 3.212, "glycerol 1CH2 a": 3.605, "glycerol 1CH2 b": 3.672,
             "glycerol 2CH": 3.903, "glycerol 3CH2 a": 3.871, "glycerol 3CH2 b": 3.946,
             "choline 1CH2 a": 4.312, "choline 2CH2 a": 3.659},  # G2015
            {("glycerol 1CH2 a", "glycerol 1CH2 b"): -14.78,
             ("glycerol 1CH2 a", "glycerol 2CH"): 5.77, ("glycerol 1CH2 b", "glycerol 2CH"): 4.53,
             ("choline 1CH2 a", "choline 1CH2 b"): -9.32,
             ("choline 1CH2 a", "choline 2CH2 a"): 3.10,
             ("choline 1CH2 a", "choline 2CH2 b"): 5.90}),
    "Cr": ({"N(CH3)": 3.027, "2CH2": 3.913}, {}),
    "PCr": ({"N(CH3)": 3.029, "2CH2": 3.930}, {}),
}
HETERO = {  # metabolite: [(group label, nucleus, J_hz)] (G2015)
    "PCh": [("1CH2 a", "14N", 2.68), ("1CH2 b", "14N", 2.772), ("1CH2 a", "31P", 6.298),
            ("1CH2 b", "31P", 6.249)],
    "PE": [("1CH2 a", "31P", 7.288), ("1CH2 b", "31P", 7.088), ("1CH2 a", "14N", 0.464),
           ("1CH2 b", "14N", 0.588)],
    "GPC": [("glycerol 3CH2 a", "31P", 6.03), ("choline 1CH2 a", "31P", 6.03),
            ("choline 1CH2 a", "14N", 2.67)],
}


def _groups(system):
    """{label: (fragment index, group index, SpinGroup)}; labels are unique per metabolite."""
    out = {}
    for fi, fragment in enumerate(system.fragments):
        for gi, group in enumerate(fragment.groups):
            assert group.label not in out, f"{system.name}: label {group.label!r} twice"
            out[group.label] = (fi, gi, group)
    return out


def _coupling(system, label_a, label_b):
    groups = _groups(system)
    (fa, ga, _), (fb, gb, _) = groups[label_a], groups[label_b]
    assert fa == fb, f"{system.name}: {label_a!r} and {label_b!r} are in different fragments"
    for i, j, value in system.fragments[fa].j_hz:
        if {i, j} == {ga, gb}:
            return value
    return 0.0


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shifts_and_couplings_are_the_published_values(name):
    system = get_spin_system(name)
    groups = _groups(system)
    shifts, couplings = PUBLISHED[name]
    wrong = {label: groups[label][2].ppm for label, ppm in shifts.items()
             if abs(groups[label][2].ppm - ppm) > PPM_TOL}
    assert not wrong, f"{name}: shifts differ from the paper: {wrong}"
    wrong = {pair: _coupling(system, *pair) for pair, value in couplings.items()
             if abs(_coupling(system, *pair) - value) > HZ_TOL}
    assert not wrong, f"{name}: couplings differ from the paper: {wrong}"


@pytest.mark.parametrize("name", sorted(HETERO))
def test_heteronuclear_couplings_are_the_published_values(name):
    system = get_spin_system(name)
    groups = _groups(system)
    for label, nucleus, value in HETERO[name]:
        fi, gi, _ = groups[label]
        found = [j for h in system.fragments[fi].hetero if h.nucleus == nucleus
                 for i, j in h.j_hz if i == gi]
        assert found and abs(found[0] - value) <= HZ_TOL, (name, label, nucleus, found)


def test_every_coupling_of_the_coupled_systems_is_published():
    """No coupling in the table that the paper does not list (or that this test omits)."""
    for name in ("NAA", "Glu", "Gln", "GSH", "GABA", "Tau", "Asp", "Ins", "Lac", "Ala"):
        system = get_spin_system(name)
        labels = {(fi, gi): g.label for fi, f in enumerate(system.fragments)
                  for gi, g in enumerate(f.groups)}
        listed = {frozenset(pair) for pair in PUBLISHED[name][1]}
        extra = [(labels[fi, i], labels[fi, j]) for fi, f in enumerate(system.fragments)
                 for i, j, _ in f.j_hz if frozenset((labels[fi, i], labels[fi, j])) not in listed]
        assert not extra, f"{name}: unpublished couplings {extra}"


def _gln_with_alpha_at(ppm):
    gln = get_spin_system("Gln")
    fragment = gln.fragments[0]
    groups = (dataclasses.replace(fragment.groups[0], ppm=ppm),) + fragment.groups[1:]
    return dataclasses.replace(gln, fragments=(dataclasses.replace(fragment, groups=groups),))


def _simulated(system, reference, events, localised, n):
    from pipeline.basis import Basis
    from pipeline.simulate.basis_simulation import simulate_metabolite_fid

    fid = simulate_metabolite_fid(system, events, reference.cf_mhz, reference.dwell_s, n,
                                  reference.ref_ppm, localised=localised)
    return Basis([system.name], fid[None], reference.dwell_s, reference.cf_mhz, reference.ref_ppm)


GLN_BASES = {  # label: (path, echo time s, refocusing bandwidth Hz (0 = ideal), TE1 s)
    "ismrm2016": ("ismrm2016_fitting_challenge/basisset_LCModel/press3T_30ms.BASIS",
                  0.030, 0.0, 0.015),
    **{vendor: (f"osprey_3t/fit/basissets/3T/{vendor}/unedited/press/35/"
                f"3T_PRESS_{label}_35ms_noMM.BASIS", 0.035, 1100.0, 0.014)
       for vendor, label in (("ge", "GE"), ("philips", "Philips"), ("siemens", "Siemens"))},
}


def test_glutamine_alpha_shift_follows_the_paper_in_independent_bases(shared_data):
    """Gln 2CH at G2000's 3.753 ppm against 3.763 ppm (the ISMRM 2016 challenge basis' value,
    found by fitting it): the three Osprey vendor bases (other groups' simulations, their own
    spin tables) must prefer 3.753 clearly, and the challenge basis 3.763. Measured (Osprey:
    the app's default PRESS model; challenge: ideal pulses, TE1 = TE2; shift and width matched
    on Cr): Osprey 0.994-0.998 against 0.76-0.92; challenge 0.871 against 0.950."""
    from pipeline.basis import Basis
    from pipeline.io.basis_formats import read_basis
    from pipeline.simulate.basis_simulation import basis_correlations, match_reference
    from pipeline.simulate.sequences import sequence_events

    n = 2048
    for label, (path, te_s, bandwidth_hz, te1_s) in GLN_BASES.items():
        reference = read_basis(shared_data / path)
        reference = Basis(reference.names, reference.fids[:, :n], reference.dwell_s,
                          reference.cf_mhz, reference.ref_ppm)
        events, _ = sequence_events("press", te_s, None, te1_s=te1_s, te2_s=te_s - te1_s)
        localised = ({"te1_s": te1_s, "te2_s": te_s - te1_s, "bandwidth_hz": bandwidth_hz,
                      "centre_ppm": 3.0} if bandwidth_hz else None)
        # frequency reference and linewidth from the Cr singlets (pulse-model independent)
        match = match_reference(_simulated(get_spin_system("Cr"), reference, events, None, n),
                                reference, "Cr")
        paper, shifted = (basis_correlations(_simulated(_gln_with_alpha_at(ppm), reference,
                                                        events, localised, n),
                                             reference, {"Gln": "Gln"}, match)["Gln"]["correlation"]
                          for ppm in (3.753, 3.763))
        if label == "ismrm2016":
            assert shifted > paper + 0.03, (label, paper, shifted)
        else:
            assert paper > 0.99 and paper > shifted + 0.05, (label, paper, shifted)
