"""Which pulse sequence (and timings) an acquisition used, from its metadata.

Vendors name sequences in their own ways, and spec2nii copies what it finds into the
NIfTI-MRS header: ``SequenceName`` (Siemens ``svs_st``/``*svs_se``/``eja_svs_slaser``, GE
``PROBE-P``/``PROBE-S``/``oslaser``, Philips DICOM pulse sequence names), ``ProtocolName``
(Siemens protocol, Philips SPAR ``scan_id`` such as ``"PRESS PAR 35"``, GE series
description) and, for Siemens twix, ``PulseSequenceFile`` (``%CustomerSeq%\\uzay_steam_gui``).
A BIDS ``PulseSequenceType`` (or a configured name) wins over all of them.

The answer is one of the sequences the basis simulation knows (:data:`SEQUENCES`). Siemens'
product ``svs_se`` is PRESS (two refocusing pulses), not a single spin echo.
"""

from __future__ import annotations

import re

SEQUENCES = ("fid", "se", "press", "steam", "slaser")
"""Sequences ``pipeline.simulate.basis_simulation.simulate_basis`` simulates."""

METADATA_KEYS = ("PulseSequenceType", "SequenceName", "ProtocolName", "PulseSequenceFile",
                 "SeriesDescription", "PulseSequenceDetails")
"""Metadata keys searched for a sequence name, most authoritative first."""

EDITED = re.compile(r"mega|hermes|herc|special|j-?press|edit|mpress|hbcd|isis")
"""Spectral-editing or other sequences the simulation does not know (refused, not guessed)."""

_PATTERNS = (  # (sequence, regex on a lower-case name with separators as spaces), first wins
    ("slaser", r"s ?laser|semi ?laser|\blaser\b|oslaser"),
    ("steam", r"steam|stimulated ?echo|\bstim\b|\bsvs st\b|\bst\b|probe s\b"),
    ("press", r"press|\bsvs se\b|probe p\b|\bprobe\b"),
    ("se", r"spin ?echo|\bse\b"),
    ("fid", r"\bfid\b|pulse ?acquire|\bsvs fid\b"),
)

DEFAULT_STEAM_MIXING_TIME_S = 0.010
"""STEAM mixing time used when none is stated: the short TM product STEAM protocols typically
run (Siemens svs_st, Philips STEAM ~10 ms). It only changes the J-evolution of coupled spins
during TM (none for singlets); a warning names the key to set."""

MIXING_TIME_SETTING = ("MixingTime (seconds) in the BIDS sidecar (dmrs-bids-convert: "
                       "[sidecar] MixingTime = ...) or [basis] timings = {mixing_time_s = ...}")


def _normalised(text) -> str:
    """Lower-case text with every run of non-alphanumerics as one space (``*svs_st`` -> ``svs st``)."""
    return " ".join(re.split(r"[^a-z0-9]+", str(text).lower())).strip()


def sequence_in_text(text) -> str | None:
    """The simulated sequence a vendor name or protocol text stands for, or None."""
    name = _normalised(text)
    if not name or name in ("none", "n a", "unknown"):
        return None
    if name in SEQUENCES:
        return name
    if name in ("stimulatedecho", "semilaser", "spinecho", "pulseacquire"):
        return {"stimulatedecho": "steam", "semilaser": "slaser", "spinecho": "se",
                "pulseacquire": "fid"}[name]
    if EDITED.search(name):
        return None
    for sequence, pattern in _PATTERNS:
        if re.search(pattern, name):
            return sequence
    return None


def identify_sequence(metadata: dict, configured: str = "") -> tuple[str, str]:
    """(sequence, where it was found) from ``configured`` then :data:`METADATA_KEYS`.

    Raises ValueError naming the metadata it looked at and the setting to give.
    """
    candidates = [("configuration [basis] sequence", configured)] + \
        [(key, metadata.get(key)) for key in METADATA_KEYS]
    for where, text in candidates:
        if text in (None, ""):
            continue
        found = sequence_in_text(text)
        if found is not None:
            return found, f"{where}={text!r}"
        if where.startswith("configuration"):
            raise ValueError(f"[basis] sequence {configured!r} is not one of {SEQUENCES}")
        if EDITED.search(_normalised(text)):
            raise ValueError(f"{where}={text!r} names an edited or other sequence the basis "
                             f"simulation does not know ({', '.join(SEQUENCES)}); pass a basis "
                             "with --basis")
    seen = ", ".join(f"{k}={metadata.get(k)!r}" for k in METADATA_KEYS if metadata.get(k))
    seen = seen or "no sequence keys"
    raise ValueError(f"cannot tell the pulse sequence from the metadata ({seen}); set "
                     "[basis] sequence in the config (one of "
                     f"{', '.join(SEQUENCES)}), PulseSequenceType in the sidecar, or pass --basis")


def sequence_from_metadata(metadata: dict, configured: str = "") -> str:
    """The simulated sequence (see :func:`identify_sequence`)."""
    return identify_sequence(metadata, configured)[0]


def stated_sequence(metadata: dict) -> str | None:
    """The sequence the metadata name (:func:`identify_sequence`), or None when they name
    none the simulation knows."""
    try:
        return identify_sequence(metadata)[0]
    except ValueError:
        return None


