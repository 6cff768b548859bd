"""Density-matrix simulation of coupled 1H spin systems with ideal instantaneous pulses.

The full (strongly coupled) Hamiltonian of a fragment is diagonalised once, block by block in
the total magnetic quantum number M (it commutes with Fz), and the density matrix is carried in
that eigenbasis: free evolution is then an element-wise phase, a pulse a matrix product, and a
coherence-order filter a mask on M_j - M_k. The acquired signal is a list of lines
(frequency, complex amplitude), turned into an FID only at the end.

Magnetically equivalent protons (e.g. a CH3 group) are one composite spin: n spin-1/2 decompose
into total-spin irreducible representations S (with multiplicities) that the Hamiltonian and
ideal pulses never mix, so the group is simulated exactly as a weighted sum over spin-S
particles of dimension 2S+1 instead of 2^n states.

Sign convention (``pipeline.spectra``): a proton at offset ``nu_hz = (ppm - ref_ppm) * cf_mhz``
gives ``exp(-2j*pi*nu_hz*t)``; detection is Tr(rho F-), which selects coherence order
p = M_j - M_k = +1. Scaling: after an ideal 90 degree pulse the first FID point equals the number
of protons (equilibrium Fz, normalised by the 2^N/4 trace of the full proton space).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from math import comb

import numpy as np

# An event of a pulse sequence: ("pulse", flip_deg, phase_deg) | ("delay", t_s) | ("select", p).
# flip_deg may be a tuple with one flip per particle of the fragment (a spin-selective pulse:
# e.g. a slice-selective refocusing pulse seen at one position, where each chemical shift's
# slice is displaced differently).
Event = tuple


def spin_matrices(spin: float) -> tuple[np.ndarray, np.ndarray]:
    """(Sz, S+) of one spin-``spin`` particle in the basis m = S, S-1, ..., -S."""
    m = spin - np.arange(int(round(2 * spin)) + 1)
    sz = np.diag(m).astype(complex)
    # <m+1| S+ |m> = sqrt(S(S+1) - m(m+1)); row index of m+1 is one above that of m
    sp = np.diag(np.sqrt(spin * (spin + 1) - m[1:] * (m[1:] + 1)), k=1).astype(complex)
    return sz, sp


def equivalent_group_irreps(n_protons: int) -> list[tuple[float, int]]:
    """Total spins S (with multiplicities) of ``n_protons`` equivalent spin-1/2.

    S = 0 sectors are kept: they carry no signal of the group itself, but the other spins of
    the fragment still resonate there (uncoupled from the group).
    """
    irreps = []
    for k in range(n_protons // 2 + 1):  # S = n/2 - k
        mult = comb(n_protons, k) - (comb(n_protons, k - 1) if k > 0 else 0)
        if mult > 0:
            irreps.append((n_protons / 2 - k, mult))
    return irreps


def _embed(op: np.ndarray, index: int, dims: list[int]) -> np.ndarray:
    """Operator ``op`` of particle ``index`` in the product space of all particles."""
    out = np.ones((1, 1), dtype=complex)
    for k, d in enumerate(dims):
        out = np.kron(out, op if k == index else np.eye(d))
    return out


@dataclass
class EigenSystem:
    """Eigen-decomposition of a fragment Hamiltonian, with the operators sequences need."""

    energies_rad_s: np.ndarray  # (d,)
    vectors: np.ndarray  # (d, d), columns = eigenstates in the Zeeman product basis
    m_total: np.ndarray  # (d,) total M of each eigenstate
    spins: list[float]

    def to_eigenbasis(self, op: np.ndarray) -> np.ndarray:
        return self.vectors.conj().T @ op @ self.vectors

    @property
    def coherence_order(self) -> np.ndarray:
        """p = M_j - M_k of each density-matrix element |j><k|."""
        return np.rint(self.m_total[:, None] - self.m_total[None, :]).astype(int)


def hamiltonian_eigensystem(spins: list[float], offsets_hz, couplings) -> EigenSystem:
    """Diagonalise H = sum 2pi nu_k Iz_k + sum 2pi J_kl I_k.I_l (rad/s) block-wise in M.

    ``spins``: spin quantum number per particle; ``offsets_hz``: nu_k; ``couplings``:
    iterable of (k, l, J_hz).
    """
    dims = [int(round(2 * s)) + 1 for s in spins]
    single = [spin_matrices(s) for s in spins]
    iz = [_embed(sz, k, dims) for k, (sz, _) in enumerate(single)]
    ip = [_embed(sp, k, dims) for k, (_, sp) in enumerate(single)]
    d = int(np.prod(dims))
    h = np.zeros((d, d), dtype=complex)
    for k, nu in enumerate(offsets_hz):
        h += 2 * np.pi * nu * iz[k]
    for k, l, j_hz in couplings:
        flip_flop = 0.5 * (ip[k] @ ip[l].conj().T + ip[k].conj().T @ ip[l])
        h += 2 * np.pi * j_hz * (iz[k] @ iz[l] + flip_flop)
    m_diag = np.real(np.diag(sum(iz))) if iz else np.zeros(d)
    energies = np.zeros(d)
    vectors = np.zeros((d, d), dtype=complex)
    for m in np.unique(np.round(m_diag, 6)):
        idx = np.flatnonzero(np.isclose(m_diag, m))
        e, v = np.linalg.eigh(h[np.ix_(idx, idx)])
        energies[idx] = e
        vectors[np.ix_(idx, idx)] = v
    return EigenSystem(energies, vectors, m_diag.copy(), list(spins))


def _rotation(spins: list[float], flip_deg, phase_deg: float) -> np.ndarray:
    """Ideal pulse exp(-i sum_k theta_k (cos(phi) Ix_k + sin(phi) Iy_k)), product space.

    ``flip_deg``: one flip for all particles (non-selective) or one per particle."""
    flips = np.broadcast_to(np.deg2rad(np.asarray(flip_deg, dtype=float)), (len(spins),))
    phi = np.deg2rad(phase_deg)
    out = np.ones((1, 1), dtype=complex)
    for s, theta in zip(spins, flips):
        _, sp = spin_matrices(s)
        axis = np.cos(phi) * 0.5 * (sp + sp.conj().T) + np.sin(phi) * (-0.5j) * (sp - sp.conj().T)
        values, vectors = np.linalg.eigh(axis)
        out = np.kron(out, (vectors * np.exp(-1j * theta * values)) @ vectors.conj().T)
    return out


def run_events(eig: EigenSystem, events: list[Event], rotations: dict | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``events`` from equilibrium (rho = Fz) and return the acquired lines.

    Returns (freq_hz, amplitude): the signal is sum(amplitude * exp(2j*pi*freq_hz*t)) from the
    end of the last event, unnormalised (trace over this particle space). ``rotations``: a
    dict kept by the caller to reuse pulse matrices across calls on the same ``eig``.
    """
    dims = [int(round(2 * s)) + 1 for s in eig.spins]
    fz = sum(_embed(spin_matrices(s)[0], k, dims) for k, s in enumerate(eig.spins))
    f_minus = sum(_embed(spin_matrices(s)[1].conj().T, k, dims) for k, s in enumerate(eig.spins))
    rho = eig.to_eigenbasis(fz)
    delta_e = eig.energies_rad_s[:, None] - eig.energies_rad_s[None, :]
    order = eig.coherence_order
    rotations = {} if rotations is None else rotations
    for event in events:
        kind = event[0]
        if kind == "delay":
            rho = rho * np.exp(-1j * delta_e * float(event[1]))
        elif kind == "pulse":
            flip = event[1]
            flip = tuple(float(f) for f in flip) if np.ndim(flip) else float(flip)
            key = (flip, float(event[2]))
            if key not in rotations:
                rotations[key] = eig.to_eigenbasis(_rotation(eig.spins, *key))
            r = rotations[key]
            rho = r @ rho @ r.conj().T
        elif kind == "select":
            rho = np.where(order == int(event[1]), rho, 0)
        else:
            raise ValueError(f"unknown sequence event {event!r}")
    detect = eig.to_eigenbasis(f_minus)
    amp = rho * detect.T  # a_jk = rho_jk * D_kj
    keep = (order == 1) & (np.abs(amp) > 1e-12 * max(1.0, np.abs(amp).max()))
    return -delta_e[keep] / (2 * np.pi), amp[keep]


