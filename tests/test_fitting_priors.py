"""Amplitude priors of the fit (ratio priors with sums, LCModel's weak-metabolite priors, the
parametric-MM shape prior) and the noise-scaled baseline curvature prior, against analytic
results on toy singlet bases (known truth, milliseconds each)."""

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.fitting import FitOptions, fit_spectrum
from pipeline.fitting.baseline import noise_scaled_penalty
from pipeline.fitting.priors import (WEAK_METABOLITE_PRIORS, amplitude_priors,
                                     expression_weights)
from pipeline.qc.metrics import noise_sd

from test_fitting_support import CF_MHZ, DWELL_S, N_POINTS, singlet_fid, synthetic_fid

LINES = {"NAA": (2.01, 3), "Cr": (3.03, 3), "Cho": (3.21, 9), "Asp": (2.72, 2),
         "MM09": (0.91, 3), "MM14": (1.43, 2), "MM22": (2.27, 2)}
WINDOW = (0.5, 4.0)


def toy_basis(names) -> Basis:
    fids = [singlet_fid(*LINES[n], N_POINTS, DWELL_S, CF_MHZ) for n in names]
    return Basis(list(names), np.array(fids), DWELL_S, CF_MHZ)


def test_expression_weights_expand_sums_factors_and_big3():
    names = ["NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "Gln", "GSH"]
    assert expression_weights(names, "Big3").tolist() == [1, 1, 1, 1, 3, 3, 0, 0]
    assert expression_weights(names, "Gln+GSH").tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert expression_weights(names, "2*Cr + tCho").tolist() == [0, 0, 2, 0, 1, 1, 0, 0]
    assert not expression_weights(names, "Asp").any()


def test_weak_priors_follow_the_basis_spelling_and_yield_to_the_user():
    names = ["NAA", "Cr", "GPC", "Asp", "Scyllo", "GABA"]
    options = FitOptions(weak_metabolite_priors=True, ratio_constraints=[
        {"numerator": "GABA", "denominator": "Cr", "ratio": 0.2, "sd": 0.1}])
    chosen = amplitude_priors(names, options)
    assert [c["numerator"] for c in chosen] == ["GABA", "Asp", "Scyllo"]
    assert chosen[0]["denominator"] == "Cr"  # the user's prior, not LCModel's GABA/Big3
    assert amplitude_priors(names, FitOptions(weak_metabolite_priors=False)) == []
    with pytest.raises(ValueError, match="'Glu' names no entry"):
        amplitude_priors(names, FitOptions(ratio_constraints=[
            {"numerator": "Glu", "denominator": "Cr", "ratio": 1, "sd": 1}]))


def test_ratio_prior_on_a_sum_gives_the_precision_weighted_estimate():
    """A Gaussian prior on Asp/Big3 and a Gaussian likelihood: the estimate is the
    precision-weighted mean of the free fit and the prior (linear problem, analytic), within
    the precision of the prior's reference amplitude."""
    names = ["NAA", "Cr", "Cho", "Asp"]
    basis = toy_basis(names)
    truth = {"NAA": 10.0, "Cr": 8.0, "Cho": 2.0, "Asp": 1.5}  # Asp/Big3 = 1.5/24, prior 0.05
    rng = np.random.default_rng(3)
    fid = synthetic_fid(basis, truth, noise_sd=0.6, rng=rng)
    plain = dict(ppm_range=WINDOW, baseline="poly", first_order_phase=False,
                 metabolite_shift_sd_ppm=0.0, weak_metabolite_priors=False,
                 mm_shape_prior_sd=0.0)
    free = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(**plain))
    # a prior about as strong as the data, so that its pull is measurable
    prior = {"numerator": "Asp", "denominator": "Big3", "ratio": 0.05, "sd": 0.001}
    tied = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                        FitOptions(**plain, ratio_constraints=[prior]))
    big3 = free.amplitude("NAA") + free.amplitude("Cr") + 3 * free.amplitude("Cho")
    var_data, var_prior = free.uncertainty("Asp") ** 2, (prior["sd"] * big3) ** 2
    expected = ((free.amplitude("Asp") / var_data + prior["ratio"] * big3 / var_prior)
                / (1 / var_data + 1 / var_prior))
    pull = (tied.amplitude("Asp") - free.amplitude("Asp")) / (expected - free.amplitude("Asp"))
    assert 0.3 < var_data / var_prior < 3  # the case is informative
    # the prior's reference Big3 comes from the start's linear fit (measured pull 1.12 here;
    # a prior twice as strong as intended would give about 1.3, no prior 0)
    assert pull == pytest.approx(1.0, abs=0.25)


