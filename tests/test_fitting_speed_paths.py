"""The single-spectrum fit's fast paths (issue 13 speed), and the Gram matrix of the HLSVD
behind residual-water removal, give what the plain computation gives.

Truth: ``np.exp`` on the full time axis, the dense QR projector of the full real-stacked
baseline matrix (:class:`BaselineProjector`), ``scipy.optimize.nnls`` (an independent NNLS
implementation), the full complex least squares with the baseline as free columns, and the
residual norm computed with the columns turned instead of the data, numpy's SVD-based
``lstsq``, and the matrix product of the explicit Hankel matrix.
"""

import dataclasses

import numpy as np
import pytest
from scipy.optimize import nnls

from pipeline.fitting import FitOptions
from pipeline.fitting import model as M
from pipeline.fitting.baseline import baseline_design
from pipeline.fitting.single import SpectrumObjective, initial_phase0
from pipeline.fitting.solver import (BaselineProjector, PairedProjector, complex_least_squares,
                                     nonneg_solve)
from pipeline.preprocess.water import hankel_gram
from pipeline.spectra import exp_series, fid_to_spectrum, time_axis_s

from test_fitting_support import CF_MHZ, DWELL_S, N_POINTS, singlet_basis, synthetic_fid

TRUTH = {"NAA": 10.0, "Cr": 6.0, "Cho": 1.5, "Ins": 4.0, "Glx": 8.0, "Lac": 0.7}


@pytest.mark.parametrize("n_points", [2048, 1000, 7])
def test_exp_series_is_the_exponential_on_the_time_axis(n_points):
    rate = np.array([2j * np.pi * 37.3 - 12.0, -2j * np.pi * 410.9 - 0.5, 3.0 + 2j, 0.0])
    t = time_axis_s(n_points, 2.5e-4)
    expected = np.exp(rate[:, None] * t[None, :])
    got = exp_series(rate, 2.5e-4, n_points)
    assert got.shape == expected.shape
    # both round the exponent: a phase of |w t| rad carries ~|w t| eps of absolute error
    bound = 4 * np.finfo(float).eps * (1.0 + np.abs(rate.imag)[:, None] * t[None, :])
    assert np.all(np.abs(got - expected) <= bound * np.abs(expected))


def _full_free_columns(design, penalty, n_prior):
    """The real-stacked free columns as the objective lays them out (dense)."""
    zd, zp = np.zeros_like(design), np.zeros_like(penalty)
    return np.vstack([np.block([[design, zd], [zd, design]]),
                      np.block([[penalty, zp], [zp, penalty]]),
                      np.zeros((n_prior, 2 * design.shape[1]))])


@pytest.mark.parametrize("kind,stiffness", [("spline", 0.003), ("spline", 0.0),
                                            ("poly", 1.0), ("none", 1.0)])
def test_paired_projector_is_the_projector_of_the_full_baseline_matrix(kind, stiffness):
    rng = np.random.default_rng(7)
    ppm = np.linspace(4.0, 0.2, 240)
    design, penalty = baseline_design(ppm, kind, 2, 0.1, stiffness)
    full = BaselineProjector(_full_free_columns(design, penalty, n_prior=3))
    paired = PairedProjector(design, penalty)
    n_rows = full.q.shape[0]
    x, v = rng.normal(size=(n_rows, 5)), rng.normal(size=n_rows)
    assert np.allclose(paired.project(x), full.project(x), atol=1e-12)
    assert np.allclose(paired.project(v), full.project(v), atol=1e-12)
    assert np.allclose(paired.coefficients(v), full.coefficients(v), atol=1e-10)
    for n_obs in (2 * ppm.size, ppm.size, 100):
        assert paired.hat_trace(n_obs) == pytest.approx(full.hat_trace(n_obs), abs=1e-9)
    if design.shape[1]:  # a projection: idempotent and orthogonal to the free columns
        once = paired.project(x)
        assert np.allclose(paired.project(once), once, atol=1e-12)
        assert np.allclose(_full_free_columns(design, penalty, 3).T @ once, 0, atol=1e-10)


