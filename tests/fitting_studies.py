"""Accuracy studies of the fit on synthetic dMRS with known truth.

A test and benchmark helper, not part of the package: one implementation for the tests (few
noise realisations, asserted) and ``benchmarks/bench_fitting.py --accuracy`` (many, printed),
which puts ``tests/`` on its import path: the RMS error of the normalised
decays S(b)/S(0) with the joint fit's Cramér–Rao floor, and the ADC error of joint fitting
against sequential fitting followed by a CRLB-weighted mono-exponential fit.
"""

from __future__ import annotations

import numpy as np

from pipeline.diffusion.models import make_model
from pipeline.fitting.conditions import fit_conditions
from pipeline.fitting.options import FitOptions
from pipeline.simulate.presets import NAME_ALIASES
from pipeline.simulate.synthetic import simulate_acquisition

STUDY_PPM_RANGE = (0.5, 4.2)
STUDY_TIED = [["NAA", "NAAG"], ["Cr", "PCr"], ["GPC", "PCh"]]
"""Pairs sharing diffusion parameters in the joint fit (their sums are what is reported);
a basis may spell them differently (``pipeline.simulate.presets.NAME_ALIASES``)."""
LEAD = {"tNAA": "NAA", "tCr": "Cr", "tCho": "GPC", "Ins": "Ins", "Glu": "Glu", "Gln": "Gln",
        "Tau": "Tau", "Mac": "Mac"}
"""Metabolite whose (tied) diffusion parameters give each reported decay in the joint fit."""


def tied_groups(names) -> list[list[str]]:
    """:data:`STUDY_TIED` in the basis' own spelling of each name."""
    canonical = {NAME_ALIASES.get(n, n): n for n in names}
    return [[canonical[m] for m in group if m in canonical] for group in STUDY_TIED]


def study_options(mode: str, names, joint_model: str = "sticks") -> FitOptions:
    """Fit options of the studies: sequential, or joint with ``joint_model`` for every
    metabolite, tied pairs and lineshape, shift and phase shared by all conditions."""
    if mode == "sequential":
        return FitOptions(ppm_range=STUDY_PPM_RANGE, mode="sequential")
    return FitOptions(ppm_range=STUDY_PPM_RANGE, mode="joint", joint_default_model=joint_model,
                      joint_tied=tied_groups(names),
                      joint_shared=("lineshape", "shift", "phase"))


def decay_floor_variance(entry: dict, b_ms_um2: np.ndarray) -> float:
    """Mean over b of the CRLB variance of S(b)/S(0) from a joint fit's diffusion entry
    (parameters independent: exact for one-parameter models such as sticks and the ADC)."""
    model = make_model(entry["model"])
    values = np.array([v for v, _ in entry["parameters"].values()])
    sds = np.array([s for _, s in entry["parameters"].values()])
    grad = model.jacobian(b_ms_um2, values)
    return float(np.mean((grad ** 2) @ sds ** 2))


def decay_errors(basis, make_spec, seeds, names, modes=("sequential", "joint"),
                 joint_model: str = "sticks") -> dict:
    """Errors of S(b)/S(0) at b > 0 against the truth, per mode and name (array: realisation x
    b), and ``floor_variance`` (name -> per-realisation variance of the joint decay at its
    CRLBs). ``make_spec(seed)`` gives the generator spec of one realisation."""
    out = {mode: {n: [] for n in names} for mode in modes}
    out["floor_variance"] = {n: [] for n in names}
    for seed in seeds:
        result = simulate_acquisition(basis, make_spec(seed))
        acq = result.metabolite
        b_ms_um2 = np.asarray(acq.b_values_s_mm2, dtype=float)[1:] / 1000
        averaged = acq.fids.mean(axis=1)[:, 0, :]
        for mode in modes:
            fits = fit_conditions(averaged, basis, acq.dwell_s, acq.cf_mhz,
                                  acq.b_values_s_mm2,
                                  study_options(mode, basis.names, joint_model))
            for name in names:
                amplitudes = fits.series(name)[0]
                error = amplitudes / amplitudes[0] - np.asarray(result.truth["decays"][name])
                out[mode][name].append(error[1:])
                if mode == "joint":
                    out["floor_variance"][name].append(
                        decay_floor_variance(fits.diffusion[LEAD[name]], b_ms_um2))
    return {key: {n: np.asarray(v) for n, v in per.items()} for key, per in out.items()}


def rms(values) -> float:
    """Root mean square of all ``values``."""
    return float(np.sqrt(np.mean(np.square(values))))


def adc_errors(basis, make_spec, seeds, names, true_adc: float) -> dict:
    """ADC errors (um^2/ms) per realisation of the joint fit (mono-exponential model) and of
    sequential fits followed by a CRLB-weighted mono-exponential fit, and the joint fit's ADC
    CRLBs: ``{"joint": {name: array}, "sequential": {...}, "crlb": {...}}``."""
    mono = make_model("monoexponential")
    out = {key: {n: [] for n in names} for key in ("joint", "sequential", "crlb")}
    for seed in seeds:
        acq = simulate_acquisition(basis, make_spec(seed)).metabolite
        fits = fit_conditions(acq.fids.mean(axis=1)[:, 0, :], basis, acq.dwell_s, acq.cf_mhz,
                              acq.b_values_s_mm2,
                              study_options("joint", basis.names, "monoexponential"))
        b_ms_um2 = np.asarray(acq.b_values_s_mm2, dtype=float) / 1000
        sequential = fits.extra["sequential"]
        for name in names:
            adc, crlb = fits.diffusion[LEAD[name]]["parameters"]["ADC"]
            out["joint"][name].append(adc - true_adc)
            out["crlb"][name].append(crlb)
            fitted = mono.fit(b_ms_um2, np.array([f.amplitude(name) for f in sequential]),
                              sigma=np.array([f.uncertainty(name) for f in sequential]))
            out["sequential"][name].append(fitted.params[0] - true_adc)
    return {key: {n: np.asarray(v) for n, v in per.items()} for key, per in out.items()}
