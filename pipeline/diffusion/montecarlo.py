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
from pipeline.diffusion.fitting import batch_residual_sd, fisher_covariance, fit_model_batch
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


# --- Table 5 cells (issue 15 item 4) -----------------------------------------------------------

TABLE5_ESTIMATORS = {
    # Table 5 model name: (model class, {Table 5 parameter name: column of the model's params})
    "monoexponential": (MonoExponential, {"ADC": 0}),
    "kurtosis": (Kurtosis, {"ADC": 0, "Kapp": 1}),
    "cylinders": (Cylinders, {"D_intra": 0, "R": 1}),
}


def _make(model_name, b_max, small_delta_ms, big_delta_ms, radius_max_um=None):
    cls = TABLE5_ESTIMATORS[model_name][0]
    if cls is Cylinders:
        model = Cylinders(small_delta_ms, big_delta_ms, b_max_ms_um2=b_max)
        if radius_max_um is not None:  # instance bound shadows the class default (20 um)
            model.upper = (model.upper[0], float(radius_max_um))
        return model
    return cls(b_max_ms_um2=b_max)


def _chained_fits(model, b, clean, sigma, n_draws, rng, fit_s0=True):
    """The paper's chain: draw k adds noise of the SD estimated from the residuals (n - k dof)
    of draw k - 1's fit (draw 0 uses sigma). Returns (n_settings, n_draws, n_params)."""
    sd = np.full(clean.shape[0], float(sigma))
    out = []
    for _ in range(n_draws):
        noisy = clean + rng.normal(size=clean.shape) * sd[:, None]
        fit = fit_model_batch(model, b, noisy, sd[:, None], fit_s0=fit_s0)
        out.append(fit.params)
        # the chain may collapse to zero noise: floor
        sd = np.maximum(batch_residual_sd(model, b, noisy, fit, fit_s0)[0], 1e-9)
    return np.stack(out, axis=1)


def table5_cells(model_name: str, b_max: float, sigma: float, d_values, r_values, n_draws: int, rng,
                 sigma_chain: bool = False, fit_s0: bool = True, radius_max_um=None,
                 b_ms_um2=CONSENSUS_B_MS_UM2,
                 small_delta_ms=CONSENSUS_SMALL_DELTA_MS, big_delta_ms=CONSENSUS_BIG_DELTA_MS) -> dict:
    """Table 5 statistics (percent) of one model at one b_max and sigma over all settings.

    Returns ``{parameter: {"relative_bias": (median, q1, q3), "cv": (median, q1, q3),
    "mean_bias": (median, q1, q3)}}``. relative_bias: quartiles of the per-draw relative error
    (estimate - reference) / reference pooled over settings and draws; cv: SD / |mean| of each
    setting's draws, quartiles across settings; mean_bias: (mean - reference) / reference per
    setting, quartiles across settings (an alternative reading of the table). Reference: the
    simulated D_intra and R; for ADC and K_app the noise-free fit on the same b-range.
    ``sigma_chain``: the paper's chained noise SD (see ``_chained_fits``) instead of a fixed sigma.
    ``fit_s0``: False fits S/S0 with S0 = 1 known (the table's "signal normalised to b = 0"),
    True fits S0 as the app does. ``radius_max_um``: upper bound of the fitted radius (the
    app's default is 20 um).
    """
    b = np.asarray(b_ms_um2, float)
    settings = np.array([(d, r) for d in d_values for r in r_values], float)
    clean = signals.cylinders_powder_average(b, settings[:, :1], settings[:, 1:], small_delta_ms, big_delta_ms)
    model = _make(model_name, b_max, small_delta_ms, big_delta_ms, radius_max_um)
    if sigma_chain:
        est = _chained_fits(model, b, clean, sigma, n_draws, rng, fit_s0)
    else:
        noisy = np.repeat(clean, n_draws, axis=0) + rng.normal(0.0, sigma, (len(settings) * n_draws, b.size))
        est = fit_model_batch(model, b, noisy, sigma, fit_s0=fit_s0).params.reshape(len(settings), n_draws, -1)
    noise_free = fit_model_batch(model, b, clean, sigma, fit_s0=fit_s0).params
    out = {}
    for name, column in TABLE5_ESTIMATORS[model_name][1].items():
        if name in ("D_intra", "R"):
            reference = settings[:, 0 if name == "D_intra" else 1]
        else:
            reference = noise_free[:, column]
        values = est[:, :, column]
        relative = (values - reference[:, None]) / reference[:, None]
        mean = values.mean(axis=1)
        cv = values.std(axis=1, ddof=1) / np.abs(mean)
        pct = [25, 50, 75]
        q1, med, q3 = (100 * np.percentile(relative, pct))
        c1, cmed, c3 = (100 * np.percentile(cv, pct))
        m1, mmed, m3 = (100 * np.percentile((mean - reference) / reference, pct))
        out[name] = {"relative_bias": (float(med), float(q1), float(q3)),
                     "cv": (float(cmed), float(c1), float(c3)),
                     "mean_bias": (float(mmed), float(m1), float(m3))}
    return out