@pytest.mark.parametrize("scales", [(10.0,), (0.3,), (0.0,), (4.0, 0.05)])
def test_rescaled_paired_projector_is_the_projector_of_the_rescaled_penalty(scales):
    """``with_penalty_scale`` (the stiffness search) gives the dense QR projector of the
    design with the penalty rows times the product of the scales, also when applied twice."""
    rng = np.random.default_rng(5)
    ppm = np.linspace(4.0, 0.2, 240)
    design, penalty = baseline_design(ppm, "spline", 2, 0.1, 0.003)
    paired = PairedProjector(design, penalty)
    for scale in scales:
        paired = paired.with_penalty_scale(scale)
    full = BaselineProjector(_full_free_columns(design, np.prod(scales) * penalty, n_prior=3))
    x = rng.normal(size=(full.q.shape[0], 4))
    assert np.allclose(paired.project(x), full.project(x), atol=1e-11)
    assert np.allclose(paired.coefficients(x[:, 0]), full.coefficients(x[:, 0]), atol=1e-8)
    for n_obs in (2 * ppm.size, 100):
        assert paired.hat_trace(n_obs) == pytest.approx(full.hat_trace(n_obs), abs=1e-8)


def test_objective_with_rescaled_penalty_is_the_objective_built_with_it():
    """The stiffness search's re-penalised objective has the residual, amplitudes and
    baseline columns of an objective built from scratch with that penalty."""
    basis = singlet_basis()
    fid = synthetic_fid(basis, TRUTH, noise_sd=0.02, rng=np.random.default_rng(3))
    options = FitOptions(baseline="spline", spline_knot_spacing_ppm=0.1,
                         baseline_stiffness=0.003, metabolite_shift_sd_ppm=0.0)
    problem = M.build_problem(basis, DWELL_S, N_POINTS, CF_MHZ, options)
    y = fid_to_spectrum(fid)[problem.window]
    y = y / np.max(np.abs(y))
    objective = SpectrumObjective(problem, y, np.zeros((0, problem.n_metab)))
    theta = np.zeros(problem.n_theta)
    theta[problem.n_groups:2 * problem.n_groups] = 30.0
    rescaled = objective.with_penalty_scale(np.sqrt(10))
    stiffer = dataclasses.replace(problem, baseline_penalty=problem.baseline_penalty * np.sqrt(10))
    built = SpectrumObjective(stiffer, y, np.zeros((0, problem.n_metab)))
    assert np.allclose(rescaled.residual(theta), built.residual(theta), atol=1e-10)
    assert np.allclose(rescaled.evaluate(theta)[-1], built.evaluate(theta)[-1], atol=1e-9)
    assert np.array_equal(rescaled.free_aug, built.free_aug)
    assert not np.allclose(rescaled.residual(theta), objective.residual(theta), atol=1e-6)


def test_nonneg_solve_is_the_exact_nnls_when_the_candidates_fail():
    """Random problems whose unconstrained solution has negative entries and whose guessed
    positive set is wrong: the square-system path must give scipy's dense NNLS answer."""
    rng = np.random.default_rng(11)
    for trial in range(30):
        a = rng.normal(size=(300, 12))
        a[:, -1] += 0.9 * a[:, -2]  # correlated columns, as overlapping metabolites
        y = a @ rng.normal(size=12) + 0.1 * rng.normal(size=300)
        guess = rng.random(12) < 0.5
        expected, _ = nnls(a, y)
        got = nonneg_solve(a, y, guess)
        assert np.all(got >= 0)
        assert np.allclose(got, expected, rtol=1e-9, atol=1e-10), trial
        assert np.array_equal(got > 0, expected > 0), trial


def _problem():
    """A noisy singlet spectrum (one group, own shifts, first-order phase), scaled data."""
    basis = singlet_basis(list(TRUTH))
    fid = synthetic_fid(basis, TRUTH, lorentz_hz=3.0, gauss_hz=4.0, shift_hz=2.5,
                        phase_rad=0.4, noise_sd=0.5, rng=np.random.default_rng(2))
    problem = M.build_problem(basis, DWELL_S, N_POINTS, CF_MHZ, FitOptions(ppm_range=(0.5, 4.2)))
    y = fid_to_spectrum(fid)[problem.window]
    theta = np.zeros(problem.n_theta)  # the one group's true widths and shift, phases 0
    theta[:3] = M.lorentz_fwhm_to_damp(3.0), M.gauss_fwhm_to_rate(4.0), 2.5
    return problem, y / np.max(np.abs(y)), theta


