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
                          sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S
                          ) -> tuple[np.ndarray, np.ndarray]:
    """b-values (s/mm^2) and unit directions (n, 3) of several chronograms, in the given order.

    For supplying an acquisition's diffusion conditions from a config (one chronogram per
    diffusion-weighted condition).
    """
    results = [b_values_from_chronogram(p, sequence, sample_interval_s) for p in csv_paths]
    return (np.array([r["b_value_s_mm2"] for r in results]),
            np.array([r["direction"] for r in results]).reshape(-1, 3))
