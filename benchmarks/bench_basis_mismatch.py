"""The basis-mismatch floor of the independent validation set (issue 13, task ACC).

For each published source basis (``tests/validation_support.SOURCES``): noise-free,
artefact-free spectra made from the generating basis (drawn in-vivo concentrations, a Voigt
lineshape, nothing else) are fitted by the app with its defaults and its OWN simulated basis.
The error of a ratio to tCr there is what basis mismatch alone costs (the floor). Also prints
the spectral correlation (real part, 0.5-4.2 ppm, best zero-order phase, matched shift and
linewidth) of the app's simulated entries with the published ones, and, with ``--scan-te1``,
both as a function of the PRESS TE1 used for the app's simulation::

    nice python benchmarks/bench_basis_mismatch.py                    # floor, app defaults
    nice python benchmarks/bench_basis_mismatch.py --scan-te1 6,10,14,17.5,22,26
    nice python benchmarks/bench_basis_mismatch.py --corr-only --bandwidth-hz 0  # entries only
"""

from __future__ import annotations

from bench_env import SHARED  # first: one thread before numpy, sys.path

import argparse
import sys

import numpy as np

import validation_support as vs

FLOOR_NAMES = ("tNAA", "tCho", "Ins", "Glu", "Gln", "Glx", "GSH", "GABA", "Tau")
COMPARED_ENTRIES = ("NAA", "NAAG", "Glu", "Gln", "GSH", "GABA", "Ins", "Tau", "Asp", "PE", "Lac",
                    "Cr", "PCr", "GPC", "PCh", "sIns", "Ala", "Glc", "Asc")
"""Entries whose correlation is printed (those both bases have); the spin-table audit's list."""
VOIGT_FWHM_PPM = {"3T": 0.05, "7T": 0.035}
CACHE = ""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=6, help="concentration draws per basis")
    parser.add_argument("--sources", default="", help="comma-separated labels (default all)")
    parser.add_argument("--scan-te1", default="", metavar="MS,MS,...",
                        help="PRESS TE1 values (ms) to simulate the app's basis with")
    parser.add_argument("--bandwidth-hz", default="", metavar="HZ,HZ,...",
                        help="PRESS refocusing bandwidths (Hz) to simulate slice selection with")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--cache", default="", help="basis cache folder kept between runs")
    parser.add_argument("--corr-only", action="store_true",
                        help="only the per-entry correlations (no fits): seconds, not minutes")
    return parser.parse_args(argv)


def noise_free_spectrum(rng, source, basis) -> vs.ValidationSpectrum:
    """The generating basis' mixture at drawn concentrations with a Voigt lineshape only."""
    n = source.n_points
    t = np.arange(n) * basis.dwell_s
    truth = {vs.canonical(name): float(rng.uniform(*vs.CONCENTRATION_RANGES_MM[vs.canonical(name)]))
             for name in basis.names}
    width_hz = VOIGT_FWHM_PPM[source.field] * basis.cf_mhz
    lineshape = np.exp(-np.pi * 0.5 * width_hz * t - (np.pi * 0.6 * width_hz * t) ** 2
                       / (4 * np.log(2)))
    fid = sum(truth[vs.canonical(name)] * basis.fids[i, :n]
              for i, name in enumerate(basis.names)) * lineshape
    ppm = vs.ppm_axis(n, basis.dwell_s, basis.cf_mhz)
    noise_sd = vs.peak_height(vs.to_spectrum(fid), ppm) * 1e-4  # only for the residual ratio
    return vs.ValidationSpectrum(source.label, fid, basis.dwell_s, basis.cf_mhz, truth,
                                 noise_sd, {"snr": 1e4})


def self_spectrum(spectrum, app_basis) -> vs.ValidationSpectrum:
    """The same mixture and lineshape made from the app's OWN basis: its fit error is the
    fit model's floor (MM/lipid/baseline components absorbing signal), not the basis'."""
    n = spectrum.fid.size
    t = np.arange(n) * spectrum.dwell_s
    width_hz = VOIGT_FWHM_PPM["7T" if spectrum.cf_mhz > 200 else "3T"] * spectrum.cf_mhz
    lineshape = np.exp(-np.pi * 0.5 * width_hz * t - (np.pi * 0.6 * width_hz * t) ** 2
                       / (4 * np.log(2)))
    truth = {k: v for k, v in spectrum.truth_mm.items() if k in app_basis.names}
    fid = sum(v * app_basis.fid(k)[:n] for k, v in truth.items()) * lineshape
    return vs.ValidationSpectrum(spectrum.source, fid, spectrum.dwell_s, spectrum.cf_mhz, truth,
                                 spectrum.noise_sd, spectrum.params)


