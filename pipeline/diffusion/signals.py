"""Signal attenuation S(b)/S(0) of diffusion representations and biophysical models.

Units everywhere in this module: b in ms/um^2, diffusivities in um^2/ms, radii in um, gradient
timings (pulse duration delta, separation Delta) in ms, so ``b * D`` is dimensionless.
All functions broadcast: ``b`` may be an array and parameters scalars or arrays that broadcast
against it.

Restricted diffusion uses the Gaussian phase approximation for rectangular pulsed gradients:
van Gelderen et al., J Magn Reson B 1994 (cylinders, after Neuman, J Chem Phys 1974) and
Murday & Cotts, J Chem Phys 1968 (spheres). Under that approximation the perpendicular
attenuation of a cylinder is ``exp(-b * D_perp)`` with an effective ``D_perp(R, D, delta, Delta)``
independent of b, so the orientation (powder) average over cos(theta) has the same closed form
with erf as sticks; ``orientation_average`` gives the numerical quadrature used to check it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf, jnp_zeros, spherical_jn

N_ROOTS = 60
_SERIES_LIMIT = 1e-2


def monoexponential(b, adc):
    """Mono-exponential decay exp(-b ADC)."""
    return np.exp(-np.asarray(b, float) * adc)


def kurtosis(b, adc, k):
    """Cumulant (kurtosis) expansion exp(-b ADC + (b ADC)^2 K / 6)."""
    bd = np.asarray(b, float) * adc
    return np.exp(-bd + bd**2 * k / 6.0)


def physical_decay(decay: np.ndarray, b_ms_um2: np.ndarray) -> bool:
    """Whether model values S(b)/S(0) (rows at ``b_ms_um2``) are finite, at most 1 and
    non-increasing in b: a diffusion signal never grows with b, whereas the kurtosis expansion
    does beyond b ADC K = 3 (and overflows soon after)."""
    values = np.asarray(decay, float)[np.argsort(b_ms_um2, kind="stable")]
    return bool(np.all(np.isfinite(values)) and np.all(values <= 1.0 + 1e-9)
                and np.all(np.diff(values, axis=0) <= 1e-9))


def biexponential(b, fraction_fast, d_fast, d_slow):
    """Two-compartment decay f exp(-b D_fast) + (1 - f) exp(-b D_slow)."""
    b = np.asarray(b, float)
    return fraction_fast * np.exp(-b * d_fast) + (1.0 - fraction_fast) * np.exp(-b * d_slow)


def gaussian_orientation_mean(a):
    """Mean of exp(-a x^2) over x = cos(theta) uniform on [0, 1] (a >= 0), stable near a = 0.

    Equals sqrt(pi / (4 a)) erf(sqrt(a)); a short Taylor series is used for a < 1e-6.
    """
    a = np.asarray(a, float)
    safe = np.where(a > 1e-6, a, 1.0)
    closed = np.sqrt(np.pi / (4.0 * safe)) * erf(np.sqrt(safe))
    series = 1.0 - a / 3.0 + a**2 / 10.0
    return np.where(a > 1e-6, closed, series)


def sticks_powder_average(b, d_intra):
    """Randomly oriented sticks: sqrt(pi / (4 b D)) erf(sqrt(b D))."""
    return gaussian_orientation_mean(np.asarray(b, float) * d_intra)


@lru_cache(maxsize=8)
def cylinder_roots(n_roots: int = N_ROOTS) -> np.ndarray:
    """Positive roots x_m of J1'(x) = 0 (cylinder Neumann eigenvalues alpha_m R)."""
    return jnp_zeros(1, n_roots)


