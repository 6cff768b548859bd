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
