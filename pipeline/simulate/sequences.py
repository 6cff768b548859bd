"""Pulse sequences as event lists of ideal instantaneous pulses, delays and coherence filters.

Events (see ``density_matrix.run_events``): ("pulse", flip_deg, phase_deg), ("delay", t_s),
("select", p). Acquisition starts at the end of the list (the echo top for echo sequences).
Pulse phases are chosen so that an uncoupled singlet gives a positive real first point:
excitation about +y, refocusing about +x, STEAM pulses +y, +y, -y.

* ``fid``: 90 - acquire (``echo_time_s``, if given, is an acquisition delay: 90 - TE - acquire).
* ``se``: 90 - TE/2 - 180 - TE/2 - acquire.
* ``press``: 90 - TE1/2 - 180 - (TE1+TE2)/2 - 180 - TE2/2 - acquire; by default
  TE1 = min(0.4 TE, 14 ms) (see :data:`PRESS_TE1_FRACTION`).
* ``steam``: 90 - TE/2 - 90 - TM - 90 - TE/2 - acquire; only the stimulated-echo pathway
  (p = -1 during the first TE/2, p = 0 during TM, p = +1 detected) is kept, as crusher gradients
  do; it carries half of the signal of a spin echo.
* ``slaser``: 90 followed by an even number of ideal 180s at given times after the excitation
  (default four, equally spaced: TE/8, 3TE/8, 5TE/8, 7TE/8), echo at TE.
"""

from __future__ import annotations

import numpy as np

SEQUENCES = ("fid", "se", "press", "steam", "slaser")
EXCITE = ("pulse", 90.0, 90.0)
REFOCUS = ("pulse", 180.0, 0.0)
_TOL_S = 1e-9


