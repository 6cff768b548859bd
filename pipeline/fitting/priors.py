"""Gaussian priors added to the least-squares fit as rows: per-metabolite shifts, amplitude
ratios (user constraints and LCModel's default priors on weak metabolites) and the shape of a
parametric macromolecule set.

Shifts.

LCModel lets every metabolite shift a little around the common referencing shift, with a prior
SD of 0.004 ppm (its ``DESDSH``): measured singlets sit a few thousandths of a ppm away from a
simulated basis (temperature, pH, susceptibility), and one shift for all leaves a dispersive
residual at every peak. The prior ``delta_m / sd ~ N(0, 1)`` enters the cost like the data when
it is written in the units of the scaled residual (noise SD ``sigma_scaled``): the row is
``sigma_scaled / sd_hz * delta_m``. It also removes the degeneracy between a group's shift and
the mean of its metabolites' own shifts.
"""

from __future__ import annotations

import numpy as np

from ..metabolites import METABOLITE_SUMS
from ..qc.metrics import noise_sd
from ..simulate.macromolecules import EXTENDED_MM, LCMODEL_MM


def scaled_noise_sd(fid: np.ndarray, dwell_s: float, cf_mhz: float, scale: float,
                    noise_ppm=()) -> float:
    """Noise SD of the real spectrum in a signal-free region (``noise_ppm``, or both band ends
    when empty: ``qc.metrics.noise_mask``), in the fit's scaled units."""
    return noise_sd(fid, dwell_s, cf_mhz, tuple(noise_ppm) or None) / scale


def prior_noise_sd(fids: np.ndarray, dwell_s: float, cf_mhz: float, scale: float,
                   noise_ppm=()) -> float:
    """The noise SD weighting every prior row (shifts, amplitude ratios, MM shape, baseline
    curvature), in scaled units: :func:`scaled_noise_sd` of one FID, or the median over the
    rows of ``fids`` (one per condition of a joint fit), in the window ``noise_ppm``
    (``FitOptions.noise_sd_ppm``). Computed once per fit (an FFT and a detrended SD)."""
    rows = np.atleast_2d(fids)
    return float(np.median([scaled_noise_sd(f, dwell_s, cf_mhz, scale, noise_ppm)
                            for f in rows]))


def with_shift_prior(residual, jacobian, n_params: int, own_index: np.ndarray,
                     noise_sd_scaled: float, sd_hz: float | np.ndarray) -> "WithPrior":
    """``residual``/``jacobian`` with the Gaussian prior rows of the per-metabolite shift
    parameters ``own_index`` (none when ``sd_hz`` is 0 or there are none); ``sd_hz``: one SD
    for all or one per entry of ``own_index``."""
    weights = own_shift_weights(n_params, own_index, noise_sd_scaled, sd_hz)
    return WithPrior(residual, jacobian, weights)


def own_shift_weights(n_params: int, own_index: np.ndarray, sigma_scaled: float,
                      sd_hz: float | np.ndarray) -> np.ndarray:
    """(n_params,) prior weight per parameter: ``sigma_scaled / sd_hz`` at ``own_index``
    (``sd_hz`` a scalar or one SD per index; an SD of 0 gives no prior)."""
    weights = np.zeros(n_params)
    sd = np.broadcast_to(np.asarray(sd_hz, dtype=float), np.shape(own_index))
    use = sd > 0
    if np.any(use):
        weights[np.asarray(own_index, dtype=int)[use]] = sigma_scaled / sd[use]
    return weights


class WithPrior:
    """Residual and Jacobian of a least-squares problem with rows ``weights[i] * x[i]`` added
    for every parameter of non-zero weight (a zero-mean Gaussian prior)."""

    def __init__(self, residual, jacobian, weights: np.ndarray):
        self._residual, self._jacobian = residual, jacobian
        self.index = np.flatnonzero(weights)
        self.weights = weights[self.index]
        self.rows = np.zeros((self.index.size, weights.size))
        self.rows[np.arange(self.index.size), self.index] = self.weights
        if not self.index.size:  # no prior: the problem's own functions, nothing copied
            self.residual, self.jacobian = residual, jacobian

    def residual(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self._residual(x), self.weights * x[self.index]])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return np.vstack([self._jacobian(x), self.rows])