FAMILIES = ("press", "steam", "slaser", "special")
"""Sequence families a basis file and the data are compared by: localisation schemes whose
J-evolution differs at one echo time (``fid``/``se`` labels are too loose to compare)."""


def sequence_family(text) -> str | None:
    """The :data:`FAMILIES` member a sequence name stands for (SPECIAL, including LCModel's
    truncated ``'Speci'`` and dSPECIAL, before the others), or None."""
    name = _normalised(text)
    if re.search(r"speci(al)?\b|dspecial", name):
        return "special"
    found = sequence_in_text(name)
    return found if found in FAMILIES else None


def stated_family(metadata: dict, configured: str = "") -> tuple[str | None, str]:
    """(family, where it was found) from ``configured`` then :data:`METADATA_KEYS`, the first
    that names one of :data:`FAMILIES`; (None, '') when none does."""
    candidates = [("[basis] sequence", configured)] + \
        [(key, metadata.get(key)) for key in METADATA_KEYS]
    for where, text in candidates:
        family = sequence_family(text) if text not in (None, "") else None
        if family:
            return family, f"{where}={text!r}"
    return None, ""


def means_no_mixing_time(value, sequence: str | None) -> bool:
    """True when a stated MixingTime (s) of 0 means "no mixing time": vendor headers (spec2nii
    on a Siemens PRESS .rda) write 0 for sequences that have none. Only STEAM has a TM, so 0
    stays an error when the metadata name STEAM."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0 \
        and sequence != "steam"


def _positive(value) -> float | None:
    """A positive number from a scalar or one-element list, else None."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def basis_timings(sequence: str, metadata: dict, configured: dict | None = None
                  ) -> tuple[dict, list[str]]:
    """Keyword arguments of ``simulate_basis`` for the timings, and warnings.

    ``configured``: the ``[basis] timings`` table (``echo_time_s``, ``mixing_time_s``,
    ``te1_s``, ``te2_s``, ``refocus_times_s``), which wins over the metadata. EchoTime missing
    everywhere is an error naming it (0 is allowed for "fid"); a missing STEAM mixing time
    takes :data:`DEFAULT_STEAM_MIXING_TIME_S` with a warning naming the keys to set.
    """
    timings = dict(configured or {})
    notes = []
    echo_s = timings.pop("echo_time_s", None)
    if echo_s is None:
        echo_s = metadata.get("EchoTime")
        if isinstance(echo_s, (list, tuple)):
            echo_s = echo_s[0] if echo_s else None
    if echo_s is None:
        if sequence != "fid":
            raise ValueError(f"sequence {sequence!r}: the echo time is unknown; set EchoTime "
                             "(seconds) in the BIDS sidecar or [basis] timings = "
                             "{echo_time_s = ...}")
        echo_s = 0.0
    kwargs = {"echo_time_s": float(echo_s)}
    mixing_s = timings.pop("mixing_time_s", None)
    if sequence == "steam":
        mixing_s = _positive(mixing_s) or _positive(metadata.get("MixingTime"))
        if mixing_s is None:
            mixing_s = DEFAULT_STEAM_MIXING_TIME_S
            notes.append(f"STEAM mixing time not stated; simulating the basis with TM = "
                         f"{mixing_s * 1e3:g} ms. Set {MIXING_TIME_SETTING}")
        kwargs["mixing_time_s"] = mixing_s
    elif mixing_s is not None:
        raise ValueError(f"[basis] timings mixing_time_s is only meaningful for 'steam', "
                         f"not {sequence!r}")
    kwargs.update(timings)
    return kwargs, notes



PRESS_BANDWIDTH_FIELD_T = 4.0
"""Above this field a PRESS basis with the default refocusing bandwidth is warned about: the
default (1100 Hz) was measured against 3 T PRESS bases, and high-field (preclinical) PRESS
uses far wider pulses."""


def press_bandwidth_note(bandwidth_hz: float, cf_mhz: float) -> str:
    """A warning when a simulated PRESS basis at a field above :data:`PRESS_BANDWIDTH_FIELD_T`
    uses refocusing pulses of ``bandwidth_hz`` (the chemical-shift displacement of coupled
    spins depends on it): at 14.1 T with 4 kHz pulses, a 1100 Hz basis gave Glu/Tau/GPC
    0.94/0.86/1.15 of truth against 1.02/0.93/1.04 with the pulses' own bandwidth. '' below
    that field or for ideal pulses (0)."""
    from .units import field_strength_t

    field_t = field_strength_t(cf_mhz)
    if field_t <= PRESS_BANDWIDTH_FIELD_T or bandwidth_hz <= 0:
        return ""
    return (f"the PRESS basis is simulated with {bandwidth_hz:g} Hz refocusing pulses ([basis] "
            f"press_refocus_bandwidth_hz; the default suits 3 T) at {field_t:.1f} T, where "
            "sequences use wider pulses and J-coupled multiplets (Glu, Gln, Tau, GSH) depend on "
            "the bandwidth: set it to your refocusing pulses' bandwidth")
