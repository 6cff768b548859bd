"""Are the ADC standard errors of ``_diffusion.tsv`` the spread of the ADC, end to end from
spectra? Measured on the published 7 T dMRS set (data the project did not make).

The set's condition averages as the app makes them (``preprocess_acquisition`` with the
``[preprocessing]`` defaults, ``bench_published_b0.app_default_averages``) get independent
complex white noise added, of SD ``k`` times the set's own noise (measured off-signal per
condition, ``pipeline.qc.metrics.noise_sd``, median over conditions, converted to the FID's
per-component SD); each realisation is fitted as the app fits it (``fit_conditions`` with the
``[fitting]`` defaults, the published basis truncated to 1024 points with the default lipid
components) and its amplitudes and CRLBs go through the functions the diffusion stage
(``workflows.interfaces.diffusion.DiffusionModels``) calls: ``amplitudes_table`` ->
``amplitude_series`` -> ``diffusion_table`` (models: monoexponential ADC on b <= 5 ms/um^2
and sticks D_intra; the other models do not change these rows).

The original noise: every fit holds the set's own noise too, which is the same in every
realisation, so the spread over realisations is that of the added noise only while the
reported SE is that of both. Printed per metabolite and parameter:

- ``SD``: the SD of the estimate over realisations (the added noise's spread);
- ``SE``: the median reported ``std_error``; ``SE0`` (``wid0``: its widening factor): the
  reported SE of the fit without added noise; ``SE_add`` = sqrt(SE^2 - SE0^2), the part of
  the SE the added noise should make (independent of how well the original noise was
  measured; 0 and ``SD/SE_add`` NaN where the widening made SE0 the larger);
- ``SD/SE_add`` (1 = calibrated) and, as a check on the same thing through the measured noise,
  ``SD/(SE k/sqrt(1+k^2))``;
- ``cov0``: the fraction of realisations whose estimate lies within +-SE_add of the no-added-
  noise estimate (68 % when calibrated); ``covT``: within +-SE (as reported) of the truth;
- ``wid``: the fraction of realisations whose SE the lack-of-fit test widened, and ``SDun/SE``
  with the unwidened SE (the reported one divided by the widening factor the note gives).

Truth: the published decays S(b)/S(0) (``tests/test_fitting_accuracy.PREGAME_GT_DECAY``) fitted
by the same ``diffusion_table`` call, with the no-added-noise fit's amplitude CRLBs as weights
(the ADC over the same b-range and weights; sticks D_intra of the true decay).

Each table is printed twice: with the amplitudes' covariance across conditions
(``_desc-amplitudes_covariance.tsv``, which the diffusion stage reads since 2026-12-08: the SEs are
those of the weighted fit under correlated noise) and with the CRLBs taken as independent
(before), from the same fits.

``--amplitudes`` also prints, per metabolite, the SD over realisations of S(b)/S(0) against its
CRLB-propagated SE and the correlation of the amplitudes between b = 0 and b = 1, 3 ms/um^2
(the joint fit's amplitudes share lineshape, phase, baseline and the decay constraint).

Runtime (2026-12-07, 2 cores shared with another job, under ``nice``): 2.5-4 s per fit;
60 realisations at k = 1 and 2 (121 fits) took 302 s, the default 40 about 3-5 minutes::

    nice python benchmarks/bench_adc_se_calibration.py [--realisations 40] [--factors 1 2]
        [--seed 0] [--amplitudes]
"""

from __future__ import annotations

from bench_env import SHARED  # noqa: F401  first: one thread before numpy, sys.path

import argparse
import re
import time

import numpy as np

from bench_published_b0 import FOLDER, app_basis, app_default_averages
from test_fitting_accuracy import PREGAME_GT_DECAY
from test_fitting_support import truncated
from bids_app.config import load_config
from pipeline.diffusion import diffusion_table
from pipeline.diffusion.amplitudes import amplitude_series
from pipeline.diffusion.powder import shell_hints
from pipeline.fitting import FitOptions, fit_conditions
from pipeline.fitting.amplitude_covariance import amplitude_covariances
from pipeline.fitting.conditions import amplitudes_table
from pipeline.io.basis_formats import read_basis
from pipeline.io.nifti_mrs import read_nifti_mrs
from pipeline.qc.metrics import noise_sd

METABOLITES = ("tNAA", "tCr", "tCho", "Ins", "Glu")
MODELS = ("monoexponential", "sticks")
PARAMETERS = (("monoexponential", "ADC"), ("sticks", "D_intra"))
WIDENED = re.compile(r"SEs widened by sqrt\(chi\^2/dof\) = ([0-9.eE+-]+)")


def fid_noise_sd(averages: np.ndarray, dwell_s: float, cf_mhz: float) -> float:
    """Per-component SD of the FIDs' noise: the off-signal SD of each condition's real
    spectrum (unnormalised FFT: sqrt(n) times the FID's), median over conditions."""
    n = averages.shape[-1]
    return float(np.median([noise_sd(f, dwell_s, cf_mhz) for f in averages]) / np.sqrt(n))


