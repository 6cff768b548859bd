"""Covariance of each metabolite's (and each sum's) amplitudes across the conditions of a
series: ``<src>_desc-amplitudes_covariance.tsv``, which the diffusion stage reads so that its
standard errors carry the correlation (``pipeline.diffusion.correlated``).

A joint fit's amplitudes of one metabolite share its lineshape, phase, shifts, baseline and
decay constraint, so they are correlated across conditions; taken as independent, the
diffusion fit's ADC SEs were conservative by up to 1.4 x and the sticks D_intra SEs of tNAA
and Ins too small by up to a quarter (README "Standard errors"). The correlations come from
the joint Fisher matrix through the decay constraint's projection (``P cov P^T``): on the
published 7 T set they match the correlations measured over noise realisations (b = 0 with
b = 1 ms/um^2: +0.44 to +0.73, measured +0.32 to +0.82; the free fit's, before the
projection, +0.05 to +0.51, and about 0 at high b where up to +0.98 is measured), and it is
singular where the constraint holds (the decay a mixture of a few dictionary exponentials).
The variances are the reported CRLBs squared (the diagonal is exactly ``crlb^2`` of
``_amplitudes.tsv``). Sequential fits are independent across conditions: diagonal.
"""

from __future__ import annotations

import numpy as np

from .conditions import amplitudes_table, mm_indices, mm_total, unmeasured_entries
from .results import ConditionFits
from .uncertainty import propagate, sum_weights

COVARIANCE_COLUMNS = ["metabolite", "condition_i", "condition_j", "covariance",
                      "correlation"]


def row_weights(fit) -> dict:
    """Weight vector over ``fit.names`` of every ``_amplitudes.tsv`` row: each measured
    metabolite, each sum (tNAA, tCr, ...) and the MM total when it has a row."""
    names = list(fit.names)
    unmeasured = unmeasured_entries(fit)
    out = {n: np.eye(len(names))[i] for i, n in enumerate(names) if n not in unmeasured}
    out.update(sum_weights(names))
    if mm_total(names, fit.amplitudes, fit.covariance, unmeasured) is not None:
        members = [i for i in mm_indices(names) if names[i] not in unmeasured]
        out["MM"] = np.isin(np.arange(len(names)), members).astype(float)
    return out


def correlation_across(joint_covariance: np.ndarray, weights: np.ndarray,
                       n_conditions: int) -> np.ndarray:
    """(n_conditions, n_conditions) correlation of the combination ``weights`` (over the
    metabolites) of the amplitudes, from the covariance of all (condition, metabolite) pairs
    (condition-major). A combination with an infinite or zero variance somewhere (an entry the
    data do not see, a metabolite held at 0) is taken as uncorrelated there."""
    used = np.flatnonzero(np.tile(weights, n_conditions))
    mixing = np.kron(np.eye(n_conditions), weights[None, :])[:, used]
    k = propagate(mixing, np.asarray(joint_covariance, float)[np.ix_(used, used)])
    sd = np.sqrt(np.clip(np.diag(k), 0, None))  # inf where an unseen entry is used
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = k / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), np.clip(corr, -1.0, 1.0), 0.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def amplitude_covariances(fits: ConditionFits) -> dict:
    """name -> (n_conditions, n_conditions) covariance of its amplitudes across conditions,
    for every row name of ``_amplitudes.tsv``: correlations from the joint fit (identity for
    sequential fits), variances the rows' CRLBs squared."""
    crlb: dict = {}
    for row in amplitudes_table(fits):
        crlb.setdefault(row["metabolite"], {})[int(row["condition"])] = row["crlb"]
    n = len(fits.fits)
    joint = fits.fits[0].extra.get("amplitude_covariance") if fits.mode == "joint" else None
    out = {}
    for name, w in row_weights(fits.fits[0]).items():
        sd = np.array([crlb[name][c] for c in range(n)], float)
        corr = np.eye(n) if joint is None else correlation_across(joint, w, n)
        with np.errstate(invalid="ignore"):
            out[name] = np.where(corr == 0, 0.0, corr * np.outer(sd, sd))
    return out


def amplitude_covariance_rows(fits: ConditionFits) -> list[dict]:
    """Rows of ``_desc-amplitudes_covariance.tsv``: metabolite, condition_i <= condition_j (the
    ``condition`` indices of ``_amplitudes.tsv``), covariance (amplitude units squared) and
    correlation."""
    rows = []
    for name, cov in amplitude_covariances(fits).items():
        sd = np.sqrt(np.diag(cov))
        for i in range(cov.shape[0]):
            for j in range(i, cov.shape[0]):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else float(i == j)
                rows.append({"metabolite": name, "condition_i": i, "condition_j": j,
                             "covariance": float(cov[i, j]), "correlation": float(corr)})
    return rows
