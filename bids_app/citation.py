"""``OUT/logs/CITATION.md``: a methods paragraph with references, from what actually ran.

Built from the effective configuration and the stage reports stored in each ``_qc.json``
(basis origin, macromolecule handling, fit mode), so the text describes this run only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline import __version__
from pipeline.fitting.options import FitOptions
from pipeline.metabolites import FIT_WINDOW_PPM
from pipeline.qc.flags import THRESHOLDS as QC_THRESHOLDS

from . import derivatives as d

REFERENCES = {
    "bids": "Gorgolewski KJ, et al. The brain imaging data structure, a format for organizing "
            "and describing outputs of neuroimaging experiments. Sci Data. 2016;3:160044.",
    "nipype": "Gorgolewski K, et al. Nipype: a flexible, lightweight and extensible "
              "neuroimaging data processing framework in Python. Front Neuroinform. 2011;5:13.",
    "niftimrs": "Clarke WT, et al. NIfTI-MRS: A standard data format for magnetic resonance "
                "spectroscopy. Magn Reson Med. 2022;88:2358-2370.",
    "preproc": "Near J, et al. Preprocessing, analysis and quantification in single-voxel "
               "magnetic resonance spectroscopy: experts' consensus recommendations. "
               "NMR Biomed. 2021;34:e4257.",
    "dmrs": "Ligneul C, et al. Diffusion-weighted MR spectroscopy: Consensus, recommendations, "
            "and resources from acquisition to modeling. Magn Reson Med. 2024;91:860-885.",
    "lcmodel": "Provencher SW. Estimation of metabolite concentrations from localized in vivo "
               "proton NMR spectra. Magn Reson Med. 1993;30:672-679.",
    "crlb": "Cavassila S, et al. Cramer-Rao bounds: an evaluation tool for quantitation. "
            "NMR Biomed. 2001;14:278-283.",
    "terminology": "Kreis R, et al. Terminology and concepts for the characterization of in "
                   "vivo MR spectroscopy methods and MR spectra: Background and experts' "
                   "consensus recommendations. NMR Biomed. 2021;34:e4347.",
    "specreg": "Near J, et al. Frequency and phase drift correction of magnetic resonance "
               "spectroscopy data by spectral registration in the time domain. Magn Reson Med. "
               "2015;73:44-50.",
    "ecc": "Klose U. In vivo proton spectroscopy in presence of eddy currents. Magn Reson Med. "
           "1990;14:26-30.",
    "gasparovic": "Gasparovic C, et al. Use of tissue water as a concentration reference for "
                  "proton spectroscopic imaging. Magn Reson Med. 2006;55:1219-1226.",
    "kurtosis": "Jensen JH, et al. Diffusional kurtosis imaging: the quantification of "
                "non-gaussian water diffusion by means of magnetic resonance imaging. "
                "Magn Reson Med. 2005;53:1432-1440.",
    "clinical": "Wilson M, et al. Methodological consensus on clinical proton MRS of the brain: "
                "review and recommendations. Magn Reson Med. 2019;82:527-550.",
    "mrsinmrs": "Lin A, et al. Minimum Reporting Standards for in vivo Magnetic Resonance "
                "Spectroscopy (MRSinMRS): experts' consensus recommendations. NMR Biomed. "
                "2021;34:e4484.",
    "artifacts": "Kreis R. Issues of spectral quality in clinical 1H-MRS and a gallery of "
                 "artifacts. NMR Biomed. 2004;17:361-381.",
    "degraaf": "de Graaf RA. In Vivo NMR Spectroscopy: Principles and Techniques. 3rd ed. "
               "Chichester: Wiley; 2019.",
}
QC_REFERENCE_KEYS = {"WILSON2019": "clinical", "KREIS2021": "terminology",
                     "LIN2021": "mrsinmrs", "LIGNEUL2024": "dmrs", "KREIS2004": "artifacts",
                     "DEGRAAF2019": "degraaf"}
"""The reference of each QC threshold source (``pipeline.qc.flags.REFERENCES``) among
:data:`REFERENCES`, so that a paper cited by the methods and by the QC limits is listed once."""


def _unique(values):
    return list(dict.fromkeys(v for v in values if v))


class _Citations:
    """Numbers references in order of first citation."""

    def __init__(self):
        self.keys: list[str] = []

    def __call__(self, key: str) -> str:
        if key not in self.keys:
            self.keys.append(key)
        return f"[{self.keys.index(key) + 1}]"


def what_ran(stages: list[dict]) -> dict:
    """Which optional kinds of processing the data called for, from the stage reports:
    ``coils`` (more than one receive coil), ``transients`` (two or more transients in some
    condition), ``diffusion`` (two or more distinct b-values). Without stage reports (older
    derivatives) every kind is assumed."""
    conversions = [s["conversion.json"] for s in stages if s.get("conversion.json")]
    if not conversions:
        return {"coils": True, "transients": True, "diffusion": True}
    shapes = [c.get("shape") or [1, 1, 1] for c in conversions]
    return {
        "coils": any(s.get("coils.json", {}).get("n_coils", shape[2]) > 1
                     for s, shape in zip(stages, shapes)),
        "transients": any(shape[1] >= 2 for shape in shapes),
        "diffusion": any(len(set(c.get("b_values_s_mm2") or [])) >= 2 for c in conversions),
    }


def methods_text(config: dict, basis_path, stages: list[dict]) -> tuple[str, list[str]]:
    """The methods paragraph and the reference keys it cites, in order of citation. Only
    what ran is described: plain single-voxel MRS (one condition, averaged at the scanner)
    gets no alignment, rejection or diffusion-modelling sentence (:func:`what_ran`)."""
    cite = _Citations()
    pre = config.get("preprocessing", {})
    kinds = what_ran(stages)
    converted = (" with its diffusion conditions (b-values in s/mm², gradient directions) made "
                 "explicit" if kinds["diffusion"] else "")
    parts = [f"Data were processed with dmrs-bids {__version__}, a BIDS App {cite('bids')} "
             f"built on Nipype {cite('nipype')}. Each MRS-BIDS acquisition was converted to "
             f"NIfTI-MRS {cite('niftimrs')}{converted}."]
    ran = {name for s in stages for name in s}

    def applied(report: str, key: str) -> bool:
        """A stage ran (its report exists) or, without stage reports, is configured on."""
        return report in ran if stages else bool(pre.get(key, True))

    consensus = cite("preproc")
    steps = []
    within = "within each diffusion condition " if kinds["diffusion"] else ""
    if kinds["coils"]:
        steps.append("receive coils were combined with noise-whitened matched-filter weights")
    if applied("eddy.json", "ecc"):  # before alignment (workflows.participant)
        steps.append("eddy currents were corrected with the water reference of the same "
                     f"condition {cite('ecc')}")
    if kinds["transients"] and pre.get("align", True):
        steps.append(f"transients were aligned in frequency and phase {within}by spectral "
                     f"registration {cite('specreg')}")
    if kinds["transients"] and pre.get("outliers", True):
        steps.append("outlier transients were rejected per condition (and left out of the "
                     "alignment templates)")
    if kinds["transients"]:
        steps.append("the kept transients of each condition were averaged")
    if applied("residual_water.json", "residual_water"):
        windows = _unique("{:g}-{:g}".format(*w) for w in
                          (s.get("fit.json", {}).get("basis_without_water_lines_ppm")
                           for s in stages) if w)
        steps.append("residual water was removed by HLSVD"
                     + (f" (components within {', '.join(windows)} ppm; the basis spectra lost "
                        "their lines in the same window)" if windows else ""))
    cuts = [s.get("coils.json", {}).get("zero_filling") or {} for s in stages]
    cut = _unique("{n_points_acquired} of {n_points_given}".format(**z) for z in cuts
                  if "n_points_acquired" in z)
    if cut:
        parts.append("Zero-filled input was cut to its acquired points "
                     f"({', '.join(cut)} points) before any processing.")
    water_cut = _unique("{water_n_points_kept} of {water_n_points_given}".format(**z)
                        for z in cuts if "water_n_points_kept" in z and "n_points_acquired" not in z)
    if water_cut:
        parts.append("The water reference was cut to the metabolite data's points "
                     f"({', '.join(water_cut)} points) before any processing.")
    if steps:
        parts.append(f"Following the consensus on MRS preprocessing {consensus}, "
                     + "; ".join(steps) + ".")
    mm_modes = _unique(s.get("mm.json", {}).get("mode") for s in stages)
    fit_modes = _unique(s.get("fit.json", {}).get("mode") for s in stages)
    basis = (f"the basis set supplied by the user ({Path(basis_path).name})" if basis_path
             else "a basis set simulated from the acquisition parameters (density-matrix "
                  "simulation of the sequence in the sidecar)")
    fit_cfg = config.get("fitting", {})
    scale = (", and amplitudes share one scale across the conditions of an acquisition"
             if kinds["diffusion"] else "")
    parts.append(
        f"Spectra were fitted by linear combination {cite('lcmodel')} of {basis}; "
        f"macromolecules: {', '.join(mm_modes) or 'as configured'}; "
        f"{', '.join(fit_modes) or fit_cfg.get('mode', 'sequential')} fitting over "
        f"{fit_cfg.get('ppm_range', list(FIT_WINDOW_PPM))} ppm with "
        f"{_baseline_phrase(stages, fit_cfg)}"
        f"{_stiffness_clause(stages)}{_prior_clause(stages)}{_own_shift_clause(stages)}"
        f"{_kernel_clause(stages, fit_cfg)}"
        f"{_decay_constraint_clause(stages)}{_frames_clause(stages, fit_cfg)}; uncertainties "
        "are Cramér-Rao lower bounds "
        f"{cite('crlb')}{scale}.")
    quantified = [s["fit.json"]["quantification"] for s in stages
                  if s.get("fit.json", {}).get("quantification", {}).get("water_scaling")
                  == "done"]
    if quantified:
        parts.append(quantification_sentence(quantified, cite("gasparovic"),
                                             kinds["diffusion"]))
    models = config.get("diffusion", {}).get("models", [])
    if kinds["diffusion"]:
        text = (f"The amplitude decays of each metabolite and of the sums tNAA, tCr, tCho and "
                f"Glx were modelled ({', '.join(models)}) following the dMRS consensus "
                f"{cite('dmrs')}")
        if "kurtosis" in models:
            text += f", including the kurtosis representation {cite('kurtosis')}"
        parts.append(text + ".")
    drift = "drift and rejection statistics, " if kinds["transients"] else ""
    parts.append(f"Quality metrics follow the MRS terminology consensus {cite('terminology')}: "
                 "SNR as tNAA peak height over the noise SD, linewidths as FWHM (in Hz, judged "
                 f"in ppm), {drift}and the fit residual relative to the noise.")
    parts.append(qc_sources_sentence(kinds["transients"], cite))
    if any(s.get("conversion.json", {}).get("warnings") for s in stages):
        parts.append("Conversion warnings (e.g. b-value units inferred from their magnitude) "
                     "are listed in each participant's report.")
    return " ".join(parts), cite.keys


QC_SOURCE_NAMES = {"clinical": "the clinical MRS consensus", "terminology": "the terminology "
                   "consensus", "mrsinmrs": "the minimum reporting standards", "dmrs": "the dMRS "
                   "consensus", "artifacts": "the review of spectral quality",
                   "degraaf": "brain metabolite ranges"}
"""How the methods name each QC threshold source (``QC_REFERENCE_KEYS`` values)."""


def qc_sources_sentence(transients: bool, cite) -> str:
    """The sentence citing the sources of the QC limits that apply: those of the transient
    metrics (rejections, similarity: the dMRS consensus) only when transients were aligned."""
    keys = _unique(QC_REFERENCE_KEYS[t.source] for t in QC_THRESHOLDS.values()
                   if transients or t.section != "transients")
    names = [f"{QC_SOURCE_NAMES[k]} {cite(k)}" for k in keys]
    return ("QC thresholds (pass/warn/fail) follow " + ", ".join(names[:-1])
            + (" and " if len(names) > 1 else "") + names[-1] + ".")


def quantification_sentence(reports: list[dict], reference: str, diffusion: bool = True) -> str:
    """How concentrations were obtained, from the fit stages' quantification reports."""
    sources = _unique(r.get("tissue_fractions_source") for r in reports)
    given = any(r.get("effective_water_concentration_mm") for r in reports)
    relaxation = ("with metabolite relaxation corrections"
                  if any(r.get("metabolite_t2_s") or r.get("metabolite_t1_s") for r in reports)
                  else "without metabolite relaxation correction")
    water = ("a given relaxation-attenuated water concentration" if given else
             f"tissue water (GM/WM/CSF fractions: {'; '.join(sources)}) corrected for water T2 "
             "and T1")
    if not diffusion:
        return (f"Concentrations (mM) were scaled to the unsuppressed water signal "
                f"{reference}, using {water}, {relaxation}.")
    return (f"Concentrations (mM) were scaled to the unsuppressed water signal of the lowest "
            f"b-value {reference}, using {water}, {relaxation}; at higher b-values they are "
            "diffusion-weighted apparent concentrations.")