def diffusion_estimates(series: dict, acq, correlated: bool = True) -> dict:
    """(metabolite, model, parameter) -> (value, std_error, widening factor or 1) of the rows
    the diffusion stage writes for ``series`` (metabolite -> (amplitudes, crlbs, covariance
    across conditions)); ``correlated`` False: the CRLBs taken as independent (before 2026-12-08)."""
    options = load_config()["diffusion"]
    rows = diffusion_table({m: v[:2] for m, v in series.items()}, acq.b_values_s_mm2,
                           covariances={m: v[2] for m, v in series.items()} if correlated else None,
                           models=MODELS,
                           powder_method=options["powder_method"], uncertainty="jacobian",
                           **shell_hints(acq.metadata, acq.n_conditions))
    out = {}
    for r in rows:
        found = WIDENED.search(r["note"] or "")
        out[(r["metabolite"], r["model"], r["parameter"])] = (
            r["value"], r["std_error"], float(found.group(1)) if found else 1.0)
    return out


def fitted_series(averages: np.ndarray, basis, acq, options) -> dict:
    """The app's joint fit of ``averages``: metabolite -> (amplitudes, crlbs, covariance across
    conditions) for ``METABOLITES`` (the cap flag, ``applicable`` only, changes no value or
    SE)."""
    fits = fit_conditions(averages, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2, options)
    series = amplitude_series(amplitudes_table(fits))
    covariances = amplitude_covariances(fits)
    return {m: (*series[m], covariances[m]) for m in METABOLITES}


def truth_estimates(reference: dict, acq, correlated: bool = True) -> dict:
    """The same rows for the published decays, weighted by ``reference``'s CRLBs and
    covariance (scaled to a unit S(0))."""
    series = {m: (np.asarray(PREGAME_GT_DECAY[m]), crlbs / amps[0], cov / amps[0] ** 2)
              for m, (amps, crlbs, cov) in reference.items()}
    return diffusion_estimates(series, acq, correlated)


def published_set() -> tuple:
    """The set's acquisition, the app's basis for it, the ``[fitting]`` defaults and the
    condition averages the app fits."""
    acq = read_nifti_mrs(FOLDER / "nifti" / "synthetic.nii.gz")
    basis = app_basis(truncated(read_basis(FOLDER / "basis_STEAM_TE45_TM60.BASIS"), 1024))
    return acq, basis, FitOptions.from_dict(load_config()["fitting"]), app_default_averages(acq)


def realisations(published: tuple, n_realisations: int, k: float, seed: int,
                 correlated: bool = True) -> tuple:
    """``n_realisations`` fits with noise of ``k`` times the set's own added: their
    (estimates, series) lists, beside the no-added-noise fit's estimates and the truth's
    (``correlated``: the diffusion fits with the amplitudes' covariance across conditions, the app's
    since 2026-12-08; False: as independent, before; with ``series`` both are made again from
    those lists by :func:`estimates_of`)."""
    acq, basis, options, averages = published
    sigma0 = fid_noise_sd(averages, acq.dwell_s, acq.cf_mhz)
    reference = fitted_series(averages, basis, acq, options)
    rng = np.random.default_rng(seed)
    draws, amps = [], []
    for _ in range(n_realisations):
        noise = rng.normal(size=averages.shape) + 1j * rng.normal(size=averages.shape)
        series = fitted_series(averages + k * sigma0 * noise, basis, acq, options)
        draws.append(diffusion_estimates(series, acq, correlated))
        amps.append(series)
    return (draws, amps, diffusion_estimates(reference, acq, correlated),
            truth_estimates(reference, acq, correlated), reference)


def estimates_of(amps: list, reference: dict, acq, correlated: bool) -> tuple:
    """(draws, est0, truth) of :func:`realisations`' fitted series, with or without the covariance."""
    return ([diffusion_estimates(s, acq, correlated) for s in amps],
            diffusion_estimates(reference, acq, correlated), truth_estimates(reference, acq, correlated))


def spread_over_se(draws: list, key: tuple, k: float) -> float:
    """SD of the estimate over realisations / the added noise's share (k/sqrt(1+k^2)) of the
    median SE before the lack-of-fit widening (pure noise propagation; 1 = calibrated)."""
    value = np.array([d[key][0] for d in draws])
    unwidened = np.array([d[key][1] / d[key][2] for d in draws])
    return float(np.std(value, ddof=1) / (np.median(unwidened) * k / np.sqrt(1 + k * k)))


