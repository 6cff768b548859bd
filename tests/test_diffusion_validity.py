"""Issue 15 items 1-2: no physically impossible value marked applicable; shells by gradient.

Truths are analytic: noise-free decays of known parameters, tensors with known eigenvalues, and
the direction-specific b-values of a DW-sLASER set (3 shells x 3 directions).
"""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import erf

from pipeline.diffusion import fit_all_models
from pipeline.diffusion.applicability import (FREE_WATER_DIFFUSIVITY_37C_UM2_MS,
                                              METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS,
                                              physical_limit_reasons)
from pipeline.diffusion.models import Kurtosis, MonoExponential, Sticks
from pipeline.diffusion.powder import group_shells, powder_average, shells_within
from pipeline.diffusion.tensor import direction_design_rank, fit_tensor, tensor_identifiable

ORTHO = np.eye(3)
SIX = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], float)
SIX /= np.linalg.norm(SIX, axis=1, keepdims=True)
SLASER_B_S_MM2 = np.array([[614, 889, 660], [2113, 2609, 2197], [4524, 5240, 4644]], float)


def _rows(rows, model, parameter):
    return [r for r in rows if r["model"] == model and r["parameter"] == parameter]


def _tilted(directions, degrees, seed):
    """Each direction tilted by ``degrees`` about a random axis (cross-terms per b-value)."""
    rng = np.random.default_rng(seed)
    out = []
    for v in directions:
        axis = np.cross(v, rng.normal(size=3))
        axis /= np.linalg.norm(axis)
        t = np.radians(degrees)
        out.append(v * np.cos(t) + np.cross(axis, v) * np.sin(t))
    return np.array(out)


def _directional(dirs_per_shell, b_shells, tensor):
    b = np.concatenate([[0.0], np.repeat(b_shells, len(dirs_per_shell[0]))])
    g = np.vstack([[np.nan] * 3, *dirs_per_shell])
    gz = np.nan_to_num(g)
    s = np.exp(-b * np.einsum("ni,ij,nj->n", gz, tensor, gz))
    return b, g, s


# --- item 1: tensor -----------------------------------------------------------------------

def test_three_directions_tilted_per_b_get_no_tensor():
    """3 nominal directions, each tilted by 10 deg differently at each b (9 'unique' vectors):
    the design has rank 3, so the tensor row is empty and not applicable, with its reason."""
    dirs = [_tilted(ORTHO, 10.0, seed) for seed in (1, 2, 3)]
    b, g, s = _directional(dirs, np.array([0.9, 2.3, 4.8]), np.diag([0.2, 0.15, 0.1]))
    assert direction_design_rank(g[1:]) == 3
    rows = fit_all_models(b, s, 0.002, directions=g, models=("monoexponential",), n_draws=0)
    tensor = [r for r in rows if r["model"] == "tensor"]
    assert len(tensor) == 1 and np.isnan(tensor[0]["value"]) and tensor[0]["applicable"] == 0
    assert "non-collinear" in tensor[0]["reason"] and "rank 3" in tensor[0]["reason"]
    with pytest.raises(ValueError, match="non-collinear"):
        fit_tensor(b, g, s, 0.002)


def test_coplanar_six_directions_are_rank_deficient():
    angles = np.radians(np.arange(6) * 30.0)
    coplanar = np.column_stack([np.cos(angles), np.sin(angles), np.zeros(6)])
    ok, why = tensor_identifiable(coplanar, np.ones(6))
    assert not ok and "rank 3" in why
    assert tensor_identifiable(SIX, np.ones(6))[0]


def test_tensor_is_positive_definite_where_the_linear_fit_is_not():
    """Signals generated with a negative z eigenvalue (-0.05, what an unconstrained log-linear fit
    returns from them): the Cholesky fit keeps every eigenvalue >= 0 and FA <= 1, the smallest
    sits at the bound 0, and the rows are not applicable with that reason."""
    b, g, s = _directional([SIX, SIX], np.array([1.0, 2.0]), np.diag([0.3, 0.1, -0.05]))
    t = fit_tensor(b, g, s, 0.01)
    assert t.eigenvalues.min() >= -1e-12 and t.eigenvalues.min() < 1e-4
    assert 0.0 <= t.fa <= 1.0
    rows = fit_all_models(b, s, 0.01, directions=g, models=("monoexponential",), n_draws=0)
    for name in ("MD", "FA", "lambda1", "lambda3"):
        (row,) = _rows(rows, "tensor", name)
        assert row["applicable"] == 0 and "positive-definite bound" in row["reason"]


