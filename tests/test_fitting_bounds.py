"""Parameters that end at a search limit are retried and then reported (issue 13, item 3).

Truth is constructed: spectra whose true shift or Gaussian width lies beyond the allowed range
must end at that limit and be listed in ``SpectralFit.at_bounds``; spectra inside the range
must leave the list empty.
"""

import numpy as np
import pytest

from pipeline.fitting import FitOptions, fit_spectrum
from pipeline.fitting.single import parameters_at_bounds

from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, synthetic_fid

TRUTH = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3, "Ins": 0.5}


def _fit(shift_hz=0.0, gauss_hz=3.0, **options):
    basis = singlet_basis(list(TRUTH))
    fid = synthetic_fid(basis, TRUTH, gauss_hz=gauss_hz, shift_hz=shift_hz, noise_sd=0.02)
    return fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(1.0, 4.0), **options))


def test_a_fit_inside_its_limits_reports_nothing():
    fit = _fit(shift_hz=3.0)
    assert fit.at_bounds == []
    assert fit.extra["n_restarts"] == 0
    assert fit.shift_hz["metabolites"] == np.clip(fit.shift_hz["metabolites"], 2.5, 3.5)


def test_a_shift_beyond_its_limit_is_retried_and_reported():
    # 0.1 ppm allowed, 0.16 ppm true, no singlet referencing: the nearest the model can get is
    # the upper limit
    fit = _fit(shift_hz=0.16 * CF_MHZ, max_shift_ppm=0.1, reference_singlets=False)
    assert fit.extra["n_restarts"] > 0
    assert "shift_hz[metabolites] (upper)" in fit.at_bounds
    assert abs(fit.shift_hz["metabolites"] - 0.1 * CF_MHZ) < 0.01


def test_singlet_referencing_reaches_a_shift_beyond_the_nominal_limit():
    # the same spectrum with the default referencing: the shift is found, no bound is reported
    fit = _fit(shift_hz=0.16 * CF_MHZ, max_shift_ppm=0.1)
    assert fit.at_bounds == []
    assert abs(fit.shift_hz["metabolites"] - 0.16 * CF_MHZ) < 0.5
    assert abs(fit.amplitudes[fit.names.index("Cr")] / fit.amplitudes[fit.names.index("NAA")]
               - 0.8) < 0.05


def test_a_width_beyond_its_limit_is_reported():
    fit = _fit(gauss_hz=25.0, max_gauss_hz=10.0, max_lorentz_hz=2.0)
    assert "gauss[metabolites] (upper)" in fit.at_bounds
    assert "damp[metabolites] (upper)" in fit.at_bounds


def test_zero_width_is_a_physical_limit_not_a_reported_bound():
    fit = _fit()
    problem = fit.extra["problem"]
    theta = fit.theta.copy()
    k = problem.n_groups
    theta[:2 * k] = 0.0
    assert parameters_at_bounds(problem, theta) == []


def test_a_width_fixed_at_zero_is_not_searched_so_not_reported():
    """``max_gauss_hz = 0`` (Lorentzian lines only, a valid setting): the Gaussian width is
    fixed, not at a search limit. It was reported on every fit and cost three restarts."""
    fit = _fit(gauss_hz=0.0, max_gauss_hz=0.0)
    assert fit.at_bounds == []
    assert fit.extra["n_restarts"] == 0
    assert fit.gauss_fwhm_hz["metabolites"] == 0.0
    assert abs(fit.amplitudes[fit.names.index("Cr")] / fit.amplitudes[fit.names.index("NAA")]
               - 0.8) < 0.02


def test_joint_fits_report_parameters_at_their_limits_per_condition():
    from pipeline.fitting import fit_conditions
    basis = singlet_basis(list(TRUTH))
    b_s_mm2 = np.array([0.0, 1000.0, 2000.0])
    rng = np.random.default_rng(4)
    fids = np.array([synthetic_fid(basis, {k: v * np.exp(-1e-4 * b) for k, v in TRUTH.items()},
                                   shift_hz=0.16 * CF_MHZ, noise_sd=0.02, rng=rng)
                     for b in b_s_mm2])
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, b_s_mm2,
                          FitOptions(ppm_range=(1.0, 4.0), max_shift_ppm=0.1, mode="joint",
                                     joint_shared=("lineshape", "shift"),
                                     reference_singlets=False))
    assert fits.mode == "joint"
    for fit in fits.fits:
        assert "shift_hz[metabolites] (upper)" in fit.at_bounds


def test_parameters_left_at_a_limit_become_qc_warnings_naming_the_condition():
    from types import SimpleNamespace

    from pipeline.fitting.conditions import bound_flags

    inside, outside = _fit(shift_hz=3.0), _fit(shift_hz=0.16 * CF_MHZ, max_shift_ppm=0.1,
                                           reference_singlets=False)
    flags = bound_flags(SimpleNamespace(fits=[inside, outside]), lambda c: f"condition {c}")
    assert len(flags) == 1
    assert flags[0].startswith("fit: condition 1: shift_hz[metabolites] (upper)")
    # the same limits in several conditions: one warning naming them all
    flags = bound_flags(SimpleNamespace(fits=[outside, inside, outside]),
                        lambda c: f"condition {c}")
    assert len(flags) == 1
    assert flags[0].startswith("fit: condition 0; condition 2: shift_hz[metabolites] (upper)")
    # in every condition of a series (a joint fit's shared parameter): said once, not listed
    flags = bound_flags(SimpleNamespace(fits=[outside, outside, outside]),
                        lambda c: f"condition {c}")
    assert len(flags) == 1
    assert flags[0].startswith("fit: every condition (3): shift_hz[metabolites] (upper)")


