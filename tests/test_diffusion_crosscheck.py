"""Cross-check against an independent implementation: dmipy-fit (PyPI) stick and GPA cylinder.

dmipy works in SI units (b in s/m^2, diffusivity in m^2/s, diameter in m, timings in s).
Skips with a reason when dmipy-fit (test extra) is not installed.
"""

import warnings

import numpy as np
import pytest

from pipeline.diffusion import signals
from pipeline.diffusion.powder import fibonacci_hemisphere

dmipy_scheme = pytest.importorskip("dmipy_fit.core.acquisition_scheme",
                                   reason="dmipy-fit (test extra) is not installed")
from dmipy_fit.signal_models.cylinder_models import (  # noqa: E402
    C1Stick, C4CylinderGaussianPhaseApproximation)

B = np.array([0.0, 1.5, 3.0, 5.0, 8.5, 15.0, 25.0])
SMALL_DELTA_MS, BIG_DELTA_MS = 15.0, 60.0


@pytest.fixture(scope="module")
def scheme_and_directions():
    dirs = fibonacci_hemisphere(60)
    b_si = np.concatenate([[0.0]] + [np.full(len(dirs), b) for b in B[1:]]) * 1e9
    g = np.vstack([[1.0, 0.0, 0.0]] + [dirs] * (B.size - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = dmipy_scheme.acquisition_scheme_from_bvalues(
            b_si, g, delta=SMALL_DELTA_MS / 1e3, Delta=BIG_DELTA_MS / 1e3)
    return scheme, b_si / 1e9, g


@pytest.mark.parametrize("d_intra", [0.2, 0.35, 0.5])
def test_stick_spherical_mean_matches_dmipy(scheme_and_directions, d_intra):
    scheme, _, _ = scheme_and_directions
    theirs = C1Stick(mu=[0.0, 0.0], lambda_par=d_intra * 1e-9).spherical_mean(scheme)
    assert np.max(np.abs(theirs - signals.sticks_powder_average(B, d_intra))) < 1e-4


@pytest.mark.parametrize("radius_um", [0.25, 1.0, 2.0, 4.0])
def test_cylinder_gpa_matches_dmipy(scheme_and_directions, radius_um):
    scheme, b, g = scheme_and_directions
    d = 0.4
    model = C4CylinderGaussianPhaseApproximation(mu=[0.0, 0.0], lambda_par=d * 1e-9,
                                                 diameter=2 * radius_um * 1e-6,
                                                 diffusion_perpendicular=d * 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oriented = model(scheme)
        spherical = model.spherical_mean(scheme)
    mine = signals.cylinder_signal(b, np.abs(g[:, 2]), d, radius_um, SMALL_DELTA_MS, BIG_DELTA_MS)
    assert np.max(np.abs(oriented - mine)) < 1e-8
    powder = signals.cylinders_powder_average(B, d, radius_um, SMALL_DELTA_MS, BIG_DELTA_MS)
    assert np.max(np.abs(spherical - powder)) < 1e-4
