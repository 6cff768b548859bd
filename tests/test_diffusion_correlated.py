"""Diffusion fits of points with correlated noise (``fit_model(..., covariance=C)``): the
amplitudes of one metabolite are correlated across conditions in the joint spectral fit. The
estimate stays the weighted least-squares one; its SE must be that estimator's under noise of
covariance C. Truth: the analytic sandwich (J^T W J)^-1 J^T W C W J (J^T W J)^-1 at the true
parameters, and the spread of the estimates over noise drawn with that C; a diagonal C must
give exactly the fit with sigma alone."""

import numpy as np
import pytest

from pipeline.diffusion.fitting import fit_model
from pipeline.diffusion.models import MonoExponential
from pipeline.diffusion.powder import powder_average

B = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
ADC, S0, SD = 0.2, 1.0, 0.02


def ar1_covariance(rho, sd=SD, n=B.size):
    """sd^2 rho^|i-j|: neighbouring conditions correlated by rho."""
    i = np.arange(n)
    return sd ** 2 * rho ** np.abs(i[:, None] - i[None, :])


def sandwich_truth(covariance, sigma=SD):
    """Covariance of the weighted least-squares (ADC, S0) of S0 exp(-b ADC) at the truth."""
    signal = np.exp(-B * ADC)
    sigma = np.broadcast_to(sigma, B.shape)
    jac = np.column_stack([-S0 * B * signal, signal]) / sigma[:, None]
    bread = np.linalg.inv(jac.T @ jac)
    return bread @ jac.T @ (covariance / np.outer(sigma, sigma)) @ jac @ bread


def _fit(signal, covariance, **options):
    return fit_model(MonoExponential(b_max_ms_um2=5), B, signal, np.full(B.size, SD),
                     covariance=covariance, **options)


def test_standard_error_is_the_analytic_sandwich_at_the_truth():
    c = ar1_covariance(0.7)
    fit = _fit(S0 * np.exp(-B * ADC), c)
    truth = sandwich_truth(c)
    assert fit.param("ADC") == pytest.approx(ADC, rel=1e-7)
    assert fit.std_errors[0] == pytest.approx(np.sqrt(truth[0, 0]), rel=1e-5)
    assert fit.s0_std_error == pytest.approx(np.sqrt(truth[1, 1]), rel=1e-5)
    plain = _fit(S0 * np.exp(-B * ADC), None)  # independent CRLBs: another SE
    assert abs(fit.std_errors[0] / plain.std_errors[0] - 1) > 0.1


def test_standard_error_matches_the_spread_over_correlated_noise():
    """400 decays with noise of covariance C: the ADC's SD over them is the sandwich SE."""
    c = ar1_covariance(0.7)
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(400, B.size)) @ np.linalg.cholesky(c).T
    fits = [_fit(S0 * np.exp(-B * ADC) + e, c, n_starts=1) for e in noise]
    adc = np.array([f.param("ADC") for f in fits])
    se = np.sqrt(sandwich_truth(c)[0, 0])
    assert 0.9 < np.std(adc, ddof=1) / se < 1.1
    assert abs(np.mean(adc) - ADC) < 3 * se / np.sqrt(adc.size)
    assert np.median([f.std_errors[0] for f in fits]) == pytest.approx(se, rel=0.03)


def test_a_singular_covariance_is_used_as_it_is():
    """The joint fit's decay constraint leaves a rank-deficient covariance: the estimate is
    unchanged and the SE is still the sandwich (no inverse of C is taken)."""
    signal = np.exp(-B * ADC)
    basis = np.column_stack([np.exp(-B * 0.1), np.exp(-B * 0.4)])  # two dictionary decays
    c = basis @ np.diag([4e-4, 2e-4]) @ basis.T
    sigma = np.sqrt(np.diag(c))
    fit = fit_model(MonoExponential(b_max_ms_um2=5), B, signal, sigma, covariance=c)
    plain = fit_model(MonoExponential(b_max_ms_um2=5), B, signal, sigma)
    assert fit.param("ADC") == plain.param("ADC")
    assert fit.std_errors[0] == pytest.approx(np.sqrt(sandwich_truth(c, sigma)[0, 0]), rel=1e-5)


