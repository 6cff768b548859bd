"""Processing configuration: the packaged defaults merged with a user's TOML file.

Configuration is declarative data only (TOML read with :mod:`tomllib`); nothing a user passes
is executed. Unknown keys are refused with an error naming the key, so a typo never silently
falls back to a default. The effective configuration is written back as TOML into the outputs.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import tomli_w

from pipeline.io.files import atomic_write_text, file_sha256

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.toml")


class ConfigError(ValueError):
    """A configuration file that cannot be used (unknown key, wrong type, bad TOML)."""


def load_default_config() -> dict:
    """The packaged defaults (``bids_app/default_config.toml``), with any fit or
    preprocessing option the engines have gained since the file was written filled in from
    their defaults."""
    with open(DEFAULT_CONFIG_PATH, "rb") as fh:
        config = tomllib.load(fh)
    for key, value in fit_option_defaults().items():
        config["fitting"].setdefault(key, value)
    for key, value in preprocess_option_defaults().items():
        config["preprocessing"].setdefault(key, value)
    return config


def preprocess_option_defaults() -> dict:
    """``pipeline.preprocess.pipeline.PreprocessOptions`` defaults (tuples as lists)."""
    from pipeline.preprocess.pipeline import PreprocessOptions

    return PreprocessOptions().to_dict()


def fit_option_defaults() -> dict:
    """``pipeline.fitting.FitOptions`` defaults as TOML-ready values (tuples as lists)."""
    from pipeline.fitting.options import FitOptions

    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in FitOptions().to_dict().items()}


def read_toml(path) -> dict:
    """Parse a TOML file; errors name the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _type_ok(default, value) -> bool:
    """Whether ``value`` may replace ``default`` (ints accepted where floats are expected)."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return True


NAME_TABLES = {"fitting.metabolite_shift_sd_factors"}
"""Tables keyed by metabolite name whose default is not empty: a user's table replaces the
default whole (``{}`` empties it; its keys are names, not options to check)."""


def merge_config(defaults: dict, user: dict, source: str = "config", _prefix: str = "") -> dict:
    """``user`` merged over ``defaults``; unknown keys or wrong types raise :class:`ConfigError`.

    Tables whose default is empty (``{}``) are free-form and accept any keys; so are the
    ``NAME_TABLES``, which replace their default whole.
    """
    merged = copy.deepcopy(defaults)
    for key, value in user.items():
        dotted = f"{_prefix}{key}"
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "(none)"
            raise ConfigError(f"{source}: unknown configuration key '{dotted}' "
                              f"(known keys here: {known})")
        default = defaults[key]
        if not _type_ok(default, value):
            raise ConfigError(f"{source}: key '{dotted}' should be of type "
                              f"{type(default).__name__}, got {value!r}")
        if isinstance(default, dict) and default and dotted not in NAME_TABLES:
            merged[key] = merge_config(default, value, source, dotted + ".")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(path=None, overrides: dict | None = None) -> dict:
    """Defaults, then the TOML file at ``path`` (if any), then ``overrides`` (from CLI flags)."""
    config = load_default_config()
    if path is not None:
        config = merge_config(config, read_toml(path), source=str(path))
    if overrides:
        config = merge_config(config, overrides, source="command line")
    source = str(path) if path is not None else "config"
    check_ranges(config, source)
    check_choices(config, source)
    config = with_fit_water_window(with_fit_noise_window(config))
    check_model_names(config, source)
    config = with_canonical_models(config, source)
    _check_fit_options(config.get("fitting", {}), source)
    _check_qc_thresholds(config, source)
    _check_quantification(config.get("quantification", {}), source)
    return config


EMPTY_MEANS_DEFAULT = ("noise_ppm", "noise_sd_ppm", "water_removed_ppm")
"""ppm-window keys where [] stands for a default (both ends of the band; the preprocessing's
residual-water window)."""


def with_fit_noise_window(config: dict) -> dict:
    """``[fitting] noise_sd_ppm`` left empty follows ``[qc] noise_ppm``: the noise that weights
    the fit's priors and gates its lineshape kernel is then the noise the QC divides by."""
    fitting, qc = config.get("fitting", {}), config.get("qc", {})
    if fitting.get("noise_sd_ppm") or not qc.get("noise_ppm"):
        return config
    return {**config, "fitting": {**fitting, "noise_sd_ppm": list(qc["noise_ppm"])}}


def with_fit_water_window(config: dict) -> dict:
    """``[fitting] water_removed_ppm`` left empty follows ``[preprocessing]``: the window of the
    residual-water removal when ``residual_water`` is on, none when it is off. Whether the
    basis loses that window's lines is ``basis_without_water_lines``
    (``FitOptions.basis_window_ppm``)."""
    fitting, pre = config.get("fitting", {}), config.get("preprocessing", {})
    if fitting.get("water_removed_ppm") or not pre.get("residual_water", False):
        return config
    return {**config, "fitting": {**fitting, "water_removed_ppm":
                                  list(pre["residual_water_window_ppm"])}}


