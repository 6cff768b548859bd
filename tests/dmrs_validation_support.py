"""Multi-condition dMRS data whose truth does not come from the app (issue 13 item 5).

Built on ``validation_support`` (other groups' bases, measured water-reference lineshapes,
measured macromolecules, smooth baselines, residual water), none of the package's simulator
or fit model. Each participant gets, per metabolite group, a decay S(b)/S(0) that is NOT one of
the app's parametric models (``pipeline.diffusion.MODELS``): a two-compartment mixture of

- randomly oriented sticks with a small radial diffusivity (restricted intra-cellular signal,
  ~ b^-1/2 at large b), and
- a gamma distribution of ADCs ((1 + b D sd^2/D^2)^(-D^2/sd^2), a kurtosis-like curve that
  stays positive at every b),

with a mean low-b ADC of 0.10-0.20 um^2/ms for metabolites (Palombo et al. 2016, Ligneul et al.
2019 report 0.1-0.2 um^2/ms in human brain) and 0.005-0.015 um^2/ms for macromolecules.
Conditions differ by small frequency (+-2 Hz) and zero-order phase (+-5 deg) drifts, as after
the app's alignment; the noise SD is the same at every b (one averaged acquisition per b).
Metabolites of one pool (NAA+NAAG, Cr+PCr, GPC+PCh) share a decay, so the truth of a sum is
its members' decay.

Directional protocols (:data:`DIRECTIONAL_PROTOCOLS`, opt-in): b = 0 plus shells along the
in-vivo set's 3 orthogonal gradient directions. Each pool's signal then depends on the
direction: a fraction follows sticks along 1-3 fibre orientations drawn per participant
(shared by all pools), S = sum_i w_i exp(-b (D_par (g.n_i)^2 + D_perp (1 - (g.n_i)^2))), the
rest the isotropic decay above; along every direction a non-negative mixture of exponentials
(completely monotone in b), none of the app's models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import erf

import numpy as np

import validation_support as vs

B_7T_MS_UM2 = (0.0, 1.0, 3.0, 6.0, 10.0, 20.0, 30.0, 40.0, 50.0)
"""b-values of the published 7 T STEAM synthetic dMRS set (ms/um^2)."""
B_3T_MS_UM2 = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0)
"""A clinical-range 3 T PRESS protocol (ms/um^2)."""

POOLS = {"NAA": "tNAA", "NAAG": "tNAA", "Cr": "tCr", "PCr": "tCr", "GPC": "tCho",
         "PCh": "tCho"}
"""Basis entries (canonical names) sharing one decay: the pool's name."""
DECAY_NAMES = ("tNAA", "tCr", "tCho", "Ins", "Glu", "Gln", "Tau", "MM")
"""Decays scored by the benchmark."""
RATIO_NAMES = ("tNAA", "tCho", "Ins", "Glu", "Gln", "Tau")
"""b = 0 ratios to tCr scored by the benchmark."""
IN_VIVO_DIRECTIONS = np.array([[1, 1, -0.5], [1, -0.5, 1], [-0.5, 1, 1]]) / 1.5
"""The in-vivo 7 T set's gradient directions (orthogonal unit vectors)."""
SHELLS_7T_MS_UM2 = (1.0, 5.0, 15.0, 30.0)
"""b-values of the directional 7 T protocol's shells (ms/um^2), within the published range."""


def sticks_decay(b_ms_um2, d_par_um2_ms: float, d_perp_um2_ms: float) -> np.ndarray:
    """Powder average of a cylinder-like compartment: axial D_par, radial D_perp."""
    b = np.asarray(b_ms_um2, float)
    out = np.ones_like(b)
    for i, bv in enumerate(b):
        x = bv * (d_par_um2_ms - d_perp_um2_ms)
        if x > 1e-9:
            out[i] = np.exp(-bv * d_perp_um2_ms) * np.sqrt(np.pi / (4 * x)) * erf(np.sqrt(x))
        else:
            out[i] = np.exp(-bv * d_perp_um2_ms)
    return out


