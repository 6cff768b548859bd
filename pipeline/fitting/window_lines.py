"""The basis without the lines that residual-water removal takes from the data.

Removing residual water (``preprocess.water.remove_residual_water``, HLSVD components inside a
window, 4.0-5.5 ppm by default) also removes the metabolite lines in that window (Ins 4.05,
NAA 4.38, GSH 4.56 ppm) and their Lorentzian tails below it, which the basis still has: on the
published 7 T dMRS set the fit then put 1.9 mM of absent glucose where the Ins tail was missing
and moved tNAA/tCr and tCho/tCr by -2.5/-3.0 % (-0.8/-0.1 % with the lines taken out of
the metabolite entries as well).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..preprocess.water import fit_damped_exponentials, subspace_poles, water_components
from ..spectra import H1_REFERENCE_PPM, fid_to_spectrum, ppm_axis, ppm_window_mask
from .options import is_lipid_name, is_mm_name

MAX_COMPONENTS = 40
"""Most damped exponentials per basis entry (pregame 7 T Ins: reproduced to rounding)."""
POINTS_USED = 256
"""Points of an entry whose Hankel matrix (128 x 129) gives its poles: up to 40 noise-free lines
need no more."""
RANK_TOLERANCE = 1e-6
"""Hankel singular values below this fraction of the largest are not lines: a noise-free entry
has as many components as lines, and spurious poles beyond them can land in the window and
take a share of a line outside it (3e-3 of a 3.53 ppm line in the analytic test)."""
MIN_WINDOW_ENERGY = 1e-4
"""Entries with less of their spectral energy in the window (lipids, most MM) stay as given."""


def entry_poles(fid: np.ndarray, dwell_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Poles (Hz, 1/s) of a noise-free entry: one SVD of its first ``POINTS_USED`` points'
    Hankel matrix gives both the number of lines and their subspace."""
    n = min(POINTS_USED, fid.size)
    u, values, _ = scipy.linalg.svd(scipy.linalg.hankel(fid[:n // 2], fid[n // 2 - 1:n]),
                                    full_matrices=False, lapack_driver="gesdd")
    rank = int(min(MAX_COMPONENTS, max(1, np.sum(values > RANK_TOLERANCE * values[0]))))
    return subspace_poles(u[:, :rank], dwell_s)


def without_window_lines(fids: np.ndarray, dwell_s: float, cf_mhz: float, window_ppm,
                         ref_ppm: float = H1_REFERENCE_PPM, names=None) -> np.ndarray:
    """Basis FIDs (n_entries, n_points) without their lines inside ``window_ppm``: the
    components of each entry's HLSVD model centred there (``water_components``, as the data's
    removal selects them); entries with almost no signal there are returned as given."""
    fids = np.atleast_2d(np.asarray(fids, dtype=complex))
    power = np.abs(fid_to_spectrum(fids)) ** 2
    inside = ppm_window_mask(ppm_axis(fids.shape[-1], dwell_s, cf_mhz, ref_ppm), *window_ppm)
    out = fids.copy()
    for i, fid in enumerate(fids):
        if power[i, inside].sum() < MIN_WINDOW_ENERGY * power[i].sum():
            continue
        try:  # no growing pole: it would overflow over a long FID
            freq_hz, damping_hz = entry_poles(fid, dwell_s)
            model = fit_damped_exponentials(fid, dwell_s, freq_hz, np.maximum(damping_hz, 0.0))
        except (np.linalg.LinAlgError, ValueError) as error:
            label = names[i] if names is not None else f"entry {i}"
            raise ValueError(f"basis {label}: its lines inside {list(window_ppm)} ppm (the "
                             f"residual-water window) could not be modelled: {error}") from error
        lines = water_components(model, cf_mhz, window_ppm, 0.0, ref_ppm)
        out[i] = fid - model.fid(fid.size, dwell_s, lines)
    return out


def metabolites_without_window_lines(fids: np.ndarray, names, dwell_s: float, cf_mhz: float,
                                     window_ppm, ref_ppm: float = H1_REFERENCE_PPM) -> np.ndarray:
    """:func:`without_window_lines` for the metabolite entries; MM and lipid entries stay
    whole. Their broad in-window components reach far below the window, where the data's
    HLSVD (25 components for the whole spectrum) does not take them the same way: with them
    filtered too the 7 T MM decay error of the independent dMRS set rose from 0.096 to 0.29
    (0.093 with the metabolites only; README "dMRS defaults")."""
    rows = [i for i, name in enumerate(names) if not (is_mm_name(name) or is_lipid_name(name))]
    out = np.array(fids, dtype=complex, copy=True)
    if rows:
        out[rows] = without_window_lines(out[rows], dwell_s, cf_mhz, window_ppm, ref_ppm,
                                         [names[i] for i in rows])
    return out