# Allowed range of every numeric option: (section, key) -> (lowest, highest, lowest allowed?,
# highest allowed?). Iteration counts are capped so that no value makes a run endless.
NUMERIC_RANGES = {
    ("preprocessing", "align_iterations"): (0, 20, True, True),
    ("preprocessing", "align_model_iterations"): (0, 20, True, True),
    ("preprocessing", "align_model_components"): (1, 200, True, True),
    ("preprocessing", "align_max_shift_hz"): (0, 500, False, True),
    ("preprocessing", "outlier_threshold"): (0, 100, False, True),
    ("preprocessing", "outlier_flag_fraction"): (0, 1, False, True),
    ("preprocessing", "ecc_min_water_snr"): (0, 1e6, True, True),
    ("preprocessing", "residual_water_components"): (1, 200, True, True),
    ("preprocessing", "motion_n_sigma"): (0, 100, False, True),
    ("conversion", "chronogram_sample_interval_s"): (0, 1e-3, False, True),
    ("quantification", "water_concentration_mm"): (0, 56000, True, True),
    ("fitting", "baseline_order"): (0, 20, True, True),
    ("fitting", "baseline_stiffness"): (0, 1e9, True, True),
    ("fitting", "spline_knot_spacing_ppm"): (0, 20, False, True),
    ("fitting", "max_shift_ppm"): (0, 2, False, True),
    ("fitting", "metabolite_shift_sd_ppm"): (0, 0.1, True, True),
    ("fitting", "mm_shape_prior_sd"): (0, 1e3, True, True),
    ("fitting", "baseline_curvature_sd"): (0, 1e3, True, True),
    ("fitting", "lineshape_kernel_hz"): (0, 100, True, True),
    ("fitting", "lineshape_kernel_smoothness"): (0, 1e9, True, True),
    ("fitting", "lineshape_kernel_min_fit_quality"): (0, 100, True, True),
    ("fitting", "joint_frame_test_p"): (0, 1, True, False),
    ("fitting", "joint_max_conditions"): (2, 100000, True, True),
    ("basis", "press_refocus_bandwidth_hz"): (0, 100000, True, True),
    ("basis", "echo_time_tolerance_ms"): (0, 10000, True, True),
    ("fitting", "reference_search_ppm"): (0, 2, False, True),
    ("fitting", "max_lorentz_hz"): (0, 1000, False, True),
    ("fitting", "max_gauss_hz"): (0, 1000, True, True),
    ("fitting", "max_iterations"): (1, 10000, True, True),
    ("diffusion", "n_draws"): (1, 100000, True, True),
    ("diffusion", "seed"): (0, 2 ** 32 - 1, True, True),
    ("diffusion", "gradient_duration_s"): (0, 1, True, False),
    ("diffusion", "diffusion_time_s"): (0, 3, True, False),  # input_checks.TIMING_LIMITS_S
    ("qc", "zero_fill"): (1, 64, True, True),
}
PPM_LIMIT = 50.0
"""Any ppm bound beyond +-50 ppm is a typo for 1H, 31P or 13C single-voxel MRS."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range_text(lo, hi, lo_in, hi_in) -> str:
    return f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def numeric_problems(config: dict) -> list[str]:
    """Every numeric option out of its range, every non-finite number anywhere, every ppm
    window that is not two finite ordered bounds; each names its key."""
    problems = []

    def walk(value, dotted):
        if _is_number(value):
            if not math.isfinite(value):
                problems.append(f"'{dotted}' must be a finite number, got {value!r}")
        elif isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{dotted}.{key}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                walk(sub, f"{dotted}[{i}]")

    for name, section in config.items():
        walk(section, name)
    for (name, key), (lo, hi, lo_in, hi_in) in NUMERIC_RANGES.items():
        value = config.get(name, {}).get(key)
        if not _is_number(value) or not math.isfinite(value):
            continue
        if value < lo or value > hi or (value == lo and not lo_in) or (value == hi and not hi_in):
            problems.append(f"'{name}.{key}' = {value!r} is outside its range "
                            f"{_range_text(lo, hi, lo_in, hi_in)}")
    for name, section in config.items():
        for key, value in section.items() if isinstance(section, dict) else ():
            if not (key.endswith("_ppm") or key.endswith("_ppm_range") or key == "ppm_range") \
                    or not isinstance(value, list) or value == [] and key in EMPTY_MEANS_DEFAULT:
                continue
            if key.endswith("spacing_ppm") or key.endswith("shift_ppm"):
                continue
            ok = len(value) == 2 and all(_is_number(v) and math.isfinite(v) for v in value)
            if not ok or not (-PPM_LIMIT <= value[0] < value[1] <= PPM_LIMIT):
                problems.append(f"'{name}.{key}' = {value!r} must be two increasing ppm "
                                f"values within +-{PPM_LIMIT:g} ppm")
    return problems


def check_model_names(config: dict, source: str) -> None:
    """Diffusion model names in ``[diffusion] models`` and the joint-fit options must be known
    models (or aliases), refused at load naming the key (not a KeyError mid-run)."""
    from pipeline.diffusion.models import ALIASES, MODELS
    from pipeline.fitting.joint import FREE

    known = set(MODELS) | set(ALIASES) | {FREE}
    fitting = config.get("fitting", {})
    named = [("diffusion.models", name) for name in config.get("diffusion", {}).get("models", [])]
    named += [(f"fitting.{key}", fitting.get(key)) for key in ("joint_default_model",
                                                              "joint_mm_model")]
    named += [(f"fitting.joint_models.{k}", v)
              for k, v in (fitting.get("joint_models") or {}).items()]
    bad = [f"'{key}' names unknown diffusion model {name!r}" for key, name in named
           if name is not None and name not in known]
    if bad:
        raise ConfigError(f"{source}: " + "; ".join(bad) + f" (known: {', '.join(sorted(MODELS))})")


def with_canonical_models(config: dict, source: str) -> dict:
    """``[diffusion] models`` with aliases resolved and repeats dropped (warning naming them):
    ``["monoexp", "monoexponential", "adc"]`` wrote the monoexponential rows three times and
    the group tables counted the participant three times. An empty list warns: a dMRS
    acquisition then gets a ``_diffusion.tsv`` without rows."""
    from pipeline.diffusion.models import canonical_models

    section = config.get("diffusion", {})
    if "models" not in section:
        return config
    kept, dropped = canonical_models(section["models"])
    if dropped:
        warnings.warn(f"{source}: [diffusion] models {section['models']} name the same model "
                      f"more than once; {dropped} dropped, fitting {kept}", UserWarning,
                      stacklevel=3)
    if not kept:
        warnings.warn(f"{source}: [diffusion] models = []: no diffusion model is fitted and "
                      "the _diffusion.tsv of a dMRS acquisition has no rows", UserWarning,
                      stacklevel=3)
    return {**config, "diffusion": {**section, "models": kept}}


def check_choices(config: dict, source: str) -> None:
    """Refuse, before any run, a choice key's value its consumer does not know (e.g.
    ``[diffusion] uncertainty = "boot"``), naming section.key, the value and the allowed ones
    (:mod:`bids_app.config_choices`)."""
    from .config_choices import choice_problems, preprocess_problems

    problems = choice_problems(config) + preprocess_problems(config.get("preprocessing", {}))
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def _check_fit_options(section: dict, source: str) -> None:
    """Refuse ``[fitting]`` values the fit would refuse (a baseline, mode or choice it does not
    know, a bad window), at load and naming the key, not in each participant's fit."""
    from pipeline.fitting.options import FitOptions

    table = {k: v for k, v in section.items() if not (k == "metabolites" and not v)}
    try:
        FitOptions.from_dict(table)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: [fitting] {error}") from error


