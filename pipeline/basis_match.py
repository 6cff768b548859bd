"""Does a basis (or a measured MM spectrum) belong to the acquisition it is fitted to?

A basis is only right for the echo time and sequence it was made for: J-coupled multiplets
(Glu, Gln, Ins, GSH) evolve with the echo (and STEAM mixing) time, and at 3 T their shapes
change visibly within 5-10 ms. A basis for another TE fits them with wrong shapes, and nothing
in the QC shows it. The checks here compare what a basis file states (LCModel ``ECHOT``/``SEQ``,
the project's JSON provenance) with the data's ``EchoTime``, ``MixingTime`` and sequence.
Times are compared in ms; metadata give seconds.
"""

from __future__ import annotations

import math

from .metabolites import METABOLITE_SUMS, SINGLET_PPM
from .sequences import sequence_family, stated_family

DEFAULT_TOLERANCE_MS = 5.0
"""Default ``[basis] echo_time_tolerance_ms``: Glu/Gln/Ins multiplets change visibly within
~5-10 ms of echo time at 3 T."""
TOLERANCE_KEY = "[basis] echo_time_tolerance_ms"
CHECK_SEQUENCE_KEY = "[basis] check_sequence"
SAME_MS = 1e-3
"""Differences below this (ms) are rounding of the same time (35.00 ms vs 0.035 s)."""

MAIN_SINGLETS = ("tNAA", "tCr", "tCho")
"""Sums whose singlets (NAA 2.01, Cr 3.03, Cho 3.19 ppm) dominate a 1H spectrum: a basis without
any member leaves that peak to the MM, lipid and baseline components."""


def seconds(value) -> float | None:
    """A non-negative finite time (s) from a scalar or one-element list, else None."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _ms_text(value_s: float | None) -> str:
    return "not stated" if value_s is None else f"{value_s * 1e3:g} ms"


def basis_acquisition(provenance: dict) -> dict:
    """Echo time (s), sequence text and STEAM mixing time (s) a basis states, None where it
    states none: the project's JSON/simulation provenance, else LCModel ``$SEQPAR``."""
    seqpar = provenance.get("lcmodel", {}).get("SEQPAR", {})
    sequence = provenance.get("sequence") or seqpar.get("SEQ")
    mixing = provenance.get("mixing_time_s", provenance.get("timings_s", {}).get(
        "mixing_time_s"))
    sequence = str(sequence).strip() if sequence is not None else ""
    return {"echo_time_s": seconds(provenance.get("echo_time_s")),
            "sequence": sequence or None, "mixing_time_s": seconds(mixing)}


def data_acquisition(metadata: dict, configured_sequence: str = "") -> dict:
    """Echo time (s), sequence family (and where it was read) and mixing time (s) of the data."""
    family, where = stated_family(metadata, configured_sequence)
    return {"echo_time_s": seconds(metadata.get("EchoTime")), "sequence": family,
            "sequence_from": where, "mixing_time_s": seconds(metadata.get("MixingTime"))}


def time_difference_ms(a_s: float | None, b_s: float | None) -> float | None:
    """|a - b| in ms, None when either is unknown, 0 for a rounding difference."""
    if a_s is None or b_s is None:
        return None
    diff = abs(a_s - b_s) * 1e3
    return 0.0 if diff < SAME_MS else diff


def _describe(label: str, source: str, facts: dict, family: str | None) -> str:
    sequence = f", {family.upper() if family else 'sequence not stated'}"
    if facts.get("mixing_time_s") is not None and family == "steam":
        sequence += f", TM {_ms_text(facts['mixing_time_s'])}"
    return f"{label} {source}: TE {_ms_text(facts['echo_time_s'])}{sequence}"


