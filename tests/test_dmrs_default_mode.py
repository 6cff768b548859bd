"""The default dMRS fit mode on data whose truth the app did not make (issue 13, item 5).

A few participants of ``benchmarks/bench_dmrs_modes.py``: the pregame 7 T STEAM basis with the
published set's b-values, measured lineshape and MM, per-metabolite decays that are none of
the app's models (sticks + gamma-distributed ADCs), at the published set's SNR. The app fits
them with its own basis and its defaults, and with the parametric alternative (mono-exponential
up to 5 ms/um^2, the same sharing). Skips when the shared data are absent.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import dmrs_validation_support as dv
import validation_support as vs

N_PARTICIPANTS = 2
SNR_RANGE = (150.0, 250.0)
"""b = 0 tNAA SNR, as the published 7 T set (about 170, README)."""
POOLED = ("tNAA", "tCr", "tCho")
BOUND = 0.08
"""Pooled RMS error of S(b)/S(0) (b > 0) of the default. The benchmark at this SNR (4
participants, seed 2) gives 0.053 for the default and 0.054 for the alternative; these 2
participants (seed 3) 0.064 and 0.061 (measured 2026-12-05). Errors of this size come from
basis and lineshape mismatch (the app fits its own basis), not from the noise."""
FACTOR = 1.5
"""The default may be at most this factor worse than the parametric alternative."""
ALTERNATIVE = {"mode": "joint", "joint_default_model": "monoexponential",
               "joint_mm_model": "monoexponential",
               "joint_shared": ["lineshape", "shift", "phase"]}


@pytest.fixture(scope="module")
def errors(shared_data):
    participants, bases = dv.dmrs_set(shared_data, N_PARTICIPANTS, ("pregame_steam7t",),
                                      seed=3, snr_range=SNR_RANGE)
    source, basis = bases["pregame_steam7t"]
    work = vs.scratch_dir()
    try:
        runner = vs.AppAndLCModel(source, basis, work, use_lcmodel=False)
        out = {}
        for label, overrides in (("default", {}), ("alternative", ALTERNATIVE)):
            scores = [dv.score(dv.fit_participant(runner, p, overrides)[0], p)
                      for p in participants]
            out[label] = vs.rms(np.concatenate([s[f"decay_{n}"] for s in scores
                                                for n in POOLED]))
        out["mode"] = runner.options.mode
        print("pooled RMS decay error", out)
    finally:
        vs.remove_dir(work)
    return out


@pytest.mark.slow
def test_default_is_joint(errors):
    assert errors["mode"] == "joint"


@pytest.mark.slow
def test_default_decay_error_within_bound(errors):
    assert errors["default"] <= BOUND, errors


@pytest.mark.slow
def test_default_not_worse_than_parametric_alternative(errors):
    assert errors["default"] <= FACTOR * errors["alternative"], errors


PUBLISHED_BEATS_FSL_MRS = {"tNAA": 0.007, "tCr": 0.007, "tCho": 0.014, "Glu": 0.023,
                           "Gln": 0.043, "Tau": 0.063}
"""FSL-MRS 2.4's RMS decay errors on the published set (issue 13); the app's defaults measured
0.0034, 0.0028, 0.0075, 0.0157, 0.0194, 0.0218 (README). Not Ins: 0.033 against 0.018."""
PUBLISHED_HALF_FSL_MRS = {"tNAA": 0.0035, "tCr": 0.0035, "Gln": 0.0215, "Tau": 0.0315,
                          "Mac": 0.017}
"""Issue 13's target (half of FSL-MRS) where the defaults reach it (MM: the basis' ``Mac``)."""


@pytest.mark.slow
def test_app_defaults_on_published_set_beat_fsl_mrs(shared_data):
    """The published 7 T set (someone else's simulator; ground-truth decays published) run as
    the app runs it: the default preprocessing (alignment, outlier rejection, residual water
    on common poles, the same window's lines taken out of the basis) and the default series
    fit (joint, completely monotone, frame test). It beats FSL-MRS on every published decay but
    Ins and reaches half of it on tNAA, tCr, Gln, Tau and MM; b = 0 ratios within +-2 %.
    Without the frame test (frames forced to be shared) Gln and Tau are worse than FSL-MRS's
    (0.14 and 0.066) and than with it (0.019 and 0.022)."""
    from test_fitting_accuracy import PREGAME_GT_DECAY, PREGAME_GT_DECAY_MINOR, rms_decay_error
    from test_fitting_support import truncated

    from bids_app.config import load_config
    from pipeline.fitting import FitOptions, fit_conditions
    from pipeline.io.basis_formats import read_basis
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.preprocess.pipeline import preprocess_acquisition
    from pipeline.simulate.macromolecules import with_lipids

    folder = shared_data / "dmrs_7t_steam_synthetic"
    basis = truncated(read_basis(folder / "basis_STEAM_TE45_TM60.BASIS"), 1024)
    config = load_config()
    assert config["macromolecules"]["lipids"]  # the app adds its lipid components
    basis = with_lipids(basis)
    acq = read_nifti_mrs(folder / "nifti" / "synthetic.nii.gz")
    averages = preprocess_acquisition(acq).averaged.fids[:, 0, 0, :]
    defaults = FitOptions.from_dict(config["fitting"])
    truth = {**PREGAME_GT_DECAY, **PREGAME_GT_DECAY_MINOR}
    errors, fits_default = {}, None
    for label, options in (("default", defaults),
                           ("shared frames", FitOptions.from_dict(
                               {**defaults.to_dict(), "joint_frame_test_p": 0.0}))):
        fits = fit_conditions(averages, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                              options)
        errors[label] = rms_decay_error(fits, truth, list(truth))
        fits_default = fits if label == "default" else fits_default
    print("published set, app defaults, RMS decay error", errors)
    assert fits.mode == "joint"
    assert all(errors["default"][n] <= t for n, t in PUBLISHED_BEATS_FSL_MRS.items()), errors
    assert all(errors["default"][n] <= t for n, t in PUBLISHED_HALF_FSL_MRS.items()), errors
    assert errors["shared frames"]["Gln"] > PUBLISHED_BEATS_FSL_MRS["Gln"], errors
    assert all(errors["shared frames"][n] > PUBLISHED_BEATS_FSL_MRS[n] for n in ("Gln", "Tau")), \
        errors
    # b = 0 ratios to tCr against the set's stated concentrations x exp(-TE/T2) (issue 13:
    # within +-2 % for tNAA, tCho, Ins and Glu; -2.5/-3.0 % for tNAA/tCho while the basis kept
    # the lines the residual-water removal took from the data)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_published_b0 as bench
    truth_ratio = bench.truth_ratios()
    b0 = bench.ratios(bench.fitted(fits_default.fits[0]))
    deviation = {k: b0[k] / truth_ratio[k] - 1 for k in bench.REPORTED}
    print("published set, b = 0 ratios to tCr, relative error", deviation)
    assert all(abs(v) <= 0.02 for v in deviation.values()), deviation


def test_truth_decays_are_not_mono_exponential():
    """The set tests shape freedom: a mono-exponential through b <= 5 ms/um^2 misses the truth
    decays by more than the published set's noise floor of tNAA (0.0013, README) on average."""
    rng = np.random.default_rng(0)
    b = np.array(dv.B_7T_MS_UM2)
    bias = np.concatenate([dv.mono_bias(dv.draw_decay(rng)(b), b, 5.0) for _ in range(200)])
    assert np.sqrt(np.mean(bias ** 2)) > 0.003


def test_sticks_and_gamma_decays_match_their_closed_forms():
    """The truth's building blocks: sticks at D_perp = 0 -> sqrt(pi/(4x)) erf(sqrt(x)) (-> 1 at
    b = 0, b^-1/2 tail); gamma with cv -> 0 tends to the mono-exponential."""
    b = np.array([0.0, 1.0, 50.0])
    sticks = dv.sticks_decay(b, 0.5, 0.0)
    assert sticks[0] == 1.0
    assert sticks[2] == pytest.approx(np.sqrt(np.pi / (4 * 25.0)) * 1.0, rel=1e-6)
    assert dv.gamma_decay(b, 0.15, 1e-3) == pytest.approx(np.exp(-0.15 * b), rel=1e-4)


N_REALISATIONS = 8


@pytest.mark.slow
def test_expected_decay_error_at_published_noise_beats_fsl_mrs(shared_data):
    """One data set's error is one noise draw: over 8 realisations of the generator at the
    published set's parameters (its noise, linewidth, MM; the published basis, sticks decays),
    the default fit's RMS decay error beats FSL-MRS's published figures for all but Ins
    (measured 0.0024 / 0.0036 / 0.0072 / 0.015 / 0.030 / 0.046 / 0.022 for tNAA / tCr / tCho /
    Glu / Gln / Tau / MM; Ins 0.028 against FSL-MRS's 0.018: free amplitudes at this noise,
    README "dMRS defaults"), and tNAA reaches half of it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_published_b0 as bench
    from test_fitting_support import truncated

    from bids_app.config import load_config
    from pipeline.fitting import FitOptions
    from pipeline.io.basis_formats import read_basis

    basis = truncated(read_basis(shared_data / "dmrs_7t_steam_synthetic"
                                 / "basis_STEAM_TE45_TM60.BASIS"), 1024)
    errors = bench.realisation_errors(basis, FitOptions.from_dict(load_config()["fitting"]),
                                      N_REALISATIONS)
    rms = {name: float(np.sqrt(np.mean(values ** 2))) for name, values in errors.items()}
    print("RMS decay error over generator realisations", rms)
    beats = {**PUBLISHED_BEATS_FSL_MRS, "Mac": 0.034}
    assert all(rms[name] <= bound for name, bound in beats.items()), rms
    assert rms["tNAA"] <= PUBLISHED_HALF_FSL_MRS["tNAA"], rms
