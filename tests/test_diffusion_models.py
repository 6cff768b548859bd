"""Models, fitting, uncertainties, applicability and the _diffusion.tsv rows, on ground truth."""

import numpy as np
import pytest

from pipeline.diffusion import COLUMNS, MODELS, fit_all_models, gradient_timing_ms, make_model, signals
from pipeline.diffusion.fitting import estimate_sigma_biexponential, fit_model_batch
from pipeline.diffusion.models import BiExponential, Cylinders, Kurtosis, MonoExponential, Sticks
from pipeline.diffusion.table import diffusion_table

B = np.array([0.0, 1.5, 3.0, 5.0, 8.5, 15.0, 25.0])


def test_noiseless_monoexponential_gives_exact_adc():
    b = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    for adc in (0.05, 0.17, 0.6):
        fit = MonoExponential().fit(b, 3.2 * np.exp(-b * adc))
        assert fit.param("ADC") == pytest.approx(adc, rel=1e-8)
        assert fit.s0 == pytest.approx(3.2, rel=1e-8)


@pytest.mark.parametrize("model, truth", [
    (Kurtosis(), (0.15, 0.9)),
    (BiExponential(), (0.6, 0.35, 0.03)),
    (Sticks(), (0.45,)),
    (Cylinders(15.0, 60.0), (0.4, 2.5)),
])
def test_noiseless_fits_recover_parameters(model, truth):
    b = np.linspace(0, 25, 12) if model.name != "kurtosis" else np.linspace(0, 6, 8)
    fit = model.fit(b, model.predict(b, truth))
    assert np.allclose(fit.params, truth, rtol=1e-5)


