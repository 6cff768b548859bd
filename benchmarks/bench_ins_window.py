"""Myo-inositol with and without its 4.05 ppm line: two fit windows and a per-spectrum choice
between them, on validation spectra whose truth the app did not make (issue 13).

The default residual-water removal (HLSVD from 4.0 ppm) takes Ins's 4.05 ppm line out of the
data, the line that carries most of Ins at 7 T. Each single validation spectrum
(``tests/validation_support.py``: other groups' bases, measured lineshapes and MM, residual
water lines anywhere in 4.0-5.2 ppm) is fitted by the app (its own basis, default options)
twice:

- A: HLSVD from 4.0 ppm, fit window 0.2-4.0 ppm (the default);
- B: HLSVD from 4.25 ppm, fit window 0.2-4.2 ppm (keeps the 4.05 ppm line, and any residual
  water between 4.0 and 4.25 ppm).

Prints the RMS relative error of Ins/tCr against the truth for A, for B, and for the choice
"B when it is the more precise and the two Ins/tCr estimates agree within ``z`` of their CRLB
difference, else A" (a Hausman-type test: under no edge water both are consistent and B is the
more precise; a B less precise than A is a B the data do not support), split
by whether the spectrum has a residual water line in 4.0-4.3 ppm. Not the app's default (not
built): a measurement for that choice.

    nice python benchmarks/bench_ins_window.py [--n 200] [--sources pregame_steam7t]
"""

from __future__ import annotations

from bench_env import SHARED  # first: one thread before numpy, sys.path

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

import validation_support as vs
from pipeline.fitting import fit_spectrum
from pipeline.fitting.uncertainty import sum_weights
from pipeline.preprocess.water import remove_residual_water

WINDOWS = {"A": ((4.0, 5.5), (0.2, 4.0)), "B": ((4.25, 5.5), (0.2, 4.2))}
"""Window -> (residual-water removal window, fit window), ppm."""
EDGE_WATER_PPM = (4.0, 4.3)
Z_LIMITS = (2.0, 4.0, 6.0)


def ratio_and_sd(fit, name: str) -> tuple[float, float]:
    """``name``/tCr of a fit and its CRLB (first-order, the amplitude covariance)."""
    weights = sum_weights(list(fit.names))
    num_w = weights.get(name, np.array([float(n == name) for n in fit.names]))
    den_w = weights["tCr"]
    amplitudes = np.asarray(fit.amplitudes, float)
    cov = np.asarray(fit.covariance, float)[:amplitudes.size, :amplitudes.size]
    num, den = num_w @ amplitudes, den_w @ amplitudes
    grad = num_w / den - num / den ** 2 * den_w
    return float(num / den), float(np.sqrt(max(grad @ cov @ grad, 0.0)))


def fit_window(setup: vs.AppAndLCModel, spectrum, window: str):
    """The app's fit of ``spectrum`` with the removal and fit windows of ``window``."""
    removal, fit_ppm = WINDOWS[window]
    fid, _ = remove_residual_water(spectrum.fid, spectrum.dwell_s, spectrum.cf_mhz,
                                   window_ppm=removal,
                                   n_components=setup.preprocessing["residual_water_components"])
    options = dataclasses.replace(setup.options, ppm_range=fit_ppm, water_removed_ppm=removal)
    return fit_spectrum(fid, setup.app_basis, spectrum.dwell_s, spectrum.cf_mhz, options)


def spectrum_row(setup: vs.AppAndLCModel, spectrum) -> dict:
    """Ins/tCr errors of A and B against truth, the consistency z, and edge water."""
    truth = spectrum.truth_ratio("Ins")
    (ratio_a, sd_a), (ratio_b, sd_b) = (ratio_and_sd(fit_window(setup, spectrum, w), "Ins")
                                        for w in ("A", "B"))
    edge = any(EDGE_WATER_PPM[0] <= line[0] <= EDGE_WATER_PPM[1]
               for line in spectrum.params.get("water_lines", []))
    return {"edge": edge, "A": ratio_a / truth - 1, "B": ratio_b / truth - 1,
            "z": (ratio_b - ratio_a) / np.sqrt(abs(sd_a ** 2 - sd_b ** 2) + 1e-30),
            "b_more_precise": sd_b / ratio_b < sd_a / ratio_a if ratio_a > 0 < ratio_b
            else False}


def rms(values) -> float:
    values = np.asarray(values, float)
    return float(np.sqrt(np.mean(values ** 2))) if values.size else float("nan")


def table(rows: list) -> str:
    """RMS Ins/tCr errors per choice, for spectra without and with edge water and all."""
    groups = {"no edge water": [r for r in rows if not r["edge"]],
              "edge water": [r for r in rows if r["edge"]], "all": rows}
    choices = {"A (default)": lambda r: r["A"], "B": lambda r: r["B"]}
    for limit in Z_LIMITS:
        choices[f"B if abs(z) < {limit:g} and B's relative CRLB is smaller, else A"] = (
            lambda r, limit=limit: r["B"] if abs(r["z"]) < limit and r["b_more_precise"]
            else r["A"])
    lines = ["| choice | " + " | ".join(f"{k} ({len(v)})" for k, v in groups.items()) + " |",
             "|---|" + "---|" * len(groups)]
    for label, pick in choices.items():
        lines.append(f"| {label} | " + " | ".join(f"{rms([pick(r) for r in v]):.3f}"
                                                    for v in groups.values()) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="validation spectra drawn in all")
    parser.add_argument("--sources", default="pregame_steam7t",
                        help="comma-separated validation sources to fit (default: the 7 T one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}", file=sys.stderr)
        return 2
    spectra, bases = vs.validation_set(SHARED, args.n, seed=args.seed)
    wanted = args.sources.split(",")
    work = Path(vs.scratch_dir())
    setups = {label: vs.AppAndLCModel(source, basis, work, use_lcmodel=False)
              for label, (source, basis) in bases.items() if label in wanted}
    rows = [spectrum_row(setups[s.source], s) for s in spectra if s.source in setups]
    print(f"Ins/tCr RMS relative error against truth, {len(rows)} spectra of {args.sources}:")
    print(table(rows))
    vs.remove_dir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
