"""Monte Carlo study of estimator bias and precision (protocol of the dMRS consensus Table 5).

Randomly oriented cylinders (GPA, PGSE) generate the noise-free normalised decay; Gaussian
noise of SD sigma (relative to S(0) = 1) is added; ADC, kurtosis (ADC, K_app) and cylinders
(D_intra, R) are fitted on the b-values up to each truncation b_max with the same estimators
as the app (batch version of ``fit_model``, S0 free). ADC and K_app are compared with their
noise-free fits on the same b-range; D_intra and R with the simulated truth.
"""

from __future__ import annotations

import numpy as np

from pipeline.diffusion import signals
from pipeline.diffusion.fitting import fit_model_batch
from pipeline.diffusion.models import Cylinders, Kurtosis, MonoExponential

CONSENSUS_B_MS_UM2 = (0.0, 1.5, 3.0, 5.0, 8.5, 15.0, 25.0)
CONSENSUS_SMALL_DELTA_MS = 15.0
CONSENSUS_BIG_DELTA_MS = 60.0
PARAMETERS = ("ADC", "K_app", "D_intra", "R")


def _estimators(b_max, small_delta_ms, big_delta_ms):
    """(parameter name, model, column of the model's params) for each reported quantity."""
    mono = MonoExponential(b_max_ms_um2=b_max)
    kurt = Kurtosis(b_max_ms_um2=b_max)
    cyl = Cylinders(small_delta_ms, big_delta_ms, b_max_ms_um2=b_max)
    return (("ADC", mono, 0), ("K_app", kurt, 1), ("D_intra", cyl, 0), ("R", cyl, 1))


def simulate_setting_fits(d_values, r_values, sigma, b_max, n_draws, rng,
                          b_ms_um2=CONSENSUS_B_MS_UM2, small_delta_ms=CONSENSUS_SMALL_DELTA_MS,
                          big_delta_ms=CONSENSUS_BIG_DELTA_MS) -> dict:
    """Relative bias and CV of each parameter for every (D_intra, R) setting at one sigma, b_max.

    Returns ``{parameter: {"bias": (n_settings,), "cv": (n_settings,)}}`` plus ``"settings"``.
    Bias = (mean estimate - reference) / reference; CV = SD / mean of the estimates.
    """
    b = np.asarray(b_ms_um2, float)
    settings = np.array([(d, r) for d in d_values for r in r_values], float)
    clean = signals.cylinders_powder_average(b, settings[:, :1], settings[:, 1:], small_delta_ms, big_delta_ms)
    noisy = np.repeat(clean, n_draws, axis=0) + rng.normal(0.0, sigma, (len(settings) * n_draws, b.size))
    out = {"settings": settings}
    cache = {}
    for name, model, column in _estimators(b_max, small_delta_ms, big_delta_ms):
        if id(model) not in cache:
            cache[id(model)] = (fit_model_batch(model, b, noisy, sigma).params,
                                fit_model_batch(model, b, clean, sigma).params)
        estimates, noise_free = cache[id(model)]
        est = estimates[:, column].reshape(len(settings), n_draws)
        if name in ("D_intra", "R"):
            reference = settings[:, 0] if name == "D_intra" else settings[:, 1]
        else:
            reference = noise_free[:, column]
        mean = est.mean(axis=1)
        out[name] = {"bias": (mean - reference) / reference, "cv": est.std(axis=1, ddof=1) / np.abs(mean)}
    return out


def summarise(values) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile) across settings."""
    q25, med, q75 = np.percentile(np.asarray(values, float), [25, 50, 75])
    return float(med), float(q25), float(q75)
