"""Benchmark the basis simulation: cold-cache time per sequence, and the agreement with the
independently simulated basis sets in ../shared/data (real-part spectral correlation table).

    nice python benchmarks/bench_basis_simulation.py [--points 4096] [--skip-timing]

Runs single-threaded (BLAS threads pinned to 1 before numpy loads): the matrices are small and
extra threads only add overhead. Times are wall-clock on the machine it runs on.
"""

from __future__ import annotations

from bench_env import SHARED  # first: one thread before numpy, sys.path

import argparse
import tempfile
import time
from pathlib import Path

from pipeline.simulate.basis_simulation import (DEFAULT_METABOLITES, basis_correlations,
                                                match_reference, simulate_basis)

# label: (path below ../shared/data, simulate_basis arguments)
REFERENCE_SETS = {
    "7T STEAM TE45/TM60 (pregame)": (
        "dmrs_7t_steam_synthetic/basis_STEAM_TE45_TM60.BASIS",
        {"sequence": "steam", "echo_time_s": 0.045, "mixing_time_s": 0.060}),
    "3T PRESS TE30 (ISMRM 2016)": (
        "ismrm2016_fitting_challenge/basisset_LCModel/press3T_30ms.BASIS",
        {"sequence": "press", "echo_time_s": 0.030}),
    "3T PRESS TE35 (Osprey Philips)": (
        "osprey_3t/fit/basissets/3T/philips/unedited/press/35/3T_PRESS_Philips_35ms_noMM.BASIS",
        {"sequence": "press", "echo_time_s": 0.035}),
}
ALIASES = {"PCh": ("PCh", "PCho"), "sIns": ("sIns", "Scyllo")}
THRESHOLDS = {**{m: 0.95 for m in ("NAA", "Cr", "PCr", "GPC", "PCh", "Tau", "sIns")},
              **{m: 0.85 for m in ("Glu", "Gln", "Ins", "GABA", "GSH")}}


def name_map(reference_names) -> dict[str, str]:
    """Simulated name -> reference entry name, for every default metabolite present."""
    out = {}
    for name in DEFAULT_METABOLITES:
        for alias in ALIASES.get(name, (name,)):
            if alias in reference_names:
                out[name] = alias
    return out


def compare_with_reference(path: Path, sim_args: dict) -> tuple[dict, dict]:
    """(match parameters, {metabolite: {correlation, phase_deg}}) for one reference basis."""
    from pipeline.io.basis_formats import read_basis
    reference = read_basis(path)
    names = name_map(reference.names)
    simulated = simulate_basis(cf_mhz=reference.cf_mhz, dwell_s=reference.dwell_s,
                               n_points=reference.n_points, metabolites=list(names),
                               ref_ppm=reference.ref_ppm, use_cache=False, **sim_args)
    match = match_reference(simulated, reference, "Cr")
    return match, basis_correlations(simulated, reference, names, match)


def correlation_table() -> None:
    results = {}
    for label, (rel, args) in REFERENCE_SETS.items():
        path = SHARED / rel
        if not path.exists():
            print(f"{label}: {path} absent, skipped")
            continue
        match, corr = compare_with_reference(path, args)
        results[label] = corr
        print(f"{label}: shift {match['shift_hz']:+.2f} Hz, Lorentzian {match['lorentz_hz']} Hz, "
              f"Gaussian {match['gauss_hz']} Hz applied to the simulation")
    labels = list(results)
    print("\nreal-part correlation over 0.5-4.2 ppm (zero-order phase allowed, deg in brackets)")
    print("| metabolite | threshold | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for name in DEFAULT_METABOLITES:
        cells = []
        for label in labels:
            r = results[label].get(name)
            cells.append("-" if r is None else f"{r['correlation']:.3f} ({r['phase_deg']:.0f})")
        print(f"| {name} | {THRESHOLDS.get(name, '')} | " + " | ".join(cells) + " |")


def timing(n_points: int) -> None:
    names = DEFAULT_METABOLITES + ["H2O"]
    grid = {"cf_mhz": 298.06, "dwell_s": 1 / 3000, "n_points": n_points}
    cases = {"fid": {}, "se": {"echo_time_s": 0.045}, "press": {"echo_time_s": 0.030},
             "steam": {"echo_time_s": 0.045, "mixing_time_s": 0.060},
             "slaser": {"echo_time_s": 0.035}}
    print(f"\n{len(names)}-metabolite basis (19 default + H2O), 7 T, {n_points} points, cold cache")
    for sequence, args in cases.items():
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            simulate_basis(sequence, metabolites=names, cache_dir=cache, **grid, **args)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            simulate_basis(sequence, metabolites=names, cache_dir=cache, **grid, **args)
            warm = time.perf_counter() - start
        print(f"  {sequence:7s} cold {cold:6.2f} s   warm (cached) {warm:6.3f} s   (target <= 30 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-correlation", action="store_true")
    args = parser.parse_args()
    if not args.skip_correlation:
        correlation_table()
    if not args.skip_timing:
        for n in args.points:
            timing(n)


if __name__ == "__main__":
    main()