def test_limits_of_a_group_with_no_signal_are_not_reported():
    # a second lineshape group ("extra": Lac, absent from the data) whose width and shift sit
    # at their limits: undetermined, not a fit problem, as long as its amplitude is zero
    basis = singlet_basis(list(TRUTH) + ["Lac"])
    fid = synthetic_fid(basis, {**TRUTH, "Lac": 0.0}, noise_sd=0.02)
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                       FitOptions(ppm_range=(1.0, 4.0), lineshape_groups={"extra": ["Lac"]}))
    problem = fit.extra["problem"]
    g, k = problem.group_names.index("extra"), problem.n_groups
    theta = fit.theta.copy()
    theta[g], theta[2 * k + g] = problem.upper[g], problem.upper[2 * k + g]
    amplitudes = np.where(np.array(problem.names) == "Lac", 0.0, 1.0)
    assert parameters_at_bounds(problem, theta, amplitudes) == []
    assert set(parameters_at_bounds(problem, theta, np.ones(len(problem.names)))) == {
        "damp[extra] (upper)", "shift_hz[extra] (upper)"}


def test_limits_of_undetected_components_are_reported_apart_from_fit_problems():
    """Lipids fitted at 1 CRLB (demo data without lipids) with their width at its limit: the
    warning says they were not detected, not to check the referencing; detected, they are a
    fit problem again."""
    import dataclasses
    from types import SimpleNamespace

    from pipeline.fitting.conditions import bound_flags

    basis = singlet_basis(list(TRUTH) + ["Lac"])
    fid = synthetic_fid(basis, {**TRUTH, "Lac": 0.0}, noise_sd=0.02)
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ,
                       FitOptions(ppm_range=(1.0, 4.0), lineshape_groups={"extra": ["Lac"]}))
    lac = fit.names.index("Lac")
    limits = ["damp[extra] (upper)", "shift_hz[metabolites] (upper)"]

    def flags_with_lac_at(n_crlb):
        amplitudes = fit.amplitudes.copy()
        amplitudes[lac] = n_crlb * fit.crlb[lac]
        changed = dataclasses.replace(fit, amplitudes=amplitudes, at_bounds=limits)
        return bound_flags(SimpleNamespace(fits=[changed]), lambda c: f"condition {c}")

    undetected = flags_with_lac_at(1.0)
    assert len(undetected) == 2
    assert undetected[0].startswith("fit: condition 0: shift_hz[metabolites] (upper) at its "
                                    "search limit after restarts (check the spectrum's")
    assert undetected[1].startswith("fit: condition 0: damp[extra] (upper) at its search "
                                    "limit, for components not detected")
    detected = flags_with_lac_at(5.0)
    assert detected == ["fit: condition 0: damp[extra] (upper), shift_hz[metabolites] (upper) at "
                        "its search limit after restarts (check the spectrum's referencing, "
                        "phase and [fitting] limits)"]


def test_a_group_is_detected_by_its_summed_amplitude_and_covariance():
    """Each of two MM-like components alone at 1.5 SD is not detected; their sum (3 against
    an SD of sqrt(2 + 2 rho)) is when their errors are independent or anti-correlated, not
    when they are strongly correlated; an unmeasured entry (infinite variance) is left out."""
    from pipeline.fitting.conditions import detected

    amplitudes = np.array([1.5, 1.5, 7.0])
    both = np.array([True, True, False])

    def covariance(rho, third=1.0):
        return np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, third]])

    assert not detected(amplitudes, covariance(0.0), np.array([True, False, False]))
    assert detected(amplitudes, covariance(0.0), both)          # 3 > 2 * 1.41
    assert detected(amplitudes, covariance(-0.9), both)         # 3 > 2 * 0.45
    assert not detected(amplitudes, covariance(0.9), both)      # 3 < 2 * 1.95
    assert detected(amplitudes, covariance(0.0, np.inf), np.ones(3, bool))
    assert not detected(amplitudes, covariance(0.0, np.inf), np.array([False, False, True]))


def test_macromolecule_entries_zero_everywhere_become_one_qc_warning():
    """MM entries at 0 in every condition are named in one warning; one positive MM amplitude
    anywhere, or no MM entry at all, gives none (lipids are not MM entries)."""
    from types import SimpleNamespace

    from pipeline.fitting.conditions import absent_mm_flags

    names = ["NAA", "Cr", "Mac", "MM20", "Lip13"]

    def fits(*amplitudes):
        return SimpleNamespace(names=names, fits=[SimpleNamespace(amplitudes=np.array(a))
                                                  for a in amplitudes])

    (flag,) = absent_mm_flags(fits([1.0, 0.5, 0.0, 0.0, 0.2], [0.8, 0.4, 0.0, 0.0, 0.1]))
    assert "(Mac, MM20) are 0 in every condition" in flag and "parametric" in flag
    assert absent_mm_flags(fits([1.0, 0.5, 0.0, 0.0, 0.2], [0.8, 0.4, 0.0, 1e-4, 0.0])) == []
    no_mm = SimpleNamespace(names=["NAA", "Lip13"],
                            fits=[SimpleNamespace(amplitudes=np.array([1.0, 0.0]))])
    assert absent_mm_flags(no_mm) == []


def test_an_all_zero_fid_is_refused_with_its_reason():
    basis = singlet_basis(list(TRUTH))
    with pytest.raises(ValueError, match="all zeros"):
        fit_spectrum(np.zeros(basis.n_points, complex), basis, DWELL_S, CF_MHZ)


def test_a_lineshape_group_naming_no_basis_entry_warns():
    with pytest.warns(UserWarning, match=r"lineshape_groups: \['Crr', 'NAAA'\]"):
        fit = _fit(lineshape_groups={"singlets": ["NAAA", "Crr", "Cho"]})
    assert "singlets" in fit.lorentz_fwhm_hz  # the matching member still forms its group
