"""Quantification: ratios to tCr, water amplitude, water-scaled concentrations (analytic and the
ISMRM 2016 challenge's 10 mM creatine test)."""

import numpy as np
import pytest

from pipeline.fitting import (FitOptions, effective_water_mm, fit_spectrum, ratios_to_tcr,
                              water_amplitude, water_scaled_concentrations)
from pipeline.spectra import ppm_to_hz, time_axis_s

from test_fitting_support import (CF_MHZ, DWELL_S, ISMRM_CF_MHZ, ISMRM_DWELL_S, N_POINTS,
                                  broaden, singlet_basis, singlet_fid, synthetic_fid)


def test_ratios_to_tcr_include_sums():
    basis = singlet_basis(["NAA", "Cr", "PCr", "Cho"])
    fid = synthetic_fid(basis, {"NAA": 12, "Cr": 4, "PCr": 4, "Cho": 2})
    ratios = ratios_to_tcr(fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                                        FitOptions(ppm_range=(1.5, 4.0))))
    assert ratios["tNAA"] == pytest.approx(1.5, rel=1e-4)
    assert ratios["Cho"] == pytest.approx(0.25, rel=1e-4)
    assert "tCr" not in ratios


def test_water_amplitude_recovers_t0_signal_of_a_voigt_line():
    t = time_axis_s(N_POINTS, DWELL_S)
    water = 5000.0 * np.exp(0.7j + 2j * np.pi * ppm_to_hz(4.68, CF_MHZ) * t)
    water = broaden(water, DWELL_S, 4.0, 3.0)
    rng = np.random.default_rng(0)
    water = water + 2.0 * (rng.standard_normal(N_POINTS) + 1j * rng.standard_normal(N_POINTS))
    water[0] *= 0.5  # a halved first point (common convention) must not bias the estimate
    assert water_amplitude(water, DWELL_S) == pytest.approx(5000.0, rel=2e-3)


def test_effective_water_concentration_reproduces_challenge_readme_value():
    # README of the ISMRM 2016 challenge: 60/40 GM/WM, contents 0.78/0.65, T2 110/80 ms, TE 30 ms
    value = effective_water_mm(0.030, {"gm": 0.6, "wm": 0.4})
    assert value == pytest.approx(29697, abs=1.0)


def test_water_scaling_formula_on_known_numbers():
    # a 1 mM basis at amplitude a, water of W mM (relaxation-attenuated) with 2 protons:
    # water signal S_w = 2 * W (basis units) -> concentration = a / exp(-TE/T2_metab)
    te, t2 = 0.030, 0.160
    out = water_scaled_concentrations({"Cr": 8.0 * np.exp(-te / t2)}, 2 * 30000.0,
                                      echo_time_s=te, metabolite_t2_s=t2,
                                      effective_water_concentration_mm=30000.0)
    assert out["Cr"][0] == pytest.approx(8.0)
    csf = water_scaled_concentrations({"Cr": 1.0}, 2 * 30000.0, csf_corrected=True,
                                      tissue_fractions={"gm": 0.5, "wm": 0.3, "csf": 0.2},
                                      effective_water_concentration_mm=30000.0)
    assert csf["Cr"][0] == pytest.approx(1.0 / 0.8)
    with pytest.raises(ValueError, match="water signal"):
        water_scaled_concentrations({"Cr": 1.0}, 0.0)


CR_TE_S, CR_T2_S = 0.030, 0.160
"""Challenge README: TE 30 ms, metabolite T2 160 ms (correction factor 1.206)."""
README_WATER_MM = 29697.0
"""The README's relaxation-corrected water concentration (reproduced by ``effective_water_mm``)."""


