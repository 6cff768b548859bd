"""Completely-monotone (CM) decay constraint of the joint fit (``joint_decay_constraint``):
the cone projection against an independent solver and its optimality conditions, its effect
on noisy series of known CM decays, its covariance against Monte Carlo, and the joint fit on
simulated data and on the published 7 T dMRS set against its ground truth."""

import numpy as np
import pytest
from scipy.optimize import nnls
from scipy.special import erf

from pipeline.fitting import FitOptions, fit_conditions
from pipeline.fitting.monotone import (applies, decay_dictionary, diffusivity_grid_um2_ms,
                                       project_onto_cone, project_subset,
                                       series_constraint_map)

from test_fitting_accuracy import (PREGAME_GT_DECAY, pregame_averages,  # noqa: F401 (fixtures)
                                   pregame_basis, rms_decay_error)
from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, synthetic_fid

B_PUBLISHED_MS_UM2 = np.array([0, 1, 3, 6, 10, 20, 30, 40, 50.0])
FSL_MRS_HALF = {"tNAA": 0.0035, "tCr": 0.0035, "tCho": 0.007, "Ins": 0.009, "Glu": 0.0115}
"""Issue 13's target: half of FSL-MRS 2.4's RMS errors of S(b)/S(0) on the published set."""


def sticks(b_ms_um2, d_um2_ms):
    """Powder-averaged sticks: sqrt(pi)/2 erf(x)/x with x = sqrt(b D) (1 at b = 0)."""
    x = np.sqrt(b_ms_um2 * d_um2_ms)
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, np.sqrt(np.pi) / 2 * erf(safe) / safe, 1.0)


CM_DECAYS = {
    "biexponential": lambda b: 0.7 * np.exp(-0.13 * b) + 0.3 * np.exp(-0.017 * b),
    "sticks": lambda b: sticks(b, 0.55),
    "gamma ADC": lambda b: (1 + 0.05 * b) ** -2.5,
    "sticks + exp": lambda b: 0.6 * sticks(b, 0.4) + 0.4 * np.exp(-0.2 * b),
}
"""Completely-monotone decays that are not on the dictionary's grid (b in ms/um^2)."""


def project_series(values: np.ndarray, sd: np.ndarray, b_ms_um2: np.ndarray) -> np.ndarray:
    """One amplitude series projected onto the CM cone with diagonal weights ``1/sd^2`` (the
    metric of independent errors); unchanged when the series has too few b-values."""
    values = np.asarray(values, float)
    if not applies(b_ms_um2):
        return values.copy()
    gram = np.diag(1.0 / np.asarray(sd, float) ** 2)
    return project_onto_cone(gram, values, decay_dictionary(
        b_ms_um2, diffusivity_grid_um2_ms())).coefficients


def small_problem(rng):
    """Two constrained metabolites and one free coefficient over five b-values."""
    b = np.array([0.0, 1.0, 3.0, 6.0, 10.0])
    index = np.array([np.arange(5), 5 + np.arange(5), np.full(5, 10)])
    transform, equalities = series_constraint_map(index, np.array([True, True, False]), b,
                                                  [np.arange(5)],
                                                  diffusivity_grid_um2_ms(12, 0.01, 3.0))
    assert equalities.shape == (0, transform.shape[1])  # one decay: no S(0) to share
    factor = rng.normal(size=(11, 20))
    return b, index, transform, factor


def test_cone_projection_equals_nnls_on_an_independent_factor_and_meets_kkt():
    rng = np.random.default_rng(3)
    b, index, transform, factor = small_problem(rng)
    assert transform.shape == (11, 2 * 13 + 1)
    assert np.allclose(transform[index[0], :13], decay_dictionary(
        b, diffusivity_grid_um2_ms(12, 0.01, 3.0)))
    gram = factor @ factor.T                       # G = L L^T with L not a Cholesky factor
    for _ in range(5):
        free = rng.normal(1.0, 0.5, 11)
        weights, _ = nnls(factor.T @ transform, factor.T @ free, maxiter=5000)
        result = project_onto_cone(gram, free, transform)
        assert np.allclose(result.coefficients, transform @ weights, atol=1e-8)
        gradient = transform.T @ gram @ (result.coefficients - free)
        scale = np.abs(transform.T @ gram @ free).max()
        assert np.all(gradient > -1e-8 * scale)                  # no descent direction left
        assert abs(result.weights @ gradient) < 1e-8 * scale     # complementary slackness
        assert np.allclose(result.linear_map @ free, result.coefficients, atol=1e-8)