def test_valid_tensor_stays_applicable_and_exact():
    tensor = np.diag([0.25, 0.1, 0.1])
    b, g, s = _directional([SIX, SIX], np.array([1.0, 2.0]), tensor)
    rows = fit_all_models(b, s, 0.001, directions=g, models=("monoexponential",), n_draws=0)
    (md,) = _rows(rows, "tensor", "MD")
    (fa,) = _rows(rows, "tensor", "FA")
    assert md["applicable"] == 1 and md["reason"] == ""
    assert md["value"] == pytest.approx(0.15, rel=1e-6)
    expected_fa = np.sqrt(1.5 * (0.1**2 + 2 * 0.05**2) / (0.25**2 + 2 * 0.1**2))
    assert fa["value"] == pytest.approx(expected_fa, rel=1e-6)


# --- item 1: bounds and physical limits ------------------------------------------------------

B = np.array([0.0, 0.5, 1.0, 1.5, 2.5, 3.5, 5.0])


def test_increasing_signal_pins_adc_at_zero_bound():
    """S = exp(+0.05 b) cannot be a decay: ADC goes to its lower bound 0 -> not applicable."""
    rows = fit_all_models(B, np.exp(0.05 * B), 0.01, models=("monoexponential",), n_draws=0)
    (adc,) = _rows(rows, "monoexponential", "ADC")
    assert adc["value"] == pytest.approx(0.0, abs=1e-6)
    assert adc["applicable"] == 0 and "at bound: ADC" in adc["reason"]


@pytest.mark.parametrize("adc, expected", [(0.2, ""), (2.0, "free aqueous diffusivity of metabolites")])
def test_adc_above_metabolite_free_diffusivity_not_applicable(adc, expected):
    rows = fit_all_models(B, np.exp(-adc * B), 0.001, models=("monoexponential",), n_draws=0,
                          b_limits={"monoexponential": 5.0})
    (row,) = _rows(rows, "monoexponential", "ADC")
    assert row["value"] == pytest.approx(adc, rel=1e-5)
    assert row["applicable"] == (0 if expected else 1)
    assert expected in row["reason"]


def test_sticks_d_intra_of_1_44_flagged():
    """The issue's Glu value: sticks D_intra 1.44 um^2/ms (> 1.4, free glycine at 37 C)."""
    b = np.array([0.0, 0.2, 0.5, 1.0, 2.0, 3.0])
    x = b * 1.44  # randomly oriented sticks: sqrt(pi / (4 x)) erf(sqrt(x)), 1 at b = 0
    truth = np.ones_like(b)
    truth[1:] = np.sqrt(np.pi / (4 * x[1:])) * erf(np.sqrt(x[1:]))
    rows = fit_all_models(b, truth, 0.001, models=("sticks",), n_draws=0)
    (row,) = _rows(rows, "sticks", "D_intra")
    assert row["value"] == pytest.approx(1.44, rel=1e-4)
    assert row["applicable"] == 0 and "1.44 um^2/ms exceeds" in row["reason"]


@pytest.mark.parametrize("k, ok", [(1.0, True), (4.0, False), (-0.5, False)])
def test_kurtosis_outside_zero_three_not_applicable(k, ok):
    """Noise-free cumulant decays (monotonic range b < 3/(ADC K)) return K exactly."""
    b = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
    adc = 0.5
    s = np.exp(-b * adc + (b * adc) ** 2 * k / 6.0)  # the cumulant expansion, written out
    fit = Kurtosis().fit(b, s, sigma=1e-3)
    assert fit.param("K") == pytest.approx(k, abs=1e-4)
    reasons = physical_limit_reasons(fit.model, fit.params)
    assert (not reasons) == ok
    assert fit.applicable == ok  # b*ADC*K <= 0.6 < 3 here: only the physical limit can reject
    if not ok:
        assert "outside the physical range [0, 3]" in fit.reason


def test_limits_are_the_cited_constants():
    assert FREE_WATER_DIFFUSIVITY_37C_UM2_MS == 3.0
    # glycine 1.06 um^2/ms at 25 C x (310.15/298.15) x (0.890/0.692) mPa s
    assert METABOLITE_FREE_DIFFUSIVITY_37C_UM2_MS == pytest.approx(1.06 * 310.15 / 298.15 * 0.890 / 0.692,
                                                                   abs=0.05)
    assert physical_limit_reasons(MonoExponential(), [3.2])[0].endswith("(3 um^2/ms)")
    assert physical_limit_reasons(Sticks(), [0.5]) == []


