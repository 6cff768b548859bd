"""Calibration of the standard errors of diffusion parameters (issue 15 item 3).

Simulated decays follow the dMRS consensus protocol (Ligneul et al., MRM 2024, Table 5 note):
b = 0, 1.5, 3, 5, 8.5, 15, 25 ms/um^2, PGSE delta/Delta = 15/60 ms, D_intra in 0.20-0.50
um^2/ms and R in 0.25-2.00 um, Gaussian noise of SD sigma on S/S0. For each decay we fit the
estimator as the app does (S0 free, weights 1/sigma) and ask how often the interval
estimate +/- 1 SE contains the truth; a calibrated SE gives about 68 %.

Truths are independent of the fitted noise: for ADC and K_app (representations, no ground truth
in the tissue) the noise-free fit on the same b-range; for D_intra the simulated intra-cellular
diffusivity of randomly oriented sticks (astrosticks, R = 0), the model being fitted.

SEs compared: "app" (``fit_model`` on each decay: its estimate and reported std_error, the
Jacobian SE or, when a parameter is held by a fit bound, the profile-likelihood SE with the
bounds), "jacobian" (covariance at the optimum of the batch fit, ignoring bounds) and "montecarlo"
(parametric bootstrap: refits of the fitted curve plus Gaussian noise of the known or the
residual sigma, SD of the refits, as ``fit_model(uncertainty="montecarlo")``).
"""

from __future__ import annotations

import numpy as np

from pipeline.diffusion import signals
from pipeline.diffusion.applicability import at_either_bound, physical_limit_reasons
from pipeline.diffusion.batch import _batch_jacobian, batch_residual_sd, fit_model_batch
from pipeline.diffusion.fitting import fisher_covariance, t_factor
from pipeline.diffusion.models import BiExponential, Kurtosis, MonoExponential, Sticks
from pipeline.diffusion.montecarlo import (CONSENSUS_B_MS_UM2, CONSENSUS_BIG_DELTA_MS,
                                           CONSENSUS_SMALL_DELTA_MS)

CONSENSUS_D_INTRA_UM2_MS = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50)
CONSENSUS_RADII_UM = (0.25, 0.50, 0.75, 1.00, 1.25, 1.50, 2.00)
ONE_SE_PROBABILITY = 0.6827
TARGET_COVERAGE = (0.60, 0.76)

ESTIMATORS = {
    # parameter label: (model class, column, b_max values where the consensus applies it)
    "ADC": (MonoExponential, 0, (5.0,)),
    "ADC (kurtosis)": (Kurtosis, 0, (5.0, 10.0)),
    "K_app": (Kurtosis, 1, (5.0, 10.0)),
    "D_intra (sticks)": (Sticks, 0, (5.0, 10.0, 25.0)),
}


def jacobian_standard_errors(model, b_ms_um2, params, s0, sigma) -> np.ndarray:
    """Jacobian SEs (N, n_params) of fitted rows ``params`` (N, n_params) with S0 free and a
    known noise SD ``sigma`` (scalar or (N,)); NaN where the Jacobian is singular."""
    b = np.asarray(b_ms_um2, float)
    x = np.column_stack([params, s0])
    base = model.predict_batch(b, x[:, :-1]).copy()
    w = np.ones((x.shape[0], b.size)) / np.reshape(np.broadcast_to(sigma, (x.shape[0],)), (-1, 1))
    jac = _batch_jacobian(model, b, w, x, base, np.append(model.bounds[1], np.inf), True)
    cov, _ = fisher_covariance(jac)
    return np.sqrt(np.clip(np.einsum("nii->ni", cov), 0, None))[:, :-1]


def app_fits(model, b_ms_um2, noisy, sigma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimates, SEs, held-by-a-bound) (N, n_params), (N, n_params), (N,) from ``fit_model``
    on each row of ``noisy`` with the noise SD ``sigma`` (scalar or (N,)) as known: the app's
    own estimator and reported SE (profile likelihood when a parameter is held by a bound)."""
    from pipeline.diffusion.fitting import fit_model
    sd = np.broadcast_to(np.asarray(sigma, float), (noisy.shape[0],))
    fits = [fit_model(model, b_ms_um2, row, sigma=s) for row, s in zip(noisy, sd)]
    return (np.array([f.params for f in fits]), np.array([f.std_errors for f in fits]),
            np.array([bool(f.bound_profile) for f in fits]))


def montecarlo_standard_errors(model, b_ms_um2, params, s0, sigma, n_draws: int, rng) -> np.ndarray:
    """Parametric-bootstrap SEs (N, n_params): ``n_draws`` refits of S0*model(b, params) plus
    Gaussian noise of SD ``sigma`` (scalar or (N,)), all rows in one vectorised batch."""
    b = np.asarray(b_ms_um2, float)
    n = params.shape[0]
    sd = np.broadcast_to(np.asarray(sigma, float), (n,))
    fitted = s0[:, None] * model.predict_batch(b, params)
    data = np.repeat(fitted, n_draws, axis=0) + rng.normal(size=(n * n_draws, b.size)) * np.repeat(sd, n_draws)[:, None]
    refits = fit_model_batch(model, b, data, np.repeat(sd, n_draws)[:, None]).params
    return refits.reshape(n, n_draws, -1).std(axis=1, ddof=1)


def simulate_decays(parameter: str, n_decays: int, sigma: float, rng,
                    b_ms_um2=CONSENSUS_B_MS_UM2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean, simulated D_intra, noisy) normalised decays (n_decays, n_b) with settings drawn uniformly from the
    consensus grid: cylinders (D_intra, R) for ADC/K_app, sticks (D_intra) for D_intra."""
    b = np.asarray(b_ms_um2, float)
    d = rng.choice(CONSENSUS_D_INTRA_UM2_MS, n_decays)[:, None]
    if parameter.startswith("D_intra"):
        clean = signals.sticks_powder_average(b[None, :], d)
    else:
        r = rng.choice(CONSENSUS_RADII_UM, n_decays)[:, None]
        clean = signals.cylinders_powder_average(b, d, r, CONSENSUS_SMALL_DELTA_MS, CONSENSUS_BIG_DELTA_MS)
    clean = np.broadcast_to(clean, (n_decays, b.size))
    return clean, d[:, 0], clean + rng.normal(0.0, sigma, clean.shape)


