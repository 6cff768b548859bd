"""Coil combination: noise-prewhitened, matched-filter (optimal SNR) weights.

For coil signals ``y = s x + n`` with noise covariance ``Sigma``, the weights
``w = Sigma^-1 s / (s^H Sigma^-1 s)`` give ``w^H y = x + noise`` with the highest SNR of any
linear combination (unit gain, so amplitudes keep their meaning). ``s`` comes from the rank-1
part of a reference (the b = 0 water reference when present, else the mean of the data) after
whitening; ``Sigma`` from noise samples, or from the signal-free end of the FIDs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .average import acquired

TAIL_FRACTION = 0.25
"""Fraction of the FID, at its end, taken as signal-free for noise estimation."""

SENSITIVITY_POINTS = 32
"""Early FID points used to estimate coil sensitivities (where the signal is strongest)."""


@dataclass
class CoilCombination:
    """Combined FIDs and what produced them."""

    combined: np.ndarray  # (..., n_points): the coil axis removed
    weights: np.ndarray  # (n_coils,) complex; combined = sum_k conj(w_k) y_k
    sensitivities: np.ndarray  # (n_coils,) complex, relative
    noise_covariance: np.ndarray  # (n_coils, n_coils) complex
    whitened: bool  # False when no noise estimate was possible (identity used)
    source: str  # where the sensitivities came from: "reference" or "data"

    def weights_table(self) -> list[dict]:
        """One row per coil: relative weight magnitude (sum 1) and phase in degrees."""
        magnitude = np.abs(self.weights)
        relative = magnitude / magnitude.sum()
        return [{"coil": k, "weight": float(relative[k]),
                 "phase_deg": float(np.rad2deg(np.angle(self.weights[k])))}
                for k in range(self.weights.size)]


def noise_covariance(noise: np.ndarray) -> np.ndarray:
    """Sample covariance ``E[n n^H]`` of noise samples (n_coils, ...) over all other axes."""
    samples = np.asarray(noise).reshape(noise.shape[0], -1)
    samples = samples - samples.mean(axis=1, keepdims=True)
    return samples @ samples.conj().T / samples.shape[1]


def tail_noise(fids: np.ndarray, tail_fraction: float = TAIL_FRACTION) -> np.ndarray:
    """Noise samples (n_coils, n_samples) from the end of FIDs (..., n_coils, n_points)."""
    n_points = fids.shape[-1]
    n_tail = max(int(n_points * tail_fraction), 2)
    tail = fids[..., n_points - n_tail:]
    return np.moveaxis(tail, -2, 0).reshape(fids.shape[-2], -1)


def sensitivities(reference: np.ndarray, covariance: np.ndarray,
                  n_points: int = SENSITIVITY_POINTS) -> np.ndarray:
    """Coil sensitivities from the rank-1 part of a whitened reference (n_coils, n_points).

    Scale: the strongest coil has unit gain (|s| = 1), since the data fix s only up to a
    factor. Global phase: chosen so that the combined reference starts real and positive.
    """
    reference = np.asarray(reference)[:, :n_points]
    whitener, colourer = _whitening(covariance)
    u, _, vh = np.linalg.svd(whitener @ reference, full_matrices=False)
    s = colourer @ u[:, 0]
    s = s / np.abs(s).max()
    first = vh[0, 0]
    return s * np.exp(1j * np.angle(first)) if abs(first) > 0 else s


def _whitening(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Sigma^-1/2, Sigma^1/2)`` of a Hermitian positive definite covariance."""
    eigenvalues, vectors = np.linalg.eigh(covariance)
    floor = eigenvalues.max() * 1e-12
    eigenvalues = np.maximum(eigenvalues, floor)
    whitener = (vectors / np.sqrt(eigenvalues)) @ vectors.conj().T
    colourer = (vectors * np.sqrt(eigenvalues)) @ vectors.conj().T
    return whitener, colourer