def test_subset_projection_holds_the_others_and_solves_the_reduced_problem():
    rng = np.random.default_rng(6)
    b, index, transform, factor = small_problem(rng)
    design = factor.T                                   # A (20 rows, 11 coefficients)
    y = design @ rng.normal(1.0, 0.3, 11) + rng.normal(0, 0.1, 20)
    coefficients = rng.normal(1.0, 0.3, 11)
    subset = np.arange(10)                              # the two constrained metabolites
    result = project_subset(design.T @ design, design.T @ y, coefficients, subset,
                            transform[:10, :26])
    assert result.coefficients[10] == coefficients[10]
    reduced = y - design[:, 10] * coefficients[10]
    weights, _ = nnls(design[:, :10] @ transform[:10, :26], reduced, maxiter=5000)
    assert np.allclose(result.coefficients[:10], transform[:10, :26] @ weights, atol=1e-8)
    assert np.array_equal(result.linear_map[10], np.eye(11)[10])


def test_linear_map_is_the_derivative_on_the_active_face():
    rng = np.random.default_rng(4)
    _, _, transform, factor = small_problem(rng)
    gram = factor @ factor.T
    free = rng.normal(1.0, 0.5, 11)
    base = project_onto_cone(gram, free, transform)
    step = 1e-7 * rng.normal(size=11)
    moved = project_onto_cone(gram, free + step, transform)
    assert np.array_equal(moved.active, base.active)
    assert np.allclose(moved.coefficients - base.coefficients, base.linear_map @ step,
                       atol=1e-12)


@pytest.mark.parametrize("name", sorted(CM_DECAYS))
def test_projection_keeps_a_noise_free_cm_series_and_lowers_the_noise(name):
    truth = CM_DECAYS[name](B_PUBLISHED_MS_UM2)
    kept = project_series(truth, np.ones_like(truth), B_PUBLISHED_MS_UM2)
    # a mixture off the grid is approximated by its neighbours (bias <= 1.6e-4, module docstring)
    assert np.abs(kept - truth).max() < 3e-4
    rng = np.random.default_rng(5)
    sd = 0.02
    free, projected = [], []
    for _ in range(300):
        noisy = truth + rng.normal(0.0, sd, truth.size)
        free.append(noisy - truth)
        projected.append(project_series(noisy, np.full(truth.size, sd), B_PUBLISHED_MS_UM2)
                         - truth)
    rms_free, rms_cm = np.sqrt(np.mean(np.square(free))), np.sqrt(np.mean(np.square(projected)))
    print(f"\n{name}: RMS error free {rms_free:.4f}, CM-projected {rms_cm:.4f}")
    assert rms_free == pytest.approx(sd, rel=0.1)
    assert rms_cm < 0.8 * rms_free


def test_series_of_dictionary_atoms_is_unchanged_and_short_series_untouched():
    d = diffusivity_grid_um2_ms()
    truth = decay_dictionary(B_PUBLISHED_MS_UM2, d[[0, 40, 75]]) @ np.array([0.1, 0.5, 0.4])
    kept = project_series(truth, np.full(truth.size, 0.01), B_PUBLISHED_MS_UM2)
    assert np.abs(kept - truth).max() < 1e-6
    rising = np.array([1.0, 1.2])                   # not monotone, but two b-values only
    assert np.array_equal(project_series(rising, np.ones(2), np.array([0.0, 1.0])), rising)
    repeated = np.array([1.0, 0.5, 0.7, 0.3])       # two directions at b = 1 and 3
    assert np.array_equal(project_series(repeated, np.ones(4), np.array([0, 1, 1, 3.0])),
                          repeated)


