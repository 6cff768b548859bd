"""Eddy-current correction (Klose 1990) with a water reference acquired with the same gradients.

Eddy currents add a time-varying phase ``phi_ec(t)`` to every signal of that acquisition; the
water reference shows it as the deviation of its phase from a straight line. Dividing the
metabolite FID by ``exp(i phi_ec(t))`` removes the lineshape distortion. Here ``phi_ec`` is the
water phase minus its weighted straight-line fit (constant + frequency), so the correction does
not move or rephase the spectrum (alignment owns that); ``keep_linear=False`` gives the classic
full-phase Klose correction instead.

With ``reference_fid`` (the water reference with the fewest diffusion gradients, lowest b), the
phase removed is the water phase minus the *reference's* straight line: the eddy-current phase
of this condition in full, its straight-line part included, less only the straight line of the
lowest-b water (the water's own frequency offset and phase, common to all conditions). This is the correction to use *before* alignment: the
straight-line part of ``b * sum_i a_i exp(-t/tau_i)`` looks like a frequency shift of several Hz
at high b, which a per-condition or cross-condition alignment would otherwise take for drift.

A noisy (high-b) water reference is first denoised by a low-rank model (HLSVD, a few damped
exponentials) so that noise does not enter the metabolite phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.preprocess.water import hlsvd
from pipeline.spectra import acquired_points, time_axis_s

MIN_WATER_SNR = 20.0
"""Below this time-domain SNR (first point / noise SD) a water reference is too noisy."""

RELIABLE_PHASE_SNR = 10.0
"""With a lowest-b reference, the water phase is used up to the first point where |water| falls
below this many noise SDs (phase noise ~0.07 rad there); beyond, the eddy-current phase, which
decays to a constant, is held at its last reliable value instead of following the random phase
of noise (the water's own frequency continues in the reference's straight line)."""


@dataclass
class EddyCorrection:
    corrected: np.ndarray
    phase_rad: np.ndarray  # the phase removed, (n_points,)
    water_snr: float
    denoised: bool


def water_snr(water_fid: np.ndarray, tail_fraction: float = 0.25) -> float:
    """|first point| over the noise SD estimated from the last ``tail_fraction`` of the FID's
    acquired points (a zero-filled FID's zeros hold no noise: ``spectra.acquired_points``)."""
    water_fid = np.asarray(water_fid)
    water_fid = water_fid[..., :acquired_points(water_fid)]
    n_tail = max(int(water_fid.size * tail_fraction), 8)
    tail = water_fid[-n_tail:]
    noise = np.std(np.concatenate([tail.real, tail.imag]))
    return float(np.abs(water_fid[0]) / noise) if noise > 0 else np.inf


def denoise_water(water_fid: np.ndarray, dwell_s: float, n_components: int = 6,
                  n_points_used: int | None = None) -> np.ndarray:
    """Low-rank (HLSVD) model of a water FID: the signal without most of its noise."""
    water_fid = np.asarray(water_fid, dtype=complex)
    n_used = n_points_used or min(water_fid.size, 256)
    return hlsvd(water_fid, dwell_s, n_components, n_used).fid(water_fid.size, dwell_s)


def eddy_phase_rad(water_fid: np.ndarray, dwell_s: float, keep_linear: bool = True,
                   weight_floor: float = 0.05) -> np.ndarray:
    """Eddy-current phase of a water FID (unwrapped; straight line removed if ``keep_linear``).

    The straight-line fit is weighted by |water|^2 over points above ``weight_floor`` of the
    maximum, where the phase is reliable.
    """
    water_fid = np.asarray(water_fid)
    phase = np.unwrap(np.angle(water_fid))
    if not keep_linear:
        return phase
    t = time_axis_s(water_fid.size, dwell_s)
    magnitude = np.abs(water_fid)
    weights = np.where(magnitude > weight_floor * magnitude.max(), magnitude ** 2, 0.0)
    design = np.stack([np.ones_like(t), t], axis=1) * np.sqrt(weights)[:, None]
    coefficients, *_ = np.linalg.lstsq(design, phase * np.sqrt(weights), rcond=None)
    return phase - (coefficients[0] + coefficients[1] * t)


def eddy_current_correct(fids: np.ndarray, water_fid: np.ndarray, dwell_s: float,
                         keep_linear: bool = True, denoise: bool | None = None,
                         n_components: int = 6,
                         reference_fid: np.ndarray | None = None) -> EddyCorrection:
    """Remove the eddy-current phase of ``water_fid`` from ``fids`` (..., n_points).

    ``denoise=None`` denoises only when the water SNR is below :data:`MIN_WATER_SNR` * 10 (each
    of ``water_fid`` and ``reference_fid`` on its own SNR). With ``reference_fid`` the phase is
    that of ``water_fid`` minus the straight line of ``reference_fid``'s phase (``keep_linear``
    then has no effect; see the module docstring). A zero-filled water reference (trailing
    zeros, ``spectra.acquired_points``) gives its SNR from its acquired points, and the phase
    is held from the last of them (beyond, its phase would be that of 0).
    """
    water_fid = np.asarray(water_fid, dtype=complex)
    fids = np.asarray(fids)
    if water_fid.shape[-1] != fids.shape[-1]:
        raise ValueError(f"water reference has {water_fid.shape[-1]} points, "
                         f"data {fids.shape[-1]}")
    snr = water_snr(water_fid)
    denoised = snr < 10 * MIN_WATER_SNR if denoise is None else denoise
    reference = denoise_water(water_fid, dwell_s, n_components) if denoised else water_fid
    if reference_fid is None:
        phase = eddy_phase_rad(reference, dwell_s, keep_linear)
    else:
        baseline = _checked_reference(reference_fid, water_fid.shape[-1])
        if (water_snr(baseline) < 10 * MIN_WATER_SNR) if denoise is None else denoise:
            baseline = denoise_water(baseline, dwell_s, n_components)
        baseline_line = (np.unwrap(np.angle(baseline))
                         - eddy_phase_rad(baseline, dwell_s, keep_linear=True))
        phase = hold_beyond_noise(np.unwrap(np.angle(reference)) - baseline_line,
                                  np.abs(water_fid), snr)
    acquired = acquired_points(water_fid)  # beyond, a zero-filled reference's phase is 0's
    phase = np.where(np.arange(phase.size) < acquired, phase, phase[acquired - 1])
    return EddyCorrection(fids * np.exp(-1j * phase), phase, snr, bool(denoised))


def hold_beyond_noise(phase_rad: np.ndarray, magnitude: np.ndarray, snr: float,
                      min_snr: float = RELIABLE_PHASE_SNR) -> np.ndarray:
    """``phase_rad`` held constant from the first point where ``magnitude`` (of a water FID
    with first-point SNR ``snr``) drops below ``min_snr`` noise SDs."""
    noise_sd = magnitude[0] / snr if np.isfinite(snr) and snr > 0 else 0.0
    below = np.nonzero(magnitude < min_snr * noise_sd)[0]
    if below.size == 0 or below[0] == 0:
        return phase_rad
    held = phase_rad.copy()
    held[below[0]:] = phase_rad[below[0] - 1]
    return held


def _checked_reference(reference_fid: np.ndarray, n_points: int) -> np.ndarray:
    reference_fid = np.asarray(reference_fid, dtype=complex)
    if reference_fid.shape[-1] != n_points:
        raise ValueError(f"lowest-b water reference has {reference_fid.shape[-1]} points, "
                         f"condition water reference {n_points}")
    return reference_fid


def residual_phase_rad(fid: np.ndarray, dwell_s: float, weight_floor: float = 0.05) -> float:
    """RMS (weighted by |fid|^2) of the FID phase about its best straight line, in rad.

    Zero for an undistorted singlet; eddy currents raise it. Measures ECC quality on water.
    """
    phase = eddy_phase_rad(fid, dwell_s, keep_linear=True, weight_floor=weight_floor)
    magnitude = np.abs(fid)
    weights = np.where(magnitude > weight_floor * magnitude.max(), magnitude ** 2, 0.0)
    return float(np.sqrt(np.sum(weights * phase ** 2) / np.sum(weights)))