@lru_cache(maxsize=8)
def sphere_roots(n_roots: int = N_ROOTS) -> np.ndarray:
    """Positive roots x_m of j1'(x) = 0 (spherical Bessel; sphere eigenvalues alpha_m R)."""
    def dj1(x):
        return spherical_jn(1, x, derivative=True)
    grid = np.arange(1.0, np.pi * (n_roots + 2), 0.05)
    values = dj1(grid)
    brackets = np.nonzero(np.sign(values[:-1]) != np.sign(values[1:]))[0][:n_roots]
    return np.array([brentq(dj1, grid[i], grid[i + 1], xtol=1e-14) for i in brackets])


def _pulse_factor(y, small_delta_ms, big_delta_ms):
    """Gaussian-phase time factor for one eigenmode of decay rate y (1/ms).

    2 y d - 2 + 2 e^{-y d} + 2 e^{-y D} - e^{-y (D - d)} - e^{-y (D + d)}, with d = delta,
    D = Delta; for small y its Taylor series (leading term y^3 d^2 (D - d/3)) avoids cancellation.
    """
    d, dd = small_delta_ms, big_delta_ms
    e_small, e_big = np.exp(-y * d), np.exp(-y * dd)
    value = 2 * y * d - 2 + 2 * e_small + 2 * e_big - np.exp(-y * (dd - d)) - e_big * e_small
    small = y * (dd + d) < _SERIES_LIMIT
    if np.any(small):
        ys = y[small]
        value[small] = (ys**3 * d**2 * (dd - d / 3.0) - ys**4 * dd**2 * d**2 / 2.0
                        + ys**5 * (20 * dd**3 * d**2 + 10 * dd * d**4 - 2 * d**5) / 120.0)
    return value


def _restricted_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms, roots, shape_term):
    """Effective diffusivity -ln(E)/b of a restricted geometry under the GPA (um^2/ms)."""
    check_timing(small_delta_ms, big_delta_ms)
    r = np.asarray(radius_um, float)[..., None]
    d = np.maximum(np.asarray(d_intra, float), 1e-12)[..., None]  # D -> 0 limit is D_perp -> 0
    alpha2 = (roots / np.where(r > 0, r, 1.0)) ** 2
    y = alpha2 * d
    terms = _pulse_factor(y, small_delta_ms, big_delta_ms) / (d**2 * alpha2**3 * (r**2 * alpha2 - shape_term))
    b_per_g2 = small_delta_ms**2 * (big_delta_ms - small_delta_ms / 3.0)
    value = 2.0 * terms.sum(axis=-1) / b_per_g2
    return np.where(np.asarray(radius_um, float) > 0, value, 0.0)


def check_timing(small_delta_ms, big_delta_ms):
    """Raise ValueError unless 0 < delta <= Delta (pulse duration and separation, ms)."""
    if np.ndim(small_delta_ms) == 0 and np.ndim(big_delta_ms) == 0:  # the common case, fast
        valid = bool(0 < small_delta_ms <= big_delta_ms)
    else:
        valid = bool(np.all(np.asarray(small_delta_ms) > 0)
                     and np.all(np.asarray(big_delta_ms) >= small_delta_ms))
    if not valid:
        raise ValueError(f"gradient timing needs 0 < delta <= Delta, got delta={small_delta_ms} ms, "
                         f"Delta={big_delta_ms} ms")


def cylinder_perpendicular_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms, n_roots=N_ROOTS):
    """Apparent diffusivity perpendicular to a cylinder, -ln(E_perp)/b, van Gelderen GPA (um^2/ms)."""
    return _restricted_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms,
                                   cylinder_roots(n_roots), 1.0)


def sphere_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms, n_roots=N_ROOTS):
    """Apparent diffusivity in a sphere, -ln(E)/b, Murday-Cotts GPA (um^2/ms)."""
    return _restricted_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms,
                                   sphere_roots(n_roots), 2.0)


def cylinder_signal(b, cos_theta, d_intra, radius_um, small_delta_ms, big_delta_ms):
    """One cylinder at angle theta to the gradient: exp(-b (D cos^2 + D_perp sin^2))."""
    d_perp = cylinder_perpendicular_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms)
    c2 = np.asarray(cos_theta, float) ** 2
    return np.exp(-np.asarray(b, float) * (d_intra * c2 + d_perp * (1.0 - c2)))


