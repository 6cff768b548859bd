"""Plain single-voxel MRS is first class (issue 14 item 6): what decides that there is no
decay, no transient to align, and the methods text that follows from it. The end-to-end checks
on real data are in tests/test_e2e_nifti_input.py (check_plain_svs)."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.citation import methods_text, what_ran
from bids_app.report import transients_to_align
from pipeline.diffusion.amplitudes import has_decay
from pipeline.fitting import FitOptions, fit_conditions

from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, synthetic_fid

PLAIN = {"conversion.json": {"shape": [1, 1, 1, 2048], "b_values_s_mm2": [0.0]},
         "coils.json": {"n_coils": 1}, "residual_water.json": {}}
DMRS = {"conversion.json": {"shape": [6, 8, 4, 1024],
                            "b_values_s_mm2": [0, 1000, 3000, 6000, 10000, 20000]},
        "coils.json": {"n_coils": 4}, "residual_water.json": {}}
CONFIG = {"diffusion": {"models": ["monoexponential", "kurtosis"]}}


@pytest.mark.parametrize("b, expected", [([0.0], False), ([0.0, 0.0], False),
                                         ([1000.0, np.nan], False), ([0.0, 1000.0], True)])
def test_a_decay_needs_two_distinct_b_values(b, expected):
    assert has_decay(b) is expected


def test_transients_to_align_need_two_in_one_condition():
    one_each = [{"condition": "0"}, {"condition": "1"}]
    assert not transients_to_align(one_each)
    assert transients_to_align(one_each + [{"condition": "1"}])
    assert not transients_to_align([])


def test_plain_svs_methods_claim_no_alignment_coils_or_diffusion_modelling():
    assert what_ran([PLAIN]) == {"coils": False, "transients": False, "diffusion": False}
    text, keys = methods_text(CONFIG, None, [PLAIN])
    for claim in ("aligned", "rejected", "coils were combined", "decays", "modelled",
                  "diffusion condition", "one scale across the conditions", "drift"):
        assert claim not in text, claim
    assert "dmrs" not in keys and "specreg" not in keys and "kurtosis" not in keys
    assert "residual water was removed by HLSVD" in text


def test_dmrs_methods_keep_every_step_that_ran():
    text, keys = methods_text(CONFIG, None, [PLAIN, DMRS])
    for claim in ("coils were combined", "aligned in frequency and phase within each diffusion "
                  "condition", "outlier transients were rejected", "decays", "drift"):
        assert claim in text, claim
    assert {"dmrs", "specreg", "kurtosis"} <= set(keys)


def test_plain_svs_with_transients_is_aligned_but_not_modelled():
    many = {**PLAIN, "conversion.json": {"shape": [1, 64, 32, 2048], "b_values_s_mm2": [0.0]},
            "coils.json": {"n_coils": 32}}
    text, _ = methods_text(CONFIG, None, [many])
    assert "transients were aligned in frequency and phase by spectral registration" in text
    assert "coils were combined" in text and "decays" not in text


def test_drift_axes_do_not_magnify_numerical_noise():
    """Shifts of 1e-7 Hz span at least 1 Hz / 5 deg on the drift figure's axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bids_app.figures import DRIFT_MIN_SPAN, _at_least_span

    fig, ax = plt.subplots()
    values = np.array([0.0, 1e-7, -2e-7])
    ax.plot(values)
    _at_least_span(ax, values, DRIFT_MIN_SPAN["frequency (Hz)"])
    low, high = ax.get_ylim()
    assert high - low == pytest.approx(1.0) and low < values.min() and high > values.max()
    fig2, ax2 = plt.subplots()
    wide = np.array([-3.0, 4.0])
    ax2.plot(wide)
    before = ax2.get_ylim()
    _at_least_span(ax2, wide, 1.0)
    assert ax2.get_ylim() == before
    plt.close(fig)
    plt.close(fig2)


def test_methods_say_the_basis_lost_the_removal_windows_lines():
    fitted = {**PLAIN, "fit.json": {"basis_without_water_lines_ppm": [4.0, 5.5]}}
    text, _ = methods_text(CONFIG, None, [fitted])
    assert ("residual water was removed by HLSVD (components within 4-5.5 ppm; the basis "
            "spectra lost their lines in the same window)") in text
    whole = {**PLAIN, "fit.json": {"basis_without_water_lines_ppm": []}}
    assert "basis spectra lost" not in methods_text(CONFIG, None, [whole])[0]


def test_methods_name_the_baseline_each_fit_recorded():
    """A joint dMRS fit records a polynomial per condition (``joint_baseline``), a single
    spectrum the spline: the methods say which, from each fit.json, not the single-spectrum
    setting for both."""
    basis = singlet_basis(["NAA", "Cr", "Cho"])
    fid = synthetic_fid(basis, {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3}, noise_sd=0.01,
                        rng=np.random.default_rng(0))
    options = FitOptions(ppm_range=(1.0, 4.0))
    series = fit_conditions(np.array([fid, 0.7 * fid, 0.5 * fid]), basis, DWELL_S, CF_MHZ,
                            [0.0, 1000.0, 3000.0], options)
    single = fit_conditions(fid[None], basis, DWELL_S, CF_MHZ, [0.0], options)
    assert series.mode == "joint" and series.extra["baseline"] == {"kind": "poly", "order": 2}
    assert single.extra["baseline"] == {"kind": "spline", "knot_spacing_ppm": 0.1}
    joint = {**DMRS, "fit.json": {"mode": series.mode, "baseline": series.extra["baseline"]}}
    svs = {**PLAIN, "fit.json": {"mode": single.mode, "baseline": single.extra["baseline"]}}
    text, _ = methods_text(CONFIG, None, [joint])
    assert "with a polynomial baseline of order 2" in text and "spline" not in text
    text, _ = methods_text(CONFIG, None, [svs])
    assert "with a cubic B-spline baseline (knots every 0.1 ppm)" in text
    text, _ = methods_text(CONFIG, None, [svs, joint])
    assert ("a polynomial baseline of order 2 in joint fits and a cubic B-spline baseline "
            "(knots every 0.1 ppm) in sequential fits") in text
    same = fit_conditions(np.array([fid, 0.7 * fid]), basis, DWELL_S, CF_MHZ, [0.0, 1000.0],
                          FitOptions(ppm_range=(1.0, 4.0), joint_baseline="same"))
    assert same.extra["baseline"]["kind"] == "spline"