def gamma_decay(b_ms_um2, mean_um2_ms: float, cv: float) -> np.ndarray:
    """Signal of a gamma distribution of ADCs (mean, coefficient of variation cv)."""
    b = np.asarray(b_ms_um2, float)
    shape = 1.0 / cv ** 2
    return (1.0 + b * mean_um2_ms / shape) ** (-shape)


@dataclass
class Decay:
    """Truth S(b)/S(0) of one pool: f * sticks + (1 - f) * gamma."""

    stick_fraction: float
    d_par_um2_ms: float
    d_perp_um2_ms: float
    gamma_mean_um2_ms: float
    gamma_cv: float

    def __call__(self, b_ms_um2, directions=None) -> np.ndarray:
        """S(b)/S(0); isotropic, so ``directions`` are ignored."""
        f = self.stick_fraction
        return (f * sticks_decay(b_ms_um2, self.d_par_um2_ms, self.d_perp_um2_ms)
                + (1 - f) * gamma_decay(b_ms_um2, self.gamma_mean_um2_ms, self.gamma_cv))

    def low_b_adc_um2_ms(self) -> float:
        """-d ln S/db at b = 0 (sticks: (D_par + 2 D_perp)/3)."""
        f = self.stick_fraction
        return f * (self.d_par_um2_ms + 2 * self.d_perp_um2_ms) / 3 + \
            (1 - f) * self.gamma_mean_um2_ms


def draw_decay(rng, macromolecule: bool = False) -> Decay:
    """A random non-parametric decay with a literature-like low-b ADC."""
    if macromolecule:
        adc = rng.uniform(0.005, 0.015)
        return Decay(0.5, 1.5 * adc, 0.0, adc * rng.uniform(0.5, 1.0), rng.uniform(0.3, 1.0))
    f = rng.uniform(0.5, 0.9)
    d_perp = rng.uniform(0.0, 0.01)
    target = rng.uniform(0.10, 0.20)
    d_par = rng.uniform(0.25, 0.55)
    stick_adc = (d_par + 2 * d_perp) / 3
    gamma_mean = max((target - f * stick_adc) / (1 - f), 0.03)
    return Decay(f, d_par, d_perp, gamma_mean, rng.uniform(0.3, 1.2))


def fibre_sticks(b_ms_um2, directions, fibres, weights, d_par_um2_ms: float,
                 d_perp_um2_ms: float) -> np.ndarray:
    """Signal of sticks along ``fibres`` (k, 3 unit vectors, ``weights`` summing to 1) for
    gradients ``directions`` (n, 3; NaN rows at b = 0, where the signal is 1)."""
    b = np.asarray(b_ms_um2, float)
    g = np.nan_to_num(np.atleast_2d(np.asarray(directions, float)))
    cos2 = (g @ np.asarray(fibres, float).T) ** 2                       # (n, k)
    d = d_perp_um2_ms + (d_par_um2_ms - d_perp_um2_ms) * cos2
    return np.exp(-b[:, None] * d) @ np.asarray(weights, float)


@dataclass
class DirectionalDecay:
    """Truth S(b, g)/S(0) of one pool in an anisotropic voxel: ``fibre_fraction`` of sticks
    along the participant's fibres (the isotropic decay's D_par, D_perp), the rest
    ``isotropic``."""

    isotropic: Decay
    fibre_fraction: float
    fibres: np.ndarray
    fibre_weights: np.ndarray

    def __call__(self, b_ms_um2, directions) -> np.ndarray:
        f, iso = self.fibre_fraction, self.isotropic
        sticks = fibre_sticks(b_ms_um2, directions, self.fibres, self.fibre_weights,
                              iso.d_par_um2_ms, iso.d_perp_um2_ms)
        return f * sticks + (1 - f) * iso(b_ms_um2)


