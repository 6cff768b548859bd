"""Diffusion representations and biophysical models of metabolite signal decay (dipy-style).

A model holds the acquisition options (gradient timing, fit b-range) and exposes ``name``,
``parameter_names``, ``parameter_units``, ``bounds`` (lower, upper arrays), ``predict(b_ms_um2,
params) -> S/S0``, ``jacobian(b_ms_um2, params) -> (n_b, n_params)`` and ``fit(b_ms_um2, signal,
sigma=None, **options) -> DiffusionFit`` (see ``pipeline.diffusion.fitting``). b in ms/um^2,
diffusivities in um^2/ms, radii in um. The joint spectral fit calls ``predict``/``jacobian``
directly, so both are cheap and vectorised over b.
"""

from __future__ import annotations

import itertools

import numpy as np

from pipeline.diffusion import signals

DIFFUSIVITY_UNIT = "um^2/ms"


class DiffusionModel:
    """Base class: a signal function of b with named, bounded parameters."""

    name = ""
    parameter_names: tuple[str, ...] = ()
    parameter_units: tuple[str, ...] = ()
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    default_b_max_ms_um2: float | None = None

    def __init__(self, b_max_ms_um2: float | None = None):
        self.b_max_ms_um2 = self.default_b_max_ms_um2 if b_max_ms_um2 is None else float(b_max_ms_um2)

    @property
    def n_params(self) -> int:
        return len(self.parameter_names)

    def in_b_range(self, b_ms_um2) -> np.ndarray:
        """Which b-values the model is fitted on: b <= ``b_max_ms_um2`` (all without one)."""
        b = np.asarray(b_ms_um2, float)
        if self.b_max_ms_um2 is None:
            return np.ones(b.shape, bool)
        return b <= self.b_max_ms_um2 + 1e-9

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of the parameters, in ``parameter_units``."""
        return np.array(self.lower, float), np.array(self.upper, float)

    def predict(self, b_ms_um2, params) -> np.ndarray:
        """Normalised signal S(b)/S(0) for parameters in ``parameter_names`` order."""
        raise NotImplementedError

    supports_batch = True
    """``predict`` broadcasts parameter arrays (one call for many parameter sets)."""

    def predict_batch(self, b_ms_um2, params) -> np.ndarray:
        """``predict`` for parameter rows ``params`` (N, n_params) -> (N, n_b) in one
        broadcast call (models with ``supports_batch``)."""
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        return np.broadcast_to(self.predict(b, params.T[..., None]), (params.shape[0], b.size))

    def jacobian(self, b_ms_um2, params) -> np.ndarray:
        """d predict / d params, shape (n_b, n_params); central differences unless overridden
        (every shifted parameter set in one broadcast ``predict`` when the model allows)."""
        p = np.asarray(params, float)
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        lo, hi = self.bounds
        ups, downs = [], []
        for i in range(p.size):
            h = 1e-6 * max(abs(p[i]), 1e-2)
            up, down = p.copy(), p.copy()
            up[i] = min(p[i] + h, hi[i]) if np.isfinite(hi[i]) else p[i] + h
            down[i] = max(p[i] - h, lo[i]) if np.isfinite(lo[i]) else p[i] - h
            ups.append(up)
            downs.append(down)
        steps = np.array([u[i] - d[i] for i, (u, d) in enumerate(zip(ups, downs))])
        if self.supports_batch:
            values = self.predict_batch(b, np.array(ups + downs))  # (2 n_params, n_b)
            # C order as np.stack gives: the solver's rounding depends on the layout
            return np.ascontiguousarray(((values[:p.size] - values[p.size:]) / steps[:, None]).T)
        cols = [(self.predict(b, u) - self.predict(b, d)) / s
                for u, d, s in zip(ups, downs, steps)]
        return np.stack(cols, axis=-1)

    def initial_grid(self) -> np.ndarray:
        """Starting points (n_starts, n_params) for grid initialisation of the fit."""
        raise NotImplementedError

    def fit(self, b_ms_um2, signal, sigma=None, **options):
        """Fit the model to a decay; see ``pipeline.diffusion.fitting.fit_model`` for options."""
        from pipeline.diffusion.fitting import fit_model
        return fit_model(self, b_ms_um2, signal, sigma=sigma, **options)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def _grid(*axes) -> np.ndarray:
    return np.array(list(itertools.product(*axes)), float)


class MonoExponential(DiffusionModel):
    """ADC representation; fitted only up to b_max (default 5 ms/um^2, consensus 3-5)."""

    name = "monoexponential"
    parameter_names = ("ADC",)
    parameter_units = (DIFFUSIVITY_UNIT,)
    lower, upper = (0.0,), (3.0,)
    default_b_max_ms_um2 = 5.0

    def predict(self, b_ms_um2, params):
        return signals.monoexponential(b_ms_um2, params[0])

    def jacobian(self, b_ms_um2, params):
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        return (-b * signals.monoexponential(b, params[0]))[:, None]

    def initial_grid(self):
        return _grid(np.geomspace(0.02, 2.0, 10))


class Kurtosis(DiffusionModel):
    """Cumulant expansion (ADC, K_app); fitted only up to b_max (default 10 ms/um^2)."""

    name = "kurtosis"
    parameter_names = ("ADC", "K")
    parameter_units = (DIFFUSIVITY_UNIT, "1")
    lower, upper = (0.0, -1.0), (3.0, 5.0)
    default_b_max_ms_um2 = 10.0

    def predict(self, b_ms_um2, params):
        return signals.kurtosis(b_ms_um2, params[0], params[1])

    def jacobian(self, b_ms_um2, params):
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        adc, k = params[0], params[1]
        s = signals.kurtosis(b, adc, k)
        return np.stack([s * (-b + b**2 * adc * k / 3.0), s * (b * adc) ** 2 / 6.0], axis=-1)

    def initial_grid(self):
        return _grid(np.geomspace(0.03, 1.5, 6), (0.0, 0.5, 1.0, 2.0))


class BiExponential(DiffusionModel):
    """Two exponentials (fraction of the fast pool, D_fast >= D_slow)."""

    name = "biexponential"
    parameter_names = ("fraction_fast", "D_fast", "D_slow")
    parameter_units = ("1", DIFFUSIVITY_UNIT, DIFFUSIVITY_UNIT)
    lower, upper = (0.0, 0.0, 0.0), (1.0, 3.0, 3.0)

    def predict(self, b_ms_um2, params):
        return signals.biexponential(b_ms_um2, params[0], params[1], params[2])

    def jacobian(self, b_ms_um2, params):
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        f, df, ds = params[0], params[1], params[2]
        ef, es = np.exp(-b * df), np.exp(-b * ds)
        return np.stack([ef - es, -f * b * ef, -(1 - f) * b * es], axis=-1)

    def initial_grid(self):
        return _grid((0.3, 0.6, 0.85), (0.2, 0.5, 1.0), (0.01, 0.04, 0.1))


class Sticks(DiffusionModel):
    """Randomly oriented sticks (zero radius), closed-form powder average with erf."""

    name = "sticks"
    parameter_names = ("D_intra",)
    parameter_units = (DIFFUSIVITY_UNIT,)
    lower, upper = (0.0,), (3.0,)

    def predict(self, b_ms_um2, params):
        return signals.sticks_powder_average(b_ms_um2, params[0])

    def jacobian(self, b_ms_um2, params):
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        a = b * params[0]
        f = signals.gaussian_orientation_mean(a)
        safe = np.where(a > 1e-8, a, 1.0)
        dfda = np.where(a > 1e-8, (np.exp(-safe) - f) / (2.0 * safe), -1.0 / 3.0 + a / 5.0)
        return (dfda * b)[:, None]

    def initial_grid(self):
        return _grid(np.geomspace(0.05, 2.0, 10))


class _TimedModel(DiffusionModel):
    """A model whose signal depends on the gradient pulse duration and separation."""

    def __init__(self, small_delta_ms: float, big_delta_ms: float, b_max_ms_um2: float | None = None):
        super().__init__(b_max_ms_um2)
        if small_delta_ms is None or big_delta_ms is None:
            raise ValueError(f"model {self.name!r} needs the gradient duration and separation "
                             "(DiffusionGradientDuration and DiffusionGradientSeparation or DiffusionTime)")
        signals.check_timing(small_delta_ms, big_delta_ms)
        self.small_delta_ms = float(small_delta_ms)
        self.big_delta_ms = float(big_delta_ms)


class Cylinders(_TimedModel):
    """Randomly oriented infinite cylinders (D_intra, radius), GPA with finite pulses."""

    name = "cylinders"
    parameter_names = ("D_intra", "radius")
    parameter_units = (DIFFUSIVITY_UNIT, "um")
    lower, upper = (0.0, 0.0), (3.0, 20.0)

    def predict(self, b_ms_um2, params):
        return signals.cylinders_powder_average(b_ms_um2, params[0], params[1],
                                                self.small_delta_ms, self.big_delta_ms)

    def initial_grid(self):
        return _grid(np.geomspace(0.1, 1.2, 6), (0.5, 2.0, 4.0, 8.0))


class StickSphere(_TimedModel):
    """Randomly oriented sticks plus spheres (cell bodies) with the same D_intra."""

    name = "stick_sphere"
    parameter_names = ("fraction_stick", "D_intra", "radius_sphere")
    parameter_units = ("1", DIFFUSIVITY_UNIT, "um")
    lower, upper = (0.0, 0.0, 0.0), (1.0, 3.0, 30.0)

    def predict(self, b_ms_um2, params):
        return signals.stick_sphere(b_ms_um2, params[0], params[1], params[2],
                                    self.small_delta_ms, self.big_delta_ms)

    def initial_grid(self):
        return _grid((0.5, 0.8, 0.95), np.geomspace(0.15, 1.0, 4), (3.0, 8.0, 15.0))


class AnisotropicCylinders(_TimedModel):
    """Cylinders in an anisotropic voxel (consensus 5.1.5): a white-matter fraction with a
    measured fibre orientation distribution plus randomly oriented cylinders, averaged over
    the acquired gradient directions."""

    name = "anisotropic_cylinders"
    supports_batch = False  # predict averages over fixed gradient directions; no parameter broadcasting
    parameter_names = ("D_intra", "radius")
    parameter_units = (DIFFUSIVITY_UNIT, "um")
    lower, upper = (0.0, 0.0), (3.0, 20.0)

    def __init__(self, small_delta_ms, big_delta_ms, gradient_directions, fibre_directions,
                 fibre_weights=None, wm_fraction=1.0, b_max_ms_um2=None):
        super().__init__(small_delta_ms, big_delta_ms, b_max_ms_um2)
        self.gradient_directions = np.atleast_2d(np.asarray(gradient_directions, float))
        self.fibre_directions = np.atleast_2d(np.asarray(fibre_directions, float))
        self.fibre_weights = None if fibre_weights is None else np.asarray(fibre_weights, float)
        self.wm_fraction = float(wm_fraction)
        self.predict(np.zeros(1), (0.3, 1.0))  # validates directions, weights and fraction now

    def predict(self, b_ms_um2, params):
        b = np.atleast_1d(np.asarray(b_ms_um2, float))
        return signals.anisotropic_cylinders(b, params[0], params[1], self.small_delta_ms,
                                             self.big_delta_ms, self.gradient_directions,
                                             self.fibre_directions, self.fibre_weights, self.wm_fraction)

    def initial_grid(self):
        return _grid(np.geomspace(0.1, 1.2, 6), (0.5, 2.0, 4.0, 8.0))


MODELS: dict[str, type[DiffusionModel]] = {
    cls.name: cls for cls in (MonoExponential, Kurtosis, BiExponential, Sticks, Cylinders,
                              StickSphere, AnisotropicCylinders)
}


ALIASES = {"monoexp": "monoexponential", "adc": "monoexponential", "biexp": "biexponential",
           "dki": "kurtosis", "cylinder": "cylinders", "stick": "sticks"}


def canonical_models(names) -> tuple[list[str], list[str]]:
    """(model names with aliases resolved, each once in first-given order; the names dropped as
    repeats). ``["monoexp", "monoexponential", "adc"]`` is one model: fitted three times it
    wrote its rows three times and the group tables counted the participant three times."""
    kept, dropped = [], []
    for name in names:
        canonical = ALIASES.get(name, name)
        if canonical in kept:
            dropped.append(name)
        else:
            kept.append(canonical)
    return kept, dropped


def make_model(name: str, **options) -> DiffusionModel:
    """Instantiate a registered model by name (or alias); timed models need small/big_delta_ms."""
    try:
        cls = MODELS[ALIASES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown diffusion model {name!r}; known: {sorted(MODELS)}") from None
    if issubclass(cls, _TimedModel):
        return cls(**options)
    return cls(b_max_ms_um2=options.get("b_max_ms_um2"))


from pipeline.diffusion.table import fit_all_models  # noqa: E402,F401  (re-export: contract name)

__all__ = ["ALIASES", "MODELS", "canonical_models", "AnisotropicCylinders", "BiExponential", "Cylinders", "DiffusionModel",
           "Kurtosis", "MonoExponential", "StickSphere", "Sticks", "fit_all_models", "make_model"]
