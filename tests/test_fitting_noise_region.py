"""``noise = "region"``: the noise SD (and so every CRLB) comes from a signal-free region, in
single spectra and in joint dMRS fits alike.

Truth: complex white noise of SD ``s`` per real part in the time domain has SD ``s sqrt(N)``
per real point of the unnormalised spectrum (``fid_to_spectrum``). A line the basis lacks
inflates the residual, so the residual's estimate is too high and the region's is not; the
joint fit used the residual whatever the option said.
"""

import warnings

import numpy as np
import pytest

from pipeline.fitting import FitOptions, fit_conditions, fit_spectrum

from test_fitting_support import CF_MHZ, DWELL_S, N_POINTS, singlet_basis, singlet_fid, synthetic_fid

B_S_MM2 = np.array([0.0, 1000.0, 3000.0, 6000.0])
ADC_UM2_MS = {"NAA": 0.12, "Cr": 0.16, "Cho": 0.10}
NOISE_SD = 0.05
"""Time-domain noise SD per real part."""


def series_with_an_unmodelled_line(rng) -> np.ndarray:
    basis = singlet_basis(tuple(ADC_UM2_MS))
    fids = [synthetic_fid(basis, {n: 10 * np.exp(-b / 1000 * d) for n, d in ADC_UM2_MS.items()},
                          lorentz_hz=3.0, gauss_hz=3.0, noise_sd=NOISE_SD, rng=rng)
            + 4 * np.exp(-b / 1000 * 0.1) * singlet_fid(2.6, 1.0, lorentz_hz=4.0)
            for b in B_S_MM2]
    return np.stack(fids)


@pytest.mark.parametrize("mode", ["joint", "sequential"])
def test_region_noise_is_the_white_noise_whatever_the_residual(mode):
    fids = series_with_an_unmodelled_line(np.random.default_rng(12))
    basis = singlet_basis(tuple(ADC_UM2_MS))
    expected = NOISE_SD * np.sqrt(N_POINTS)
    common = {"mode": mode, "ppm_range": (1.0, 4.0), "baseline": "poly", "joint_baseline": "poly"}
    region = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2,
                            FitOptions(**common, noise="region", noise_region_ppm=(-9.0, -5.0)))
    residual = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, FitOptions(**common))
    assert region.mode == residual.mode == mode
    for by_region, by_residual in zip(region.fits, residual.fits):
        assert by_region.sigma == pytest.approx(expected, rel=0.12)
        assert by_residual.sigma > 1.5 * expected  # the missing line: the test can tell them apart
        ratio = by_region.crlb[0] / by_residual.crlb[0]
        assert ratio == pytest.approx(by_region.sigma / by_residual.sigma, rel=0.05)


def test_the_options_each_fit_used_are_recorded():
    """``extra["options_used"]`` (``fit.json`` ``options_used``) are the options after the
    series and joint adjustments; the configured ones differ for a joint series."""
    fids = series_with_an_unmodelled_line(np.random.default_rng(3))
    basis = singlet_basis(tuple(ADC_UM2_MS))
    configured = FitOptions(ppm_range=(1.0, 4.0))
    joint = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, configured)
    used = joint.extra["options_used"]
    assert joint.mode == "joint" and configured.baseline == "spline"
    assert used["baseline"] == configured.joint_baseline == "poly"
    assert used["baseline_stiffness_choices"] == [] and configured.baseline_stiffness_choices
    assert used["metabolite_shift_sd_factors"] == {} and configured.metabolite_shift_sd_factors
    assert used["weak_metabolite_priors"] is False and configured.weak_metabolite_priors
    single = fit_conditions(fids[:1], basis, DWELL_S, CF_MHZ, B_S_MM2[:1], configured)
    assert single.extra["options_used"] == configured.to_dict()


def test_a_fit_with_nearly_as_many_parameters_as_observations_warns():
    """128 points (12 bins in the 1-4 ppm window against about 30 spline coefficients and
    the amplitudes and lineshape parameters): the residual cannot give the noise, so the fit
    says so; at 1024 points it does not."""
    basis = singlet_basis(tuple(ADC_UM2_MS))
    truth = {n: 10.0 for n in ADC_UM2_MS}
    fid = synthetic_fid(basis, truth, noise_sd=NOISE_SD, rng=np.random.default_rng(1))
    short = singlet_basis(tuple(ADC_UM2_MS), n_points=128)
    with pytest.warns(UserWarning, match="fitted parameters for .* real observations"):
        fit_spectrum(fid[:128], short, DWELL_S, CF_MHZ, FitOptions(ppm_range=(1.0, 4.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(1.0, 4.0)))
