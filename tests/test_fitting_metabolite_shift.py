"""Per-metabolite shifts with a Gaussian prior (``FitOptions.metabolite_shift_sd_ppm``, issue 13).

Truth is constructed: the data are the toy singlet basis with one entry (Cr) moved by a known
0.008 ppm against the basis. One shift for all metabolites cannot follow it; a shift of its own
per metabolite can. The prior is checked analytically on a parameter the data cannot see.
"""

import warnings

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.fitting import FitOptions, fit_spectrum
from pipeline.fitting.priors import WithPrior, own_shift_weights
from pipeline.qc.metrics import fit_quality

from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, synthetic_fid

TRUTH = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3, "Ins": 0.5}
CR_OFFSET_PPM = 0.008
NOISE_SD = 0.01


def _data_and_basis():
    basis = singlet_basis(list(TRUTH))
    t = np.arange(basis.n_points) * DWELL_S
    moved = basis.fids.copy()
    moved[basis.names.index("Cr")] *= np.exp(2j * np.pi * CR_OFFSET_PPM * CF_MHZ * t)
    data_basis = Basis(basis.names, moved, DWELL_S, CF_MHZ)
    fid = synthetic_fid(data_basis, TRUTH, lorentz_hz=2.0, gauss_hz=3.0, shift_hz=2.0,
                        noise_sd=NOISE_SD)
    return fid, basis


def _fit(**options):
    fid, basis = _data_and_basis()
    opts = FitOptions(ppm_range=(1.0, 4.0), **options)
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, opts)
    quality = fit_quality(fid, fit.fitted_fid, DWELL_S, CF_MHZ, fit_ppm=opts.ppm_range)
    return fit, quality["fit_quality"]


def test_own_shift_follows_a_moved_singlet():
    fit, _ = _fit(metabolite_shift_sd_ppm=0.004)
    names = fit.extra["problem"].theta_names()
    theta = dict(zip(names, fit.theta))
    cr_hz = theta["shift_hz[Cr]"] - np.mean([theta[f"shift_hz[{n}]"] for n in ("NAA", "Cho", "Ins")])
    assert cr_hz == pytest.approx(CR_OFFSET_PPM * CF_MHZ, abs=0.15)
    assert fit.at_bounds == []


def test_own_shift_lowers_residual_and_recovers_amplitudes():
    common, common_quality = _fit(metabolite_shift_sd_ppm=0.0)
    own, own_quality = _fit(metabolite_shift_sd_ppm=0.004)
    assert own_quality < 0.6 * common_quality
    assert own_quality < 1.2
    for fit, tol in ((own, 0.03),):
        ratio = fit.amplitude("Cr") / fit.amplitude("NAA")
        assert ratio == pytest.approx(TRUTH["Cr"] / TRUTH["NAA"], rel=tol)


def test_zero_sd_keeps_one_shift_per_group():
    fit, _ = _fit(metabolite_shift_sd_ppm=0.0)
    assert fit.extra["problem"].own_shift.size == 0
    assert not any(n.startswith("shift_hz[") and n != "shift_hz[metabolites]"
                   for n in fit.extra["problem"].theta_names())


def test_prior_rows_pull_an_unseen_parameter_to_zero():
    # residual that ignores x[1]: the prior alone decides it, x[0] is fitted exactly
    weights = own_shift_weights(2, [1], sigma_scaled=0.5, sd_hz=2.0)
    assert weights.tolist() == [0.0, 0.25]
    problem = WithPrior(lambda x: np.array([x[0] - 3.0]),
                        lambda x: np.array([[1.0, 0.0]]), weights)
    x = np.array([3.0, 4.0])
    assert problem.residual(x).tolist() == [0.0, 1.0]
    assert problem.jacobian(x).tolist() == [[1.0, 0.0], [0.0, 0.25]]
    plain = WithPrior(lambda x: np.array([x[0] - 3.0]), lambda x: np.array([[1.0, 0.0]]),
                      np.zeros(2))
    assert plain.residual(x).tolist() == [0.0]
    assert plain.jacobian(x).shape == (1, 2)


