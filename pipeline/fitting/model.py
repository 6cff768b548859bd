"""The frequency-domain linear-combination model: basis on the data grid, Voigt lineshape per
group, shift per group, zero/first-order phase, and its analytic derivatives.

Non-linear parameters ``theta`` are laid out as
``[damp_g (1/s) x n_groups, gauss_g (1/s^2) x n_groups, shift_g (Hz) x n_groups, phi0 (rad),
phi1 (s), delta_m (Hz) x n_own_shift]`` (``phi1`` only when first-order phase is fitted;
``delta_m`` only with ``FitOptions.metabolite_shift_sd_ppm`` > 0: a small shift of each metabolite
entry around its group's shift, as LCModel allows, because measured singlets sit a few
thousandths of a ppm off a simulated basis). A basis FID ``b_m(t)`` of group ``g`` becomes
``b_m(t) exp(-damp_g t - gauss_g t^2 + 2i pi (shift_g + delta_m) t)``; the spectrum is then
multiplied by ``exp(i (phi0 + 2 pi (f - f_c) phi1))`` with ``f_c`` the window centre (Hz).
A Lorentzian FWHM of L Hz is ``damp = pi L``; a Gaussian FWHM of G Hz is
``gauss = (pi G)^2 / (4 ln 2)``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..basis import Basis
from ..io.basis_tools import resample_basis
from ..spectra import exp_series, frequency_axis_hz, ppm_axis, ppm_window_mask, time_axis_s
from .baseline import baseline_design
from .options import LCMODEL_SHIFT_SD_FACTORS, FitOptions, is_lipid_name, is_mm_name
from .window_lines import metabolites_without_window_lines

GAUSS_PER_FWHM2 = np.pi ** 2 / (4.0 * np.log(2.0))
OWN_SHIFT_LIMIT_SD = 4.0
"""Hard limit of a per-metabolite shift, in prior SDs (``metabolite_shift_sd_ppm``, or the
metabolite's own SD where ``metabolite_shift_sd_factors`` makes it larger)."""
MIN_WINDOW_ENERGY = 1e-3
"""Basis entries with less than this fraction of their spectral energy in the window have no
signal there: they are left out with a warning."""
MIN_NUISANCE_WINDOW_ENERGY = 0.25
"""Macromolecule and lipid entries with less than this fraction of their spectral energy in
the window are fitted but not reported (``FitProblem.unmeasured``): only a tail of them lies
in the window, so their amplitude is set by whatever else lies at its edge. The default
parametric MM42 (4.20 ppm; 6 % of its energy inside 0.2-4.0 ppm) took up the residual water's
tail in the demo: 1279 against its truth 4, the MM total 215 x tCr and an MM ADC marked valid,
every QC flag passing. Left out of the fit instead, the fits got worse on the independent dMRS
set (7 T Tau decay error 0.142 -> 0.212, b = 0 tNAA/tCr 0.075 -> 0.125): as a nuisance it
models what lies beyond the edge. Metabolite entries are far above this fraction (lowest: Ins
at 7 T, 0.55, with its 4.05 ppm line outside)."""


def lorentz_fwhm_to_damp(fwhm_hz):
    return np.pi * np.asarray(fwhm_hz, dtype=float)


def gauss_fwhm_to_rate(fwhm_hz):
    return GAUSS_PER_FWHM2 * np.asarray(fwhm_hz, dtype=float) ** 2


def damp_to_lorentz_fwhm(damp):
    return np.asarray(damp, dtype=float) / np.pi


def gauss_rate_to_fwhm(rate):
    return np.sqrt(np.maximum(np.asarray(rate, dtype=float), 0.0) / GAUSS_PER_FWHM2)


@dataclass
class FitProblem:
    """Everything fixed during a fit: basis on the data grid, window, groups, baseline design."""

    names: list
    basis_fids: np.ndarray        # (n_metab, n_points) on the data grid
    group_of: np.ndarray          # (n_metab,) group index of each metabolite
    group_names: list
    dwell_s: float
    cf_mhz: float
    ref_ppm: float
    t_s: np.ndarray
    window: np.ndarray            # spectral bin indices (fftshifted order) inside ppm_range
    fft_index: np.ndarray         # the same bins as indices into an unshifted FFT
    freq_window_hz: np.ndarray
    ppm_window: np.ndarray
    centre_hz: float
    column_norms: np.ndarray      # norm of each unbroadened basis spectrum over the window
    baseline_matrix: np.ndarray   # (n_window, n_coef) real
    baseline_penalty: np.ndarray  # (n_pen, n_coef) real
    fit_phase1: bool
    lower: np.ndarray
    upper: np.ndarray
    dropped: list = field(default_factory=list)
    """Warnings for basis entries left out because they have no signal in the fit window."""
    own_shift: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    """Metabolite indices with their own small shift ``delta_m`` (after phi0/phi1 in theta)."""
    unmeasured: list = field(default_factory=list)
    """Macromolecule/lipid entries mostly outside the window (``MIN_NUISANCE_WINDOW_ENERGY``):
    fitted, as nuisance, but their amplitudes are not measurements and are not reported."""
    baseline_stiffness: float = 0.0
    """Stiffness the spline penalty rows were built with (``baseline.baseline_design``); 0 when
    they are not a stiffness penalty (no spline, or a curvature prior)."""
    kernel_t: np.ndarray | None = None
    """Free-form lineshape kernel as a time-domain factor (the FT of a spectral convolution
    kernel of unit area) applied to every metabolite entry (not MM or lipids) on top of the
    group's Voigt; ``None`` = none (``FitOptions.lineshape_kernel_hz``, ``kernel.py``)."""
    _kernel_basis: np.ndarray | None = field(default=None, init=False, repr=False,
                                             compare=False)

    def kernel_basis(self) -> np.ndarray:
        """Basis FIDs with ``kernel_t`` applied to the metabolite rows, computed once per
        problem (``dataclasses.replace`` with a new kernel starts a new cache)."""
        if self.kernel_t is None:
            return self.basis_fids
        if self._kernel_basis is None:
            fids = self.basis_fids.copy()
            fids[kernel_rows(self.names)] *= self.kernel_t
            self._kernel_basis = fids
        return self._kernel_basis

    @property
    def n_metab(self) -> int:
        return len(self.names)

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_points(self) -> int:
        return self.t_s.size

    @property
    def n_base_theta(self) -> int:
        """Parameters before the per-metabolite shifts: widths, group shifts, phases."""
        return 3 * self.n_groups + 1 + int(self.fit_phase1)

    @property
    def n_theta(self) -> int:
        return self.n_base_theta + self.own_shift.size

    def theta_names(self) -> list:
        out = []
        for kind in ("damp", "gauss", "shift_hz"):
            out += [f"{kind}[{g}]" for g in self.group_names]
        out.append("phi0")
        if self.fit_phase1:
            out.append("phi1")
        return out + [f"shift_hz[{self.names[m]}]" for m in self.own_shift]

    def split(self, theta: np.ndarray):
        """(damp, gauss, shift_hz, phi0, phi1) from a parameter vector."""
        k = self.n_groups
        phi1 = theta[3 * k + 1] if self.fit_phase1 else 0.0
        return theta[:k], theta[k:2 * k], theta[2 * k:3 * k], theta[3 * k], phi1


def basis_on_data_grid(basis: Basis, dwell_s: float, n_points: int, cf_mhz: float,
                       ref_ppm: float) -> np.ndarray:
    """Basis FIDs sampled like the data (same dwell, length, centre frequency, reference).

    Same dwell: truncate or zero-fill. Otherwise ``pipeline.io.basis_tools.resample_basis``
    resamples (keeping the basis field when it is within 0.01 % of the data's, so J-couplings
    are not rescaled for a rounding difference). A different ``ref_ppm`` is corrected by a
    frequency shift so that every resonance lands at its chemical shift on the data's ppm axis.
    """
    fids = basis.fids
    basis_ref = basis.ref_ppm
    basis_cf = basis.cf_mhz
    if not np.isclose(basis.dwell_s, dwell_s, rtol=1e-4):
        same_field = np.isclose(basis.cf_mhz, cf_mhz, rtol=1e-4)  # keep J-couplings untouched
        resampled = resample_basis(basis, dwell_s, n_points, basis.cf_mhz if same_field else cf_mhz)
        fids, basis_ref, basis_cf = resampled.fids, resampled.ref_ppm, resampled.cf_mhz
    out = np.zeros((fids.shape[0], n_points), dtype=complex)
    n_copy = min(n_points, fids.shape[1])
    out[:, :n_copy] = fids[:, :n_copy]
    if not np.isclose(basis_ref, ref_ppm):
        t = time_axis_s(n_points, dwell_s)
        out *= np.exp(2j * np.pi * (ref_ppm - basis_ref) * basis_cf * t)
    return out


def default_lineshape_group(name: str, mm_lineshape: str = "shared") -> str:
    """Lineshape group of a basis entry not named in ``lineshape_groups``: ``mm`` for every MM
    entry, or with ``mm_lineshape = "per_entry"`` a group ``mm:<name>`` of its own."""
    if is_mm_name(name):
        return f"mm:{name}" if mm_lineshape == "per_entry" else "mm"
    return "lipids" if is_lipid_name(name) else "metabolites"


def lineshape_groups(names: list, groups: dict,
                     mm_lineshape: str = "shared") -> tuple[np.ndarray, list]:
    """Group index per metabolite: explicit groups first, then ``metabolites``, ``mm`` (or one
    group per MM entry) and ``lipids``."""
    assigned = {}
    for group, members in groups.items():
        for name in members:
            assigned[name] = group
    group_names = []
    group_of = []
    for name in names:
        group = assigned.get(name, default_lineshape_group(name, mm_lineshape))
        if group not in group_names:
            group_names.append(group)
        group_of.append(group_names.index(group))
    return np.asarray(group_of, dtype=int), group_names


def build_problem(basis: Basis, dwell_s: float, n_points: int, cf_mhz: float,
                  options: FitOptions, ref_ppm: float | None = None) -> FitProblem:
    """Prepare the fixed parts of the model once (resampled basis, window, baseline design)."""
    ref_ppm = basis.ref_ppm if ref_ppm is None else ref_ppm
    if options.metabolites:
        basis = basis.subset(options.metabolites)
    fids = basis_on_data_grid(basis, dwell_s, n_points, cf_mhz, ref_ppm)
    if options.basis_window_ppm:
        fids = metabolites_without_window_lines(fids, basis.names, dwell_s, cf_mhz,
                                                options.basis_window_ppm, ref_ppm)
    ppm = ppm_axis(n_points, dwell_s, cf_mhz, ref_ppm)
    window = np.flatnonzero(ppm_window_mask(ppm, *options.ppm_range))
    if window.size < 8:
        raise ValueError(f"fit window {options.ppm_range} ppm holds only {window.size} points "
                         f"of a spectrum spanning {ppm.min():.2f}..{ppm.max():.2f} ppm")
    fft_index = (window - n_points // 2) % n_points
    freq = frequency_axis_hz(n_points, dwell_s)[window]
    full = np.fft.fft(fids, axis=-1)
    norms = np.linalg.norm(full[:, fft_index], axis=1)
    energy_fraction = norms ** 2 / np.maximum(np.sum(np.abs(full) ** 2, axis=1), 1e-300)
    empty = [basis.names[i] for i in np.flatnonzero(energy_fraction < MIN_WINDOW_ENERGY)]
    dropped = []
    if empty:
        if len(empty) == len(basis.names):
            raise ValueError(f"basis entries {empty}: no signal inside {options.ppm_range} "
                             "ppm in any of them")
        dropped.append(f"basis entries {empty} have no signal inside {options.ppm_range} ppm "
                       "(fitting.ppm_range) and were left out of the fit")
        warnings.warn(dropped[-1], stacklevel=2)
        keep = [i for i, name in enumerate(basis.names) if name not in empty]
        basis = basis.subset([basis.names[i] for i in keep])
        fids, full, norms = fids[keep], full[keep], norms[keep]
        energy_fraction = energy_fraction[keep]
    unmeasured = [n for n, f in zip(basis.names, energy_fraction)
                  if f < MIN_NUISANCE_WINDOW_ENERGY and (is_mm_name(n) or is_lipid_name(n))]
    group_of, group_names = lineshape_groups(basis.names, options.lineshape_groups,
                                               options.mm_lineshape)
    unknown = sorted({m for members in options.lineshape_groups.values() for m in members}
                     - set(basis.names))
    if unknown:
        warnings.warn(f"lineshape_groups: {unknown} name no entry of the basis fitted "
                      f"({', '.join(basis.names)}); ignored", stacklevel=2)
    own_shift = (kernel_rows(basis.names) if options.metabolite_shift_sd_ppm > 0
                 else np.zeros(0, dtype=int))
    unmatched = unmatched_shift_sd_names(basis.names, own_shift, options)
    if unmatched:
        warnings.warn(f"metabolite_shift_sd_factors: {unmatched} name no metabolite entry of "
                      f"the basis with its own shift ({', '.join(basis.names)}); ignored",
                      stacklevel=2)
    design, penalty = baseline_design(ppm[window], options.baseline, options.baseline_order,
                                      options.spline_knot_spacing_ppm,
                                      options.baseline_stiffness)
    problem = FitProblem(
        names=list(basis.names), basis_fids=fids, group_of=group_of, group_names=group_names,
        dwell_s=dwell_s, cf_mhz=cf_mhz, ref_ppm=ref_ppm, t_s=time_axis_s(n_points, dwell_s),
        window=window, fft_index=fft_index, freq_window_hz=freq, ppm_window=ppm[window],
        centre_hz=float(0.5 * (freq.min() + freq.max())), column_norms=norms,
        baseline_matrix=design, baseline_penalty=penalty, fit_phase1=options.first_order_phase,
        lower=np.empty(0), upper=np.empty(0), dropped=dropped, own_shift=own_shift,
        unmeasured=unmeasured,
        baseline_stiffness=options.baseline_stiffness if options.baseline == "spline" else 0.0)
    problem.lower, problem.upper = theta_bounds(problem, options)
    return problem


def for_new_spectrum(problem: FitProblem, options: FitOptions) -> FitProblem:
    """A prepared ``problem`` as the fit of another spectrum starts from it.

    A fit's final problem (``SpectralFit.extra["problem"]``) carries what was chosen for that
    spectrum: its lineshape kernel, its spline stiffness and its shift bounds centred on its
    singlets. Each is chosen again for the new spectrum, so they go back to ``options``' (no
    kernel, ``baseline_stiffness``, ``theta_bounds``); a problem from :func:`build_problem`
    is returned as it is. Reusing a fit's problem without this started the next spectrum's
    stiffness search from the previous choice (the grid then meant other stiffnesses) and
    fitted it with the previous spectrum's kernel.
    """
    changes = {}
    if problem.kernel_t is not None:
        changes["kernel_t"] = None
    target = options.baseline_stiffness
    if 0 < problem.baseline_stiffness != target and target > 0:
        changes["baseline_penalty"] = (problem.baseline_penalty
                                       * np.sqrt(target / problem.baseline_stiffness))
        changes["baseline_stiffness"] = target
    lower, upper = theta_bounds(problem, options)
    if not (np.array_equal(lower, problem.lower) and np.array_equal(upper, problem.upper)):
        changes["lower"], changes["upper"] = lower, upper
    return dataclasses.replace(problem, **changes) if changes else problem


def theta_bounds(problem: FitProblem, options: FitOptions) -> tuple[np.ndarray, np.ndarray]:
    """Box bounds of the non-linear parameters."""
    k = problem.n_groups
    shift_hz = options.max_shift_ppm * problem.cf_mhz
    span_hz = float(np.ptp(problem.freq_window_hz)) or 1.0
    lower = np.concatenate([np.zeros(k), np.zeros(k), np.full(k, -shift_hz), [-np.inf]])
    upper = np.concatenate([np.full(k, lorentz_fwhm_to_damp(options.max_lorentz_hz)),
                            np.full(k, gauss_fwhm_to_rate(options.max_gauss_hz)),
                            np.full(k, shift_hz), [np.inf]])
    if problem.fit_phase1:
        lower = np.append(lower, -0.5 / span_hz)
        upper = np.append(upper, 0.5 / span_hz)
    # never tighter than at the default SD: a tighter prior pulls, it does not clip (at 4 x
    # 0.002 ppm the NAA shift of the 7 T in-vivo b = 0 spectrum ended at its limit)
    own_hz = OWN_SHIFT_LIMIT_SD * np.maximum(own_shift_sd_hz(problem, options),
                                             options.metabolite_shift_sd_ppm * problem.cf_mhz)
    return np.concatenate([lower, -own_hz]), np.concatenate([upper, own_hz])


def own_shift_sd_hz(problem: FitProblem, options: FitOptions) -> np.ndarray:
    """Prior SD (Hz) of each per-metabolite shift (``problem.own_shift`` order):
    ``metabolite_shift_sd_ppm`` times the metabolite's ``metabolite_shift_sd_factors`` entry (1
    when it has none)."""
    factors = [options.metabolite_shift_sd_factors.get(problem.names[i], 1.0)
               for i in problem.own_shift]
    return np.asarray(factors, dtype=float) * options.metabolite_shift_sd_ppm * problem.cf_mhz


def unmatched_shift_sd_names(names: list, own_shift: np.ndarray, options: FitOptions) -> list:
    """Names in ``metabolite_shift_sd_factors`` that give no own shift of this basis (a typo,
    an MM or lipid entry, or one absent), LCModel's defaults for absent entries excepted."""
    own = {names[i] for i in own_shift}
    return sorted(set(options.metabolite_shift_sd_factors) - own - set(LCMODEL_SHIFT_SD_FACTORS))


def own_shift_sd_record(problem: FitProblem, options: FitOptions) -> dict:
    """``{metabolite: prior SD (ppm) of its own shift}`` as ``fit.json`` records it (empty
    without own shifts), for the methods text."""
    sd_ppm = own_shift_sd_hz(problem, options) / problem.cf_mhz
    return {problem.names[i]: round(float(v), 6) for i, v in zip(problem.own_shift, sd_ppm)}


def modulated_fids(problem: FitProblem, theta: np.ndarray) -> np.ndarray:
    """Basis FIDs with each group's Voigt damping and frequency shift applied (plus each
    metabolite's own shift and the lineshape kernel when the problem has them).

    The frequency factor is one :func:`~pipeline.spectra.exp_series` row per metabolite (group
    shift + own shift), the damping a real exponential per group."""
    damp, gauss, shift, _, _ = problem.split(theta)
    t = problem.t_s
    decay = np.exp(-damp[:, None] * t - gauss[:, None] * t ** 2)
    if not problem.own_shift.size:  # one frequency per group
        env = exp_series(2j * np.pi * np.asarray(shift, dtype=float), problem.dwell_s,
                         problem.n_points)
        env *= decay
        return problem.kernel_basis() * env[problem.group_of]
    freq_hz = np.asarray(shift, dtype=float)[problem.group_of]
    freq_hz[problem.own_shift] += theta[problem.n_base_theta:problem.n_theta]
    env = exp_series(2j * np.pi * freq_hz, problem.dwell_s, problem.n_points)
    env *= decay[problem.group_of]
    env *= problem.kernel_basis()
    return env


def kernel_rows(names: list) -> np.ndarray:
    """Indices of the metabolite entries (not MM, not lipids): those the free-form lineshape
    kernel applies to and those that get their own shift."""
    return np.array([i for i, n in enumerate(names) if not (is_mm_name(n) or is_lipid_name(n))],
                    dtype=int)


def phase_factor(problem: FitProblem, theta: np.ndarray, freq_hz: np.ndarray) -> np.ndarray:
    _, _, _, phi0, phi1 = problem.split(theta)
    return np.exp(1j * (phi0 + 2 * np.pi * (freq_hz - problem.centre_hz) * phi1))


def metabolite_columns(problem: FitProblem, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised complex columns ``(n_metab, n_window)`` and the modulated FIDs."""
    spectra, fids = unphased_columns(problem, theta)
    return spectra * phase_factor(problem, theta, problem.freq_window_hz), fids


def unphased_columns(problem: FitProblem, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`metabolite_columns` before the zero- and first-order phase (which do not enter
    them: callers varying only the phases reuse them) and the modulated FIDs."""
    fids = modulated_fids(problem, theta)
    spectra = np.fft.fft(fids, axis=-1)[:, problem.fft_index]
    spectra /= problem.column_norms[:, None]
    return spectra, fids


def theta_derivatives(problem: FitProblem, theta: np.ndarray, fids: np.ndarray,
                      scaled_amplitudes: np.ndarray, model: np.ndarray) -> np.ndarray:
    """d(model)/d(theta) over the window, complex ``(n_theta, n_window)``.

    ``model`` is the metabolite part of the model (phase applied); ``scaled_amplitudes`` are the
    coefficients of the normalised columns. The Lorentzian-width and shift rows of a group are
    multiples of one FFT (``-t`` and ``2i pi t`` times its FID), so each group takes two FFTs
    (``t`` and ``t^2``) and each per-metabolite shift one, skipped when its amplitude is 0 (the
    row is then exactly 0).
    """
    k = problem.n_groups
    t = problem.t_s
    weights = scaled_amplitudes / problem.column_norms
    indicator = problem.group_of[None, :] == np.arange(k)[:, None]
    t_group = t * ((indicator * weights[None, :]) @ fids)
    own = problem.own_shift
    live = weights[own] != 0
    stacked = np.concatenate([t_group, t * t_group, t * fids[own[live]]])
    phase = phase_factor(problem, theta, problem.freq_window_hz)
    spectra = np.fft.fft(stacked, axis=-1)[:, problem.fft_index] * phase
    rows = [-spectra[:k], -spectra[k:2 * k], 2j * np.pi * spectra[:k], 1j * model[None, :]]
    if problem.fit_phase1:
        rows.append((2j * np.pi * (problem.freq_window_hz - problem.centre_hz) * model)[None, :])
    if own.size:
        own_rows = np.zeros((own.size, problem.window.size), dtype=complex)
        own_rows[live] = (2j * np.pi * weights[own[live]])[:, None] * spectra[2 * k:]
        rows.append(own_rows)
    return np.concatenate(rows)


def full_component_spectra(problem: FitProblem, theta: np.ndarray) -> np.ndarray:
    """Unnormalised per-metabolite spectra over all bins (fftshifted), phase applied."""
    fids = modulated_fids(problem, theta)
    spectra = np.fft.fftshift(np.fft.fft(fids, axis=-1), axes=-1)
    freq = frequency_axis_hz(problem.n_points, problem.dwell_s)
    return spectra * phase_factor(problem, theta, freq)


def baseline_blocks(problem: FitProblem) -> tuple[np.ndarray, np.ndarray]:
    """Real-stacked baseline columns ``(2W, 2k)`` and penalty rows ``(2p, 2k)``."""
    design, penalty = problem.baseline_matrix, problem.baseline_penalty
    zero_d, zero_p = np.zeros_like(design), np.zeros_like(penalty)
    columns = np.block([[design, zero_d], [zero_d, design]])
    rows = np.block([[penalty, zero_p], [zero_p, penalty]])
    return columns, rows


def real_stack(z: np.ndarray) -> np.ndarray:
    """Complex array (..., n) -> real (..., 2n): real parts then imaginary parts."""
    return np.concatenate([z.real, z.imag], axis=-1)
