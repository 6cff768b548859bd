"""Unit tests of the linear-combination model, solver, uncertainties and outputs on analytic
singlet bases (known truth, milliseconds each)."""

import numpy as np
import pytest

from pipeline.fitting import (FitOptions, SpectralFit, amplitudes_table, display_spectra,
                              fit_conditions, fit_spectrum)
from pipeline.fitting import model as M
from pipeline.fitting.solver import nonneg_solve
from pipeline.fitting.uncertainty import metabolite_sums
from pipeline.spectra import fid_to_spectrum, ppm_axis

from test_fitting_support import CF_MHZ, DWELL_S, N_POINTS, singlet_basis, synthetic_fid

TRUTH = {"NAA": 10.0, "Cr": 6.0, "Cho": 1.5, "Ins": 4.0, "Glx": 8.0, "Lac": 0.7}


def test_noise_free_fit_recovers_amplitudes_lineshape_shift_and_phase():
    basis = singlet_basis(list(TRUTH))
    fid = synthetic_fid(basis, TRUTH, lorentz_hz=3.0, gauss_hz=4.0, shift_hz=2.5, phase_rad=0.4)
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(0.5, 4.2)))
    assert fit.success
    for name, amp in TRUTH.items():
        assert fit.amplitude(name) == pytest.approx(amp, rel=1e-5)
    assert fit.lorentz_fwhm_hz["metabolites"] == pytest.approx(3.0, abs=1e-3)
    assert fit.gauss_fwhm_hz["metabolites"] == pytest.approx(4.0, abs=1e-3)
    assert fit.shift_hz["metabolites"] == pytest.approx(2.5, abs=1e-4)
    assert fit.phase0_deg == pytest.approx(np.rad2deg(0.4), abs=1e-3)
    assert np.max(np.abs(fit.residual_fid)) < 1e-6 * np.max(np.abs(fid))


def test_first_order_phase_is_recovered_in_degrees_per_ppm():
    basis = singlet_basis(list(TRUTH))
    clean = synthetic_fid(basis, TRUTH, lorentz_hz=3.0, gauss_hz=2.0)
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    slope_deg_per_ppm = 8.0
    spectrum = fid_to_spectrum(clean) * np.exp(1j * np.deg2rad(slope_deg_per_ppm * (ppm - 2.0)))
    fid = np.fft.ifft(np.fft.ifftshift(spectrum))
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(0.5, 4.2)))
    assert fit.phase1_deg_per_ppm == pytest.approx(slope_deg_per_ppm, abs=0.05)
    assert fit.amplitude("NAA") == pytest.approx(TRUTH["NAA"], rel=1e-3)


def test_analytic_derivatives_match_finite_differences():
    basis = singlet_basis(list(TRUTH))
    options = FitOptions(ppm_range=(0.5, 4.2), lineshape_groups={"singlets": ["NAA", "Cr"]})
    problem = M.build_problem(basis, DWELL_S, N_POINTS, CF_MHZ, options)
    rng = np.random.default_rng(3)
    theta = np.concatenate([rng.uniform(5, 20, 2), rng.uniform(50, 500, 2),
                            rng.uniform(-3, 3, 2), [0.3, 2e-4],
                            rng.uniform(-1, 1, problem.n_theta - problem.n_base_theta)])
    coef = rng.uniform(0.5, 2.0, problem.n_metab)
    cols, fids = M.metabolite_columns(problem, theta)
    analytic = M.theta_derivatives(problem, theta, fids, coef, coef @ cols)
    for j in range(theta.size):
        step = 1e-6 * max(abs(theta[j]), 1e-3)
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        numeric = (coef @ M.metabolite_columns(problem, up)[0]
                   - coef @ M.metabolite_columns(problem, down)[0]) / (2 * step)
        assert np.allclose(analytic[j], numeric, rtol=1e-4, atol=1e-6 * np.abs(numeric).max())


