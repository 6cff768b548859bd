"""Frequency and phase alignment of transients by spectral registration.

Each transient ``y`` is modelled as ``a * T(t) * exp(+i(2*pi*f*t + phi))`` where ``T`` is a
template, ``a`` a free real amplitude (motion can scale a transient), and ``(f, phi)`` its drift,
in the project's drift convention (input = corrected * exp(+i(2*pi*f*t + phi))). The fit is
least squares over a ppm window of the spectrum, which keeps residual water and baseline out of
it: ``f`` by a coarse-to-fine grid search (global within ``max_shift_hz`` of the condition's
median shift, so low-SNR transients do not fall into a local minimum and slow scanner drift
across conditions is followed), ``phi`` and ``a`` in closed form at each ``f``. The misfit at
every trial shift is evaluated exactly as a discrete-time Fourier sum (see
``_registration_kernels``): one matrix product for all shifts instead of one FFT per shift.

Drift beyond ``max_shift_hz`` of that centre within a condition (a B0 ramp, a step after
motion) is first searched over +-0.4 ppm (:mod:`pipeline.preprocess.drift_search`); transients
it finds beyond reach get their own search centres. On ordinary data it takes nothing, and the
results are those of the common search alone.

Templates, in order of use (``align_conditions``): the aligned mean of the previous (lower-b)
condition for the first pass; then the condition's own leave-one-out mean of the aligned
transients, iterated (leaving the transient out removes the pull towards its current estimate
that its own noise in the template would give); then those leave-one-out means denoised by
projection onto signal poles (HLSVD) of the mean over all conditions. At high b the noise of a
plain mean template, not of the transient, dominates the error: the denoised template brings
the error close to the Cramer-Rao bound of a noise-free template.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft

from pipeline.acquisition import condition_order
from pipeline.preprocess.average import acquired
from pipeline.preprocess.drift_search import (REACH_FRACTION, WIDE_SHIFT_PPM, FarShifts,
                                              far_shifts, window_mask)
from pipeline.preprocess.water import (damped_exponential_basis, remove_residual_water,
                                       signal_poles)
from pipeline.spectra import apply_frequency_phase, ppm_axis

METABOLITE_WINDOW_PPM = (0.6, 4.2)
"""Default registration window: MM 0.9 ppm (does not diffuse) to 4.2 ppm (short of water)."""

WATER_WINDOW_PPM = (4.2, 5.1)
"""Registration window for unsuppressed water (metabolite cycling, weak suppression)."""

SINGLET_WINDOW_PPM = (1.85, 3.35)
"""NAA, Cr and Cho singlets, for aligning condition averages to each other."""

HLSVD_MAX_POINTS = 4096
"""Most FID points the template model's HLSVD reads: its Hankel matrix is (n/2, n/2), so
memory would grow with the square of the FID length (a 100 000-point FID needed 24 GB). The
poles come from the start of the FID, where the signal is; beyond 8192 points the model uses
the first 4096 (identical results up to 8192 points)."""


def hlsvd_points(n_points: int) -> int:
    """Points of an ``n_points`` FID used to find the template model's poles."""
    return min(n_points // 2, HLSVD_MAX_POINTS)


PINV_RCOND = 1e-15
"""Relative singular-value cutoff of the template projector (numpy ``pinv``'s default)."""


@dataclass
class Alignment:
    """Drift estimates of one set of transients and the corrected FIDs."""

    freq_hz: np.ndarray  # (n_transients,), input = corrected * exp(+i(2 pi f t + phi))
    phase_deg: np.ndarray  # (n_transients,)
    amplitude: np.ndarray  # (n_transients,), relative to the template
    corrected: np.ndarray  # (n_transients, n_points)
    template: np.ndarray  # FID the transients were last registered to
    wide: bool = False  # the wide search took shifts: beyond reach, own search centres


def _registration_kernels(fids: np.ndarray, template_fids: np.ndarray,
                          window_unshifted: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """Sequences whose DTFTs give the registration inner product and window energy.

    With ``Y_f`` the FFT of ``y * exp(-2i pi f t)`` and ``T`` the template's FFT, both restricted
    to the window bins ``W`` (``window_unshifted``: bool mask in plain FFT bin order):
    ``<T, Y_f> = sum_n (y g)_n exp(-2i pi f n dwell)`` with ``g = fft(conj(T) on W)``, and
    ``||Y_f||^2 = Re sum_n a_n exp(-2i pi f n dwell)`` with ``a_n = c_n h_n r_n`` (``r`` the
    autocorrelation of ``y``, ``h = fft(1 on W)``, ``c_0 = 1`` and ``c_n = 2`` for ``n > 0``,
    ``r`` being Hermitian). One matrix product then gives the exact cost at any set of shifts,
    where a direct evaluation needs one FFT per shift. Returns ``(y g, a, ||T||^2)``.
    """
    n_points = fids.shape[-1]
    templates = scipy.fft.fft(template_fids, axis=-1) * window_unshifted
    weighted = fids * scipy.fft.fft(np.conj(templates), axis=-1)
    power = np.abs(scipy.fft.fft(fids, 2 * n_points, axis=-1)) ** 2
    autocorrelation = scipy.fft.ifft(power, axis=-1)[..., :n_points]
    folding = np.full(n_points, 2.0)
    folding[0] = 1.0
    energy_terms = autocorrelation * (folding * scipy.fft.fft(window_unshifted.astype(float)))
    return weighted, energy_terms, np.sum(np.abs(templates) ** 2, axis=-1)


@functools.lru_cache(maxsize=16)
def _shift_grid(n_points: int, dwell_s: float, half_width_hz: float, step_hz: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``-half_width..+half_width`` (Hz) and their DTFT rows ``exp(-2i pi f n dwell)``.

    Cached (read-only): every registration of an acquisition uses the same grids.
    """
    offsets_hz = np.arange(-half_width_hz, half_width_hz + step_hz / 2, step_hz)
    rows = np.exp(-2j * np.pi * dwell_s * np.outer(offsets_hz, np.arange(n_points)))
    offsets_hz.setflags(write=False)
    rows.setflags(write=False)
    return offsets_hz, rows


def _ramps(freq_hz, n_points: int, dwell_s: float) -> np.ndarray:
    """Demodulation factors ``exp(-2i pi f n dwell)`` (..., n_points), one row per frequency."""
    return np.exp(-2j * np.pi * dwell_s * np.asarray(freq_hz)[..., None] * np.arange(n_points))


def _grid_costs(weighted: np.ndarray, energy_terms: np.ndarray, template_energy: np.ndarray,
                rows: np.ndarray) -> np.ndarray:
    """Misfit ``||Y_f||^2 - |<T, Y_f>|^2 / ||T||^2`` (n_shifts, n_transients) at the grid
    ``rows`` of :func:`_shift_grid`, with optimal phase and amplitude at each shift."""
    inner = rows @ weighted.T
    energy = (rows @ energy_terms.T).real
    with np.errstate(divide="ignore", invalid="ignore"):  # all-zero templates: see callers
        return energy - np.abs(inner) ** 2 / template_energy


def _parabolic_offset(cost_minus: np.ndarray, cost_0: np.ndarray,
                      cost_plus: np.ndarray) -> np.ndarray:
    """Vertex offset (in grid steps, within +/-0.5) of a parabola through three costs."""
    curvature = cost_minus - 2 * cost_0 + cost_plus
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = 0.5 * (cost_minus - cost_plus) / curvature
    return np.clip(np.where(curvature > 0, offset, 0.0), -0.5, 0.5)


def register_to_templates(fids: np.ndarray, template_fids: np.ndarray, dwell_s: float,
                          cf_mhz: float, ppm_range=METABOLITE_WINDOW_PPM,
                          max_shift_hz: float = 12.0, coarse_step_hz: float = 0.5,
                          fine_step_hz: float = 0.05, centre_hz=0.0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drift (freq_hz, phase_deg) and amplitude of each transient relative to its template.

    ``template_fids`` is one FID (n_points,) shared by all, or one per transient.
    ``ppm_range``: one (low, high) window or several. The search covers
    ``centre_hz +/- max_shift_hz`` (``centre_hz``: one centre, or one per transient) on a
    ``coarse_step_hz`` grid, then ``+/- coarse_step_hz`` about each transient's best on a
    ``fine_step_hz`` grid, then a parabolic vertex.
    """
    return _register(fids, template_fids, dwell_s, cf_mhz, ppm_range, max_shift_hz,
                     coarse_step_hz, fine_step_hz, centre_hz)[:3]


def _register(fids, template_fids, dwell_s, cf_mhz, ppm_range, max_shift_hz, coarse_step_hz,
              fine_step_hz, centre_hz) -> tuple[np.ndarray, ...]:
    """:func:`register_to_templates`, also returning each transient's misfit at its best
    fine-grid shift (window energy left after the optimal template) and the energy the
    template explains there, ``|<T, Y_f>|^2 / ||T||^2`` (both in spectrum units^2)."""
    fids = np.atleast_2d(np.asarray(fids, dtype=complex))
    n_points = fids.shape[-1]
    mask = window_mask(ppm_axis(n_points, dwell_s, cf_mhz), ppm_range)
    if mask.sum() < 4:
        raise ValueError(f"registration window {ppm_range} ppm holds fewer than 4 points")
    window_unshifted = np.fft.ifftshift(mask)
    template_fids = np.asarray(template_fids, dtype=complex)
    if template_fids.ndim > 1:
        template_fids = np.broadcast_to(template_fids, fids.shape)
    weighted, energy_terms, template_energy = _registration_kernels(fids, template_fids,
                                                                    window_unshifted)

    ramps = _ramps(centre_hz, n_points, dwell_s)
    coarse_hz, rows = _shift_grid(n_points, dwell_s, float(max_shift_hz), float(coarse_step_hz))
    cost = _grid_costs(weighted * ramps, energy_terms * ramps, template_energy, rows)
    best = centre_hz + coarse_hz[np.argmin(cost, axis=0)]

    ramps = _ramps(best, n_points, dwell_s)
    weighted = weighted * ramps
    fine_hz, rows = _shift_grid(n_points, dwell_s, float(coarse_step_hz), float(fine_step_hz))
    cost = _grid_costs(weighted, energy_terms * ramps, template_energy, rows)
    step = np.clip(np.argmin(cost, axis=0), 1, fine_hz.size - 2)
    columns = np.arange(fids.shape[0])
    offset = _parabolic_offset(cost[step - 1, columns], cost[step, columns],
                               cost[step + 1, columns])
    refinement_hz = fine_hz[step] + offset * fine_step_hz
    freq_hz = best + refinement_hz

    inner = np.sum(weighted * _ramps(refinement_hz, n_points, dwell_s), axis=-1)
    phase_deg = np.rad2deg(np.angle(inner))
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = np.abs(inner) / template_energy
    # nothing to register: an exactly-zero transient (not acquired) or an all-zero template
    # (no other transient acquired) matched every shift equally and landed on the search edge
    unmatched = ~acquired(fids) | ~(np.broadcast_to(template_energy, freq_hz.shape) > 0)
    freq_hz = np.where(unmatched, centre_hz, freq_hz)
    phase_deg = np.where(unmatched, 0.0, phase_deg)
    amplitude = np.where(unmatched, 0.0, amplitude)
    explained = np.where(unmatched, 0.0, np.abs(inner) * amplitude)
    return freq_hz, phase_deg, amplitude, cost[step, columns], explained


def leave_one_out_means(fids: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """For each transient, the (weighted) mean of all the others, shape like ``fids``."""
    n = fids.shape[0]
    if n < 2:
        return fids.copy()
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    total = np.sum(w[:, None] * fids, axis=0)
    others = total[None, :] - w[:, None] * fids
    norm = (w.sum() - w)[:, None]
    return others / np.where(norm > 0, norm, 1.0)


def pole_subspace(n_points: int, dwell_s: float, freq_hz: np.ndarray,
                  damping_hz: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n_points, rank) of the damped exponentials with the given poles.

    Growing components are damped at 0 instead. Singular values below ``PINV_RCOND`` of the
    largest are dropped, so ``U U^H`` is the projector ``basis @ pinv(basis)`` of numpy.
    """
    basis = damped_exponential_basis(n_points, dwell_s, freq_hz, np.maximum(damping_hz, 0.0))
    u, s, _ = np.linalg.svd(basis, full_matrices=False)
    return u[:, s > PINV_RCOND * s.max()]


def _project(fids: np.ndarray, subspace: np.ndarray) -> np.ndarray:
    """Least-squares projection of FIDs (..., n_points) onto an orthonormal ``subspace``."""
    return (fids @ subspace.conj()) @ subspace.T


def model_templates(corrected: np.ndarray, dwell_s: float, freq_hz: np.ndarray,
                    damping_hz: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-out means projected onto fixed signal poles (denoised templates).

    The projection (least-squares amplitudes of damped exponentials with the given poles) keeps
    the signal and drops nearly all template noise, which otherwise dominates the registration
    error of low-SNR (high-b) transients.
    """
    subspace = pole_subspace(corrected.shape[-1], dwell_s, freq_hz, damping_hz)
    return _project(leave_one_out_means(corrected, weights), subspace)


def _register_and_correct(fids, templates, dwell_s, cf_mhz, ppm_range, max_shift_hz,
                          centre_hz=0.0, wide=False):
    freq_hz, phase_deg, amplitude = register_to_templates(
        fids, templates, dwell_s, cf_mhz, ppm_range, max_shift_hz, centre_hz=centre_hz)
    corrected = apply_frequency_phase(fids, dwell_s, -freq_hz, -phase_deg)
    return Alignment(freq_hz, phase_deg, amplitude, corrected, np.asarray(templates), wide)


def search_centre_hz(freq_hz: np.ndarray, fids: np.ndarray) -> float:
    """Centre of the next shift search: the median shift of the transients of ``fids``
    (n_transients, n_points) that hold data, all of them when none does. A transient exactly
    zero (an average not acquired) registers anywhere and must not move it: 20 zero
    transients of 24 moved it, and the other 4 with it, by 46 Hz. Rejected outliers still
    count, as they always did."""
    freq_hz = np.asarray(freq_hz, dtype=float)
    kept = acquired(fids)
    return float(np.median(freq_hz[kept] if kept.any() else freq_hz))


def search_centres(alignment: Alignment, fids: np.ndarray, max_shift_hz: float):
    """Search centres of the next pass: :func:`search_centre_hz` (one number), except, once
    the wide search found drift beyond reach in the condition (``alignment.wide``), for
    transients beyond ``REACH_FRACTION * max_shift_hz`` of it: those are searched about their
    own shift. Otherwise the median alone, as before the wide search (ordinary data: results
    unchanged; a pure-noise transient is not let to wander off pass after pass)."""
    centre = search_centre_hz(alignment.freq_hz, fids)
    own = (alignment.wide & acquired(fids)
           & (np.abs(alignment.freq_hz - centre) > REACH_FRACTION * max_shift_hz))
    return np.where(own, alignment.freq_hz, centre) if own.any() else centre


def _wide_search(fids, template, dwell_s, cf_mhz, ppm_range, max_shift_hz, weights,
                 centre_hz, water_guard: bool = True) -> FarShifts | None:
    """:func:`~pipeline.preprocess.drift_search.far_shifts` with this module's registration;
    ``weights`` > 0 mark the transients that build references."""
    kept = acquired(fids) & ((np.ones(fids.shape[0]) if weights is None
                              else np.asarray(weights)) > 0)

    def register(part, part_template, ranges, centre):
        return _register(part, part_template, dwell_s, cf_mhz, ranges, max_shift_hz, 0.5, 0.05,
                         centre)
    return far_shifts(fids, dwell_s, cf_mhz, ppm_range, max_shift_hz, kept, template,
                      centre_hz, register, water_guard)


def unresolved_drift_flags(fids: np.ndarray, acq, kept: np.ndarray, labels, options
                           ) -> list[str]:
    """Flags for aligned transients (n_conditions, n_transients, n_points) of ``acq`` still
    shifted beyond the alignment's reach (``options``: its window and search range) against
    their condition's mean of ``kept`` transients, by the wide search's tests - drift wider or
    faster than it recovers: their shifts in ``_transients.tsv`` are wrong, and they smear the
    average unless rejected."""
    dwell_s, cf_mhz = acq.dwell_s, acq.cf_mhz
    ppm_range, max_shift_hz = options.align_ppm_range, options.align_max_shift_hz
    flags = []
    for c, label in enumerate(labels):
        if not kept[c].any():
            continue
        far = _wide_search(fids[c], np.mean(fids[c][kept[c]], axis=0), dwell_s, cf_mhz,
                           ppm_range, max_shift_hz, kept[c], 0.0, water_guard=False)
        if far is not None and far.taken.any():
            worst = float(np.max(np.abs(far.shift_hz[far.taken])))
            flags.append(f"drift beyond the alignment's reach: {label}: "
                         f"{int(far.taken.sum())} of {len(far.taken)} transients still match "
                         f"the condition's average far better shifted (by up to {worst:.0f} Hz "
                         f"= {worst / cf_mhz:.2f} ppm, searched +-{WIDE_SHIFT_PPM} ppm) than "
                         "where the alignment put them; their frequency shifts are wrong")
    return flags


def align_transients(fids: np.ndarray, dwell_s: float, cf_mhz: float,
                     template: np.ndarray | None = None, ppm_range=METABOLITE_WINDOW_PPM,
                     n_iterations: int = 2, max_shift_hz: float = 12.0,
                     weights: np.ndarray | None = None, n_model_iterations: int = 2,
                     n_model_components: int = 40, centre_hz: float = 0.0) -> Alignment:
    """Align the transients (n_transients, n_points) of one condition.

    First pass against ``template`` (default: the plain mean of the transients), searching
    ``centre_hz +/- max_shift_hz``, then
    ``n_iterations`` passes against leave-one-out means of the aligned transients, then
    ``n_model_iterations`` passes against those means denoised by an HLSVD model of the aligned
    mean (``n_model_components`` poles). ``weights`` (0 for rejected transients) set how much
    each transient counts in the templates.
    """
    fids = np.asarray(fids)
    if fids.ndim != 2:
        raise ValueError(f"align_transients expects (n_transients, n_points), got {fids.shape}")
    first_template = fids.mean(axis=0) if template is None else np.asarray(template)
    far = _wide_search(fids, template, dwell_s, cf_mhz, ppm_range, max_shift_hz, weights,
                       centre_hz)
    wide = far is not None and bool(far.taken.any())
    if wide:  # drift beyond reach: own centres
        first_template, centre_hz = far.template, far.centres()
    result = _register_and_correct(fids, first_template, dwell_s, cf_mhz, ppm_range,
                                   max_shift_hz, centre_hz, wide)
    if np.count_nonzero(acquired(fids)) < 3:  # too few acquired for leave-one-out
        return result
    for _ in range(n_iterations):
        result = _register_and_correct(fids, leave_one_out_means(result.corrected, weights),
                                       dwell_s, cf_mhz, ppm_range, max_shift_hz,
                                       search_centres(result, fids, max_shift_hz), wide)
    if n_model_iterations and n_model_components:
        poles = signal_poles(np.average(result.corrected, axis=0, weights=weights), dwell_s,
                             n_model_components, n_points_used=hlsvd_points(fids.shape[-1]))
        result = refine_with_model(fids, result, dwell_s, cf_mhz, poles, ppm_range,
                                   n_model_iterations, max_shift_hz, weights)
    return result


def refine_with_model(fids: np.ndarray, alignment: Alignment, dwell_s: float, cf_mhz: float,
                      poles: tuple[np.ndarray, np.ndarray], ppm_range=METABOLITE_WINDOW_PPM,
                      n_iterations: int = 2, max_shift_hz: float = 12.0,
                      weights: np.ndarray | None = None) -> Alignment:
    """Re-register against model-denoised leave-one-out templates built on fixed ``poles``."""
    subspace = pole_subspace(fids.shape[-1], dwell_s, *poles)
    return _refine_in_subspace(fids, alignment, dwell_s, cf_mhz, subspace, ppm_range,
                               n_iterations, max_shift_hz, weights)


def _refine_in_subspace(fids, alignment, dwell_s, cf_mhz, subspace, ppm_range, n_iterations,
                        max_shift_hz, weights):
    """:func:`refine_with_model` with the poles' orthonormal ``subspace`` already computed."""
    result = alignment
    for _ in range(n_iterations):
        templates = _project(leave_one_out_means(result.corrected, weights), subspace)
        result = _register_and_correct(fids, templates, dwell_s, cf_mhz, ppm_range,
                                       max_shift_hz, search_centres(result, fids, max_shift_hz),
                                       result.wide)
    return result


def align_conditions(fids: np.ndarray, dwell_s: float, cf_mhz: float, b_values_s_mm2=None,
                     ppm_range=METABOLITE_WINDOW_PPM, n_iterations: int = 2,
                     max_shift_hz: float = 12.0, weights: np.ndarray | None = None,
                     n_model_iterations: int = 2, n_model_components: int = 40,
                     align_means: bool = True, directions=None) -> list[Alignment]:
    """Align every condition of (n_conditions, n_transients, n_points), lowest b first
    (:func:`~pipeline.acquisition.condition_order`: within a shell by gradient axis, so the
    result does not depend on the order the file stores its conditions in).

    Each condition's first template is the aligned mean of the previously aligned (next lower
    b) condition, so every condition ends in one common frame and noisy high-b conditions start
    from a clean template. The signal poles for the model-denoised templates come from the
    mean over *all* conditions (same metabolites and lineshapes, only amplitudes change with b),
    so low-b SNR helps the high-b templates. With ``align_means``, the condition means are
    finally registered to the lowest-b mean on the singlets (NAA, Cr, Cho) and that shift is
    added to every transient of the condition, so the returned drifts are total corrections.
    ``weights`` is (n_conditions, n_transients) or None.
    """
    fids = np.asarray(fids)
    if fids.ndim != 3:
        raise ValueError(f"align_conditions expects (n_conditions, n_transients, n_points), "
                         f"got {fids.shape}")
    n_conditions = fids.shape[0]
    b = np.zeros(n_conditions) if b_values_s_mm2 is None else np.asarray(b_values_s_mm2)
    w_all = np.ones(fids.shape[:2]) if weights is None else np.asarray(weights, dtype=float)
    results: list[Alignment] = [None] * n_conditions  # type: ignore[list-item]
    template, centre_hz = None, 0.0
    order = condition_order(b, directions)
    for c in order:
        results[c] = align_transients(fids[c], dwell_s, cf_mhz, template, ppm_range,
                                      n_iterations, max_shift_hz, w_all[c],
                                      n_model_iterations=0, centre_hz=centre_hz)
        template = np.average(results[c].corrected, axis=0, weights=w_all[c])
        centre_hz = search_centre_hz(results[c].freq_hz, fids[c])
    if n_model_iterations and n_model_components and fids.shape[1] >= 3:
        grand_mean = np.einsum("ct,ctn->n", w_all, np.stack([r.corrected for r in results]))
        poles = signal_poles(grand_mean / w_all.sum(), dwell_s, n_model_components,
                             n_points_used=hlsvd_points(fids.shape[-1]))
        subspace = pole_subspace(fids.shape[-1], dwell_s, *poles)
        results = [_refine_in_subspace(fids[c], results[c], dwell_s, cf_mhz, subspace,
                                       ppm_range, n_model_iterations, max_shift_hz, w_all[c])
                   if np.count_nonzero(acquired(fids[c])) >= 3 else results[c]
                   for c in range(n_conditions)]
    if align_means and n_conditions > 1:
        results = align_condition_means(results, dwell_s, cf_mhz, int(order[0]), w_all)
    return results


def align_condition_means(alignments: list[Alignment], dwell_s: float, cf_mhz: float,
                          reference_index: int = 0, weights: np.ndarray | None = None,
                          ppm_range=SINGLET_WINDOW_PPM) -> list[Alignment]:
    """Add to each condition's drifts the shift that aligns its mean to the reference mean.

    Residual water is removed from the means first, on the reference mean's HLSVD poles
    (:func:`~pipeline.preprocess.water.remove_residual_water` of the stack): it diffuses fast,
    so it is large at low b and gone at high b, and the tail of its line inside the singlet
    window would otherwise pull the high-b means by Hz against the low-b reference.
    """
    means = np.stack([np.average(a.corrected, axis=0,
                                 weights=None if weights is None else weights[c])
                      for c, a in enumerate(alignments)])
    means = remove_residual_water(means, dwell_s, cf_mhz, follow_singlets=False,
                                  reference_index=reference_index)[0]
    shifts = align_averages(means, dwell_s, cf_mhz, reference_index, ppm_range)
    out = []
    for c, a in enumerate(alignments):
        corrected = apply_frequency_phase(a.corrected, dwell_s, -shifts.freq_hz[c],
                                          -shifts.phase_deg[c])
        out.append(Alignment(a.freq_hz + shifts.freq_hz[c],
                             _wrap_deg(a.phase_deg + shifts.phase_deg[c]), a.amplitude,
                             corrected, a.template))
    return out


def _wrap_deg(phase_deg: np.ndarray) -> np.ndarray:
    return (np.asarray(phase_deg) + 180.0) % 360.0 - 180.0


def align_averages(averages: np.ndarray, dwell_s: float, cf_mhz: float,
                   reference_index: int = 0, ppm_range=SINGLET_WINDOW_PPM,
                   max_shift_hz: float = 12.0) -> Alignment:
    """Align condition averages (n_conditions, n_points) to one of them on the singlets."""
    averages = np.atleast_2d(averages)
    reference = averages[reference_index]
    freq_hz, phase_deg, amplitude = register_to_templates(
        averages, reference, dwell_s, cf_mhz, ppm_range, max_shift_hz)
    freq_hz[reference_index] = 0.0
    phase_deg[reference_index] = 0.0
    corrected = apply_frequency_phase(averages, dwell_s, -freq_hz, -phase_deg)
    return Alignment(freq_hz, phase_deg, amplitude, corrected, reference)
