"""Accuracy and calibrated uncertainty of the spectral fit on data with known truth.

* noiseless synthetic dMRS (``pipeline.simulate.synthetic``) at the parameters of the 7 T STEAM
  pregame set and of 3 T PRESS TE 30 ms: the fit itself must add no bias;
* the published pregame synthetic set itself, against its published ground-truth decays
  (dwmrshub/pregame-workshop-2021, Synthetic-Data/GT/decay_metab.txt);
* CRLB calibration over 200 noise realisations.
"""

import numpy as np
import pytest

from pipeline.fitting import FitOptions, fit_conditions, fit_spectrum
from fitting_studies import decay_errors
from fitting_studies import rms as study_rms
from pipeline.simulate.presets import PREGAME_B_VALUES_S_MM2, pregame_7t_spec, press_3t_spec
from pipeline.simulate.synthetic import simulate_acquisition

from test_fitting_support import ISMRM_CF_MHZ, ISMRM_DWELL_S, synthetic_fid, truncated

PREGAME_GT_DECAY = {
    "tNAA": [1, 0.85537, 0.66094, 0.49811, 0.38555, 0.26453, 0.20996, 0.17709, 0.15445],
    "tCr": [1, 0.84453, 0.64110, 0.47552, 0.36276, 0.24105, 0.18531, 0.15135, 0.12778],
    "tCho": [1, 0.84411, 0.63863, 0.47024, 0.35506, 0.23000, 0.17231, 0.13706, 0.11264],
    "Ins": [1, 0.84846, 0.64566, 0.47630, 0.35868, 0.22983, 0.17018, 0.13375, 0.10855],
    "Glu": [1, 0.83721, 0.62931, 0.46568, 0.35756, 0.24344, 0.19197, 0.16088, 0.13943],
}
"""Published ground-truth S(b)/S(0) of the pregame synthetic set (decay_metab.txt)."""
PREGAME_GT_DECAY_MINOR = {
    "Gln": [1, 0.83669, 0.62603, 0.45779, 0.34483, 0.22317, 0.16712, 0.13288, 0.10917],
    "Tau": [1, 0.82717, 0.61252, 0.44891, 0.34300, 0.23183, 0.18155, 0.15111, 0.13006],
    "Mac": [1, 0.99423, 0.98280, 0.96593, 0.94391, 0.89121, 0.84168, 0.79510, 0.75128],
}
"""The same file's decays of Gln, Tau and the macromolecules ("MM" there; the set's basis
calls its measured MM entry ``Mac``): issue 13's other published-set targets."""

FSL_MRS_RMS = {"tNAA": 0.007, "tCr": 0.007, "tCho": 0.014, "Ins": 0.035, "Glu": 0.035}
"""RMS errors of S(b)/S(0) reached by FSL-MRS on that set (issue 4; Ins/Glu: 0.018-0.035)."""

TARGETS = {"tNAA": 0.005, "tCr": 0.005, "tCho": 0.005, "Ins": 0.015, "Glu": 0.015,
           "Gln": 0.02, "Tau": 0.02}


def rms_decay_error(fits, truth_decays: dict, names) -> dict:
    out = {}
    for name in names:
        amplitudes = fits.series(name)[0]
        error = amplitudes / amplitudes[0] - np.asarray(truth_decays[name])
        out[name] = float(np.sqrt(np.mean(error[1:] ** 2)))
    return out


