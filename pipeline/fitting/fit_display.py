"""The fit taken apart for display: baseline and main-metabolite spectra on the fitted window.

One row per condition and spectral point (``<src>_desc-fitcomponents_spectra.tsv``): the
baseline, the main metabolites (each the sum of its fitted parts) and every other component,
so that the rows add up to the fitted spectrum; the report's fit figure draws them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..metabolites import INOSITOL_NAMES, METABOLITE_SUMS

FIT_DISPLAY_GROUPS = {**{k: METABOLITE_SUMS[k] for k in ("tNAA", "tCr", "tCho")},
                      "Ins": INOSITOL_NAMES, "Glx": METABOLITE_SUMS["Glx"]}
"""Main metabolites drawn in the fit figure, each the sum of its fitted parts."""
DISPLAY_ROWS = ("baseline",) + tuple(FIT_DISPLAY_GROUPS) + ("other",)
"""Rows of a fit display: baseline, main metabolites, then every other fitted component (so
that the rows sum to the fitted spectrum)."""
_DISPLAY_ID_COLUMNS = ["condition", "point", "ppm"]


def fit_display_columns() -> list[str]:
    return _DISPLAY_ID_COLUMNS + [f"{row}_{part}" for row in DISPLAY_ROWS
                                  for part in ("real", "imag")]


def _display_groups(names: list[str]) -> list[list[int]]:
    """Component indices per displayed row after the baseline (main groups, then the rest)."""
    groups = [[names.index(n) for n in parts if n in names]
              for parts in FIT_DISPLAY_GROUPS.values()]
    used = {i for g in groups for i in g}
    return groups + [[i for i in range(len(names)) if i not in used]]


def fit_display_array(fits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, ppm, spectra) of a ``ConditionFits`` on the fitted ppm window: spectral bin
    indices, their ppm, and (n_conditions, len(DISPLAY_ROWS), n_window) complex64 spectra
    (baseline, summed components; zeros where nothing of a row was fitted)."""
    from ..spectra import ppm_axis, ppm_window_mask
    from .results import display_spectra

    first = fits.fits[0]
    problem = first.extra["problem"]
    full_ppm = ppm_axis(problem.n_points, problem.dwell_s, problem.cf_mhz, problem.ref_ppm)
    points = np.flatnonzero(ppm_window_mask(full_ppm, *first.ppm_range))
    out = []
    for f in fits.fits:
        shown = display_spectra(f, first.ppm_range)
        components = np.array([shown["components"][n] for n in f.names])
        zeros = np.zeros_like(shown["baseline"])
        out.append([shown["baseline"]] + [components[g].sum(axis=0) if g else zeros
                                          for g in _display_groups(list(f.names))])
    return points, full_ppm[points], np.asarray(out, dtype=np.complex64)


def fit_display_text(fits) -> str:
    """:func:`fit_display_array` as TSV text (one row per condition and spectral point,
    float32 values with 7 significant digits; byte-identical for identical fits)."""
    points, ppm, spectra = fit_display_array(fits)
    n_cond, n_rows, n_window = spectra.shape
    table = np.empty((n_cond * n_window, 3 + 2 * n_rows))
    table[:, 0] = np.repeat(np.arange(n_cond), n_window)
    table[:, 1] = np.tile(points, n_cond)
    table[:, 2] = np.tile(ppm, n_cond)
    values = spectra.transpose(0, 2, 1).reshape(n_cond * n_window, n_rows)
    table[:, 3::2] = values.real
    table[:, 4::2] = values.imag
    text = io.StringIO()
    np.savetxt(text, table, fmt=["%d", "%d", "%.5f"] + ["%.7g"] * (2 * n_rows),
               delimiter="\t", header="\t".join(fit_display_columns()), comments="")
    return text.getvalue()


def load_fit_display(path, n_conditions: int, n_points: int) -> dict:
    """condition -> {"baseline", "components": {name: spectrum}} from a fit display table
    (:func:`fit_display_text`), spectra of length ``n_points`` (NaN outside the fitted window,
    so plots leave a gap; main metabolites only, those fitted); {} when the file is absent or
    does not match."""
    if not path or not Path(path).is_file():
        return {}
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    if header != fit_display_columns():
        raise ValueError(f"{path}: not a fit display table (columns {header[:4]}...)")
    table = np.loadtxt(path, delimiter="\t", skiprows=1, ndmin=2)
    condition, point = table[:, 0].astype(int), table[:, 1].astype(int)
    if (table.shape[0] == 0 or condition.max() != n_conditions - 1 or point.max() >= n_points
            or point.min() < 0):
        return {}
    full = np.full((n_conditions, len(DISPLAY_ROWS), n_points), np.nan, dtype=complex)
    full[condition, :, point] = table[:, 3::2] + 1j * table[:, 4::2]
    fitted = {c: [name for i, name in enumerate(FIT_DISPLAY_GROUPS, start=1)
                  if np.any(full[c, i][np.isfinite(full[c, i])])]
              for c in range(n_conditions)}
    return {c: {"baseline": full[c, 0],
                "components": {n: full[c, DISPLAY_ROWS.index(n)] for n in fitted[c]}}
            for c in range(n_conditions)}
