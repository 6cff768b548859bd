"""Diffusion modelling of the in-vivo 7 T DW-STEAM data (../shared/data/dmrs_7t_steam_invivo).

Runs the science core end to end without the BIDS layer: NIfTI-MRS reading, preprocessing
(alignment, outliers, eddy currents with the water reference, averaging, residual water),
linear-combination fits of the conditions with the LCModel basis and the app's ``[fitting]``
defaults as the app resolves them (``app_fit_options``: joint, the basis without the lines of
the residual-water window), then ``pipeline.diffusion.diffusion_table``
(powder average over the 3 directions, mono-exponential ADC, kurtosis, sticks; with the
amplitudes' covariance across conditions, as the app since 2026-12-08) and prints the
rows of tNAA, tCr, tCho, Glx and the other metabolites. Published human white-matter ADCs of
tNAA and tCr at these b-values lie around 0.1-0.25 um^2/ms.

With --chronograms the b-values and directions of the 9 diffusion-weighted conditions come
from the gradient chronograms (as the README's ``[conversion] chronograms`` recipe), i.e.
direction-specific b-values; the benchmark then checks that no applicable row holds a physically
impossible value (pipeline.diffusion.applicability limits, tensor FA/eigenvalues).

Usage: nice python benchmarks/bench_diffusion_invivo.py [--data ../shared/data] [--chronograms]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bids_app.config import load_config
from pipeline.diffusion import diffusion_table, gradient_timing_ms
from pipeline.fitting.amplitude_covariance import amplitude_covariances
from pipeline.fitting.conditions import fit_conditions
from pipeline.fitting.options import FitOptions
from pipeline.io.basis_formats import read_basis
from pipeline.io.nifti_mrs import read_nifti_mrs
from pipeline.preprocess.pipeline import preprocess_acquisition

# Acquisition facts from the data README (TE 40-45 ms, gradient duration 15 ms, diffusion time 79 ms).
SIDECAR = {"EchoTime": 0.040, "DiffusionGradientDuration": 0.015, "DiffusionTime": 0.079,
           "DiffusionBValueUnits": "s/mm2"}
MODELS = ("monoexponential", "kurtosis", "sticks")


def with_chronograms(acq, folder):
    """``acq`` with chronogram b-values (s/mm^2) and directions for its b > 0 conditions, in
    the order G15/G25/G35 x dir1-3 (the data's condition order)."""
    from dataclasses import replace

    from pipeline.io.chronogram import chronogram_conditions
    paths = [folder / f"chronogram_G{g}_dir{d}.csv" for g in (15, 25, 35) for d in (1, 2, 3)]
    weighted = np.flatnonzero(acq.b_values_s_mm2 > 0)
    b, g = acq.b_values_s_mm2.astype(float), acq.directions.astype(float)
    b[weighted], g[weighted] = chronogram_conditions(paths, "steam")
    return replace(acq, b_values_s_mm2=b, directions=g)


def invivo_averages(folder: Path, chronograms: bool = False):
    """The preprocessed acquisition (one averaged FID per condition) of the in-vivo set in
    ``folder``: ``preprocess_acquisition`` with the water reference (eddy currents) and the
    ``[preprocessing]`` defaults; chronogram b-values and directions with ``chronograms``."""
    acq = read_nifti_mrs(folder / "nifti" / "metab.nii.gz", sidecar=SIDECAR, b_value_units="s/mm2")
    if chronograms:
        acq = with_chronograms(acq, folder / "chronogram")
    water = read_nifti_mrs(folder / "nifti" / "water.nii.gz", sidecar=SIDECAR, b_value_units="s/mm2")
    return preprocess_acquisition(acq, water).averaged


def app_fit_options() -> FitOptions:
    """The ``[fitting]`` defaults as the app fits with them (``load_config``: an empty
    ``water_removed_ppm`` becomes the ``[preprocessing]`` residual-water window, which
    ``preprocess_acquisition`` removed). ``FitOptions()`` alone keeps the basis whole: on this
    set it moved the b = 0 tNAA/tCr 1.690 -> 1.658 and the Ins ADC 0.100 -> 0.119 um^2/ms."""
    return FitOptions.from_dict(load_config()["fitting"])


def diffusion_rows(series: dict, avg, models=MODELS, **options) -> list[dict]:
    """``diffusion_table`` rows of ``series`` (name -> (amplitudes, SDs) per condition) with
    the b-values, directions (powder average per shell) and gradient timing of ``avg``;
    ``options`` as for ``fit_all_models`` (uncertainty, powder_method, ...)."""
    timing = gradient_timing_ms(avg.metadata)
    return diffusion_table(series, avg.b_values_s_mm2, directions=avg.directions, models=models,
                           small_delta_ms=timing["small_delta_ms"],
                           big_delta_ms=timing["big_delta_ms"],
                           echo_time_ms=timing["echo_time_ms"],
                           diffusion_time_ms=timing["diffusion_time_ms"], **options)


def impossible_applicable(rows) -> list[dict]:
    """Applicable rows whose value breaks a physical limit (the issue's 47 such rows)."""
    from pipeline.diffusion.applicability import physical_limit_reasons
    from pipeline.diffusion.models import MODELS as REGISTRY
    bad = []
    for r in rows:
        if not r["applicable"] or r["parameter"] in ("AIC", "BIC"):
            continue
        v = r["value"]
        if r["model"] == "tensor":
            broken = (not np.isfinite(v) or (r["parameter"] == "FA" and not 0 <= v <= 1)
                      or (r["parameter"] != "FA" and not 0 <= v <= 1.4))
        else:
            model = REGISTRY[r["model"]]
            i = model.parameter_names.index(r["parameter"])
            probe = type("Probe", (), {"parameter_names": (r["parameter"],),
                                       "parameter_units": (model.parameter_units[i],)})
            broken = bool(physical_limit_reasons(probe, [v]))
        if broken:
            bad.append(r)
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--chronograms", action="store_true",
                        help="b-values and directions from the gradient chronograms")
    args = parser.parse_args(argv)
    folder = args.data / "dmrs_7t_steam_invivo"
    t0 = time.perf_counter()
    avg = invivo_averages(folder, args.chronograms)
    t1 = time.perf_counter()
    basis = read_basis(folder / "basis_STEAM_TE45_TM60.BASIS")
    fits = fit_conditions(avg.fids[:, 0, 0, :], basis, avg.dwell_s, avg.cf_mhz, avg.b_values_s_mm2,
                          app_fit_options())
    t2 = time.perf_counter()
    names = [n for n in ("tNAA", "tCr", "tCho", "Glx") if n in fits.sums] + list(fits.names)
    series = {n: fits.series(n) for n in names}
    rows = diffusion_rows(series, avg, MODELS, uncertainty="montecarlo", n_draws=200, seed=0,
                          covariances=amplitude_covariances(fits))  # as the app, since 2026-12-08
    t3 = time.perf_counter()
    print(f"b-values (s/mm^2): {np.round(avg.b_values_s_mm2).tolist()}")
    print(f"timing: {gradient_timing_ms(avg.metadata)}")
    print(f"preprocess {t1 - t0:.1f} s, spectral fits {t2 - t1:.1f} s, diffusion models {t3 - t2:.1f} s "
          "(shared, loaded machine)")
    print(f"{'metabolite':10s} {'model':16s} {'param':8s} {'value':>9s} {'SE':>8s} appl  note")
    for r in rows:
        if r["parameter"] in ("AIC", "BIC"):
            continue
        print(f"{r['metabolite']:10s} {r['model']:16s} {r['parameter']:8s} {r['value']:9.4f} "
              f"{r['std_error']:8.4f} {r['applicable']:4d}  {r['note'][:160]}")
    bad = impossible_applicable(rows)
    print(f"{len(bad)} applicable rows with a physically impossible value"
          + "".join(f"\n  {r['metabolite']} {r['model']} {r['parameter']} {r['value']:.4g}" for r in bad))
    n_na = sum(1 for r in rows if not r["applicable"] and r["parameter"] not in ("AIC", "BIC"))
    print(f"{n_na} rows not applicable; reasons of the first ones:")
    for r in [r for r in rows if not r["applicable"] and r["parameter"] not in ("AIC", "BIC")][:12]:
        print(f"  {r['metabolite']:8s} {r['model']:16s} {r['parameter']:8s} {r['value']:9.4g}  {r['reason'][:140]}")
    for name in ("tNAA", "tCr"):
        (adc,) = [r for r in rows if r["metabolite"] == name and r["model"] == "monoexponential"
                  and r["parameter"] == "ADC"]
        inside = 0.1 <= adc["value"] <= 0.25
        print(f"{name} ADC {adc['value']:.3f} +/- {adc['std_error']:.3f} um^2/ms: "
              f"{'inside' if inside else 'OUTSIDE'} the published WM range 0.1-0.25")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