SIGMA_MODES = ("known", "residual", "biexponential")


def coverage_case(parameter: str, b_max_ms_um2: float, sigma: float, n_decays: int, rng,
                  n_mc_draws: int = 100, sigma_mode: str = "known") -> dict:
    """Share of +/- 1 SE intervals containing the truth, for Jacobian and Monte Carlo SEs.

    ``sigma_mode``: "known" = the true sigma (CRLB-like, the app's usual input); "residual" =
    each decay's residual RMS on the fitted points with n - k degrees of freedom (``fit_model``
    without sigma); "biexponential" = RMS of bi-exponential residuals on all b, n - 4 degrees of
    freedom (the app without CRLBs, consensus 5.2). Estimated sigmas inflate the SEs by the
    Student-t factor of their degrees of freedom (``fitting.t_factor``), as the app does.
    """
    cls, column, _ = ESTIMATORS[parameter]
    model = cls(b_max_ms_um2=b_max_ms_um2)
    b = np.asarray(CONSENSUS_B_MS_UM2, float)
    clean, d_true, noisy = simulate_decays(parameter, n_decays, sigma, rng, b)
    keep = model.in_b_range(b)
    if parameter.startswith("D_intra"):
        truth = d_true
    else:
        truth_all = fit_model_batch(model, b, clean, sigma).params
        truth = truth_all[:, column]
    fit = fit_model_batch(model, b, noisy, sigma)
    factor = 1.0
    if sigma_mode == "known":
        sd = np.full(n_decays, sigma)
    elif sigma_mode == "residual":
        sd, dof = batch_residual_sd(model, b, noisy, fit)
        factor = t_factor(dof)
    elif sigma_mode == "biexponential":
        bi = fit_model_batch(BiExponential(), b, noisy)
        sd, dof = batch_residual_sd(BiExponential(), b, noisy, bi)  # n - 4 dof
        factor = t_factor(dof)
    else:
        raise ValueError(f"sigma_mode must be one of {SIGMA_MODES}, got {sigma_mode!r}")
    if sigma_mode != "known":  # refit with the estimated weights, as the app does
        fit = fit_model_batch(model, b, noisy, sd[:, None])
    estimate = fit.params[:, column]
    valid = np.array([not physical_limit_reasons(model, row) for row in fit.params])
    lo, hi = model.bounds
    valid &= ~np.any(at_either_bound(fit.params, lo, hi), axis=1)
    se_jac = factor * jacobian_standard_errors(model, b[keep], fit.params, fit.s0, sd)[:, column]
    est_all, se_all, at_bound = app_fits(model, b, noisy, sd)
    est_app, se_app = est_all[:, column], factor * se_all[:, column]
    siblings = {}  # the app's coverage of the model's other representation parameters, same decays
    if not parameter.startswith("D_intra"):
        for label, (cls_other, col, _) in ESTIMATORS.items():
            if cls_other is cls:
                err = np.abs(est_all[:, col] - truth_all[:, col])
                siblings[label] = float(np.mean(err <= np.nan_to_num(factor * se_all[:, col], nan=np.inf)))
    se_mc = (factor * montecarlo_standard_errors(model, b[keep], fit.params, fit.s0, sd, n_mc_draws,
                                                 rng)[:, column] if n_mc_draws > 1 else np.full(n_decays, np.nan))
    error = np.abs(estimate - truth)
    inside_jac = error <= np.nan_to_num(se_jac, nan=np.inf)
    inside_mc = error <= se_mc
    inside_app = np.abs(est_app - truth) <= np.nan_to_num(se_app, nan=np.inf)
    return {"parameter": parameter, "b_max": b_max_ms_um2, "sigma": sigma, "n": n_decays,
            "coverage_jacobian": float(np.mean(inside_jac)),
            "coverage_montecarlo": float(np.mean(inside_mc)),
            "coverage_app": float(np.mean(inside_app)),
            "coverage_app_same_model": siblings,
            "share_at_bound": float(np.mean(at_bound)),
            "coverage_app_at_bound": float(np.mean(inside_app[at_bound])) if at_bound.any() else np.nan,
            "n_applicable": int(valid.sum()),
            "coverage_jacobian_applicable": float(np.mean(inside_jac[valid])) if valid.any() else np.nan,
            "coverage_montecarlo_applicable": float(np.mean(inside_mc[valid])) if valid.any() else np.nan,
            "median_relative_se_jacobian": float(np.nanmedian(se_jac / np.abs(truth))),
            "median_relative_se_montecarlo": float(np.median(se_mc / np.abs(truth))),
            "median_relative_se_app": float(np.nanmedian(se_app / np.abs(truth)))}


def binomial_band(n: int, p: float = ONE_SE_PROBABILITY, z: float = 3.0) -> tuple[float, float]:
    """Range of the observed share for n draws at probability p, +/- z binomial SDs."""
    half = z * np.sqrt(p * (1 - p) / n)
    return p - half, p + half
