"""Rows of the participant report's amplitude and diffusion-parameter tables, shaped for display
(the TSVs they come from are unchanged): which amplitudes are collapsed and why, the unit of a
water-scaled value, the note every diffusion row shares shown once above its table.
"""

from __future__ import annotations

from pipeline.diffusion.powder import too_few_directions
from pipeline.fitting.options import is_lipid_name, is_mm_name
from pipeline.io.files import to_float
from pipeline.metabolites import SUM_NAMES

SUMS = SUM_NAMES
MAX_SHOWN_CRLB_PERCENT = 50.0
"""Metabolites (not sums) with a larger %CRLB, or none, are collapsed under the table."""
MM_SCALE_UNIT = "a.u. (MM scale)"
"""Unit shown for a macromolecule's or lipid's water-scaled value: its proton count is a
convention of the basis (e.g. 3 protons for the 0.9 ppm line), so the number is on a fixed scale
that compares across participants, not a concentration in mM."""
NOTE_SEPARATOR = "; "
"""How ``pipeline.diffusion.table`` joins the parts of a ``_diffusion.tsv`` note."""
POWDER_CAVEAT = (
    "The gradient directions are too few for the powder average to be free of orientation "
    "bias in an anisotropic voxel (worst case above). \"applicable: yes\" below judges each model "
    "against the b-values, timing and noise only, not the powder average it was fitted to: read "
    "the values of these rows as possibly biased by up to that error, unless the voxel is known "
    "to be nearly isotropic (e.g. mostly grey matter), or acquire more directions.")
"""What the direction-count note means for the rows marked applicable, said once per table."""


def concentration_unit(metabolite: str) -> str:
    """``mM`` for a metabolite, :data:`MM_SCALE_UNIT` for macromolecules, lipids and the MM
    sum (names ``MM*``, ``Mac*``, ``Lip*``)."""
    return MM_SCALE_UNIT if is_mm_name(metabolite) or is_lipid_name(metabolite) else "mM"


def other_amplitudes_label(n_rows: int, max_crlb_percent: float = MAX_SHOWN_CRLB_PERCENT) -> str:
    """Summary of the collapsed amplitude rows: what put them there, and only that (before
    2026-12-07 it also named macromolecules, which the main table shows)."""
    return (f"{n_rows} more: %CRLB > {max_crlb_percent:g} %, or no %CRLB (amplitude 0, not "
            "detected)")


def amplitude_table(rows: list[dict], max_crlb_percent: float = MAX_SHOWN_CRLB_PERCENT
                    ) -> tuple[list, list]:
    """Amplitudes with %CRLB at the lowest b, each with its ``concentration_unit``: (sums and
    entries with %CRLB up to ``max_crlb_percent``, the other entries)."""
    if not rows:
        return [], []
    b_min = min(to_float(r["b_value"]) for r in rows)
    low = [{**r, "concentration_unit": concentration_unit(r["metabolite"])}
           for r in rows if to_float(r["b_value"]) == b_min]
    order = {n: i for i, n in enumerate(SUMS)}
    low.sort(key=lambda r: (order.get(r["metabolite"], len(SUMS)), r["metabolite"]))
    main = [r for r in low if r["metabolite"] in SUMS
            or to_float(r.get("crlb_percent")) <= max_crlb_percent]
    return main, [r for r in low if r not in main]


def parameter_table(rows: list[dict]) -> list[dict]:
    """Diffusion parameters (no AIC/BIC) of metabolites with a decay, sums first."""
    order = {n: i for i, n in enumerate(SUMS)}
    kept = [r for r in rows if r["parameter"] not in ("AIC", "BIC")
            and not (r.get("value") in ("n/a", "") and r.get("applicable") in ("0", 0))]
    return sorted(kept, key=lambda r: (order.get(r["metabolite"], len(SUMS)), r["metabolite"],
                                       r["model"]))


def _parts(note) -> list[str]:
    return [p for p in str(note or "").split(NOTE_SEPARATOR) if p]


def shared_note(rows: list[dict]) -> str:
    """The note parts (in their order) that every row fitted to the decay (not the tensor)
    carries: the acquisition's context (diffusion time, TE, powder average and its direction
    check). Empty unless at least two metabolite/model pairs share them: one row's own note is
    not the acquisition's."""
    fitted = [r for r in rows if r.get("model") != "tensor"]
    if len({(r["metabolite"], r["model"]) for r in fitted}) < 2:
        return ""
    common = set(_parts(fitted[0].get("note")))
    for row in fitted[1:]:
        common &= set(_parts(row.get("note")))
    return NOTE_SEPARATOR.join(p for p in _parts(fitted[0].get("note")) if p in common)


def without_shared_note(rows: list[dict], shared: str) -> list[dict]:
    """The rows with ``own_note``: their note without the parts of ``shared`` (shown once
    above the table, not on every row)."""
    drop = set(_parts(shared))
    return [{**r, "own_note": NOTE_SEPARATOR.join(p for p in _parts(r.get("note"))
                                                  if p not in drop)} for r in rows]


def diffusion_tables(rows: list[dict]) -> dict:
    """Template values of the diffusion parameter tables: every row (``parameters``), the
    applicable rows of the sums (``main_parameters``), the note they share (``shared_note``)
    and, when that note says the directions are too few, :data:`POWDER_CAVEAT`."""
    parameters = parameter_table(rows)
    shared = shared_note(parameters)
    shown = without_shared_note(parameters, shared)
    return {"parameters": shown, "shared_note": shared,
            "powder_caveat": POWDER_CAVEAT if too_few_directions(shared) else "",
            "main_parameters": [r for r in shown if r["metabolite"] in SUMS
                                and r.get("applicable") in ("1", 1)]}