def test_negative_sd_is_refused():
    with pytest.raises(ValueError, match="metabolite_shift_sd_ppm"):
        FitOptions(metabolite_shift_sd_ppm=-0.001)


def test_per_entry_sds_give_per_entry_weights():
    weights = own_shift_weights(4, [1, 3], sigma_scaled=0.5, sd_hz=[2.0, 0.5])
    assert weights.tolist() == [0.0, 0.25, 0.0, 1.0]
    assert own_shift_weights(3, [0, 2], 0.5, [0.0, 1.0]).tolist() == [0.0, 0.0, 0.5]


def _problem(options):
    from pipeline.fitting import model as M
    basis = singlet_basis(list(TRUTH))
    return M, M.build_problem(basis, DWELL_S, basis.n_points, CF_MHZ, options, None)


def test_naa_shift_sd_is_lcmodels_by_default():
    """LCModel's ALSDSH: NAA 0.002 ppm and free choline 0.008 ppm against DESDSH 0.004 ppm for
    the rest; the hard limit never falls below 4 default SDs (0.016 ppm)."""
    options = FitOptions(ppm_range=(1.0, 4.0))
    M, problem = _problem(options)
    names = [problem.names[i] for i in problem.own_shift]
    sd_ppm = dict(zip(names, M.own_shift_sd_hz(problem, options) / CF_MHZ))
    assert sd_ppm == pytest.approx({"NAA": 0.002, "Cr": 0.004, "Cho": 0.008, "Ins": 0.004})
    limit_ppm = dict(zip(names, problem.upper[problem.n_base_theta:] / CF_MHZ))
    assert limit_ppm == pytest.approx({"NAA": 0.016, "Cr": 0.016, "Cho": 0.032, "Ins": 0.016})


def test_bad_sd_factors_are_refused_naming_the_key():
    for bad in ({"NAA": 0.0}, {"NAA": -1.0}, {"NAA": "tight"}, {"NAA": float("nan")},
                {"NAA": 30.0}, ["NAA"]):  # 30 x 0.004 ppm: beyond the 0.1 ppm an SD may be
        with pytest.raises(ValueError, match="metabolite_shift_sd_factors"):
            FitOptions(metabolite_shift_sd_factors=bad)


def test_config_table_of_factors_replaces_the_default_whole(tmp_path):
    """A user's table is taken as given: {} is one SD for all, other names are accepted, and
    LCModel's entries do not linger; bad values are refused naming the key."""
    from bids_app.config import ConfigError, load_config

    def loaded(text):
        path = tmp_path / "c.toml"
        path.write_text(f"[fitting]\nmetabolite_shift_sd_factors = {text}\n")
        return load_config(path)["fitting"]["metabolite_shift_sd_factors"]

    assert loaded("{}") == {}
    assert loaded("{ Cr = 0.5 }") == {"Cr": 0.5}
    assert loaded("{ NAA = 1 }") == {"NAA": 1}
    with pytest.raises(ConfigError, match="metabolite_shift_sd_factors"):
        loaded("{ NAA = -1 }")


def test_a_factor_naming_no_own_shift_is_reported():
    """A misspelt or absent name warns, naming it; LCModel's defaults absent from a basis (here
    NAAG) do not."""
    fid, basis = _data_and_basis()
    with pytest.warns(UserWarning, match="'NAa'"):
        fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(
            ppm_range=(1.0, 4.0), metabolite_shift_sd_factors={"NAa": 0.5, "NAAG": 0.5}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(1.0, 4.0)))


def _naa_moved_fit(offset_ppm, noise_sd, factors):
    basis = singlet_basis(list(TRUTH))
    t = np.arange(basis.n_points) * DWELL_S
    moved = basis.fids.copy()
    moved[basis.names.index("NAA")] *= np.exp(2j * np.pi * offset_ppm * CF_MHZ * t)
    fid = synthetic_fid(Basis(basis.names, moved, DWELL_S, CF_MHZ), TRUTH, lorentz_hz=2.0,
                        gauss_hz=3.0, shift_hz=2.0, noise_sd=noise_sd,
                        rng=np.random.default_rng(0))
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                       FitOptions(ppm_range=(1.0, 4.0), metabolite_shift_sd_factors=factors))
    theta = dict(zip(fit.extra["problem"].theta_names(), fit.theta))
    others = np.mean([theta[f"shift_hz[{n}]"] for n in ("Cr", "Cho", "Ins")])
    return (theta["shift_hz[NAA]"] - others) / CF_MHZ, fit.at_bounds