@pytest.fixture(scope="module")
def cr_test_files(shared_data):
    """Metabolite and water FIDs of the Cr water-scaling test in its three published forms.

    LCModel .RAW/.H2O and the plain text file store the FID in this project's convention; the
    jMRUI export stores its complex conjugate (its imaginary parts have the opposite sign).
    """
    from pipeline.io.basis_formats import read_jmrui_text, read_lcmodel_raw

    folder = shared_data / "ismrm2016_fitting_challenge"
    lcm = folder / "Cr_water_scaling_LCModel"
    metab_raw, raw_header = read_lcmodel_raw(lcm / "Cr_10mM_test_water_scaling.RAW")
    water_raw, water_header = read_lcmodel_raw(lcm / "Cr_10mM_test_water_scaling.H2O")
    text = np.loadtxt(folder / "Cr_water_scaling_text" / "Cr_10mM_test_water_scaling.txt")
    jmrui = folder / "Cr_water_scaling_JMRUI"
    (metab_jm,), _ = read_jmrui_text(jmrui / "Cr_10mM_test_water_scaling_WS.txt")
    (water_jm,), _ = read_jmrui_text(jmrui / "Cr_10mM_test_water_scaling_nWS.txt")
    return {"LCModel": (metab_raw, water_raw), "text": (text[:, 0] + 1j * text[:, 1],
                                                        text[:, 2] + 1j * text[:, 3]),
            "jMRUI": (np.conj(metab_jm), np.conj(water_jm)),
            "headers": (raw_header, water_header)}


@pytest.fixture(scope="module")
def cr_fit(shared_data, cr_test_files):
    from pipeline.io.basis_formats import read_basis

    basis = read_basis(shared_data / "ismrm2016_fitting_challenge" / "basisset_text_noTMS",
                       dwell_s=ISMRM_DWELL_S, cf_mhz=ISMRM_CF_MHZ)
    metab, _ = cr_test_files["LCModel"]
    return basis, fit_spectrum(metab, basis, ISMRM_DWELL_S, ISMRM_CF_MHZ, FitOptions())


def test_cr_water_scaling_files_agree_and_have_identical_scaling(cr_test_files):
    # same acquisition scaling for metabolite and water (LCModel TRAMP=1, VOLUME=1 in both),
    # and the three published forms hold the same numbers
    for header in cr_test_files["headers"]:
        assert header.get("TRAMP") == 1 and header.get("VOLUME") == 1
    metab, water = cr_test_files["LCModel"]
    for form in ("text", "jMRUI"):
        other_metab, other_water = cr_test_files[form]
        assert np.allclose(other_metab, metab, rtol=1e-5, atol=1e-4), form
        assert np.allclose(other_water, water, rtol=1e-5, atol=1e-3), form


def test_cr_water_test_water_is_an_undistorted_lorentzian_at_t0(cr_test_files):
    # the water reference is a 6 Hz Lorentzian on resonance, starting at t = 0 with no halved
    # first point, phase or group delay: the fitted t = 0 amplitude is simply FID[0]
    _, water = cr_test_files["LCModel"]
    amplitude = water_amplitude(water, ISMRM_DWELL_S)
    assert amplitude == pytest.approx(abs(water[0]), rel=1e-4)
    t = time_axis_s(water.size, ISMRM_DWELL_S)
    lorentzian = amplitude * np.exp(-np.pi * 6.0 * t)
    assert np.max(np.abs(water - lorentzian)) < 1e-3 * amplitude


def test_cr_water_test_metabolite_is_10_mM_on_the_per_mM_basis(cr_fit):
    basis, fit = cr_fit
    # the basis is per mM with FID[0] = number of protons (Cr: CH3 + CH2 = 5)
    assert abs(basis.fids[basis.names.index("Cr"), 0]) == pytest.approx(5.0, rel=1e-6)
    # the simulation put 10 mM * exp(-TE/T2) of creatine on that scale, and nothing else
    assert fit.amplitude("Cr") == pytest.approx(10 * np.exp(-CR_TE_S / CR_T2_S), rel=2e-3)
    others = [a for n, a in zip(fit.names, fit.amplitudes) if n not in ("Cr", "Mac")]
    assert max(others) < 0.01 * fit.amplitude("Cr")


