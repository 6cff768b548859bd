"""Averaging of transients per condition and powder averaging over diffusion directions."""

from __future__ import annotations

import numpy as np


def average_transients(fids: np.ndarray, rejected: np.ndarray | None = None) -> np.ndarray:
    """Mean over the transient axis (-2) of (..., n_transients, n_points), skipping rejected.

    ``rejected``: bool (..., n_transients). A condition with every transient rejected keeps the
    plain mean (the caller flags it) rather than becoming NaN.
    """
    fids = np.asarray(fids)
    if rejected is None:
        return fids.mean(axis=-2)
    keep = ~np.asarray(rejected, dtype=bool)
    keep = np.where(keep.any(axis=-1, keepdims=True), keep, True)
    weights = keep.astype(float)
    return np.sum(fids * weights[..., None], axis=-2) / weights.sum(axis=-1)[..., None]


def shells(b_values_s_mm2, tolerance_s_mm2: float = 50.0) -> np.ndarray:
    """Shell index of each condition: b-values within ``tolerance_s_mm2`` share a shell.

    The published in-vivo b-values of one gradient strength differ by a few s/mm^2 between
    directions (cross terms), hence the tolerance.
    """
    b = np.asarray(b_values_s_mm2, dtype=float)
    order = np.argsort(b, kind="stable")
    labels = np.empty(b.size, dtype=int)
    shell, start = 0, None
    for i in order:
        if start is not None and b[i] - start > tolerance_s_mm2:
            shell += 1
            start = b[i]
        start = b[i] if start is None else start
        labels[i] = shell
    return labels


def powder_average(values: np.ndarray, b_values_s_mm2, method: str = "arithmetic",
                   tolerance_s_mm2: float = 50.0, labels=None,
                   directions=None) -> tuple[np.ndarray, np.ndarray]:
    """Average conditions of one shell over directions: FIDs or amplitudes (n_conditions, ...).

    ``method``: ``"arithmetic"`` (mean) or ``"geometric"`` (exp of mean log; for complex FIDs the
    geometric mean of magnitudes with the mean phase, which for aligned spectra whose phases
    agree equals the complex geometric mean). The geometric mean of directional signals removes
    the first-order effect of anisotropy (trace-weighted signal). Returns
    ``(averaged (n_shells, ...), shell b-values = mean b of the shell)``. ``labels``: shell of
    each condition, e.g. ``pipeline.diffusion.powder.group_shells(b_ms_um2, directions,
    gradient_strength, shell_label).labels`` for direction-specific b-values; without it, b within
    ``tolerance_s_mm2`` of each other form a shell. ``directions`` (n_conditions, 3): repeats
    of one direction are averaged before the directions, with the diffusion stage's weights
    (``pipeline.diffusion.powder.direction_weights``); without them every condition counts once.
    """
    from pipeline.diffusion.powder import direction_weights

    values = np.asarray(values)
    b = np.asarray(b_values_s_mm2, dtype=float)
    if values.shape[0] != b.size:
        raise ValueError(f"{values.shape[0]} conditions but {b.size} b-values")
    if labels is None:
        labels = shells(b, tolerance_s_mm2)
    else:
        labels = np.asarray(labels, int)
        if labels.shape != b.shape or labels.min() < 0 or np.any(np.bincount(labels) == 0):
            raise ValueError(f"shell labels {labels.tolist()} must number shells 0..n-1, one per "
                             f"b-value ({b.size})")
    weights = direction_weights(labels, directions)
    out, shell_b = [], []
    for shell in range(labels.max() + 1):
        members, w = values[labels == shell], weights[labels == shell]
        shell_b.append(b[labels == shell].mean())
        if method == "arithmetic":
            out.append(np.tensordot(w, members, axes=1))
        elif method == "geometric":
            out.append(_geometric_mean(members, w))
        else:
            raise ValueError(f"powder-average method {method!r}: expected 'arithmetic' or "
                             "'geometric'")
    return np.stack(out), np.asarray(shell_b)


def _geometric_mean(members: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted geometric mean over axis 0 (weights sum to 1); complex: of the magnitudes,
    with the weighted mean phase relative to the first member."""
    magnitude = np.exp(np.tensordot(weights, np.log(np.maximum(np.abs(members),
                                                               np.finfo(float).tiny)), axes=1))
    if not np.iscomplexobj(members):
        return magnitude * np.sign(np.prod(np.sign(members), axis=0))
    reference = members[0]
    relative = np.angle(members * np.conj(reference))
    return magnitude * np.exp(1j * (np.angle(reference) + np.tensordot(weights, relative,
                                                                        axes=1)))


def acquired(fids: np.ndarray, n_leading: int = 1) -> np.ndarray:
    """Mask over the first ``n_leading`` axes of ``fids`` of the entries (transients, or
    condition x transient) not exactly zero at every point of the axes left: noise is never
    exactly 0, so an all-zero entry is an average the scan did not acquire, filled with zeros
    by a scanner or an export. The one test of "not acquired" of preprocessing."""
    fids = np.asarray(fids)
    rest = int(np.prod(fids.shape[n_leading:]))  # 0 for an empty selection (no coil left)
    return np.any(fids.reshape(*fids.shape[:n_leading], rest), axis=-1)


def acquired_mean(fids: np.ndarray) -> np.ndarray:
    """Mean over the first axis (transients) of the :func:`acquired` transients; of all of
    them when none is. Averaged in, k zero transients of n in a water reference scaled every
    concentration by n/(n-k)."""
    kept = acquired(fids)
    return fids[kept].mean(axis=0) if kept.any() else fids.mean(axis=0)
