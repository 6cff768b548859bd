"""Powder (direction) averaging of metabolite amplitudes and the direction-count check.

Conditions with nearly equal b (within a relative tolerance, e.g. 907/903/901 s/mm^2 with
cross-terms) form one shell; the amplitudes of a shell are averaged arithmetically (the
estimator of the orientation mean) or geometrically (exp of the mean log, i.e. the trace
for Gaussian diffusion with orthogonal directions). The direction-count check follows the
consensus advice that few directions only approximate the powder average when b*D is large
and the voxel is anisotropic: it computes the worst-case error of the direction average
for a coherent bundle of sticks with the acquired directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.diffusion import signals

POWDER_METHODS = ("arithmetic", "geometric")


@dataclass
class PowderAverage:
    """Shell-averaged amplitudes: one entry per distinct b (ms/um^2)."""

    b_ms_um2: np.ndarray
    amplitude: np.ndarray
    sigma: np.ndarray | None
    n_directions: np.ndarray
    shell_index: np.ndarray
    method: str
    note: str = ""


def shell_labels(b_ms_um2, rel_tolerance: float = 0.05, abs_tolerance_ms_um2: float = 0.05) -> np.ndarray:
    """Shell index of each condition: b-values within the tolerances of a shell's first b join it."""
    b = np.asarray(b_ms_um2, float)
    order = np.argsort(b, kind="stable")
    labels = np.empty(b.size, int)
    shell, start = -1, None
    for i in order:
        if start is None or b[i] > start * (1 + rel_tolerance) + abs_tolerance_ms_um2:
            shell, start = shell + 1, b[i]
        labels[i] = shell
    return labels


def powder_average(b_ms_um2, amplitudes, sigma=None, method: str = "arithmetic",
                   rel_tolerance: float = 0.05) -> PowderAverage:
    """Average amplitudes over the directions of each b-shell.

    amplitudes, sigma: (n_conditions,) for one metabolite. Geometric means need positive
    amplitudes; shells with a non-positive amplitude fall back to the arithmetic mean (noted).
    """
    if method not in POWDER_METHODS:
        raise ValueError(f"powder-average method must be one of {POWDER_METHODS}, got {method!r}")
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    a = np.atleast_1d(np.asarray(amplitudes, float))
    if a.shape != b.shape:
        raise ValueError(f"amplitudes {a.shape} and b-values {b.shape} differ in length")
    sg = None if sigma is None else np.broadcast_to(np.asarray(sigma, float), b.shape)
    labels = shell_labels(b, rel_tolerance)
    n_shells = labels.max() + 1
    out_b, out_a, out_s, counts, notes = [], [], [], [], []
    for k in range(n_shells):
        idx = labels == k
        n = int(idx.sum())
        mean_a = float(a[idx].mean())
        var = None if sg is None else float(np.sum(sg[idx] ** 2)) / n**2
        if method == "geometric" and np.all(a[idx] > 0):
            mean_a = float(np.exp(np.mean(np.log(a[idx]))))
            var = None if sg is None else mean_a**2 * float(np.sum((sg[idx] / a[idx]) ** 2)) / n**2
        elif method == "geometric" and n > 1:
            notes.append(f"shell b={b[idx].mean():.3g} ms/um^2 has non-positive amplitudes: arithmetic mean used")
        out_b.append(float(b[idx].mean()))
        out_a.append(mean_a)
        out_s.append(var)
        counts.append(n)
    return PowderAverage(np.array(out_b), np.array(out_a),
                         None if sg is None else np.sqrt(np.array(out_s, float)),
                         np.array(counts), labels, method, "; ".join(notes))


def unique_directions(directions, tol: float = 1e-3) -> np.ndarray:
    """Distinct unit directions (up to sign) among finite rows of (n, 3), in first-seen order."""
    g = np.atleast_2d(np.asarray(directions, float))
    g = g[np.all(np.isfinite(g), axis=1) & (np.linalg.norm(g, axis=1) > 0)]
    unique = []
    for v in g / np.linalg.norm(g, axis=1, keepdims=True):
        if not any(abs(abs(v @ u) - 1) < tol for u in unique):
            unique.append(v)
    return np.array(unique).reshape(-1, 3)


def fibonacci_hemisphere(n: int) -> np.ndarray:
    """n nearly uniform unit vectors on the upper hemisphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n
    phi = np.pi * (1.0 + 5**0.5) * i
    r = np.sqrt(1.0 - z**2)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def direction_average_error(b_ms_um2, d_intra, gradient_directions, n_orientations: int = 1500) -> np.ndarray:
    """Worst-case relative error of the direction-averaged stick signal vs its powder average.

    Fibre orientations sample the sphere; returns one error per b (shape of ``b_ms_um2``).
    """
    g = np.atleast_2d(np.asarray(gradient_directions, float))
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    fibres = fibonacci_hemisphere(n_orientations)
    cos2 = (fibres @ g.T) ** 2  # (n_orientations, n_dirs)
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    measured = np.exp(-b[:, None, None] * d_intra * cos2[None]).mean(axis=2)
    truth = signals.sticks_powder_average(b, d_intra)[:, None]
    return np.max(np.abs(measured - truth), axis=1) / truth[:, 0]


def directions_needed(b_ms_um2, d_intra, anisotropy: float = 1.0, tolerance: float = 0.05,
                      max_directions: int = 200) -> int:
    """Smallest uniform direction count whose worst-case error * anisotropy stays below tolerance."""
    b_max = float(np.max(b_ms_um2))
    for n in (3, 6, 10, 15, 20, 30, 45, 60, 90, 120, 160, max_directions):
        err = direction_average_error(b_max, d_intra, fibonacci_hemisphere(n), 600)[0]
        if anisotropy * err <= tolerance:
            return n
    return max_directions


def check_direction_count(b_ms_um2, gradient_directions, d_intra: float = 0.5, anisotropy: float = 1.0,
                          tolerance: float = 0.05) -> tuple[bool, str]:
    """Consensus check of direction count against b*D and voxel anisotropy.

    anisotropy in [0, 1]: 0 for randomly oriented tissue (any direction set is exact), 1 for
    a single coherent bundle (e.g. WM fraction times FA-like coherence). Returns (ok, note).
    """
    g = np.atleast_2d(np.asarray(gradient_directions, float))
    if g.size == 0 or g.shape[1] != 3 or not np.all(np.isfinite(g)):
        return False, "no gradient directions known: the powder average cannot be checked"
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    b_max = float(b.max())
    err = float(direction_average_error(b_max, d_intra, g)[0]) * anisotropy
    ok = err <= tolerance
    note = (f"{len(g)} directions at b*D = {b_max * d_intra:.2g} (b={b_max:.3g} ms/um^2, D={d_intra} um^2/ms), "
            f"anisotropy {anisotropy:.2g}: worst-case direction-average error {100 * err:.1f} %")
    if not ok:
        note += (f" > {100 * tolerance:.0f} %; about {directions_needed(b, d_intra, anisotropy, tolerance)} "
                 "directions would be needed, or model the anisotropy (anisotropic_cylinders)")
    return ok, note