def test_polynomial_baseline_is_absorbed_without_biasing_amplitudes():
    basis = singlet_basis(list(TRUTH))
    clean = synthetic_fid(basis, TRUTH, lorentz_hz=3.0, gauss_hz=3.0)
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    window = (ppm >= 0.5) & (ppm <= 4.2)
    spectrum = fid_to_spectrum(clean)
    height = np.abs(spectrum).max()
    x = (ppm - 2.35) / 1.85
    spectrum[window] += height * (0.05 + 0.03j + 0.02 * x - 0.04j * x ** 2)[window]
    fid = np.fft.ifft(np.fft.ifftshift(spectrum))
    with_baseline = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                                 FitOptions(ppm_range=(0.5, 4.2), baseline_order=2))
    without = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                           FitOptions(ppm_range=(0.5, 4.2), baseline="none"))
    for name, amp in TRUTH.items():
        assert with_baseline.amplitude(name) == pytest.approx(amp, rel=1e-4)
    assert abs(without.amplitude("Lac") - TRUTH["Lac"]) > 0.05
    baseline = fid_to_spectrum(with_baseline.baseline_fid)
    assert np.allclose(baseline[window], (spectrum - fid_to_spectrum(clean))[window],
                       atol=1e-4 * height)


def test_spline_baseline_stiffness_smooths_more_when_larger():
    basis = singlet_basis(list(TRUTH))
    rng = np.random.default_rng(5)
    fid = synthetic_fid(basis, TRUTH, noise_sd=0.05, rng=rng)
    roughness = []
    for stiffness in (1e-3, 1e3):
        fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                           FitOptions(ppm_range=(0.5, 4.2), baseline="spline",
                                      baseline_stiffness=stiffness))
        spec = fid_to_spectrum(fit.baseline_fid)[fit.extra["problem"].window]
        roughness.append(np.sum(np.abs(np.diff(spec, 2)) ** 2))
    assert roughness[1] < 0.1 * roughness[0]


def test_amplitudes_are_non_negative_and_absent_metabolites_go_to_zero():
    basis = singlet_basis(list(TRUTH))
    truth = dict(TRUTH, Lac=0.0)
    rng = np.random.default_rng(11)
    fits = [fit_spectrum(synthetic_fid(basis, truth, noise_sd=0.3, rng=rng), basis, DWELL_S,
                         CF_MHZ, FitOptions(ppm_range=(0.5, 4.2))) for _ in range(5)]
    lac = np.array([f.amplitude("Lac") for f in fits])
    assert np.all(np.array([f.amplitudes for f in fits]) >= 0)
    assert np.any(lac == 0.0)
    assert np.all(lac < 4 * np.array([f.uncertainty("Lac") for f in fits]) + 1e-12)


def test_sum_uncertainty_uses_covariance():
    names = ["Cr", "PCr", "NAA"]
    cov = np.array([[4.0, -3.0, 0.0], [-3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    sums = metabolite_sums(names, np.array([5.0, 4.0, 10.0]), cov)
    assert sums["tCr"] == (9.0, pytest.approx(np.sqrt(4 + 4 - 6)))
    assert sums["tNAA"] == (10.0, 1.0)
    assert "Glx" not in sums


def test_anticorrelated_pair_has_tighter_sum_than_members():
    basis = singlet_basis(["NAA", "Cr", "PCr", "Cho"])
    rng = np.random.default_rng(2)
    fid = synthetic_fid(basis, {"NAA": 10, "Cr": 4, "PCr": 4, "Cho": 2}, noise_sd=0.2, rng=rng)
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(1.5, 4.0)))
    i, j = fit.names.index("Cr"), fit.names.index("PCr")
    assert fit.covariance[i, j] < 0
    assert fit.uncertainty("tCr") < np.hypot(fit.uncertainty("Cr"), fit.uncertainty("PCr"))


def test_soft_ratio_constraint_pulls_ratio_towards_prior():
    basis = singlet_basis(["NAA", "Cr", "PCr", "Cho"])
    truth = {"NAA": 10, "Cr": 4, "PCr": 4, "Cho": 2}
    rng = np.random.default_rng(7)
    fid = synthetic_fid(basis, truth, noise_sd=0.4, rng=rng)
    free = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(1.5, 4.0)))
    tied = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(
        ppm_range=(1.5, 4.0),
        ratio_constraints=[{"numerator": "PCr", "denominator": "Cr", "ratio": 1.0, "sd": 0.01}]))
    assert abs(tied.amplitude("PCr") / tied.amplitude("Cr") - 1) < 0.05
    assert abs(free.amplitude("PCr") / free.amplitude("Cr") - 1) > abs(
        tied.amplitude("PCr") / tied.amplitude("Cr") - 1)
    assert tied.amplitude("tCr") == pytest.approx(free.amplitude("tCr"), rel=0.05)