def run(n_realisations: int, factors, seed: int, amplitudes: bool) -> None:
    start = time.time()
    published = published_set()
    acq, _, _, averages = published
    print(f"original noise SD {fid_noise_sd(averages, acq.dwell_s, acq.cf_mhz):.3g} per FID "
          f"component (off-signal); {n_realisations} realisations per factor")
    for k in factors:
        draws, amps, est0, truth, reference = realisations(published, n_realisations, k, seed)
        print("\nwith the amplitudes' covariance across conditions (the app's since 2026-12-08):")
        print_table(k, draws, est0, truth)
        print("\nindependent CRLBs (before 2026-12-08):")
        print_table(k, *estimates_of(amps, reference, acq, correlated=False))
        if amplitudes:
            print_amplitudes(amps, k, acq)
    print(f"total {time.time() - start:.0f} s")


def print_table(k: float, draws: list, est0: dict, truth: dict) -> None:
    """One row per metabolite and parameter (see the module docstring)."""
    print(f"\nadded noise {k:g} x the original (expected SD/SE = k/sqrt(1+k^2) = "
          f"{k / np.sqrt(1 + k * k):.3f} before the original noise is taken out)")
    print(f"{'':8s}{'param':8s} {'truth':>7s} {'est0':>7s} {'mean':>7s} {'SD':>7s} {'SE':>7s} "
          f"{'SE0':>7s} {'SE_add':>7s} {'SD/SEad':>7s} {'SD/SEk':>7s} {'cov0':>5s} {'covT':>5s} "
          f"{'wid':>5s} {'SDun/SE':>7s} {'wid0':>5s}")
    for m in METABOLITES:
        for model, p in PARAMETERS:
            key = (m, model, p)
            value = np.array([d[key][0] for d in draws])
            se = np.array([d[key][1] for d in draws])
            widen = np.array([d[key][2] for d in draws])
            sd = float(np.std(value, ddof=1))
            se_med, se0 = float(np.median(se)), est0[key][1]
            se_add = np.sqrt(max(se_med ** 2 - se0 ** 2, 0.0))
            se_add_each = np.sqrt(np.clip(se ** 2 - se0 ** 2, 0.0, None))
            cov0 = np.mean(np.abs(value - est0[key][0]) <= se_add_each)
            cov_t = np.mean(np.abs(value - truth[key][0]) <= se)
            print(f"{m:8s}{p:8s} {truth[key][0]:7.4f} {est0[key][0]:7.4f} {value.mean():7.4f} "
                  f"{sd:7.4f} {se_med:7.4f} {se0:7.4f} {se_add:7.4f} "
                  f"{sd / se_add if se_add > 0 else np.nan:7.2f} "
                  f"{sd / (se_med * k / np.sqrt(1 + k * k)):7.2f} {cov0:5.2f} {cov_t:5.2f} "
                  f"{np.mean(widen > 1):5.2f} {spread_over_se(draws, key, k):7.2f} {est0[key][2]:5.2f}")


def print_amplitudes(amps: list, k: float, acq) -> None:
    """Per metabolite: SD over realisations of the amplitudes and of S(b)/S(0) at b = 1, 3
    ms/um^2 against the added noise's share of the CRLBs (k/sqrt(1+k^2) of them) and of the SE
    they give as if independent, and the amplitudes' correlation with b = 0 (over the
    realisations, and the median of what ``_desc-amplitudes_covariance.tsv`` gives)."""
    print("\nSD over realisations / the added noise's share of the CRLB (A) and of the SE of "
          "S(b)/S(0) from the CRLBs as if independent; corr(A0, Ab)")
    for m in METABOLITES:
        a = np.array([s[m][0] for s in amps])
        crlb = np.median(np.array([s[m][1] for s in amps]), axis=0) * k / np.sqrt(1 + k * k)
        ratio = a / a[:, :1]
        parts = []
        for c in (1, 2):
            se = ratio[:, c].mean() * np.hypot(crlb[0] / a[:, 0].mean(), crlb[c] / a[:, c].mean())
            corr = np.corrcoef(a[:, 0], a[:, c])[0, 1]
            written = np.median([s[m][2][0, c] / np.sqrt(s[m][2][0, 0] * s[m][2][c, c])
                                 for s in amps])
            parts.append(f"b={acq.b_values_s_mm2[c] / 1000:g}: {np.std(ratio[:, c], ddof=1) / se:5.2f} "
                         f"corr {corr:+.2f} (file {written:+.2f}) "
                         f"SD(A)/CRLB {np.std(a[:, c], ddof=1) / crlb[c]:4.2f}")
        print(f"{m:6s} SD(A0)/CRLB {np.std(a[:, 0], ddof=1) / crlb[0]:4.2f}  " + "  ".join(parts))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realisations", type=int, default=40)
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 2.0],
                        help="added noise SD in units of the set's own")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amplitudes", action="store_true",
                        help="also the amplitude ratios' spread and correlations")
    args = parser.parse_args(argv)
    if not FOLDER.is_dir():
        print(f"published set not found at {FOLDER}")
        return 1
    run(args.realisations, args.factors, args.seed, args.amplitudes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
