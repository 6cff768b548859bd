"""Read gradient/RF chronograms (CSV) and compute their effective b-values.

Format (as in the DW-STEAM pregame data): a header line ``Gx,Gy,Gz,RF`` then one row per sample,
gradients in mT/m, RF in arbitrary units, samples at a fixed interval (6.4 us by default).
Other spellings are read too: units in the column names (``Gx [mT/m]``, ``Gx (T/m)``,
``Gx (G/cm)``), ``RF`` as ``B1`` or as real and imaginary columns (``RF_real``, ``RF_imag``:
their magnitude is used), and a time column (``t``, ``time`` with ``s``/``ms``/``us``) that
gives the sample interval. Separators: comma, semicolon, tab or spaces.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pipeline.io.nifti_mrs_header import implausible_largest_b
from pipeline.preprocess.bvalues import b_values_from_waveform

DEFAULT_SAMPLE_INTERVAL_S = 6.4e-6
REQUIRED_COLUMNS = ("gx", "gy", "gz", "rf")
GRADIENT_UNITS_MT_M = {"mt/m": 1.0, "t/m": 1e3, "g/cm": 10.0, "mt/mm": 1e3, "ut/m": 1e-3}
TIME_UNITS_S = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "usec": 1e-6}


def _column(name: str) -> tuple[str, str]:
    """(role, unit) of a header name: role in gx/gy/gz/rf/rf_real/rf_imag/time or ''."""
    unit_match = re.search(r"[\[(]\s*([^\])]+?)\s*[\])]", name)
    unit = unit_match.group(1).lower().replace(" ", "") if unit_match else ""
    base = re.sub(r"[\[(].*?[\])]", "", name).strip().lower()
    base = re.sub(r"[^a-z0-9]", "", base)
    roles = {"gx": "gx", "gradx": "gx", "x": "gx", "gy": "gy", "grady": "gy", "y": "gy",
             "gz": "gz", "gradz": "gz", "z": "gz", "rf": "rf", "b1": "rf", "rfamp": "rf",
             "rfamplitude": "rf", "rfmag": "rf", "rfreal": "rf_real", "rfre": "rf_real",
             "b1real": "rf_real", "rfimag": "rf_imag", "rfim": "rf_imag", "b1imag": "rf_imag",
             "t": "time", "time": "time"}
    for suffix, scale_unit in (("ms", "ms"), ("us", "us"), ("s", "s")):
        if base in ("t" + suffix, "time" + suffix) and not unit:
            return "time", scale_unit
    return roles.get(base, ""), unit


def read_chronogram(csv_path, with_interval: bool = False):
    """Gradients (n_samples, 3) in mT/m and RF (n_samples,) from a chronogram CSV; with
    ``with_interval``, also the sample interval in s from a time column (None without one)."""
    path = Path(csv_path)
    try:
        with path.open() as handle:
            first = handle.readline()
    except OSError as error:
        raise ValueError(f"{path}: cannot read chronogram ({error})") from error
    delimiter = next((d for d in (",", ";", "\t") if d in first), None)
    names = [h.strip() for h in (first.split(delimiter) if delimiter else first.split())]
    roles = [_column(n) for n in names]
    found = {role: (i, unit) for i, (role, unit) in enumerate(roles) if role}
    if "rf" not in found and "rf_real" in found:
        found["rf"] = found["rf_real"]
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise ValueError(f"{path}: chronogram header {names} lacks columns {missing} "
                         "(expected Gx, Gy, Gz in mT/m and RF, optionally a time column)")
    try:
        table = np.loadtxt(path, delimiter=delimiter, skiprows=1, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: chronogram is not numeric CSV ({error})") from error
    if table.shape[1] != len(names) or table.shape[0] < 2:
        raise ValueError(f"{path}: expected {len(names)} columns and several rows, "
                         f"got shape {table.shape}")
    gradients = np.empty((table.shape[0], 3))
    for k, axis in enumerate(("gx", "gy", "gz")):
        column, unit = found[axis]
        if unit and unit not in GRADIENT_UNITS_MT_M:
            raise ValueError(f"{path}: gradient unit {unit!r} of column {names[column]!r} is not "
                             f"one of {sorted(GRADIENT_UNITS_MT_M)}")
        gradients[:, k] = table[:, column] * GRADIENT_UNITS_MT_M.get(unit, 1.0)
    rf = table[:, found["rf"][0]]
    if "rf_imag" in found:
        rf = np.hypot(rf, table[:, found["rf_imag"][0]])
    if not with_interval:
        return gradients, rf
    return gradients, rf, _interval_s(table, found, names, path)


def _interval_s(table, found, names, path) -> float | None:
    """Sample interval (s) from the time column, or None without one."""
    if "time" not in found:
        return None
    column, unit = found["time"]
    if unit not in TIME_UNITS_S and unit != "":
        raise ValueError(f"{path}: time unit {unit!r} of column {names[column]!r} is not one of "
                         f"{sorted(TIME_UNITS_S)}")
    steps = np.diff(table[:, column])
    step = float(np.median(steps))
    if step <= 0 or np.max(np.abs(steps - step)) > 1e-3 * step:
        raise ValueError(f"{path}: the time column {names[column]!r} is not evenly spaced")
    if unit == "":
        unit = "s" if step < 1e-3 else ("ms" if step < 1 else "us")  # guess: samples are us apart
    return step * TIME_UNITS_S[unit]


def b_values_from_chronogram(csv_path, sequence: str = "steam",
                             sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
                             pulse_indices=None) -> dict:
    """Effective b-value (s/mm^2, all cross terms), b-matrix and timings of one chronogram.

    Returns a dict with ``b_value_s_mm2``, ``b_matrix_s_mm2`` (3x3 nested list, waveform axes),
    ``direction`` (unit vector), ``echo_time_s``, ``mixing_time_s``, ``pulse_times_s`` and
    ``residual_k_rad_m`` (how far the pathway is from refocused at the echo).
    """
    gradients_mt_m, rf, interval_s = read_chronogram(csv_path, with_interval=True)
    if interval_s is not None:
        sample_interval_s = interval_s
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
    b_s_mm2 = np.array([r["b_value_s_mm2"] for r in results])
    problem = chronogram_b_problem(b_s_mm2, csv_paths)
    if problem:
        raise ValueError(problem)
    return b_s_mm2, np.array([r["direction"] for r in results]).reshape(-1, 3)


def chronogram_b_problem(b_s_mm2, csv_paths) -> str | None:
    """Why b-values (s/mm^2) computed from these chronograms cannot be right (the plausibility
    check of header b-values, :func:`pipeline.io.nifti_mrs_header.implausible_largest_b`),
    naming each file and its b; None when they are plausible. b grows with the square of the
    gradient amplitude and the cube of the sample interval, so a wrong unit moves it by
    orders of magnitude."""
    b_s_mm2 = np.asarray(b_s_mm2, dtype=float)
    largest = float(np.max(b_s_mm2)) if b_s_mm2.size else 0.0
    why = implausible_largest_b(largest)
    if why is None:
        return None
    shown = ", ".join(f"{Path(p).name}: {b:.4g}" for p, b in zip(csv_paths, b_s_mm2))
    return (f"b-values computed from the gradient chronograms ({shown} s/mm^2) give a largest "
            f"b of {largest:.4g} s/mm^2, {why}. The gradient amplitudes are likely not in the "
            "unit read (mT/m unless a column name states one, e.g. 'Gx [T/m]'; a factor 1000 "
            "in the gradient, such as T/m read as mT/m, changes b by 10^6), or the sample "
            "interval is wrong ([conversion] chronogram_sample_interval_s or the time column; "
            "b scales with its cube)")


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

    ``sequence``: "steam", "se", "press", "slaser", or "auto" (the acquisition's own sequence,
    :func:`pipeline.sequences.identify_sequence`).
    ``assignment``: "position" (chronograms in condition order), "shell_direction" (matched
    by direction, then by b within a direction: :func:`assign_by_shell_direction`) or "auto"
    (shell_direction when every weighted condition has a direction, else position).
    """
    from dataclasses import replace

    if sequence == "auto":
        from pipeline.sequences import identify_sequence

        sequence = identify_sequence(acq.metadata)[0]
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"chronogram_assignment {assignment!r} is not one of {ASSIGNMENTS}")
    weighted = np.flatnonzero(acq.b_values_s_mm2 > 0)
    if weighted.size != len(csv_paths):
        raise ValueError(f"{acq.source}: {weighted.size} diffusion-weighted conditions but "
                         f"{len(csv_paths)} chronograms in [conversion] chronograms (one per "
                         "condition with b > 0)")
    try:
        b_chron, dirs_chron = chronogram_conditions(csv_paths, sequence, sample_interval_s,
                                                    pulse_indices)
    except ValueError as error:
        raise ValueError(f"{acq.source}: {error}") from None
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