B_S_MM2 = np.array([0, 1000, 2000, 3000, 5000, 7000, 10000], dtype=float)
NAMES = ("NAA", "Cr", "Cho", "Ins")
S0 = {"NAA": 10.0, "Cr": 7.0, "Cho": 2.0, "Ins": 5.0}


def truth_amplitudes(name, b_s_mm2):
    b = b_s_mm2 / 1000.0
    shapes = {"NAA": 0.8 * np.exp(-0.10 * b) + 0.2 * np.exp(-0.02 * b),
              "Cr": sticks(b, 0.5), "Cho": (1 + 0.04 * b) ** -2.0, "Ins": np.exp(-0.2 * b)}
    return S0[name] * shapes[name]


def series_fids(b_s_mm2, noise_sd=0.0, rng=None):
    basis = singlet_basis(NAMES)
    fids = np.stack([synthetic_fid(basis, {n: truth_amplitudes(n, np.array([b]))[0]
                                           for n in NAMES},
                                   lorentz_hz=3.0, gauss_hz=3.0, shift_hz=1.0, phase_rad=0.2,
                                   noise_sd=noise_sd, rng=rng) for b in b_s_mm2])
    return basis, fids


def cm_options(constraint="completely_monotone"):
    return FitOptions(ppm_range=(0.5, 4.2), mode="joint", joint_default_model="free",
                      joint_shared=("lineshape", "shift", "phase"),
                      joint_decay_constraint=constraint, metabolite_shift_sd_ppm=0.0)


def test_option_is_checked():
    with pytest.raises(ValueError, match="joint_decay_constraint"):
        FitOptions(joint_decay_constraint="monotone")


def test_joint_fit_with_fewer_than_three_b_values_is_unchanged():
    basis, fids = series_fids(B_S_MM2[[0, 4]], noise_sd=0.05, rng=np.random.default_rng(1))
    free = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2[[0, 4]], cm_options("none"))
    cm = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2[[0, 4]], cm_options())
    assert cm.mode == free.mode == "joint"
    for a, b in zip(free.fits, cm.fits):
        assert np.array_equal(a.amplitudes, b.amplitudes)
        assert np.array_equal(a.crlb, b.crlb)
    assert free.fits[0].extra["decay_constraint"] == "none"
    assert cm.fits[0].extra["decay_constraint"].startswith("none (needs >= 3")


def test_noise_free_joint_fit_keeps_cm_decays_and_reports_the_constraint():
    basis, fids = series_fids(B_S_MM2)
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, cm_options())
    assert all(f.extra["decay_constraint"] == "completely_monotone" for f in fits.fits)
    for name in NAMES:
        estimate = fits.series(name)[0]
        assert np.allclose(estimate, truth_amplitudes(name, B_S_MM2), rtol=0, atol=5e-4 * S0[name])


