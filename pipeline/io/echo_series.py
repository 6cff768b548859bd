"""A water reference recorded at several echo times in one file: which entries the run uses.

The metabolite data are modelled at one echo time (their basis is simulated at it), so an
``EchoTime`` series in a metabolite file's dim header stays refused
(:func:`pipeline.io.nifti_mrs_header.check_timing_series`). A water reference acquired at
several TEs in one file (for water T2 or CSF estimation; e.g. a ``DIM_USER_0`` or
``DIM_INDIRECT_0`` header ``{"EchoTime": [...]}``) is a common acquisition, and water scaling
needs one TE: the entries at the metabolite data's TE (within
:data:`pipeline.io.input_checks.ECHO_TIME_TOLERANCE_S`), else those at the shortest TE (the
least T2-weighted water), always with a warning naming the file, its TEs and the one used.
The file is reduced to those entries before its dimensions are interpreted, so everything
else about it (b-values, directions, other timings) follows the usual rules.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .input_checks import ECHO_TIME_TOLERANCE_S, header_extension, nifti_grid
from .nifti_mrs_header import _canonical_key, _expand_dim_values, _fail, _unwrap, _varies

ECHO_KEY = _canonical_key("EchoTime")


def _echo_key(header: dict) -> str | None:
    """The key of a dim header that states EchoTime (any spelling), or None."""
    return next((k for k in header if _canonical_key(k) == ECHO_KEY), None)


def echo_time_series(ext: dict, shape, path) -> tuple[int, list[float]] | None:
    """(dim number 5-7, EchoTime in s of each of its entries) of the one dimension whose
    ``dim_N_header`` in the NIfTI-MRS header extension ``ext`` gives its entries different
    EchoTime values (list or start/increment form); None when no dimension does.
    NiftiMrsError naming ``path`` when two dimensions do, or a value is not a number of
    seconds in (0, 1)."""
    found = []
    for dim in range(5, len(shape) + 1):
        header = ext.get(f"dim_{dim}_header")
        key = _echo_key(header) if isinstance(header, dict) else None
        if key is not None and _varies(_unwrap(header[key]), shape[dim - 1]):
            found.append((dim, key, _unwrap(header[key])))
    if not found:
        return None
    if len(found) > 1:
        raise _fail(path, f"EchoTime varies along {' and '.join(f'dim_{d}' for d, _, _ in found)}"
                          ": a TE series must lie along one dimension")
    dim, key, values = found[0]
    where = f"dim_{dim}_header {key!r}"
    echo_times = _expand_dim_values(values, shape[dim - 1], path, where)
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1
               for t in echo_times):
        raise _fail(path, f"{where} {echo_times!r}: echo times must be numbers of seconds "
                          "in (0, 1) s (e.g. 0.03 for 30 ms)")
    return dim, [float(t) for t in echo_times]


def chosen_entries(echo_times_s: list[float], data_echo_time_s: float | None):
    """(indices of the entries used, their TE in s, whether it is the data's TE): those within
    :data:`ECHO_TIME_TOLERANCE_S` of ``data_echo_time_s``, else (also when the data state no
    TE) those within it of the shortest TE, whose water is the least T2-weighted."""
    times = np.asarray(echo_times_s, dtype=float)
    matched = data_echo_time_s is not None and bool(
        np.any(np.abs(times - data_echo_time_s) <= ECHO_TIME_TOLERANCE_S))
    target = float(data_echo_time_s) if matched else float(times.min())
    used = [int(i) for i in np.flatnonzero(np.abs(times - target) <= ECHO_TIME_TOLERANCE_S)]
    return used, float(times[used[0]]), matched


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:g} ms"


def echo_choice_note(path, dim: int, echo_times_s: list[float], used: list[int],
                     used_echo_time_s: float, matched: bool,
                     data_echo_time_s: float | None) -> str:
    """The warning stating which entries of a water reference's TE series the run uses."""
    distinct = ", ".join(_ms(t) for t in sorted(set(echo_times_s)))
    data = "states no EchoTime" if data_echo_time_s is None else \
        f"TE {_ms(data_echo_time_s)}"
    which = (f"the entries at the metabolite data's TE, {_ms(used_echo_time_s)}, are used"
             if matched else f"none is at the metabolite data's TE ({data}), so the entries at "
                             f"the shortest TE, {_ms(used_echo_time_s)}, are used")
    relaxed = "" if matched else f"; water scaling relaxes the water at {_ms(used_echo_time_s)}"
    return (f"{path}: the water reference holds an EchoTime series along dim_{dim} "
            f"({len(echo_times_s)} entries; TE {distinct}): {which} ({len(used)} of "
            f"{len(echo_times_s)}), the others are left out{relaxed}")


def _subset(value, indices: list[int], size: int):
    """A dim-header value reduced to the entries ``indices`` (a ``{"Value": ...}`` wrapper is
    kept); values that do not list one entry per element are left as they are."""
    plain = _unwrap(value)
    if isinstance(plain, dict) and {"start", "increment"} <= set(plain):
        try:
            plain = _expand_dim_values(plain, size, "", "")
        except ValueError:
            return value
    if not isinstance(plain, (list, tuple)) or len(plain) != size:
        return value
    return _with_values(value, [plain[i] for i in indices])


def _with_values(value, values: list):
    """``values`` in the form of the dim-header ``value`` (a ``{"Value": ...}`` wrapper kept)."""
    return {**value, "Value": values} if isinstance(value, dict) and "Value" in value else values


def select_water_echo_time(ext: dict, data: np.ndarray, path,
                           data_echo_time_s: float | None):
    """(header extension, data, TE used in s or None, warning or None) of a water reference
    whose dim header holds an EchoTime series, reduced to the entries :func:`chosen_entries`
    picks (every per-entry value of that dim header reduced alike); unchanged, with None and
    None, when it holds no series."""
    series = echo_time_series(ext, data.shape, path)
    if series is None:
        return ext, data, None, None
    dim, echo_times = series
    used, used_te, matched = chosen_entries(echo_times, data_echo_time_s)
    header = ext[f"dim_{dim}_header"]
    size = data.shape[dim - 1]
    kept = {k: _subset(v, used, size) for k, v in header.items()}
    key = _echo_key(header)  # TEs within the tolerance of each other are one TE
    kept[key] = _with_values(header[key], [used_te] * len(used))
    reduced = {**ext, f"dim_{dim}_header": kept}
    note = echo_choice_note(path, dim, echo_times, used, used_te, matched, data_echo_time_s)
    return reduced, np.take(data, used, axis=dim - 1), used_te, note


def stated_echo_time_s(path, metadata: dict) -> float | None:
    """The metabolite data's EchoTime (s) as the run reads it: the sidecar ``metadata``'s,
    else the NIfTI-MRS header's; None when neither states a number."""
    for source in (metadata, header_extension(path)):
        value = _unwrap(source.get("EchoTime"))
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value):
            return float(value)
    return None


def water_echo_series_note(water, data_echo_time_s: float | None) -> str | None:
    """For discovery, from the header alone: the warning :func:`select_water_echo_time` will
    give about the water reference ``water``, or None when it holds no EchoTime series.
    NiftiMrsError naming the file for a series the run cannot use."""
    shape, _ = nifti_grid(water)
    series = echo_time_series(header_extension(water), shape, Path(water))
    if series is None:
        return None
    dim, echo_times = series
    used, used_te, matched = chosen_entries(echo_times, data_echo_time_s)
    return echo_choice_note(water, dim, echo_times, used, used_te, matched, data_echo_time_s)