def citation_markdown(config: dict, basis_path, stages: list[dict]) -> str:
    text, cited = methods_text(config, basis_path, stages)
    refs = "\n".join(f"{i}. {REFERENCES[key]}" for i, key in enumerate(cited, start=1))
    return (f"# Methods\n\n{text}\n\n# References\n\n{refs}\n")


def write_citation(output_dir, config: dict, basis_path, stages: list[dict]) -> Path:
    return d.atomic_write_text(d.logs_dir(output_dir) / "CITATION.md",
                               citation_markdown(config, basis_path, stages))


def _fit_conditions(stages: list) -> list:
    """Every condition entry of every fit stage's ``fit.json``."""
    return [c for s in stages for c in s.get("fit.json", {}).get("conditions", [])]


def _decay_constraint_clause(stages: list) -> str:
    """The completely-monotone constraint of joint fits, when any applied it
    (``decay_constraint`` of a condition in ``fit.json``), as a clause ('' when none)."""
    conditions = _fit_conditions(stages)
    if "completely_monotone" not in {c.get("decay_constraint") for c in conditions}:
        return ""
    per_direction = any(c.get("decay_constraint_series", 0) > 1 for c in conditions)
    return (", with the per-condition amplitudes of each metabolite in joint fits constrained "
            "to completely monotone decays in b (non-negative mixtures of exponentials, "
            "diffusivities 0-1 um^2/ms; no parametric decay shape imposed"
            + ("; one decay per gradient direction, all with one S(0)" if per_direction else "")
            + ")")