def test_weak_metabolite_priors_are_lcmodels_defaults(shared_data):
    """The numbers of LCModel's default CHRATO priors, read from LCModel's own source
    (``../shared/peers/lcmodel/LCModel.f``, its BLOCK DATA); Scyllo is the app's sIns."""
    import re

    source = shared_data.parent / "peers" / "lcmodel" / "LCModel.f"
    if not source.is_file():
        pytest.skip(f"LCModel source {source} is absent")
    found = {m.group(1): (m.group(2), float(m.group(3)), float(m.group(4))) for m in re.finditer(
        r"'(\w+)/([\w+]+) = ([\d.]+) \+- ([\d.]+)'", source.read_text(errors="replace"))}
    spelled = {"sIns": "Scyllo"}
    for prior in WEAK_METABOLITE_PRIORS:
        name = spelled.get(prior["numerator"], prior["numerator"])
        assert found[name] == (prior["denominator"], prior["ratio"], prior["sd"]), name


def mm_fits(names, sd):
    basis = toy_basis(names)
    truth = {"NAA": 10.0, "Cr": 8.0, names[2]: 2.0, names[3]: 4.0}
    fid = synthetic_fid(basis, truth, noise_sd=0.2, rng=np.random.default_rng(5))
    plain = dict(ppm_range=WINDOW, baseline="poly", first_order_phase=False,
                 metabolite_shift_sd_ppm=0.0, weak_metabolite_priors=False,
                 mm_shape_prior_sd=0.0)
    free = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(**plain))
    tied = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                        FitOptions(**{**plain, "mm_shape_prior_sd": sd}))
    return basis, free, tied


def test_mm_shape_prior_ties_parametric_components_to_one_scale():
    """With a tight shape prior the components of the app's MM set come out equal (each is
    simulated at its expected size) and equal to the one-scale least-squares answer; without
    it they are free."""
    names = ["NAA", "Cr", "MM09", "MM22"]
    basis, free, tied = mm_fits(names, 1e-6)
    assert free.amplitude("MM22") / free.amplitude("MM09") == pytest.approx(2.0, rel=0.1)
    assert tied.amplitude("MM22") / tied.amplitude("MM09") == pytest.approx(1.0, abs=0.01)
    # one common scale c minimises |2 MM09 + 4 MM22 - c (MM09 + MM22)|^2 for separate lines
    n09, n22 = (np.sum(np.abs(basis.fids[names.index(n)]) ** 2) for n in ("MM09", "MM22"))
    expected = (2.0 * n09 + 4.0 * n22) / (n09 + n22)
    assert tied.amplitude("MM09") == pytest.approx(expected, rel=0.05)


def test_mm_shape_prior_leaves_lcmodel_style_mm_entries_free():
    """MM09 and MM14 alone are LCModel-style entries (other expected ratios): no prior."""
    _, free, tied = mm_fits(["NAA", "Cr", "MM09", "MM14"], 1e-6)
    assert tied.amplitude("MM14") == pytest.approx(free.amplitude("MM14"), rel=1e-6)


def test_noise_scaled_penalty_is_noise_over_curvature_sd():
    rows = noise_scaled_penalty(6, sigma_scaled=0.1, curvature_sd=0.05)
    assert rows.shape == (4, 6)
    assert np.allclose(rows[0], [2.0, -4.0, 2.0, 0, 0, 0])


