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
else about it (b-values, directions, other timings) follows the usual rules. The apparent
water T2 of the whole series is recorded for the quantification report, never used by it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .input_checks import ECHO_TIME_TOLERANCE_S, InputError, header_extension, nifti_grid
from .nifti_mrs_header import (_B_KEYS, _DIRECTION_KEYS, _canonical_key, _expand_dim_values,
                               _fail, _unwrap, _varies)

ECHO_KEY = _canonical_key("EchoTime")
WATER_T2_KEY = "dmrs_bids_water_t2_from_echo_series"
"""Metadata key of a water reference read from an EchoTime series: the apparent water T2 its
entries give (:func:`water_t2_from_series`), reported with the quantification inputs and never
used by them."""


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


def _echo_groups(echo_times_s: list[float]) -> list[list[int]]:
    """Entry indices grouped by TE (within :data:`ECHO_TIME_TOLERANCE_S`), shortest first."""
    groups: list[list[int]] = []
    for i in np.argsort(echo_times_s, kind="stable"):
        if groups and echo_times_s[i] - echo_times_s[groups[-1][0]] <= ECHO_TIME_TOLERANCE_S:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return groups


def water_t2_from_series(data: np.ndarray, dim: int, echo_times_s: list[float],
                         dwell_s: float, labels_diffusion: bool) -> dict:
    """The apparent water T2 (s) of a water reference's EchoTime series along ``dim``: a
    mono-exponential (log-linear least squares) fit of its water signal at t = 0
    (``fitting.quantification.water_amplitude`` of the entries of each TE averaged over every
    other dimension) against TE. ``t2_s`` is None, with the reason, when the TE dimension also
    labels b-values or directions (the TEs would then differ in diffusion weighting too), its
    TEs are all one (within the tolerance: a line through one point is no T2) or the signal
    does not decay. In tissue the decay is multi-exponential (CSF's water T2 is
    several times the tissue's), so this is an apparent value for the TEs acquired."""
    from ..fitting.quantification import water_amplitude

    groups = _echo_groups(echo_times_s)
    times = [echo_times_s[g[0]] for g in groups]
    result = {"t2_s": None, "echo_times_s": times, "relative_signal": None}
    if labels_diffusion:
        return {**result, "note": "not estimated: the TE dimension also labels b-values or "
                                  "directions"}
    if len(groups) < 2:
        return {**result, "note": "not estimated: its entries are at one echo time (within "
                                  f"{_ms(ECHO_TIME_TOLERANCE_S)})"}
    fids = [np.take(data, g, axis=dim - 1)[0, 0, 0].reshape(data.shape[3], -1).mean(axis=1)
            for g in groups]
    try:  # a value only reported must never stop the run
        signal = np.array([water_amplitude(f, dwell_s) for f in fids])
    except (ValueError, np.linalg.LinAlgError) as exc:
        return {**result, "note": f"not estimated: the water line fit failed ({exc})"}
    result["relative_signal"] = (signal / signal[0]).tolist() if signal[0] > 0 else None
    slope = np.polyfit(times, np.log(signal), 1)[0] if np.all(signal > 0) else 0.0
    if not slope < 0:
        return {**result, "note": "not estimated: the water signal does not decay with TE"}
    return {**result, "t2_s": float(-1.0 / slope),
            "note": "apparent mono-exponential water T2 of the series; reported only, water "
                    "scaling uses [quantification] water_t2_s or the literature defaults"}


def select_water_echo_time(ext: dict, data: np.ndarray, path,
                           data_echo_time_s: float | None, dwell_s: float):
    """(header extension, data, TE used in s or None, warning or None) of a water reference
    whose dim header holds an EchoTime series, reduced to the entries :func:`chosen_entries`
    picks (every per-entry value of that dim header reduced alike; a dimension labelling
    nothing but TEs holds repeats at one TE then, read as transients; the apparent water T2 of
    the whole series, :func:`water_t2_from_series`, added as :data:`WATER_T2_KEY`, so it
    reaches the quantification report); unchanged, with None and None, when it holds no
    series (``dwell_s``: the dwell time in s)."""
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
    diffusion = any(_canonical_key(k) in _B_KEYS | _DIRECTION_KEYS for k in header)
    reduced = {**ext, f"dim_{dim}_header": kept,
               WATER_T2_KEY: water_t2_from_series(data, dim, echo_times, dwell_s, diffusion)}
    if not diffusion:  # it labels only TEs: the entries kept at one TE are repeats
        reduced[f"dim_{dim}"] = "DIM_DYN"
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


def file_echo_series(path) -> tuple[int, list[float]] | None:
    """:func:`echo_time_series` of the NIfTI-MRS file ``path`` from its header alone; None also
    when its header cannot be read (empty, truncated: the run's own reading names that, per
    acquisition). NiftiMrsError naming the file for a series no run can use."""
    try:
        shape, _ = nifti_grid(path)
        extension = header_extension(path)
    except InputError:
        return None
    return echo_time_series(extension, shape, Path(path))


def water_echo_series_note(water, data_echo_time_s: float | None) -> str | None:
    """For discovery, from the header alone: the warning :func:`select_water_echo_time` will
    give about the water reference ``water``, or None when it holds no EchoTime series.
    NiftiMrsError naming the file for a series the run cannot use. A file whose header cannot
    be read gives None (:func:`file_echo_series`; raising here stopped the participant's other
    acquisitions from being tried)."""
    series = file_echo_series(water)
    if series is None:
        return None
    dim, echo_times = series
    used, used_te, matched = chosen_entries(echo_times, data_echo_time_s)
    return echo_choice_note(water, dim, echo_times, used, used_te, matched, data_echo_time_s)