def _frames_clause(stages: list, fit_cfg: dict) -> str:
    """Per-condition frequency shift and phase in joint fits, when a frame test freed them in
    any fit (``frames`` and ``frame_test`` of a condition in ``fit.json``; '' when none)."""
    freed = [c for c in _fit_conditions(stages)
             if c.get("frames") == "per condition" and c.get("frame_test")]
    if not freed:
        return ""
    level = fit_cfg.get("joint_frame_test_p", 0.001)
    return (f", and each condition's frequency shift and phase fitted separately where a "
            f"score test at the shared-frame fit rejected one frame for all conditions "
            f"(p < {level:g})")


def _stiffness_clause(stages: list) -> str:
    """The spline stiffness chosen per spectrum (``baseline_stiffness_chosen`` of a condition
    in ``fit.json``), as a clause of the methods sentence ('' when every stiffness was fixed)."""
    chosen = sorted({c["baseline_stiffness_chosen"] for c in _fit_conditions(stages)
                     if c.get("baseline_stiffness_chosen") is not None})
    if not chosen:
        return ""
    values = ", ".join(f"{v:g}" for v in chosen)
    return (" whose stiffness was chosen per spectrum by the corrected Akaike information "
            f"criterion (chosen: {values})")


def _kernel_clause(stages: list, fit_cfg: dict) -> str:
    """The free-form lineshape kernel, when any fit used it (``lineshape_kernel_fwhm_hz`` of a
    condition in ``fit.json``), as a clause of the methods sentence ('' when none)."""
    conditions = _fit_conditions(stages)
    used = sum(c.get("lineshape_kernel_fwhm_hz") is not None for c in conditions)
    if not used:
        return ""
    threshold = fit_cfg.get("lineshape_kernel_min_fit_quality", 0)
    where = (f" where the Voigt fit's residual exceeded {threshold:g} × the noise SD"
             if threshold else "")
    half_width_hz = fit_cfg.get("lineshape_kernel_hz", 0)
    return (f", with a regularised free-form lineshape kernel (±{half_width_hz:g} Hz, held "
            f"fixed in the Cramér-Rao bounds) convolving the metabolite basis{where} ({used} of "
            f"{len(conditions)} spectra)")