# --- item 2: shells by gradient -----------------------------------------------------------

def _slaser():
    b = np.concatenate([[0.0], SLASER_B_S_MM2.ravel() / 1000.0])
    g = np.vstack([[np.nan] * 3, np.tile(ORTHO, (3, 1))])
    gradient = np.concatenate([[0.0], np.repeat([15.0, 25.0, 35.0], 3)])
    return b, g, gradient


@pytest.mark.parametrize("how", ["gradient", "label", "direction rank"])
def test_direction_specific_b_values_form_one_shell_per_gradient(how):
    b, g, gradient = _slaser()
    kwargs = {"gradient": {"gradient_strength": gradient},
              "label": {"shell_label": ["b0"] + [f"G{x:g}" for x in gradient[1:]]},
              "direction rank": {}}[how]
    shells = group_shells(b, directions=g, **kwargs)
    assert shells.method == how
    np.testing.assert_array_equal(shells.labels, [0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    np.testing.assert_allclose(shells.b_mean_ms_um2[1:], SLASER_B_S_MM2.mean(axis=1) / 1000.0)
    np.testing.assert_array_equal(shells.n_directions[1:], [3, 3, 3])
    assert np.all(shells_within(shells, 5.0))  # top shell mean 4.803 <= 5: kept whole


def test_b_limit_keeps_whole_shells_and_adc_matches_truth():
    """Isotropic D = 0.15: each direction decays as exp(-b_i D). Averaged per gradient shell
    at its mean b, the b <= 5 fit keeps all 4 shells and returns D within the Jensen gap
    (< 0.2 %), instead of dropping the 5.24 ms/um^2 point of one direction."""
    b, g, gradient = _slaser()
    d = 0.15
    s = np.exp(-b * d)
    rows = fit_all_models(b, s, 0.002, directions=g, gradient_strength=gradient,
                          models=("monoexponential",), n_draws=0)
    (adc,) = _rows(rows, "monoexponential", "ADC")
    assert adc["value"] == pytest.approx(d, rel=2e-3)
    assert "(4 of" not in adc["note"] and "5 of" not in adc["note"]
    assert "powder average over 3 directions per shell (shells by gradient" in adc["note"]
    assert "directions per shell: 3 at b=0.721, 3 at b=2.31, 3 at b=4.8" in adc["note"]


def test_powder_average_uses_shell_mean_b():
    b, g, gradient = _slaser()
    shells = group_shells(b, directions=g, gradient_strength=gradient)
    avg = powder_average(b, np.exp(-0.2 * b), labels=shells.labels)
    np.testing.assert_allclose(avg.b_ms_um2[1:], SLASER_B_S_MM2.mean(axis=1) / 1000.0)
    np.testing.assert_array_equal(avg.n_directions, [1, 3, 3, 3])


def test_tolerance_fallback_groups_within_fifteen_percent():
    b = np.array([0.0, 1.0, 1.12, 1.05, 2.0, 2.2, 3.0])
    shells = group_shells(b)
    assert shells.method == "b tolerance"
    np.testing.assert_array_equal(shells.labels, [0, 1, 1, 1, 2, 2, 3])


def test_unbalanced_directions_fall_back_to_tolerance():
    """Direction rank needs the same number of b-values per direction; otherwise b tolerance."""
    b = np.array([0.0, 1.0, 1.1, 2.0])
    g = np.vstack([[np.nan] * 3, ORTHO[[0, 1, 0]]])
    shells = group_shells(b, directions=g)
    assert shells.method == "b tolerance"
    np.testing.assert_array_equal(shells.labels, [0, 1, 1, 2])


# --- report: greyed-out rows with their reason ---------------------------------------------

def test_report_greys_out_not_applicable_rows_with_reason():
    from bids_app.report import _environment
    rows = [{"metabolite": "Glu", "model": "sticks", "parameter": "D_intra", "value": "1.44",
             "std_error": "0.1", "unit": "um^2/ms", "applicable": "0", "note": "",
             "reason": "D_intra = 1.44 um^2/ms exceeds the free aqueous diffusivity"},
            {"metabolite": "tNAA", "model": "sticks", "parameter": "D_intra", "value": "0.5",
             "std_error": "0.02", "unit": "um^2/ms", "applicable": "1", "note": "", "reason": ""}]
    section = {"anchor": "a", "stem": "s", "parameters": rows, "main_parameters": [rows[1]],
               "svgs": {}, "provenance": {}, "files": {}}
    html = _environment().get_template("participant_report.html.j2").render(
        subject="01", sections=[section], version="x", methods="", references=[], versions=[])
    assert "tr.not-applicable td" in html  # grey style shipped in the page
    grey = html.split('<tr class="not-applicable">')
    assert len(grey) == 2 and grey[1].split("</tr>")[0].count("exceeds the free aqueous") == 1
    assert "<th>reason (not applicable)</th>" in html


@pytest.mark.slow
def test_invivo_steam_with_chronogram_b_values_has_no_impossible_applicable_value(shared_data):
    """The issue's case: 7 T DW-STEAM, b-values and directions from the gradient chronograms
    (3 directions tilted per b). Preprocess, fit, model: no tensor, and no applicable row with
    a value beyond a physical limit (the issue counted 47)."""
    import importlib.util
    from pathlib import Path

    from pipeline.diffusion import diffusion_table, gradient_timing_ms
    from pipeline.fitting.conditions import fit_conditions
    from pipeline.io.basis_formats import read_basis
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.preprocess.pipeline import preprocess_acquisition
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_diffusion_invivo.py"
    spec = importlib.util.spec_from_file_location("bench_invivo", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    folder = shared_data / "dmrs_7t_steam_invivo"
    acq = read_nifti_mrs(folder / "nifti" / "metab.nii.gz", sidecar=bench.SIDECAR, b_value_units="s/mm2")
    acq = bench.with_chronograms(acq, folder / "chronogram")
    water = read_nifti_mrs(folder / "nifti" / "water.nii.gz", sidecar=bench.SIDECAR, b_value_units="s/mm2")
    avg = preprocess_acquisition(acq, water).averaged
    fits = fit_conditions(avg.fids[:, 0, 0, :], read_basis(folder / "basis_STEAM_TE45_TM60.BASIS"),
                          avg.dwell_s, avg.cf_mhz, avg.b_values_s_mm2, bench.app_fit_options())
    assert len(set(np.round(avg.b_values_s_mm2[1:]))) == 9  # direction-specific b-values
    names = [n for n in ("tNAA", "tCr", "tCho", "Glx") if n in fits.sums] + list(fits.names)
    timing = gradient_timing_ms(avg.metadata)
    rows = diffusion_table({n: fits.series(n) for n in names}, avg.b_values_s_mm2,
                           directions=avg.directions, models=("monoexponential", "kurtosis", "sticks"),
                           small_delta_ms=timing["small_delta_ms"], big_delta_ms=timing["big_delta_ms"],
                           uncertainty="jacobian")
    assert all(r["applicable"] == 0 and "non-collinear" in r["reason"]
               for r in rows if r["model"] == "tensor")
    assert bench.impossible_applicable(rows) == []
    assert all(r["reason"] for r in rows if not r["applicable"])
    (adc,) = [r for r in rows if r["metabolite"] == "tNAA" and r["parameter"] == "ADC"
              and r["model"] == "monoexponential"]
    assert adc["applicable"] == 1 and 0.1 <= adc["value"] <= 0.25  # published WM range


def test_preprocessing_powder_average_takes_gradient_shells():
    """The workflow's FID-level powder average, given group_shells labels, averages the three
    direction-specific b-values of each gradient into one shell at its mean b."""
    from pipeline.preprocess.average import powder_average as fid_powder_average
    b, g, gradient = _slaser()
    labels = group_shells(b, directions=g, gradient_strength=gradient).labels
    values = np.exp(-0.2 * b)[:, None] * np.ones((1, 4))
    averaged, shell_b = fid_powder_average(values, b * 1000.0, labels=labels)
    np.testing.assert_allclose(shell_b[1:], SLASER_B_S_MM2.mean(axis=1))
    np.testing.assert_allclose(averaged[1:, 0], np.exp(-0.2 * SLASER_B_S_MM2 / 1000.0).mean(axis=1))
    unlabelled, _ = fid_powder_average(values, b * 1000.0)
    assert unlabelled.shape[0] > 4  # exact-b tolerance (50 s/mm^2) splits the gradient shells


def test_shell_hints_come_from_per_condition_metadata_only():
    """Shell labels / gradient strengths are used only when the metadata gives one per condition,
    and they override the b-tolerance grouping (direction-specific b of one gradient = 1 shell)."""
    from pipeline.diffusion.powder import group_shells, shell_hints

    b = np.array([0.0, 0.614, 0.889, 0.660, 2.113, 2.609, 2.197])
    meta = {"DiffusionGradientStrength": [0, 15, 15, 15, 25, 25, 25], "ShellLabel": "x"}
    hints = shell_hints(meta, b.size)
    assert hints == {"gradient_strength": [0, 15, 15, 15, 25, 25, 25]}
    assert shell_hints({"DiffusionGradientStrength": [0, 15]}, b.size) == {}
    shells = group_shells(b, None, **hints)
    assert shells.method == "gradient"
    assert shells.labels.tolist() == [0, 1, 1, 1, 2, 2, 2]
    assert np.allclose(shells.b_mean_ms_um2, [0.0, np.mean(b[1:4]), np.mean(b[4:])])


def _parameter_rows(rows, model):
    return [r for r in rows if r["model"] == model and r["parameter"] not in ("AIC", "BIC")]


def test_parameters_the_data_do_not_determine_are_not_applicable():
    """A bi-exponential fitted to a mono-exponential decay (ADC 0.15, noise 0.02) leaves its
    fraction without a standard error and D_fast at 0.15 +/- 6e4: not applicable, with the
    reason; the mono-exponential ADC of the same data stays applicable and near the truth."""
    b = np.array([0, 1, 3, 6, 10, 20.0])
    rng = np.random.default_rng(0)
    signal = np.exp(-0.15 * b) + 0.02 * rng.standard_normal(b.size)
    rows = fit_all_models(b, signal, np.full(b.size, 0.02), metabolite="X",
                          models=("monoexponential", "biexponential"))
    (adc,) = _parameter_rows(rows, "monoexponential")
    assert adc["applicable"] == 1 and abs(adc["value"] - 0.15) < 3 * adc["std_error"]
    biexp = _parameter_rows(rows, "biexponential")
    assert biexp and all(r["applicable"] == 0 for r in biexp)
    assert "not determined by the data" in biexp[0]["reason"]


def test_standard_error_rules_are_absolute_not_relative():
    """Undetermined means an SE above half the physical range, never SE > value (a relative
    cut would drop small measured values and bias group means); an estimate within 5 % of its
    SE from a bound is at that bound."""
    from pipeline.diffusion.applicability import statistically_at_bound, undetermined_reasons

    mono = MonoExponential()
    assert undetermined_reasons(mono, [0.05], [0.2]) == []            # SE 4 x value: kept
    assert undetermined_reasons(mono, [0.1], [0.8])                    # 0.8 > 1.4 / 2
    assert undetermined_reasons(mono, [0.1], [np.nan])
    assert undetermined_reasons(Kurtosis(), [0.1, 0.8], [0.01, 1.4]) == []   # K: half of 3
    lower, upper = mono.bounds
    assert statistically_at_bound([1.1e-6], [0.91], lower, upper).tolist() == [True]
    assert statistically_at_bound([0.05], [0.91], lower, upper).tolist() == [False]
    assert statistically_at_bound([1e-4], [np.nan], lower, upper).tolist() == [False]


def test_a_metabolite_not_detected_at_the_lowest_b_gets_no_decay_model():
    b = np.array([0, 1, 3, 6, 10, 20.0])
    rng = np.random.default_rng(1)
    noise_only = 0.02 + 0.03 * rng.standard_normal(b.size)
    rows = fit_all_models(b, noise_only, np.full(b.size, 0.03), metabolite="Y",
                          models=("monoexponential", "sticks"))
    assert rows and all(r["applicable"] == 0 for r in rows)
    assert all("not detected at the lowest b" in r["reason"] for r in rows)


def test_undetected_reason_states_the_threshold_and_the_sd_it_is_made_of():
    """Amplitude 9.57 with an SD of 7.41 is within 2 SD (14.82) of 0: the note gives both
    numbers, so it reads true (before, it printed the SD as if it were the 2-SD threshold)."""
    from pipeline.diffusion.table import undetected_reason

    reason = undetected_reason(9.57, 7.41)
    assert "within 2 SD = 14.8 of 0" in reason and "SD 7.41" in reason
    assert undetected_reason(15.0, 7.41) == ""


def test_a_model_that_does_not_describe_the_decay_is_not_applicable():
    """Known noise (CRLBs): a bi-exponential decay (0.7 exp(-0.2 b) + 0.3 exp(-0.02 b)) fitted
    with sticks leaves chi^2 far above its degrees of freedom, p < 1e-4: the row says so and
    is not applicable (the demo's creatine, a bi-exponential, got sticks D_intra 0.87 +- 0.07
    marked applicable with chi^2 39.4 on 4 dof). Exact data of the fitted model pass."""
    from pipeline.diffusion.table import fit_all_models

    b = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 20.0, 25.0])
    biexp = 0.7 * np.exp(-0.2 * b) + 0.3 * np.exp(-0.02 * b)
    rows = fit_all_models(b, biexp, np.full(b.size, 0.005), models=("sticks",), n_draws=0)
    (d,) = [r for r in rows if r["parameter"] == "D_intra"]
    assert d["applicable"] == 0 and "the model does not describe this decay" in d["reason"]
    assert "lack of fit: chi^2 = " in d["note"]
    mono = np.exp(-0.15 * b)
    rows = fit_all_models(b, mono, np.full(b.size, 0.005), models=("monoexponential",),
                          n_draws=0)
    (adc,) = [r for r in rows if r["parameter"] == "ADC"]
    assert adc["applicable"] == 1 and "lack of fit" not in adc["note"]


def test_representations_and_small_misfits_are_never_rejected_for_lack_of_fit():
    """A p-value alone rejects every approximate model once the CRLBs are small: with CRLBs of
    0.4 % of S0 the mono-exponential ADC of a brain-like bi-exponential decay and the same decay
    fitted with sticks (a misfit under 2 % of S0) keep their rows; the note gives the test."""
    from pipeline.diffusion.table import fit_all_models

    b = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0])
    decay = 0.7 * np.exp(-0.08 * b) + 0.3 * np.exp(-0.45 * b)
    rows = fit_all_models(b, decay, np.full(b.size, 0.004),
                          models=("monoexponential", "kurtosis", "sticks"), n_draws=0)
    for model, parameter in (("monoexponential", "ADC"), ("kurtosis", "K"),
                             ("sticks", "D_intra")):
        (row,) = [r for r in rows if r["model"] == model and r["parameter"] == parameter]
        assert "lack of fit" in row["note"] and "does not describe" not in row["note"]
        assert "does not describe" not in row["reason"]
    (sticks,) = [r for r in rows if r["parameter"] == "D_intra"]
    assert "p = 2e-25, RMS misfit 1.6 % of S0" in sticks["note"]  # significant, but small