@pytest.mark.parametrize("name", ["monoexponential", "kurtosis", "biexponential", "sticks"])
def test_analytic_jacobians_match_finite_differences(name):
    model = make_model(name)
    p = model.initial_grid()[len(model.initial_grid()) // 2]
    analytic = model.jacobian(B, p)
    numeric = super(type(model), model).jacobian(B, p)
    assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_registry_and_aliases():
    assert {"monoexponential", "kurtosis", "biexponential", "sticks", "cylinders", "stick_sphere",
            "anisotropic_cylinders"} <= set(MODELS)
    assert make_model("adc").name == "monoexponential"
    with pytest.raises(ValueError, match="unknown diffusion model"):
        make_model("ivim")
    with pytest.raises(ValueError, match="DiffusionGradientDuration"):
        make_model("cylinders", small_delta_ms=None, big_delta_ms=60.0)


def test_jacobian_errors_match_monte_carlo_scatter():
    """Weighted LS: the Jacobian standard error predicts the spread of refits on fresh noise."""
    model = Sticks()
    truth = 0.4
    sigma = 0.02
    clean = model.predict(B, [truth])
    rng = np.random.default_rng(3)
    noisy = clean + rng.normal(0, sigma, (400, B.size))
    batch = fit_model_batch(model, B, noisy, sigma)
    single = model.fit(B, clean, sigma=sigma)
    assert np.std(batch.params[:, 0]) == pytest.approx(single.std_errors[0], rel=0.15)
    assert abs(np.median(batch.params[:, 0]) - truth) < 0.01


def test_batch_fit_agrees_with_single_fits():
    model = Cylinders(15.0, 60.0)
    rng = np.random.default_rng(0)
    noisy = model.predict(B, (0.35, 2.0)) + rng.normal(0, 0.02, (20, B.size))
    batch = fit_model_batch(model, B, noisy, 0.02)
    chi_single = np.array([model.fit(B, y, sigma=0.02).chi2 for y in noisy])
    assert np.all(batch.chi2 <= chi_single * (1 + 1e-6) + 1e-9)
    # and the estimates centre on the truth: medians within ~2 standard errors of a median of
    # 20 fits (Jacobian SE 0.038 um^2/ms and 0.35 um, divided by sqrt(20))
    assert np.median(batch.params[:, 0]) == pytest.approx(0.35, abs=0.02)
    assert np.median(batch.params[:, 1]) == pytest.approx(2.0, abs=0.15)


def test_monte_carlo_and_bootstrap_are_seeded_and_match_the_jacobian():
    """Seeded resampling repeats exactly; its spread agrees with the Jacobian error (a linear
    model's exact answer) and a normal IQR is 1.349 SD."""
    s = signals.kurtosis(B[:5], 0.2, 1.0) + np.random.default_rng(1).normal(0, 0.01, 5)
    a = Kurtosis().fit(B[:5], s, sigma=0.01, uncertainty="montecarlo", n_draws=400, seed=7)
    b = Kurtosis().fit(B[:5], s, sigma=0.01, uncertainty="montecarlo", n_draws=400, seed=7)
    c = Kurtosis().fit(B[:5], s, sigma=0.01, uncertainty="bootstrap", n_draws=400, seed=7)
    assert a.resampled == b.resampled
    assert a.resampled["ADC"]["q25"] < a.param("ADC") < a.resampled["ADC"]["q75"]
    for name, jacobian_se in zip(("ADC", "K"), a.std_errors):
        assert a.resampled[name]["std"] == pytest.approx(jacobian_se, rel=0.15)
        assert a.resampled[name]["iqr"] == pytest.approx(1.349 * jacobian_se, rel=0.2)
        # the residual bootstrap of 5 points is cruder, but of the same size
        assert c.resampled[name]["std"] == pytest.approx(jacobian_se, rel=0.5)


def test_sigma_from_biexponential_residuals():
    b = np.linspace(0, 30, 25)
    clean = signals.biexponential(b, 0.7, 0.3, 0.02)
    estimates = [estimate_sigma_biexponential(b, clean + np.random.default_rng(k).normal(0, 0.03, b.size))
                 for k in range(12)]
    assert np.median(estimates) == pytest.approx(0.03, rel=0.25)
    assert estimate_sigma_biexponential(b[:4], clean[:4]) is None


def test_information_criteria_prefer_the_true_model():
    b = np.linspace(0, 25, 15)
    s = signals.biexponential(b, 0.6, 0.4, 0.02) + np.random.default_rng(5).normal(0, 0.005, b.size)
    mono = MonoExponential(b_max_ms_um2=np.inf).fit(b, s, sigma=0.005)
    bi = BiExponential().fit(b, s, sigma=0.005)
    assert bi.aic < mono.aic and bi.bic < mono.bic


def test_bad_input_raises():
    with pytest.raises(ValueError, match="equal length"):
        MonoExponential().fit(B, np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        MonoExponential().fit(B, np.ones(B.size), sigma=-1.0)
    with pytest.raises(ValueError, match="free parameters"):
        BiExponential().fit(B[:3], np.ones(3))
    with pytest.raises(ValueError, match="uncertainty"):
        Sticks().fit(B, np.ones(B.size), uncertainty="guess")


def _rows(rows, model, parameter):
    return [r for r in rows if r["model"] == model and r["parameter"] == parameter]


def test_table_rows_columns_and_monoexponential_range_note():
    s = signals.sticks_powder_average(B, 0.4) + np.random.default_rng(2).normal(0, 0.01, B.size)
    rows = fit_all_models(B, s, 0.01, metabolite="tCr", small_delta_ms=15, big_delta_ms=60,
                          echo_time_ms=40, diffusion_time_ms=55, n_draws=50)
    assert all(tuple(r) == COLUMNS for r in rows)
    (adc,) = _rows(rows, "monoexponential", "ADC")
    assert "b <= 5 ms/um^2 (4 of 7 points)" in adc["note"]
    assert "diffusion time 55 ms" in adc["note"] and "TE 40 ms" in adc["note"]
    (bi,) = _rows(rows, "biexponential", "D_fast")
    assert bi["applicable"] in (0, 1) and bi["unit"] == "um^2/ms"


def test_radius_reported_only_when_resolvable():
    truth_r = 2.0
    clean = signals.cylinders_powder_average(B, 0.35, truth_r, 15, 60)
    good = fit_all_models(B, clean + np.random.default_rng(0).normal(0, 0.002, B.size), 0.002,
                          small_delta_ms=15, big_delta_ms=60, models=("cylinders",), n_draws=30)
    (r,) = _rows(good, "cylinders", "radius")
    assert r["applicable"] == 1 and r["value"] == pytest.approx(truth_r, rel=0.15)
    noisy = fit_all_models(B[:4], clean[:4] + np.random.default_rng(0).normal(0, 0.1, 4), 0.1,
                           small_delta_ms=15, big_delta_ms=60, models=("cylinders",), n_draws=30)
    (r,) = _rows(noisy, "cylinders", "radius")
    assert r["applicable"] == 0 and "not identifiable" in r["note"]
    (sticks,) = _rows(noisy, "sticks", "D_intra")
    assert "reported instead of cylinders" in sticks["note"]


def test_missing_timing_flags_cylinders():
    rows = fit_all_models(B, signals.sticks_powder_average(B, 0.4), 0.01, models=("cylinders",), n_draws=0)
    (r,) = _rows(rows, "cylinders", "radius")
    assert r["applicable"] == 0 and "gradient duration" in r["note"] and np.isnan(r["value"])


def test_few_b_values_noise_unknown_and_biexponential_not_applicable():
    b = np.array([0.0, 0.9, 2.15, 3.95])
    s = np.exp(-0.15 * b) * (1 + np.random.default_rng(4).normal(0, 0.01, 4))
    rows = fit_all_models(b, s, None, models=("monoexponential", "biexponential"), n_draws=20)
    (adc,) = _rows(rows, "monoexponential", "ADC")
    assert adc["value"] == pytest.approx(0.15, rel=0.1)
    assert "noise unknown" in adc["note"]
    assert all(r["applicable"] == 0 for r in rows if r["model"] == "biexponential")
    rows = fit_all_models(b[:3], s[:3], None, models=("cylinders",), small_delta_ms=15, big_delta_ms=84,
                          n_draws=0)
    (radius,) = _rows(rows, "cylinders", "radius")
    assert radius["applicable"] == 0 and "noise level unknown" in radius["note"]


def test_table_is_deterministic_for_a_seed():
    s = signals.kurtosis(B[:5], 0.2, 1.0) + np.random.default_rng(1).normal(0, 0.01, 5)
    one = fit_all_models(B[:5], s, 0.01, seed=3, n_draws=40)
    two = fit_all_models(B[:5], s, 0.01, seed=3, n_draws=40)
    assert one == two or all(a == b or (np.isnan(a["std_error"]) and np.isnan(b["std_error"]))
                             for a, b in zip(one, two))


def test_directions_powder_average_and_tensor_rows():
    dirs = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], float)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    tensor = np.diag([0.25, 0.1, 0.1])
    b_shell = np.array([1.0, 2.0])
    b = np.concatenate([[0.0], np.repeat(b_shell, 6)])
    g = np.vstack([[np.nan] * 3, np.tile(dirs, (2, 1))])
    s = np.exp(-b * np.einsum("ni,ij,nj->n", np.nan_to_num(g), tensor, np.nan_to_num(g)))
    rows = fit_all_models(b, s, 0.001, directions=g, models=("monoexponential",), n_draws=0)
    (md,) = _rows(rows, "tensor", "MD")
    (fa,) = _rows(rows, "tensor", "FA")
    assert md["value"] == pytest.approx(0.15, rel=1e-6)
    expected_fa = np.sqrt(1.5 * ((0.1) ** 2 + 2 * 0.05**2) / (0.25**2 + 2 * 0.1**2))
    assert fa["value"] == pytest.approx(expected_fa, rel=1e-6)
    (adc,) = _rows(rows, "monoexponential", "ADC")
    assert "powder average over 6 directions" in adc["note"]


