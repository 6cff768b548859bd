"""Which feature of the independent validation set costs the app its Glu/Gln/GSH accuracy?

Spectra from the published bases (``tests/validation_support.SOURCES``) are built up one
feature at a time, the same drawn concentrations and noise at every level, and fitted by the app
with its defaults and own basis (as ``bench_vs_lcmodel.py`` does):

0. Voigt lineshape, no noise (the basis-mismatch floor of ``bench_basis_mismatch.py``);
1. + noise (SNR 20-200, log-uniform, as the validation set);
2. the Voigt replaced by a measured water-reference lineshape (non-Voigt, asymmetric);
3. + a measured macromolecule spectrum (0.9 ppm peak 20-60 % of the tNAA peak);
4. + lipids (60 % of spectra), a smooth baseline, residual water lines, zero/first-order phase
   and a frequency offset: all features of the validation set.

Prints the RMS relative error of ratios to tCr per level and basis::

    nice python benchmarks/bench_feature_ablation.py --draws 8
"""

from __future__ import annotations

from bench_env import SHARED  # first: one thread before numpy, sys.path

import argparse
import sys

import numpy as np

import validation_support as vs

NAMES = ("tNAA", "tCho", "Ins", "Glu", "Gln", "Glx", "GSH")
LEVELS = ("0 Voigt, no noise", "1 + noise", "2 measured lineshape", "3 + measured MM",
          "4 + lipids, baseline, water, phase, offset")
VOIGT_FWHM_PPM = {"3T": 0.05, "7T": 0.035}


def voigt(t, width_hz):
    return np.exp(-np.pi * 0.5 * width_hz * t - (np.pi * 0.6 * width_hz * t) ** 2
                  / (4 * np.log(2)))


def levels_of_one(rng, source, basis, kernels, mms):
    """The five spectra (levels 0-4) of one draw, as ValidationSpectrum objects."""
    n, dwell, cf = source.n_points, basis.dwell_s, basis.cf_mhz
    t = np.arange(n) * dwell
    ppm = vs.ppm_axis(n, dwell, cf)
    truth = {vs.canonical(m): float(rng.uniform(*vs.CONCENTRATION_RANGES_MM[vs.canonical(m)]))
             for m in basis.names}
    pure = sum(truth[vs.canonical(m)] * basis.fids[i, :n] for i, m in enumerate(basis.names))
    snr = float(np.exp(rng.uniform(np.log(20), np.log(200))))
    white = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    kernel = kernels[int(rng.integers(len(kernels)))]
    width_ppm = float(rng.uniform(*vs.LINEWIDTH_PPM[source.field]))
    measured = pure * vs.kernel_on_grid(kernel, dwell, n, width_ppm * cf)
    voigt_fid = pure * voigt(t, VOIGT_FWHM_PPM[source.field] * cf)
    height = vs.peak_height(vs.to_spectrum(measured), ppm)
    mm = mms[int(rng.integers(len(mms)))]
    mm_fid = vs.mm_on_grid(mm, ppm, dwell)
    mm_fid *= float(rng.uniform(0.2, 0.6)) * height / vs.peak_height(vs.to_spectrum(mm_fid),
                                                                     ppm, 0.8, 1.05)
    # the remaining features, drawn as the validation set draws them
    lip_ratio = float(rng.uniform(0.0, 0.5)) if rng.random() < 0.6 else 0.0
    lip = sum(a * vs.line_fid(t, p, cf, w * cf, 0.7) for p, w, a in vs.LIPID_LINES)
    lip *= lip_ratio * height / vs.peak_height(vs.to_spectrum(lip), ppm, 1.2, 1.4)
    offset_ppm = float(rng.uniform(-0.15, 0.15))
    water = np.zeros(n, complex)
    for _ in range(int(rng.integers(1, 4))):
        centre = float(rng.uniform(4.0, 5.2))
        line = vs.line_fid(t, centre, cf, float(rng.uniform(0.0, 10.0)))
        low, high = (0.3, 10.0) if centre >= 4.4 else (0.1, 2.0)
        scale = float(np.exp(rng.uniform(np.log(low), np.log(high)))) * height / \
            vs.peak_height(vs.to_spectrum(line), ppm, centre - 0.05, centre + 0.05)
        water += scale * np.exp(1j * rng.uniform(-np.pi, np.pi)) * line
    baseline_fid = vs.to_fid(vs.smooth_baseline(rng, ppm, 0.15 * height))
    baseline_fid[n // 2:] = 0.0
    baseline_fid[1:n // 2] *= 2.0
    phase0 = np.exp(1j * np.deg2rad(rng.uniform(-90, 90)))
    delay_s = float(rng.uniform(0.0, 8.0 / (360.0 * cf)))
    full = vs.delayed((measured + mm_fid + lip) * np.exp(-2j * np.pi * offset_ppm * cf * t)
                      + water + baseline_fid, dwell, delay_s) * phase0

    noise_sd = height / snr
    noise = noise_sd / np.sqrt(n) * white
    fids = [voigt_fid, voigt_fid + noise, measured + noise, measured + mm_fid + noise,
            full + noise]
    return [vs.ValidationSpectrum(source.label, f, dwell, cf, truth,
                                  noise_sd if k else noise_sd * 1e-4, {"snr": snr})
            for k, f in enumerate(fids)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--cache", default="", help="basis cache folder kept between runs")
    parser.add_argument("--mm-set", default=None,
                        help="parametric MM set for the app (default: the app's, 'extended')")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    work = vs.scratch_dir()
    kernels = vs.water_kernels(SHARED)
    errors = {level: {name: [] for name in NAMES} for level in range(len(LEVELS))}
    per_source = {}
    for source in vs.SOURCES:
        if not (SHARED / source.relative_path).exists():
            continue
        basis = vs.load_basis(SHARED, source)
        mms = vs.measured_mm(SHARED, source.field)
        setup = vs.AppAndLCModel(source, basis, work, use_lcmodel=False,
                                 cache_dir=args.cache or None, mm_components=args.mm_set)
        mine = {level: {name: [] for name in NAMES} for level in range(len(LEVELS))}
        for _ in range(args.draws):
            for level, spectrum in enumerate(levels_of_one(rng, source, basis, kernels, mms)):
                row = setup.compare(spectrum, NAMES + ("tCr",))
                for name in NAMES:
                    if f"{name}_app" in row:
                        errors[level][name].append(row[f"{name}_app"])
                        mine[level][name].append(row[f"{name}_app"])
        per_source[source.label] = mine
        print(f"{source.label}: Glu RMS per level " + "  ".join(
            f"{vs.rms(mine[k]['Glu']):.3f}" for k in range(len(LEVELS))), flush=True)
    print(f"\nRMS relative error of ratio to tCr, app defaults, {args.draws} draws per basis")
    print(f"{'level':45s} " + " ".join(f"{n:>6s}" for n in NAMES))
    for level, label in enumerate(LEVELS):
        print(f"{label:45s} " + " ".join(f"{vs.rms(errors[level][n]):6.3f}" for n in NAMES))
    vs.remove_dir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
