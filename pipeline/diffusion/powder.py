"""Powder (direction) averaging of metabolite amplitudes and the direction-count check.

Conditions are grouped into shells (``group_shells``) by their nominal gradient strength or
shell label when known; otherwise, with gradient directions, by the rank of b within each
direction (the k-th b of every direction is shell k, e.g. 614/889/660 s/mm^2 with direction-
specific cross-terms), and failing that by b within ``SHELL_REL_TOLERANCE`` (15 %) of the
shell's smallest b (no chaining). A shell's b is the mean b of its conditions; repeats of one
direction are averaged first, then the directions, arithmetically (the
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

SHELL_REL_TOLERANCE = 0.15
"""Fallback shell grouping: a sorted b-value more than 15 % above its shell's first b starts a
new shell. Cross-terms of imaging/crusher gradients change b by a few % to tens of % per direction; nominal shells of
a dMRS protocol are usually >= 1.5x apart."""

ZERO_B_MS_UM2 = 0.05
"""b-values at or below this (50 s/mm^2: crushers only) form the b ~ 0 shell."""


@dataclass
class Shells:
    """Shell of each condition and per-shell summaries (b in ms/um^2)."""

    labels: np.ndarray  # (n_conditions,) shell index, shells ordered by mean b
    b_mean_ms_um2: np.ndarray  # (n_shells,)
    n_directions: np.ndarray  # (n_shells,) distinct directions (or conditions) per shell
    method: str  # "gradient", "label", "direction rank" or "b tolerance"


def _ordered(labels, b):
    """Relabel shells 0..n-1 in order of increasing mean b."""
    keys = np.unique(labels)
    means = np.array([b[labels == k].mean() for k in keys])
    rank = {k: i for i, k in enumerate(keys[np.argsort(means, kind="stable")])}
    return np.array([rank[k] for k in labels], int)


SHELL_WIDTH_GAP_RATIO = 0.75
"""A group of b-values within the tolerance is a shell only when its width (largest - smallest
b) is at most this fraction of the gaps to the b-values beside it: cross-term shells (0.901,
0.903, 0.907 beside 0 and 2.14 ms/um^2; 1.42, 1.5, 1.6 beside 1.08: width 0.53 of the gap)
are clusters; evenly spaced b (3.5, 4.0 beside 3.0 and 4.5: width 1.0 of the gaps) are not,
and stay separate shells."""


def _by_tolerance(b, rel_tolerance):
    """Shells of sorted b: a b-value joins the current shell only within ``rel_tolerance`` of
    the shell's first (smallest) b, never of its previous member, and a group is kept only when
    it is a cluster (``SHELL_WIDTH_GAP_RATIO``), so shells do not chain: with b = 0, 0.5, ...,
    10 ms/um^2 and 15 % the neighbour rule made b = 3.5-10 one shell (mean 6.75), and a b <= 5
    fit used b <= 3; evenly spaced b-values stay separate shells."""
    order = np.argsort(b, kind="stable")
    groups, first = [], None
    for i in order:
        if first is None or b[i] > first * (1 + rel_tolerance) + 1e-12 \
                or (first <= ZERO_B_MS_UM2 < b[i]):
            groups.append([])
            first = b[i]
        groups[-1].append(i)
    labels, shell = np.empty(b.size, int), -1
    for k, members in enumerate(groups):
        width = b[members[-1]] - b[members[0]]
        gaps = [b[members[0]] - b[groups[k - 1][-1]]] if k else []
        gaps += [b[groups[k + 1][0]] - b[members[-1]]] if k + 1 < len(groups) else []
        cluster = width <= SHELL_WIDTH_GAP_RATIO * min(gaps, default=np.inf) \
            or b[members[-1]] <= ZERO_B_MS_UM2
        for part in ([members] if cluster else _equal_b_runs(b, members)):
            shell += 1
            labels[part] = shell
    return labels


def _equal_b_runs(b, members) -> list[list[int]]:
    """``members`` (sorted by b) split into runs of equal b: repeats stay one shell."""
    runs = [[members[0]]]
    for i in members[1:]:
        if b[i] - b[runs[-1][0]] <= 1e-9 * max(1.0, abs(b[i])):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _by_direction_rank(b, directions):
    """k-th smallest b of each direction -> shell k; None when the directions do not each have
    the same number of conditions or the resulting shells overlap in b."""
    from pipeline.diffusion.tensor import direction_cluster_labels
    g = np.asarray(directions, float)
    weighted = b > ZERO_B_MS_UM2
    if not np.all(np.isfinite(g[weighted])):
        return None
    centres, which = direction_cluster_labels(g[weighted])
    if len(centres) < 2:
        return None
    counts = np.bincount(which, minlength=len(centres))
    if np.any(counts != counts[0]) or counts[0] < 2:
        return None
    labels = np.zeros(b.size, int)
    sub = np.zeros(weighted.sum(), int)
    for k in range(len(centres)):
        idx = np.nonzero(which == k)[0]
        sub[idx[np.argsort(b[weighted][idx], kind="stable")]] = np.arange(idx.size)
    bw = b[weighted]
    for k in range(counts[0] - 1):
        if bw[sub == k].max() >= bw[sub == k + 1].min():
            return None  # shells overlap: direction rank is not a shell
    labels[weighted] = sub + 1
    return labels


def group_shells(b_ms_um2, directions=None, gradient_strength=None, shell_label=None,
                 rel_tolerance: float = SHELL_REL_TOLERANCE) -> Shells:
    """Group conditions into shells (pure; what the workflow calls before powder averaging).

    Priority: ``shell_label`` (any hashable per condition), then ``gradient_strength`` (nominal
    gradient amplitude per condition, e.g. mT/m; equal within 0.5 % means the same shell), then
    the direction rank (``directions`` (n, 3), NaN rows at b ~ 0), then ``rel_tolerance`` on
    sorted b. b ~ 0 conditions (<= ZERO_B_MS_UM2) always form their own shell.
    """
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    zero = b <= ZERO_B_MS_UM2
    labels, method = None, ""
    if shell_label is not None:
        raw = np.asarray(shell_label, object)
        if raw.shape != b.shape:
            raise ValueError(f"shell labels {raw.shape} and b-values {b.shape} differ in length")
        _, labels = np.unique(raw.astype(str), return_inverse=True)
        labels, method = labels + 1, "label"
    elif gradient_strength is not None:
        gs = np.atleast_1d(np.asarray(gradient_strength, float))
        if gs.shape != b.shape or not np.all(np.isfinite(gs[~zero])):
            raise ValueError(f"gradient strengths {gs.shape} must be finite, one per b-value {b.shape}")
        gs = np.where(zero, 0.0, gs)
        order = np.argsort(gs, kind="stable")
        labels, shell, previous = np.empty(b.size, int), 0, None
        for i in order:
            if previous is None or abs(gs[i] - previous) > 0.005 * max(abs(previous), 1e-12):
                shell += 1
            labels[i], previous = shell, gs[i]
        method = "gradient"
    elif directions is not None:
        labels = _by_direction_rank(b, directions)
        method = "direction rank" if labels is not None else ""
    if labels is None:
        labels, method = _by_tolerance(b, rel_tolerance), "b tolerance"
    else:
        labels = np.where(zero, -1, labels)  # b ~ 0 is one shell whatever its label/gradient
    labels = _ordered(labels, b)
    n_shells = labels.max() + 1
    means = np.array([b[labels == k].mean() for k in range(n_shells)])
    n_dirs = np.array([_n_directions(directions, labels == k) for k in range(n_shells)])
    return Shells(labels, means, n_dirs, method)


def _n_directions(directions, mask) -> int:
    if directions is None:
        return int(mask.sum())
    from pipeline.diffusion.tensor import direction_clusters
    g = np.asarray(directions, float)[mask]
    finite = np.all(np.isfinite(g), axis=1)
    return max(len(direction_clusters(g[finite])), int(np.any(~finite)))


def shells_within(shells: Shells, b_max_ms_um2: float) -> np.ndarray:
    """Conditions whose whole shell (mean b) lies at or below b_max: b-range limits act on shells."""
    keep_shell = shells.b_mean_ms_um2 <= b_max_ms_um2 + 1e-9
    return keep_shell[shells.labels]


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
    covariance: np.ndarray | None = None  # (n_shells, n_shells) when the input had one


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


REPEAT_TOLERANCE_DEG = 5.0
"""Directions this close (up to sign) are repeats of one direction. Tighter than the 25 deg
that counts distinct directions for the tensor: dense schemes have neighbours 10-20 deg apart
(64 half-sphere directions ~15 deg), and grouping them as repeats weighted the powder average
unevenly (30 directions: about 4.5 % ADC bias)."""


def direction_groups(directions, n_conditions: int) -> np.ndarray:
    """Direction group of each condition: directions equal up to sign within
    :data:`REPEAT_TOLERANCE_DEG` share a group; conditions without a finite direction (b ~ 0,
    or no directions given) form group -1."""
    if directions is None:
        return np.full(n_conditions, -1)
    from pipeline.diffusion.tensor import direction_cluster_labels
    g = np.atleast_2d(np.asarray(directions, float))
    if g.shape != (n_conditions, 3):
        raise ValueError(f"directions {g.shape} must be ({n_conditions}, 3), one per condition")
    return direction_cluster_labels(g, REPEAT_TOLERANCE_DEG)[1]


def direction_weights(labels, directions=None) -> np.ndarray:
    """Weight of each condition in its shell's powder average: 1 / (directions in the shell x
    acquisitions of that direction in the shell), so repeated acquisitions of one direction
    (up to sign) are averaged first and every distinct direction then counts once. A direction
    acquired twice must not count twice: with D = 0.4 along x and 0.1 along y, z, x twice moved
    the ADC from 0.168 to 0.206 um^2/ms (truth over the 3 directions 0.174). Each shell's
    weights sum to 1."""
    labels = np.asarray(labels, int)
    groups = direction_groups(directions, labels.size)
    weights = np.zeros(labels.size)
    for shell in np.unique(labels):
        in_shell = labels == shell
        present, counts = np.unique(groups[in_shell], return_counts=True)
        per_group = dict(zip(present.tolist(), counts.tolist()))
        weights[in_shell] = [1.0 / (present.size * per_group[k]) for k in groups[in_shell]]
    return weights


def powder_average(b_ms_um2, amplitudes, sigma=None, method: str = "arithmetic",
                   rel_tolerance: float = SHELL_REL_TOLERANCE, labels=None,
                   directions=None, covariance=None) -> PowderAverage:
    """Average amplitudes over the directions of each b-shell; the shell's b is its b-values'
    mean with the same weights.

    amplitudes, sigma: (n_conditions,) for one metabolite. ``labels``: shell index per condition
    (``group_shells(...).labels``); without it, b within ``rel_tolerance`` forms a shell.
    ``directions`` (n_conditions, 3): repeats of one direction are averaged before the
    directions (:func:`direction_weights`); without them every condition counts once.
    Geometric means need positive amplitudes; shells with a non-positive amplitude fall back to
    the arithmetic mean (noted). ``covariance`` (n_conditions, n_conditions): the amplitudes'
    covariance across conditions, propagated to the shells' as A C A^T (A: the average's
    derivative with respect to the amplitudes; for the geometric mean its linearisation,
    mean * w / a), returned as ``covariance``; the shells' ``sigma`` is then its diagonal's root
    (two correlated directions average less noise away than independent ones).
    """
    if method not in POWDER_METHODS:
        raise ValueError(f"powder-average method must be one of {POWDER_METHODS}, got {method!r}")
    b = np.atleast_1d(np.asarray(b_ms_um2, float))
    a = np.atleast_1d(np.asarray(amplitudes, float))
    if a.shape != b.shape:
        raise ValueError(f"amplitudes {a.shape} and b-values {b.shape} differ in length")
    sg = None if sigma is None else np.broadcast_to(np.asarray(sigma, float), b.shape)
    labels = shell_labels(b, rel_tolerance) if labels is None else _ordered(np.asarray(labels, int), b)
    n_shells = labels.max() + 1
    weights = direction_weights(labels, directions)
    out_b, out_a, out_s, counts, notes = [], [], [], [], []
    mixing = np.zeros((n_shells, b.size))  # d(shell average)/d(amplitude)
    for k in range(n_shells):
        idx = labels == k
        n, w = int(idx.sum()), weights[idx]
        mean_a = float(w @ a[idx])
        var = None if sg is None else float(np.sum((w * sg[idx]) ** 2))
        mixing[k, idx] = w
        if method == "geometric" and np.all(a[idx] > 0):
            mean_a = float(np.exp(w @ np.log(a[idx])))
            mixing[k, idx] = mean_a * w / a[idx]
            var = None if sg is None else mean_a**2 * float(np.sum((w * sg[idx] / a[idx]) ** 2))
        elif method == "geometric" and n > 1:
            notes.append(f"shell b={b[idx].mean():.3g} ms/um^2 has non-positive amplitudes: arithmetic mean used")
        out_b.append(float(w @ b[idx]))  # the b of the average: weighted as its amplitudes
        out_a.append(mean_a)
        out_s.append(var)
        counts.append(n)
    shells_cov = None if covariance is None else mixing @ np.asarray(covariance, float) @ mixing.T
    sd = (None if sg is None else np.sqrt(np.array(out_s, float)) if shells_cov is None
          else np.sqrt(np.clip(np.diag(shells_cov), 0, None)))  # correlated directions count
    return PowderAverage(np.array(out_b), np.array(out_a), sd, np.array(counts), labels, method,
                         "; ".join(notes), shells_cov)


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


def check_direction_count_per_shell(shells: Shells, directions, d_intra: float = 0.5,
                                    anisotropy: float = 1.0, tolerance: float = 0.05) -> tuple[bool, str]:
    """Direction-count check of every diffusion-weighted shell with its own directions at its
    mean b; returns the worst shell's (ok, note) prefixed by the per-shell direction counts."""
    from pipeline.diffusion.tensor import direction_clusters
    g = np.asarray(directions, float)
    worst = (True, "", -1.0)
    counts = []
    for k, b_k in enumerate(shells.b_mean_ms_um2):
        mask = shells.labels == k
        if b_k <= ZERO_B_MS_UM2:
            continue
        dirs = direction_clusters(g[mask])
        counts.append(f"{len(dirs)} at b={b_k:.3g}")
        ok, note = check_direction_count(np.array([b_k]), dirs, d_intra, anisotropy, tolerance)
        err = float(direction_average_error(b_k, d_intra, dirs)[0]) if len(dirs) else np.inf
        if err > worst[2]:
            worst = (ok, note, err)
    if not counts:
        return False, "no diffusion-weighted shell"
    return worst[0], f"directions per shell: {', '.join(counts)} ms/um^2; worst shell: {worst[1]}"