def test_options_from_dict_round_trip_and_errors():
    table = {"ppm_range": [0.2, 4.0], "baseline": "spline", "baseline_stiffness": 10.0,
             "mode": "joint", "joint_models": {"Glu": "kurtosis"},
             "joint_shared": ["lineshape", "phase"]}
    options = FitOptions.from_dict(table)
    assert options.ppm_range == (0.2, 4.0) and options.joint_shared == ("lineshape", "phase")
    assert FitOptions.from_dict(options.to_dict()) == options
    with pytest.raises(ValueError, match="unknown keys"):
        FitOptions.from_dict({"baseline_ordr": 3})
    with pytest.raises(ValueError, match="baseline"):
        FitOptions.from_dict({"baseline": "wavelet"})
    with pytest.raises(ValueError, match="joint_shared"):
        FitOptions.from_dict({"joint_shared": ["everything"]})


def test_bad_inputs_raise_value_errors_naming_the_problem():
    basis = singlet_basis(["NAA", "Cr"])
    fid = synthetic_fid(basis, {"NAA": 1, "Cr": 1})
    bad = fid.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_spectrum(bad, basis, DWELL_S, CF_MHZ)
    with pytest.raises(ValueError, match="window"):
        fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(40, 50)))
    with pytest.raises(ValueError, match="no signal"):
        fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(3.5, 4.2)))
    with pytest.raises(ValueError, match="b-values"):
        fit_conditions(np.stack([fid, fid]), basis, DWELL_S, CF_MHZ, [0.0])


def test_amplitudes_table_rows_cover_metabolites_and_sums():
    basis = singlet_basis(["NAA", "Cr", "PCr", "Cho"])
    rng = np.random.default_rng(1)
    truth = {"NAA": 10, "Cr": 4, "PCr": 4, "Cho": 2}
    fids = np.stack([synthetic_fid(basis, {k: v * s for k, v in truth.items()}, noise_sd=0.1,
                                   rng=rng) for s in (1.0, 0.6)])
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, [0.0, 3000.0],
                          FitOptions(ppm_range=(1.5, 4.0)))
    rows = amplitudes_table(fits)
    assert {r["metabolite"] for r in rows} == {"NAA", "Cr", "PCr", "Cho", "tNAA", "tCr", "tCho"}
    assert len(rows) == 2 * 7
    for row in rows:
        assert set(row) >= {"condition", "metabolite", "amplitude", "crlb", "crlb_percent"}
        assert row["crlb_percent"] == pytest.approx(100 * row["crlb"] / row["amplitude"])
    b3000 = [r for r in rows if r["b_value_s_mm2"] == 3000.0 and r["metabolite"] == "NAA"][0]
    assert b3000["amplitude"] == pytest.approx(6.0, rel=0.03)
    single = amplitudes_table(fits.fits[0])
    assert {r["condition"] for r in single} == {0}


def test_sequential_conditions_share_one_amplitude_scale():
    basis = singlet_basis(["NAA", "Cr", "Cho"])
    scales = np.array([1.0, 0.7, 0.4, 0.2])
    fids = np.stack([synthetic_fid(basis, {"NAA": 9 * s, "Cr": 5 * s, "Cho": 2 * s})
                     for s in scales])
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, [0, 1000, 2000, 4000],
                          FitOptions(ppm_range=(1.5, 4.0), mode="sequential"))
    assert np.allclose(fits.series("NAA")[0], 9 * scales, rtol=1e-5)
    assert isinstance(fits.fits[0], SpectralFit) and fits.mode == "sequential"