def test_tighter_naa_prior_pulls_but_does_not_clip():
    """NAA moved by 0.010 ppm, 5 of its prior SDs: at low noise the fit still finds it (a limit
    at 4 x 0.002 ppm would have clipped it at 0.008 and reported a bound); at high noise the
    tighter prior pulls the estimate further towards the group's shift than the default SD."""
    found, at_bounds = _naa_moved_fit(0.010, 0.01, {"NAA": 0.5})
    assert found == pytest.approx(0.010, abs=2e-4)
    assert at_bounds == []
    tight, _ = _naa_moved_fit(0.010, 0.3, {"NAA": 0.5})
    loose, _ = _naa_moved_fit(0.010, 0.3, {})
    assert 0.0 < tight < loose < 0.010 + 2e-4


def test_series_use_one_sd_and_the_joint_solver_maps_per_entry_sds():
    """A diffusion series drops the factors (measured: README "Default fit"); given factors,
    the joint solver's prior weights follow each metabolite, shared or per condition."""
    from pipeline.fitting.conditions import series_options
    from pipeline.fitting.joint import build_layout, joint_solver

    assert series_options(FitOptions()).metabolite_shift_sd_factors == {}
    options = FitOptions(ppm_range=(1.0, 4.0))
    M, problem = _problem(options)
    b = np.array([0.0, 1.0, 3.0])
    sd_hz = dict(zip([problem.names[i] for i in problem.own_shift],
                     M.own_shift_sd_hz(problem, options)))
    for shared in (frozenset({"lineshape", "shift", "own_shift", "phase"}),
                   frozenset({"lineshape", "phase"})):
        layout = build_layout(problem, b, options, shared)
        _, solve = joint_solver(problem, np.zeros((3, problem.window.size), complex), b,
                                layout, 0.5, options)
        weights = dict(zip(solve.index, solve.weights))
        for j, m in enumerate(problem.own_shift):
            for idx in layout.theta_index[:, problem.n_base_theta + j]:
                assert weights[idx] == pytest.approx(0.5 / sd_hz[problem.names[m]])


def test_joint_fit_shares_the_own_shifts_across_conditions():
    """Three conditions whose amplitudes decay with known factors; the moved Cr line keeps its
    offset at every b. The joint fit (default shape-free mode, shift shared) finds one Cr shift
    for all conditions and the decays within the noise."""
    from pipeline.fitting import fit_conditions

    _, basis = _data_and_basis()
    t = np.arange(basis.n_points) * DWELL_S
    moved = basis.fids.copy()
    moved[basis.names.index("Cr")] *= np.exp(2j * np.pi * CR_OFFSET_PPM * CF_MHZ * t)
    data_basis = Basis(basis.names, moved, DWELL_S, CF_MHZ)
    decays = {"NAA": (1.0, 0.7, 0.4), "Cr": (1.0, 0.6, 0.3), "Cho": (1.0, 0.65, 0.35),
              "Ins": (1.0, 0.62, 0.32)}
    rng = np.random.default_rng(3)
    fids = np.array([synthetic_fid(data_basis, {n: TRUTH[n] * decays[n][c] for n in TRUTH},
                                   lorentz_hz=2.0, gauss_hz=3.0, shift_hz=2.0,
                                   noise_sd=NOISE_SD, rng=rng) for c in range(3)])
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, [0.0, 1000.0, 3000.0],
                          FitOptions(ppm_range=(1.0, 4.0), metabolite_shift_sd_ppm=0.004))
    names = fits.fits[0].extra["problem"].theta_names()
    cr = [dict(zip(names, f.theta))["shift_hz[Cr]"] for f in fits.fits]
    naa = [dict(zip(names, f.theta))["shift_hz[NAA]"] for f in fits.fits]
    assert np.ptp(cr) == 0.0
    assert set(fits.fits[0].extra["priors"]["own_shift_sd_ppm"].values()) == {0.004}
    assert cr[0] - naa[0] == pytest.approx(CR_OFFSET_PPM * CF_MHZ, abs=0.2)
    for name in ("NAA", "Cr"):
        amplitudes = fits.series(name)[0]
        assert amplitudes / amplitudes[0] == pytest.approx(decays[name], abs=0.02)


