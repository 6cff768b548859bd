"""Analytic checks of the diffusion signal functions (b in ms/um^2, D in um^2/ms, R in um)."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import jnp_zeros

from pipeline.diffusion import signals

B = np.array([0.0, 1.5, 3.0, 5.0, 8.5, 15.0, 25.0])


def sphere_mean_by_quad(f):
    """Mean of an axially symmetric f(cos theta) over the sphere by adaptive quadrature in theta."""
    return quad(lambda th: f(np.cos(th)) * np.sin(th) / 2.0, 0.0, np.pi, epsabs=1e-13, epsrel=1e-13)[0]


@pytest.mark.parametrize("bd", [0.0, 1e-9, 1e-7, 1e-3, 0.5, 3.0, 12.5, 100.0])
def test_sticks_powder_average_equals_sphere_integral(bd):
    expected = sphere_mean_by_quad(lambda c: np.exp(-bd * c**2))
    assert abs(float(signals.sticks_powder_average(bd, 1.0)) - expected) < 1e-6
    assert abs(float(signals.sticks_powder_average(bd / 0.4, 0.4)) - expected) < 1e-12


def test_cylinders_powder_average_equals_orientation_integral():
    for radius in (0.5, 2.0, 6.0):
        for b in (1.5, 8.5, 25.0):
            expected = sphere_mean_by_quad(
                lambda c: float(signals.cylinder_signal(b, c, 0.45, radius, 15.0, 60.0)))
            got = float(signals.cylinders_powder_average(b, 0.45, radius, 15.0, 60.0))
            assert abs(got - expected) < 1e-9


def test_gauss_legendre_orientation_average_matches_closed_form():
    got = signals.orientation_average(lambda c: np.exp(-np.multiply.outer(c**2, B * 0.35)))
    assert np.max(np.abs(got - signals.sticks_powder_average(B, 0.35))) < 1e-10


def test_cylinders_tend_to_sticks_as_radius_vanishes():
    sticks = signals.sticks_powder_average(B, 0.4)
    gaps = [np.max(np.abs(signals.cylinders_powder_average(B, 0.4, r, 15.0, 60.0) - sticks))
            for r in (1.0, 0.5, 0.25, 0.1, 1e-3)]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-12
    # restriction effect scales as R^4 in the long-pulse regime
    assert gaps[1] / gaps[2] == pytest.approx(16.0, rel=0.05)


def test_cylinder_perpendicular_long_pulse_limit_neuman():
    """delta >> R^2/D: -ln E_perp / b = 7 R^4 / (48 D delta (Delta - delta/3))."""
    r, d, small, big = 0.5, 0.5, 40.0, 60.0
    expected = 7 * r**4 / (48 * d * small * (big - small / 3))
    assert float(signals.cylinder_perpendicular_diffusivity(r, d, small, big)) == pytest.approx(expected, rel=1e-2)


def test_sphere_long_pulse_limit_murday_cotts():
    """delta >> R^2/D: -ln E / b = 16 R^4 / (175 D delta (Delta - delta/3))."""
    r, d, small, big = 0.5, 0.5, 40.0, 60.0
    expected = 16 * r**4 / (175 * d * small * (big - small / 3))
    assert float(signals.sphere_diffusivity(r, d, small, big)) == pytest.approx(expected, rel=1e-2)


def test_large_cylinder_recovers_free_diffusion():
    d_perp = float(signals.cylinder_perpendicular_diffusivity(1000.0, 0.4, 15.0, 60.0, n_roots=3000))
    assert d_perp == pytest.approx(0.4, rel=1e-2)
    assert d_perp < 0.4


def test_roots_are_bessel_derivative_zeros():
    assert np.allclose(signals.cylinder_roots(10), jnp_zeros(1, 10))
    x = signals.sphere_roots(5)
    assert np.allclose(x[:3], [2.0815759, 5.9403622, 9.2058397], atol=1e-6)


def test_series_branch_is_continuous_with_direct_formula():
    y = np.array([0.99e-2, 1.01e-2]) / 75.0  # either side of the switch for delta + Delta = 75 ms
    values = signals._pulse_factor(y, 15.0, 60.0) / y**3
    assert values[0] == pytest.approx(values[1], rel=1e-3)


def test_representations_closed_forms():
    assert np.allclose(signals.monoexponential(B, 0.2), np.exp(-0.2 * B))
    assert np.allclose(signals.kurtosis(B, 0.2, 0.0), np.exp(-0.2 * B))
    assert float(signals.kurtosis(2.0, 0.3, 1.2)) == pytest.approx(np.exp(-0.6 + 0.36 * 1.2 / 6))
    assert np.allclose(signals.biexponential(B, 1.0, 0.3, 0.01), np.exp(-0.3 * B))


def test_stick_sphere_limits():
    assert np.allclose(signals.stick_sphere(B, 1.0, 0.4, 5.0, 15, 60), signals.sticks_powder_average(B, 0.4))
    tiny_sphere = signals.stick_sphere(B, 0.0, 0.4, 1e-3, 15, 60)
    assert np.allclose(tiny_sphere, 1.0, atol=1e-12)


def test_anisotropic_voxel_limits():
    g = np.array([[0, 0, 1.0]])
    parallel = signals.anisotropic_cylinders(B, 0.4, 1e-3, 15, 60, g, [[0, 0, 1.0]])
    assert np.allclose(parallel, np.exp(-0.4 * B), atol=1e-12)
    iso = signals.anisotropic_cylinders(B, 0.4, 1.0, 15, 60, g, [[0, 0, 1.0]], wm_fraction=0.0)
    assert np.allclose(iso, signals.cylinders_powder_average(B, 0.4, 1.0, 15, 60))
    from pipeline.diffusion.powder import fibonacci_hemisphere
    fibres = fibonacci_hemisphere(4000)
    spread = signals.anisotropic_cylinders(B, 0.4, 1.0, 15, 60, g, fibres)
    assert np.max(np.abs(spread - iso)) < 2e-3


def test_bad_timing_and_directions_raise():
    with pytest.raises(ValueError, match="delta"):
        signals.cylinders_powder_average(B, 0.4, 1.0, 20.0, 10.0)
    with pytest.raises(ValueError, match="fibre_weights"):
        signals.anisotropic_cylinders(B, 0.4, 1.0, 15, 60, [[0, 0, 1]], [[0, 0, 1]], fibre_weights=[-1])
    with pytest.raises(ValueError, match="3-vectors"):
        signals.anisotropic_cylinders(B, 0.4, 1.0, 15, 60, [[0, 0, 0]], [[0, 0, 1]])
