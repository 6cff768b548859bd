"""Powder averaging, the direction-count check and diffusion tensor spectroscopy."""

import numpy as np
import pytest

from pipeline.diffusion import signals
from pipeline.diffusion.powder import (check_direction_count, direction_average_error,
                                       fibonacci_hemisphere, powder_average, shell_labels)
from pipeline.diffusion.tensor import fit_tensor

INVIVO_DIRS = np.array([[1, 1, -0.5], [1, -0.5, 1], [-0.5, 1, 1]]) / 1.5


def test_shells_group_cross_term_b_values():
    b = np.array([0, 907, 2155, 3956, 903, 2148, 3945, 901, 2144, 3940]) / 1000.0
    labels = shell_labels(b)
    assert labels.max() == 3
    assert len(set(labels[[1, 4, 7]])) == 1 and len(set(labels[[3, 6, 9]])) == 1


def test_geometric_mean_of_orthogonal_directions_gives_trace():
    tensor = np.array([[0.3, 0.05, 0.0], [0.05, 0.12, 0.02], [0.0, 0.02, 0.09]])
    b = np.array([0.0, 2.0, 2.0, 2.0])
    g = np.vstack([[0, 0, 1.0], INVIVO_DIRS])
    s = np.exp(-b * np.einsum("ni,ij,nj->n", g, tensor, g))
    avg = powder_average(b, s, np.full(4, 0.01), method="geometric")
    assert avg.amplitude[1] == pytest.approx(np.exp(-2.0 * np.trace(tensor) / 3), rel=1e-12)
    assert avg.n_directions.tolist() == [1, 3]
    assert avg.sigma[1] < 0.01


def test_arithmetic_mean_over_many_directions_approaches_powder_average():
    dirs = fibonacci_hemisphere(400)
    b = np.concatenate([[0.0], np.full(400, 10.0)])
    fibre = np.array([0.3, 0.4, np.sqrt(0.75)])
    s = np.concatenate([[1.0], np.exp(-10.0 * 0.4 * (dirs @ fibre) ** 2)])
    avg = powder_average(b, s)
    assert avg.amplitude[1] == pytest.approx(float(signals.sticks_powder_average(10.0, 0.4)), rel=5e-3)


def test_powder_average_bad_input():
    with pytest.raises(ValueError, match="method"):
        powder_average([0, 1], [1, 0.5], method="median")
    with pytest.raises(ValueError, match="differ"):
        powder_average([0, 1], [1.0])


def test_direction_count_check_scales_with_b_d_and_anisotropy():
    low = direction_average_error(0.2, 0.5, INVIVO_DIRS)[0]
    high = direction_average_error(4.0, 0.5, INVIVO_DIRS)[0]
    assert low < 0.01 < high
    ok, note = check_direction_count(4.0, INVIVO_DIRS, d_intra=0.5, anisotropy=1.0)
    assert not ok and "directions would be needed" in note
    ok, _ = check_direction_count(4.0, INVIVO_DIRS, d_intra=0.5, anisotropy=0.0)
    assert ok
    ok, _ = check_direction_count(4.0, fibonacci_hemisphere(60), d_intra=0.5, anisotropy=1.0)
    assert ok


def test_tensor_fit_recovers_known_tensor_and_rejects_too_few_directions():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    evals = np.array([0.35, 0.15, 0.1])
    tensor = q @ np.diag(evals) @ q.T
    dirs = fibonacci_hemisphere(12)
    b = np.concatenate([[0.0], np.full(12, 1.5), np.full(12, 3.0)])
    g = np.vstack([[np.nan] * 3, dirs, dirs])
    s = 2.0 * np.exp(-b * np.einsum("ni,ij,nj->n", np.nan_to_num(g), tensor, np.nan_to_num(g)))
    fit = fit_tensor(b, g, s, sigma=0.01)
    assert np.allclose(fit.eigenvalues, evals, rtol=1e-8)
    assert fit.md == pytest.approx(evals.mean(), rel=1e-8)
    assert abs(abs(fit.eigenvectors[:, 0] @ q[:, 0]) - 1) < 1e-8
    assert fit.s0 == pytest.approx(2.0)
    with pytest.raises(ValueError, match="6 non-collinear"):
        fit_tensor(b[:4], np.vstack([[np.nan] * 3, INVIVO_DIRS]), s[:4])


# F7: a direction acquired twice counts once in the powder average.
ANISO_TENSOR = np.diag([0.4, 0.1, 0.1])  # um^2/ms, D = 0.4 along x
XYZ = np.eye(3)


def _directional_series(b_values, dirs):
    """Conditions b x dirs (b = 0 once, NaN direction) of the anisotropic tensor, noise-free."""
    b = np.concatenate([[0.0], np.repeat(b_values, len(dirs))])
    g = np.vstack([[np.nan] * 3, np.tile(dirs, (len(b_values), 1))])
    s = np.ones(b.size)
    s[1:] = np.exp(-b[1:] * np.einsum("ni,ij,nj->n", g[1:], ANISO_TENSOR, g[1:]))
    return b, g, s


