"""Fit settings as one declarative dataclass, constructible from a plain dict (a TOML table)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..metabolites import FIT_WINDOW_PPM

BASELINE_KINDS = ("poly", "spline", "none")
MM_MODES = ("free", "fixed_shape_from_highest_b")
MM_LINESHAPES = ("shared", "per_entry")
FIT_MODES = ("sequential", "joint")
NOISE_SOURCES = ("residual", "region")
SHARING_KEYS = ("lineshape", "shift", "phase")
MM_PREFIXES = ("MM", "Mac", "mac", "mm")
LIPID_PREFIXES = ("Lip",)
DECAY_CONSTRAINTS = ("none", "completely_monotone")
LCMODEL_SHIFT_SD_FACTORS = {"NAA": 0.5, "NAAG": 0.5, "Cho": 2.0}
"""LCModel's own shift SDs (``ALSDSH``: NAA and NAAG 0.002 ppm, free choline 0.008 ppm; ``BLOCK
DATA`` of ``LCModel.f``) as multiples of its ``DESDSH`` (0.004 ppm), the SD of the rest."""
STIFFNESS_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0,
                  1000.0, 3000.0, 10000.0)
"""Default spline stiffnesses the criterion chooses from: steps of about 3, from 0.001 (the
most flexible measured against LCModel on real spectra; 0.0003 bent in-vivo tCho and 7 T Ins)
up to 10000, where the penalised spline is a straight line (hat-matrix trace 4.0, the two
lines of the real and imaginary parts)."""


@dataclass
class FitOptions:
    """Everything that controls a linear-combination fit; identical for every condition.

    ``ppm_range``: fitted window (low, high). ``baseline``: ``poly`` (Legendre polynomial of
    ``baseline_order``), ``spline`` (cubic B-splines every ``spline_knot_spacing_ppm`` with a
    second-difference penalty ``baseline_stiffness``) or ``none``. ``joint_baseline``: the
    baseline kind of joint (multi-condition) fits: ``poly`` (default: a flexible baseline per
    condition absorbs part of the weak-signal decays; measured on the published dMRS set, tNAA
    decay error 0.0038 with ``poly`` against 0.0074 with the in-vivo spline) or ``same``
    (= ``baseline``).
    ``lineshape_groups``: group name -> metabolite names sharing one Voigt lineshape and shift;
    metabolites not listed go to group ``metabolites`` and MM entries to ``mm``.
    ``ratio_constraints``: soft priors ``{"numerator", "denominator", "ratio", "sd"}`` where
    ``sd`` is the standard deviation of the ratio (a Gaussian prior added to the cost).
    ``mm_mode``: ``free`` (MM basis entries fitted like metabolites) or
    ``fixed_shape_from_highest_b`` (MM components fitted at the highest b, then used as one
    fixed-shape entry ``MM`` at every b; dMRS consensus).
    ``mode``: ``sequential`` or ``joint``; in joint mode ``joint_models`` maps metabolite ->
    diffusion model name (``free`` = independent amplitude per condition), others use
    ``joint_default_model``, MM uses ``joint_mm_model``; ``joint_shared`` lists which of
    ``lineshape``, ``shift``, ``phase`` are shared by all conditions (the rest are free per
    condition); ``joint_tied`` lists groups of metabolites sharing diffusion parameters. A model
    constrains only conditions with b up to its ``b_max`` (the library default, e.g. 5 ms/um^2
    for the mono-exponential ADC, or ``joint_b_max_ms_um2[model]``); amplitudes above are free.
    MM entries follow their model at every b unless ``joint_b_max_ms_um2`` names their model.
    ``reference_singlets``: before the fit, estimate the frequency offset (within
    +-``reference_search_ppm``) and zero-order phase from the NAA/Cr/Cho singlets
    (``referencing.singlet_reference``) and let the shift range ``max_shift_ppm`` also cover
    that offset. ``metabolite_shift_sd_ppm`` > 0 gives every metabolite entry (not MM or lipids)
    its own shift around its group's shift, with a Gaussian prior of that SD (LCModel's
    ``DESDSH`` is 0.004 ppm) and a hard limit at ``OWN_SHIFT_LIMIT_SD`` SDs; 0 = one shift per
    group. ``metabolite_shift_sd_factors``: basis entry name (matched exactly, as LCModel
    does) -> multiple of that SD for its own shift (default ``LCMODEL_SHIFT_SD_FACTORS``: NAA
    and NAAG held twice as tight, ``Cho`` twice as loose, as LCModel does; the hard limit is
    ``OWN_SHIFT_LIMIT_SD`` times the larger of its own and the default SD); single spectra
    only: a diffusion series uses one SD for all (``conditions.series_options``).
    ``lineshape_kernel_hz`` > 0: after the Voigt fit, estimate a free-form lineshape
    kernel (a unit-area convolution of the metabolite model, spanning +-this many Hz, with a
    ridge penalty ``lineshape_kernel_smoothness`` towards no change; after LCModel's regularised
    lineshape) and refit with it (``kernel.py``); single-spectrum and sequential fits only (the
    joint fit does not use it yet); 0 = Voigt only. ``lineshape_kernel_min_fit_quality`` > 0: the
    kernel refit runs only when the Voigt fit's residual SD / noise SD (the QC's fit quality)
    exceeds it, i.e. only where the data show more than a Voigt can follow; a diffusion series
    (two or more b-values) is fitted without this adaptive kernel, so that all its conditions
    share one lineshape model. ``mm_lineshape``: ``shared``
    (all MM entries not in ``lineshape_groups`` share one Voigt and shift, group ``mm``) or
    ``per_entry`` (each MM entry its own Voigt and shift, group ``mm:<name>``, as LCModel lets
    each basis entry broaden and shift).
    ``baseline_curvature_sd`` > 0 replaces the fixed spline stiffness by a Gaussian prior on
    the spline's second differences with this SD (units of the scaled data, per knot), weighted
    by the spectrum's measured noise: stiff at low SNR, free at high SNR (0 = fixed
    ``baseline_stiffness``). ``baseline_stiffness_choices``: stiffnesses from which each single
    spectrum's spline stiffness is chosen after the fit (with ``baseline_stiffness``) by the
    corrected Akaike criterion, as a linear re-solve at the fitted non-linear parameters,
    searched from ``baseline_stiffness`` (``baseline.stiffness_by_aicc``; default
    ``STIFFNESS_GRID``; ``()`` = ``baseline_stiffness`` fixed; diffusion series keep
    one fixed stiffness; with ``baseline_stiffness`` = 0, an unpenalised spline, or
    ``baseline_curvature_sd`` > 0 there is no stiffness to choose and the grid is not used;
    joint fits ignore ``baseline_curvature_sd`` and use ``baseline_stiffness`` when their
    baseline is a spline). ``mm_shape_prior_sd`` > 0 ties the components of the app's
    parametric MM set (each simulated at its expected size) to one common scale with this
    relative SD (``priors.mm_shape_rows``). ``weak_metabolite_priors`` adds LCModel's default
    soft priors on Asp, GABA, Glc, sIns and Tau relative to tNAA + tCr + 3 tCho and on
    GSH/(Gln + GSH) (``priors.WEAK_METABOLITE_PRIORS``) to the user's ``ratio_constraints``,
    whose numerator and denominator may be sums such as ``"Gln+GSH"``. The weak-metabolite priors
    act on single-b data only (per condition they would pull each weak metabolite's decay
    towards that of the big singlets); the MM shape prior and the user's constraints act in
    single-spectrum and sequential fits; the joint fit applies no amplitude priors.
    ``joint_decay_constraint``: ``none`` or ``completely_monotone``: in joint fits, the free
    per-condition amplitudes (model ``free``) of a series of >= 3 distinct b-values are
    constrained to completely-monotone decays ``sum_k w_k exp(-b D_k)``, ``w_k >= 0`` (any ADC
    distribution; no parametric shape), solved in the metric of the fit's own linear Hessian
    (``monotone.py``); amplitudes and covariances follow the constrained estimate.
    ``joint_frame_test_p``: in joint fits that share ``shift`` and/or ``phase``, Rao's score
    test of one frequency shift and phase per condition at the shared fit (each condition's
    frame; the metabolites' own shifts stay shared); when its p-value is below this, the frames
    are fitted per condition (preprocessing left the condition means offset from each other
    by more than the noise allows); 0 = never test.
    ``joint_max_conditions``: a series of more conditions is fitted sequentially, with a
    warning: the joint fit's time grows about as the square of the number of conditions
    (1.7/6.9/23/108 s for 10/20/40/80 in-vivo conditions), so e.g. 240 single-transient
    dynamics would take half an hour without a sign of progress.
    ``noise_sd_ppm``: the signal-free window (ppm) whose SD is the noise that weights every
    prior and gates the lineshape kernel; ``()`` = both ends of the band, as the QC's default
    (the app passes ``[qc] noise_ppm`` when that is set, so fit and QC use one noise).
    ``water_removed_ppm``: the window of the residual-water removal the data went through
    (``preprocess.water``); the basis loses its lines in the same window, so model and data
    agree (``fitting.window_lines``); ``()`` = the basis whole (the app passes
    ``[preprocessing] residual_water_window_ppm`` when ``residual_water`` is on);
    ``basis_without_water_lines``: when that applies, ``always``, ``never`` or ``series``
    (diffusion series only; ``conditions.series_options`` turns it into ``always``).
    """

    ppm_range: tuple[float, float] = FIT_WINDOW_PPM
    baseline: str = "spline"
    baseline_order: int = 2
    baseline_stiffness: float = 0.003
    baseline_stiffness_choices: tuple = STIFFNESS_GRID
    spline_knot_spacing_ppm: float = 0.1
    joint_baseline: str = "poly"
    lineshape_groups: dict = field(default_factory=dict)
    max_shift_ppm: float = 0.1
    max_lorentz_hz: float = 30.0
    max_gauss_hz: float = 40.0
    first_order_phase: bool = True
    ratio_constraints: list = field(default_factory=list)
    mm_mode: str = "free"
    noise: str = "residual"
    noise_region_ppm: tuple[float, float] = (-3.0, -1.0)
    noise_sd_ppm: tuple = ()
    metabolites: list | None = None
    mode: str = "joint"
    joint_models: dict = field(default_factory=dict)
    joint_default_model: str = "free"
    joint_mm_model: str = "monoexponential"
    joint_shared: tuple = ("lineshape", "shift", "phase")
    joint_tied: list = field(default_factory=list)
    joint_b_max_ms_um2: dict = field(default_factory=dict)
    max_iterations: int = 60
    reference_singlets: bool = True
    reference_search_ppm: float = 0.3
    metabolite_shift_sd_ppm: float = 0.004
    metabolite_shift_sd_factors: dict = field(
        default_factory=lambda: dict(LCMODEL_SHIFT_SD_FACTORS))
    lineshape_kernel_hz: float = 16.0
    lineshape_kernel_smoothness: float = 0.01
    lineshape_kernel_min_fit_quality: float = 1.3
    mm_lineshape: str = "shared"
    baseline_curvature_sd: float = 0.0
    mm_shape_prior_sd: float = 0.15
    weak_metabolite_priors: bool = True
    joint_decay_constraint: str = "completely_monotone"
    joint_frame_test_p: float = 0.001
    joint_max_conditions: int = 64
    water_removed_ppm: tuple = ()
    basis_without_water_lines: str = "series"

    def __post_init__(self):
        self.ppm_range = tuple(float(v) for v in self.ppm_range)
        self.noise_region_ppm = tuple(float(v) for v in self.noise_region_ppm)
        self.noise_sd_ppm = tuple(float(v) for v in self.noise_sd_ppm)
        self.water_removed_ppm = tuple(float(v) for v in self.water_removed_ppm)
        if self.water_removed_ppm and len(self.water_removed_ppm) != 2:
            raise ValueError(f"fit options: water_removed_ppm must be [] or two values (ppm), "
                             f"got {list(self.water_removed_ppm)}")
        if self.noise_sd_ppm and (len(self.noise_sd_ppm) != 2
                                  or not self.noise_sd_ppm[0] < self.noise_sd_ppm[1]):
            raise ValueError(f"fit options: noise_sd_ppm must be [] or two increasing ppm values, "
                             f"got {list(self.noise_sd_ppm)}")
        self.joint_shared = tuple(self.joint_shared)
        _check_choice("baseline", self.baseline, BASELINE_KINDS)
        _check_choice("joint_baseline", self.joint_baseline, BASELINE_KINDS + ("same",))
        _check_choice("mm_mode", self.mm_mode, MM_MODES)
        _check_choice("mm_lineshape", self.mm_lineshape, MM_LINESHAPES)
        _check_choice("mode", self.mode, FIT_MODES)
        _check_choice("noise", self.noise, NOISE_SOURCES)
        _check_choice("joint_decay_constraint", self.joint_decay_constraint, DECAY_CONSTRAINTS)
        _check_choice("basis_without_water_lines", self.basis_without_water_lines,
                      ("series", "always", "never"))
        for key in self.joint_shared:
            _check_choice("joint_shared entry", key, SHARING_KEYS)
        if len(self.ppm_range) != 2 or self.ppm_range[0] == self.ppm_range[1]:
            raise ValueError(f"fit options: ppm_range must be two different values, "
                             f"got {self.ppm_range}")
        if int(self.joint_max_conditions) != self.joint_max_conditions or \
                self.joint_max_conditions < 2:
            raise ValueError(f"fit options: joint_max_conditions must be an integer >= 2, got "
                             f"{self.joint_max_conditions}")
        if not 0 <= self.joint_frame_test_p < 1:
            raise ValueError(f"fit options: joint_frame_test_p must be in [0, 1), got "
                             f"{self.joint_frame_test_p}")
        if min(self.lineshape_kernel_hz, self.lineshape_kernel_smoothness,
               self.lineshape_kernel_min_fit_quality) < 0:
            raise ValueError("fit options: lineshape_kernel_hz, lineshape_kernel_smoothness and "
                             "lineshape_kernel_min_fit_quality must be >= 0")
        if self.baseline_curvature_sd < 0 or self.mm_shape_prior_sd < 0:
            raise ValueError("fit options: baseline_curvature_sd and mm_shape_prior_sd must be "
                             ">= 0")
        if self.metabolite_shift_sd_ppm < 0:
            raise ValueError("fit options: metabolite_shift_sd_ppm must be >= 0")
        self.metabolite_shift_sd_factors = _shift_sd_factors(self.metabolite_shift_sd_factors,
                                                             self.metabolite_shift_sd_ppm)
        self.joint_b_max_ms_um2 = _b_max_by_model(self.joint_b_max_ms_um2)
        if self.baseline_order < 0 or self.baseline_stiffness < 0:
            raise ValueError("fit options: baseline_order and baseline_stiffness must be >= 0")
        choices = self.baseline_stiffness_choices
        try:
            self.baseline_stiffness_choices = tuple(float(v) for v in choices)
        except (TypeError, ValueError):
            raise ValueError(f"fit options: baseline_stiffness_choices must be a list of positive "
                             f"numbers, got {choices!r}") from None
        if any(not (v > 0 and math.isfinite(v)) for v in self.baseline_stiffness_choices):
            raise ValueError(f"fit options: baseline_stiffness_choices must be positive "
                             f"numbers, got {list(self.baseline_stiffness_choices)}")
        for c in self.ratio_constraints:
            missing = {"numerator", "denominator", "ratio", "sd"} - set(c)
            if missing:
                raise ValueError(f"fit options: ratio constraint {c} lacks {sorted(missing)}")
            if not (float(c["sd"]) > 0 and math.isfinite(float(c["sd"]))
                    and float(c["ratio"]) >= 0 and math.isfinite(float(c["ratio"]))):
                raise ValueError(f"fit options: ratio constraint {c} needs sd > 0 and a finite "
                                 "ratio >= 0")

    @property
    def basis_window_ppm(self) -> tuple:
        """The window whose lines the basis loses (``water_removed_ppm`` when
        ``basis_without_water_lines`` is ``always``), ``()`` for the whole basis."""
        return self.water_removed_ppm if self.basis_without_water_lines == "always" else ()

    @classmethod
    def from_dict(cls, table: dict | None) -> "FitOptions":
        """Options from a plain dict (e.g. the ``[fitting]`` table of a TOML config).

        Unknown keys raise ``ValueError`` naming them, so typos never pass silently.
        """
        table = dict(table or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"fit options: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**table)

    def baseline_record(self) -> dict:
        """The baseline these options fit, as ``fit.json`` records it: its kind and the setting
        that shapes it (polynomial order or spline knot spacing)."""
        if self.baseline == "poly":
            return {"kind": "poly", "order": self.baseline_order}
        if self.baseline == "spline":
            return {"kind": "spline", "knot_spacing_ppm": self.spline_knot_spacing_ppm}
        return {"kind": self.baseline}

    def to_dict(self) -> dict:
        """A plain (TOML/JSON-serialisable) dict that ``from_dict`` turns back into options."""
        out = dataclasses.asdict(self)
        out["ppm_range"] = list(self.ppm_range)
        out["noise_region_ppm"] = list(self.noise_region_ppm)
        out["noise_sd_ppm"] = list(self.noise_sd_ppm)
        out["water_removed_ppm"] = list(self.water_removed_ppm)
        out["baseline_stiffness_choices"] = list(self.baseline_stiffness_choices)
        out["joint_shared"] = list(self.joint_shared)
        return {k: v for k, v in out.items() if v is not None}


MAX_OWN_SHIFT_SD_PPM = 0.1
"""Largest own-shift prior SD (ppm) a factor may give, as ``metabolite_shift_sd_ppm``'s range."""


def _shift_sd_factors(factors, sd_ppm: float) -> dict:
    """A copy of ``metabolite_shift_sd_factors`` once each value is a positive number whose SD
    (factor x ``sd_ppm``) stays within ``MAX_OWN_SHIFT_SD_PPM``; else ValueError naming it."""
    if not isinstance(factors, dict):
        raise ValueError(f"fit options: metabolite_shift_sd_factors must be a table of "
                         f"metabolite name -> factor, got {factors!r}")
    bad = {k: v for k, v in factors.items()
           if isinstance(v, bool) or not isinstance(v, (int, float))
           or not (v > 0 and math.isfinite(v) and v * sd_ppm <= MAX_OWN_SHIFT_SD_PPM)}
    if bad:
        raise ValueError(f"fit options: metabolite_shift_sd_factors must map metabolite names "
                         f"to positive numbers whose SD (x metabolite_shift_sd_ppm) is at most "
                         f"{MAX_OWN_SHIFT_SD_PPM:g} ppm, got {bad}")
    return dict(factors)


def _b_max_by_model(table) -> dict:
    """``joint_b_max_ms_um2`` keyed by model name (an alias such as ``monoexp`` read as its
    model, which is how the joint fit looks it up); ValueError naming a key that is no diffusion
    model or a value that is not a positive b (ms/um^2)."""
    from ..diffusion.models import ALIASES, MODELS

    if not isinstance(table, dict):
        raise ValueError(f"fit options: joint_b_max_ms_um2 must be a table of diffusion model "
                         f"name -> b (ms/um^2), got {table!r}")
    unknown = [k for k in table if ALIASES.get(k, k) not in MODELS]
    if unknown:
        raise ValueError(f"fit options: joint_b_max_ms_um2 keys must be diffusion model names "
                         f"({', '.join(MODELS)}), got {unknown}")
    bad = {k: v for k, v in table.items() if isinstance(v, bool)
           or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v))}
    if bad:
        raise ValueError(f"fit options: joint_b_max_ms_um2 values must be positive b-values "
                         f"(ms/um^2), got {bad}")
    by_model = {ALIASES.get(k, k): float(v) for k, v in table.items()}
    if len(by_model) < len(table):
        raise ValueError(f"fit options: joint_b_max_ms_um2 names one model twice (with an "
                         f"alias), got {table}")
    return by_model


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"fit options: {name} must be one of {list(allowed)}, got {value!r}")


def is_mm_name(name: str) -> bool:
    """True for macromolecule basis entries (``MM``, ``MM09``…, ``Mac``)."""
    return name.startswith(MM_PREFIXES)


def is_lipid_name(name: str) -> bool:
    """True for lipid basis entries (``Lip09``, ``Lip13``…): their own lineshape group, and in
    joint mode the MM diffusion model (lipids barely diffuse)."""
    return name.startswith(LIPID_PREFIXES)