def test_curvature_prior_stiffens_the_baseline_with_the_measured_noise():
    """The penalty of a fit follows the spectrum's own noise: ten times the noise, ten times
    the weight of the curvature prior (same data scale)."""
    names = ["NAA", "Cr", "Cho"]
    basis = toy_basis(names)
    truth = {"NAA": 10.0, "Cr": 8.0, "Cho": 2.0}
    options = FitOptions(ppm_range=WINDOW, baseline="spline", baseline_curvature_sd=0.02,
                         metabolite_shift_sd_ppm=0.0, weak_metabolite_priors=False,
                         mm_shape_prior_sd=0.0)
    weights, noises = [], []
    for noise in (0.05, 0.5):
        fid = synthetic_fid(basis, truth, noise_sd=noise, rng=np.random.default_rng(1))
        fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, options, data_scale=100.0)
        weights.append(np.abs(fit.extra["problem"].baseline_penalty).max())
        noises.append(noise_sd(fid, DWELL_S, CF_MHZ))
    assert weights[1] / weights[0] == pytest.approx(noises[1] / noises[0], rel=1e-9)
    assert noises[1] / noises[0] == pytest.approx(10.0, rel=0.1)


def test_methods_text_names_the_priors_the_fits_applied():
    """Built from what each condition's fit recorded, not from the configuration: a joint fit
    (no amplitude priors) gets no prior clause."""
    from bids_app.citation import _prior_clause

    names = ["NAA", "Cr", "Cho", "Asp"]
    basis = toy_basis(names)
    fid = synthetic_fid(basis, {"NAA": 10.0, "Cr": 8.0, "Cho": 2.0, "Asp": 1.0}, noise_sd=0.2,
                        rng=np.random.default_rng(0))
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=WINDOW))
    assert fit.extra["priors"]["ratio"] == ["Asp/Big3 = 0.05 +- 0.05"]
    stage = {"fit.json": {"conditions": [{"priors": fit.extra["priors"]}]}}
    assert "Asp/Big3 = 0.05 +- 0.05" in _prior_clause([stage])
    joint = {"fit.json": {"conditions": [{}, {}]}}
    assert _prior_clause([joint]) == ""


def test_diffusion_series_are_fitted_without_the_weak_metabolite_priors():
    """Two b-values, sequential: each condition's fit equals a fit without the weak priors
    (a prior per condition would pull the Asp decay towards Big3's), and records none."""
    from pipeline.fitting import fit_conditions

    names = ["NAA", "Cr", "Cho", "Asp"]
    basis = toy_basis(names)
    rng = np.random.default_rng(4)
    fids = np.array([synthetic_fid(basis, {"NAA": 10.0 * f, "Cr": 8.0 * f, "Cho": 2.0 * f,
                                           "Asp": 3.0 * f ** 2}, noise_sd=0.3, rng=rng)
                     for f in (1.0, 0.6)])
    common = dict(ppm_range=WINDOW, mode="sequential", mm_shape_prior_sd=0.0)
    series = fit_conditions(fids, basis, DWELL_S, CF_MHZ, [0.0, 3000.0],
                            FitOptions(**common, weak_metabolite_priors=True))
    plain = fit_conditions(fids, basis, DWELL_S, CF_MHZ, [0.0, 3000.0],
                           FitOptions(**common, weak_metabolite_priors=False))
    for with_default, without in zip(series.fits, plain.fits):
        assert with_default.amplitude("Asp") == pytest.approx(without.amplitude("Asp"), rel=1e-9)
        assert with_default.extra["priors"]["ratio"] == []
    single = fit_spectrum(fids[0], basis, DWELL_S, CF_MHZ,
                          FitOptions(**common, weak_metabolite_priors=True))
    assert single.extra["priors"]["ratio"] == ["Asp/Big3 = 0.05 +- 0.05"]