def _objective(problem, y):
    return SpectrumObjective(problem, y, np.zeros((0, problem.n_metab)))


def test_cost_with_the_data_turned_equals_the_residual_norm():
    """``cost`` turns the data by -phi0 instead of the columns by +phi0: the same number."""
    problem, y, theta = _problem()
    objective = _objective(problem, y)
    k = problem.n_groups
    for phi0 in np.linspace(-np.pi, np.pi, 7):
        trial = theta.copy()
        trial[3 * k] = phi0
        trial[3 * k + 1] = 1e-5  # a first-order phase too: it is not turned
        expected = float(np.sum(_objective(problem, y).residual(trial) ** 2))
        assert objective.cost(trial) == pytest.approx(expected, rel=1e-10)


def test_initial_phase_equals_the_full_complex_fit_with_a_free_baseline():
    """The baseline eliminated by projection leaves the metabolite coefficients of the full
    complex least squares ``[columns, baseline design]``."""
    problem, y, theta = _problem()
    objective = _objective(problem, y)
    cols, _ = M.metabolite_columns(problem, theta)  # phi0 = 0 in theta
    matrix = np.hstack([cols.T, problem.baseline_matrix.astype(complex)])
    coef, *_ = np.linalg.lstsq(matrix, y, rcond=None)
    z = coef[:problem.n_metab]
    expected = float(np.angle(np.sum(z * np.abs(z))))
    assert initial_phase0(objective, theta) == pytest.approx(expected, abs=1e-10)
    assert expected == pytest.approx(0.4, abs=0.05)  # the phase the data were made with


@pytest.mark.parametrize("n_points, n_rows, damping_per_s", [
    (512, 256, 15.0), (512, 256, 100.0), (101, 40, 15.0), (9, 1, 15.0), (7, 6, 15.0)])
def test_hankel_gram_recursion_equals_the_matrix_product(n_points, n_rows, damping_per_s):
    """``H H^H`` of the explicit Hankel matrix, for a large water line over noise (amplitudes
    spanning 4 orders of magnitude, as residual water over metabolites) and for a line that
    decays to 3e-6 of its start over the FID (late diagonal entries far below the early ones,
    where the recursion subtracts)."""
    import scipy.linalg
    rng = np.random.default_rng(n_points)
    t = np.arange(n_points) * DWELL_S
    noise_sd = 1.0 if damping_per_s < 50 else 1e-6
    signal = (1e4 * np.exp((2j * np.pi * 310 - damping_per_s) * t)
              + noise_sd * (rng.normal(size=n_points) + 1j * rng.normal(size=n_points)))
    hankel = scipy.linalg.hankel(signal[:n_rows], signal[n_rows - 1:])
    expected = hankel @ hankel.conj().T
    gram = hankel_gram(signal, n_rows)
    np.testing.assert_allclose(gram, expected, rtol=0, atol=1e-13 * np.abs(expected).max())
    np.testing.assert_allclose(gram, gram.conj().T, rtol=0, atol=1e-13 * np.abs(expected).max())


@pytest.mark.parametrize("case", ["random", "zero column", "condition 1e6", "condition 1e8"])
def test_complex_least_squares_equals_lstsq(case):
    """The normal-equation solve gives numpy's least-squares answer: a rank-deficient matrix
    (a column that is zero, as a basis entry with no signal in the window) falls back to
    ``lstsq`` and its minimum-norm solution, and so does a matrix too ill conditioned for the
    normal equations (condition number 1e8: Cholesky succeeds there, but its answer was off by
    up to 90 %)."""
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(300, 20)) + 1j * rng.normal(size=(300, 20))
    if case == "zero column":
        matrix[:, 5] = 0.0
    if case.startswith("condition"):
        u, _ = np.linalg.qr(matrix)
        v, _ = np.linalg.qr(rng.normal(size=(20, 20)) + 1j * rng.normal(size=(20, 20)))
        matrix = (u * np.logspace(0, -float(case.split("1e")[1]), 20)) @ v.conj().T
    target = rng.normal(size=300) + 1j * rng.normal(size=300)
    expected = np.linalg.lstsq(matrix, target, rcond=None)[0]
    error = np.linalg.norm(complex_least_squares(matrix, target) - expected)
    assert error <= 1e-5 * np.linalg.norm(expected)
