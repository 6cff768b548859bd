"""Gaussian prior on the per-metabolite shifts, added to a least-squares problem as rows.

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

from ..qc.metrics import noise_sd


def scaled_noise_sd(fid: np.ndarray, dwell_s: float, cf_mhz: float, scale: float) -> float:
    """Noise SD of the real spectrum in a signal-free region, in the fit's scaled units."""
    return noise_sd(fid, dwell_s, cf_mhz) / scale


def shift_prior_noise_sd(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                         scale: float) -> float:
    """The noise SD weighting the shift prior, in scaled units: :func:`scaled_noise_sd` of one
    FID, or the median over the rows of ``fids`` (one per condition of a joint fit). Computed
    once per fit (it takes an FFT and a detrended SD) and passed to :func:`with_shift_prior`."""
    rows = np.atleast_2d(fids)
    return float(np.median([scaled_noise_sd(f, dwell_s, cf_mhz, scale) for f in rows]))


def with_shift_prior(residual, jacobian, n_params: int, own_index: np.ndarray,
                     noise_sd_scaled: float, sd_hz: float) -> "WithPrior":
    """``residual``/``jacobian`` with the Gaussian prior rows of the per-metabolite shift
    parameters ``own_index`` (none when ``sd_hz`` is 0 or there are none)."""
    weights = own_shift_weights(n_params, own_index, noise_sd_scaled, sd_hz)
    return WithPrior(residual, jacobian, weights)


def own_shift_weights(n_params: int, own_index: np.ndarray, sigma_scaled: float,
                      sd_hz: float) -> np.ndarray:
    """(n_params,) prior weight per parameter: ``sigma_scaled / sd_hz`` at ``own_index``."""
    weights = np.zeros(n_params)
    if sd_hz > 0 and np.size(own_index):
        weights[np.asarray(own_index, dtype=int)] = sigma_scaled / sd_hz
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
