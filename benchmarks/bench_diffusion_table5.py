"""Reproduction of Table 5 of the dMRS consensus (Ligneul et al., MRM 2024) by Monte Carlo.

Reads the paper's table (../shared/data/dmrs_consensus_table5/table5.csv, or --table) and
simulates its protocol: randomly oriented cylinders (GPA, PGSE delta/Delta = 15/60 ms), b = 0,
1.5, 3, 5, 8.5, 15, 25 ms/um^2, D_intra in {0.20, ..., 0.50} um^2/ms x R in {0.25, 0.50, 0.75,
1.00, 1.25, 1.50, 2.00} um (49 settings), Gaussian noise sigma in {0.01, 0.02, 0.04, 0.1} on
S/S0, ``--draws`` per setting (paper: 250), fits on b <= b_max = 5, 10, 25 ms/um^2 with the
app's estimators (batch least squares; S0 = 1 known, the table's "signal normalised to b = 0",
or with --s0 free fitted as the app does). For every cell of the paper's table it prints
our median [Q1, Q3] beside the paper's, both "accurate and precise" verdicts (median and both
quartiles within +/- 10 %), whether our median lies inside the paper's IQR, and the totals.

Statistics (pipeline.diffusion.montecarlo.table5_cells): relative bias = quartiles of the
per-draw relative error pooled over settings and draws (reference: simulated D_intra/R, and
the noise-free fit for ADC/K_app); CV = SD/mean per setting, quartiles across settings.

--sigma-chain reproduces the paper's chained noise (each draw's SD estimated from the previous
draw's fit residuals) instead of a fixed sigma; without --quick both variants are run.

Usage: nice python benchmarks/bench_diffusion_table5.py [--quick] [--draws 250] [--seed 0]
       [--table PATH] [--out FILE.tsv] [--sigma-chain] [--s0 fixed|free] [--radius-max-um R]
       [--cramer-rao]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from pipeline.diffusion.montecarlo import accurate_and_precise, cramer_rao_cv_percent, table5_cells

D_INTRA_UM2_MS = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50)
RADII_UM = (0.25, 0.50, 0.75, 1.00, 1.25, 1.50, 2.00)
COLUMNS = ("statistic", "model", "b_max_ms_um2", "parameter", "sigma", "median_percent",
           "q1_percent", "q3_percent")
DEFAULT_TABLE = (Path(os.environ.get("DMRS_BIDS_SHARED_DATA",
                                     Path(__file__).resolve().parents[1].parent / "shared" / "data"))
                 / "dmrs_consensus_table5" / "table5.csv")


def read_table5(path) -> list[dict]:
    """Rows of the paper's Table 5 CSV (numbers as float), in file order."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Table 5 CSV not found: {path} (pass --table or set DMRS_BIDS_SHARED_DATA)")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise ValueError(f"{path}: expected columns {COLUMNS}")
    for r in rows:
        for k in ("b_max_ms_um2", "sigma", "median_percent", "q1_percent", "q3_percent"):
            r[k] = float(r[k])
    return rows


def simulate(paper_rows, n_draws, seed, sigma_chain, fit_s0=False, radius_max_um=None) -> dict:
    """Our cells keyed like the paper's rows: (statistic, model, b_max, parameter, sigma)."""
    rng = np.random.default_rng(seed)
    combos = sorted({(r["model"], r["b_max_ms_um2"], r["sigma"]) for r in paper_rows})
    ours = {}
    for model, b_max, sigma in combos:
        t0 = time.perf_counter()
        cells = table5_cells(model, b_max, sigma, D_INTRA_UM2_MS, RADII_UM, n_draws, rng, sigma_chain,
                             fit_s0, radius_max_um)
        for parameter, stats in cells.items():
            for statistic in ("relative_bias", "cv"):
                ours[(statistic, model, b_max, parameter, sigma)] = stats[statistic]
            ours[("mean_bias", model, b_max, parameter, sigma)] = stats["mean_bias"]
        print(f"  simulated {model:15s} b_max {b_max:4g} sigma {sigma:<5g} ({time.perf_counter() - t0:.1f} s)",
              flush=True)
    return ours