def check_basis_acquisition(basis_facts: dict, data_facts: dict, basis_source: str,
                            data_source: str, tolerance_ms: float,
                            check_sequence: bool = True) -> dict:
    """Compare a basis' stated timings and sequence with the data's.

    Returns ``{"refusals": [...], "warnings": [...], "notes": [...], "echo_time_difference_ms"}``:
    a refusal for a TE or STEAM TM differing by more than ``tolerance_ms`` or another sequence
    family (both stated; unless ``check_sequence`` is False), a warning for a smaller nonzero
    difference, a note when the TE cannot be compared.
    """
    basis_family = sequence_family(basis_facts.get("sequence") or "")
    pair = (f"{_describe('basis', basis_source, basis_facts, basis_family)}; "
            f"{_describe('data', data_source, data_facts, data_facts.get('sequence'))}")
    out = {"refusals": [], "warnings": [], "notes": [],
           "echo_time_difference_ms": time_difference_ms(basis_facts["echo_time_s"],
                                                         data_facts["echo_time_s"])}
    times = [("echo time", out["echo_time_difference_ms"])]
    if basis_family == data_facts.get("sequence") == "steam":
        times.append(("mixing time", time_difference_ms(basis_facts["mixing_time_s"],
                                                        data_facts["mixing_time_s"])))
    for what, diff in times:
        if diff is None or diff == 0:
            continue
        text = f"the basis {what} differs from the data's by {diff:g} ms ({pair})"
        if diff > tolerance_ms:
            out["refusals"].append(
                f"{text}, more than {TOLERANCE_KEY} = {tolerance_ms:g}: J-coupled multiplets "
                "(Glu, Gln, Ins, GSH) would be fitted with the shapes of another "
                f"{what}. Use a basis made for the data's {what} (or leave out --basis to "
                f"simulate one), or raise {TOLERANCE_KEY} to use this one anyway")
        else:
            out["warnings"].append(f"{text}, within {TOLERANCE_KEY} = {tolerance_ms:g}: "
                                   "used, but J-coupled multiplets may be slightly off")
    if out["echo_time_difference_ms"] is None:
        missing = "the basis states" if basis_facts["echo_time_s"] is None else "the data state"
        out["notes"].append(f"echo time not checked: {missing} none ({pair}); make sure the "
                            "basis was made for the data's echo time and sequence")
    if check_sequence and basis_family and data_facts.get("sequence") and \
            basis_family != data_facts["sequence"]:
        out["refusals"].append(
            f"the basis was made for {basis_family.upper()} (sequence "
            f"{basis_facts['sequence']!r}), the data are {data_facts['sequence'].upper()} "
            f"({data_facts['sequence_from']}) ({pair}); their J-evolution differs at any echo "
            f"time. Use a basis made for {data_facts['sequence'].upper()}, or set "
            f"{CHECK_SEQUENCE_KEY} = false if the basis file's sequence label is wrong")
    return out


def missing_main_singlets(names) -> list[str]:
    """The :data:`MAIN_SINGLETS` sums none of whose members is among ``names``."""
    present = set(names)
    return [s for s in MAIN_SINGLETS if not present.intersection(METABOLITE_SUMS[s])]


def missing_singlets_warning(names, basis_source: str) -> str:
    """A warning naming ``basis_source`` and the main singlets it has no entry for, or ''."""
    missing = missing_main_singlets(names)
    if not missing:
        return ""
    parts = [f"{s} ({'/'.join(METABOLITE_SUMS[s])}, {SINGLET_PPM[s]:g} ppm)" for s in missing]
    return (f"{basis_source}: the basis has no entry for {', '.join(parts)}: that singlet is "
            "left to the macromolecule, lipid and baseline components (e.g. MM20 takes the "
            "NAA singlet), whose amplitudes are then wrong; use a basis with these metabolites")


def mm_echo_time_warning(mm_te_s: float | None, data_te_s: float | None, mm_source: str,
                         data_source: str, tolerance_ms: float) -> str:
    """A warning naming both files and echo times when a measured MM spectrum's TE differs
    from the metabolite data's by more than ``tolerance_ms``, else ''. Its amplitude is fitted
    freely, but MM peaks have different T2s, so its shape depends on TE."""
    diff = time_difference_ms(mm_te_s, data_te_s)
    if diff is None or diff <= tolerance_ms:
        return ""
    return (f"measured MM {mm_source} (EchoTime {_ms_text(mm_te_s)}) was acquired at another "
            f"echo time than the metabolite data {data_source} (EchoTime {_ms_text(data_te_s)}), "
            f"{diff:g} ms apart (more than {TOLERANCE_KEY} = {tolerance_ms:g}): MM peaks relax "
            "with different T2s, so the fitted MM shape is that of another TE; acquire the MM "
            "spectrum at the metabolite echo time")