def test_fixed_shape_mm_from_highest_b_follows_true_mm_decay():
    from pipeline.simulate.macromolecules import parametric_mm_basis

    basis = singlet_basis(["NAA", "Cr", "Cho"])
    mm = parametric_mm_basis(CF_MHZ, DWELL_S, N_POINTS, components="lcmodel")
    full = basis.with_entries(mm)
    weights = {"MM09": 3.0, "MM12": 1.0, "MM14": 1.5, "MM17": 0.8, "MM20": 2.0}
    mm_decay = np.array([1.0, 0.95, 0.9])
    metab_decay = np.array([1.0, 0.6, 0.3])
    fids = np.stack([synthetic_fid(full, {"NAA": 9 * m, "Cr": 5 * m, "Cho": 2 * m,
                                          **{k: w * d for k, w in weights.items()}})
                     for m, d in zip(metab_decay, mm_decay)])
    fits = fit_conditions(fids, full, DWELL_S, CF_MHZ, [0, 3000, 6000],
                          FitOptions(ppm_range=(0.5, 4.0), mm_mode="fixed_shape_from_highest_b",
                                     mode="sequential"))
    assert "MM" in fits.names and "MM09" not in fits.names
    series = fits.series("MM")[0]
    assert np.allclose(series / series[-1], mm_decay / mm_decay[-1], rtol=1e-4)
    assert np.allclose(fits.series("NAA")[0], 9 * metab_decay, rtol=1e-4)
    assert fits.extra["fixed_shape_mm"]["components"] == list(weights)
    fitted = dict(zip(fits.extra["fixed_shape_mm"]["components"],
                      fits.extra["fixed_shape_mm"]["amplitudes"]))
    assert all(fitted[k] == pytest.approx(w * mm_decay[-1], rel=1e-4) for k, w in weights.items())


def test_display_spectra_and_stacked_outputs_rebuild_the_data():
    basis = singlet_basis(["NAA", "Cr", "Cho"])
    rng = np.random.default_rng(4)
    fids = np.stack([synthetic_fid(basis, {"NAA": 9 * s, "Cr": 5 * s, "Cho": 2 * s},
                                   noise_sd=0.05, rng=rng) for s in (1.0, 0.5)])
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, [0, 2000],
                          FitOptions(ppm_range=(1.5, 4.0)))
    assert np.allclose(fits.stacked("fitted") + fits.stacked("residual"), fids)
    shown = display_spectra(fits.fits[0])
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    keep = (ppm >= 1.5) & (ppm <= 4.0)
    assert np.allclose(shown["data"], fid_to_spectrum(fids[0])[keep])
    assert np.allclose(sum(shown["components"].values()) + shown["baseline"], shown["fit"])
    with pytest.raises(ValueError, match="kind"):
        fits.stacked("model")


def test_noise_sigma_from_residual_and_from_signal_free_region_agree_with_truth():
    basis = singlet_basis(list(TRUTH))
    rng = np.random.default_rng(9)
    noise_sd = 0.05
    fid = synthetic_fid(basis, TRUTH, noise_sd=noise_sd, rng=rng)
    expected = noise_sd * np.sqrt(N_POINTS)  # unnormalised FFT: SD per real spectral point
    for source in ("residual", "region"):  # region far from the Lorentzian tails
        fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                           FitOptions(ppm_range=(0.5, 4.2), noise=source,
                                      noise_region_ppm=(-12.0, -6.0)))
        assert fit.sigma == pytest.approx(expected, rel=0.12), source
    with pytest.raises(ValueError, match="noise region"):
        fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                     FitOptions(ppm_range=(0.5, 4.2), noise="region",
                                noise_region_ppm=(-40, -39)))


def test_nonneg_solve_is_exact_nnls_whatever_the_active_set_guess():
    from scipy.optimize import nnls

    rng = np.random.default_rng(5)
    for trial in range(30):
        a = rng.standard_normal((80, 12)) + 0.8 * rng.standard_normal((80, 1))  # correlated
        y = a @ np.where(rng.random(12) < 0.5, 0.0, rng.random(12)) + 0.3 * rng.standard_normal(80)
        truth, _ = nnls(a, y)
        guesses = [None, truth > 0, rng.random(12) < 0.5, np.ones(12, bool)]
        for guess in guesses:
            assert np.allclose(nonneg_solve(a, y, guess), truth, atol=1e-9), (trial, guess)