def matched_filter_weights(s: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Unit-gain optimal weights ``Sigma^-1 s / (s^H Sigma^-1 s)``."""
    solved = np.linalg.solve(covariance, s)
    return solved / np.real(s.conj() @ solved)


def combine_coils(fids: np.ndarray, reference_fid: np.ndarray | None = None,
                  noise: np.ndarray | None = None, whiten: bool = True,
                  tail_fraction: float = TAIL_FRACTION) -> CoilCombination:
    """Combine coils of FIDs shaped (..., n_coils, n_points).

    ``reference_fid``: (..., n_coils, n_points), e.g. the b = 0 water reference (averaged over its
    leading axes); without it the mean of ``fids`` is used. ``noise``: noise-only samples
    (n_coils, ...); without it, the last ``tail_fraction`` of the FIDs (and of the reference)
    is taken as noise. ``whiten=False`` uses an identity covariance (no prewhitening).
    """
    fids = np.asarray(fids)
    if fids.ndim < 2:
        raise ValueError(f"combine_coils expects (..., n_coils, n_points), got {fids.shape}")
    n_coils = fids.shape[-2]
    if reference_fid is not None:
        reference = np.asarray(reference_fid)
        if reference.shape[-2] != n_coils:
            raise ValueError(f"reference has {reference.shape[-2]} coils, data {n_coils}")
        reference = reference.reshape(-1, n_coils, reference.shape[-1]).mean(axis=0)
        source = "reference"
    else:
        reference = fids.reshape(-1, n_coils, fids.shape[-1]).mean(axis=0)
        source = "data"
    covariance = np.eye(n_coils, dtype=complex)
    whitened = False
    if whiten and n_coils > 1:
        samples = tail_noise(fids, tail_fraction) if noise is None else np.asarray(noise)
        covariance = noise_covariance(samples)
        whitened = bool(np.all(np.isfinite(covariance)) and np.real(np.trace(covariance)) > 0)
        if not whitened:
            covariance = np.eye(n_coils, dtype=complex)
    s = sensitivities(reference, covariance)
    weights = matched_filter_weights(s, covariance)
    combined = np.einsum("k,...kn->...n", weights.conj(), fids)
    return CoilCombination(combined, weights, s, covariance, whitened, source)


def dead_coils(fids: np.ndarray) -> np.ndarray:
    """(n_coils,) mask of coils exactly zero at every point of every FID (..., n_coils,
    n_points): a channel that recorded nothing (switched off, broken), never noise."""
    return ~acquired(np.moveaxis(fids, -2, 0))


def without_partial_transients(fids: np.ndarray, label: str) -> tuple[np.ndarray, list[str]]:
    """``fids`` (n_conditions, n_transients, n_coils, n_points) with every transient that is
    exactly zero in some of its recording coils but not all (a channel that dropped out for
    that transient) set to zero in all, so it is left out as not acquired; and a flag naming
    ``label``. Combined as it is, such a transient entered the averages at the wrong scale (a
    water transient zero in 2 of 4 coils took the water signal to 0.84 x, concentrations
    +20 %, with no flag)."""
    recording = ~dead_coils(fids)
    zero = ~acquired(fids[:, :, recording, :], 3)
    partial = zero.any(axis=-1) & ~zero.all(axis=-1)
    if not partial.any():
        return fids, []
    fids = fids.copy()
    fids[partial] = 0
    return fids, [f"coils: {label}: {int(partial.sum())} transient(s) exactly zero in some "
                  "coils only (a channel dropped out): left out as not acquired"]


COIL_ORIENTATION_MARGIN = 0.05
"""Coherence by which the conjugated water's coil sensitivities must beat the stored water's
before the water is called conjugated against the data (:func:`coil_orientation`). Measured
(2026-12-07), Siemens 7 T STEAM (4 coils): 0.976 as stored against 0.856 conjugated (wref_raw;
quant_raw 0.979 / 0.856), single data transients 0.971 at least and 0.866 at most; the water
conjugated swaps the two. Below the margin the coils' phases are too nearly alike (mod 180
degrees) to tell, and conjugate weights then cost little."""

COIL_PROFILE_MIN_SNR = 2.0
"""Least :func:`rank1_snr` of the data and of the water for :func:`coil_orientation` to judge.
Measured 2026-12-08: pure complex Gaussian noise (coil-correlated, 2-64 coils, 256-4096
points, 1 or 16 transients) gives at most 1.40; the Siemens 7 T STEAM data 35.6 as stored,
2.2-2.7 at 15 x their noise (all judged, all right), 1.0 at 60 x. Below it the profiles are
mostly noise, and with coil-correlated noise their comparison is a bias, not a coin toss:
those data at 400 x their noise called 157 of 200 conjugated waters and 3 of 200 stored ones
"conjugated"."""

MIN_NOISE_SAMPLES_PER_COIL = 4
"""Fewest tail samples per coil for a noise covariance :func:`rank1_snr` can whiten with."""


def rank1_snr(fids: np.ndarray, n_points: int = SENSITIVITY_POINTS) -> float:
    """How clearly the rank-1 coil profile of the mean of ``fids`` (..., n_coils, n_points)
    stands above noise: the largest singular value of its first ``n_points``, whitened by the
    noise covariance of the mean's tail (:func:`tail_noise`; scaled by (N - n_coils) / N, the
    bias of the inverse of a covariance from N samples), divided by sqrt(n_coils) +
    sqrt(n_points), the value noise alone gives. About 1 for pure noise; ``inf`` without noise
    (simulated data); ``nan`` with fewer than :data:`MIN_NOISE_SAMPLES_PER_COIL` tail samples
    per coil."""
    n_coils = fids.shape[-2]
    mean = fids.reshape(-1, n_coils, fids.shape[-1]).mean(axis=0)
    tail = tail_noise(mean)
    if tail.shape[1] < MIN_NOISE_SAMPLES_PER_COIL * n_coils:
        return float("nan")
    covariance = noise_covariance(tail) * tail.shape[1] / (tail.shape[1] - n_coils)
    first = mean[:, :n_points]
    if not np.real(np.trace(covariance)) > 0:
        return float("inf") if np.any(first) else 0.0
    whitener, _ = _whitening(covariance)
    largest = np.linalg.svd(whitener @ first, compute_uv=False)[0]
    return float(largest / (np.sqrt(n_coils) + np.sqrt(first.shape[1])))


@dataclass
class CoilOrientation:
    """How well the water reference's coil sensitivities match the data's, as stored and
    conjugated (1: the same profile up to a factor), and how well each profile is measured
    (:func:`rank1_snr`): below :data:`COIL_PROFILE_MIN_SNR` nothing is judged."""

    coherence_as_stored: float
    coherence_conjugated: float
    snr_data: float = float("inf")
    snr_water: float = float("inf")

    @property
    def judged(self) -> bool:
        """Both profiles above noise (a nan, noise not measurable, is not: ``min`` would
        keep or drop it by argument order)."""
        return all(snr >= COIL_PROFILE_MIN_SNR for snr in (self.snr_data, self.snr_water))

    @property
    def mirrored(self) -> bool:
        return self.judged and (self.coherence_conjugated - self.coherence_as_stored
                                > COIL_ORIENTATION_MARGIN)

    def reason(self, data_label: str, water_label: str) -> str:
        """Why nothing was judged ('' when it was)."""
        if self.judged:
            return ""
        pairs = ((data_label, self.snr_data), (water_label, self.snr_water))
        short = [label for label, snr in pairs if np.isnan(snr)]
        weak = [f"{label} {snr:.2f}" for label, snr in pairs if snr < COIL_PROFILE_MIN_SNR]
        return "not judged: " + "; ".join(filter(None, [
            f"too few points to measure the coils' noise in {', '.join(short)} (need "
            f"{MIN_NOISE_SAMPLES_PER_COIL} tail samples per coil)" if short else "",
            f"coil profile not measured above noise ({', '.join(weak)}; need "
            f"{COIL_PROFILE_MIN_SNR:g}, pure noise gives about 1)" if weak else ""]))

    def to_dict(self) -> dict:
        snr = {key: (round(value, 2) if np.isfinite(value) else None)
               for key, value in (("rank1_snr_data", self.snr_data),
                                  ("rank1_snr_water", self.snr_water))}
        return {"coherence_as_stored": round(self.coherence_as_stored, 4),
                "coherence_conjugated": round(self.coherence_conjugated, 4),
                "mirrored": self.mirrored, "judged": self.judged, **snr}


def coil_orientation(fids: np.ndarray, water_fids: np.ndarray) -> CoilOrientation:
    """Whether the water reference (..., n_coils, n_points) has the data's sign convention,
    from the coils alone: every signal of the voxel reaches coil k with the same complex
    sensitivity s_k, so the data's and the water's rank-1 coil profiles (:func:`sensitivities`
    of their means, unwhitened) agree up to a factor; a conjugated water has the profile
    conj(s), whose phases run the other way. Coherence |a^H b| / (|a| |b|) of the data's
    profile with the water's as stored and with its conjugate. Coils with identical phases
    (mod 180 degrees) cannot tell, and then conjugate weights do no harm either; nor can
    profiles of noise (:func:`rank1_snr`, recorded for the verdict)."""
    n_coils = fids.shape[-2]
    identity = np.eye(n_coils)
    data = sensitivities(fids.reshape(-1, n_coils, fids.shape[-1]).mean(axis=0), identity)
    water = sensitivities(water_fids.reshape(-1, n_coils, water_fids.shape[-1]).mean(axis=0),
                          identity)
    norm = float(np.linalg.norm(data) * np.linalg.norm(water)) or np.finfo(float).tiny
    return CoilOrientation(float(abs(data.conj() @ water)) / norm,
                           float(abs(data.conj() @ water.conj())) / norm,
                           rank1_snr(fids), rank1_snr(water_fids))
