"""In-vivo ADCs: the app's against those derived from LCModel fits of the very same spectra.

The 7 T DW-STEAM in-vivo set (../shared/data/dmrs_7t_steam_invivo: b = 0 and 3 gradient
strengths x 3 directions) is read and preprocessed as ``bench_diffusion_invivo.py`` does
(``preprocess_acquisition`` with the water reference), giving one averaged FID per condition.
Both programs fit those ten FIDs with one basis: the published LCModel basis
``basis_STEAM_TE45_TM60.BASIS`` prepared as the participant workflow prepares a ``--basis``
file (resampled onto the data grid, its measured ``Mac`` entry kept and the default lipid
components added: ``[macromolecules]`` mode auto, lipids on), over the ``[fitting]`` ppm window.

- app: ``fit_conditions`` (what the workflow's fit stage calls) with the ``[fitting]``
  defaults, i.e. the default dMRS mode: one joint shape-free fit of all conditions (free
  amplitudes, completely monotone decays, shared lineshape/shift/phase, frame test); and the
  same with ``mode = "sequential"`` (each condition alone) for comparison;
- LCModel: each condition's FID alone (``.RAW``), the same basis written as ``.BASIS`` without
  the residual-water window's lines in its metabolite entries (the app's series fit takes them
  out: ``bench_real_vs_lcmodel.lcmodel_basis`` "as-app"), ``nsimul = 0``, same window;
  uncertainties from LCModel's %SD (its own rows for the sums NAA+NAAG, Cr+PCr, GPC+PCh,
  Glu+Gln, which include the members' correlations).

Each program's per-condition amplitudes then go through ``pipeline.diffusion.diffusion_table``
(powder average over the directions of each shell, mono-exponential ADC on b <= 5 ms/um^2,
``[diffusion]`` default uncertainty) as the app's diffusion stage does, the app's with its
amplitudes' covariance across conditions (``_desc-amplitudes_covariance.tsv``), as the stage reads it.

Prints per metabolite the app's and LCModel's ADC +- SE and their difference in combined SEs
(sqrt(SE_app^2 + SE_LCModel^2): both fit the same data, so the SD of the difference is
smaller than this and the criterion is lenient), the RMS difference of the normalised decays
S(b)/S(0) over the nine b > 0 conditions, and the seconds per condition of each program.

    nice python benchmarks/bench_adc_vs_lcmodel.py [--data ../shared/data] [--conditions]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests", ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_diffusion_invivo import diffusion_rows, invivo_averages  # noqa: E402
from bench_published_b0 import app_basis  # noqa: E402
from bench_real_vs_lcmodel import DATA, default_fit_table, lcmodel_basis  # noqa: E402
from lcmodel_support import lcmodel_available, run_lcmodel  # noqa: E402
from bids_app.config import load_config  # noqa: E402
from pipeline.fitting import FitOptions, fit_conditions  # noqa: E402
from pipeline.fitting.amplitude_covariance import amplitude_covariances  # noqa: E402
from pipeline.fitting.conditions import series_options  # noqa: E402
from pipeline.io.basis_formats import read_basis, write_lcmodel_basis  # noqa: E402
from pipeline.io.basis_tools import resample_basis  # noqa: E402
from pipeline.metabolites import METABOLITE_SUMS  # noqa: E402

FOLDER_NAME = "dmrs_7t_steam_invivo"
BASIS_NAME = "basis_STEAM_TE45_TM60.BASIS"
REPORTED = ("tNAA", "tCr", "tCho", "Glx", "Ins", "Glu")
"""Sums first (pipeline.metabolites), then single entries of the published basis (Tau and the
MM entry ``Mac`` are fitted as 0 at some conditions by one program or the other: no decay)."""
APP_MODES = {"joint": "app joint (default)", "sequential": "app sequential"}
"""``[fitting] mode`` -> label; ``joint`` is the default mode for a diffusion series."""


def prepared_basis(basis_path: Path, avg):
    """The basis the participant workflow fits ``avg`` with given ``--basis basis_path``:
    resampled onto the data grid (fit stage ``PrepareBasis``), its own MM entry kept and the
    default lipid components added (``MacromoleculeBasis``, mode auto)."""
    basis = resample_basis(read_basis(basis_path), avg.dwell_s, avg.fids.shape[-1],
                           avg.cf_mhz, ref_ppm=avg.ref_ppm)
    return app_basis(basis)


def app_series(fits, names=REPORTED) -> dict:
    """name -> (amplitudes, CRLB SDs) per condition of an app ``ConditionFits``."""
    return {n: fits.series(n) for n in names if n in fits.names or n in fits.sums}


def timed_app_fit(avg, basis, options: FitOptions, mode: str):
    """(``fit_conditions`` in ``mode`` -- "joint" or "sequential" --, its wall seconds)."""
    start = time.perf_counter()
    fits = fit_conditions(avg.fids[:, 0, 0, :], basis, avg.dwell_s, avg.cf_mhz,
                          avg.b_values_s_mm2, dataclasses.replace(options, mode=mode),
                          directions=avg.directions)
    return fits, time.perf_counter() - start


def lcmodel_fits(avg, basis, options: FitOptions, workdir: Path) -> tuple[list, float]:
    """LCModel's result (``run_lcmodel``) for each condition's FID, and the wall seconds of
    all of them. Its basis is ``basis`` without the lines the app's series fit removes."""
    basis_file = workdir / "basis.BASIS"
    write_lcmodel_basis(lcmodel_basis(basis, series_options(options), "as-app"), basis_file)
    start = time.perf_counter()
    out = [run_lcmodel(fid, avg.dwell_s, avg.cf_mhz, basis_file, ppm_range=options.ppm_range,
                       extra={"nsimul": 0}, workdir=workdir / f"condition{c}")
           for c, fid in enumerate(avg.fids[:, 0, 0, :])]
    return out, time.perf_counter() - start