SHAPE_PRIOR_MM = frozenset(EXTENDED_MM)
"""The parametric MM set whose components are each simulated at their expected size (the
app's default ``extended`` set, after Osprey's parameterisation of measured MM spectra)."""
SHAPE_PRIOR_MARKERS = frozenset(EXTENDED_MM) - frozenset(LCMODEL_MM)
"""Names found only in that set: the prior applies when one is in the basis. LCModel-style MM
entries (MM09...MM20 with LCModel's line amplitudes) expect other ratios and get no prior."""


def mm_shape_rows(names: list, norms: np.ndarray, amplitudes: np.ndarray, sd: float,
                  sigma_scaled: float, data_scale: float) -> np.ndarray:
    """Prior rows tying the components of the app's parametric MM set to one common scale.

    Each component of that set is simulated at its expected size (``SHAPE_PRIOR_MM``), so the
    fitted amplitudes should be alike: ``(a_k - mean(a)) / (sd mean(a)_est) ~ N(0, 1)`` for
    every component ``k``, in the units of the scaled residual (as ``ratio_prior_rows``). No
    rows without that set, with fewer than two components or without MM signal.
    """
    if not SHAPE_PRIOR_MARKERS & set(names):
        return np.zeros((0, len(names)))
    index = [i for i, n in enumerate(names) if n in SHAPE_PRIOR_MM]
    mean = np.zeros(len(names))
    mean[index] = 1.0 / max(len(index), 1)
    if len(index) < 2 or sd <= 0 or mean @ amplitudes <= 0:
        return np.zeros((0, len(names)))
    return np.array([ratio_row(np.eye(len(names))[i], mean, 1.0, sd, amplitudes, norms,
                               sigma_scaled, data_scale) for i in index])


WEAK_METABOLITE_PRIORS = (
    {"numerator": "Asp", "denominator": "Big3", "ratio": 0.05, "sd": 0.05},
    {"numerator": "GABA", "denominator": "Big3", "ratio": 0.03, "sd": 0.03},
    {"numerator": "Glc", "denominator": "Big3", "ratio": 0.03, "sd": 0.03},
    {"numerator": "sIns", "denominator": "Big3", "ratio": 0.01, "sd": 0.01},
    {"numerator": "Tau", "denominator": "Big3", "ratio": 0.05, "sd": 0.05},
    {"numerator": "GSH", "denominator": "Gln+GSH", "ratio": 0.286, "sd": 0.126},
)
"""LCModel's default soft priors on weakly determined brain metabolites: the ``CHRATO`` defaults
of LCModel 6.3 (``BLOCK DATA`` of ``LCModel.f``, ../shared/peers/lcmodel; LCModel manual, the
section on ratio priors), concentration ratios with a Gaussian SD, ``Big3`` = NAA + NAAG + Cr +
PCr + 3 (GPC + PCh) (``Big3`` in LCModel.f). A prior whose numerator is not in the basis is
left out; without a choline entry Big3 is tNAA + tCr."""
NAMED_SUMS = {"Big3": "tNAA+tCr+3*tCho"}
SPELLINGS = {"sIns": ("sIns", "Scyllo", "Scy", "sI")}
"""Other basis spellings of a metabolite named in a prior."""


def amplitude_priors(names: list, options) -> list:
    """The ratio priors of a fit: the user's ``ratio_constraints`` (every term of each side must
    name a basis entry or a sum with a member in the basis) plus, with
    ``weak_metabolite_priors``, each of ``WEAK_METABOLITE_PRIORS`` whose numerator is in the
    basis and not already constrained by the user."""
    chosen = list(options.ratio_constraints)
    for c in chosen:
        for side in ("numerator", "denominator"):
            missing = [term for term, w in expression_terms(names, c[side]) if not w.any()]
            if missing:
                raise ValueError(f"[fitting] ratio_constraints: {side} {c[side]!r}: "
                                 f"{', '.join(map(repr, missing))} names no entry of the basis "
                                 f"({', '.join(names)})")
    if not options.weak_metabolite_priors:
        return chosen
    taken = {c["numerator"] for c in chosen}
    for prior in WEAK_METABOLITE_PRIORS:
        spelled = next((s for s in SPELLINGS.get(prior["numerator"], (prior["numerator"],))
                        if s in names), None)
        if spelled is None or spelled in taken:
            continue
        if np.any(expression_weights(names, prior["denominator"])):
            chosen.append({**prior, "numerator": spelled})
    return chosen