def check_ranges(config: dict, source: str) -> None:
    """Refuse, before any run, numeric options outside their range (ConfigError naming each
    key): a negative water concentration, a NaN threshold or 10^9 iterations would otherwise
    give wrong numbers silently or a run that never ends."""
    problems = numeric_problems(config)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


LONGEST_TIME_S = {"t2": 5.0, "t1": 10.0}
"""Longest plausible T2 / T1 (s) of water or a metabolite, in tissue or CSF, at any field (CSF
water: T2 about 2 s, T1 about 4.4 s): a longer time is almost surely given in ms."""
WATER_MM_RANGE = (100.0, 56000.0)
"""``water_concentration_mm`` other than 0 (computed): pure water is 55510 mM, tissue water
35000-45000 mM before relaxation, which a long TE or short TR lowers (GM at 3 T, TE 144 ms, TR
1.5 s: about 6600 mM; GM at 7 T, T2 50 ms, TE 200 ms: about 790 mM); a value in mol/L (55.5)
would give concentrations 1000 x too small."""


def _check_quantification(section: dict, source: str) -> None:
    """Reject unusable ``[quantification]`` tables before any run: tissue classes other than
    gm/wm/csf, negative fractions, non-positive relaxation times, times that look like ms and
    a water concentration that is not in mM."""
    from pipeline.fitting.quantification import TISSUE_CLASSES

    problems = []
    for key in ("tissue_fractions", "water_t2_s", "water_t1_s"):
        unknown = sorted(set(section.get(key, {})) - set(TISSUE_CLASSES))
        if unknown:
            problems.append(f"{key} has unknown tissue classes {unknown} (use gm, wm, csf)")
    fractions = section.get("tissue_fractions", {})
    if fractions and (any(not _non_negative(v) for v in fractions.values())
                      or sum(fractions.values()) <= 0):
        problems.append(f"tissue_fractions must be non-negative with a positive sum, "
                        f"got {fractions}")
    for key in ("water_t2_s", "water_t1_s", "metabolite_t2_s", "metabolite_t1_s"):
        bad = {k: v for k, v in section.get(key, {}).items()
               if not (_non_negative(v) and v > 0)}
        if bad:
            problems.append(f"{key} needs positive times in seconds, got {bad}")
        problems += _times_in_ms(key, section.get(key, {}))
    problems += _water_not_in_mm(section.get("water_concentration_mm", 0.0))
    if problems:
        raise ConfigError(f"{source}: [quantification] " + "; ".join(problems))