def lcmodel_value(result: dict, name: str) -> tuple[float, float]:
    """(concentration, SD) of ``name`` in one LCModel result: LCModel's own row (its sums
    carry the members' correlations), else the sum of the ``METABOLITE_SUMS`` members present
    with their SDs in quadrature; SD from the %SD (0 where LCModel fitted 0)."""
    conc, pct = result["conc"], result["sd_percent"]
    if name in conc:
        return conc[name], conc[name] * pct[name] / 100 if conc[name] > 0 else 0.0
    members = [m for m in METABOLITE_SUMS.get(name, ()) if m in conc]
    if not members:
        return np.nan, np.nan
    sds = [conc[m] * pct[m] / 100 for m in members]
    return float(sum(conc[m] for m in members)), float(np.sqrt(np.sum(np.square(sds))))


def lcmodel_series(results: list, names=REPORTED) -> dict:
    """name -> (concentrations, SDs) per condition from LCModel's per-condition results."""
    out = {}
    for name in names:
        values = np.array([lcmodel_value(r, name) for r in results])
        if np.all(np.isfinite(values[:, 0])):
            out[name] = (values[:, 0], values[:, 1])
    return out


def normalised_decay(amplitudes, b_values_s_mm2) -> np.ndarray:
    """S(b)/S(0) per condition: amplitudes over their mean at the lowest b."""
    a, b = np.asarray(amplitudes, float), np.asarray(b_values_s_mm2, float)
    return a / np.mean(a[b == b.min()])


def decay_rms_difference(a, b_amplitudes, b_values_s_mm2) -> float:
    """RMS over the b > lowest conditions of the difference of two normalised decays."""
    b = np.asarray(b_values_s_mm2, float)
    weighted = b > b.min()
    diff = normalised_decay(a, b) - normalised_decay(b_amplitudes, b)
    return float(np.sqrt(np.mean(diff[weighted] ** 2)))


def mono_adcs(series: dict, avg, covariances: dict | None = None) -> dict:
    """name -> (ADC um^2/ms, SE, applicable) of the mono-exponential fit to each series,
    powder-averaged over the directions with the ``[diffusion]`` defaults (as the app);
    ``covariances``: the app's amplitude covariances across conditions, which its diffusion
    stage uses (LCModel's per-condition fits have none: independent)."""
    config = load_config()["diffusion"]
    rows = diffusion_rows(series, avg, ("monoexponential",), covariances=covariances,
                          powder_method=config["powder_method"],
                          uncertainty=config["uncertainty"], n_draws=int(config["n_draws"]),
                          seed=int(config["seed"]))
    return {r["metabolite"]: (r["value"], r["std_error"], bool(r["applicable"]))
            for r in rows if r["model"] == "monoexponential" and r["parameter"] == "ADC"}


def combined_se_difference(app: tuple, lcm: tuple) -> float:
    """(ADC_app - ADC_LCModel) / sqrt(SE_app^2 + SE_LCModel^2)."""
    return (app[0] - lcm[0]) / float(np.hypot(app[1], lcm[1]))