def test_diffusion_table_converts_s_mm2_and_flags_empty_metabolites():
    b_s_mm2 = np.array([0.0, 1000.0, 2000.0, 3000.0, 4000.0])
    series = {"tNAA": (10 * np.exp(-0.15 * b_s_mm2 / 1000), np.full(5, 0.05)),
              "GABA": (np.zeros(5), np.full(5, 0.1)),
              "Asp": (np.array([0.0, 0.1, 0.0, 0.05, 0.0]), np.full(5, 0.1))}
    rows = diffusion_table(series, b_s_mm2, models=("monoexponential",), n_draws=0)
    (adc,) = [r for r in rows if r["metabolite"] == "tNAA" and r["parameter"] == "ADC"]
    assert adc["value"] == pytest.approx(0.15, rel=1e-6)
    (gaba,) = [r for r in rows if r["metabolite"] == "GABA"]
    assert gaba["applicable"] == 0 and "non-positive" in gaba["note"]
    (asp,) = [r for r in rows if r["metabolite"] == "Asp"]
    assert asp["applicable"] == 0 and "lowest b is not positive" in asp["note"]
    same = diffusion_table({"tNAA": series["tNAA"]}, b_s_mm2 / 1000, b_value_units="ms/um2",
                           models=("monoexponential",), n_draws=0)
    assert same[0]["value"] == pytest.approx(adc["value"], rel=1e-12)
    with pytest.raises(ValueError, match="unknown b-value unit"):
        diffusion_table({"tNAA": series["tNAA"]}, b_s_mm2, b_value_units="s/m2")


