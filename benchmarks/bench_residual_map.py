"""Where does the app's fit residual exceed LCModel's? (issue 13, Osprey sub-01.)

Prepares one real spectrum exactly as ``bench_real_vs_lcmodel.py`` does, fits it with the app
(``[fitting]`` defaults, optional ``--set key=value`` overrides) and with LCModel (same FID,
same basis, same window), and compares both residuals in noise-SD units on one ppm axis:

- the app's residual is put in absorption mode with the app's fitted phase (phi0, phi1) and
  2x zero-filled like LCModel's plot; LCModel's residual is ``data - fit`` from its ``.coord``,
  scaled to the app's units by the complex factor that maps the app's spectrum onto LCModel's
  data curve (as ``bench_real_vs_lcmodel.lcmodel_residual_over_noise``);
- per 0.1 ppm bin it prints the mean squared residual (noise variance units) of both programs
  and the app's excess, and writes a PNG (data/fits, residuals, baselines, binned excess).

    PYTHONPATH=$PWD python benchmarks/bench_residual_map.py --dataset osprey_sub-01 --png out.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_real_vs_lcmodel as real  # noqa: E402
from pipeline.fitting import FitOptions, fit_spectrum  # noqa: E402
from pipeline.io.basis_formats import write_lcmodel_basis  # noqa: E402
from pipeline.qc.metrics import fit_quality  # noqa: E402
from pipeline.spectra import fid_to_spectrum, ppm_axis  # noqa: E402
from lcmodel_support import run_lcmodel  # noqa: E402

BIN_PPM = 0.1


def zero_filled_spectrum(fid: np.ndarray) -> np.ndarray:
    return fid_to_spectrum(np.concatenate([fid, np.zeros(fid.size, complex)]))


def absorption(fid: np.ndarray, phi0_rad: float, phi1_s: float, dwell_s: float, cf_mhz: float,
               centre_hz: float):
    """(ppm, spectrum) of ``fid`` with the fit's phase (phi0, phi1) undone (no zero-filling: the
    app's baseline FID is not a decaying signal, so zero-filling would make it ring)."""
    spec = fid_to_spectrum(fid)
    n = fid.size
    ppm = ppm_axis(n, dwell_s, cf_mhz)
    freq_hz = np.fft.fftshift(np.fft.fftfreq(n, dwell_s))
    phase = np.exp(-1j * (phi0_rad + 2 * np.pi * (freq_hz - centre_hz) * phi1_s))
    return ppm, spec * phase


def align_to_lcmodel(fid, dwell_s, cf_mhz, coord, search_ppm=0.06, step_ppm=0.0005):
    """(ppm offset, modulus) of the complex factor mapping the app's zero-filled spectrum onto
    LCModel's plotted data, with the ppm offset between the two axes that fits best."""
    ppm_zf = ppm_axis(2 * fid.size, dwell_s, cf_mhz)
    raw = zero_filled_spectrum(fid)
    order = np.argsort(ppm_zf)
    best = None
    for offset in np.arange(-search_ppm, search_ppm + 1e-12, step_ppm):
        x = coord["ppm"] - offset
        cols = np.column_stack([np.interp(x, ppm_zf[order], raw.real[order]),
                                -np.interp(x, ppm_zf[order], raw.imag[order])])
        coef, res, *_ = np.linalg.lstsq(cols, coord["data"], rcond=None)
        cost = float(np.sum((cols @ coef - coord["data"]) ** 2))
        if best is None or cost < best[0]:
            best = (cost, offset, float(np.hypot(*coef)))
    return best[1], best[2]