def test_anisotropic_directions_with_their_own_b_values_keep_their_own_decays():
    """Six gradient directions at two shells, each direction with its own b-value (nominal x
    0.9875-1.0125, as chronograms or cross-terms give), in a tensor voxel D = diag(0.4, 0.1,
    0.1) um^2/ms: S(b, g) = exp(-b g'Dg) per metabolite. All b-values are distinct, but the
    conditions are six decays, not one: the constraint must not pool them (before 2026-12-07
    it did, and every direction got the same amplitude: FA 0.002 for 0.707). It holds one
    decay per direction, all sharing b = 0. Noise-free, the fitted amplitudes follow the
    truth per direction."""
    s2 = 1 / np.sqrt(2)
    directions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [s2, s2, 0], [s2, 0, s2],
                           [0, s2, s2]])
    tensor = np.diag([0.4, 0.1, 0.1])
    b = [0.0] + [shell * (1 + 0.005 * (k - 2.5)) for shell in (1000.0, 3000.0)
                 for k in range(6)]
    g = np.vstack([np.full((1, 3), np.nan), directions, directions])
    decay = np.array([1.0] + [np.exp(-bb / 1000 * d @ tensor @ d) for bb, d in zip(b[1:], g[1:])])
    basis = singlet_basis(NAMES)
    fids = np.stack([synthetic_fid(basis, {n: S0[n] * f for n in NAMES}, lorentz_hz=3.0,
                                   gauss_hz=3.0, shift_hz=1.0, phase_rad=0.2) for f in decay])
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, np.array(b), cm_options(),
                          directions=g)
    assert fits.fits[0].extra["decay_constraint"] == "completely_monotone"
    assert fits.fits[0].extra["decay_constraint_series"] == 6
    # a "b0" of 5 s/mm^2 (crushers only) is the shared b ~ 0 condition (it switched the
    # constraint off before): the same six decays, each still following its truth
    low_b = fit_conditions(fids, basis, DWELL_S, CF_MHZ, np.array([5.0] + b[1:]), cm_options(),
                           directions=g)
    assert low_b.fits[0].extra["decay_constraint_series"] == 6
    for name in NAMES:
        np.testing.assert_allclose(low_b.series(name)[0] / S0[name], decay, atol=2e-3)
    for name in NAMES:
        np.testing.assert_allclose(fits.series(name)[0] / S0[name], decay, atol=2e-3)
    # one direction (or none) with distinct b-values: one decay, constrained as before
    along_x = np.tile([1.0, 0.0, 0.0], (len(B_S_MM2), 1))
    one = fit_conditions(*series_fids(B_S_MM2)[::-1], DWELL_S, CF_MHZ, B_S_MM2, cm_options(),
                         directions=along_x)
    assert one.fits[0].extra["decay_constraint"] == "completely_monotone"


def test_joint_cm_crlbs_match_the_monte_carlo_spread_and_beat_free_amplitudes():
    rng = np.random.default_rng(11)
    runs = {"none": ([], []), "completely_monotone": ([], [])}
    for _ in range(30):
        basis, fids = series_fids(B_S_MM2, noise_sd=0.3, rng=rng)
        for constraint, (values, crlbs) in runs.items():
            fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, cm_options(constraint))
            values.append([fits.series(n)[0] for n in NAMES])
            crlbs.append([fits.series(n)[1] for n in NAMES])
    truth = np.array([truth_amplitudes(n, B_S_MM2) for n in NAMES])
    rms = {}
    for constraint, (values, crlbs) in runs.items():
        values, crlbs = np.array(values), np.array(crlbs)
        spread, predicted = values.std(axis=0, ddof=1), crlbs.mean(axis=0)
        ratio = spread[:, 1:] / predicted[:, 1:]          # b > 0, where the cone acts most
        rms[constraint] = np.sqrt(np.mean((values - truth) ** 2, axis=(0, 2)))
        print(f"\n{constraint}: MC SD / mean CRLB per metabolite (b > 0), median "
              f"{np.median(ratio, axis=1).round(2)}, RMS error {rms[constraint].round(3)}")
        assert np.all((np.median(ratio, axis=1) > 0.7) & (np.median(ratio, axis=1) < 1.4))
    assert np.all(rms["completely_monotone"] < rms["none"])


