"""Simulate a metabolite basis from first principles for a given sequence, field and sampling.

``simulate_basis`` runs the density-matrix simulation (``density_matrix``) of each metabolite's
spin system (``spin_systems.json``) through the sequence's events (``sequences``) and returns a
``pipeline.basis.Basis`` in the project convention: FID[0] = number of protons for ``fid``
(1 mM scale), echo sequences start at the echo top, no line broadening unless ``linewidth_hz``.

Each metabolite's FID is cached on disk as ``<cache_dir>/<sha256 of all inputs>.npy``, written
to a temporary file in the same folder and renamed into place, so concurrent writers never
leave a partial file. The default cache is ``$XDG_CACHE_HOME/dmrs-bids/basis`` (or
``~/.cache/dmrs-bids/basis``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..basis import Basis
from ..io.files import atomic_write_bytes
from ..spectra import H1_REFERENCE_PPM
from .density_matrix import fragment_lines, lines_to_fid, merge_lines
from .localisation import press_localised_lines
from .sequences import SEQUENCES, sequence_events
from .spin_systems import SpinSystem, get_spin_system

DEFAULT_METABOLITES = ["NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "Ins", "sIns", "Glu", "Gln",
                       "GABA", "GSH", "Tau", "Lac", "Ala", "Asp", "Glc", "PE", "Asc"]
"""Metabolites of a default basis (LCModel-style names); water ("H2O"), free choline ("Cho")
and glycine ("Gly") are available on request."""

DEFAULT_REFOCUS_CENTRE_PPM = 3.0
"""Frequency (ppm) the refocusing pulses are centred on when slice selection is simulated:
mid-spectrum of the metabolites, as in the published vendor simulations (FID-A/Osprey use 3.0)."""

CACHE_FORMAT = 1  # bump when the simulation or its cache layout changes meaning


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dmrs-bids/basis``, falling back to ``~/.cache/dmrs-bids/basis``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "dmrs-bids" / "basis"


def simulate_metabolite_fid(system: SpinSystem, events: list, cf_mhz: float, dwell_s: float,
                            n_points: int, ref_ppm: float = H1_REFERENCE_PPM,
                            linewidth_hz: float = 0.0, localised: dict | None = None
                            ) -> np.ndarray:
    """FID of one metabolite after ``events`` (sum over its fragments), project convention.

    ``localised``: {"te1_s", "te2_s", "bandwidth_hz", "centre_ppm"} simulates PRESS with
    slice-selective refocusing instead of ``events`` (``localisation.press_localised_lines``).
    """
    freqs, amps = [], []
    for frag in system.fragments:
        offsets_hz = [(g.ppm - ref_ppm) * cf_mhz for g in frag.groups]
        hetero = [(h.spin, list(h.j_hz)) for h in frag.hetero]
        groups = [g.protons for g in frag.groups]
        if localised:
            f, a = press_localised_lines(
                groups, list(frag.j_hz), hetero, offsets_hz, localised["te1_s"],
                localised["te2_s"], localised["bandwidth_hz"],
                (localised["centre_ppm"] - ref_ppm) * cf_mhz, frag.weight)
        else:
            f, a = fragment_lines(groups, list(frag.j_hz), hetero, offsets_hz, events,
                                  frag.weight)
        freqs.append(f)
        amps.append(a)
    f, a = merge_lines(np.concatenate(freqs), np.concatenate(amps))
    fid = lines_to_fid(f, a, dwell_s, n_points)
    if linewidth_hz:
        fid *= np.exp(-np.pi * linewidth_hz * np.arange(n_points) * dwell_s)
    return fid


def _cache_key(system: SpinSystem, params: dict) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "system": system.as_dict(), "params": params},
                      sort_keys=True, default=float)
    return hashlib.sha256(blob.encode()).hexdigest()


IDENTITY_SETTINGS = ("sequence", "timings_s", "linewidth_hz", "refocusing")
"""The ``provenance`` entries of a simulated basis that :func:`simulation_settings_sha256`
digests; the sampling grid and receiver frequency, which follow each acquisition's data, are
left out."""


def simulation_settings_sha256(provenance: dict, names: list[str]) -> str:
    """SHA-256 of what a simulated basis is made of apart from the data's grid
    (:data:`IDENTITY_SETTINGS`): the sequence, its timings, pulses and line broadening as
    ``provenance`` records them, and the spin system of each of ``names`` (the entries kept).
    Two acquisitions' simulated bases with one digest hold the same metabolites simulated
    alike; another metabolite set or split of TE gives another digest."""
    settings = {k: v for k, v in provenance.items() if k in IDENTITY_SETTINGS}
    blob = json.dumps({"format": CACHE_FORMAT, **settings,
                       "systems": [get_spin_system(n).as_dict() for n in names]},
                      sort_keys=True, default=float)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_load(path: Path, n_points: int) -> np.ndarray | None:
    try:
        fid = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return fid if fid.shape == (n_points,) and np.iscomplexobj(fid) else None


def _cache_store(path: Path, fid: np.ndarray) -> None:
    """Write atomically (:func:`pipeline.io.files.atomic_write_bytes`); a read-only or full
    cache must never stop a simulation."""
    buffer = io.BytesIO()
    np.save(buffer, fid, allow_pickle=False)
    try:
        atomic_write_bytes(path, buffer.getvalue(), fsync=False)
    except OSError:
        pass


def _validate_grid(cf_mhz, dwell_s, n_points, ref_ppm, linewidth_hz) -> None:
    """Refuse sampling and broadening values that would give a meaningless basis."""
    if not np.isfinite(cf_mhz) or cf_mhz <= 0:
        raise ValueError(f"simulate_basis: cf_mhz must be positive, got {cf_mhz}")
    if not np.isfinite(dwell_s) or dwell_s <= 0:
        raise ValueError(f"simulate_basis: dwell_s must be positive, got {dwell_s}")
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"simulate_basis: n_points must be an integer >= 2, got {n_points}")
    if not np.isfinite(ref_ppm):
        raise ValueError(f"simulate_basis: ref_ppm must be a finite shift in ppm, got {ref_ppm}")
    if not np.isfinite(linewidth_hz) or linewidth_hz < 0:
        raise ValueError("simulate_basis: linewidth_hz must be >= 0 Hz (a negative width "
                         f"would make the FID grow), got {linewidth_hz}")


def _provenance(sequence: str, params: dict, systems: list[SpinSystem]) -> dict:
    """How a simulated basis was made: method, all parameters, version, spin-system sources."""
    method = "density-matrix simulation of the full J-coupled Hamiltonian, ideal instantaneous " \
             "pulses"
    if "refocusing" in params:
        method += (", slice-selective refocusing (rectangular profiles, chemical-shift "
                   "displacement of each spin, crusher pathway selected)")
    if sequence == "steam":
        method += ", stimulated-echo pathway selected by coherence order"
    return {
        "generator": "dmrs-bids pipeline.simulate.basis_simulation.simulate_basis",
        "software_version": __version__,
        "method": method,
        **params,
        "echo_time_s": float(params["timings_s"].get("echo_time_s", 0.0)),
        "scale": "1 mM; FID[0] = number of protons for 'fid' (steam keeps its 1/2 factor)",
        "spin_system_sources": {s.name: s.source for s in systems},
    }


def simulate_basis(sequence: str, cf_mhz: float, dwell_s: float, n_points: int,
                   echo_time_s: float = 0.0, mixing_time_s: float | None = None,
                   metabolites: list[str] | None = None, cache_dir: str | None = None,
                   *, ref_ppm: float = H1_REFERENCE_PPM, linewidth_hz: float = 0.0,
                   use_cache: bool = True, refocus_bandwidth_hz: float = 0.0,
                   refocus_centre_ppm: float = DEFAULT_REFOCUS_CENTRE_PPM,
                   **timings) -> Basis:
    """Simulate a basis for ``sequence`` in {"fid", "se", "press", "steam", "slaser"}.

    Times in seconds, ``cf_mhz`` the spectrometer (receiver) frequency, ``ref_ppm`` the shift
    of the receiver frequency. Extra ``timings``: ``te1_s``/``te2_s`` (press; default
    TE1 = min(0.4 TE, 14 ms), see ``sequences.PRESS_TE1_FRACTION``)
    or ``refocus_times_s`` (slaser; default TE/8, 3TE/8, 5TE/8, 7TE/8). ``linewidth_hz`` adds a
    Lorentzian broadening (default none: fitting applies lineshapes).
    ``refocus_bandwidth_hz`` > 0 (press only) simulates slice-selective refocusing pulses of
    that bandwidth centred at ``refocus_centre_ppm`` (chemical-shift displacement of coupled
    spins, see ``localisation``); 0 = ideal non-selective pulses.
    """
    if sequence not in SEQUENCES:
        raise ValueError(f"simulate_basis: unknown sequence {sequence!r}; choose one of {SEQUENCES}")
    _validate_grid(cf_mhz, dwell_s, n_points, ref_ppm, linewidth_hz)
    events, resolved = sequence_events(sequence, echo_time_s, mixing_time_s, **timings)
    names = list(DEFAULT_METABOLITES if metabolites is None else metabolites)
    if not names:
        raise ValueError("simulate_basis: no metabolites requested")
    systems = [get_spin_system(n) for n in names]
    params = {"sequence": sequence, "timings_s": resolved, "cf_mhz": float(cf_mhz),
              "dwell_s": float(dwell_s), "n_points": int(n_points), "ref_ppm": float(ref_ppm),
              "linewidth_hz": float(linewidth_hz)}
    localised = None
    if refocus_bandwidth_hz:
        if sequence != "press" or not np.isfinite(refocus_bandwidth_hz) \
                or refocus_bandwidth_hz < 0:
            raise ValueError("simulate_basis: refocus_bandwidth_hz must be a positive bandwidth "
                             f"(Hz) and needs sequence 'press'; got {refocus_bandwidth_hz} for "
                             f"{sequence!r}")
        localised = {"te1_s": resolved["te1_s"], "te2_s": resolved["te2_s"],
                     "bandwidth_hz": float(refocus_bandwidth_hz),
                     "centre_ppm": float(refocus_centre_ppm)}
        params["refocusing"] = {"bandwidth_hz": localised["bandwidth_hz"],
                                "centre_ppm": localised["centre_ppm"]}
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fids = []
    for system in systems:
        path = cache / f"{_cache_key(system, params)}.npy"
        fid = _cache_load(path, int(n_points)) if use_cache else None
        if fid is None:
            fid = simulate_metabolite_fid(system, events, cf_mhz, dwell_s, int(n_points),
                                          ref_ppm, linewidth_hz, localised)
            if use_cache:
                _cache_store(path, fid)
        fids.append(fid)
    provenance = _provenance(sequence, params, systems)
    return Basis([s.name for s in systems], np.array(fids), float(dwell_s), float(cf_mhz),
                 float(ref_ppm), "1H", provenance)


def broaden(fids: np.ndarray, dwell_s: float, lorentz_hz: float = 0.0,
            gauss_hz: float = 0.0) -> np.ndarray:
    """Voigt line broadening: Lorentzian FWHM ``lorentz_hz`` times Gaussian FWHM ``gauss_hz``."""
    t = np.arange(np.shape(fids)[-1]) * dwell_s
    return fids * np.exp(-np.pi * lorentz_hz * t - (np.pi * gauss_hz * t) ** 2 / (4 * np.log(2)))


def _window(basis: Basis, ppm_range) -> np.ndarray:
    return (basis.ppm() >= min(ppm_range)) & (basis.ppm() <= max(ppm_range))


def _best_phase_correlation(sim_spec, ref_spec) -> tuple[float, float]:
    """Max over a zero-order phase phi of corr(Re(exp(i phi) sim), Re(ref)); (corr, phi_deg)."""
    phis = np.deg2rad(np.arange(0.0, 360.0, 0.5))
    ref = ref_spec.real - ref_spec.real.mean()
    rotated = (np.exp(1j * phis)[:, None] * sim_spec[None, :]).real
    rotated -= rotated.mean(axis=1, keepdims=True)
    corr = rotated @ ref / (np.linalg.norm(rotated, axis=1) * np.linalg.norm(ref) + 1e-300)
    best = int(np.argmax(corr))
    return float(corr[best]), float(np.rad2deg(phis[best]))


def match_reference(simulated: Basis, reference: Basis, anchor: str, anchor_ref: str | None = None,
                    ppm_range=(0.5, 4.2), max_width_hz: float = 20.0) -> dict:
    """Frequency offset and Voigt broadening that best map ``simulated`` onto ``reference``.

    Both bases must share one sampling grid. The offset comes from the cross-correlation of the
    anchor metabolite's magnitude spectra (sub-bin by parabolic interpolation), the broadening
    from a grid search maximising the correlation of the magnitude spectra over ``ppm_range``.
    Returns {"shift_hz", "lorentz_hz", "gauss_hz"}; the shift is applied as exp(2j pi f t).
    """
    if (simulated.n_points, simulated.dwell_s) != (reference.n_points, reference.dwell_s):
        raise ValueError("match_reference: simulated and reference bases must share one grid")
    dwell = simulated.dwell_s
    sim_fid = broaden(simulated.fid(anchor), dwell, 2.0)
    ref_spec = np.abs(reference.spectra()[reference.index(anchor_ref or anchor)])
    sim_spec = np.abs(np.fft.fftshift(np.fft.fft(sim_fid)))
    xc = np.fft.ifft(np.fft.fft(ref_spec) * np.conj(np.fft.fft(sim_spec))).real
    k = int(np.argmax(xc))
    y0, y1, y2 = xc[k - 1], xc[k], xc[(k + 1) % len(xc)]
    frac = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) if (y0 - 2 * y1 + y2) else 0.0
    lag = (k + frac + len(xc) / 2) % len(xc) - len(xc) / 2
    shift_hz = lag / (len(xc) * dwell)
    t = np.arange(simulated.n_points) * dwell
    shifted = simulated.fid(anchor) * np.exp(2j * np.pi * shift_hz * t)
    mask = _window(reference, ppm_range)
    ref_w = ref_spec[mask] - ref_spec[mask].mean()
    best = (-2.0, 0.0, 0.0)
    widths = np.arange(0.0, max_width_hz + 1e-9, 0.5)
    for lorentz in widths:
        trial = broaden(np.tile(shifted, (len(widths), 1)), dwell, lorentz, widths[:, None])
        spec = np.abs(np.fft.fftshift(np.fft.fft(trial, axis=-1), axes=-1))[:, mask]
        spec -= spec.mean(axis=1, keepdims=True)
        corr = spec @ ref_w / (np.linalg.norm(spec, axis=1) * np.linalg.norm(ref_w) + 1e-300)
        i = int(np.argmax(corr))
        if corr[i] > best[0]:
            best = (float(corr[i]), float(lorentz), float(widths[i]))
    return {"shift_hz": float(shift_hz), "lorentz_hz": best[1], "gauss_hz": best[2]}


def basis_correlations(simulated: Basis, reference: Basis, names: dict[str, str],
                       match: dict, ppm_range=(0.5, 4.2)) -> dict[str, dict]:
    """Real-part spectral correlation of each simulated metabolite with its reference.

    ``names`` maps simulated names to reference names; ``match`` is ``match_reference``'s
    result (applied to the simulated FIDs). A zero-order phase is allowed per metabolite.
    Returns {name: {"correlation", "phase_deg"}}.
    """
    dwell = simulated.dwell_s
    t = np.arange(simulated.n_points) * dwell
    mask = _window(reference, ppm_range)
    ref_spectra = reference.spectra()
    out = {}
    for sim_name, ref_name in names.items():
        fid = broaden(simulated.fid(sim_name), dwell, match["lorentz_hz"], match["gauss_hz"])
        fid = fid * np.exp(2j * np.pi * match["shift_hz"] * t)
        sim_spec = np.fft.fftshift(np.fft.fft(fid))[mask]
        ref_spec = ref_spectra[reference.index(ref_name)][mask]
        corr, phase = _best_phase_correlation(sim_spec, ref_spec)
        out[sim_name] = {"correlation": corr, "phase_deg": phase}
    return out
