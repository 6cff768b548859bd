"""Configuration values that pass a type check but would silently give wrong numbers (probe
s19): relaxation times in ms, a water concentration in mol/L, misspelt choices, names in
free-form tables that match nothing. Each is refused at load naming section.key, or (names
only the basis can tell) warned about at fit time naming the key and the available names."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.config import ConfigError, load_config
from pipeline.fitting.water_scaling import quantify_rows
from test_fitting_support import singlet_basis


def _load(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path, lambda: load_config(path)


# --- A: [quantification] -------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("[quantification]\nmetabolite_t2_s = {default = 160}\n",
     "metabolite_t2_s.default = 160 is longer than any T2 in tissue (5 s): times are in "
     "seconds; 160 looks like ms (0.16 s)"),
    ("[quantification]\nwater_t2_s = {gm = 110, wm = 80, csf = 500}\n",
     "water_t2_s.gm = 110 is longer than any T2 in tissue (5 s): times are in seconds; 110 "
     "looks like ms (0.11 s)"),
    ("[quantification]\nmetabolite_t1_s = {NAA = 1400}\n",
     "metabolite_t1_s.NAA = 1400 is longer than any T1 in tissue (10 s)"),
    ("[quantification]\nwater_concentration_mm = 55.5\n",
     "water_concentration_mm = 55.5 is not a water concentration in mM: 0 (computed) or "
     "100-56000 mM (pure water 55510 mM, tissue water 35000-45000 mM before relaxation); "
     "55.5 looks like mol/L (55500 mM)"),
    ("[quantification]\nwater_concentration_mm = 60000.0\n",
     "'quantification.water_concentration_mm' = 60000.0 is outside its range [0, 56000]"),
])
def test_quantification_values_in_the_wrong_unit_are_refused(tmp_path, text, expected):
    path, load = _load(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load()
    assert str(path) in str(err.value) and expected in str(err.value), str(err.value)


def test_plausible_quantification_values_load(tmp_path):
    _, load = _load(tmp_path, "[quantification]\nwater_concentration_mm = 35880.0\n"
                              "water_t2_s = {gm = 0.11, wm = 0.08, csf = 2.0}\n"
                              "water_t1_s = {gm = 1.8, wm = 1.1, csf = 4.4}\n"
                              "metabolite_t2_s = {NAA = 0.25, default = 0.16}\n")
    assert load()["quantification"]["water_concentration_mm"] == 35880.0


def _quantified(metabolite_t2_s):
    """Concentrations and flags of NAA/Cr/tNAA rows scaled with this metabolite T2 table."""
    basis = singlet_basis(["NAA", "Cr"])
    water = np.exp(-np.arange(basis.n_points) * basis.dwell_s * 20.0) * 1000.0
    rows = [{"condition": 0, "metabolite": name, "amplitude": 0.1, "crlb": 0.01}
            for name in ("NAA", "Cr", "tNAA")]  # brain-like mM: no implausibility warning
    opts = {"metabolite_t2_s": metabolite_t2_s, "water_concentration_mm": 30000.0}
    out, report = quantify_rows(rows, opts, water.astype(complex), basis.dwell_s, basis,
                                {"EchoTime": 0.1}, basis.cf_mhz, "01", "")
    return {r["metabolite"]: r["concentration_mm"] for r in out}, report["flags"]


def test_metabolite_t2_names_that_match_nothing_are_warned_about_and_keep_the_t2_warning():
    """Before: {naa = 0.25} corrected nothing and the 'not corrected for metabolite T2' warning
    disappeared (the table was not empty)."""
    plain, plain_flags = _quantified({})
    lower, flags = _quantified({"naa": 0.25})
    assert lower == plain  # nothing is corrected, as before ...
    assert any("not corrected for metabolite T2" in f for f in plain_flags)
    assert ("[quantification] metabolite_t2_s: 'naa' matches no name in the fit (metabolites "
            "and sums) (did you mean 'NAA' for 'naa'?); ignored. Available: NAA, Cr, tNAA, "
            "default") in flags
    assert ("concentrations of NAA, Cr, tNAA are not corrected for metabolite T2 "
            "([quantification] metabolite_t2_s has no entry for them and no default)") in flags


def test_metabolite_t2_table_corrects_named_metabolites_and_sums_and_names_the_rest():
    plain, _ = _quantified({})
    corrected, flags = _quantified({"NAA": 0.25})
    factor = 1 / np.exp(-0.1 / 0.25)
    assert corrected["NAA"] == pytest.approx(plain["NAA"] * factor)
    assert corrected["tNAA"] == pytest.approx(plain["tNAA"] * factor)  # its member's T2
    assert corrected["Cr"] == plain["Cr"]
    assert flags == ["concentrations of Cr are not corrected for metabolite T2 "
                     "([quantification] metabolite_t2_s has no entry for them and no default)"]
    _, flags = _quantified({"NAA": 0.25, "default": 0.16})
    assert flags == []


# --- B: choice keys ------------------------------------------------------------------------

@pytest.mark.parametrize("section, key, value, allowed", [
    ("diffusion", "uncertainty", "boot", "'jacobian', 'bootstrap', 'montecarlo'"),
    ("conversion", "b_value_units", "s/mm^2", "'auto', 's/mm2', 'ms/um2'"),
    ("diffusion", "powder_method", "median", "'arithmetic', 'geometric'"),
    ("preprocessing", "powder_method", "median", "'arithmetic', 'geometric'"),
    ("macromolecules", "mode", "measure", "'auto', 'measured', 'basis', 'parametric', 'none'"),
    ("basis", "sequence", "slasre", "'', 'fid', 'se', 'press', 'steam', 'slaser'"),
    ("conversion", "chronogram_sequence", "stem", "'auto', 'steam', 'se', 'press', 'slaser'"),
    ("conversion", "chronogram_assignment", "shell", "'auto', 'position', 'shell_direction'"),
])
def test_misspelt_choices_are_refused_at_load(tmp_path, section, key, value, allowed):
    """Before: uncertainty = "boot" ran to exit 0 with every diffusion row n/a; the others
    failed each participant late (a nipype TraitError naming neither key nor file)."""
    path, load = _load(tmp_path, f'[{section}]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError) as err:
        load()
    assert f"{path}: '{section}.{key}' = {value!r} is not one of {allowed}" in str(err.value)


@pytest.mark.parametrize("key, value, expected", [
    ("align_reference", "Water", "align_reference must be 'metabolites' or 'water', got 'Water'"),
    ("mirror_policy", "fixx", "mirror_policy must be 'fix', 'refuse' or 'off', got 'fixx'"),
])
def test_preprocessing_choices_are_refused_at_load(tmp_path, key, value, expected):
    path, load = _load(tmp_path, f'[preprocessing]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError) as err:
        load()
    assert f"{path}: [preprocessing]: {expected}" in str(err.value)


def test_every_allowed_choice_and_a_sequence_spelling_load(tmp_path):
    from bids_app.config_choices import choice_table

    for (section, key), (allowed, _) in choice_table().items():
        for value in allowed:
            _, load = _load(tmp_path, f'[{section}]\n{key} = "{value}"\n')
            assert load()[section][key] == value
    _, load = _load(tmp_path, '[basis]\nsequence = "semiLASER"\n')
    assert load()["basis"]["sequence"] == "semiLASER"


def test_a_choice_error_exits_2_naming_the_key(tmp_path, capsys):
    from bids_app import cli

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "dataset_description.json").write_text('{"Name": "x"}')
    path, _ = _load(tmp_path, '[diffusion]\nuncertainty = "boot"\n')
    status = cli.main([str(tmp_path / "in"), str(tmp_path / "out"), "participant", "--config",
                       str(path), "-w", str(tmp_path / "work")])
    assert status == cli.EXIT_USAGE
    assert "'diffusion.uncertainty' = 'boot' is not one of" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("uncertainty", "boot"),
                                           ("powder_method", "median")])
def test_a_diffusion_configuration_error_fails_the_stage_not_n_a_rows(option, value):
    """Before: the unknown uncertainty was caught as each model's failure: every row n/a."""
    from pipeline.diffusion import diffusion_table

    b = np.array([0.0, 1000.0, 3000.0])
    series = {"NAA": (np.exp(-0.2 * b / 1000), None)}
    assert diffusion_table(series, b, models=("monoexponential",))  # fits as it is
    with pytest.raises(ValueError, match=rf"\[diffusion\] {option} must be one of .*"
                                         rf"got '{value}'"):
        diffusion_table(series, b, models=("monoexponential",), **{option: value})