def test_published_set_cm_errors_no_worse_than_free_amplitudes(pregame_basis, pregame_averages):
    """Published 7 T set (someone else's simulator and basis), aligned averages, 0.5-4.2 ppm:
    RMS error of S(b)/S(0) against its published ground truth, free vs CM-constrained."""
    averages, acq = pregame_averages
    errors = {}
    for constraint in ("none", "completely_monotone"):
        options = FitOptions(ppm_range=(0.5, 4.2), joint_decay_constraint=constraint)
        fits = fit_conditions(averages, pregame_basis, acq.dwell_s, acq.cf_mhz,
                              acq.b_values_s_mm2, options)
        assert fits.mode == "joint"
        assert fits.fits[0].extra["decay_constraint"] == constraint
        errors[constraint] = rms_decay_error(fits, PREGAME_GT_DECAY, list(PREGAME_GT_DECAY))
    print("\npublished set, RMS error of S(b)/S(0): " + ", ".join(
        f"{k} free {errors['none'][k]:.4f} CM {errors['completely_monotone'][k]:.4f}"
        for k in PREGAME_GT_DECAY))
    for name in ("tNAA", "tCr", "Ins", "Glu"):
        assert errors["completely_monotone"][name] <= errors["none"][name], name
    # tCho: 0.0087 against 0.0079 with frames forced to be shared; 0.0046 against 0.0068 since
    # the frame test frees them (README, issue 13)
    assert errors["completely_monotone"]["tCho"] <= 1.15 * errors["none"]["tCho"]
    # half of FSL-MRS's errors (issue 13) is reached for the singlets tNAA and tCr
    assert errors["completely_monotone"]["tNAA"] <= FSL_MRS_HALF["tNAA"]
    assert errors["completely_monotone"]["tCr"] <= FSL_MRS_HALF["tCr"]


def test_methods_text_names_the_constraint_where_joint_fits_applied_it():
    from bids_app.citation import _decay_constraint_clause

    applied = {"fit.json": {"conditions": [{"decay_constraint": "completely_monotone"}]}}
    skipped = {"fit.json": {"conditions": [
        {"decay_constraint": "none (needs >= 3 distinct, unrepeated b-values and free "
                             "amplitudes)"}]}}
    assert "completely monotone decays" in _decay_constraint_clause([applied, skipped])
    assert "per gradient direction" not in _decay_constraint_clause([applied])
    assert _decay_constraint_clause([skipped]) == ""
    directional = {"fit.json": {"conditions": [{"decay_constraint": "completely_monotone",
                                                "decay_constraint_series": 3}]}}
    assert ("one decay per gradient direction, all with one S(0)"
            in _decay_constraint_clause([directional]))


# ------------------------------------------------------------- one decay per gradient direction

def test_decay_series_per_direction_share_b0_and_refuse_what_cannot_be_one_decay():
    from pipeline.fitting.monotone import decay_series
    b = np.array([0.0, 1, 3, 6, 1, 3, 6])
    assert decay_series(b)[0] is None                          # pooled: repeated b-values
    assert [s.tolist() for s in decay_series(b[:4])[0]] == [[0, 1, 2, 3]]
    groups = np.array([-1, 0, 0, 0, 1, 1, 1])
    series, why_not = decay_series(b, groups)
    assert [s.tolist() for s in series] == [[0, 1, 2, 3], [0, 4, 5, 6]] and why_not == ""
    assert decay_series(b, np.array([-1, 0, 0, 0, 1, 1, -2])) == (
        None, "a diffusion-weighted condition has no gradient direction")
    assert decay_series(np.array([0.0, 0, 1, 3, 1, 3]), np.array([-1, -1, 0, 0, 1, 1])) == (
        None, "2 b ~ 0 conditions to share between the directions")
    repeated = decay_series(np.array([0.0, 1, 1, 3, 6]), np.array([-1, 0, 0, 0, 0]))
    assert repeated[0] is None and "unrepeated" in repeated[1]
    short = decay_series(b[:5], np.array([-1, 0, 0, 0, 1]))            # 2 b-values along one
    assert short[0] is None and "along a gradient direction (b = 0, 1 ms/um^2)" in short[1]
    # no b ~ 0 condition: one decay per direction all the same, each of >= 3 b-values
    alone = decay_series(b[1:], groups[1:])[0]
    assert [s.tolist() for s in alone] == [[0, 1, 2], [3, 4, 5]]


