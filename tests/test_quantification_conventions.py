"""Water-scaled quantification independent of a basis file's conventions (issue 13, item 6)
and water relaxation defaults that follow the field strength."""

import numpy as np
import pytest

from pipeline.fitting import FitOptions, fit_spectrum
from pipeline.fitting.quantification import (basis_proton_scale, effective_water_mm,
                                             tallest_singlet_amplitude,
                                             water_relaxation_for_field,
                                             water_scaled_concentrations)

from test_fitting_support import singlet_fid

OSPREY_PHILIPS = ("osprey_3t/fit/basissets/3T/philips/unedited/press/35/"
                  "3T_PRESS_Philips_35ms_noMM.BASIS")


def test_singlet_amplitude_ignores_first_point_extra_lines_and_tails():
    # creatine CH3 (3 protons) + CH2 (2) + an NH line (2, as some basis sets carry)
    cr = singlet_fid(3.027, 3) + singlet_fid(3.913, 2) + singlet_fid(6.65, 2)
    assert tallest_singlet_amplitude(cr) == pytest.approx(3.0, rel=2e-3)
    halved = cr.copy()
    halved[0] *= 0.5  # FID-A/Osprey convention
    assert tallest_singlet_amplitude(halved) == pytest.approx(3.0, rel=2e-3)
    fids = np.array([singlet_fid(2.008, 3), halved])
    assert basis_proton_scale(["NAA", "Cr"], 0.004 * fids) == pytest.approx(0.004, rel=2e-3)


def simulated_press_35ms(n_points: int):
    from pipeline.simulate.basis_simulation import simulate_basis

    return simulate_basis("press", 127.731, 2.5e-4, n_points, echo_time_s=0.035)


def test_osprey_and_own_basis_give_the_same_concentrations(shared_data):
    """One spectrum, two bases: the app's simulated PRESS 35 ms basis (per-mM by construction)
    and Osprey's Philips PRESS 35 ms basis (halved first point, creatine NH line, arbitrary
    scale). Truth: the spectrum is made from the simulated basis with known mM and the water
    signal of a known concentration, so both must return those mM."""
    from pipeline.io.basis_formats import read_basis

    n = 2048
    own = simulated_press_35ms(n)
    osprey = read_basis(shared_data / OSPREY_PHILIPS)
    truth = {"NAA": 11.0, "NAAG": 1.2, "Cr": 5.0, "PCr": 4.0, "GPC": 1.0, "PCh": 0.4,
             "Ins": 6.0, "Glu": 9.0, "Gln": 3.0, "GSH": 2.0, "Tau": 1.5}
    t = np.arange(n) * own.dwell_s
    fid = sum(c * own.fid(name) for name, c in truth.items())
    fid = fid * np.exp(-np.pi * 3.0 * t - (np.pi * 4.0 * t) ** 2 / (4 * np.log(2)))
    rng = np.random.default_rng(3)
    fid = fid + 0.02 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    water_mm = 30000.0
    water_signal = 2 * water_mm  # per-proton scale 1 on the simulated basis
    results = {}
    for label, basis in (("own", own), ("osprey", osprey)):
        names = [m for m in basis.names if m in truth or m in ("PCh", "Scyllo", "Asp")]
        basis = basis.subset(names)
        fit = fit_spectrum(fid, basis, own.dwell_s, own.cf_mhz,
                           FitOptions(ppm_range=(1.8, 4.0)))
        scale = basis_proton_scale(basis.names, basis.fids)
        values = {n: a * scale for n, a in zip(fit.names, fit.amplitudes)}
        values.update({n: v * scale for n, (v, _) in fit.sums.items()})
        conc = water_scaled_concentrations(values, water_signal,
                                           effective_water_concentration_mm=water_mm)
        results[label] = {k: v[0] for k, v in conc.items()}
    for label in results:
        assert results[label]["tNAA"] == pytest.approx(12.2, rel=0.05), label
        assert results[label]["tCr"] == pytest.approx(9.0, rel=0.05), label
    assert results["osprey"]["tNAA"] == pytest.approx(results["own"]["tNAA"], rel=0.05)


def test_water_relaxation_defaults_follow_the_field():
    t1_7, t2_7, field = water_relaxation_for_field(6.98)
    # published 7 T tissue water values (s): T1 GM/WM Rooney et al. MRM 2007, CSF T1 Rooney
    # 2007; T2 GM/WM 7 T literature (Bartha 2002, Stanisz 2005), CSF T2 Spijkerman 2018
    assert field == 7.0
    assert t1_7 == pytest.approx({"gm": 2.05, "wm": 1.21, "csf": 4.43})
    assert t2_7 == pytest.approx({"gm": 0.050, "wm": 0.055, "csf": 1.05})
    assert water_relaxation_for_field(2.89)[2] == 3.0
    assert water_relaxation_for_field(None)[2] == 3.0
    with pytest.raises(ValueError, match="field strength"):
        water_relaxation_for_field(0.0)
    # 7 T, TE 45 ms, TR 5 s, 60/40 GM/WM: hand computation with the 7 T table
    te, tr = 0.045, 5.0
    expected = 55510.0 * sum(
        f * c * np.exp(-te / t2) * (1 - np.exp(-tr / t1))
        for f, c, t1, t2 in ((0.6, 0.78, 2.05, 0.050), (0.4, 0.65, 1.21, 0.055)))
    value = effective_water_mm(te, {"gm": 0.6, "wm": 0.4}, tr, field_t=6.98)
    assert value == pytest.approx(expected, rel=1e-12)
    # 7 T water T2 (about 50 ms) is much shorter than at 3 T: less visible water, so using the
    # 3 T values at 7 T would overstate every concentration by this factor (1.53 here)
    at_3t = effective_water_mm(te, {"gm": 0.6, "wm": 0.4}, tr)
    assert 1.4 < at_3t / value < 1.7
    # explicit values still win over the field's defaults
    fixed = {"gm": 0.1, "wm": 0.1, "csf": 1.0}
    assert effective_water_mm(te, {"gm": 1.0}, None, water_t2_s=fixed, field_t=7.0) == \
        pytest.approx(55510.0 * 0.78 * np.exp(-te / 0.1))