def _baseline_phrase(stages: list, fit_cfg: dict) -> str:
    """The baseline each fit used (``baseline`` of each ``fit.json``: a joint series fits
    ``joint_baseline``), with its fit mode when they differ; the spline last, where the stiffness
    clause follows it. Stages without that record: the configured ``baseline``."""
    configured = FitOptions.from_dict({k: v for k, v in fit_cfg.items()
                                       if k in ("baseline", "baseline_order",
                                                "spline_knot_spacing_ppm")}).baseline_record()
    used = {}
    for s in stages:
        report = s.get("fit.json", {})
        if report:
            used[report.get("mode", "sequential")] = report.get("baseline", configured)
    if not used:
        used = {fit_cfg.get("mode", "sequential"): configured}

    def words(record: dict) -> str:
        if record["kind"] == "spline":
            return f"a cubic B-spline baseline (knots every {record['knot_spacing_ppm']:g} ppm)"
        if record["kind"] == "poly":
            return f"a polynomial baseline of order {record['order']}"
        return "no baseline"

    if len({words(r) for r in used.values()}) == 1:
        return words(next(iter(used.values())))
    ordered = sorted(used.items(), key=lambda item: item[1]["kind"] == "spline")
    return " and ".join(f"{words(r)} in {mode} fits" for mode, r in ordered)


