"""Processing configuration: the packaged defaults merged with a user's TOML file.

Configuration is declarative data only (TOML read with :mod:`tomllib`); nothing a user passes
is executed. Unknown keys are refused with an error naming the key, so a typo never silently
falls back to a default. The effective configuration is written back as TOML into the outputs.
"""

from __future__ import annotations

import copy
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import tomli_w

from pipeline.io.files import atomic_write_text

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


def merge_config(defaults: dict, user: dict, source: str = "config", _prefix: str = "") -> dict:
    """``user`` merged over ``defaults``; unknown keys or wrong types raise :class:`ConfigError`.

    Tables whose default is empty (``{}``) are free-form and accept any keys.
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
        if isinstance(default, dict) and default:
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
    _check_qc_thresholds(config, source)
    _check_quantification(config.get("quantification", {}), source)
    return config


def _check_quantification(section: dict, source: str) -> None:
    """Reject unusable ``[quantification]`` tables before any run: tissue classes other than
    gm/wm/csf, negative fractions, non-positive relaxation times."""
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
    if problems:
        raise ConfigError(f"{source}: [quantification] " + "; ".join(problems))


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