def _times_in_ms(key: str, table: dict) -> list[str]:
    """Entries of a T2/T1 table (s) longer than any T2/T1 in tissue (:data:`LONGEST_TIME_S`)."""
    longest = LONGEST_TIME_S[key.split("_")[1]]
    return [f"{key}.{name} = {value:g} is longer than any {key.split('_')[1].upper()} in "
            f"tissue ({longest:g} s): times are in seconds; {value:g} looks like ms "
            f"({value / 1000:g} s)"
            for name, value in table.items() if _non_negative(value) and value > longest]


def _water_not_in_mm(value) -> list[str]:
    """``water_concentration_mm`` neither 0 nor in :data:`WATER_MM_RANGE`."""
    low, high = WATER_MM_RANGE
    if not _non_negative(value) or value == 0 or low <= value <= high:
        return []
    hint = f"; {value:g} looks like mol/L ({value * 1000:g} mM)" if value <= 56 else ""
    return [f"water_concentration_mm = {value:g} is not a water concentration in mM: 0 "
            f"(computed) or {low:g}-{high:g} mM (pure water 55510 mM, tissue water "
            f"35000-45000 mM before relaxation){hint}"]


def _non_negative(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _check_qc_thresholds(config: dict, source: str) -> None:
    """Reject unknown metrics or malformed limits in ``[qc] thresholds`` before any run."""
    from pipeline.qc.flags import thresholds_with

    try:
        thresholds_with(config.get("qc", {}).get("thresholds"))
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def dumps_toml(config: dict) -> str:
    """The configuration as TOML text (tomli-w); a value TOML cannot hold is a ConfigError."""
    try:
        return tomli_w.dumps(config)
    except TypeError as exc:
        raise ConfigError(f"cannot write the configuration as TOML: {exc}") from None


def write_config(config: dict, path) -> Path:
    """Write the effective configuration atomically as TOML."""
    return atomic_write_text(path, dumps_toml(config))


# --- content of the files the configuration names (issue 17 item 1) --------------------------

FILE_KEYS = (("quantification", "tissue_fractions_file"), ("conversion", "chronograms"))
"""Configuration keys whose values are files (a path, or a list of paths) relative to the BIDS
root when not absolute."""


def file_digest(path, digest=file_sha256) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (:func:`pipeline.io.files.file_sha256`;
    or ``digest(path)``). Raises ConfigError naming a missing path."""
    try:
        return digest(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read a file the configuration names "
                          f"({exc.strerror or exc})") from None


def named_file_digests(config: dict, bids_root, basis_path=None) -> dict[str, str]:
    """``{"section.key[i]": sha256}`` of every file the configuration (and ``--basis``) names.

    A nipype node hashes a path string, not the file behind it: given this mapping (as
    canonical JSON, :func:`digests_json`) as an input, a node that reads one of these files
    reruns when its content changes, and is reused otherwise."""
    digests = {}
    for section, key in FILE_KEYS:
        value = config.get(section, {}).get(key)
        paths = value if isinstance(value, list) else [value] if value else []
        for i, item in enumerate(paths):
            path = Path(item)
            path = path if path.is_absolute() else Path(bids_root or Path.cwd()) / path
            name = f"{section}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
            digests[name] = file_digest(path)
    if basis_path:  # with the control files a single .RAW's grid may come from
        from pipeline.io.basis_formats import basis_sha256

        digests["basis"] = file_digest(basis_path, basis_sha256)
    return digests


def digests_json(digests: dict) -> str:
    """Canonical JSON of :func:`named_file_digests` (a deterministic node input)."""
    return json.dumps(digests, sort_keys=True)