def cylinders_powder_average(b, d_intra, radius_um, small_delta_ms, big_delta_ms):
    """Randomly oriented infinite cylinders (consensus minimal model), GPA, finite pulses.

    exp(-b D_perp) * mean_x exp(-b (D_intra - D_perp) x^2): the orientation mean is exact (erf).
    Tends to sticks as R -> 0.
    """
    b = np.asarray(b, float)
    d_perp = cylinder_perpendicular_diffusivity(radius_um, d_intra, small_delta_ms, big_delta_ms)
    return np.exp(-b * d_perp) * gaussian_orientation_mean(b * np.maximum(d_intra - d_perp, 0.0))


def stick_sphere(b, fraction_stick, d_intra, radius_sphere_um, small_delta_ms, big_delta_ms):
    """Randomly oriented sticks (fraction f) plus spheres of radius R sharing D_intra."""
    b = np.asarray(b, float)
    d_sph = sphere_diffusivity(radius_sphere_um, d_intra, small_delta_ms, big_delta_ms)
    return fraction_stick * sticks_powder_average(b, d_intra) + (1.0 - fraction_stick) * np.exp(-b * d_sph)


def orientation_average(signal_of_cos, n_nodes: int = 64):
    """Numerical mean over the sphere of an axially symmetric signal f(cos theta).

    Gauss-Legendre quadrature on cos(theta) in [0, 1]; ``signal_of_cos`` receives an array of
    shape (n_nodes,) + (1,)*k and must broadcast. Used to check closed forms and for signals
    without one.
    """
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    x, w = 0.5 * (x + 1.0), 0.5 * w
    values = np.asarray(signal_of_cos(x), float)
    return np.tensordot(w, values, axes=(0, 0))


def _unit_rows(vectors, what):
    v = np.atleast_2d(np.asarray(vectors, float))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if v.shape[1] != 3 or np.any(norms == 0) or not np.all(np.isfinite(v)):
        raise ValueError(f"{what} must be non-zero 3-vectors, got shape {v.shape}")
    return v / norms


def anisotropic_cylinders(b, d_intra, radius_um, small_delta_ms, big_delta_ms, gradient_directions,
                          fibre_directions, fibre_weights=None, wm_fraction=1.0):
    """Cylinders in an anisotropic voxel (consensus 5.1.5), averaged over the measured directions.

    A fraction ``wm_fraction`` of the signal comes from fibres with the measured orientation
    distribution (``fibre_directions`` (n_fibres, 3) with ``fibre_weights``); the rest from
    randomly oriented cylinders. The fibre part is the arithmetic mean over the acquired
    ``gradient_directions`` (n_dirs, 3), as a direction-averaged measurement sees it.
    ``b`` of shape (n_b,) returns (n_b,).
    """
    g = _unit_rows(gradient_directions, "gradient_directions")
    f = _unit_rows(fibre_directions, "fibre_directions")
    w = np.ones(len(f)) if fibre_weights is None else np.asarray(fibre_weights, float)
    if w.shape != (len(f),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"fibre_weights must be {len(f)} non-negative numbers with a positive sum")
    if not 0.0 <= wm_fraction <= 1.0:
        raise ValueError(f"wm_fraction must lie in [0, 1], got {wm_fraction}")
    w = w / w.sum()
    cos = g @ f.T  # (n_dirs, n_fibres)
    b = np.asarray(b, float)
    oriented = cylinder_signal(b[:, None, None], cos[None], d_intra, radius_um, small_delta_ms, big_delta_ms)
    fibre_part = (oriented * w).sum(axis=2).mean(axis=1)
    isotropic = cylinders_powder_average(b, d_intra, radius_um, small_delta_ms, big_delta_ms)
    return wm_fraction * fibre_part + (1.0 - wm_fraction) * isotropic
