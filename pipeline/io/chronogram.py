"""Read gradient/RF chronograms (CSV) and compute their effective b-values.

Format (as in the DW-STEAM pregame data): a header line ``Gx,Gy,Gz,RF`` then one row per sample,
gradients in mT/m, RF in arbitrary units, samples at a fixed interval (6.4 us by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.preprocess.bvalues import b_values_from_waveform

DEFAULT_SAMPLE_INTERVAL_S = 6.4e-6
REQUIRED_COLUMNS = ("gx", "gy", "gz", "rf")


def read_chronogram(csv_path) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (n_samples, 3) in mT/m and RF (n_samples,) from a chronogram CSV."""
    path = Path(csv_path)
    try:
        with path.open() as handle:
            header = [h.strip().lower() for h in handle.readline().split(",")]
    except OSError as error:
        raise ValueError(f"{path}: cannot read chronogram ({error})") from error
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: chronogram header {header} lacks columns {missing}")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: chronogram is not numeric CSV ({error})") from error
    if table.shape[1] != len(header) or table.shape[0] < 2:
        raise ValueError(f"{path}: expected {len(header)} columns and several rows, "
                         f"got shape {table.shape}")
    columns = [header.index(c) for c in REQUIRED_COLUMNS]
    return table[:, columns[:3]], table[:, columns[3]]


def b_values_from_chronogram(csv_path, sequence: str = "steam",
                             sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
                             pulse_indices=None) -> dict:
    """Effective b-value (s/mm^2, all cross terms), b-matrix and timings of one chronogram.

    Returns a dict with ``b_value_s_mm2``, ``b_matrix_s_mm2`` (3x3 nested list, waveform axes),
    ``direction`` (unit vector), ``echo_time_s``, ``mixing_time_s``, ``pulse_times_s`` and
    ``residual_k_rad_m`` (how far the pathway is from refocused at the echo).
    """
    gradients_mt_m, rf = read_chronogram(csv_path)
    try:
        result = b_values_from_waveform(gradients_mt_m, rf, sample_interval_s, sequence,
                                        pulse_indices=pulse_indices)
    except ValueError as error:
        raise ValueError(f"{csv_path}: {error}") from error
    return {
        "source": str(csv_path),
        "sequence": sequence,
        "b_value_s_mm2": result.b_value_s_mm2,
        "b_matrix_s_mm2": result.b_matrix_s_mm2.tolist(),
        "direction": result.direction.tolist(),
        "echo_time_s": result.echo_time_s,
        "mixing_time_s": result.mixing_time_s,
        "pulse_times_s": result.pulse_times_s.tolist(),
        "residual_k_rad_m": result.residual_k_rad_m.tolist(),
    }


def chronogram_conditions(csv_paths, sequence: str = "steam",
                          sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
                          pulse_indices=None) -> tuple[np.ndarray, np.ndarray]:
    """b-values (s/mm^2) and unit directions (n, 3) of several chronograms, in the given order.

    For supplying an acquisition's diffusion conditions from a config (one chronogram per
    diffusion-weighted condition).
    """
    results = [b_values_from_chronogram(p, sequence, sample_interval_s, pulse_indices)
               for p in csv_paths]
    return (np.array([r["b_value_s_mm2"] for r in results]),
            np.array([r["direction"] for r in results]).reshape(-1, 3))


ASSIGNMENTS = ("auto", "position", "shell_direction")
"""How chronograms are matched to conditions (``[conversion] chronogram_assignment``)."""

MIN_DIRECTION_COSINE = 0.9
"""A chronogram belongs to a nominal direction when |cos(angle)| is at least this."""


