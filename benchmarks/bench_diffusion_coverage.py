"""Coverage of +/- 1 SE intervals of ADC, K_app and D_intra on consensus-protocol decays.

For each case (estimator x b_max x sigma) simulates ``--decays`` noisy decays (default 500)
following the dMRS consensus protocol (tests/diffusion_coverage_support.py), fits them as the app does
and prints the share of intervals estimate +/- SE that contain the truth, for the app's
std_error ("app": ``fit_model`` per decay; the Jacobian SE, or the profile-likelihood SE with
the fit bounds when a parameter is held by a bound), the plain Jacobian SE at the optimum, and
the parametric-bootstrap (Monte Carlo) SD; "bound" is the share of decays with a parameter held
by a bound and "app|bnd" the app's coverage among them. Target: 60-76 %
(68.3 % for a calibrated SE). ``--sigma-mode``: known (CRLBs), biexponential (app without
CRLBs), residual (fit_model without sigma).

Usage: nice python benchmarks/bench_diffusion_coverage.py [--decays 500] [--mc-draws 100]
       [--sigma-mode known] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test-only study code
from diffusion_coverage_support import (ESTIMATORS, SIGMA_MODES, TARGET_COVERAGE,  # noqa: E402
                                        binomial_band, coverage_case)

SIGMAS = (0.01, 0.02, 0.05)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decays", type=int, default=500)
    parser.add_argument("--mc-draws", type=int, default=100)
    parser.add_argument("--sigma-mode", choices=SIGMA_MODES, default="known")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    lo, hi = TARGET_COVERAGE
    band = binomial_band(args.decays)
    print(f"{args.decays} decays per case, sigma {args.sigma_mode}, {args.mc_draws} Monte Carlo refits "
          f"per decay; target {100 * lo:.0f}-{100 * hi:.0f} %, binomial 3-SD band around 68.3 %: "
          f"{100 * band[0]:.1f}-{100 * band[1]:.1f} %")
    print(f"{'parameter':18s} {'b_max':>5s} {'sigma':>5s} {'app':>6s} {'Jacobian':>9s} {'MC':>6s} "
          f"{'bound':>6s} {'app|bnd':>7s} {'applic.':>7s} {'Jac|app':>8s} {'MC|app':>7s} {'SE/truth':>8s}")
    start, outside = time.perf_counter(), []
    for parameter, (_, _, b_maxes) in ESTIMATORS.items():
        for b_max in b_maxes:
            for sigma in SIGMAS:
                r = coverage_case(parameter, b_max, sigma, args.decays, rng, args.mc_draws, args.sigma_mode)
                flag = "" if lo <= r["coverage_app"] <= hi else "  <- app's SE outside target"
                if flag:
                    outside.append((parameter, b_max, sigma))
                print(f"{parameter:18s} {b_max:5.0f} {sigma:5.2f} {100 * r['coverage_app']:5.1f}% "
                      f"{100 * r['coverage_jacobian']:8.1f}% {100 * r['coverage_montecarlo']:5.1f}% "
                      f"{100 * r['share_at_bound']:5.1f}% {100 * r['coverage_app_at_bound']:6.1f}% {r['n_applicable']:7d} "
                      f"{100 * r['coverage_jacobian_applicable']:7.1f}% {100 * r['coverage_montecarlo_applicable']:6.1f}% "
                      f"{r['median_relative_se_jacobian']:8.3f}{flag}", flush=True)
    print(f"\n{len(outside)} case(s) with the app's coverage outside the target: {outside}")
    print(f"total {time.perf_counter() - start:.0f} s (measured under load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