def test_monte_carlo_draws_carry_the_correlation():
    """The draws' ADC spread is the sandwich SE; at rho = 0.95 independent draws give 1.27 x
    it (at rho = 0.8 only 0.94 x, within the tolerance: that case could not tell them apart)."""
    c = ar1_covariance(0.95)
    fit = _fit(S0 * np.exp(-B * ADC), c, uncertainty="montecarlo", n_draws=300, seed=1)
    assert fit.resampled["ADC"]["std"] == pytest.approx(fit.std_errors[0], rel=0.12)
    independent = _fit(S0 * np.exp(-B * ADC), None, uncertainty="montecarlo", n_draws=300,
                       seed=1)
    assert independent.resampled["ADC"]["std"] > 1.2 * fit.std_errors[0]


def test_diagonal_covariance_reproduces_the_independent_fit_exactly():
    rng = np.random.default_rng(2)
    sigma = SD * (1 + rng.random(B.size))
    signal = S0 * np.exp(-B * ADC) + rng.normal(size=B.size) * sigma
    for uncertainty in ("jacobian", "montecarlo", "bootstrap"):
        plain = fit_model(MonoExponential(b_max_ms_um2=3), B, signal, sigma,
                          uncertainty=uncertainty, n_draws=50, lack_of_fit_test=True)
        diag = fit_model(MonoExponential(b_max_ms_um2=3), B, signal, sigma,
                         covariance=np.diag(sigma ** 2), uncertainty=uncertainty, n_draws=50,
                         lack_of_fit_test=True)
        assert np.array_equal(plain.params, diag.params)
        assert np.array_equal(plain.std_errors, diag.std_errors)
        assert plain.chi2 == diag.chi2 and plain.lack_of_fit_p == diag.lack_of_fit_p
        assert plain.resampled == diag.resampled


def test_covariance_must_match_sigma_and_be_positive_semi_definite():
    sigma = np.full(B.size, SD)
    with pytest.raises(ValueError, match="diagonal"):
        fit_model(MonoExponential(), B, np.exp(-B * ADC), sigma,
                  covariance=ar1_covariance(0.5, 0.03))
    bad = ar1_covariance(0.5)
    bad[0, 1] = bad[1, 0] = 2 * SD ** 2
    with pytest.raises(ValueError, match="positive semi-definite"):
        fit_model(MonoExponential(), B, np.exp(-B * ADC), sigma, covariance=bad)


def test_powder_average_propagates_the_covariance():
    """A C A^T: the arithmetic mean of two directions (weights 1/2), and the geometric mean's
    linearisation (mean * w / a)."""
    b = np.array([0.0, 1.0, 1.0])
    a = np.array([1.0, 0.8, 0.6])
    c = np.array([[4.0, 2.0, 1.0], [2.0, 9.0, 3.0], [1.0, 3.0, 16.0]]) * 1e-4
    directions = np.array([[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0]])
    arith = powder_average(b, a, np.sqrt(np.diag(c)), labels=[0, 1, 1], directions=directions,
                           covariance=c)
    mix = np.array([[1.0, 0, 0], [0, 0.5, 0.5]])
    assert np.allclose(arith.covariance, mix @ c @ mix.T, rtol=1e-12)
    # the shell's SD counts the directions' correlation: 0.25 (9 + 16 + 2 x 3) e-4
    assert np.allclose(arith.sigma, np.sqrt([4e-4, 0.25 * 31e-4]), rtol=1e-12)
    geo = powder_average(b, a, np.sqrt(np.diag(c)), method="geometric", labels=[0, 1, 1],
                         directions=directions, covariance=c)
    mean = np.sqrt(0.8 * 0.6)
    mix = np.array([[1.0, 0, 0], [0, 0.5 * mean / 0.8, 0.5 * mean / 0.6]])
    assert np.allclose(geo.covariance, mix @ c @ mix.T, rtol=1e-12)
    plain = powder_average(b, a, np.sqrt(np.diag(c)), labels=[0, 1, 1], directions=directions)
    assert plain.covariance is None