# --- C: [diffusion] timings are seconds ---------------------------------------------------

@pytest.mark.parametrize("diffusion_time_s, expected_ms", [(0.9, 900.0), (1.2, 1200.0),
                                                           (2.0, 2000.0)])
def test_config_diffusion_time_of_a_second_or_more_is_seconds(diffusion_time_s, expected_ms):
    """Before: 1.2 s (long-diffusion-time STEAM) was read as 1.2 ms, 0.9 as 900 ms."""
    from pipeline.diffusion import gradient_timing_ms

    timing = gradient_timing_ms({}, gradient_duration_s=0.01, diffusion_time_s=diffusion_time_s)
    assert timing["diffusion_time_ms"] == pytest.approx(expected_ms)
    assert timing["small_delta_ms"] == pytest.approx(10.0)
    assert timing["big_delta_ms"] == pytest.approx(expected_ms + 10.0 / 3)
    from_sidecar = gradient_timing_ms({"DiffusionTime": diffusion_time_s,
                                       "DiffusionGradientDuration": 0.01})
    assert from_sidecar["diffusion_time_ms"] == pytest.approx(expected_ms)


# --- D: names in free-form fit tables ------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("joint_b_max_ms_um2 = {NAA = 5}", "joint_b_max_ms_um2 keys must be diffusion model names "
     "(monoexponential, kurtosis, biexponential, sticks, cylinders, stick_sphere, "
     "anisotropic_cylinders), got ['NAA']"),
    ("joint_b_max_ms_um2 = {free = 5}", "joint_b_max_ms_um2 keys must be diffusion model names"),
    ("joint_b_max_ms_um2 = {monoexponential = -5}", "joint_b_max_ms_um2 values must be "
     "positive b-values (ms/um^2), got {'monoexponential': -5}"),
    ("joint_b_max_ms_um2 = {kurtosis = 0}", "joint_b_max_ms_um2 values must be positive"),
])
def test_joint_b_max_needs_model_names_and_positive_values(tmp_path, text, expected):
    path, load = _load(tmp_path, f"[fitting]\n{text}\n")
    with pytest.raises(ConfigError) as err:
        load()
    assert str(path) in str(err.value) and expected in str(err.value), str(err.value)


