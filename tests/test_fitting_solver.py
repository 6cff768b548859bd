"""The fit's Levenberg-Marquardt stops at a statistically converged point (issue 13 speed).

Its default stopping rule is a chi-square decrease of about 0.01 per near Gauss-Newton step
(``solver.CONVERGED_CHI2_DECREASE`` over the number of residuals), so the parameters it returns
must lie within a small fraction of their standard errors of the exact least-squares optimum,
found here by SciPy's trust-region solver at machine-precision tolerances.
"""

import numpy as np
import pytest
from scipy.optimize import least_squares

from pipeline.fitting.solver import levenberg_marquardt


def damped_cosines(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Two damped cosines (amplitude, damping 1/s, frequency Hz each): a small non-linear
    model with correlated parameters, like two overlapping lines."""
    out = np.zeros_like(t)
    for a, k, f in params.reshape(-1, 3):
        out += a * np.exp(-k * t) * np.cos(2 * np.pi * f * t)
    return out


def numeric_jacobian(residual, x: np.ndarray) -> np.ndarray:
    step = 1e-7 * np.maximum(np.abs(x), 1.0)
    columns = [(residual(x + np.eye(x.size)[i] * step[i]) - residual(x - np.eye(x.size)[i]
                                                                      * step[i])) / (2 * step[i])
               for i in range(x.size)]
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("n_points, second_line_hz", [(1000, 20.5), (20000, 21.0)])
def test_stops_within_a_tenth_of_the_standard_errors_of_the_optimum(n_points, second_line_hz):
    """Two lines 0.5-1 Hz apart from a start far off: the solver crawls along a correlated
    valley, where a ten times looser stop (1000 points) leaves a parameter 0.5 SE short."""
    rng = np.random.default_rng(n_points)
    t = np.linspace(0.0, 0.5, n_points)
    truth = np.array([1.0, 8.0, 20.0, 0.6, 12.0, second_line_hz])
    sigma = 0.05
    data = damped_cosines(truth, t) + sigma * rng.standard_normal(n_points)

    def residual(x):
        return damped_cosines(x, t) - data

    start = truth * np.array([0.5, 2.0, 1.01, 1.6, 0.5, 0.99])
    lower, upper = np.full(6, -np.inf), np.full(6, np.inf)
    result = levenberg_marquardt(residual, lambda x: numeric_jacobian(residual, x), start,
                                 lower, upper, max_iterations=200)
    exact = least_squares(residual, start, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    jac = numeric_jacobian(residual, exact.x)
    standard_errors = sigma * np.sqrt(np.diag(np.linalg.inv(jac.T @ jac)))
    assert result.status in (1, 2)
    assert np.all(np.abs(result.x - exact.x) < 0.1 * standard_errors), \
        (result.x - exact.x) / standard_errors
    # and it is the optimum, not the truth: the estimate differs from the truth by noise
    assert float(result.cost) == pytest.approx(2 * exact.cost, rel=1e-4)
