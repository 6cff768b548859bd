"""[diffusion] options that gave invalid or repeated rows (probe s20 F9, F12)."""

import warnings

import numpy as np
import pytest

from pipeline.diffusion import signals
from pipeline.diffusion.fitting import fit_model
from pipeline.diffusion.models import canonical_models, make_model
from pipeline.diffusion.table import fit_all_models


def test_model_aliases_are_one_model():
    assert canonical_models(["monoexp", "monoexponential", "adc", "kurtosis", "dki"]) == (
        ["monoexponential", "kurtosis"], ["monoexponential", "adc", "dki"])


def test_aliases_fit_and_write_the_model_once():
    """exp(-0.13 b): the ADC rows appear once, whatever names the model is given by."""
    b = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    rows = fit_all_models(b, np.exp(-0.13 * b), np.full(b.size, 0.01),
                          models=["monoexp", "monoexponential", "adc"])
    adc = [r for r in rows if r["model"] == "monoexponential" and r["parameter"] == "ADC"]
    assert len(adc) == 1 and adc[0]["value"] == pytest.approx(0.13, rel=1e-6)


def test_config_load_canonicalises_models_and_warns(tmp_path):
    from bids_app.config import load_config
    path = tmp_path / "c.toml"
    path.write_text('[diffusion]\nmodels = ["monoexp", "monoexponential", "adc", "kurtosis"]\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(path)
    assert config["diffusion"]["models"] == ["monoexponential", "kurtosis"]
    assert any("['monoexponential', 'adc'] dropped" in str(w.message) for w in caught)


def test_empty_model_list_warns_at_load(tmp_path):
    from bids_app.config import load_config
    path = tmp_path / "c.toml"
    path.write_text("[diffusion]\nmodels = []\n")
    with pytest.warns(UserWarning, match=r"models = \[\]: no diffusion model is fitted"):
        load_config(path)


def test_stick_sphere_radius_without_standard_error_is_not_applicable():
    """90 % sticks (D_intra 0.45 um^2/ms) + 10 % not decaying: the sphere radius goes to ~0
    with no standard error; the README's rule (no SE: not determined) makes it applicable 0
    (it was 1: the rule skipped parameters in um)."""
    b = np.array([0.0, 1.0, 2.0, 4.0, 7.0, 12.0, 20.0])
    s = 0.9 * signals.sticks_powder_average(b, 0.45) + 0.1
    fit = fit_model(make_model("stick_sphere", small_delta_ms=10.0, big_delta_ms=80.0), b, s,
                    np.full(b.size, 0.01))
    assert fit.params[1] == pytest.approx(0.45, rel=1e-3)
    assert fit.params[2] < 0.1 and not np.isfinite(fit.std_errors[2])
    assert not fit.applicable
    assert "radius_sphere has no standard error" in fit.reason


def test_bootstrap_of_an_exactly_determined_fit_is_not_available():
    """ADC on b <= 5 with b = 0, 2, 8, 12: 2 points for 2 parameters, residuals 0; the note
    says the interval is not available instead of a zero-width IQR."""
    b = np.array([0.0, 2.0, 8.0, 12.0])
    rows = fit_all_models(b, np.exp(-0.13 * b), np.full(b.size, 0.01),
                          models=["monoexponential"], uncertainty="bootstrap", n_draws=20)
    adc = next(r for r in rows if r["parameter"] == "ADC")
    assert adc["value"] == pytest.approx(0.13, rel=1e-6)
    assert "bootstrap interval not available: 2 points for 2 free parameters" in adc["note"]
    assert "IQR" not in adc["note"]


def test_too_few_points_note_names_a_b_limit_only_where_there_is_one():
    """A model without a b-range limit says "only 2 points", not "b <= None"."""
    b = np.array([0.0, 2.0])
    rows = fit_all_models(b, np.exp(-0.13 * b), np.full(b.size, 0.01),
                          models=["biexponential", "monoexponential"])
    biexp = next(r for r in rows if r["model"] == "biexponential")
    assert biexp["note"] == "model 'biexponential' has 4 free parameters but only 2 points"
    adc = next(r for r in rows if r["parameter"] == "ADC")
    assert adc["value"] == pytest.approx(0.13, rel=1e-6)


def test_unknown_diffusion_metabolite_is_refused_at_start():
    """A [diffusion] metabolites name no fit can produce is refused before any participant
    runs (it failed each participant after preprocessing and the fit, reported twice); basis
    entries of the simulated basis, sums and MM/lipid components pass."""
    from bids_app.config import load_default_config
    from bids_app.config_choices import diffusion_metabolite_problems

    config = load_default_config()
    config["diffusion"]["metabolites"] = ["tNAA", "Glu", "MM", "MM09", "Lip13"]
    assert diffusion_metabolite_problems(config) == []
    config["diffusion"]["metabolites"] = ["tNAA", "NAAx"]
    assert "['NAAx'] are not fitted" in diffusion_metabolite_problems(config)[0]
    config["diffusion"]["metabolites"] = ["Glu"]
    config["fitting"]["metabolites"] = ["NAA", "Cr"]  # the fit keeps only these
    assert "['Glu'] are not fitted" in diffusion_metabolite_problems(config)[0]


def test_participant_run_with_an_unknown_diffusion_metabolite_stops_before_writing(
        tmp_path, monkeypatch):
    """The command line refuses it with exit 2 before the output folder exists."""
    from bids_app.cli import main
    monkeypatch.chdir(tmp_path)  # its default work folder, ./work, goes there
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    config = tmp_path / "c.toml"
    config.write_text('[diffusion]\nmetabolites = ["NAAx"]\n')
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--config", str(config),
                 "--skip-bids-validation"]) == 2
    assert not out.exists()
