"""Water-scaled concentrations for the ``_amplitudes.tsv`` rows: tissue fractions, the
scaling inputs, and what a user should know about them.

A problem here skips the concentrations with a warning rather than losing the acquisition's
other outputs (:func:`quantify_rows`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.files import read_tsv, to_float
from ..qc.flags import THRESHOLDS, finite_number
from ..qc.summary import CONCENTRATION_CHECKED, lowest_b_max, lowest_b_rows
from ..acquisition import WATER_SCALE_NOTE_KEY
from ..io.echo_series import WATER_T2_KEY
from ..units import field_strength_t
from .quantification import (DEFAULT_TISSUE_FRACTIONS, FIELD_MATCH_T, TISSUE_CLASSES,
                             WATER_RELAXATION_BY_FIELD, basis_proton_scale,
                             concentration_columns, relaxation_table_notes,
                             water_amplitude)


def tissue_fractions_for(table_path: str, subject: str, session: str) -> dict:
    """GM/WM/CSF volume fractions of one participant (and session) from a TSV with columns
    ``participant_id`` (``sub-<label>`` or ``<label>``), optional ``session_id``, ``gm``,
    ``wm``, ``csf``. Raises ``ValueError`` naming the file when it or the row is unusable."""
    if not Path(table_path).is_file():
        raise ValueError(f"{table_path}: tissue-fraction table not found")
    rows = read_tsv(table_path)
    missing = [c for c in ("participant_id",) + TISSUE_CLASSES if rows and c not in rows[0]]
    if not rows or missing:
        raise ValueError(f"{table_path}: tissue-fraction table needs columns participant_id, "
                         f"gm, wm, csf (missing {missing or 'every row'})")

    def matches(row) -> bool:
        same_subject = row["participant_id"].removeprefix("sub-") == subject
        row_session = row.get("session_id", "").removeprefix("ses-")
        return same_subject and (not row_session or row_session == session)

    found = [r for r in rows if matches(r)]
    if not found:
        raise ValueError(f"{table_path}: no row for participant {subject!r}"
                         + (f" session {session!r}" if session else ""))
    try:
        values = {c: to_float(found[0][c]) for c in TISSUE_CLASSES}
    except ValueError as exc:
        raise ValueError(f"{table_path}: participant {subject!r}: {exc}") from None
    if not all(np.isfinite(v) and v >= 0 for v in values.values()) or sum(values.values()) <= 0:
        raise ValueError(f"{table_path}: participant {subject!r} has unusable fractions {values}")
    return values


CONCENTRATION_MIN_MM = 1.0
"""Smallest plausible water-scaled concentration (mM) of the largest main metabolite
(``CONCENTRATION_CHECKED``) at the lowest b: in brain the largest of them (tNAA, tCr or Glx)
lies at 5-15 mM. Far below is a scaling fault the fit cannot see (a water reference 1e6 x the
data's scale gave tNAA 9e-6 mM on the demo, with every QC flag as before)."""


def implausible_concentrations(rows: list[dict]) -> str:
    """A warning naming the main metabolites (``qc.summary.CONCENTRATION_CHECKED``) whose
    concentration at the lowest b exceeds the QC warning limit of ``concentration_max_mm``
    (50 mM: brain tNAA, tCr, tCho, Ins and Glx lie at 1-15 mM, phantoms at tens of mM), or
    whose largest lies below :data:`CONCENTRATION_MIN_MM`, with the likely causes; '' when
    neither. Far above is a scaling fault: a water reference that is not unsuppressed water, or
    pre-summed transients (a series stored as the sum of 256 averages against a water reference
    summed over 8 read 32 x too high: tNAA 340 mM); far below, a water reference stored at
    another scale than the data (another export or receiver gain) or summed over more
    transients."""
    limit = THRESHOLDS["concentration_max_mm"].warn
    high = [f"{r['metabolite']} {finite_number(r.get('concentration_mm')):.4g} mM"
            for r in lowest_b_rows(rows, CONCENTRATION_CHECKED)
            if (finite_number(r.get("concentration_mm")) or 0.0) > limit]
    largest = lowest_b_max(rows, "concentration_mm", CONCENTRATION_CHECKED)
    if high:
        found = f"{', '.join(high)} (brain metabolites lie at 1-15 mM; more than {limit:g} mM"
    elif largest is not None and largest < CONCENTRATION_MIN_MM:
        found = (f"the largest of {', '.join(CONCENTRATION_CHECKED)} is {largest:.4g} mM "
                 f"(in brain 5-15 mM; less than {CONCENTRATION_MIN_MM:g} mM")
    else:
        return ""
    return (f"implausible water-scaled concentrations at the lowest b: {found} points to the "
            "scaling): check that the water reference is the unsuppressed water scan of this "
            "acquisition, stored at the data's scale (same export and receiver gain), that "
            "metabolite and water transients are both averages (not sums: "
            "NumberOfTransients), and the [quantification] water settings")


def quantification_warnings(scaling: dict, cf_mhz: float) -> list[str]:
    """What a user should know about the water-scaling inputs (shown in the report)."""
    notes = []
    field_t = field_strength_t(cf_mhz)
    tabulated = min(WATER_RELAXATION_BY_FIELD, key=lambda f: abs(f - field_t))
    off_table = abs(field_t - tabulated) > FIELD_MATCH_T
    if (not scaling["effective_water_concentration_mm"] and not scaling["water_t2_s"]
            and off_table):
        notes.append(f"water scaling at {field_t:.1f} T uses the {tabulated:g} T water T2/T1 "
                     "literature defaults (the nearest tabulated field); set [quantification] "
                     "water_t2_s and water_t1_s for this field")
    elif not scaling["effective_water_concentration_mm"] and off_table:
        given = {key: scaling.get(key) or {} for key in ("water_t2_s", "water_t1_s")}
        filled = [f"{key} {', '.join(t for t in ('gm', 'wm', 'csf') if t not in values)}"
                  for key, values in given.items() if set(values) < {"gm", "wm", "csf"}]
        if filled:
            notes.append(f"water scaling at {field_t:.1f} T takes {'; '.join(filled)} from the "
                         f"{tabulated:g} T literature defaults (the nearest tabulated field): "
                         "set them in [quantification] for this field")
    if not scaling["metabolite_t2_s"]:
        notes.append("concentrations are not corrected for metabolite T2 (set [quantification] "
                     "metabolite_t2_s)")
    return notes


def quantify_rows(rows: list[dict], opts: dict, water_fid, water_dwell_s: float, basis,
                  metadata: dict, cf_mhz: float, subject: str, session: str,
                  water_metadata: dict | None = None) -> tuple[list[dict], dict]:
    """``_amplitudes.tsv`` rows with water-scaled concentration columns when a water
    reference FID (lowest b, averaged; None when there is none) exists and
    ``[quantification] water_scaling`` is on; and a report of the inputs used, or of why
    nothing was scaled. ``opts`` is the ``[quantification]`` table; ``metadata`` the
    metabolite data's, ``water_metadata`` the water reference's (its own echo and repetition
    times set its relaxation; a note from preprocessing that its scale is not the data's
    skips the concentrations)."""
    if not opts.get("water_scaling", True):
        return rows, {"water_scaling": "off ([quantification] water_scaling = false)"}
    if water_fid is None:
        return rows, {"water_scaling": "no water reference"}
    water_metadata = water_metadata or {}
    try:
        if water_metadata.get(WATER_SCALE_NOTE_KEY):
            raise ValueError(water_metadata[WATER_SCALE_NOTE_KEY])
        return _water_scaled(rows, opts, water_fid, water_dwell_s, basis, metadata, cf_mhz,
                             subject, session, water_metadata)
    except ValueError as exc:
        reason = f"water-scaled concentrations skipped: {exc}"
        return rows, {"water_scaling": reason, "flags": [reason]}


def water_timing_s(metadata: dict, water_metadata: dict) -> dict:
    """The echo and repetition times (s) of the water reference for its relaxation: its own
    (``EchoTime``, ``RepetitionTime`` of its sidecar/header), each one it does not state
    taken from the metabolite data, with where each came from. A short-TE or long-TR water
    reference relaxes differently from the metabolite acquisition: at 3 T, TE 30 against
    80 ms with TR 10 against 3 s changes the tissue water signal by about 1.9 x."""
    out = {}
    for key, name in (("EchoTime", "water_echo_time_s"),
                      ("RepetitionTime", "water_repetition_time_s")):
        own = finite_number(water_metadata.get(key))
        out[name] = own if own is not None else finite_number(metadata.get(key))
        out[name.replace("_s", "_source")] = ("water reference" if own is not None
                                              else "metabolite data (the water states none)")
    return out


def _water_scaled(rows, opts, water_fid, water_dwell_s, basis, metadata, cf_mhz, subject,
                  session, water_metadata):
    fractions, source = dict(opts.get("tissue_fractions") or DEFAULT_TISSUE_FRACTIONS), "config"
    if opts.get("tissue_fractions_file"):
        fractions = tissue_fractions_for(opts["tissue_fractions_file"], subject, session)
        source = opts["tissue_fractions_file"]
    elif not opts.get("tissue_fractions"):
        source = "default (no segmentation): 60 % GM, 40 % WM"
    water_signal = water_amplitude(water_fid, water_dwell_s)
    scale = basis_proton_scale(basis.names, basis.fids)
    timing = water_timing_s(metadata, water_metadata)
    scaling = dict(
        echo_time_s=float(metadata.get("EchoTime") or 0.0),
        repetition_time_s=finite_number(metadata.get("RepetitionTime")),
        water_echo_time_s=timing["water_echo_time_s"],
        water_repetition_time_s=timing["water_repetition_time_s"],
        metabolite_t2_s=opts.get("metabolite_t2_s") or None,
        metabolite_t1_s=opts.get("metabolite_t1_s") or None,
        tissue_fractions=fractions,
        effective_water_concentration_mm=opts.get("water_concentration_mm") or None,
        water_t2_s=opts.get("water_t2_s") or None, water_t1_s=opts.get("water_t1_s") or None,
        csf_corrected=bool(opts.get("csf_corrected", True)),
        field_t=field_strength_t(cf_mhz))
    report = {"water_scaling": "done", "water_signal": water_signal, "basis_scale": scale,
              "tissue_fractions_source": source, **scaling, **timing,
              "flags": quantification_warnings(scaling, cf_mhz) + relaxation_table_notes(
                  rows, scaling["metabolite_t2_s"], scaling["metabolite_t1_s"])}
    if water_metadata.get(WATER_T2_KEY):  # reported, never used: see io.echo_series
        report["water_t2_from_echo_series"] = water_metadata[WATER_T2_KEY]
    rows = concentration_columns(rows, water_signal, scale, **scaling)
    implausible = implausible_concentrations(rows)
    if implausible:
        report["flags"].append(implausible)
    return rows, report