def summary(rows) -> dict:
    out = {}
    for name in FLOOR_NAMES:
        values = [r[f"{name}_app"] for r in rows if f"{name}_app" in r]
        if values:
            out[name] = (float(np.mean(values)), vs.rms(values))
    out["resid"] = float(np.median([r["resid_app"] for r in rows]))
    return out


def floor(source, basis, spectra, work, timings=None):
    """Mean and RMS relative error per ratio, app fit of the noise-free spectra made from
    the generating basis, and of the same mixtures made from the app's own basis."""
    setup = vs.AppAndLCModel(source, basis, work, use_lcmodel=False, timings=timings,
                             cache_dir=CACHE or None)
    rows = [setup.compare(s, FLOOR_NAMES + ("tCr",)) for s in spectra]
    own = [setup.compare(self_spectrum(s, setup.app_basis), FLOOR_NAMES + ("tCr",))
           for s in spectra]
    return summary(rows), summary(own), setup.app_basis


def published_on_grid(basis, n_points):
    from pipeline.basis import Basis

    return Basis(basis.names, basis.fids[:, :n_points], basis.dwell_s, basis.cf_mhz,
                 basis.ref_ppm)


def correlations(app_basis, basis, n_points) -> dict:
    """Correlation of each app entry with the published one (matched shift/width on NAA)."""
    from pipeline.simulate.basis_simulation import basis_correlations, match_reference

    ref = published_on_grid(basis, n_points)
    by_canon = {vs.canonical(n): n for n in ref.names}
    pairs = {n: by_canon[n] for n in COMPARED_ENTRIES if n in by_canon and n in app_basis.names}
    sim = app_basis.subset(list(pairs))
    match = match_reference(sim, ref, "NAA", by_canon["NAA"])
    corr = basis_correlations(sim, ref, pairs, match)
    return {n: c["correlation"] for n, c in corr.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    wanted = [s for s in args.sources.split(",") if s]
    sources = [s for s in vs.SOURCES if not wanted or s.label in wanted]
    work = vs.scratch_dir()
    rng = np.random.default_rng(args.seed)
    te1_list = [float(x) / 1000 for x in args.scan_te1.split(",") if x]
    bandwidths = [float(x) for x in args.bandwidth_hz.split(",") if x]
    global CACHE
    CACHE = args.cache
    print("mean relative error (RMS) of ratio to tCr, noise-free spectra from the generating "
          f"basis, app fit with its own basis; {args.draws} draws per basis.\n'floor' = spectra "
          "from the published basis; 'self' = the same mixtures from the app's own basis "
          "(the fit's own floor); 'corr' = spectral correlation of the app's entry with the "
          "published one")
    for source, basis in ((s, vs.load_basis(SHARED, s)) for s in sources
                          if (SHARED / s.relative_path).exists()):
        spectra = [noise_free_spectrum(rng, source, basis) for _ in range(args.draws)]
        variants = [None]
        if source.sequence == "press":  # the previous default: ideal pulses, TE1 = TE2 = TE/2
            variants.append({"te1_s": source.echo_time_s / 2, "te2_s": source.echo_time_s / 2})
        if te1_list and source.sequence == "press":
            variants += [{"te1_s": te1, "te2_s": source.echo_time_s - te1} for te1 in te1_list
                         if not bandwidths]
        if bandwidths and source.sequence == "press":
            variants += [{"refocus_bandwidth_hz": bw} for bw in bandwidths]
            variants += [{"refocus_bandwidth_hz": bw, "te1_s": te1,
                          "te2_s": source.echo_time_s - te1}
                         for bw in bandwidths for te1 in te1_list]
        for timings in variants:
            label = "app default" if timings is None else ", ".join(
                f"{k} {v:g}" for k, v in timings.items())
            if args.corr_only:
                app_basis = vs.AppAndLCModel(source, basis, work, use_lcmodel=False,
                                             timings=timings, cache_dir=CACHE or None).app_basis
                corr = correlations(app_basis, basis, source.n_points)
                print(f"\n{source.label} [{label}]\n  corr:  " + "  ".join(
                    f"{k} {v:.4f}" for k, v in corr.items()), flush=True)
                continue
            result, own, app_basis = floor(source, basis, spectra, work, timings)
            corr = correlations(app_basis, basis, source.n_points)
            print(f"\n{source.label} [{label}] residual/noise {result.pop('resid'):.1f} (noise 1e-4"
                  " of the NAA peak)")
            print("  floor: " + "  ".join(f"{k} {m:+.3f} ({r:.3f})" for k, (m, r) in
                                          result.items()))
            own.pop("resid")
            print("  self:  " + "  ".join(f"{k} {m:+.3f} ({r:.3f})" for k, (m, r) in
                                          own.items()))
            print("  corr:  " + "  ".join(f"{k} {v:.4f}" for k, v in corr.items()), flush=True)
    vs.remove_dir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
