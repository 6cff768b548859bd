"""The preprocessing steps of one acquisition, each one function returning its result and
its flags: the workflow's nodes call exactly these, and :func:`preprocess_acquisition`
composes them in memory (pipeline/preprocess/pipeline.py).

Order: zero-filling trimmed (not a consensus step: it concerns the data, not their processing),
then the consensus order: coil combination -> eddy-current correction with the condition-matched
water reference, relative to the lowest-b one (before alignment, so that the eddy currents'
apparent frequency shift is not taken for drift) -> alignment -> outlier rejection, then
re-alignment without the outliers in the templates -> averaging -> residual water removal ->
MM motion check. Arrays are (n_conditions, n_transients, n_points) unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..acquisition import STATED_RECEIVER_KEY, Acquisition, condition_order
from ..io.nifti_mrs import duplicated_transients
from ..spectra import MIN_ACQUIRED_POINTS, acquired_points, water_points_kept
from .align import (WATER_WINDOW_PPM, Alignment, align_condition_means, align_conditions,
                    unresolved_drift_flags)
from .average import acquired, acquired_mean
from .coils import coil_orientation, combine_coils, dead_coils, without_partial_transients
from .eddy import eddy_current_correct
from .motion import mm_amplitude_check
from .axis_scale import check_axis_scale
from .orientation import apply_mirror_policy
from .outliers import detect_outliers
from .water_pairing import (WATER_ORIENTATION_MARGIN, select_water_reference,
                            single_water_flags, water_orientation_score)


def condition_text(acq: Acquisition, c: int) -> str:
    """How flags name condition ``c``: index, b-value and direction."""
    return (f"condition {c} (b={acq.b_values_s_mm2[c]:g} s/mm^2, direction "
            f"{acq.direction_labels()[c]})")


def condition_texts(acq: Acquisition) -> list[str]:
    return [condition_text(acq, c) for c in range(acq.n_conditions)]


def lowest_b_fid(acq: Acquisition) -> np.ndarray:
    """The lowest-b condition averaged over its acquired transients (:func:`acquired_mean`)
    and coils (a water reference's signal for scaling and its linewidth)."""
    return acquired_mean(acq.fids[int(np.argmin(acq.b_values_s_mm2))]).mean(axis=0)


# --- zero-filled input ----------------------------------------------------------------------

@dataclass
class ZeroFillStep:
    acq: Acquisition  # metabolite data on their acquired points
    water: Acquisition | None  # water reference (cut to the same points when on their grid)
    report: dict  # what was cut: the data's points given and acquired, the water's given and kept
    flags: list = field(default_factory=list)


def _cut(acq: Acquisition, keep: int, acquired: int, label: str) -> tuple[Acquisition, str]:
    """``acq`` (``acquired`` points of it acquired) on its first ``keep`` points, and the flag
    that says so ("" when nothing was cut; its ``NumberOfSpectralPoints`` follows): its
    zero-filling, or (a water reference acquired longer than the data) acquired points."""
    if acq.n_points <= keep:
        return acq, ""
    name = acq.source or label
    if acquired <= keep:
        flag = (f"zero-filled input: {name}: the last {acq.n_points - keep} of {acq.n_points} "
                f"points are 0 in every FID (not acquired); processed on the first {keep}")
    else:
        flag = (f"water reference cut: {name}: from {acq.n_points} to the {keep} points the "
                "metabolite data were acquired with")
    metadata = dict(acq.metadata)
    if "NumberOfSpectralPoints" in metadata:
        metadata["NumberOfSpectralPoints"] = keep
    return acq.with_fids(acq.fids[..., :keep], metadata=metadata), flag


def without_copies(acq: Acquisition | None) -> Acquisition | None:
    """``acq`` with its transients that are bit for bit earlier ones of their condition set to
    0, so every later step counts them as not acquired (:func:`empty_transients`): a copy is
    not a measurement, and its twin would sit in its leave-one-out alignment template
    (``nifti_mrs.duplicated_transients``; the reader warns, naming the conditions)."""
    if acq is None:
        return None
    copies = duplicated_transients(acq.fids)
    if not copies.any():
        return acq
    fids = acq.fids.copy()
    fids[copies] = 0
    return acq.with_fids(fids)


def zero_fill_step(acq: Acquisition, water: Acquisition | None) -> ZeroFillStep:
    """Cut the metabolite data's zero-filling, and the water reference to the same points when
    it came on the data's grid or holds only zeros beyond them
    (``spectra.water_points_kept``). Zero-filled points hold no noise: they correlate
    neighbouring spectral points, so a fit that counts those points as independent reports
    CRLBs too small (ISMRM challenge spectrum 1 zero-filled 2 x: 23-31 % smaller) and a strong
    tail inflates the noise estimate (``pipeline.qc.metrics.noise_sd``). A water reference's
    own zero-filling within those points stays, with a flag: its SNR, eddy-current phase and
    amplitude come from its acquired points (``eddy``, ``fitting.quantification``). Fewer
    than ``MIN_ACQUIRED_POINTS`` non-zero points: ValueError naming the file."""
    keep = acquired_points(acq.fids)
    if keep < min(MIN_ACQUIRED_POINTS, acq.n_points):
        raise ValueError(f"{acq.source or 'metabolite data'}: only the first {keep} of "
                         f"{acq.n_points} points are non-zero; the data are truncated or empty")
    trimmed, flag = _cut(acq, keep, keep, "metabolite data")
    flags = [flag] if flag else []
    trimmed_water = water
    if water is not None:
        water_acquired = acquired_points(water.fids)
        kept = water_points_kept(acq.n_points, keep, water.n_points, water_acquired)
        trimmed_water, flag = _cut(water, kept, water_acquired, "water reference")
        flags += [flag] if flag else []
        if water_acquired < trimmed_water.n_points:
            flags.append(f"zero-filled water reference: {water.source or 'water reference'}: "
                         f"acquired on {water_acquired} of its {trimmed_water.n_points} points; "
                         "its SNR, eddy-current phase and amplitude come from those")
    report = {}
    if trimmed.n_points < acq.n_points:
        report.update(n_points_given=acq.n_points, n_points_acquired=keep)
    if water is not None and trimmed_water.n_points < water.n_points:
        report.update(water_n_points_given=water.n_points,
                      water_n_points_kept=trimmed_water.n_points)
    return ZeroFillStep(trimmed, trimmed_water, report, flags)


def zero_fill_details(report: dict) -> str:
    """The cut of a ``ZeroFillStep.report`` as the start of a derivative's processing details
    ('' when nothing was cut)."""
    parts = []
    if "n_points_acquired" in report:
        parts.append(f"zero-filling cut: {report['n_points_acquired']} acquired points of "
                     f"{report['n_points_given']}")
    if "water_n_points_kept" in report:
        parts.append(f"water reference cut: {report['water_n_points_kept']} of "
                     f"{report['water_n_points_given']} points")
    return "".join(f"{part}; " for part in parts)


# --- coil combination ------------------------------------------------------------------------

@dataclass
class CoilStep:
    fids: np.ndarray  # combined metabolite transients (n_cond, n_trans, n_points)
    water_fids: np.ndarray | None  # water reference with the same weights (or as given)
    report: dict  # n_coils, weights_from, weights (rows: coil, weight, phase)
    details: str  # ProcessingApplied text
    flags: list = field(default_factory=list)
    water_scale_note: str = ""  # why the water's signal scale is not the data's ('' if it is)


def combined_water_scale_note(acq: Acquisition, water: Acquisition | None) -> str:
    """Why a water reference cannot scale the combined metabolite data ('' when it can): a
    water combined by the scanner (one channel) against uncombined metabolite coils. The app
    combines the coils with its own weights, whose scale has nothing to do with the scanner's
    combination, so water-scaled concentrations would be off by an arbitrary factor (3.3 x
    in the probe that found it); the water still serves the eddy-current correction."""
    if water is None or acq.n_coils == 1 or water.n_coils != 1:
        return ""
    return (f"{water.source or 'the water reference'} is one (scanner-combined) channel, "
            f"{acq.source or 'the metabolite data'} {acq.n_coils} uncombined coils: the "
            "water's signal scale is not that of the app's coil combination, so no "
            "water-scaled concentrations (give the water reference with its coils, or both "
            "combined)")


def empty_water_flags(water: Acquisition | None) -> list[str]:
    """A flag for a water reference with exactly-zero transients, left out of its averages
    (:func:`acquired_mean`)."""
    if water is None or not (empty := ~acquired(water.fids, 2)).any():
        return []
    return [f"coils: {water.source or 'water reference'}: {int(empty.sum())} of "
            f"{empty.size} transients exactly zero (not acquired): left out of its averages"]


def _coil_list(mask: np.ndarray) -> str:
    return ", ".join(str(int(k)) for k in np.flatnonzero(mask))


def water_coil_orientation_step(acq: Acquisition, water: Acquisition, policy: str = "fix"
                                ) -> tuple[Acquisition, list, dict]:
    """(water, flags, record) after checking that a water reference with the data's coils has
    their sign convention (:func:`.coils.coil_orientation`): one stored as the complex
    conjugate gives matched-filter weights with the coil phases reversed, which combine the
    data's coils out of phase (Siemens 7 T STEAM, wref_raw conjugated: tNAA 6.73 instead of
    13.68 mM, Glx/tCr 2.34 instead of 1.58, exit 0 and no warning, before). Under ``policy``
    ``fix`` such a water is conjugated to the data's convention with a flag (the coils cannot
    tell which file is mirrored: the data's own orientation is judged next from their
    singlets, :func:`mirror_step`), ``refuse`` raises a ``ValueError`` naming both files,
    ``off`` skips the check. Coil profiles not measured above noise are not judged (flag and
    record), never flipped: on pure noise the verdict was "conjugated" in 39 % of trials."""
    if policy == "off" or acq.n_coils < 2:
        return water, [], {}
    verdict = coil_orientation(acq.fids, water.fids)
    record = verdict.to_dict()
    water_label, data_label = (water.source or "water reference",
                               acq.source or "the metabolite data")
    if not verdict.judged:
        record["verdict"] = verdict.reason(data_label, water_label)
        return water, [f"coils: orientation of {water_label} against {data_label} "
                       f"{record['verdict']}: the water is used as stored"], record
    if not verdict.mirrored:
        return water, [], dict(record, verdict="as stored")
    message = (f"{water_label}: coil phases run opposite to those of {data_label} (one of the "
               f"two files is frequency-mirrored, stored as the complex conjugate of the other; "
               f"coil-profile coherence {verdict.coherence_as_stored:.3f} as stored, "
               f"{verdict.coherence_conjugated:.3f} conjugated)")
    if policy == "refuse":
        raise ValueError(f"{message}; convert both with the same sign convention or set the "
                         "mirror policy to 'fix'")
    return (water.with_fids(np.conj(water.fids)),
            [f"coils: {message}; the water reference was conjugated to the data's convention "
             "for the coil combination (which file was mirrored is judged next, from the "
             "data's singlets)"], dict(record, verdict="conjugated"))


def combine_step(acq: Acquisition, water: Acquisition | None, whiten: bool = True,
                 mirror_policy: str = "fix") -> CoilStep:
    """Noise-whitened matched-filter combination; weights from the lowest-b water reference
    when it has the same coils (and applied to it), else from the data; such a water is first
    checked for the data's sign convention (:func:`water_coil_orientation_step` under
    ``mirror_policy``). A one-coil water
    reference is used as it is (eddy currents; its scale is flagged as not the data's:
    :func:`combined_water_scale_note`); any other coil count is refused. Coils exactly zero in
    the data (:func:`dead_coils`) are left out with a flag (their zero noise made the
    whitening singular: "LinAlgError: Singular matrix"); a coil zero in the water reference
    only makes the weights come from the data, and the water's scale is then not the data's
    (no concentrations)."""
    matching = water is not None and water.n_coils == acq.n_coils
    if water is not None and not matching and water.n_coils != 1:
        raise ValueError(f"{water.source or 'water reference'}: {water.n_coils} coils, but "
                         f"{acq.source or 'the metabolite data'} has {acq.n_coils}")
    note = combined_water_scale_note(acq, water)
    report = {"n_coils": acq.n_coils}
    if acq.n_coils == 1:
        report["weights_from"] = "none"
        return CoilStep(acq.fids[:, :, 0, :], None if water is None else water.fids[:, :, 0, :],
                        report, "single receive channel (already combined): nothing to combine",
                        empty_water_flags(water))
    data_fids, partial_flags = without_partial_transients(acq.fids,
                                                          acq.source or "metabolite data")
    if matching:
        water_input, water_partial = without_partial_transients(
            water.fids, water.source or "water reference")
        water, partial_flags = water.with_fids(water_input), partial_flags + water_partial
    acq = acq.with_fids(data_fids) if partial_flags else acq
    if matching:
        water, orientation_flags, report["water_coil_orientation"] = water_coil_orientation_step(
            acq, water, mirror_policy)
        partial_flags = partial_flags + orientation_flags
    water_flags = empty_water_flags(water) + partial_flags
    dead = dead_coils(acq.fids)
    if dead.all():
        raise ValueError(f"{acq.source or 'metabolite data'}: all {acq.n_coils} coils are "
                         "exactly zero: no signal was recorded")
    flags = [f"coils: {acq.source or 'metabolite data'}: coil(s) {_coil_list(dead)} of "
             f"{acq.n_coils} exactly zero (nothing recorded): left out of the combination"
             ] if dead.any() else []
    live = ~dead
    flags += water_flags
    water_dead = dead_coils(water.fids) & live if matching else np.zeros_like(dead)
    if water_dead.any():
        note = (f"{water.source or 'the water reference'}: coil(s) {_coil_list(water_dead)} "
                f"exactly zero where {acq.source or 'the metabolite data'} has signal: the "
                "weights come from the data, and the combined water's scale is not the "
                "data's, so no water-scaled concentrations")
    reference = (water.fids[int(np.argmin(water.b_values_s_mm2))][:, live]
                 if matching and not water_dead.any() else None)
    result = combine_coils(acq.fids[:, :, live], reference, whiten=whiten)
    weights = np.zeros(acq.n_coils, dtype=result.weights.dtype)
    weights[live] = result.weights
    water_fids = None
    if water is not None:
        water_fids = (np.einsum("k,...kn->...n", weights.conj(), water.fids)
                      if matching else water.fids[:, :, 0, :])
    source = "water" if reference is not None else "data"
    report.update(weights_from=source, weights=full_weights_table(result, live))
    if dead.any():
        report["dead_coils"] = np.flatnonzero(dead).tolist()
    used = f"{int(live.sum())} of {acq.n_coils}" if dead.any() else f"{acq.n_coils}"
    details = (f"{used} coils, noise-whitened matched-filter weights from "
               f"{'the b=0 water reference' if source == 'water' else 'the data'}"
               if live.sum() > 1 else f"1 of {acq.n_coils} coils with data: phased, not combined")
    if note:
        report["water_scale"] = note
    return CoilStep(result.combined, water_fids, report, details,
                    flags + ([f"coils: {note}"] if note else []), note)


def full_weights_table(result, live: np.ndarray) -> list[dict]:
    """``CoilCombination.weights_table`` rows numbered by the acquisition's coils, with a zero
    weight for each coil left out."""
    rows = iter(result.weights_table())
    return [dict(next(rows), coil=k) if live[k] else {"coil": k, "weight": 0.0, "phase_deg": 0.0}
            for k in range(live.size)]


# --- mirrored (complex-conjugated) data ------------------------------------------------------

@dataclass
class MirrorStep:
    fids: np.ndarray  # metabolite transients, conjugated when found mirrored (policy "fix")
    water_fids: np.ndarray | None  # water reference, conjugated with them
    orientation: dict  # OrientationVerdict.to_dict() ({} when the check is off)
    flags: list = field(default_factory=list)


AXIS_POLICIES = ("refuse", "warn", "off")


def axis_scale_flags(fids: np.ndarray, acq: Acquisition, policy: str = "refuse"
                     ) -> tuple[list, dict]:
    """(flags, verdict) of the frequency-axis check (:func:`.axis_scale.check_axis_scale`)
    under ``policy``: ``refuse`` raises a ``ValueError`` naming the file when the header's
    spectral width or frequency is judged wrong, ``warn`` returns a flag, ``off`` skips."""
    if policy not in AXIS_POLICIES:
        raise ValueError(f"axis_check must be one of {AXIS_POLICIES}, got {policy!r}")
    if policy == "off":
        return [], {}
    verdict = check_axis_scale(fids, acq.dwell_s, acq.cf_mhz, acq.ref_ppm,
                               acq.metadata.get(STATED_RECEIVER_KEY))
    if not verdict.wrong:
        return [], verdict.to_dict()
    message = f"{acq.source or 'metabolite data'}: {verdict.message(acq.dwell_s, acq.cf_mhz)}"
    if policy == "refuse":
        raise ValueError(f"{message}; correct SpectralWidth/dwell time or "
                         "SpectrometerFrequency, or set [preprocessing] axis_check = \"warn\" "
                         "to process the data as they are")
    return [f"frequency axis: {message}"], verdict.to_dict()


def mirror_step(fids: np.ndarray, water_fids: np.ndarray | None, acq: Acquisition,
                policy: str = "fix", water: Acquisition | None = None,
                axis_policy: str = "refuse", coil_orientation: dict | None = None) -> MirrorStep:
    """First the frequency axis (:func:`axis_scale_flags` under ``axis_policy``: a wrong
    spectral width or frequency would also mislead the orientation test). Then detect
    frequency-mirrored data from the singlet pattern (``orientation``) and apply
    ``policy``: ``fix`` conjugates metabolite and water FIDs with a flag, ``refuse`` raises a
    ``ValueError`` naming the file, ``off`` skips the check. Then the water reference's own
    orientation against the (corrected) metabolite data (:func:`water_orientation_score`; it
    needs ``water`` for its b-values): a water reference stored with the opposite sign is
    conjugated with a flag (``fix``) or refused, as its eddy-current correction would double
    the eddy currents' phase instead of removing it. ``coil_orientation``: the coil step's
    record (:func:`water_coil_orientation_step`); when it conjugated the water and the data
    are the mirrored ones, the flag says so, naming both files."""
    axis_flags, axis = axis_scale_flags(fids, acq, axis_policy)
    if axis.get("wrong"):  # policy "warn": on a wrong axis the orientation test misleads too
        return MirrorStep(fids, water_fids, {"axis_scale": axis}, axis_flags + [
            "orientation: not checked, as the frequency axis looks wrong (above): the data are "
            "fitted as stored"])
    try:
        fids, water_fids, verdict = apply_mirror_policy(fids, acq.dwell_s, acq.cf_mhz,
                                                        acq.ref_ppm, policy=policy,
                                                        water_fids=water_fids)
    except ValueError as exc:
        raise ValueError(f"{acq.source or 'metabolite data'}: {exc}") from exc
    if verdict is None:
        return MirrorStep(fids, water_fids, {"axis_scale": axis} if axis else {}, axis_flags)
    flags = axis_flags + ([f"orientation: {acq.source or 'metabolite data'}: {verdict.warning}"
                           + coil_conjugation_note(verdict.verdict, water, coil_orientation)]
                          if verdict.warning else [])
    orientation = verdict.to_dict()
    if axis:
        orientation["axis_scale"] = axis
    if water_fids is not None and water is not None:
        score = water_orientation_score(fids, water_fids, water.b_values_s_mm2, acq,
                                        water.directions)
        orientation["water_orientation_score"] = None if score is None else round(score, 4)
        if score is None:
            orientation["water_orientation"] = ("not judged: no diffusion-weighted condition "
                                                "(its eddy currents tell the water's sign)")
        elif score < -WATER_ORIENTATION_MARGIN:
            message = (f"{water.source or 'water reference'}: frequency-mirrored against "
                       f"{acq.source or 'the metabolite data'} (the complex conjugate of the "
                       f"water makes the eddy-current-corrected singlets taller: mean log "
                       f"height ratio {score:+.3f})")
            if policy == "refuse":
                raise ValueError(f"{message}; convert it with the same sign convention as the "
                                 "metabolite data or set the mirror policy to 'fix'")
            water_fids = np.conj(water_fids)
            flags.append(f"orientation: {message}; the water reference was conjugated")
    return MirrorStep(fids, water_fids, orientation, flags)


def coil_conjugation_note(verdict: str, water: Acquisition | None,
                          coil_orientation: dict | None) -> str:
    """What the singlets say of the coil step's conjugation of the water ('' if it made none):
    with the data found mirrored, the water as stored was the one in the right convention,
    and conjugating the data with it undoes the coil step's conjugation."""
    if verdict != "mirrored" or (coil_orientation or {}).get("verdict") != "conjugated":
        return ""
    return (f"; so {(water.source if water else '') or 'the water reference'} was stored the "
            "right way round and is used as stored (the coil step's conjugation of it, "
            "against these data, is undone with theirs)")


def eddy_step(fids: np.ndarray, water_fids: np.ndarray, water_b, acq: Acquisition,
              min_water_snr: float, water_directions=None) -> tuple[np.ndarray, list]:
    """Klose correction of every condition *before* alignment, relative to the lowest-b
    water; returns (corrected, flags).

    The eddy-current phase is removed in full, so alignment estimates the true drifts instead
    of taking the eddy currents' apparent frequency shift (several Hz at high b) for drift;
    the lowest-b water reference cancels the water's own offset. The correction is the same
    for every transient of a condition, so it commutes with the drift correction. Each
    condition takes the water condition of its b-value and direction
    (``water_directions``: one row per water condition, or None), wherever it is stored.
    """
    flags: list[str] = single_water_flags(water_b, acq.b_values_s_mm2)
    labels = condition_texts(acq)
    lowest = acquired_mean(water_fids[int(np.argmin(water_b))])
    out = np.empty_like(fids)
    for c in range(fids.shape[0]):
        reference = select_water_reference(water_fids, water_b, c, acq.b_values_s_mm2[c],
                                           min_water_snr, flags, labels[c], water_directions,
                                           acq.directions[c])
        out[c] = eddy_current_correct(fids[c], reference, acq.dwell_s,
                                      reference_fid=lowest).corrected
    return out, flags


# --- alignment and outliers ------------------------------------------------------------------

@dataclass
class AlignStep:
    fids: np.ndarray  # corrected transients
    freq_hz: np.ndarray  # (n_cond, n_trans) drift found in the input
    phase_deg: np.ndarray
    details: str


def align_step(fids: np.ndarray, acq: Acquisition, options, weights=None) -> AlignStep:
    """Frequency/phase registration per condition (``options``: PreprocessOptions); zero
    shifts when alignment is off. ``weights`` (n_cond, n_trans) leave transients out of the
    templates (re-alignment without the outliers); transients that are exactly zero
    (:func:`empty_transients`) are always left out (20 zero transients of 24 made the
    templates pull the other 4 by 46 Hz)."""
    if not options.align:
        zeros = np.zeros(fids.shape[:2])
        return AlignStep(fids, zeros, zeros.copy(),
                         "disabled by configuration (shifts reported as 0)")
    acquired = acquired_transients(fids, acq).astype(float)
    weights = acquired if weights is None else np.asarray(weights, dtype=float) * acquired
    window = WATER_WINDOW_PPM if options.align_reference == "water" else options.align_ppm_range
    results = align_conditions(fids, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                               ppm_range=window, n_iterations=options.align_iterations,
                               max_shift_hz=options.align_max_shift_hz, weights=weights,
                               n_model_iterations=options.align_model_iterations,
                               n_model_components=options.align_model_components,
                               align_means=options.align_means, directions=acq.directions)
    details = (f"spectral registration per condition ({options.align_reference}, "
               f"{list(options.align_ppm_range)} ppm), leave-one-out templates; "
               f"condition means aligned: {options.align_means}")
    return AlignStep(np.stack([r.corrected for r in results]),
                     np.stack([r.freq_hz for r in results]),
                     np.stack([r.phase_deg for r in results]), details)


@dataclass
class OutlierStep:
    rejected: np.ndarray  # (n_cond, n_trans) bool
    amplitude_z: np.ndarray
    misfit_z: np.ndarray
    flagged_conditions: list
    flags: list


def empty_transients(fids: np.ndarray) -> np.ndarray:
    """(n_conditions, n_transients) mask of transients exactly zero at every point: never a
    measurement (noise is never exactly 0) but an average the scan did not acquire, which a
    scanner or an export filled with zeros. Combination, eddy-current correction and
    alignment multiply FIDs, so such a transient is still exactly zero here."""
    return ~acquired(fids, 2)


def acquired_transients(fids: np.ndarray, acq: Acquisition) -> np.ndarray:
    """(n_conditions, n_transients) mask of transients that are not exactly zero
    (:func:`empty_transients`); ``ValueError`` naming the file when a condition has none."""
    kept = acquired(fids, 2)
    if not kept.any(axis=1).all():
        c = int(np.flatnonzero(~kept.any(axis=1))[0])
        raise ValueError(f"{acq.source or 'metabolite data'}: {condition_text(acq, c)}: all "
                         f"{fids.shape[1]} transients are exactly zero (not acquired): remove "
                         "the condition or convert the acquired data")
    return kept


def outlier_step(fids: np.ndarray, acq: Acquisition, options) -> OutlierStep:
    """Outlier transients per condition (aligned input); a condition is flagged when more
    than ``outlier_flag_fraction`` of its transients go. Nothing is rejected when off, except
    transients that are exactly zero (:func:`empty_transients`), which are always left out
    (with a flag) and kept out of the outlier statistics: averaged in, 12 zero transients of
    24 took 40 % off a condition's signal with no flag (in-vivo 7 T set). A condition with
    nothing but zeros raises ``ValueError`` naming the file."""
    shape = fids.shape[:2]
    empty = ~acquired_transients(fids, acq)
    step = OutlierStep(empty.copy(), np.zeros(shape), np.zeros(shape), [], [])
    for c in np.flatnonzero(empty.any(axis=1)):
        step.flags.append(f"empty transients: {condition_text(acq, c)}: "
                          f"{int(empty[c].sum())} of {shape[1]} transients are exactly zero "
                          "(not acquired) and left out of the average")
    if options.align:  # drift left beyond the alignment's reach
        step.flags += unresolved_drift_flags(fids, acq, ~empty, condition_texts(acq), options)
    if not options.outliers:
        return step
    for c in range(acq.n_conditions):
        kept = ~empty[c]
        result = detect_outliers(fids[c][kept], acq.dwell_s, acq.cf_mhz,
                                 options.outlier_ppm_range, options.outlier_threshold,
                                 options.outlier_flag_fraction)
        step.rejected[c, kept] = result.rejected
        step.amplitude_z[c, kept], step.misfit_z[c, kept] = result.amplitude_z, result.misfit_z
        if result.flagged:
            step.flagged_conditions.append(c)
            step.flags.append(f"outliers: {condition_text(acq, c)}: "
                              f"{100 * result.fraction_rejected:.0f} % of transients "
                              f"rejected (> {100 * options.outlier_flag_fraction:.0f} %)")
    return step


def realign_step(unaligned: np.ndarray, rejected: np.ndarray, acq: Acquisition,
                 options, first: AlignStep | None = None) -> AlignStep | None:
    """Alignment again with the rejected transients left out of the templates; None when
    nothing was rejected (exactly-zero transients aside) or alignment is off (the first
    alignment stands). With ``first`` (the alignment the outliers were found on), only the
    conditions that lost a transient take the new alignment (:func:`keep_unchanged`)."""
    lost = (rejected & ~empty_transients(unaligned)).any(axis=1)
    if not (lost.any() and options.align):
        return None  # nothing rejected but exactly-zero transients, already left out
    weights = (~rejected).astype(float)
    again = align_step(unaligned, acq, options, weights=weights)
    if first is None:
        return again
    return keep_unchanged(first, again, lost, acq, options,
                          weights * acquired_transients(unaligned, acq))


def keep_unchanged(first: AlignStep, again: AlignStep, lost: np.ndarray, acq: Acquisition,
                   options, weights: np.ndarray) -> AlignStep:
    """``again`` for the conditions that ``lost`` a transient, ``first`` for the others (no
    rejected transient entered their templates), the new ones' means registered on the
    singlets to the reference condition's mean as in :func:`align_conditions`. Re-aligning
    every condition let one transient rejected at b = 3956 s/mm^2 move every other average
    through the shared template model (in-vivo 7 T set: the b = 0 average by 8-11 % in
    1.8-3.4 ppm, its per-transient shifts by 0.7 Hz SD)."""
    n = len(lost)
    parts = [Alignment(again.freq_hz[c] if lost[c] else first.freq_hz[c],
                       again.phase_deg[c] if lost[c] else first.phase_deg[c],
                       np.ones(first.freq_hz.shape[1]),
                       again.fids[c] if lost[c] else first.fids[c], None) for c in range(n)]
    reference = int(condition_order(acq.b_values_s_mm2, acq.directions)[0])
    if options.align_means and n > 1:
        moved = np.ones(n, bool) if lost[reference] else lost.copy()
        moved[reference] = False
        registered = align_condition_means(parts, acq.dwell_s, acq.cf_mhz, reference, weights)
        parts = [registered[c] if moved[c] else parts[c] for c in range(n)]
    return AlignStep(np.stack([p.corrected for p in parts]), np.stack([p.freq_hz for p in parts]),
                     np.stack([p.phase_deg for p in parts]),
                     again.details + "; conditions that lost no transient keep their first "
                     "alignment")


def transient_rows(acq: Acquisition, freq_hz, phase_deg, rejected=None,
                   acquired=None) -> list[dict]:
    """``_transients.tsv`` rows: condition labels, transient, shifts (and ``rejected``,
    ``acquired``: 0 for an exactly-zero transient, :func:`empty_transients`)."""
    directions = acq.direction_labels()
    rows = []
    for c in range(freq_hz.shape[0]):
        for t in range(freq_hz.shape[1]):
            row = {"condition": c, "b_value": float(acq.b_values_s_mm2[c]),
                   "direction": directions[c], "transient": t,
                   "freq_shift_hz": float(freq_hz[c, t]), "phase_shift_deg": float(phase_deg[c, t])}
            if rejected is not None:
                row["rejected"] = int(rejected[c, t])
            if acquired is not None:
                row["acquired"] = int(acquired[c, t])
            rows.append(row)
    return rows


# --- motion ----------------------------------------------------------------------------------

def motion_step(averaged: np.ndarray, acq: Acquisition, options) -> dict:
    """MM (0.9 ppm) integral per condition of the averaged spectra (n_cond, n_points) against
    its expected slow decay; drops beyond the noise flag motion (needs > 1 condition)."""
    if not options.motion_check or averaged.shape[0] < 2:
        return {"flags": []}
    check = mm_amplitude_check(averaged, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                               reference_index=int(np.argmin(acq.b_values_s_mm2)),
                               n_sigma=options.motion_n_sigma, ppm_range=options.motion_ppm_range)
    flags = [f"motion: {condition_text(acq, c)}: MM (0.9 ppm) integral at "
             f"{100 * check.ratio[c]:.0f} % of the lowest b (z = {check.z[c]:.1f})"
             for c in np.flatnonzero(check.flagged)]
    return {"ratio": check.ratio.tolist(), "z": check.z.tolist(),
            "flagged": np.asarray(check.flagged).tolist(), "flags": flags}