def test_directional_decay_uses_the_covariance_after_the_powder_average():
    """b = 0 and two shells of 3 directions, neighbours correlated: the ADC row's SE is that of
    the powder-averaged decay (3 shells) with the propagated covariance A C A^T."""
    from pipeline.diffusion import diffusion_table
    from pipeline.diffusion.powder import powder_average

    b_s_mm2 = np.array([0.0, 1000, 1000, 1000, 3000, 3000, 3000])
    directions = np.vstack([[np.nan] * 3, np.eye(3), np.eye(3)])
    amps = np.exp(-b_s_mm2 / 1000 * ADC)
    crlbs = np.full(b_s_mm2.size, SD)
    i = np.arange(b_s_mm2.size)
    c = SD ** 2 * 0.6 ** np.abs(i[:, None] - i[None, :])
    rows = diffusion_table({"tNAA": (amps, crlbs)}, b_s_mm2, directions=directions,
                           covariances={"tNAA": c}, models=("monoexponential",),
                           uncertainty="jacobian")
    (adc,) = [r for r in rows if r["parameter"] == "ADC"]
    assert "correlation across conditions" in adc["note"] and "not used" not in adc["note"]
    shells = powder_average(b_s_mm2 / 1000, amps, crlbs, labels=[0, 1, 1, 1, 2, 2, 2],
                            directions=directions, covariance=c)
    expected = fit_model(MonoExponential(b_max_ms_um2=5), shells.b_ms_um2, shells.amplitude,
                         shells.sigma, covariance=shells.covariance)
    assert adc["std_error"] == pytest.approx(expected.std_errors[0], rel=1e-9)


@pytest.mark.parametrize("pairs", [
    {(1, 2): 0.9, (2, 3): 0.9, (1, 3): -0.9},  # shell SD from it, then a diagonal shell matrix
    {(1, 2): -0.9, (1, 3): -0.9, (2, 3): -0.9},  # shell variance below 0
])
def test_a_table_that_is_no_covariance_is_not_used_before_the_powder_average(pairs):
    """A covariance table that is not positive semi-definite (a hand-edited or foreign file)
    is not used, and says so, also with directions: the powder average must not take its
    shells' SDs from it. Truth: the fit with the CRLBs as independent (no table). Before, the
    first gave another SE (0.009526 against 0.009483) with no word, the second a row failed
    with 'sigma must be positive'."""
    from pipeline.diffusion import diffusion_table

    b_s_mm2 = np.array([0.0, 1000, 1000, 1000, 3000, 3000, 3000])
    directions = np.vstack([[np.nan] * 3, np.eye(3), np.eye(3)])
    amps = np.exp(-b_s_mm2 / 1000 * ADC)
    crlbs = np.full(b_s_mm2.size, SD)
    correlation = np.eye(b_s_mm2.size)
    for (i, j), rho in pairs.items():
        correlation[i, j] = correlation[j, i] = rho
    assert np.linalg.eigvalsh(correlation)[0] < -0.1
    options = dict(directions=directions, models=("monoexponential",), uncertainty="jacobian")
    (adc,) = [r for r in diffusion_table({"tNAA": (amps, crlbs)}, b_s_mm2,
                                         covariances={"tNAA": SD ** 2 * correlation}, **options)
              if r["parameter"] == "ADC"]
    (plain,) = [r for r in diffusion_table({"tNAA": (amps, crlbs)}, b_s_mm2, **options)
                if r["parameter"] == "ADC"]
    assert "covariance across conditions not used" in adc["note"]
    assert "positive semi-definite" in adc["note"]
    assert adc["value"] == plain["value"] and adc["std_error"] == plain["std_error"]


@pytest.mark.parametrize("powder_method", ["arithmetic", "geometric"])
def test_a_diagonal_table_with_directions_reproduces_the_independent_rows_exactly(powder_method):
    """A sequential fit's table is diagonal: with directions the rows must be those without the
    table, bit for bit. Before, the powder average took the shells' SDs from A C A^T, which
    differ in the last bits (here the geometric ADC 0.20196104697 against 0.20196104616; the
    shells' SDs differed in all 56 metabolite x method cases of the demo's 7 T participant
    fitted sequentially)."""
    from pipeline.diffusion import diffusion_table

    rng = np.random.default_rng(4)
    b_s_mm2 = np.array([0.0, 1000, 1000, 1000, 3000, 3000, 3000])
    directions = np.vstack([[np.nan] * 3, np.eye(3), np.eye(3)])
    amps = np.exp(-b_s_mm2 / 1000 * ADC) * (1 + 0.05 * rng.standard_normal(b_s_mm2.size))
    crlbs = SD * (1 + rng.random(b_s_mm2.size))
    options = dict(directions=directions, models=("monoexponential",), uncertainty="jacobian",
                   powder_method=powder_method)
    with_table = diffusion_table({"tNAA": (amps, crlbs)}, b_s_mm2,
                                 covariances={"tNAA": np.diag(crlbs ** 2)}, **options)
    plain = diffusion_table({"tNAA": (amps, crlbs)}, b_s_mm2, **options)

    def text(rows):  # repr: NaN cells compare equal, floats bit for bit
        return [{k: repr(v) for k, v in r.items()} for r in rows]

    assert text(with_table) == text(plain)