def accurate_and_precise(median, q1, q3, limit_percent: float = 10.0) -> bool:
    """The consensus criterion for one statistic: median and both quartiles within +/- 10 %."""
    return all(abs(float(v)) <= limit_percent for v in (median, q1, q3))


def cramer_rao_cv_percent(model_name: str, b_max: float, sigma: float, d_values, r_values,
                          fit_s0: bool = False, b_ms_um2=CONSENSUS_B_MS_UM2,
                          small_delta_ms=CONSENSUS_SMALL_DELTA_MS, big_delta_ms=CONSENSUS_BIG_DELTA_MS) -> dict:
    """Cramer-Rao lower bound on the CV of each Table 5 parameter, (median, q1, q3) percent
    across settings: sqrt(diag(F^-1)) / value at the noise-free fit, F = J^T J / sigma^2.

    No unbiased estimator has a smaller CV; at low sigma (linear regime) an unconstrained
    least-squares fit attains it, so a published CV well below it needs a biased (constrained or
    regularised) estimator or a different protocol. Settings whose Jacobian is rank-deficient
    have no finite bound: they are left out of the quartiles and named in ``out["notes"]``.
    """
    b = np.asarray(b_ms_um2, float)
    settings = np.array([(d, r) for d in d_values for r in r_values], float)
    clean = signals.cylinders_powder_average(b, settings[:, :1], settings[:, 1:], small_delta_ms, big_delta_ms)
    model = _make(model_name, b_max, small_delta_ms, big_delta_ms)
    fits = fit_model_batch(model, b, clean, sigma, fit_s0=fit_s0)
    keep = model.in_b_range(b)
    covs, notes = [], []
    for setting, params, s0 in zip(settings, fits.params, fits.s0):
        jac = s0 * model.jacobian(b[keep], params)
        if fit_s0:
            jac = np.column_stack([jac, model.predict(b[keep], params)])
        cov, rank = fisher_covariance(jac, sigma)
        covs.append(cov)
        if rank < jac.shape[1]:
            notes.append(f"D_intra {setting[0]:g} um^2/ms, R {setting[1]:g} um: Jacobian rank "
                         f"{rank} < {jac.shape[1]} parameters, no finite Cramer-Rao bound")
    out = {}
    for name, column in TABLE5_ESTIMATORS[model_name][1].items():
        cvs = [100 * np.sqrt(cov[column, column]) / abs(params[column])
               for cov, params in zip(covs, fits.params)]
        finite = np.any(np.isfinite(cvs))
        q1, med, q3 = np.nanpercentile(cvs, [25, 50, 75]) if finite else [np.nan] * 3
        out[name] = (float(med), float(q1), float(q3))
    out["notes"] = notes
    return out