def test_methods_text_states_the_shift_priors_the_fits_recorded():
    """fit.json records each own shift's prior SD; the methods text names the usual SD and
    LCModel's tighter NAA/NAAG in a single spectrum, one SD for a series, nothing without."""
    from bids_app.citation import _own_shift_clause
    from pipeline.fitting import fit_conditions

    single, _ = _fit()
    recorded = single.extra["priors"]["own_shift_sd_ppm"]
    assert recorded == pytest.approx({"NAA": 0.002, "Cr": 0.004, "Cho": 0.008, "Ins": 0.004})
    clause = _own_shift_clause([{"fit.json": {"conditions": [{"priors": single.extra["priors"]}]}}])
    assert "SD 0.004 ppm; Cho 0.008, NAA 0.002 ppm" in clause
    fid, basis = _data_and_basis()
    series = fit_conditions(np.array([fid, 0.8 * fid]), basis, DWELL_S, CF_MHZ, [0.0, 1000.0],
                            FitOptions(ppm_range=(1.0, 4.0), mode="sequential"))
    stage = {"fit.json": {"conditions": [{"priors": f.extra["priors"]} for f in series.fits]}}
    assert _own_shift_clause([stage]).endswith("(Gaussian prior SD 0.004 ppm)")
    none, _ = _fit(metabolite_shift_sd_ppm=0.0)
    assert _own_shift_clause([{"fit.json": {"conditions": [{"priors": none.extra["priors"]}]}}]) == ""


def test_an_own_shift_left_at_its_limit_is_flagged_on_the_amplitude_row():
    """NAA moved 0.03 ppm from the others, its shift limited to 4 prior SDs (0.008 ppm): a
    limit holds, and ``_amplitudes.tsv`` says so on that metabolite's own row (the in-vivo Ala
    that absorbed a lipid line at 5.5 mM carried the warning only in the log)."""
    from pipeline.fitting.conditions import amplitudes_table

    basis = singlet_basis(list(TRUTH))
    t = np.arange(basis.n_points) * DWELL_S
    moved = basis.fids.copy()
    moved[basis.names.index("NAA")] *= np.exp(2j * np.pi * 0.03 * CF_MHZ * t)
    fid = synthetic_fid(Basis(basis.names, moved, DWELL_S, CF_MHZ), TRUTH, lorentz_hz=2.0,
                        gauss_hz=3.0, noise_sd=0.01, rng=np.random.default_rng(0))
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                       FitOptions(ppm_range=(1.0, 4.0), metabolite_shift_sd_factors={"NAA": 0.5}))
    # NAA sits 0.03 ppm above the others, further than the 0.008 ppm their own shifts may
    # reach: with the group's shift on NAA, Cr, Cho and Ins hold at their lower limits
    assert sorted(fit.at_bounds) == sorted(f"shift_hz[{n}] (lower)" for n in ("Cr", "Cho", "Ins"))
    flags = {r["metabolite"]: r["fit_flags"] for r in amplitudes_table(fit)}
    assert {n: flags[n] for n in TRUTH} == {"NAA": None, **{
        n: "own shift at its lower search limit" for n in ("Cr", "Cho", "Ins")}}
    assert flags["tNAA"] is None
    # a precision mostly from the priors is flagged on its row too
    import dataclasses
    leaning = dataclasses.replace(fit, extra={**fit.extra, "prior_variance_share": {"NAA": 0.6}})
    flags = {r["metabolite"]: r["fit_flags"] for r in amplitudes_table(leaning)}
    assert flags["NAA"] == "60% of the variance removed by the priors"