def fragment_lines(groups, couplings, hetero, offsets_hz, events, weight=1.0):
    """Lines of one fragment, normalised so a 90-degree FID starts at its proton count.

    ``groups``: proton count per equivalent group; ``offsets_hz``: nu of each group;
    ``couplings``: (i, j, J_hz) between groups; ``hetero``: list of (spin, [(i, J_hz), ...]),
    weakly coupled non-1H nuclei, summed over their Zeeman states.
    """
    return fragment_lines_weighted(groups, couplings, hetero, offsets_hz, [(1.0, events)],
                                   weight)


def fragment_lines_weighted(groups, couplings, hetero, offsets_hz, weighted_events,
                            weight=1.0):
    """:func:`fragment_lines` for a weighted sum of event lists [(w, events), ...] (e.g. the
    positions of a voxel), diagonalising each Hamiltonian once for all of them."""
    freqs, amps = [], []
    n_protons = sum(groups)
    hetero_states = [[(m, 1.0 / (2 * s + 1)) for m in s - np.arange(int(round(2 * s)) + 1)]
                     for s, _ in hetero]
    for states in product(*hetero_states):
        shifted = np.array(offsets_hz, dtype=float)
        h_weight = 1.0
        for (m, w), (_, pairs) in zip(states, hetero):
            h_weight *= w
            for i, j_hz in pairs:
                shifted[i] += m * j_hz
        for irreps in product(*[equivalent_group_irreps(n) for n in groups]):
            spins = [s for s, _ in irreps]
            mult = float(np.prod([m for _, m in irreps]))
            eig = hamiltonian_eigensystem(spins, shifted, couplings)
            rotations: dict = {}
            for w, events in weighted_events:
                f, a = run_events(eig, events, rotations)
                freqs.append(f)
                amps.append(a * (mult * h_weight * w))
    scale = weight * 4.0 / 2.0 ** n_protons
    return np.concatenate(freqs), np.concatenate(amps) * scale