def test_gradient_timing_from_sidecar_seconds_and_config():
    t = gradient_timing_ms({"DiffusionGradientDuration": 0.015, "DiffusionTime": 0.079, "EchoTime": 0.045})
    assert t["small_delta_ms"] == pytest.approx(15.0)
    assert t["big_delta_ms"] == pytest.approx(84.0)
    assert t["echo_time_ms"] == pytest.approx(45.0)
    t = gradient_timing_ms({}, gradient_duration_s=0.015, diffusion_time_s=0.055)
    assert t["big_delta_ms"] == pytest.approx(60.0)
    assert gradient_timing_ms({})["small_delta_ms"] is None


def test_anisotropic_cylinders_model_fit_and_table():
    grads = np.array([[1, 1, -0.5], [1, -0.5, 1], [-0.5, 1, 1]]) / 1.5
    fibres, weights = np.array([[0, 0, 1.0], [1.0, 0, 0]]), np.array([0.8, 0.2])
    model = make_model("anisotropic_cylinders", small_delta_ms=15, big_delta_ms=60, gradient_directions=grads,
                       fibre_directions=fibres, fibre_weights=weights, wm_fraction=0.7)
    b = np.linspace(0, 25, 10)
    fit = model.fit(b, model.predict(b, (0.42, 3.0)), uncertainty="montecarlo", n_draws=5)
    assert np.allclose(fit.params, (0.42, 3.0), rtol=1e-4)
    b_cond = np.concatenate([[0.0], np.repeat(b[1:], 3)])
    g = np.vstack([[np.nan] * 3, np.tile(grads, (b.size - 1, 1))])
    per_direction = [float(signals.anisotropic_cylinders(np.array([bb]), 0.42, 3.0, 15, 60, gg[None] if bb else grads,
                                                         fibres, weights, 0.7)[0]) for bb, gg in zip(b_cond, g)]
    rows = fit_all_models(b_cond, per_direction, 0.001, directions=g, models=("anisotropic_cylinders",),
                          small_delta_ms=15, big_delta_ms=60, fibre_directions=fibres, fibre_weights=weights,
                          wm_fraction=0.7, n_draws=0)
    (d,) = _rows(rows, "anisotropic_cylinders", "D_intra")
    assert d["value"] == pytest.approx(0.42, rel=1e-3)


def test_fit_carries_applicability_flag_and_note():
    s = signals.sticks_powder_average(B, 0.4)
    mono = MonoExponential().fit(B, s, sigma=0.01)
    assert mono.applicable and "b <= 5 ms/um^2 (4 of 7 points)" in mono.note
    biexp = BiExponential().fit(B[:4], s[:4], sigma=0.01)
    assert not biexp.applicable and "needs >= 5 b-values" in biexp.note
    cyl = Cylinders(15.0, 60.0).fit(B, s + np.random.default_rng(0).normal(0, 0.05, B.size), sigma=0.05)
    assert cyl.parameter_applicability["radius"][0] is False


def test_unconstrained_parameter_has_no_finite_error():
    """A radius collapsing to ~0 on stick data is not constrained: NaN, never a zero error."""
    fit = Cylinders(15.0, 60.0).fit(B[:4], signals.sticks_powder_average(B[:4], 0.4), sigma=0.01)
    assert fit.param("radius") < 0.05
    assert np.isnan(fit.std_errors[1]) and np.isfinite(fit.std_errors[0])


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e5, 1e9])
def test_standard_errors_do_not_depend_on_the_scale_of_the_data(scale):
    """Known noise (CRLBs): the ADC's SE is the Fisher bound sqrt((J'J)^-1) of the weighted
    Jacobian [S0 (-b) exp(-b D), exp(-b D)] / sigma, computed here directly, at any data scale
    (integer scanner data are 1e5 x larger; the SE was 0.0091 there against 0.0118, and none at
    1e-9, before 2026-12-07)."""
    from pipeline.diffusion.fitting import fit_model
    from pipeline.diffusion.models import MonoExponential

    b = np.array([0.0, 1.0, 3.0, 5.0])
    s = 9.2 * np.exp(-0.137 * b) * (1 + np.array([0.01, -0.02, 0.015, -0.01]))
    sigma = np.full(4, 0.03 * 9.2)
    fit = fit_model(MonoExponential(), b, s * scale, sigma=sigma * scale)
    adc, s0 = fit.params[0], fit.s0 / scale
    jac = np.column_stack([s0 * -b * np.exp(-b * adc), np.exp(-b * adc)]) / sigma[:, None]
    expected = np.sqrt(np.linalg.inv(jac.T @ jac)[0, 0])
    assert fit.std_errors[0] == pytest.approx(expected, rel=1e-4)
