"""Free-form lineshape kernel (``FitOptions.lineshape_kernel_hz``, issue 13).

Truth is constructed: the toy singlet basis, Voigt-broadened, then given a non-Voigt lineshape
(a shoulder: 30 % of every line moved by +3 Hz, as from two field regions in the voxel). One
Voigt cannot follow the shoulder; the kernel can, and the amplitude ratios stay right.
"""

import numpy as np
import pytest

from pipeline.fitting import FitOptions
from pipeline.fitting.kernel import kernel_step_hz, kernel_time_factor

from test_fitting_support import DWELL_S, fit_and_quality, singlet_basis, synthetic_fid

TRUTH = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3, "Ins": 0.5}
SHOULDER_FRACTION = 0.3
SHOULDER_HZ = 3.0


def _data_and_basis():
    basis = singlet_basis(list(TRUTH))
    fid = synthetic_fid(basis, TRUTH, lorentz_hz=2.0, gauss_hz=3.0, shift_hz=2.0, noise_sd=0.0)
    t = np.arange(fid.size) * DWELL_S
    fid = fid * ((1 - SHOULDER_FRACTION) + SHOULDER_FRACTION * np.exp(2j * np.pi * SHOULDER_HZ * t))
    rng = np.random.default_rng(3)
    fid = fid + 0.01 * (rng.standard_normal(fid.size) + 1j * rng.standard_normal(fid.size))
    return fid, basis


def _fit(**options):
    return fit_and_quality(*_data_and_basis(), FitOptions(ppm_range=(1.0, 4.0), **options))


def test_kernel_follows_a_non_voigt_lineshape():
    voigt, voigt_quality = _fit()
    kernel, kernel_quality = _fit(lineshape_kernel_hz=5.0, lineshape_kernel_smoothness=0.01)
    assert voigt_quality > 1.5                      # the shoulder is visible to a Voigt fit
    # the ridge-regularised kernel follows most, not all, of the shoulder (measured 19.4 -> 10.7)
    assert kernel_quality < 0.6 * voigt_quality
    for name in ("Cr", "Cho", "Ins"):
        ratio = kernel.amplitude(name) / kernel.amplitude("NAA")
        assert ratio == pytest.approx(TRUTH[name] / TRUTH["NAA"], rel=0.03)


def test_kernel_time_factor_is_a_spectral_shift():
    fit, _ = _fit(lineshape_kernel_hz=2.0)
    problem = fit.extra["problem"]
    c = np.zeros(5)
    c[3] = 1.0                                       # one step up
    expected = np.exp(2j * np.pi * kernel_step_hz(problem) * problem.t_s)
    assert np.allclose(kernel_time_factor(problem, c), expected)


def test_off_by_default():
    fit, _ = _fit()
    assert fit.extra["problem"].kernel_t is None
    assert "lineshape_kernel" not in fit.extra


def test_negative_kernel_width_is_refused():
    with pytest.raises(ValueError, match="lineshape_kernel_hz"):
        FitOptions(lineshape_kernel_hz=-1.0)