def _positive(name: str, value, where: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive time in seconds, got {value}")
    return value


def fid_events(echo_time_s: float = 0.0) -> list:
    """Pulse-acquire; a non-zero ``echo_time_s`` is an acquisition delay (free evolution)."""
    delay = float(echo_time_s)
    if not np.isfinite(delay) or delay < 0:
        raise ValueError(f"sequence 'fid': acquisition delay must be >= 0 s, got {delay}")
    return [EXCITE, ("delay", delay)] if delay else [EXCITE]


def spin_echo_events(echo_time_s: float) -> list:
    te = _positive("echo_time_s", echo_time_s, "sequence 'se'")
    return [EXCITE, ("delay", te / 2), REFOCUS, ("delay", te / 2)]


PRESS_TE1_FRACTION = 0.4
PRESS_TE1_MAX_S = 0.014
"""Default PRESS split: TE1 = min(0.4 TE, 14 ms), TE2 = TE - TE1 (vendor sequences use a short,
asymmetric first echo; no vendor header read here states it). Measured, not published:
against the Osprey GE/Philips/Siemens PRESS 35 ms bases (simulated by their authors with the
vendors' RF pulses and timings) the app's simulation matches best at TE1 = 13-15 ms (14 ms for
GE and Philips, 15 ms for Siemens), and against the ISMRM 2016 challenge PRESS 30 ms basis at
TE1 = 11-13 ms, where TE/2 was 2-3x further off (``benchmarks/bench_basis_mismatch.py``)."""


def default_press_te1_s(echo_time_s: float) -> float:
    """TE1 used when neither TE1 nor TE2 is given (see :data:`PRESS_TE1_FRACTION`)."""
    return min(PRESS_TE1_FRACTION * echo_time_s, PRESS_TE1_MAX_S)


def press_timings(echo_time_s: float, te1_s: float | None = None,
                  te2_s: float | None = None) -> tuple[float, float]:
    """(TE1, TE2) of PRESS: by default TE1 = :func:`default_press_te1_s`, TE2 = TE - TE1;
    one given implies the other = TE - it."""
    te = _positive("echo_time_s", echo_time_s, "sequence 'press'")
    if te1_s is None and te2_s is None:
        te1 = default_press_te1_s(te)
        return te1, te - te1
    te1 = te - float(te2_s) if te1_s is None else float(te1_s)
    te2 = te - te1 if te2_s is None else float(te2_s)
    _positive("te1_s", te1, "sequence 'press'")
    _positive("te2_s", te2, "sequence 'press'")
    if abs(te1 + te2 - te) > _TOL_S:
        raise ValueError(f"sequence 'press': TE1 + TE2 = {te1 + te2} s differs from TE = {te} s")
    return te1, te2


def press_events(te1_s: float, te2_s: float) -> list:
    return [EXCITE, ("delay", te1_s / 2), REFOCUS, ("delay", (te1_s + te2_s) / 2),
            REFOCUS, ("delay", te2_s / 2)]


def steam_events(echo_time_s: float, mixing_time_s: float | None) -> list:
    te = _positive("echo_time_s", echo_time_s, "sequence 'steam'")
    if mixing_time_s is None:
        raise ValueError("sequence 'steam': a mixing time (TM, seconds) is required")
    tm = float(mixing_time_s)
    if not np.isfinite(tm) or tm < 0:
        raise ValueError(f"sequence 'steam': mixing_time_s must be >= 0 s, got {tm}")
    return [EXCITE, ("delay", te / 2), ("select", -1), ("pulse", 90.0, 90.0), ("select", 0),
            ("delay", tm), ("pulse", 90.0, 270.0), ("delay", te / 2)]


def slaser_refocus_times(echo_time_s: float, refocus_times_s=None) -> list[float]:
    """Times (s after excitation) of the refocusing pulses; default 4 equally spaced over TE.

    With pulses at t_1 < ... < t_n (n even) the echo forms at 2 * sum((-1)^(n-k) t_k); it must
    equal TE.
    """
    te = _positive("echo_time_s", echo_time_s, "sequence 'slaser'")
    if refocus_times_s is None:
        return [te * (2 * k + 1) / 8 for k in range(4)]
    times = [float(t) for t in refocus_times_s]
    if len(times) < 2 or len(times) % 2 or any(b <= a for a, b in zip(times, times[1:])) \
            or times[0] <= 0 or times[-1] >= te:
        raise ValueError(f"sequence 'slaser': refocus_times_s {times} must be an even number of "
                         f"increasing times between 0 and TE = {te} s")
    echo = 2 * sum(t * (-1) ** (len(times) - 1 - k) for k, t in enumerate(times))
    if abs(echo - te) > 1e-7:
        raise ValueError(f"sequence 'slaser': refocus_times_s {times} put the echo at {echo} s, "
                         f"not at TE = {te} s")
    return times


def slaser_events(echo_time_s: float, refocus_times_s: list[float]) -> list:
    events, now = [EXCITE], 0.0
    for t in refocus_times_s:
        events += [("delay", t - now), REFOCUS]
        now = t
    events.append(("delay", echo_time_s - now))
    return events


def sequence_events(sequence: str, echo_time_s: float = 0.0,
                    mixing_time_s: float | None = None, **timings) -> tuple[list, dict]:
    """Events of ``sequence`` and the resolved timings (seconds) to record in provenance."""
    allowed = {"fid": set(), "se": set(), "press": {"te1_s", "te2_s"}, "steam": set(),
               "slaser": {"refocus_times_s"}}
    if sequence not in allowed:
        raise ValueError(f"unknown sequence {sequence!r}; choose one of {SEQUENCES}")
    extra = {k for k, v in timings.items() if v is not None} - allowed[sequence]
    if extra:
        raise ValueError(f"sequence {sequence!r} takes no timing(s) {sorted(extra)}")
    if mixing_time_s is not None and sequence != "steam":
        raise ValueError(f"sequence {sequence!r} has no mixing time (only 'steam' does)")
    if sequence == "fid":
        return fid_events(echo_time_s), {"acquisition_delay_s": float(echo_time_s)}
    if sequence == "se":
        return spin_echo_events(echo_time_s), {"echo_time_s": float(echo_time_s)}
    if sequence == "press":
        te1, te2 = press_timings(echo_time_s, timings.get("te1_s"), timings.get("te2_s"))
        return press_events(te1, te2), {"echo_time_s": float(echo_time_s), "te1_s": te1,
                                        "te2_s": te2}
    if sequence == "steam":
        return steam_events(echo_time_s, mixing_time_s), {
            "echo_time_s": float(echo_time_s), "mixing_time_s": float(mixing_time_s)}
    times = slaser_refocus_times(echo_time_s, timings.get("refocus_times_s"))
    return slaser_events(echo_time_s, times), {"echo_time_s": float(echo_time_s),
                                               "refocus_times_s": times}