def test_standard_errors_widen_with_moderate_lack_of_fit():
    """chi^2/dof above 1 at 1e-4 <= p < 0.05: the SE is the noise-only SE times
    sqrt(chi^2/dof) (Birge ratio), and the note says by how much."""
    from pipeline.diffusion.fitting import fit_model
    from pipeline.diffusion.models import MonoExponential

    b = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    wobble = np.array([0.0, 0.012, -0.012, 0.012, -0.012, 0.012])
    s = np.exp(-0.15 * b) + wobble
    sigma = np.full(b.size, 0.008)
    plain = fit_model(MonoExponential(), b, s, sigma=sigma)
    tested = fit_model(MonoExponential(), b, s, sigma=sigma, lack_of_fit_test=True)
    dof = b.size - 2
    assert 1e-4 <= tested.lack_of_fit_p < 0.05 and tested.chi2 > dof
    assert tested.std_errors[0] == pytest.approx(plain.std_errors[0]
                                                 * np.sqrt(tested.chi2 / dof), rel=1e-6)
    assert "SEs widened by sqrt(chi^2/dof)" in tested.note


def test_a_radius_without_standard_error_is_said_so_not_nan():
    """A note never prints nan: the demo's tNAA sticks row read "R = 3.6e-06 +/- nan um"."""
    from pipeline.diffusion.applicability import _RULES

    fit = SimpleNamespace(params=[0.46, 3.6e-6], std_errors=[0.03, np.nan],
                          b_used_ms_um2=np.array([0.0, 2.0, 6.0, 12.0, 20.0]),
                          model=SimpleNamespace(small_delta_ms=5.0, big_delta_ms=40.0,
                                                upper=[3.0, 20.0]))
    _, _, per_parameter = _RULES["cylinders"](fit, 5, 20.0, 0.011)
    reason = per_parameter["radius"][1]
    assert "nan" not in reason and "R = 3.6e-06 um (SE not available)" in reason