def expression_terms(names: list, expression: str) -> list:
    """``[(term, weights over names)]`` of a sum such as ``"Gln+GSH"`` or ``"tNAA + 3*tCho"``:
    each term an optional factor, then a basis name, a metabolite sum (its members present) or
    ``Big3``."""
    expression = NAMED_SUMS.get(expression.strip(), expression)
    out = []
    for term in expression.split("+"):
        factor, _, name = (part.strip() for part in term.rpartition("*"))
        try:
            value = float(factor) if factor else 1.0
        except ValueError:
            raise ValueError(f"[fitting] ratio_constraints: factor {factor!r} in {expression!r} "
                             "is not a number") from None
        weights = np.zeros(len(names))
        for member in (name,) if name in names else METABOLITE_SUMS.get(name, (name,)):
            if member in names:
                weights[names.index(member)] += value
        out.append((term.strip(), weights))
    return out


def expression_weights(names: list, expression: str) -> np.ndarray:
    """Weights over ``names`` of a sum (``expression_terms`` added up); unknown names add
    nothing."""
    return sum((w for _, w in expression_terms(names, expression)), np.zeros(len(names)))


def ratio_prior_rows(names: list, norms: np.ndarray, constraints: list, amplitudes: np.ndarray,
                     sigma_scaled: float, data_scale: float) -> np.ndarray:
    """Prior rows (one per constraint) acting on the normalised amplitudes.

    The prior ``(num - r den) / (sd den_est) ~ N(0, 1)``, where ``num`` and ``den`` are sums
    (``expression_weights``) and ``den_est`` is the denominator of the current fit, is written
    in the units of the scaled residual (noise SD ``sigma_scaled``) so that it enters the cost
    like the data do. A constraint whose denominator is not positive at the reference gives a
    zero row (the caller leaves it out).
    """
    return np.array([ratio_row(expression_weights(names, c["numerator"]),
                               expression_weights(names, c["denominator"]), float(c["ratio"]),
                               float(c["sd"]), amplitudes, norms, sigma_scaled, data_scale)
                     for c in constraints]).reshape(len(constraints), len(names))


def ratio_row(numerator: np.ndarray, denominator: np.ndarray, ratio: float, sd: float,
              amplitudes: np.ndarray, norms: np.ndarray, sigma_scaled: float,
              data_scale: float) -> np.ndarray:
    """One prior row ``(num - r den) / (sd den_est) ~ N(0, 1)`` on the normalised amplitudes
    (``num``, ``den``: weights over the entries; ``den_est`` from ``amplitudes``), in the units
    of the scaled residual; zero when the reference denominator is not positive.

    ``den_est`` is at least the denominator's noise-equivalent amplitude (about its SD from the
    data alone, ``reference_floor``): a denominator the data barely see (e.g. Gln + GSH at
    SNR 20) would otherwise turn the soft prior into an equality."""
    reference = float(denominator @ amplitudes)
    if reference <= 0 or not numerator.any():
        return np.zeros(numerator.size)
    reference = max(reference, reference_floor(denominator, norms, sigma_scaled, data_scale))
    weight = sigma_scaled * data_scale / (sd * reference)
    return weight * (numerator - ratio * denominator) / norms


def reference_floor(denominator: np.ndarray, norms: np.ndarray, sigma_scaled: float,
                    data_scale: float) -> float:
    """Amplitude of ``denominator`` (weights over the entries) whose signal equals one noise SD
    per coefficient: each normalised column has unit norm over the window, so a coefficient's
    SD from the data is about the scaled noise SD; in amplitude units that is
    ``sigma_scaled * data_scale / norm`` per entry, combined over the weights."""
    return float(sigma_scaled * data_scale * np.linalg.norm(denominator / norms))