def test_prior_variance_share_is_the_analytic_fraction_and_is_flagged():
    """One amplitude with data variance v_d and a prior of variance v_p: the prior removes
    v_d / (v_d + v_p) of the variance (linear Gaussian problem); a share above one half is
    named in the QC flags."""
    from pipeline.fitting.conditions import prior_flags
    from pipeline.fitting.results import ConditionFits

    names = ["NAA", "Cr", "Cho", "Asp"]
    basis = toy_basis(names)
    fid = synthetic_fid(basis, {"NAA": 10.0, "Cr": 8.0, "Cho": 2.0, "Asp": 1.5},
                        noise_sd=0.6, rng=np.random.default_rng(3))
    plain = dict(ppm_range=WINDOW, baseline="poly", first_order_phase=False,
                 metabolite_shift_sd_ppm=0.0, weak_metabolite_priors=False,
                 mm_shape_prior_sd=0.0)
    free = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(**plain))
    assert set(free.extra["prior_variance_share"].values()) == {0.0}
    big3 = free.amplitude("NAA") + free.amplitude("Cr") + 3 * free.amplitude("Cho")
    for sd in (0.001, 0.003):
        tied = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(**plain, ratio_constraints=[
            {"numerator": "Asp", "denominator": "Big3", "ratio": 0.05, "sd": sd}]))
        v_data, v_prior = free.uncertainty("Asp") ** 2, (sd * big3) ** 2
        expected = v_data / (v_data + v_prior)
        assert tied.extra["prior_variance_share"]["Asp"] == pytest.approx(expected, abs=0.1)
        flagged = prior_flags(ConditionFits(names, np.zeros(1), [tied], "sequential"), str)
        assert bool(flagged) == (tied.extra["prior_variance_share"]["Asp"] >= 0.5)
        assert not flagged or "Asp (" in flagged[0]


def test_prior_share_from_one_inverse_equals_the_two_inverse_definition():
    """The Woodbury share (one inverse of A) against 1 - [A^-1]_ii / [A0^-1]_ii computed with
    two explicit inverses, on a random well-posed problem with a few prior rows."""
    from pipeline.fitting.uncertainty import covariance_and_prior_share

    rng = np.random.default_rng(11)
    jac = rng.standard_normal((60, 8))
    rows = rng.standard_normal((5, 8)) * 3.0
    mask = np.array([False, False, True, True, True])
    _, share = covariance_and_prior_share(jac, 1.0, rows, mask)
    a0 = jac.T @ jac + rows[~mask].T @ rows[~mask]
    a = a0 + rows[mask].T @ rows[mask]
    direct = 1.0 - np.diag(np.linalg.inv(a)) / np.diag(np.linalg.inv(a0))
    assert np.allclose(share, direct, atol=1e-10)
    assert np.all(direct > 0.01)  # the case is informative


def test_prior_reference_is_floored_at_the_denominators_noise_amplitude():
    """The floor equals the SD of the least-squares amplitude of the denominator's column under
    white noise (Monte Carlo, known noise), and a reference below it no longer stiffens the
    prior: the row is that of the floor, not 1e9 x stronger."""
    from pipeline.fitting.priors import ratio_row, reference_floor

    rng = np.random.default_rng(7)
    column = rng.standard_normal(300) + 1j * rng.standard_normal(300)  # one complex column
    norm, sigma = float(np.linalg.norm(column)), 0.05
    noise = sigma * (rng.standard_normal((4000, 300)) + 1j * rng.standard_normal((4000, 300)))
    # LS amplitude of a real coefficient on the real-stacked column, in units where the
    # normalised coefficient is amplitude * norm (data_scale 1)
    stacked = np.concatenate([column.real, column.imag])
    amplitude_sd = np.std(np.concatenate([noise.real, noise.imag], axis=1) @ stacked / norm ** 2)
    floor = reference_floor(np.array([1.0]), np.array([norm]), sigma, 1.0)
    assert floor == pytest.approx(amplitude_sd, rel=0.05)

    names_w = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    norms = np.array([2.0, norm])
    args = (0.3, 0.1)
    tiny = ratio_row(*names_w, *args, np.array([0.0, 1e-9 * floor]), norms, sigma, 1.0)
    at_floor = ratio_row(*names_w, *args, np.array([0.0, floor]), norms, sigma, 1.0)
    large = ratio_row(*names_w, *args, np.array([0.0, 50 * floor]), norms, sigma, 1.0)
    assert np.allclose(tiny, at_floor)
    assert np.allclose(large, at_floor / 50)