def compare(data: Path = DATA, workdir: Path | None = None, app_modes=tuple(APP_MODES)) -> dict:
    """Everything the tables show, keyed by program label (``APP_MODES`` values, "LCModel"):
    per-condition ``series``, mono-exponential ``adc``, ``seconds_per_condition``, ``mode``
    (what ``fit_conditions`` ran), the b-values and the condition averages (``fids``)."""
    folder = data / FOLDER_NAME
    avg = invivo_averages(folder)
    basis = prepared_basis(folder / BASIS_NAME, avg)
    options = FitOptions.from_dict(default_fit_table())
    n = avg.fids.shape[0]
    series, seconds, modes, covariances = {}, {}, {}, {}
    for mode in app_modes:
        fits, fit_s = timed_app_fit(avg, basis, options, mode)
        label = APP_MODES[mode]
        series[label], seconds[label] = app_series(fits), fit_s / n
        covariances[label] = amplitude_covariances(fits)
        modes[label] = f"{fits.mode}, frames {fits.fits[0].extra.get('frames', '-')}"
    results, lcm_s = lcmodel_fits(avg, basis, options,
                                  workdir or Path(tempfile.mkdtemp(prefix="adc_lcm_")))
    series["LCModel"], seconds["LCModel"] = lcmodel_series(results), lcm_s / n
    return {"b_values_s_mm2": avg.b_values_s_mm2, "fids": avg.fids[:, 0, 0, :],
            "dwell_s": avg.dwell_s, "cf_mhz": avg.cf_mhz, "mode": modes, "series": series,
            "adc": {k: mono_adcs(v, avg, covariances.get(k)) for k, v in series.items()},
            "seconds_per_condition": seconds}


def print_comparison(result: dict, app_label: str) -> None:
    """One side-by-side table: ``app_label``'s ADCs against LCModel's."""
    app, lcm = result["adc"][app_label], result["adc"]["LCModel"]
    b = result["b_values_s_mm2"]
    print(f"\n{app_label} vs LCModel: mono-exponential ADC (um^2/ms), powder-averaged")
    print(f"{'metabolite':10s} {'app ADC +- SE':>17s} {'LCModel ADC +- SE':>19s} "
          f"{'diff/SE_comb':>12s} {'decay RMS diff':>14s}")
    for name in REPORTED:
        if name not in app or name not in lcm:
            continue
        rms = decay_rms_difference(result["series"][app_label][name][0],
                                   result["series"]["LCModel"][name][0], b)
        flags = "" if app[name][2] and lcm[name][2] else "  (not applicable in one)"
        print(f"{name:10s} {app[name][0]:8.4f} +- {app[name][1]:.4f} "
              f"{lcm[name][0]:10.4f} +- {lcm[name][1]:.4f} "
              f"{combined_se_difference(app[name], lcm[name]):+12.2f} {rms:14.4f}{flags}")


def print_decays(result: dict) -> None:
    """Per condition: S(b)/S(0) of each program for the main metabolites, tNAA/tCr, and the
    residual water left after preprocessing (QC ratio to the tNAA peak)."""
    from pipeline.qc.metrics import residual_water_ratio
    b = result["b_values_s_mm2"]
    print("\nper condition (b in s/mm^2: " + " ".join(f"{x:.0f}" for x in b) + ")")
    water = [residual_water_ratio(f, result["dwell_s"], result["cf_mhz"]) for f in result["fids"]]
    print(f"{'residual water / tNAA peak':34s} " + " ".join(f"{x:6.2f}" for x in water))
    for name in REPORTED[:5]:
        for label, series in result["series"].items():
            decay = normalised_decay(series[name][0], b)
            print(f"{name + ' S(b)/S(0)':14s} {label:19s} " + " ".join(f"{x:6.3f}" for x in decay))
    for label, series in result["series"].items():
        ratio = series["tNAA"][0] / series["tCr"][0]
        print(f"{'tNAA/tCr':14s} {label:19s} " + " ".join(f"{x:6.3f}" for x in ratio))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--conditions", action="store_true",
                        help="also print each program's S(b)/S(0) per condition")
    args = parser.parse_args(argv)
    if not (args.data / FOLDER_NAME).is_dir() or not lcmodel_available():
        print(f"needs {args.data / FOLDER_NAME} and the LCModel binary (LCMODEL_BINARY)")
        return 1
    result = compare(args.data)
    print(f"basis: {BASIS_NAME} as the workflow prepares a --basis file (+ lipids); fitted: "
          + "; ".join(f"{k} {v}" for k, v in result["mode"].items()))
    for label in APP_MODES.values():
        print_comparison(result, label)
    print("\nseconds per condition: " + ", ".join(
        f"{k} {v:.2f}" for k, v in result["seconds_per_condition"].items())
        + " (the joint fit's time includes its sequential start; shared, loaded machine)")
    if args.conditions:
        print_decays(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
