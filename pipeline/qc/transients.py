"""The transients of one acquisition before and after alignment, from the drift table.

The QC similarity index and the report's transient figure both compare the transients around
alignment; the shifts of ``_transients.tsv`` turn one state into the other.
"""

from __future__ import annotations

import numpy as np

from ..io.files import to_float
from .metrics import apply_shifts, display_combination


def table_value(row: dict, key: str) -> float:
    """One value of a ``_transients.tsv`` row as a float; ``acquired`` is 1 when not given
    (n/a, or a table written before 2026-12-07 without the column, whose exactly-zero
    transients are only ``rejected`` and so count as rejected)."""
    if key != "acquired":
        return to_float(row[key])
    value = to_float(row.get(key))
    return 1.0 if np.isnan(value) else value


def before_after(transients, transient_rows: list[dict], aligned: bool = False):
    """(before, after, rejected) arrays (n_conditions, n_transients[, n_points]) of the
    transients around alignment, coils combined (for display and QC).

    ``transients`` is an ``Acquisition`` before alignment (``aligned`` False: the shifts of
    ``_transients.tsv`` are undone to get "after") or after it (``aligned`` True: they are
    re-applied to get "before"); None when the table does not match it.
    """
    if transients is None:
        return None
    shape = (transients.n_conditions, transients.n_transients)
    table = {(int(r["condition"]), int(r["transient"])): r for r in transient_rows}
    if set(table) != {(c, t) for c in range(shape[0]) for t in range(shape[1])}:
        return None
    freq, phase, rejected = (np.array([[to_float(table[c, t][k]) for t in range(shape[1])]
                                       for c in range(shape[0])])
                             for k in ("freq_shift_hz", "phase_shift_deg", "rejected"))
    given = display_combination(transients.fids)
    sign = -1.0 if aligned else 1.0
    moved = np.stack([apply_shifts(given[c], transients.dwell_s, sign * freq[c],
                                   sign * phase[c]) for c in range(shape[0])])
    before, after = (moved, given) if aligned else (given, moved)
    return before, after, rejected.astype(bool)