def _own_shift_clause(stages: list) -> str:
    """Each metabolite's own small shift and the SDs of its prior (``own_shift_sd_ppm`` of
    each condition's ``priors`` in ``fit.json``): the usual SD, then the exceptions ('' when
    no fit had own shifts)."""
    pairs = {(name, sd) for c in _fit_conditions(stages)
             for name, sd in (c.get("priors", {}).get("own_shift_sd_ppm") or {}).items()}
    if not pairs:
        return ""
    usual = Counter(sd for _, sd in pairs).most_common(1)[0][0]
    others = sorted(f"{name} {sd:g}" for name, sd in pairs if sd != usual)
    return (", each metabolite with its own small frequency shift about its lineshape group's "
            f"(Gaussian prior SD {usual:g} ppm{'; ' + ', '.join(others) + ' ppm' if others else ''})")


def _prior_clause(stages: list) -> str:
    """The soft priors the fits applied (``priors`` of each condition in ``fit.json``), as a
    clause of the methods sentence ('' when none)."""
    applied = [c.get("priors", {}) for c in _fit_conditions(stages)]
    ratios = sorted({r for p in applied for r in p.get("ratio", [])})
    mm_sd = sorted({p.get("mm_shape_sd", 0.0) for p in applied} - {0.0})
    priors = []
    if ratios:
        priors.append(f"soft Gaussian priors on the amplitude ratios {'; '.join(ratios)} "
                      "(LCModel's defaults for weakly determined metabolites, Big3 = tNAA + "
                      "tCr + 3 tCho, unless set by the user)")
    if mm_sd:
        priors.append("a shape prior tying the parametric macromolecule components to one "
                      f"scale (relative SD {', '.join(f'{v:g}' for v in mm_sd)})")
    return (" and " + ", ".join(priors)) if priors else ""
