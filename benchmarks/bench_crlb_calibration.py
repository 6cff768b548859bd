"""Are the app's CRLBs the spread of its estimates? Spread over added noise / CRLB, on spectra
other groups' bases made (issue 13, README "Known limitations").

Each of the first ``--n`` validation spectra of ``bench_vs_lcmodel.py`` (five published bases,
measured lineshapes, MM, baselines, residual water; ``tests/validation_support.py``) is fitted
``--draws`` times with the app's defaults, each time with fresh white noise of the spectrum's
own noise SD added. The spectrum already holds noise of that SD, so each fit sees twice the
variance and its CRLB is divided by sqrt(2) to compare with the spread the added noise makes.
Printed per spectrum and metabolite: SD of the estimates / mean CRLB (1 = calibrated), and over
all spectra the median and 10-90 % range for metabolites with CRLB below 30 %.

``--average-stiffness`` also reports the CRLBs widened by the spread of the amplitudes over the
spline stiffnesses the search scored, weighted by their Akaike weights (model averaging; not the
app's behaviour, measured and not adopted)::

    python benchmarks/bench_crlb_calibration.py --n 10 --draws 80 [--average-stiffness]
"""

from __future__ import annotations

from bench_env import SHARED as DATA  # first: one thread before numpy, sys.path

import argparse
import sys
import warnings

import numpy as np

import validation_support as vs
from pipeline.fitting import baseline, single

NAMES = ("NAA", "Cr", "PCr", "Ins", "Glu", "Gln", "GSH", "Tau")
CALIBRATED_BELOW_PERCENT = 30.0

class StiffnessSpread:
    """Wraps the stiffness search: keeps, for the last fit, the Akaike-weighted covariance of
    the amplitudes (scaled units) over the stiffnesses it scored, about the chosen one."""

    def __init__(self):
        self.spread = None

    def search(self, objective, theta, noise_scaled, stiffness, choices):
        n_obs, scored = objective.n_obs, {}
        grid = sorted({float(stiffness), *map(float, choices)})

        def score(index):
            candidate = (objective if grid[index] == stiffness
                         else objective.with_penalty_scale(np.sqrt(grid[index] / stiffness)))
            residual = candidate.residual(theta)[:n_obs]
            coef = candidate.evaluate(theta)[-1]
            n_linear = np.count_nonzero(coef > 0) + candidate.projector.hat_trace(n_obs)
            scored[index] = (candidate, coef.copy(), baseline.aicc(
                float(residual @ residual) / noise_scaled ** 2, n_linear, n_obs))
            return scored[index][2]

        best = baseline.grid_descent(score, len(grid), grid.index(float(stiffness)))
        criteria = np.array([v[2] for v in scored.values()])
        weights = np.exp(-(criteria - criteria.min()) / 2)
        deviations = np.array([v[1] for v in scored.values()]) - scored[best][1]
        self.spread = np.einsum("k,ki,kj->ij", weights / weights.sum(), deviations, deviations)
        return scored[best][0], grid[best]

    def widened_crlb(self, fit) -> np.ndarray:
        """The fit's CRLBs with the stiffness spread added (unchanged without a search)."""
        if self.spread is None or fit.extra.get("baseline_stiffness") is None:
            return fit.crlb
        to_amplitude = fit.extra["data_scale"] / fit.extra["problem"].column_norms
        return np.sqrt(fit.crlb ** 2 + np.diag(self.spread) * to_amplitude ** 2)


def spread_over_crlb(setup, spectrum, draws: int, spread: StiffnessSpread | None, seed: int):
    """(SD / CRLB, SD / widened CRLB, CRLB %) per name in NAMES over ``draws`` noise draws."""
    clean, n = spectrum.fid, spectrum.fid.size
    sigma = spectrum.noise_sd / np.sqrt(n)
    rng = np.random.default_rng(seed)
    amplitudes, crlbs, widened = [], [], []
    try:
        for _ in range(draws):
            spectrum.fid = clean + sigma * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
            fit, _ = setup.fit_app(spectrum)
            index = [fit.names.index(m) if m in fit.names else None for m in NAMES]
            wide = spread.widened_crlb(fit) if spread else fit.crlb
            amplitudes.append([fit.amplitudes[i] if i is not None else np.nan for i in index])
            crlbs.append([fit.crlb[i] if i is not None else np.nan for i in index])
            widened.append([wide[i] if i is not None else np.nan for i in index])
    finally:
        spectrum.fid = clean
    sd = np.nanstd(np.array(amplitudes), axis=0, ddof=1)
    mean_crlb = np.nanmean(np.array(crlbs), axis=0) / np.sqrt(2)
    mean_wide = np.nanmean(np.array(widened), axis=0) / np.sqrt(2)
    percent = 100 * mean_crlb / np.abs(np.nanmean(np.array(amplitudes), axis=0))
    return sd / mean_crlb, sd / mean_wide, percent


def summary_line(label: str, ratios: np.ndarray) -> str:
    low, high = np.nanpercentile(ratios, [10, 90])
    return (f"{label:28s} median {np.nanmedian(ratios):.3f}  10-90 % {low:.2f}-{high:.2f}  "
            f"highest {np.nanmax(ratios):.2f}  (n = {np.count_nonzero(np.isfinite(ratios))})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="validation spectra (default 10)")
    parser.add_argument("--draws", type=int, default=80, help="noise draws per spectrum")
    parser.add_argument("--cache", default=None, help="basis cache folder")
    parser.add_argument("--average-stiffness", action="store_true",
                        help="also report CRLBs widened by the stiffness choice's spread")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}")
        return 1
    warnings.simplefilter("ignore")
    spread = StiffnessSpread() if args.average_stiffness else None
    if spread:
        single.stiffness_by_aicc = spread.search
    spectra, bases = vs.validation_set(DATA, args.n, seed=0)
    work = vs.scratch_dir()
    setups = {label: vs.AppAndLCModel(source, basis, work, False, None, cache_dir=args.cache)
              for label, (source, basis) in bases.items()}
    plain, wide, percent = [], [], []
    for spectrum in spectra[:args.n]:
        ratio, ratio_wide, pct = spread_over_crlb(setups[spectrum.source], spectrum,
                                                  args.draws, spread, seed=1)
        plain.append(ratio), wide.append(ratio_wide), percent.append(pct)
        print(f"{spectrum.source:24s} SNR {spectrum.params['snr']:5.0f}  " + " ".join(
            f"{m}:{r:.2f}" for m, r in zip(NAMES, ratio)), flush=True)
    vs.remove_dir(work)
    measured = np.array(percent) < CALIBRATED_BELOW_PERCENT
    print(f"\nSD / CRLB over {args.draws} draws, metabolites with CRLB < "
          f"{CALIBRATED_BELOW_PERCENT:g} %:")
    print(summary_line("app CRLBs", np.array(plain)[measured]))
    if spread:
        print(summary_line("widened by stiffness spread", np.array(wide)[measured]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
