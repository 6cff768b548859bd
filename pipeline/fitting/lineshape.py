"""Lineshape freedom beyond a Voigt, taken from the water reference (reference deconvolution).

Real lines are not Voigt: shim imperfections give shoulders and tails that every metabolite
shares with the water line of the same voxel. The water reference (eddy-current corrected, so
its phase is flat) holds that shape in its envelope ``|w(t)|``. Its Voigt part (the water's own
T2 and the Gaussian part of the field spread) is fitted and divided out; what is left,
``d(t) = |w(t)| / voigt(t)``, is the non-Voigt distortion. Multiplying every basis FID by
``d(t)`` gives the basis the measured lineshape, and the fit's own Voigt then models only the
metabolites' width (which differs from water's by T2).
"""

from __future__ import annotations

import numpy as np

from ..basis import Basis
from ..spectra import time_axis_s

MIN_ENVELOPE_FRACTION = 0.05
"""Beyond the time where the water envelope falls below this fraction of its start, noise
dominates ``d(t)``: it is held at its last reliable value there."""


def voigt_envelope_fit(envelope: np.ndarray, t_s: np.ndarray,
                       keep: np.ndarray) -> np.ndarray:
    """Least-squares fit of ``log envelope = a - damp t - gauss t^2`` on ``keep`` (weighted by
    the envelope, whose log is noisier where it is small); returns ``(a, damp, gauss)``."""
    weights = envelope[keep]
    design = np.column_stack([np.ones(keep.sum()), -t_s[keep], -t_s[keep] ** 2])
    coef, *_ = np.linalg.lstsq(design * weights[:, None], np.log(envelope[keep]) * weights,
                               rcond=None)
    return coef


def water_lineshape_distortion(water_fid: np.ndarray, dwell_s: float,
                               min_fraction: float = MIN_ENVELOPE_FRACTION) -> np.ndarray:
    """Real factor ``d(t)`` (``d(0)`` = 1): the water envelope divided by its best Voigt."""
    envelope = np.abs(np.asarray(water_fid, dtype=complex))
    if not np.all(np.isfinite(envelope)) or envelope[0] <= 0:
        raise ValueError("water lineshape: the water reference FID is empty or not finite")
    t = time_axis_s(envelope.size, dwell_s)
    reliable = envelope >= min_fraction * envelope.max()
    last = int(np.argmin(reliable)) if not np.all(reliable) else envelope.size
    last = max(last, 8)
    keep = np.zeros(envelope.size, bool)
    keep[:last] = True
    a, damp, gauss = voigt_envelope_fit(np.maximum(envelope, 1e-300), t, keep)
    voigt = np.exp(a - damp * t - gauss * t ** 2)
    distortion = np.ones_like(envelope)
    distortion[:last] = envelope[:last] / voigt[:last]
    distortion[last:] = distortion[last - 1]
    return distortion / distortion[0]


def basis_with_lineshape(basis: Basis, distortion: np.ndarray) -> Basis:
    """The basis with every FID multiplied by ``distortion`` (on the basis' own grid: the
    factor must be sampled like the basis, so resample the basis to the data grid first)."""
    if distortion.size < basis.n_points:
        distortion = np.concatenate([distortion, np.full(basis.n_points - distortion.size,
                                                         distortion[-1])])
    fids = basis.fids * distortion[None, :basis.n_points]
    prov = {**basis.provenance, "lineshape": "water-reference distortion (pipeline.fitting."
                                             "lineshape.water_lineshape_distortion)"}
    return Basis(list(basis.names), fids, basis.dwell_s, basis.cf_mhz, basis.ref_ppm,
                 provenance=prov)