def test_joint_b_max_of_a_model_alias_reaches_that_model():
    """Before: {monoexp = 2} was looked up under 'monoexp', never the model's name: no limit."""
    from pipeline.fitting.joint import resolve_models
    from pipeline.fitting.options import FitOptions

    options = FitOptions(joint_b_max_ms_um2={"monoexp": 2.0}, joint_default_model="adc")
    models, labels = resolve_models(["NAA", "MM09"], options)
    assert labels == ["adc", "monoexponential"]
    assert [m.b_max_ms_um2 for m in models] == [2.0, 2.0]


def test_joint_model_and_tie_names_not_in_the_basis_are_warned_about():
    """Before: joint_models = {glu = ...} and joint_tied = [["GPC", "PCho"]] on a basis with
    Glu and PCh were ignored without a word."""
    from pipeline.fitting.joint import resolve_models, tie_leaders
    from pipeline.fitting.options import FitOptions

    names = ["NAA", "Glu", "GPC", "PCh"]
    options = FitOptions(joint_models={"glu": "kurtosis", "NAA": "monoexponential"},
                         joint_tied=[["GPC", "PCho"]], joint_default_model="biexponential")
    with pytest.warns(UserWarning) as caught:
        _, labels = resolve_models(names, options)
        leader = tie_leaders(names, labels, options.joint_tied)
    assert labels == ["monoexponential", "biexponential", "biexponential", "biexponential"]
    assert leader == [0, 1, 2, 3]  # nothing tied
    assert [str(w.message) for w in caught] == [
        "[fitting] joint_models: 'glu' matches no name in the basis (did you mean 'Glu' for "
        "'glu'?); ignored. Available: NAA, Glu, GPC, PCh",
        "[fitting] joint_tied: 'PCho' matches no name in the basis (did you mean 'PCh' for "
        "'PCho'?); ignored. Available: NAA, Glu, GPC, PCh"]


def test_config_timing_ranges_are_the_sidecar_timing_limits():
    """[diffusion] gradient_duration_s / diffusion_time_s stand in for the sidecar's
    DiffusionGradientDuration / DiffusionTime, so they have the same limits (a value in ms
    is refused either way: 60 for a 60 ms diffusion time)."""
    from bids_app.config import NUMERIC_RANGES
    from pipeline.io.input_checks import TIMING_LIMITS_S

    assert NUMERIC_RANGES[("diffusion", "gradient_duration_s")][1] == \
        TIMING_LIMITS_S["DiffusionGradientDuration"]
    assert NUMERIC_RANGES[("diffusion", "diffusion_time_s")][1] == \
        TIMING_LIMITS_S["DiffusionTime"]


def test_a_water_concentration_lowered_by_a_long_echo_time_loads(tmp_path):
    """GM water at 7 T (T2 about 50 ms) at TE 200 ms: about 790 mM after relaxation."""
    _, load = _load(tmp_path, "[quantification]\nwater_concentration_mm = 790.0\n")
    assert load()["quantification"]["water_concentration_mm"] == 790.0

