"""Issue 15 item 3: the reported standard errors are calibrated (full study:
benchmarks/bench_diffusion_coverage.py, 500 decays per case).

Decays follow the consensus simulation protocol; the truth (simulated sticks D_intra, or the
noise-free fit of a representation) is independent of the noisy fits. With n = 300 decays the
share of +/- 1 SE intervals containing the truth has a binomial SD of 2.7 %, so a calibrated SE
(68.3 %) lies within 60.2-76.4 % (3 SD) with probability 0.997.
"""

import numpy as np
import pytest

from diffusion_coverage_support import coverage_case
from pipeline.diffusion.fitting import t_factor

N = 300


@pytest.mark.parametrize("parameter, b_max, sigma, mode, seed", [
    ("ADC", 5.0, 0.02, "known", 1),
    ("ADC", 5.0, 0.05, "biexponential", 2),
    ("K_app", 10.0, 0.01, "known", 3),
    ("D_intra (sticks)", 5.0, 0.05, "known", 4),
    ("D_intra (sticks)", 25.0, 0.02, "biexponential", 5),
])
def test_one_se_interval_coverage_is_calibrated(parameter, b_max, sigma, mode, seed):
    r = coverage_case(parameter, b_max, sigma, N, np.random.default_rng(seed), n_mc_draws=10,
                      sigma_mode=mode)
    p = 0.6827  # P(|Z| < 1); a 3-SD binomial band for N draws: 0.602-0.763 at N = 300
    half = 3.0 * np.sqrt(p * (1 - p) / N)
    assert p - half <= r["coverage_jacobian"] <= p + half, r


def test_t_factor_values():
    """Student-t quantile at 84.13 % over the normal one: Cauchy (1 dof) tan(pi (p - 1/2))."""
    p = 0.8413447460685429
    assert t_factor(1) == pytest.approx(np.tan(np.pi * (p - 0.5)), rel=1e-6)
    assert t_factor(2) == pytest.approx((2 * p - 1) / np.sqrt(2 * p * (1 - p)), rel=1e-6)
    assert t_factor(None) == 1.0 and 1.0 < t_factor(30) < 1.02


def test_estimated_sigma_widens_the_reported_se():
    """fit_model without sigma: SE = Jacobian SE x residual scale x t_factor(n - k)."""
    from pipeline.diffusion.models import MonoExponential
    b = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    s = np.exp(-0.2 * b) + np.array([0.01, -0.01, 0.005, 0.0, -0.005])
    fit = MonoExponential().fit(b, s)
    known = MonoExponential().fit(b, s, sigma=np.sqrt(fit.chi2 / 3))
    assert fit.std_errors[0] == pytest.approx(known.std_errors[0] * t_factor(3), rel=1e-3)