def _direction_groups(directions: np.ndarray) -> list[list[int]]:
    """Indices of rows sharing one direction (up to sign), in order of first appearance."""
    groups: list[list[int]] = []
    for i, d in enumerate(directions):
        for group in groups:
            if abs(float(np.dot(directions[group[0]], d))) > 1 - 1e-6:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def assign_by_shell_direction(b_nominal: np.ndarray, dirs_nominal: np.ndarray,
                              b_chron: np.ndarray, dirs_chron: np.ndarray, where="") -> np.ndarray:
    """For each condition, the index of its chronogram, matched by (shell, direction).

    Each chronogram goes to the nominal direction nearest its own (|cos| >= 0.9); within one
    direction, conditions and chronograms pair in b order (the smallest b with the smallest).
    Raises ValueError when the counts or directions do not match.
    """
    nominal_groups = _direction_groups(dirs_nominal)
    members: list[list[int]] = [[] for _ in nominal_groups]
    for j, d in enumerate(dirs_chron):
        cosines = [abs(float(np.dot(dirs_nominal[g[0]], d))) for g in nominal_groups]
        best = int(np.argmax(cosines))
        if cosines[best] < MIN_DIRECTION_COSINE:
            raise ValueError(f"{where}chronogram {j} has direction {np.round(d, 3).tolist()}, "
                             "far from every condition's direction (|cos| < "
                             f"{MIN_DIRECTION_COSINE}); use chronogram_assignment = \"position\"")
        members[best].append(j)
    assigned = np.full(b_nominal.size, -1)
    for group, chron in zip(nominal_groups, members):
        if len(group) != len(chron):
            raise ValueError(f"{where}{len(group)} conditions along direction "
                             f"{np.round(dirs_nominal[group[0]], 3).tolist()} but {len(chron)} "
                             "chronograms near it")
        conds = sorted(group, key=lambda i: b_nominal[i])
        chron = sorted(chron, key=lambda j: b_chron[j])
        assigned[conds] = chron
    return assigned


def acquisition_with_chronograms(acq, csv_paths: list, sequence: str, pulse_indices=None,
                                 assignment: str = "auto",
                                 sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S):
    """``acq`` with the b-values (s/mm^2) and unit directions of its diffusion-weighted
    conditions (b > 0) computed from their gradient chronograms; b = 0 stays.

    ``assignment``: "position" (chronograms in condition order), "shell_direction" (matched
    by direction, then by b within a direction: :func:`assign_by_shell_direction`) or "auto"
    (shell_direction when every weighted condition has a direction, else position).
    """
    from dataclasses import replace

    if assignment not in ASSIGNMENTS:
        raise ValueError(f"chronogram_assignment {assignment!r} is not one of {ASSIGNMENTS}")
    weighted = np.flatnonzero(acq.b_values_s_mm2 > 0)
    if weighted.size != len(csv_paths):
        raise ValueError(f"{acq.source}: {weighted.size} diffusion-weighted conditions but "
                         f"{len(csv_paths)} chronograms in [conversion] chronograms (one per "
                         "condition with b > 0)")
    b_chron, dirs_chron = chronogram_conditions(csv_paths, sequence, sample_interval_s,
                                                pulse_indices)
    dirs_nominal = acq.directions[weighted]
    has_dirs = bool(np.all(np.isfinite(dirs_nominal)))
    if assignment == "shell_direction" and not has_dirs:
        raise ValueError(f"{acq.source}: chronogram_assignment = \"shell_direction\" needs a "
                         "direction for every diffusion-weighted condition")
    if assignment == "position" or (assignment == "auto" and not has_dirs):
        order, how = np.arange(weighted.size), "in condition order"
    else:
        order = assign_by_shell_direction(acq.b_values_s_mm2[weighted], dirs_nominal, b_chron,
                                          dirs_chron, f"{acq.source}: ")
        how = "matched by (shell, direction)"
    b_all, dirs_all = acq.b_values_s_mm2.astype(float), acq.directions.astype(float)
    b_all[weighted], dirs_all[weighted] = b_chron[order], dirs_chron[order]
    metadata = dict(acq.metadata, b_value_units_source=f"gradient chronograms ({how})")
    metadata["ChronogramFiles"] = [Path(csv_paths[j]).name for j in order]
    return replace(acq, b_values_s_mm2=b_all, directions=dirs_all, metadata=metadata)