def draw_fibres(rng, max_fibres: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """1 to ``max_fibres`` fibre orientations uniform on the sphere and their weights."""
    k = int(rng.integers(1, max_fibres + 1))
    fibres = rng.standard_normal((k, 3))
    return fibres / np.linalg.norm(fibres, axis=1, keepdims=True), rng.dirichlet(np.ones(k))


def directional_decays(rng, decays: dict) -> dict:
    """The participant's pools made anisotropic: one fibre population for all pools, a
    fibre fraction per pool (metabolites 0.3-0.8, MM 0.2-0.5)."""
    fibres, weights = draw_fibres(rng)
    fraction = {p: float(rng.uniform(*((0.2, 0.5) if p == "MM" else (0.3, 0.8))))
                for p in decays}
    return {p: DirectionalDecay(d, fraction[p], fibres, weights) for p, d in decays.items()}


def directional_protocol(shells_ms_um2=SHELLS_7T_MS_UM2, directions=IN_VIVO_DIRECTIONS):
    """(b, directions) of b = 0 (NaN direction) plus every shell along every direction."""
    g = np.asarray(directions, float)
    b = np.concatenate([[0.0], np.repeat(np.asarray(shells_ms_um2, float), len(g))])
    return b, np.vstack([np.full((1, 3), np.nan), np.tile(g, (len(shells_ms_um2), 1))])


DIRECTIONAL_PROTOCOLS = {"pregame_steam7t_dirs": ("pregame_steam7t", directional_protocol())}
"""Protocol name -> (basis source, (b, directions)): 7 T STEAM, b = 0 + 4 shells x 3
directions (13 conditions)."""


def pool_of(name: str) -> str:
    canonical = vs.canonical(name)
    return POOLS.get(canonical, canonical)


@dataclass
class Participant:
    source: str
    b_ms_um2: np.ndarray
    fids: np.ndarray                     # (n_conditions, n_points)
    dwell_s: float
    cf_mhz: float
    truth_mm: dict                       # canonical name -> concentration at b = 0
    decays: dict                         # pool -> Decay (and "MM")
    noise_sd: float
    params: dict = field(default_factory=dict)
    directions: np.ndarray | None = None  # (n_conditions, 3), NaN at b = 0; None: isotropic

    def truth_decay(self, name: str) -> np.ndarray:
        return self.decays[name](self.b_ms_um2, self.directions)

    def truth_ratio(self, name: str) -> float:
        value = lambda n: sum(self.truth_mm.get(m, 0.0) for m in vs.SUMS.get(n, (n,)))  # noqa
        return value(name) / value("tCr")


def draw_participant(rng, source: vs.BasisSource, basis, kernels, mms,
                     b_ms_um2=B_7T_MS_UM2, snr_range=(40.0, 150.0),
                     directions=None) -> Participant:
    """All conditions of one participant (see module notes); SNR is that of the b = 0 tNAA
    peak over the noise SD of one real spectral point. ``directions`` (n_conditions, 3; NaN
    rows at b = 0): anisotropic decays (:func:`directional_decays`)."""
    b = np.asarray(b_ms_um2, float)
    n = source.n_points
    dwell, cf = basis.dwell_s, basis.cf_mhz
    t = np.arange(n) * dwell
    ppm = vs.ppm_axis(n, dwell, cf)
    truth = {vs.canonical(name): float(rng.uniform(*vs.CONCENTRATION_RANGES_MM[vs.canonical(
        name)])) for name in basis.names}
    pools = sorted({pool_of(name) for name in basis.names})
    decays = {p: draw_decay(rng) for p in pools}
    decays["MM"] = draw_decay(rng, macromolecule=True)
    if directions is not None:
        decays = directional_decays(rng, decays)
    kernel = kernels[int(rng.integers(len(kernels)))]
    width_ppm = float(rng.uniform(*vs.LINEWIDTH_PPM[source.field]))
    k = vs.kernel_on_grid(kernel, dwell, n, width_ppm * cf)
    metab_fids = np.array([truth[vs.canonical(name)] * basis.fids[i, :n] * k
                           for i, name in enumerate(basis.names)])
    metab_pool = [pool_of(name) for name in basis.names]
    naa_height = vs.peak_height(vs.to_spectrum(metab_fids.sum(axis=0)), ppm)
    mm = mms[int(rng.integers(len(mms)))]
    mm_fid = vs.mm_on_grid(mm, ppm, dwell)
    mm_ratio = float(rng.uniform(0.2, 0.5))
    mm_fid = mm_fid * (mm_ratio * naa_height / vs.peak_height(vs.to_spectrum(mm_fid), ppm,
                                                                0.8, 1.05))
    offset_ppm = float(rng.uniform(-0.1, 0.1))
    phase0_deg = float(rng.uniform(-60, 60))
    delay_s = float(rng.uniform(0.0, 4.0 / (360.0 * cf)))
    baseline_fid = vs.to_fid(vs.smooth_baseline(rng, ppm, 0.1 * naa_height))
    baseline_fid[n // 2:] = 0.0
    baseline_fid[1:n // 2] *= 2.0
    snr = float(np.exp(rng.uniform(*np.log(snr_range))))
    noise_sd = naa_height / snr
    sigma_t = noise_sd / np.sqrt(n)
    fids = np.zeros((b.size, n), complex)
    drifts = []
    for c, bv in enumerate(b):
        g = None if directions is None else directions[c:c + 1]
        weights = np.array([decays[p](np.array([bv]), g)[0] for p in metab_pool])
        mm_weight = decays["MM"](np.array([bv]), g)[0]
        shift_hz = float(rng.uniform(-2.0, 2.0)) if c else 0.0
        dphi_deg = float(rng.uniform(-5.0, 5.0)) if c else 0.0
        drifts.append((shift_hz, dphi_deg))
        tissue = weights @ metab_fids + mm_weight * mm_fid
        tissue = tissue * np.exp(-2j * np.pi * (offset_ppm * cf + shift_hz) * t)
        # residual water: one line in 4.2-5.0 ppm, attenuated with b like free water (D = 3)
        centre = float(rng.uniform(4.2, 5.0))
        water = vs.line_fid(t, centre, cf, 3.0) * k
        water *= (rng.uniform(0.3, 3.0) * naa_height * np.exp(-3.0 * min(bv, 3.0))
                  / vs.peak_height(vs.to_spectrum(water), ppm, centre - 0.05, centre + 0.05))
        water *= np.exp(1j * rng.uniform(-np.pi, np.pi))
        # the baseline follows the macromolecules (broad, slowly diffusing components)
        signal = tissue + water + mm_weight * baseline_fid
        fid = vs.delayed(signal, dwell, delay_s) * np.exp(1j * np.deg2rad(phase0_deg + dphi_deg))
        fids[c] = fid + sigma_t * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    params = {"kernel": kernel.label, "linewidth_ppm": width_ppm, "mm": mm.label,
              "mm_to_naa": mm_ratio, "offset_ppm": offset_ppm, "phase0_deg": phase0_deg,
              "snr_b0": snr, "drifts_hz_deg": drifts}
    return Participant(source.label, b, fids, dwell, cf, truth, decays, noise_sd, params,
                       None if directions is None else np.asarray(directions, float))


def dmrs_set(shared, n_participants: int, source_labels=("pregame_steam7t",), seed: int = 0,
             b_by_field=None, snr_range=(40.0, 150.0), directions=None):
    """``n_participants`` participants spread over the sources (round robin); b-values by field
    (7 T: the published set's, 3 T: :data:`B_3T_MS_UM2`); ``directions``: per condition, for
    anisotropic decays. Returns (participants, bases)."""
    b_by_field = b_by_field or {"7T": B_7T_MS_UM2, "3T": B_3T_MS_UM2}
    rng = np.random.default_rng(seed)
    sources = [s for s in vs.SOURCES if s.label in source_labels]
    bases = {s.label: (s, vs.load_basis(shared, s)) for s in sources
             if (shared / s.relative_path).exists()}
    if not bases:
        raise FileNotFoundError(f"none of the bases {source_labels} under {shared}")
    kernels = vs.water_kernels(shared)
    mms = {f: vs.measured_mm(shared, f) for f in {s.field for s, _ in bases.values()}}
    labels = list(bases)
    out = []
    for i in range(n_participants):
        source, basis = bases[labels[i % len(labels)]]
        out.append(draw_participant(rng, source, basis, kernels, mms[source.field],
                                    b_by_field[source.field], snr_range, directions))
    return out, bases


def protocol_set(shared, n_participants: int, protocol: str, seed: int = 0,
                 snr_range=(40.0, 150.0)):
    """Participants of one protocol: a basis source label (its field's b-values, isotropic)
    or a name of :data:`DIRECTIONAL_PROTOCOLS`. Returns (participants, (source, basis))."""
    if protocol not in DIRECTIONAL_PROTOCOLS:
        participants, bases = dmrs_set(shared, n_participants, (protocol,), seed,
                                       snr_range=snr_range)
        return participants, bases[protocol]
    label, (b, g) = DIRECTIONAL_PROTOCOLS[protocol]
    participants, bases = dmrs_set(shared, n_participants, (label,), seed,
                                   {"7T": b, "3T": b}, snr_range, g)
    return participants, bases[label]


# --- fitting a participant with the app and scoring it ------------------------------------

MODES = {
    "sequential": {"mode": "sequential"},
    "joint_param": {"mode": "joint", "joint_default_model": "monoexponential",
                    "joint_mm_model": "monoexponential", "joint_shared": ["lineshape"]},
    "joint_param_tied": {"mode": "joint", "joint_default_model": "monoexponential",
                         "joint_mm_model": "monoexponential",
                         "joint_shared": ["lineshape", "shift", "phase"]},
    "joint_free_tied": {"mode": "joint", "joint_default_model": "free", "joint_mm_model": "free",
                        "joint_shared": ["lineshape", "shift", "phase"]},
    "joint_free_mm_mono": {"mode": "joint", "joint_default_model": "free",
                           "joint_mm_model": "monoexponential",
                           "joint_shared": ["lineshape", "shift", "phase"],
                           "joint_decay_constraint": "none"},
    "joint_free_cm": {"mode": "joint", "joint_default_model": "free",
                      "joint_mm_model": "monoexponential",
                      "joint_shared": ["lineshape", "shift", "phase"],
                      "joint_decay_constraint": "completely_monotone"},
    "joint_free_cm_phase": {"mode": "joint", "joint_default_model": "free",
                            "joint_mm_model": "monoexponential",
                            "joint_shared": ["lineshape", "shift"],
                            "joint_decay_constraint": "completely_monotone"},
    "joint_free_cm_frames": {"mode": "joint", "joint_default_model": "free",
                             "joint_mm_model": "monoexponential", "joint_shared": ["lineshape"],
                             "joint_decay_constraint": "completely_monotone"},
}
"""Fit modes compared (explicit, independent of the config's [fitting]): sequential; joint
with mono-exponentials and the lineshape shared (the default before issue 13); the same with
shift and phase also shared; shape-free joint (every amplitude free per condition,
lineshape, shift and phase shared by all conditions, one baseline per condition); the same
with a mono-exponential for the slowly diffusing macromolecules only (the default since
issue 13; no decay constraint, as when it was measured); the same with the free amplitudes
constrained to completely-monotone decays (the default since 2026-12-07; per gradient
direction on directional protocols)."""


def app_amplitude(fit, name: str) -> float:
    """A metabolite, a sum, or "MM" (the total of the MM components) from one condition."""
    from pipeline.fitting.conditions import mm_total

    if name == "MM":
        if "MM" in fit.names:
            return fit.amplitude("MM")
        total = mm_total(fit.names, fit.amplitudes, fit.covariance)
        return total[0] if total else float("nan")
    if name in fit.names or name in fit.sums:
        return fit.amplitude(name)
    return sum(fit.amplitude(m) for m in vs.SUMS.get(name, ()) if m in fit.names)


def fit_participant(runner, participant: Participant, overrides: dict):
    """Residual water removed per condition (app preprocessing), then ``fit_conditions`` with
    the app's basis and default options updated by ``overrides``. Returns (fits, seconds)."""
    import dataclasses
    import time

    from pipeline.fitting.conditions import fit_conditions
    from pipeline.preprocess.water import remove_residual_water

    start = time.perf_counter()
    pre = runner.preprocessing
    fids = participant.fids
    if pre.get("residual_water", True):  # as the app: the series on the lowest b's poles
        fids = remove_residual_water(fids, participant.dwell_s, participant.cf_mhz,
                                     window_ppm=pre["residual_water_window_ppm"],
                                     n_components=pre["residual_water_components"],
                                     reference_index=int(np.argmin(participant.b_ms_um2)))[0]
    options = dataclasses.replace(runner.options, **overrides)
    fits = fit_conditions(fids, runner.app_basis, participant.dwell_s, participant.cf_mhz,
                          participant.b_ms_um2 * 1000.0, options,
                          directions=participant.directions)
    return fits, time.perf_counter() - start


def score(fits, participant: Participant) -> dict:
    """Per scored name: decay errors (estimate - truth of S(b)/S(0), or of S(b, g)/S(0) along
    directions, at every b > 0 condition) and the relative error of the b = 0 ratio to tCr.
    A failed estimate counts as decay 0 / ratio error -1."""
    b0 = int(np.argmin(participant.b_ms_um2))
    out = {}
    for name in DECAY_NAMES:
        amps = np.array([app_amplitude(f, name) for f in fits.fits])
        est = amps / amps[b0] if amps[b0] > 0 else np.zeros_like(amps)
        est = np.where(np.isfinite(est), est, 0.0)
        keep = np.arange(amps.size) != b0
        out[f"decay_{name}"] = (est - participant.truth_decay(name))[keep]
    tcr = app_amplitude(fits.fits[b0], "tCr")
    for name in RATIO_NAMES:
        if not all(m in participant.truth_mm for m in vs.SUMS.get(name, (name,))):
            continue
        ratio = app_amplitude(fits.fits[b0], name) / tcr if tcr > 0 else float("nan")
        out[f"ratio_{name}"] = np.array([vs.relative_error(ratio,
                                                           participant.truth_ratio(name))])
    return out


def mono_bias(decay: np.ndarray, b_ms_um2: np.ndarray, b_max_ms_um2: float = 5.0) -> np.ndarray:
    """Noise-free error of S(b)/S(0) (b > 0) that a joint fit with a mono-exponential up to
    ``b_max`` (free amplitudes above, all divided by the fitted S0) makes on ``decay``: the
    least-squares S0 exp(-b D) through the covered points (D on a fine grid)."""
    b = np.asarray(b_ms_um2, float)
    covered = b <= b_max_ms_um2 + 1e-9
    best = (np.inf, 1.0, 0.0)
    for d in np.linspace(0.0, 0.5, 2001):
        f = np.exp(-b[covered] * d)
        s0 = float(f @ decay[covered] / (f @ f))
        cost = float(np.sum((decay[covered] - s0 * f) ** 2))
        if cost < best[0]:
            best = (cost, s0, d)
    _, s0, d = best
    est = np.where(covered, np.exp(-b * d), decay / s0)
    return (est - decay)[b > 0]
