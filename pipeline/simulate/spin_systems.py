"""Load the metabolite spin systems (shifts, J-couplings, equivalent-proton groups) kept as data.

The values live in ``spin_systems.json`` beside this module, with the literature source noted
per metabolite (Govindaraju et al. 2000; Govind et al. 2015 updates). A metabolite is a list of
fragments that are simulated independently and summed; a fragment is a small, possibly strongly
coupled, system of spin groups, each group holding magnetically equivalent protons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SPIN_SYSTEMS_PATH = Path(__file__).with_name("spin_systems.json")


@dataclass(frozen=True)
class SpinGroup:
    """Magnetically equivalent protons sharing one chemical shift and the same couplings."""

    label: str
    ppm: float
    protons: int


@dataclass(frozen=True)
class Heteronucleus:
    """A non-1H nucleus (e.g. 31P, 14N) weakly coupled to some protons of a fragment."""

    nucleus: str
    spin: float
    j_hz: tuple[tuple[int, float], ...]  # (proton group index, J in Hz)


@dataclass(frozen=True)
class Fragment:
    """Spin groups simulated together; couplings to other fragments are neglected."""

    groups: tuple[SpinGroup, ...]
    j_hz: tuple[tuple[int, int, float], ...] = ()
    hetero: tuple[Heteronucleus, ...] = ()
    weight: float = 1.0

    @property
    def n_protons(self) -> float:
        return self.weight * sum(g.protons for g in self.groups)


@dataclass(frozen=True)
class SpinSystem:
    """One metabolite: its fragments and the literature source of the values."""

    name: str
    full_name: str
    source: str
    fragments: tuple[Fragment, ...] = field(default_factory=tuple)

    @property
    def n_protons(self) -> float:
        return sum(f.n_protons for f in self.fragments)

    def as_dict(self) -> dict:
        """Plain-data form (used for cache keys and provenance)."""
        return {
            "name": self.name,
            "source": self.source,
            "fragments": [
                {"groups": [[g.label, g.ppm, g.protons] for g in f.groups],
                 "j_hz": [list(j) for j in f.j_hz],
                 "hetero": [[h.nucleus, h.spin, [list(c) for c in h.j_hz]] for h in f.hetero],
                 "weight": f.weight}
                for f in self.fragments],
        }


def _fail(path, name, problem):
    raise ValueError(f"{path}: metabolite {name!r}: {problem}")


def _parse_fragment(raw: dict, path, name) -> Fragment:
    try:
        groups = tuple(SpinGroup(str(s.get("label", "")), float(s["ppm"]), int(s["protons"]))
                       for s in raw["spins"])
    except (KeyError, TypeError, ValueError) as exc:
        _fail(path, name, f"bad spin entry ({exc!r}); each spin needs 'ppm' and 'protons'")
    if not groups or any(g.protons < 1 for g in groups):
        _fail(path, name, "a fragment needs at least one spin with protons >= 1")
    n = len(groups)
    couplings = []
    for entry in raw.get("j_hz", []):
        i, j, value = int(entry[0]), int(entry[1]), float(entry[2])
        if not (0 <= i < n and 0 <= j < n) or i == j:
            _fail(path, name, f"coupling {entry} refers to spins outside 0..{n - 1}")
        couplings.append((i, j, value))
    hetero = []
    for h in raw.get("hetero", []):
        pairs = tuple((int(i), float(v)) for i, v in h["j_hz"])
        if any(not 0 <= i < n for i, _ in pairs):
            _fail(path, name, f"heteronuclear coupling {h} refers to spins outside 0..{n - 1}")
        spin = float(h["spin"])
        if spin <= 0 or (2 * spin) % 1:
            _fail(path, name, f"heteronucleus spin {spin} is not a positive half-integer")
        hetero.append(Heteronucleus(str(h["nucleus"]), spin, pairs))
    weight = float(raw.get("weight", 1.0))
    if weight <= 0:
        _fail(path, name, f"fragment weight {weight} must be positive")
    return Fragment(groups, tuple(couplings), tuple(hetero), weight)


def parse_spin_systems(data: dict, path="<spin systems>") -> dict[str, SpinSystem]:
    """Spin systems from the plain-data form of ``spin_systems.json``."""
    if "metabolites" not in data:
        raise ValueError(f"{path}: no 'metabolites' table")
    systems = {}
    for name, raw in data["metabolites"].items():
        if "source" not in raw or not raw["source"]:
            _fail(path, name, "no literature 'source'")
        fragments = tuple(_parse_fragment(f, path, name) for f in raw.get("fragments", []))
        if not fragments:
            _fail(path, name, "no fragments")
        systems[name] = SpinSystem(name, raw.get("full_name", name), raw["source"], fragments)
    return systems


@lru_cache(maxsize=None)
def _load_default() -> dict[str, SpinSystem]:
    with open(SPIN_SYSTEMS_PATH, encoding="utf-8") as fh:
        return parse_spin_systems(json.load(fh), SPIN_SYSTEMS_PATH)


def load_spin_systems(path: str | Path | None = None) -> dict[str, SpinSystem]:
    """All spin systems of a JSON file (default: the packaged ``spin_systems.json``)."""
    if path is None:
        return dict(_load_default())
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read spin systems ({exc})") from None
    return parse_spin_systems(data, path)


def get_spin_system(name: str, systems: dict[str, SpinSystem] | None = None) -> SpinSystem:
    """The spin system called ``name`` (case-insensitive match as a fallback)."""
    systems = _load_default() if systems is None else systems
    if name in systems:
        return systems[name]
    lowered = {k.lower(): k for k in systems}
    if name.lower() in lowered:
        return systems[lowered[name.lower()]]
    raise ValueError(f"{SPIN_SYSTEMS_PATH.name}: no spin system named {name!r}; "
                     f"known: {sorted(systems)}")