def merge_lines(freq_hz, amp, tol_hz: float = 1e-6):
    """Sum lines whose frequencies agree within ``tol_hz`` and drop vanishing ones."""
    if len(freq_hz) == 0:
        return np.zeros(0), np.zeros(0, dtype=complex)
    keys = np.round(np.asarray(freq_hz) / tol_hz).astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    summed = np.zeros(len(uniq), dtype=complex)
    np.add.at(summed, inverse, amp)
    f_mean = np.zeros(len(uniq))
    np.add.at(f_mean, inverse, freq_hz)
    f_mean /= np.bincount(inverse)
    keep = np.abs(summed) > 1e-10 * max(1.0, np.abs(summed).max())
    return f_mean[keep], summed[keep]


def lines_to_fid(freq_hz, amp, dwell_s: float, n_points: int, block: int = 64) -> np.ndarray:
    """FID sum(amp * exp(2j*pi*freq*t)) at t = k*dwell_s, k = 0..n_points-1.

    Factorised as exp(2j*pi*f*(t0 + t1)) with t0 on a coarse grid of ``block`` samples and t1
    within a block, so one matrix product replaces n_points * n_lines complex exponentials.
    """
    f = np.asarray(freq_hz, dtype=float)
    a = np.asarray(amp, dtype=complex)
    inner = np.exp(2j * np.pi * np.outer(np.arange(block) * dwell_s, f))
    starts = np.arange(0, n_points, block) * dwell_s
    outer = np.exp(2j * np.pi * np.outer(starts, f)) * a
    return (outer @ inner.T).reshape(-1)[:n_points]