@pytest.fixture(scope="module")
def pregame_basis(shared_data):
    from pipeline.io.basis_formats import read_basis

    stored = read_basis(shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS")
    return truncated(stored, 1024)


@pytest.fixture(scope="module")
def press_basis(shared_data):
    from pipeline.io.basis_formats import read_basis

    return read_basis(shared_data / "ismrm2016_fitting_challenge" / "basisset_text_noTMS",
                      dwell_s=ISMRM_DWELL_S, cf_mhz=ISMRM_CF_MHZ)


NOISELESS_CASES = {"7t_pregame": ("pregame_basis", pregame_7t_spec, (0.5, 4.2)),
                   "3t_press_te30": ("press_basis", press_3t_spec, (0.2, 4.2))}
"""Preset, its basis fixture and the fitted ppm window of each noiseless case."""


@pytest.mark.parametrize("mode", ["sequential", "joint"])
@pytest.mark.parametrize("case", sorted(NOISELESS_CASES))
def test_noiseless_preset_data_are_fitted_without_bias(case, mode, request):
    basis_fixture, make_spec, ppm_range = NOISELESS_CASES[case]
    basis = request.getfixturevalue(basis_fixture)
    result = simulate_acquisition(basis, make_spec(basis.names, snr=None, n_transients=1))
    acq = result.metabolite
    options = FitOptions(ppm_range=ppm_range, mode=mode, joint_default_model="sticks",
                         joint_mm_model="monoexponential")
    fits = fit_conditions(acq.fids[:, 0, 0, :], basis, acq.dwell_s, acq.cf_mhz,
                          acq.b_values_s_mm2, options)
    errors = rms_decay_error(fits, result.truth["decays"], list(TARGETS) + ["Mac"])
    assert all(e < 1e-3 for e in errors.values()), errors


@pytest.fixture(scope="module")
def pregame_averages(shared_data):
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.preprocess.align import align_transients

    acq = read_nifti_mrs(shared_data / "dmrs_7t_steam_synthetic" / "nifti" / "synthetic.nii.gz")
    averages = np.array([align_transients(acq.fids[c, :, 0, :], acq.dwell_s, acq.cf_mhz,
                                          n_iterations=1, n_model_iterations=0).corrected.mean(0)
                         for c in range(acq.n_conditions)])
    return averages, acq


@pytest.mark.parametrize("mode", ["sequential", "joint"])
def test_published_pregame_set_against_its_ground_truth(pregame_basis, pregame_averages, mode):
    averages, acq = pregame_averages
    assert np.allclose(acq.b_values_s_mm2, PREGAME_B_VALUES_S_MM2)
    # frames shared as declared (no frame test): with the frame test this parametric fit moves
    # to per-condition frames, tCho/Glu/Tau/MM 0.0118/0.024/0.084/0.013 -> 0.0053/0.020/
    # 0.066/0.0059 but tCr 0.0034 -> 0.0061 (README "dMRS defaults")
    options = FitOptions(ppm_range=(0.5, 4.2), mode=mode, joint_default_model="biexponential",
                         joint_shared=("lineshape", "shift", "phase"), joint_frame_test_p=0)
    fits = fit_conditions(averages, pregame_basis, acq.dwell_s, acq.cf_mhz,
                          acq.b_values_s_mm2, options)
    errors = rms_decay_error(fits, PREGAME_GT_DECAY, list(PREGAME_GT_DECAY))
    print(f"\npregame set, {mode}: RMS error of S(b)/S(0) "
          + ", ".join(f"{k} {v:.4f} (target {TARGETS[k]})" for k, v in errors.items()))
    assert errors["tNAA"] <= FSL_MRS_RMS["tNAA"]
    assert errors["tCho"] <= FSL_MRS_RMS["tCho"]
    assert errors["Ins"] <= FSL_MRS_RMS["Ins"] and errors["Glu"] <= FSL_MRS_RMS["Glu"]
    if mode == "joint":
        assert errors["tCr"] <= FSL_MRS_RMS["tCr"]
        assert errors["tCr"] <= TARGETS["tCr"]
    else:
        assert errors["tNAA"] <= TARGETS["tNAA"]


CALIBRATION_TRUTH = {"NAA": 12.0, "NAAG": 1.5, "Cr": 5.0, "PCr": 4.0, "GPC": 1.2, "PCho": 0.8,
                     "Ins": 6.0, "Glu": 10.0, "Gln": 3.0, "Tau": 1.5, "GSH": 2.0, "Mac": 8.0}


@pytest.mark.parametrize("priors, stiffness_chosen", [(False, False), (True, False),
                                                      (False, True)])
def test_crlbs_are_calibrated_over_200_noise_realisations(press_basis, priors,
                                                          stiffness_chosen):
    """SD over noise / CRLB within 0.75-1.25. Without amplitude priors the estimates are also
    unbiased; with the default weak-metabolite priors the CRLB (the sandwich covariance with
    the prior rows) still describes the spread, but GSH and Gln are pulled towards the prior's
    GSH/(Gln + GSH) = 0.286 (truth 0.4): a bias by design, not checked. The CRLB holds the
    spline stiffness fixed: with the stiffness chosen per spectrum
    (``baseline_stiffness_choices``, the default) the choice adds its own spread. On this
    spectrum, which has no baseline, the choice hops between 0.1 and 10000 from one noise draw
    to the next, and the spread is 1.09-1.41 x the CRLB for the metabolites and 1.95 x for the
    broad MM entry (bounded here at 1.5 and 2.1); with a smooth baseline in the spectrum the
    choice is stable (0.03-0.1) and it is 1.04-1.30 x. The metabolites stay unbiased (below
    0.25 CRLB); the MM entry is biased by 0.5 CRLB. (Measured before with the search
    started from the noiseless spectrum's choice, a test setup fault: 0.97-1.15 and 1.47 x.)"""
    basis = truncated(press_basis.subset(list(CALIBRATION_TRUTH)), 1024)
    options = FitOptions(ppm_range=(0.5, 4.2), weak_metabolite_priors=priors,
                         **({} if stiffness_chosen else {"baseline_stiffness_choices": ()}))
    clean = synthetic_fid(basis, CALIBRATION_TRUTH, lorentz_hz=4.0, gauss_hz=3.0, shift_hz=1.5,
                          phase_rad=0.3)
    noise_sd = float(np.abs(clean[0])) / 150
    rng = np.random.default_rng(2024)
    reference = fit_spectrum(clean, basis, ISMRM_DWELL_S, ISMRM_CF_MHZ, options)
    # reused for every noisy spectrum: the stiffness chosen for the noiseless one is reset
    # (``model.for_new_spectrum``), so each search starts from the configured stiffness
    problem, start = reference.extra["problem"], reference.theta
    estimates, crlbs = [], []
    for _ in range(200):
        noisy = clean + noise_sd * (rng.standard_normal(clean.size)
                                    + 1j * rng.standard_normal(clean.size))
        # started at the noiseless optimum (skips the initial search, not the fit): the spread
        # measured is that of the minimum the solver reaches from there
        fit = fit_spectrum(noisy, basis, ISMRM_DWELL_S, ISMRM_CF_MHZ, options, problem=problem,
                           initial=start)
        estimates.append(fit.amplitudes)
        crlbs.append(fit.crlb)
    estimates, crlbs = np.array(estimates), np.array(crlbs)
    truth = np.array([CALIBRATION_TRUTH[n] for n in basis.names])
    ratio = estimates.std(axis=0, ddof=1) / crlbs.mean(axis=0)
    crlb_percent = 100 * crlbs.mean(axis=0) / truth
    report = {n: (round(float(r), 2), round(float(p), 1))
              for n, r, p in zip(basis.names, ratio, crlb_percent)}
    print(f"\nSD/CRLB and CRLB% per metabolite: {report}")
    assert np.any(crlb_percent > 5) and np.any(crlb_percent < 5)
    for name, r, pct in zip(basis.names, ratio, crlb_percent):
        if pct < 50:  # beyond 50 % the non-negativity bound truncates the estimates
            high = (1.25 if not stiffness_chosen else 2.1 if name == "Mac" else 1.5)
            assert 0.75 <= r <= high, f"{name}: SD/CRLB = {r:.2f} at CRLB {pct:.1f} %"
    bias = np.abs(estimates.mean(axis=0) - truth) / crlbs.mean(axis=0)
    if not priors:  # the broad MM trades signal with a chosen baseline: bias 0.5 CRLB
        checked = (crlb_percent < 20) & ~(stiffness_chosen & (np.array(basis.names) == "Mac"))
        assert np.all(bias[checked] < 0.3)
    else:  # GSH lies between its truth and the prior's GSH = 0.286/0.714 Gln
        gsh = basis.names.index("GSH")
        target = 0.286 / (1 - 0.286) * CALIBRATION_TRUTH["Gln"]
        slack = 0.3 * crlbs.mean(axis=0)[gsh]
        assert target - slack < estimates.mean(axis=0)[gsh] < CALIBRATION_TRUTH["GSH"] - slack


def test_joint_fit_meets_decay_targets_at_pregame_parameters(pregame_basis):
    """Synthetic dMRS at the parameters of the published pregame set (preset: its noise, MM
    level, lineshape; see tests/test_presets.py). Joint fit, sticks model, tied pairs; 4
    realisations here, 40 in ``benchmarks/bench_fitting.py --accuracy`` (same study code,
    ``tests/fitting_studies.py``, which also gives the Cramér–Rao floor of every decay)."""
    names = list(TARGETS) + ["Mac"]
    errors = decay_errors(pregame_basis,
                          lambda seed: pregame_7t_spec(pregame_basis.names, seed=seed),
                          range(4), names, modes=("joint",))
    rms = {n: study_rms(errors["joint"][n]) for n in names}
    floor = {n: float(np.sqrt(np.mean(errors["floor_variance"][n]))) for n in ("Gln", "Tau")}
    print("\nsynthetic pregame, joint: " + ", ".join(f"{n} {v:.4f}" for n, v in rms.items())
          + f"\nCramér–Rao floor of the RMS error: {floor}")
    for name in ("tNAA", "tCr", "tCho", "Ins", "Glu", "Gln"):
        assert rms[name] <= TARGETS[name], (name, rms[name])
    assert rms["Mac"] <= 0.02
    # Tau misses 0.02 by a little (0.026 over 40 realisations): the CRLB of its D_intra alone
    # gives an RMS floor of ~0.027 at this noise level. The fit must reach that floor.
    assert floor["Tau"] > TARGETS["Tau"]
    assert rms["Tau"] <= 1.2 * floor["Tau"], (rms["Tau"], floor["Tau"])
