"""Small version of the consensus Table 5 Monte Carlo (full run: benchmarks/bench_diffusion_table5.py)."""

import numpy as np
import pytest

from pipeline.diffusion import fit_all_models, signals
from pipeline.diffusion.models import Cylinders
from pipeline.diffusion.montecarlo import (CONSENSUS_B_MS_UM2, CONSENSUS_BIG_DELTA_MS,
                                           CONSENSUS_SMALL_DELTA_MS, simulate_setting_fits)

B = np.array(CONSENSUS_B_MS_UM2)


@pytest.fixture(scope="module")
def low_noise():
    return simulate_setting_fits([0.3], [2.0], 0.01, 25.0, 250, np.random.default_rng(11))


@pytest.fixture(scope="module")
def high_noise():
    return simulate_setting_fits([0.3], [1.0], 0.04, 25.0, 250, np.random.default_rng(12))


def test_d_intra_unbiased_and_cv_matches_jacobian(low_noise):
    assert abs(low_noise["D_intra"]["bias"][0]) < 0.03
    model = Cylinders(CONSENSUS_SMALL_DELTA_MS, CONSENSUS_BIG_DELTA_MS)
    clean = model.predict(B, (0.3, 2.0))
    predicted_cv = model.fit(B, clean, sigma=0.01).std_errors[0] / 0.3
    assert low_noise["D_intra"]["cv"][0] == pytest.approx(predicted_cv, rel=0.3)


def test_adc_and_kurtosis_unbiased_against_noise_free_fit(low_noise):
    for name in ("ADC", "K_app"):
        cv = low_noise[name]["cv"][0]
        assert abs(low_noise[name]["bias"][0]) < 4 * cv / np.sqrt(250) + 0.01


def test_radius_precision_follows_the_applicability_rule(low_noise, high_noise):
    """R is precise where the rule reports it and unreliable where the rule falls back to sticks."""
    assert low_noise["R"]["cv"][0] < 0.3 and abs(low_noise["R"]["bias"][0]) < 0.1
    assert high_noise["R"]["cv"][0] > 0.5
    for (d, r, sigma), expected in (((0.3, 2.0, 0.01), 1), ((0.3, 1.0, 0.04), 0)):
        clean = signals.cylinders_powder_average(B, d, r, CONSENSUS_SMALL_DELTA_MS, CONSENSUS_BIG_DELTA_MS)
        rows = fit_all_models(B, clean, sigma, models=("cylinders",), n_draws=0,
                              small_delta_ms=CONSENSUS_SMALL_DELTA_MS, big_delta_ms=CONSENSUS_BIG_DELTA_MS)
        (radius,) = [x for x in rows if x["model"] == "cylinders" and x["parameter"] == "radius"]
        assert radius["applicable"] == expected
