"""Effective b-values and b-matrices from sampled gradient and RF waveforms.

The b-matrix is ``B_ij = gamma^2 * integral k_i(t) k_j(t) dt`` from excitation to the echo, where
``k(t)`` is the dephasing wave vector of the coherence pathway that forms the echo. All gradients
(diffusion, slice selection, spoilers) enter, so every cross term is included.

Pathway rules:

* ``"se"`` (spin echo, PRESS, sLASER): each refocusing pulse negates ``k``; the echo forms where the
  last refocusing pulse mirrors the previous echo position.
* ``"steam"`` (stimulated echo): the second 90 degree pulse stores the magnetisation along z, so
  gradients during the mixing time do not change ``k`` (dephasing is frozen), but the stored
  spatial modulation still diffuses, so ``k^2`` keeps accumulating; the third pulse recalls it
  with the opposite sign. The echo forms ``t2 - t1`` after the third pulse.

Each pulse acts at its effective time. Excitation-type (90 degree) pulses -- the first pulse of
a spin echo, all three STEAM pulses -- act at the peak of ``|RF|``: their isodelay point, also for
the asymmetric (minimum-phase-like) pulses short-TE sequences use, whose peak sits near the end
(near the start for the time-reversed storing pulse). Refocusing pulses (PRESS, sLASER, spin
echo) are symmetric, adiabatic ones (hyperbolic-secant, ...) included, and refocus at their
centre, the midpoint of the pulse; the |RF| peak of a frequency-swept pulse whose RF trace is
one quadrature component can lie milliseconds away from it.

When the trace holds more pulses than the sequence needs (water suppression, outer-volume
saturation), the last ones are used when their pathway is balanced (the wave vector back to
zero at the echo); otherwise the single balanced choice, if exactly one exists; otherwise the
caller must name them (``pulse_indices``; ``[conversion] chronogram_pulse_indices`` in the app).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

GAMMA_1H_RAD_S_T = 267.5221874e6
"""Gyromagnetic ratio of 1H in rad/s/T."""

PULSES_PER_SEQUENCE = {"steam": 3, "se": 2, "press": 3, "slaser": 5}
"""RF pulses forming the echo: STEAM 3 x 90 degrees; spin echo 90-180; PRESS 90-180-180;
sLASER 90 + 2 pairs of adiabatic 180s."""

BALANCE_TOLERANCE = 0.01
"""A pathway is balanced when |k| at the echo is below this fraction of max |k|."""

MAX_PULSE_COMBINATIONS = 2000


@dataclass
class ChronogramBValue:
    """Result of a b-value computation from one waveform."""

    b_value_s_mm2: float
    b_matrix_s_mm2: np.ndarray  # (3, 3), gradient axes x, y, z of the waveform
    direction: np.ndarray  # unit vector, principal eigenvector of the b-matrix
    pulse_times_s: np.ndarray
    echo_time_s: float
    echo_position_s: float
    mixing_time_s: float | None
    residual_k_rad_m: np.ndarray  # wave vector left at the echo (0 for a balanced pathway)


def find_rf_pulses(rf: np.ndarray, dt_s: float, threshold_fraction: float = 0.01,
                   max_gap_s: float = 0.2e-3) -> list[tuple[int, int, int]]:
    """RF pulses as (first sample, last sample, peak sample) of contiguous RF activity.

    Samples above ``threshold_fraction * max|RF|`` count as active; gaps shorter than
    ``max_gap_s`` (zero crossings of sinc lobes) do not split a pulse.
    """
    magnitude = np.abs(np.asarray(rf, dtype=float))
    if magnitude.size == 0 or magnitude.max() <= 0:
        raise ValueError("RF trace is empty or zero: no pulses to find")
    active = np.nonzero(magnitude > threshold_fraction * magnitude.max())[0]
    breaks = np.nonzero(np.diff(active) * dt_s > max_gap_s)[0]
    pulses = []
    for segment in np.split(active, breaks + 1):
        peak = segment[np.argmax(magnitude[segment])]
        pulses.append((int(segment[0]), int(segment[-1]), int(peak)))
    return pulses


def pathway_signs(n_samples: int, dt_s: float, pulse_times_s, sequence: str
                  ) -> tuple[np.ndarray, float, float | None]:
    """Sign with which each gradient sample adds to ``k``, the echo position and TM.

    Returns ``(sign, echo_position_s, mixing_time_s)``; ``sign`` is 0 before excitation, during a
    STEAM mixing time and after the echo, and +/-1 elsewhere.
    """
    t = np.arange(n_samples) * dt_s
    pulses = np.asarray(pulse_times_s, dtype=float)
    sign = np.zeros(n_samples)
    if sequence == "steam":
        if pulses.size != 3:
            raise ValueError(f"STEAM needs 3 RF pulses, found {pulses.size}")
        t1, t2, t3 = pulses
        echo = t3 + (t2 - t1)
        sign[(t >= t1) & (t < t2)] = 1.0
        sign[(t >= t3) & (t < echo)] = -1.0
        mixing = t3 - t2
    elif sequence in ("se", "press", "slaser"):
        if pulses.size < 2:
            raise ValueError(f"a spin echo needs at least 2 RF pulses, found {pulses.size}")
        echo = pulses[0]
        current = 1.0
        edges = list(pulses[1:])
        for refocus in edges:
            echo = 2 * refocus - echo
        boundaries = [pulses[0], *edges, echo]
        for start, stop in zip(boundaries[:-1], boundaries[1:]):
            sign[(t >= start) & (t < stop)] = current
            current = -current
        mixing = None
    else:
        raise ValueError(f"unknown sequence {sequence!r}: expected one of "
                         f"{sorted(PULSES_PER_SEQUENCE)}")
    if echo > t[-1] + dt_s:
        raise ValueError(f"echo at {echo * 1e3:.2f} ms lies beyond the waveform "
                         f"({t[-1] * 1e3:.2f} ms)")
    return sign, float(echo), mixing


def wave_vector_rad_m(gradients_mt_m: np.ndarray, dt_s: float, sign: np.ndarray) -> np.ndarray:
    """Dephasing wave vector k(t) in rad/m, shape (n_samples, 3).

    Where ``sign`` is 0 (STEAM mixing time) gradients are ignored and k keeps its stored value.
    """
    g_t_m = np.asarray(gradients_mt_m, dtype=float) * 1e-3
    return np.cumsum(GAMMA_1H_RAD_S_T * g_t_m * sign[:, None] * dt_s, axis=0)


def b_matrix_s_mm2(gradients_mt_m: np.ndarray, dt_s: float, pulse_times_s,
                   sequence: str = "steam") -> ChronogramBValue:
    """b-matrix (s/mm^2) of a sampled waveform for the given pulse times and sequence."""
    gradients = np.asarray(gradients_mt_m, dtype=float)
    if gradients.ndim != 2 or gradients.shape[1] != 3:
        raise ValueError(f"gradients must be (n_samples, 3) in mT/m, got {gradients.shape}")
    n = gradients.shape[0]
    sign, echo_s, mixing_s = pathway_signs(n, dt_s, pulse_times_s, sequence)
    t = np.arange(n) * dt_s
    pulses = np.asarray(pulse_times_s, dtype=float)
    in_pathway = (t >= pulses[0]) & (t < echo_s)
    k = wave_vector_rad_m(gradients, dt_s, sign)
    k_in = k[in_pathway]
    b_si = np.einsum("ti,tj->ij", k_in, k_in) * dt_s  # s/m^2
    b = b_si * 1e-6
    eigenvalues, eigenvectors = np.linalg.eigh(b)
    direction = eigenvectors[:, -1]
    direction = direction * np.sign(direction[np.argmax(np.abs(direction))])
    echo_index = min(int(round(echo_s / dt_s)) - 1, n - 1)
    return ChronogramBValue(
        b_value_s_mm2=float(np.trace(b)), b_matrix_s_mm2=b, direction=direction,
        pulse_times_s=pulses, echo_time_s=float(echo_s - pulses[0] - (mixing_s or 0.0)),
        echo_position_s=echo_s, mixing_time_s=mixing_s,
        residual_k_rad_m=k[echo_index].copy())


def pulse_times_s(pulses: list[tuple[int, int, int]], dt_s: float, sequence: str) -> np.ndarray:
    """Effective time of each chosen pulse (see the module docstring): |RF| peak for the
    excitation-type pulses (all STEAM pulses, the first spin-echo pulse), midpoint for the
    refocusing pulses."""
    times = []
    for i, (first, last, peak) in enumerate(pulses):
        refocusing = sequence != "steam" and i > 0
        times.append((first + last) / 2 if refocusing else peak)
    return np.asarray(times, dtype=float) * dt_s


def _balanced(gradients_mt_m, dt_s, times_s, sequence) -> bool:
    """Whether the pathway of these pulse times ends refocused (|k| small at the echo)."""
    try:
        result = b_matrix_s_mm2(gradients_mt_m, dt_s, times_s, sequence)
    except ValueError:
        return False
    sign, _, _ = pathway_signs(len(gradients_mt_m), dt_s, times_s, sequence)
    k_max = np.max(np.linalg.norm(wave_vector_rad_m(gradients_mt_m, dt_s, sign), axis=1))
    return k_max == 0 or np.linalg.norm(result.residual_k_rad_m) <= BALANCE_TOLERANCE * k_max


def _pulse_list_text(pulses, dt_s) -> str:
    return ", ".join(f"{i}: {first * dt_s * 1e3:.2f}-{last * dt_s * 1e3:.2f} ms"
                     for i, (first, last, _) in enumerate(pulses))


def choose_pulses(gradients_mt_m: np.ndarray, pulses: list, dt_s: float, sequence: str,
                  pulse_indices=None) -> list:
    """The pulses that form the echo (see the module docstring for the automatic rule)."""
    needed = PULSES_PER_SEQUENCE.get(sequence)
    if needed is None:
        raise ValueError(f"unknown sequence {sequence!r}: expected one of "
                         f"{sorted(PULSES_PER_SEQUENCE)}")
    if pulse_indices is not None and len(pulse_indices) > 0:
        bad = [i for i in pulse_indices if not -len(pulses) <= int(i) < len(pulses)]
        if bad or len(pulse_indices) != needed:
            raise ValueError(f"pulse indices {list(pulse_indices)} do not choose {needed} of the "
                             f"{len(pulses)} RF pulses found ({_pulse_list_text(pulses, dt_s)})")
        return [pulses[int(i)] for i in pulse_indices]
    if len(pulses) == needed:
        return pulses
    hint = (f"found {len(pulses)} RF pulses ({_pulse_list_text(pulses, dt_s)}), {sequence} "
            f"needs {needed}; choose them with [conversion] chronogram_pulse_indices "
            "(0-based, in time order)")
    if len(pulses) < needed:
        raise ValueError(hint)
    last = pulses[-needed:]
    if _balanced(gradients_mt_m, dt_s, pulse_times_s(last, dt_s, sequence), sequence):
        return last
    combos = list(combinations(range(len(pulses)), needed))
    if len(combos) > MAX_PULSE_COMBINATIONS:
        raise ValueError(hint)
    good = [c for c in combos if _balanced(
        gradients_mt_m, dt_s, pulse_times_s([pulses[i] for i in c], dt_s, sequence), sequence)]
    if len(good) != 1:
        raise ValueError(f"{hint} ({len(good)} choices give a refocused echo)")
    return [pulses[i] for i in good[0]]


def b_values_from_waveform(gradients_mt_m: np.ndarray, rf: np.ndarray, dt_s: float,
                           sequence: str = "steam", pulse_indices=None) -> ChronogramBValue:
    """Find the RF pulses, choose those forming the echo, time them, compute the b-matrix.

    ``pulse_indices``: 0-based indices (time order) of the echo-forming pulses, for traces
    where the automatic choice (module docstring) cannot decide.
    """
    pulses = choose_pulses(gradients_mt_m, find_rf_pulses(rf, dt_s), dt_s, sequence,
                           pulse_indices)
    return b_matrix_s_mm2(gradients_mt_m, dt_s, pulse_times_s(pulses, dt_s, sequence), sequence)