TOO_FEW_DIRECTIONS = "directions would be needed"
"""The words of :func:`check_direction_count`'s note when the count is below the tolerance."""


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
                 f"{TOO_FEW_DIRECTIONS}, or model the anisotropy (anisotropic_cylinders)")
    return ok, note


def too_few_directions(note: str) -> bool:
    """A ``_diffusion.tsv`` note holds the verdict of :func:`check_direction_count` that the
    directions are too few for the worst-case voxel anisotropy (the powder average may be off
    by the stated error), so the report can say once what that means for the rows."""
    return TOO_FEW_DIRECTIONS in note


SHELL_HINT_KEYS = {"shell_label": ("ShellLabel", "ShellLabels"),
                   "gradient_strength": ("DiffusionGradientStrength",
                                         "DiffusionGradientStrength_mT_m")}
"""Metadata keys (one value per condition) that state a shell without relying on exact b: a
shell label, or the nominal gradient amplitude. Without them ``group_shells`` falls back to the
rank of b within each direction, then to b within a relative tolerance."""


def acquisition_shells(b_values_s_mm2, directions, metadata: dict | None) -> Shells:
    """Shells of an acquisition's conditions from its stored b-values (s/mm^2), directions
    (n, 3) and metadata (shell hints): the one grouping that the preprocessing's powder average
    uses and that the QC uses to map the acquired conditions' transients onto its shells."""
    from pipeline.units import b_s_mm2_to_ms_um2
    b = np.atleast_1d(np.asarray(b_values_s_mm2, float))
    return group_shells(b_s_mm2_to_ms_um2(b), directions, **shell_hints(metadata or {}, b.size))


def shell_hints(metadata: dict, n_conditions: int) -> dict:
    """``{"shell_label": ..., "gradient_strength": ...}`` from an acquisition's metadata, each
    present only when the metadata gives one value per condition (for :func:`group_shells`)."""
    hints = {}
    for argument, keys in SHELL_HINT_KEYS.items():
        for key in keys:
            value = metadata.get(key)
            if isinstance(value, (list, tuple)) and len(value) == n_conditions:
                hints[argument] = list(value)
                break
    return hints

