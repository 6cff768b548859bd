"""Synthetic (d)MRS with ground truth: every accuracy claim of the project is checked on this.

``simulate_acquisition(basis, spec)`` builds, from a metabolite basis and a :class:`SyntheticSpec`,
a water-suppressed (d)MRS acquisition, the matching unsuppressed water reference, and a
JSON-serialisable truth dict. Model of one transient ``j`` of condition ``c`` on coil ``k``::

    clean_c(t)  = L(t) * [ sum_m A_mc * basis_m(t) + W_c * water_singlet(t) ]
    A_mc        = concentration_m * exp(-TE / T2_m) * S_m(b_c) / S_m(0)
    x_cj(t)     = clean_c(t) * o_cj * exp(+i(2 pi f_cj t + phi_cj)) * exp(+i phi_ec,c(t))
    y_cjk(t)    = s_k * x_cj(t) + n_cjk(t)

* ``L(t) = exp(-pi * lw_L * t) * exp(-(pi * lw_G * t)^2 / (4 ln 2))``: Lorentzian and Gaussian
  line broadening with FWHM ``lw_L``, ``lw_G`` in Hz, added to the basis lineshape.
* T2 enters only as the amplitude factor ``exp(-TE/T2)`` (the basis already holds the J-evolution
  at that TE); T1 effects (TR, STEAM mixing time) are not modelled.
* ``S_m(b)`` is the decay of the diffusion model named in the spec, computed by
  ``pipeline.diffusion.signals`` (b in ms/um^2, D in um^2/ms); directions do not change it (all
  models are isotropic or powder averages). Macromolecules default to a mono-exponential with
  ADC ``mm_adc_um2_ms``; residual water follows the water model.
* ``A_mc`` is on the basis scale: fitting ``clean_c`` with the same basis gives ``A_mc``.
* Drift (``_transients.tsv`` convention, input = corrected * exp(+i(2 pi f t + phi))): a random
  walk over all transients in acquisition order (condition after condition) plus independent
  jitter, for frequency (Hz) and phase (degrees).
* Eddy currents: ``phi_ec,c(t) = g_c * sum_i a_i exp(-t / tau_i)`` (rad), ``g_c = b_c / b_max``
  when ``eddy_scale_with_b`` else 1, the same on the water reference so Klose's correction removes it.
* Outliers (motion during the diffusion gradients): a linear phase ramp of total spread ``delta``
  across the voxel attenuates the signal by ``sinc(delta / 2)`` (``sin(x)/x``), with a random bulk
  phase; ``o_cj = |sinc| * exp(i theta)``, 1 for other transients.
* Coils: complex sensitivities ``s_k`` and complex Gaussian noise with covariance
  ``Sigma = E[n n^H]`` per time point.
* Residual water ``W_c``: a Lorentzian singlet at 4.65 ppm + offset with FID[0] = amplitude,
  decaying with the water diffusion model.
* Water reference: ``concentration * exp(-TE/T2_w) * S_w(b)`` times the basis' ``H2O`` entry
  (same sequence scaling as the metabolites) or, without one, a singlet with FID[0] = protons;
  same conditions, coils, noise covariance and eddy currents; no drift unless ``water_drift``.
* MM: basis entries ``Mac``/``MM``/``MM*`` (``mm_source="basis"``, e.g. a measured MM added to
  the basis) or ``pipeline.simulate.macromolecules.parametric_mm_basis`` (``"parametric"``),
  scaled by ``mm_amplitude`` unless listed in the concentrations.

SNR definition (stated in the truth too): ``SNR = H / sigma_avg`` where ``H`` is the maximum of
the real part of the spectrum (``pipeline.spectra.fid_to_spectrum``) of the *noiseless* clean b=0
signal (lowest b if no b=0) within ``snr_ppm_range`` (1.9-2.1 ppm, NAA), and ``sigma_avg`` is the
standard deviation of the real part of the noise in the spectrum of the *average of the
n_transients* transients after optimal (unit-gain, noise-whitened) coil combination. For one
coil of unit sensitivity, ``sigma_avg = sigma_t * sqrt(n_points / n_transients)``, where
``sigma_t`` (``truth['noise']['sd_per_transient']``) is the SD of the real (and of the imaginary)
part of one time-domain noise sample.

Clean signals are built in :mod:`pipeline.simulate.synthetic_signals`, acquisition effects
(drift, eddy currents, outliers, coils, noise) in :mod:`pipeline.simulate.synthetic_artefacts`;
this module holds the spec, the assembly and the ground truth. Public names of both are
importable from here too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..acquisition import Acquisition
from ..basis import Basis
from ..io.json_values import to_json_value
from .synthetic_artefacts import (  # noqa: F401  (public names re-exported from this module)
    SNR_DEFINITION, _complex_array, _noise_model, _transients, coil_model, complex_noise,
    drift_walk, eddy_gain, eddy_phase_rad, noise_covariance_for_snr, outlier_factors,
    reference_peak_height, transient_drifts)
from .synthetic_signals import (  # noqa: F401  (public names re-exported from this module)
    DIFFUSION_FUNCTIONS, WATER_NAMES, WATER_PPM, _concentrations, _diffusion_model, _model_basis,
    b0_amplitudes, clean_components, diffusion_decay, lineshape, t2_factor, true_amplitudes,
    water_shape)

from ..metabolites import METABOLITE_SUMS as SUMS  # noqa: E402  (one definition)
"""Metabolite sums reported beside the single metabolites (CONTRIBUTING.md)."""


def _default_water_diffusion() -> dict:
    return {"model": "biexponential",
            "params": {"fraction_fast": 0.85, "d_fast": 0.9, "d_slow": 0.12}}


@dataclass
class SyntheticSpec:
    """Ground-truth description of one synthetic (d)MRS acquisition (units in the names).

    ``diffusion`` maps a metabolite to ``{"model": name, "params": {...}}`` with a model name of
    :data:`DIFFUSION_FUNCTIONS` and the keyword parameters of that ``pipeline.diffusion.signals``
    function (D in um^2/ms, radius in um, gradient timings in ms). Metabolites not listed use
    ``default_diffusion``; MM entries not listed use a mono-exponential with ``mm_adc_um2_ms``.
    ``coil_sensitivities`` and ``noise_covariance`` take complex numbers or ``[re, im]`` pairs;
    when absent, they are drawn from the seed (``noise_covariance`` is then only a shape, scaled
    to reach the SNR). Build from JSON with :meth:`from_dict`.

    Less obvious fields: ``*_walk_*`` = SD of the random-walk step from one transient to the
    next, ``*_jitter_*`` = SD of the independent part; ``snr`` None = noiseless;
    ``outlier_fraction`` of the eligible transients (b > 0 unless ``outliers_at_b0``) become
    outliers, each with a phase spread drawn uniformly in ``outlier_spread_deg`` (amplitude
    factor |sinc(spread/2)|) and a bulk phase of SD ``outlier_bulk_phase_sd_deg``;
    ``eddy_*`` = amplitudes (rad) and time constants (s) of the eddy-current phase at b_max;
    ``water_concentration_mm`` = tissue water (LCModel's default 35880 mM);
    ``metadata`` = extra NIfTI-MRS header keys (e.g. RepetitionTime, MixingTime).
    """

    concentrations_mm: dict = field(default_factory=dict)
    b_values_s_mm2: list = field(default_factory=lambda: [0.0])
    directions: list | None = None
    n_transients: int = 16
    echo_time_s: float = 0.0
    t2_s: dict = field(default_factory=dict)
    default_t2_s: float | None = None
    diffusion: dict = field(default_factory=dict)
    default_diffusion: dict = field(
        default_factory=lambda: {"model": "monoexponential", "params": {"adc": 0.15}})
    mm_source: str = "auto"
    mm_amplitude: float = 1.0
    mm_adc_um2_ms: float = 0.008
    lorentzian_fwhm_hz: float = 3.0
    gaussian_fwhm_hz: float = 3.0
    residual_water_amplitude: float = 0.0
    residual_water_offset_hz: float = 0.0
    residual_water_fwhm_hz: float = 8.0
    freq_walk_hz: float = 0.0
    freq_jitter_hz: float = 0.0
    phase_walk_deg: float = 0.0
    phase_jitter_deg: float = 0.0
    snr: float | None = None
    snr_ppm_range: tuple = (1.9, 2.1)
    n_coils: int = 1
    coil_sensitivities: list | None = None
    noise_covariance: list | None = None
    coil_noise_correlation: float = 0.0
    eddy_amplitudes_rad: list = field(default_factory=list)
    eddy_time_constants_s: list = field(default_factory=list)
    eddy_scale_with_b: bool = True
    outlier_fraction: float = 0.0
    outlier_spread_deg: tuple = (180.0, 400.0)
    outlier_bulk_phase_sd_deg: float = 60.0
    outliers_at_b0: bool = False
    water_reference: bool = True
    water_n_transients: int = 4
    water_concentration_mm: float = 35880.0
    water_protons: int = 2
    water_t2_s: float | None = 0.11
    water_diffusion: dict = field(default_factory=_default_water_diffusion)
    water_fwhm_hz: float = 5.0
    water_drift: bool = False
    seed: int = 0
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict, source: str = "synthetic spec") -> "SyntheticSpec":
        """Spec from a plain dict (e.g. parsed JSON/TOML); unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown synthetic-spec keys {unknown}")
        spec = cls(**values)
        spec.validate(source)
        return spec

    def to_dict(self) -> dict:
        """JSON-serialisable copy (complex numbers as ``[re, im]``)."""
        return to_json_value(dataclasses.asdict(self))

    def validate(self, source: str = "synthetic spec") -> None:
        """Raise ``ValueError`` (naming ``source``) on inconsistent or out-of-range values."""
        n_cond = len(self.b_values_s_mm2)
        problems = []
        if n_cond == 0:
            problems.append("b_values_s_mm2 is empty")
        if self.directions is not None and len(self.directions) != n_cond:
            problems.append(f"{len(self.directions)} directions for {n_cond} b-values")
        if self.n_transients < 1 or self.water_n_transients < 1 or self.n_coils < 1:
            problems.append("n_transients, water_n_transients and n_coils must be >= 1")
        if any(b < 0 for b in self.b_values_s_mm2):
            problems.append("negative b-value")
        if self.snr is not None and not self.snr > 0:
            problems.append(f"snr must be positive or null, got {self.snr}")
        if not 0 <= self.outlier_fraction <= 1:
            problems.append(f"outlier_fraction {self.outlier_fraction} outside [0, 1]")
        if len(self.eddy_amplitudes_rad) != len(self.eddy_time_constants_s):
            problems.append("eddy_amplitudes_rad and eddy_time_constants_s differ in length")
        if self.mm_source not in ("auto", "basis", "parametric", "none"):
            problems.append(f"mm_source {self.mm_source!r} not in auto/basis/parametric/none")
        if self.coil_sensitivities is not None and len(self.coil_sensitivities) != self.n_coils:
            problems.append(f"{len(self.coil_sensitivities)} coil sensitivities for "
                            f"{self.n_coils} coils")
        if self.noise_covariance is not None and np.shape(
                _complex_array(self.noise_covariance, 2)) != (self.n_coils, self.n_coils):
            problems.append(f"noise_covariance is not {self.n_coils}x{self.n_coils}")
        for name, model in {**self.diffusion, "default": self.default_diffusion,
                            "water": self.water_diffusion}.items():
            if model.get("model") not in DIFFUSION_FUNCTIONS:
                problems.append(f"diffusion model {model.get('model')!r} of {name} is not one "
                                f"of {sorted(DIFFUSION_FUNCTIONS)}")
        if problems:
            raise ValueError(f"{source}: " + "; ".join(problems))


@dataclass
class SyntheticResult:
    """Output of :func:`simulate_acquisition`.

    ``components`` holds the noiseless clean signal of each part (basis entries, ``"water"`` for
    residual water) per condition, shape ``(n_conditions, n_points)``, already broadened and
    scaled: their sum is the clean signal before drift, eddy currents, outliers, coils and noise.
    """

    metabolite: Acquisition
    water: Acquisition | None
    truth: dict
    components: dict = field(default_factory=dict)


def _directions(spec: SyntheticSpec) -> np.ndarray:
    n = len(spec.b_values_s_mm2)
    out = np.full((n, 3), np.nan)
    for i, d in enumerate(spec.directions or [None] * n):
        if d is not None:
            vec = np.asarray(d, dtype=float)
            out[i] = vec / np.linalg.norm(vec)
    return out


def _sum_truth(amplitudes: dict) -> dict:
    """Amplitudes of the sums tNAA, tCr, tCho, Glx from those members present."""
    out = {}
    for total, members in SUMS.items():
        present = [m for m in members if m in amplitudes]
        if present:
            out[total] = sum(amplitudes[m] for m in present)
    return out


def _decays(amplitudes: dict, amplitudes_b0: dict) -> dict:
    """S(b)/S(0) of each amplitude series (NaN where the b = 0 amplitude is zero)."""
    return {n: (a / amplitudes_b0[n] if amplitudes_b0[n] else np.full_like(a, np.nan))
            for n, a in amplitudes.items()}


def simulate_acquisition(basis: Basis, spec: SyntheticSpec | dict) -> SyntheticResult:
    """Synthetic (d)MRS acquisition, water reference and ground truth (see the module docstring).

    Deterministic for ``spec.seed``: independent random streams (drift, outliers, coils,
    metabolite noise, water noise) are spawned from it, so switching one effect off leaves the
    others' random draws unchanged.
    """
    if isinstance(spec, dict):
        spec = SyntheticSpec.from_dict(spec)
    spec.validate()
    b = np.asarray(spec.b_values_s_mm2, dtype=float)
    rng_drift, rng_outlier, rng_coil, rng_noise, rng_water = [
        np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(5)]
    model, mm_source = _model_basis(basis, spec)
    concentrations = _concentrations(model, spec)
    amplitudes_b0 = b0_amplitudes(spec, concentrations)
    amplitudes = true_amplitudes(spec, amplitudes_b0)
    components = clean_components(model, amplitudes, spec)
    clean = sum(components.values()) if components else np.zeros((b.size, model.n_points),
                                                                 dtype=complex)
    n_cond, n_trans = b.size, spec.n_transients
    freq_hz, phase_deg = transient_drifts(rng_drift, n_cond, n_trans, spec)
    factors, outliers = outlier_factors(rng_outlier, n_cond, n_trans, spec)
    sens, cov_shape = coil_model(rng_coil, spec)
    eddy_rad = eddy_phase_rad(model.n_points, model.dwell_s, spec)
    fids = _transients(clean, model.dwell_s, freq_hz, phase_deg, eddy_rad, factors, sens)

    covariance, noise_truth = _noise_model(clean[int(np.argmin(b))], model, spec, sens,
                                           cov_shape)
    if spec.snr is not None:
        fids = fids + complex_noise(rng_noise, covariance, fids.shape[:2] + (model.n_points,))

    directions = _directions(spec)
    metadata = {"EchoTime": spec.echo_time_s, "SpectrometerFrequency": [model.cf_mhz],
                "ResonantNucleus": [basis.nucleus], "WaterSuppressed": True, **spec.metadata}
    metabolite = Acquisition(fids, model.dwell_s, model.cf_mhz, b, directions,
                             nucleus=basis.nucleus, ref_ppm=model.ref_ppm, metadata=metadata,
                             source="synthetic metabolite")
    water, water_truth = _water_reference(basis, spec, sens, covariance, eddy_rad,
                                          rng_water)

    sums, sums_b0 = _sum_truth(amplitudes), _sum_truth(amplitudes_b0)
    truth = to_json_value({
        "generator": "dmrs-bids pipeline.simulate.synthetic.simulate_acquisition",
        "seed": spec.seed,
        "spec": spec.to_dict(),
        "conventions": {
            "amplitudes": "basis scale: concentration * exp(-TE/T2) * S(b)/S(0); fitting the "
                          "clean signal with the same basis returns them",
            "t2": "amplitude factor exp(-TE/T2) only; T1/mixing-time effects not modelled",
            "drift": "input = corrected * exp(+i(2*pi*freq_hz*t + phase_deg*pi/180))",
            "b_values": "s/mm^2 (1 ms/um^2 = 1000 s/mm^2); diffusivities in um^2/ms",
            "noise_covariance": "E[n n^H] per time-domain point of one transient, coils x coils",
            "eddy_current_phase": "rad, phi(t) = gain_c * sum_i a_i exp(-t/tau_i), applied as "
                                  "exp(+i phi) to metabolite and water reference alike",
        },
        "basis": {"names": model.names, "cf_mhz": model.cf_mhz, "dwell_s": model.dwell_s,
                  "n_points": model.n_points, "provenance": basis.provenance},
        "mm_source": mm_source,
        "b_values_s_mm2": b,
        "directions": [None if np.isnan(d).any() else d for d in directions],
        "concentrations_mm": concentrations,
        "amplitudes": {**amplitudes, **sums},
        "decays": _decays({**amplitudes, **sums}, {**amplitudes_b0, **sums_b0}),
        "diffusion": {n: _diffusion_model(n, spec) for n in amplitudes},
        "residual_water_amplitude": (components["water"][:, 0].real
                                     if "water" in components else np.zeros(n_cond)),
        "linewidths": {"lorentzian_fwhm_hz": spec.lorentzian_fwhm_hz,
                       "gaussian_fwhm_hz": spec.gaussian_fwhm_hz},
        "drifts": {"freq_hz": freq_hz, "phase_deg": phase_deg,
                   "order": "condition after condition, transients in order"},
        "outliers": outliers,
        "outlier_indices": [[o["condition"], o["transient"]] for o in outliers],
        "noise": noise_truth,
        "coils": {"sensitivities": sens, "noise_covariance": covariance},
        "eddy_current": {"amplitudes_rad": spec.eddy_amplitudes_rad,
                         "time_constants_s": spec.eddy_time_constants_s,
                         "gain_per_condition": eddy_gain(spec)},
        "water_reference": water_truth,
    })
    return SyntheticResult(metabolite, water, truth, components)


def _water_reference(basis: Basis, spec: SyntheticSpec, sens: np.ndarray,
                     covariance: np.ndarray, eddy_rad: np.ndarray,
                     rng: np.random.Generator) -> tuple[Acquisition | None, dict]:
    """Unsuppressed water with the same conditions, coils, noise and eddy currents."""
    if not spec.water_reference:
        return None, {}
    n_cond, n_trans = len(spec.b_values_s_mm2), spec.water_n_transients
    decay = diffusion_decay(spec.b_values_s_mm2, spec.water_diffusion)
    amplitude = (spec.water_concentration_mm * t2_factor(spec.echo_time_s, spec.water_t2_s)
                 * decay)
    shape, shape_source = water_shape(basis, spec)
    clean = amplitude[:, None] * shape[None, :]
    if spec.water_drift:
        freq_hz, phase_deg = transient_drifts(rng, n_cond, n_trans, spec)
    else:
        freq_hz = phase_deg = np.zeros((n_cond, n_trans))
    fids = _transients(clean, basis.dwell_s, freq_hz, phase_deg, eddy_rad,
                       np.ones((n_cond, n_trans), dtype=complex), sens)
    if np.any(covariance):
        fids = fids + complex_noise(rng, covariance, fids.shape[:2] + (basis.n_points,))
    metadata = {"EchoTime": spec.echo_time_s, "SpectrometerFrequency": [basis.cf_mhz],
                "ResonantNucleus": [basis.nucleus], **spec.metadata, "WaterSuppressed": False}
    water = Acquisition(fids, basis.dwell_s, basis.cf_mhz, spec.b_values_s_mm2,
                        _directions(spec), nucleus=basis.nucleus, ref_ppm=basis.ref_ppm,
                        metadata=metadata, source="synthetic water reference")
    truth = {"amplitudes": amplitude, "decays": decay, "diffusion": spec.water_diffusion,
             "amplitude_definition": "water concentration (mM) * exp(-TE/T2) * S(b)/S(0), "
                                     "scaling the water FID per 1 mM (shape)",
             "shape": shape_source, "concentration_mm": spec.water_concentration_mm,
             "t2_s": spec.water_t2_s, "fwhm_hz": spec.water_fwhm_hz,
             "drifts": {"freq_hz": freq_hz, "phase_deg": phase_deg}}
    return water, truth