def test_repeated_direction_counts_once_in_powder_average():
    """x, y, z, x (and -x: equal up to sign) average to the mean over the 3 distinct
    directions, (exp(-0.4 b) + 2 exp(-0.1 b)) / 3, not the condition mean."""
    from pipeline.diffusion.powder import group_shells
    for repeat in ([1, 0, 0], [-1, 0, 0]):
        b, g, s = _directional_series(np.array([1.0, 3.0]), np.vstack([XYZ, repeat]))
        shells = group_shells(b, g)
        avg = powder_average(b, s, np.full(b.size, 0.01), labels=shells.labels, directions=g)
        truth = (np.exp(-0.4 * avg.b_ms_um2) + 2 * np.exp(-0.1 * avg.b_ms_um2)) / 3
        np.testing.assert_allclose(avg.amplitude, truth, rtol=1e-12)
        # x twice at weight 1/6 each, y and z 1/3: SD of sum w_i sigma_i
        assert avg.sigma[1] == pytest.approx(0.01 * np.sqrt(2 / 36 + 2 / 9), rel=1e-12)
        assert shells.n_directions.tolist() == [1, 3, 3]


def test_repeated_direction_geometric_and_fid_average_share_the_weights():
    """The geometric mean and the preprocessing's FID-level powder average weight the
    directions alike: exp(-b trace/3) for x, y, z, x; the FIDs' shell mean is the mean over
    distinct directions."""
    from pipeline.diffusion.powder import group_shells
    from pipeline.preprocess.average import powder_average as fid_powder_average
    b, g, s = _directional_series(np.array([2.0]), np.vstack([XYZ, [1, 0, 0]]))
    labels = group_shells(b, g).labels
    geo = powder_average(b, s, labels=labels, directions=g, method="geometric")
    assert geo.amplitude[1] == pytest.approx(np.exp(-2.0 * 0.6 / 3), rel=1e-12)
    fids = s[:, None] * np.exp(1j * np.linspace(0, 1, 8))[None, :]
    averaged, shell_b = fid_powder_average(fids, b * 1000, labels=labels, directions=g)
    expected = (np.exp(-0.8) + 2 * np.exp(-0.2)) / 3
    np.testing.assert_allclose(averaged[1], expected * np.exp(1j * np.linspace(0, 1, 8)),
                               rtol=1e-12)
    assert shell_b.tolist() == [0.0, 2000.0]


# F6: shells of sorted b do not chain by neighbour-to-neighbour steps.
def test_evenly_spaced_b_values_stay_separate_shells():
    """b = 0, 0.5, ..., 10 ms/um^2: every b is its own shell (15 % of the shell's first b),
    so a b <= 5 limit keeps the 11 points at or below 5 (the neighbour rule made 3.5-10 one
    shell of mean 6.75 and kept 7)."""
    from pipeline.diffusion.powder import group_shells, shells_within
    b = np.arange(0, 10.01, 0.5)
    shells = group_shells(b)
    assert shells.b_mean_ms_um2.size == b.size
    assert int(shells_within(shells, 5.0).sum()) == 11


def test_tolerance_shells_group_cross_terms_without_chaining():
    """Cross-term b-values (spread < 1 %) and repeats form shells; a run of 5 % steps does not
    chain into one shell (each b within 15 % of the previous; 1.0-1.2 were one shell)."""
    from pipeline.diffusion.powder import group_shells
    b = np.array([0.0, 0.0, 0.901, 0.907, 0.903, 2.14, 2.155, 2.14, 4.0, 4.2, 4.41, 4.63, 4.86])
    shells = group_shells(b)
    assert shells.labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(shells.b_mean_ms_um2[:3], [0.0, 0.903666666, 2.145], rtol=1e-8)


@pytest.mark.parametrize("n_directions", [20, 30, 64])
def test_dense_direction_schemes_weigh_every_direction_equally(n_directions):
    """Neighbours of a dense scheme (10-20 deg apart) are distinct directions, not repeats:
    each counts 1/n (with the 25 deg tensor tolerance 30 directions fell into 16 groups and the
    powder average of a tensor voxel was about 4.5 % off)."""
    from pipeline.diffusion.powder import direction_weights, fibonacci_hemisphere

    weights = direction_weights(np.zeros(n_directions, int), fibonacci_hemisphere(n_directions))
    np.testing.assert_allclose(weights, 1.0 / n_directions)


def test_a_wide_cross_term_shell_stays_one_shell():
    """b = 1.42, 1.5, 1.6 (directions with their own cross-terms) beside a shell at 0.95-1.08:
    one shell of three directions, not three one-direction shells."""
    from pipeline.diffusion.powder import shell_labels

    labels = shell_labels(np.array([0.0, 0.95, 1.0, 1.08, 1.42, 1.5, 1.6]), 0.15)
    assert labels.tolist() == [0, 1, 1, 1, 2, 2, 2]