def compare(paper_rows, ours, label) -> dict:
    """Print the cell-by-cell comparison; return the agreement counts."""
    print(f"\n=== {label} ===")
    print(f"{'statistic':13s} {'model':15s} {'b_max':>5s} {'param':7s} {'sigma':>5s} | "
          f"{'ours median [Q1, Q3] %':>24s} | {'paper median [Q1, Q3] %':>24s} | ours/paper A&P | in IQR")
    inside = agree = 0
    verdicts = {}
    for r in paper_rows:
        key = (r["statistic"], r["model"], r["b_max_ms_um2"], r["parameter"], r["sigma"])
        med, q1, q3 = ours[key]
        p = (r["median_percent"], r["q1_percent"], r["q3_percent"])
        ok_ours, ok_paper = accurate_and_precise(med, q1, q3), accurate_and_precise(*p)
        in_iqr = p[1] <= med <= p[2]
        inside += in_iqr
        agree += ok_ours == ok_paper
        verdicts[key] = (ok_ours, ok_paper)
        print(f"{r['statistic']:13s} {r['model']:15s} {r['b_max_ms_um2']:5g} {r['parameter']:7s} "
              f"{r['sigma']:5g} | {med:+7.1f} [{q1:+7.1f}, {q3:+7.1f}] | {p[0]:+7.1f} [{p[1]:+7.1f}, {p[2]:+7.1f}] "
              f"| {'yes' if ok_ours else 'no':>3s}/{'yes' if ok_paper else 'no':<3s}"
              f"{'' if ok_ours == ok_paper else ' DIFFERS'} | {'inside' if in_iqr else 'OUTSIDE'}")
    n = len(paper_rows)
    combined = {}
    for (statistic, model, b_max, parameter, sigma), (o, p) in verdicts.items():
        c = combined.setdefault((model, b_max, parameter, sigma), [True, True])
        c[0] &= o
        c[1] &= p
    combined_agree = sum(o == p for o, p in combined.values())
    alt_inside = sum(r["statistic"] == "relative_bias" and r["q1_percent"]
                     <= ours[("mean_bias", r["model"], r["b_max_ms_um2"], r["parameter"], r["sigma"])][0]
                     <= r["q3_percent"] for r in paper_rows)
    n_bias = sum(r["statistic"] == "relative_bias" for r in paper_rows)
    print(f"\n{label}: {inside}/{n} ({100 * inside / n:.0f} %) of our medians inside the paper's IQR "
          f"(target >= 80 %)")
    print(f"{label}: verdict per cell agrees in {agree}/{n} ({100 * agree / n:.0f} %) (target >= 90 %); "
          f"per (model, b_max, parameter, sigma) with bias and CV combined: {combined_agree}/{len(combined)}")
    print(f"{label}: alternative reading (bias of the mean per setting, quartiles across settings): "
          f"{alt_inside}/{n_bias} bias medians inside the paper's IQR")
    return {"inside": inside, "agree": agree, "n": n}


def print_cramer_rao(paper_rows, fit_s0=False) -> None:
    """Kurtosis and mono-exponential ADC CV cells: ours, the paper's, the Cramer-Rao bound and
    the per-draw SD the paper's own relative-bias quartiles imply ((Q3 - Q1) / 1.349)."""
    bias = {(r["model"], r["b_max_ms_um2"], r["parameter"], r["sigma"]): r for r in paper_rows
            if r["statistic"] == "relative_bias"}
    print(f"\nCramer-Rao bound on the CV (S0 {'free' if fit_s0 else 'fixed'}), median [Q1, Q3] % across settings:")
    for r in paper_rows:
        if r["statistic"] != "cv" or r["parameter"] != "ADC":
            continue
        crlb = cramer_rao_cv_percent(r["model"], r["b_max_ms_um2"], r["sigma"], D_INTRA_UM2_MS, RADII_UM,
                                     fit_s0)["ADC"]
        b_row = bias[(r["model"], r["b_max_ms_um2"], r["parameter"], r["sigma"])]
        implied = (b_row["q3_percent"] - b_row["q1_percent"]) / 1.349
        print(f"  {r['model']:15s} b_max {r['b_max_ms_um2']:4g} ADC sigma {r['sigma']:<5g}: paper CV "
              f"{r['median_percent']:5.1f} [{r['q1_percent']:5.1f}, {r['q3_percent']:5.1f}] | CRLB "
              f"{crlb[0]:5.1f} [{crlb[1]:5.1f}, {crlb[2]:5.1f}] | paper's bias IQR / 1.349: {implied:5.1f}")


def write_tsv(path, paper_rows, ours) -> None:
    """Our table, one row per cell of the paper's table, exactly the CSV's columns (tab-separated)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in paper_rows:
            key = (r["statistic"], r["model"], r["b_max_ms_um2"], r["parameter"], r["sigma"])
            med, q1, q3 = ours[key]
            writer.writerow([r["statistic"], r["model"], f"{r['b_max_ms_um2']:g}", r["parameter"],
                             f"{r['sigma']:g}", f"{med:.2f}", f"{q1:.2f}", f"{q3:.2f}"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="one variant only (fixed sigma, or --sigma-chain), no second run")
    parser.add_argument("--sigma-chain", action="store_true",
                        help="the paper's chained noise SD instead of a fixed sigma")
    parser.add_argument("--s0", choices=("fixed", "free"), default="fixed",
                        help="S0 = 1 known (paper: normalised signal) or fitted (the app)")
    parser.add_argument("--radius-max-um", type=float, default=None,
                        help="upper bound of the fitted cylinder radius (app default 20 um)")
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--out", help="write our table (the CSV's columns) to this TSV")
    parser.add_argument("--cramer-rao", action="store_true",
                        help="also print the Cramer-Rao bound of the ADC CV cells (why kurtosis differs)")
    args = parser.parse_args(argv)
    paper = read_table5(args.table)
    start = time.perf_counter()
    print(f"{len(paper)} cells from {args.table}; {len(D_INTRA_UM2_MS) * len(RADII_UM)} settings x "
          f"{args.draws} draws")
    variants = [args.sigma_chain] if args.quick else [args.sigma_chain, not args.sigma_chain]
    for i, chain in enumerate(variants):
        label = (("chained sigma (paper's note)" if chain else "fixed sigma") + f", S0 {args.s0}"
                 + (f", R <= {args.radius_max_um:g} um" if args.radius_max_um else ""))
        print(f"\nsimulating: {label}")
        ours = simulate(paper, args.draws, args.seed, chain, args.s0 == "free", args.radius_max_um)
        compare(paper, ours, label)
        if args.out and i == 0:
            write_tsv(args.out, paper, ours)
            print(f"wrote {args.out} ({label})")
    if args.cramer_rao:
        print_cramer_rao(paper, args.s0 == "free")
    print(f"\ntotal {time.perf_counter() - start:.0f} s (measured under load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