def binned(ppm: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.digitize(ppm, edges) - 1
    return np.array([np.mean(values[idx == k]) if np.any(idx == k) else np.nan
                     for k in range(edges.size - 1)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="osprey_sub-01")
    parser.add_argument("--png", default=None)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    import tomllib
    table = real.default_fit_table()
    for item in args.set:
        key, value = item.split("=", 1)
        table[key] = tomllib.loads(f"v = {value}")["v"]
    source = args.dataset.split("_")[0]
    item = next(i for i in real.SOURCES[source]() if i[0] == args.dataset)
    name, fid, dwell_s, cf_mhz, basis_path, te_s, mm_fid, water_fid = item
    fid, _ = real.prepare(fid, dwell_s, cf_mhz, water_fid)
    basis = real.app_basis(basis_path, te_s, mm_fid, dwell_s, cf_mhz, fid.size)
    options = FitOptions.from_dict(table)
    fit = fit_spectrum(fid, basis, dwell_s, cf_mhz, options)
    quality = fit_quality(fid, fit.fitted_fid, dwell_s, cf_mhz, fit_ppm=options.ppm_range)
    sigma = quality["noise_sd"]
    folder = Path(tempfile.mkdtemp(prefix="resmap_"))
    write_lcmodel_basis(basis, folder / "basis.BASIS")
    out = run_lcmodel(fid, dwell_s, cf_mhz, folder / "basis.BASIS", ppm_range=options.ppm_range,
                      extra={"nsimul": 0}, workdir=folder)
    coord = out["coord"]
    # the app's units -> LCModel's plotted units
    n = fid.size
    offset_ppm, scale = align_to_lcmodel(fid, dwell_s, cf_mhz, coord)
    print(f"LCModel's ppm axis = app's + {offset_ppm:+.4f} ppm; scale {scale:.4g}")
    lcm_res = (coord["data"] - coord["fit"]) / (scale * sigma)
    lcm_ppm = coord["ppm"]  # bins and plots on LCModel's (singlet-referenced) ppm axis
    # the app's curves, phased, interpolated on LCModel's ppm points
    from pipeline.fitting.model import build_problem
    problem = build_problem(basis, dwell_s, n, cf_mhz, options)
    _, _, _, phi0, phi1 = problem.split(fit.theta)
    curves = {}
    for key, f in (("data", fid), ("fit", fit.fitted_fid), ("baseline", fit.baseline_fid),
                   ("residual", fid - fit.fitted_fid)):
        p, s = absorption(f, phi0, phi1, dwell_s, cf_mhz, problem.centre_hz)
        o = np.argsort(p)
        curves[key] = np.interp(lcm_ppm - offset_ppm, p[o], s.real[o]) / sigma
    app_res = curves["residual"]
    window = (lcm_ppm >= options.ppm_range[0]) & (lcm_ppm <= options.ppm_range[1])
    print(f"{name}: residual SD / noise SD over {options.ppm_range} ppm (absorption mode):"
          f" app {np.std(app_res[window]):.2f}  LCModel {np.std(lcm_res[window]):.2f};"
          f" app QC value {quality['fit_quality']:.2f}")
    print(f"app: phase0 {fit.phase0_deg:.1f} deg, phase1 {fit.phase1_deg_per_ppm:.2f} deg/ppm, "
          f"Lorentz {fit.lorentz_fwhm_hz}, Gauss {fit.gauss_fwhm_hz}, shift {fit.shift_hz}")
    edges = np.round(np.arange(options.ppm_range[0], options.ppm_range[1] + 1e-9, BIN_PPM), 3)
    app_b = binned(lcm_ppm, app_res ** 2, edges)
    lcm_b = binned(lcm_ppm, lcm_res ** 2, edges)
    counts = np.array([np.sum((lcm_ppm >= lo) & (lcm_ppm < hi)) for lo, hi in zip(edges[:-1], edges[1:])])
    excess = (app_b - lcm_b) * counts
    total = np.nansum(excess)
    print(f"\n{'bin ppm':>11s} {'app MS':>8s} {'LCM MS':>8s} {'excess':>8s} {'% of total excess':>18s}")
    for k in range(edges.size - 1):
        print(f"{edges[k]:5.2f}-{edges[k + 1]:4.2f} {app_b[k]:8.2f} {lcm_b[k]:8.2f} "
              f"{excess[k]:8.0f} {100 * excess[k] / total:17.1f}")
    regions = {"0.2-0.9": (0.2, 0.9), "0.9-1.7 MM/lipid": (0.9, 1.7), "1.7-1.95": (1.7, 1.95),
               "1.95-2.1 NAA": (1.95, 2.1), "2.1-2.55 Glx/GABA": (2.1, 2.55),
               "2.55-2.9": (2.55, 2.9), "2.9-3.1 Cr": (2.9, 3.1), "3.1-3.3 Cho": (3.1, 3.3),
               "3.3-4.0": (3.3, 4.0)}
    print("\nregion: share of the app's total excess squared residual")
    for label, (lo, hi) in regions.items():
        sel = (edges[:-1] >= lo - 1e-9) & (edges[1:] <= hi + 1e-9)
        print(f"  {label:20s} {100 * np.nansum(excess[sel]) / total:6.1f} %")
    print(f"\ntotal excess {total:.0f} (noise-variance units x points); LCModel folder {folder}")
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        lcm_scale = scale * sigma
        fig, ax = plt.subplots(4, 1, figsize=(11, 13), sharex=False)
        ax[0].plot(lcm_ppm, coord["data"] / lcm_scale, "k", lw=0.7, label="LCModel data")
        ax[0].plot(lcm_ppm, coord["fit"] / lcm_scale, "r", lw=0.8, label="LCModel fit")
        ax[0].plot(lcm_ppm, curves["data"], color="0.5", lw=0.5, label="app data (app phase)")
        ax[0].plot(lcm_ppm, curves["fit"], "b", lw=0.8, label="app fit")
        ax[0].legend(fontsize=8)
        ax[1].plot(lcm_ppm, app_res, "b", lw=0.6, label="app residual")
        ax[1].plot(lcm_ppm, lcm_res, "r", lw=0.6, label="LCModel residual")
        ax[1].axhline(0, color="k", lw=0.4)
        ax[1].legend(fontsize=8)
        ax[2].plot(lcm_ppm, coord["baseline"] / lcm_scale, "r", label="LCModel baseline")
        ax[2].plot(lcm_ppm, curves["baseline"], "b", label="app baseline")
        ax[2].legend(fontsize=8)
        centres = 0.5 * (edges[:-1] + edges[1:])
        ax[3].bar(centres, app_b, width=0.045, align="edge", color="b", label="app MS residual")
        ax[3].bar(centres - 0.045, lcm_b, width=0.045, align="edge", color="r",
                  label="LCModel MS residual")
        ax[3].axhline(1, color="k", lw=0.4)
        ax[3].legend(fontsize=8)
        for a_ in ax:
            a_.set_xlim(4.0, 0.2)
            a_.set_ylabel("/ noise SD" if a_ is not ax[3] else "mean sq / noise var")
        ax[3].set_xlabel("ppm")
        fig.suptitle(f"{name}: app vs LCModel residual")
        fig.tight_layout()
        fig.savefig(args.png, dpi=90)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