def test_decay_direction_labels_by_direction_up_to_sign():
    from pipeline.diffusion.tensor import decay_direction_labels
    g = np.array([[np.nan] * 3, [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, 0.999, 0.04],
                  [np.nan] * 3, [0, 0, 1]])
    b = np.array([0.0, 1, 1, 3, 3, 3, 0.005])        # the last: b = 5 s/mm^2, crushers only
    assert decay_direction_labels(g, b).tolist() == [-1, 0, 1, 0, 1, -2, -1]
    assert decay_direction_labels(g[:2], b[:2]) is None                        # one direction
    b_nan = b.copy()
    b_nan[3] = np.nan                                   # not a number: never the shared b ~ 0
    assert decay_direction_labels(g, b_nan).tolist() == [-1, 0, 1, -2, 1, -2, -1]


def test_decay_direction_labels_keep_the_cluster_each_condition_joined():
    """Tilted copies of one direction (22-48 degrees in the x-y plane, within the 25-degree
    tolerance of their running mean) and another direction at 60 degrees: the 48-degree
    condition joined the first group (mean 35 degrees, 13 away) but lies 12 degrees from the
    second; it keeps the group it joined (labelling by the nearest final mean moved it)."""
    from pipeline.diffusion.tensor import decay_direction_labels

    def unit(deg):
        return [np.cos(np.radians(deg)), np.sin(np.radians(deg)), 0.0]
    g = np.array([[np.nan] * 3] + [unit(a) for a in (22, 42, 60, 48, 28)])
    b = np.array([0.0, 1, 1, 1, 3, 3])
    assert decay_direction_labels(g, b).tolist() == [-1, 0, 0, 1, 0, 0]


def test_per_direction_projection_shares_s0_and_keeps_each_decay_in_its_cone():
    """Two directions of a tensor voxel (ADC 0.4 and 0.1 um^2/ms) with noise, independent
    errors: the projection returns one S(0) for both decays, each decay a non-negative mixture
    of exponentials (its own NNLS fit on the dictionary has no residual)."""
    from pipeline.fitting.monotone import decay_series
    rng = np.random.default_rng(5)
    b = np.array([0.0, 1, 3, 6, 10, 1, 3, 6, 10])
    groups = np.array([-1, 0, 0, 0, 0, 1, 1, 1, 1])
    series, _ = decay_series(b, groups)
    truth = np.concatenate([[1.0], np.exp(-0.4 * b[1:5]), np.exp(-0.1 * b[5:])])
    grid = diffusivity_grid_um2_ms()
    transform, equalities = series_constraint_map(np.arange(9)[None, :], np.array([True]), b,
                                                  series, grid)
    assert equalities.shape == (1, transform.shape[1])
    free = truth + rng.normal(0, 0.03, 9)
    result = project_onto_cone(np.eye(9), free, transform, equalities)
    blocks = result.weights[:2 * grid.size].reshape(2, grid.size)
    assert np.isclose(blocks[0].sum(), blocks[1].sum(), rtol=1e-6)
    assert np.isclose(result.coefficients[0], blocks[0].sum(), rtol=1e-6)
    for rows in series:
        decay = result.coefficients[rows]
        _, misfit = nnls(decay_dictionary(b[rows], grid), decay)
        assert misfit < 1e-6 * np.linalg.norm(decay)
        assert np.all(np.diff(decay) <= 1e-9)                           # monotone along b


