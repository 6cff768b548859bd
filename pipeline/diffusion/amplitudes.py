"""Which metabolites' amplitude decays are modelled, in which order, and the rows of those
that cannot be (no positive amplitude at the lowest b)."""

from __future__ import annotations

import numpy as np

from ..io.files import to_float
from .correlated import VARIANCE_RTOL
from ..metabolites import SUM_NAMES


def amplitude_series(rows: list[dict]) -> dict:
    """metabolite -> (amplitudes, crlbs) arrays in condition order, from ``_amplitudes.tsv``
    rows."""
    series: dict = {}
    for row in sorted(rows, key=lambda r: int(r["condition"])):
        amps, crlbs = series.setdefault(row["metabolite"], ([], []))
        amps.append(to_float(row["amplitude"]))
        crlbs.append(to_float(row["crlb"]))
    return {k: (np.asarray(a, float), np.asarray(c, float)) for k, (a, c) in series.items()}


def amplitude_covariances(rows: list[dict], series: dict, source="") -> dict:
    """metabolite -> (n_conditions, n_conditions) amplitude covariance across conditions, from
    ``_desc-amplitudes_covariance.tsv`` rows (metabolite, condition_i, condition_j, covariance; each
    pair once), for the metabolites of ``series`` (:func:`amplitude_series`) it covers with
    finite values; the others are absent (their CRLBs are taken as independent). A metabolite
    with rows for some condition pairs only, or a diagonal that is not the CRLBs squared, is a
    ValueError naming ``source``: the file is not the one the fit wrote with the amplitudes."""
    matrices: dict = {}
    seen: dict = {}
    for row in rows:
        name = row["metabolite"]
        if name not in series:
            continue
        n = series[name][0].size
        matrix = matrices.setdefault(name, np.full((n, n), np.nan))
        i, j = int(row["condition_i"]), int(row["condition_j"])
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"{source}: {name} condition pair ({i}, {j}) outside the "
                             f"{n} conditions of the amplitudes")
        matrix[i, j] = matrix[j, i] = to_float(row["covariance"])
        seen.setdefault(name, np.zeros((n, n), bool))[[i, j], [j, i]] = True
    out = {}
    for name, matrix in matrices.items():
        missing = [(int(i), int(j)) for i, j in zip(*np.nonzero(~seen[name])) if i <= j]
        if missing:
            raise ValueError(f"{source}: {name} has no row for the condition pairs "
                             f"{missing[:5]}{' ...' if len(missing) > 5 else ''}: the file is "
                             "incomplete")
        if not np.all(np.isfinite(matrix)):
            continue
        crlbs = series[name][1]
        if not np.allclose(np.diag(matrix), crlbs ** 2, rtol=VARIANCE_RTOL, atol=0):
            raise ValueError(f"{source}: the {name} variances {np.diag(matrix).tolist()} are "
                             f"not the amplitude rows' CRLBs squared {(crlbs ** 2).tolist()}: "
                             "the covariance and amplitude files are not from one fit")
        out[name] = matrix
    return out


def flagged_metabolites(rows: list[dict], flag: str) -> set:
    """Metabolites with ``flag`` among the ``fit_flags`` of any of their ``_amplitudes.tsv``
    rows (e.g. the decay constraint's cap, ``pipeline.fitting.monotone.CAP_FLAG``)."""
    return {row["metabolite"] for row in rows
            if flag in str(row.get("fit_flags") or "").split("; ")}


def modelled_metabolites(available: list[str], wanted: list[str]) -> list[str]:
    """The sums first, then the other metabolites (or exactly ``wanted`` when given)."""
    if wanted:
        missing = [m for m in wanted if m not in available]
        if missing:
            raise ValueError(f"[diffusion] metabolites {missing} are not among the fitted "
                             f"ones: {available}")
        return list(wanted)
    return [m for m in SUM_NAMES if m in available] + [m for m in available
                                                       if m not in SUM_NAMES]


def has_decay(b_values_s_mm2) -> bool:
    """At least two distinct b-values, so there is a decay to model; plain single-voxel MRS
    (one condition) has none and gets no diffusion rows."""
    b = np.asarray(b_values_s_mm2, float)
    return np.unique(b[np.isfinite(b)]).size >= 2


def decaying(series: dict, names: list[str], b_values_s_mm2) -> list[str]:
    """Those of ``names`` with a positive mean amplitude at the lowest b (a decay to model)."""
    b = np.asarray(b_values_s_mm2, float)
    low_b = b == b.min()
    return [n for n in names if np.mean(series[n][0][low_b]) > 0]


def unmodelled_rows(metabolite: str, models) -> list[dict]:
    """Rows (applicable 0) for a metabolite not fitted at the lowest b: no decay to model."""
    from . import MODELS

    why = "amplitude at the lowest b is not positive: no decay to model"
    return [{"metabolite": metabolite, "model": m, "parameter": p, "value": None, "unit": u,
             "std_error": None, "applicable": 0, "note": why, "reason": why}
            for m in models if m in MODELS
            for p, u in zip(MODELS[m].parameter_names, MODELS[m].parameter_units)]
