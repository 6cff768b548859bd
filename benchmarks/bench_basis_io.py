"""Measured figures for basis I/O: read time and decisions per shared basis, resampling time
and accuracy, LCModel round-trip error. Prints a table; run with `nice python benchmarks/...`.
Timings on a shared machine are inflated by the load."""

import time
import warnings
from pathlib import Path

import numpy as np

from pipeline.basis import Basis
from pipeline.io.basis_formats import read_basis, write_lcmodel_basis
from pipeline.io.basis_tools import resample_basis, singlet_offsets_ppm
from pipeline.spectra import time_axis_s

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_basis_table():
    print(f"{'basis':60s} {'entries':>7s} {'read s':>7s} {'conj':>4s} {'ref':>4s} "
          f"{'shift ppm':>9s} {'max |singlet err| ppm':>21s}")
    for path in sorted(p for p in SHARED.rglob("*") if p.suffix.lower() == ".basis"):
        start = time.perf_counter()
        basis = read_basis(path)
        elapsed = time.perf_counter() - start
        prov = basis.provenance
        conj = sum(prov["convention"]["conjugated"].values())
        removed = len(prov.get("reference_peak_removed", {}))
        shift = -prov["referencing"].get("median_offset_ppm", 0.0) \
            if prov["referencing"]["decision"].startswith("shifted") else 0.0
        worst = max(abs(v) for v in singlet_offsets_ppm(basis).values())
        print(f"{str(path.relative_to(SHARED))[-60:]:60s} {len(basis.names):7d} "
              f"{elapsed:7.2f} {conj:4d} {removed:4d} {shift:9.4f} {worst:21.4f}")


def analytic(dwell_s, n_points, cf_mhz, n_metab=20):
    t = time_axis_s(n_points, dwell_s)
    shifts = np.linspace(0.9, 4.1, n_metab)
    fids = [3 * np.exp(2j * np.pi * (4.65 - d) * cf_mhz * t - 30 * t) for d in shifts]
    return Basis([f"m{i}" for i in range(n_metab)], np.array(fids), dwell_s, cf_mhz)


def resampling_figures():
    source = analytic(2.5e-4, 8192, 123.2)
    for dwell_s, n_points in ((1 / 3000, 1024), (5e-4, 2048), (2.5e-4, 4096), (1e-4, 16384)):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = resample_basis(source, dwell_s, n_points, 123.2)
        elapsed = time.perf_counter() - start
        truth = analytic(dwell_s, n_points, 123.2)
        error = np.abs(out.fids - truth.fids).max() / np.abs(truth.fids).max()
        print(f"resample 20 x 8192 @ 0.25 ms -> {n_points} @ {dwell_s * 1e3:.4f} ms: "
              f"{elapsed:.2f} s, max error {error:.1e} of the maximum")


def lcmodel_round_trip(tmp=Path("/tmp/bench_basis_io.BASIS")):
    basis = analytic(2.5e-4, 4096, 123.2)
    write_lcmodel_basis(basis, tmp)
    back = read_basis(tmp, convention="as_stored", remove_reference=False,
                      referencing="as_stored")
    error = np.abs(back.fids - basis.fids).max() / np.abs(basis.fids).max()
    print(f"LCModel (6E16.8) write->read: max FID error {error:.1e} of the maximum")
    tmp.unlink()


if __name__ == "__main__":
    if SHARED.is_dir():
        shared_basis_table()
    resampling_figures()
    lcmodel_round_trip()