def test_per_direction_constraint_lowers_the_error_of_anisotropic_decays():
    """Three orthogonal directions, b = 0 plus 3 b-values each, in a tensor voxel D = diag(0.5,
    0.2, 0.1) um^2/ms (the truth made here, independently of the fit): over 20 noise draws the
    joint fit with one constrained decay per direction has lower RMS amplitude errors than
    free amplitudes (before 2026-12-07, directional data got no constraint at all)."""
    rng = np.random.default_rng(21)
    directions = np.eye(3)
    shells = np.array([1000.0, 3000.0, 6000.0])
    b = np.concatenate([[0.0], np.repeat(shells, 3)])
    g = np.vstack([np.full((1, 3), np.nan), np.tile(directions, (3, 1))])
    tensor = np.diag([0.5, 0.2, 0.1])
    decay = np.array([1.0] + [np.exp(-bb / 1000 * d @ tensor @ d) for bb, d in zip(b[1:], g[1:])])
    basis = singlet_basis(NAMES)
    clean = np.stack([synthetic_fid(basis, {n: S0[n] * f for n in NAMES}, lorentz_hz=3.0,
                                    gauss_hz=3.0, shift_hz=1.0, phase_rad=0.2) for f in decay])
    truth = np.array([[S0[n] * f for f in decay] for n in NAMES])
    errors = {"none": [], "completely_monotone": []}
    for _ in range(20):
        noise = rng.normal(0, 0.3, clean.shape) + 1j * rng.normal(0, 0.3, clean.shape)
        for constraint, out in errors.items():
            fits = fit_conditions(clean + noise, basis, DWELL_S, CF_MHZ, b,
                                  cm_options(constraint), directions=g)
            assert fits.fits[0].extra["decay_constraint"] == constraint
            out.append(np.array([fits.series(n)[0] for n in NAMES]) - truth)
    rms = {k: np.sqrt(np.mean(np.square(v), axis=(0, 2))) for k, v in errors.items()}
    print(f"\nRMS amplitude error per metabolite, free {rms['none'].round(4)}, "
          f"per-direction CM {rms['completely_monotone'].round(4)}")
    assert np.all(rms["completely_monotone"] < rms["none"])


def test_directions_without_a_b0_condition_are_still_tied_to_one_s0():
    """Two directions and no b ~ 0 condition: one tie row (S(0) does not depend on the
    direction), and the projection gives both decays the same sum of weights."""
    from pipeline.fitting.monotone import decay_series
    b = np.array([1.0, 3, 6, 1, 3, 6])
    series, _ = decay_series(b, np.array([0, 0, 0, 1, 1, 1]))
    grid = diffusivity_grid_um2_ms(12, 0.01, 1.0)
    transform, equalities = series_constraint_map(np.arange(6)[None, :], np.array([True]), b,
                                                  series, grid)
    assert equalities.shape == (1, transform.shape[1])
    free = np.concatenate([np.exp(-0.3 * b[:3]), 0.8 * np.exp(-0.1 * b[3:])])  # S(0) 1 vs 0.8
    result = project_onto_cone(np.eye(6), free, transform, equalities)
    sums = result.weights[:2 * grid.size].reshape(2, grid.size).sum(axis=1)
    assert sums[0] == pytest.approx(sums[1], rel=1e-6)
    assert 0.8 < sums[0] < 1.0                         # between the two directions' own S(0)


def test_per_direction_linear_map_is_the_derivative_of_the_constrained_solution():
    """The covariance of the per-direction cone travels through ``linear_map``
    (``pinv`` of the design with the equality rows, data columns only): it equals the finite
    difference of the constrained coefficients on the same active face, with a non-diagonal
    metric, three directions and one shared b = 0 (a wrong slice of ``pinv`` would not)."""
    from pipeline.fitting.monotone import decay_series
    rng = np.random.default_rng(8)
    b = np.array([0.0, 1, 3, 6, 1, 3, 6, 1, 3, 6])
    groups = np.array([-1, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    series, _ = decay_series(b, groups)
    grid = diffusivity_grid_um2_ms(12, 0.01, 1.0)
    transform, equalities = series_constraint_map(np.arange(10)[None, :], np.array([True]), b,
                                                  series, grid)
    factor = rng.normal(size=(10, 14))
    gram = factor @ factor.T
    truth = np.concatenate([[1.0], np.exp(-0.3 * b[1:4]), np.exp(-0.15 * b[4:7]),
                            np.exp(-0.05 * b[7:])])
    free = truth + rng.normal(0, 0.02, 10)
    base = project_onto_cone(gram, free, transform, equalities)
    assert base.n_parameters == np.count_nonzero(base.weights) - 2   # 2 independent equalities
    step = 1e-7
    for k in range(10):
        moved = project_onto_cone(gram, free + step * np.eye(10)[k], transform, equalities)
        assert np.array_equal(moved.active, base.active)
        np.testing.assert_allclose((moved.coefficients - base.coefficients) / step,
                                   base.linear_map[:, k], atol=1e-5)