def test_cr_water_scaling_follows_the_challenge_formula(cr_test_files, cr_fit):
    """The challenge's Cr water-scaling test, with the README constants (29697 mM, 1.206).

    Known open point (issue 4): the issue expects 10 mM +- 5 %; per-proton water scaling gives
    10.83 mM. The metabolite side is exactly 10 mM (previous test) and the water reference is an
    undistorted Lorentzian, but its t = 0 amplitude (54865) is 7.6 % below 2 x 29697 on the same
    scale, and no documented factor accounts for it. FSL-MRS reports 10.78 mM on this file.
    This test checks the quantification arithmetic against the closed form on the file's own
    numbers and keeps the result within 10 % of the nominal 10 mM; it does not claim the 5 %.
    """
    _, fit = cr_fit
    _, water = cr_test_files["LCModel"]
    conc = water_scaled_concentrations(fit, water_amplitude(water, ISMRM_DWELL_S),
                                       echo_time_s=CR_TE_S, metabolite_t2_s=CR_T2_S,
                                       effective_water_concentration_mm=README_WATER_MM)
    cr_mm, cr_crlb = conc["Cr"]
    assert 0 < cr_crlb < 0.05 * cr_mm
    # [Cr] = a_Cr / R_Cr * W / (S_W / 2) with a_Cr = 10 mM * R_Cr on the per-mM basis
    assert cr_mm == pytest.approx(10.0 * README_WATER_MM / (abs(water[0]) / 2), rel=3e-3)
    assert cr_mm == pytest.approx(10.0, rel=0.10)


def test_basis_proton_scale_comes_from_creatine_and_any_file_scale_cancels():
    from pipeline.fitting.quantification import basis_proton_scale

    # per-mM creatine: CH3 (3 protons, 3.03 ppm) + CH2 (2 protons, 3.92 ppm)
    creatine = singlet_fid(3.027, 3) + singlet_fid(3.913, 2)
    fids = np.array([singlet_fid(2.008, 3), creatine, singlet_fid(3.185, 9)])
    names = ["NAA", "Cr", "Cho"]
    # measured on the CH3 line alone (a fitted line: 1e-3, not exact)
    assert basis_proton_scale(names, fids) == pytest.approx(1.0, rel=1e-3)
    assert basis_proton_scale(names, 0.0042 * fids) == pytest.approx(0.0042, rel=1e-3)
    assert basis_proton_scale(["PCr"], fids[1:2]) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="creatine"):
        basis_proton_scale(["NAA", "Cho"], fids[[0, 2]])


def amplitude_rows(per_condition: list[dict]) -> list[dict]:
    """Minimal ``_amplitudes.tsv`` rows: {metabolite: (amplitude, crlb)} per condition."""
    return [{"condition": c, "metabolite": name, "amplitude": a, "crlb": s}
            for c, values in enumerate(per_condition) for name, (a, s) in values.items()]


def test_ratio_and_concentration_columns_on_known_numbers():
    from pipeline.fitting.quantification import concentration_columns, ratio_to_tcr_column

    rows = amplitude_rows([{"NAA": (12.0, 0.3), "tCr": (8.0, 0.2)},
                           {"NAA": (6.0, 0.3), "tCr": (0.0, 0.2)}])
    ratios = [r["ratio_tcr"] for r in ratio_to_tcr_column(rows)]
    assert ratios[:2] == [pytest.approx(1.5), pytest.approx(1.0)]
    assert np.isnan(ratios[2]) and np.isnan(ratios[3])  # no tCr at condition 1
    # a basis stored at 1/4 of the per-mM scale: amplitudes are 4x too large, the scale undoes
    # it; water 2 x 30000 (per proton 30000 mM), metabolite T2 attenuation undone
    te, t2 = 0.030, 0.160
    attenuation = np.exp(-te / t2)
    rows = amplitude_rows([{"Cr": (4 * 8.0 * attenuation, 4 * 0.4 * attenuation)}])
    out = concentration_columns(rows, 2 * 30000.0, 0.25, echo_time_s=te, metabolite_t2_s=t2,
                                effective_water_concentration_mm=30000.0)
    assert out[0]["concentration_mm"] == pytest.approx(8.0)
    assert out[0]["concentration_crlb_mm"] == pytest.approx(0.4)
