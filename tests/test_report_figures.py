"""Report figures and group statistics: deterministic SVG, model curves that are the fitted
models, decays normalised correctly, outlying participants named."""

import re

import numpy as np
import pytest

from bids_app import figures
from bids_app.group_report import robust_outliers
from bids_app.report import decay_panels, display_phase


def _amplitude_rows(name, b_s_mm2, amplitudes, crlbs):
    return [{"condition": str(i), "b_value": str(b), "direction": "n/a", "metabolite": name,
             "amplitude": str(a), "crlb": str(c), "crlb_percent": str(100 * c / a)}
            for i, (b, a, c) in enumerate(zip(b_s_mm2, amplitudes, crlbs))]


def test_decay_panel_curve_is_the_fitted_model():
    b = np.array([0.0, 1000.0, 3000.0, 6000.0])
    adc_um2_ms, s0 = 0.15, 7.0
    amplitudes = s0 * np.exp(-b / 1000 * adc_um2_ms)
    rows = _amplitude_rows("tNAA", b, amplitudes, 0.05 * amplitudes)
    diffusion = [{"metabolite": "tNAA", "model": "monoexponential", "parameter": "ADC",
                  "value": str(adc_um2_ms), "unit": "um^2/ms", "std_error": "0.01",
                  "applicable": "1", "note": ""}]
    (panel,) = decay_panels(rows, diffusion, metabolites=("tNAA",), models=("monoexponential",))
    np.testing.assert_allclose(panel["signal"], np.exp(-b / 1000 * adc_um2_ms))
    np.testing.assert_allclose(panel["error"], 0.05 * np.exp(-b / 1000 * adc_um2_ms))
    b_curve, s_curve = panel["curves"]["monoexponential"]
    np.testing.assert_allclose(s_curve, np.exp(-b_curve / 1000 * adc_um2_ms), rtol=1e-9)


def test_decay_panel_curve_stops_at_the_models_b_range():
    """Kurtosis is fitted on b <= 10 ms/um^2 (its default range): its curve is drawn only that
    far and scaled on those points, so it passes through the data it was fitted to even when
    higher shells (here at the noise floor) depart from it."""
    b = np.array([0.0, 2000.0, 6000.0, 10000.0, 12000.0, 20000.0])
    adc, k = 0.16, 1.0
    in_range = np.exp(-b / 1000 * adc + (b / 1000 * adc) ** 2 * k / 6)
    amplitudes = np.where(b <= 10000, in_range, 0.02)  # high shells: the floor, not the model
    rows = _amplitude_rows("tCho", b, amplitudes, 0.01 * np.ones(b.size))
    diffusion = [{"metabolite": "tCho", "model": "kurtosis", "parameter": p, "value": str(v),
                  "unit": "", "std_error": "0.01", "applicable": "1", "note": ""}
                 for p, v in (("ADC", adc), ("K", k))]
    (panel,) = decay_panels(rows, diffusion, metabolites=("tCho",), models=("kurtosis",))
    b_curve, s_curve = panel["curves"]["kurtosis"]
    assert b_curve.max() == 10000.0
    np.testing.assert_allclose(s_curve, np.exp(-b_curve / 1000 * adc
                                               + (b_curve / 1000 * adc) ** 2 * k / 6), rtol=1e-9)


def test_timed_models_get_a_curve_only_with_the_gradient_timing():
    """The cylinders fit (radius, D_intra) is drawn from the acquisition's delta/Delta: the
    curve is the model's own prediction (Van Gelderen, via pipeline.diffusion)."""
    from pipeline.diffusion import make_model

    timing = {"small_delta_ms": 5.0, "big_delta_ms": 40.0}
    model = make_model("cylinders", **timing)
    theta = [3.0, 0.5]
    b = np.array([0.0, 3000.0, 10000.0, 20000.0])
    amplitudes = 4.0 * model.predict(b / 1000, theta)
    rows = _amplitude_rows("tNAA", b, amplitudes, 0.05 * np.ones(b.size))
    diffusion = [{"metabolite": "tNAA", "model": "cylinders", "parameter": p, "value": str(v),
                  "unit": "", "std_error": "0.1", "applicable": "1", "note": ""}
                 for p, v in zip(model.parameter_names, theta)]
    (without,) = decay_panels(rows, diffusion, metabolites=("tNAA",), models=("cylinders",))
    assert without["curves"] == {}
    (panel,) = decay_panels(rows, diffusion, metabolites=("tNAA",), models=("cylinders",),
                            timing=timing)
    b_curve, s_curve = panel["curves"]["cylinders"]
    np.testing.assert_allclose(s_curve, model.predict(b_curve / 1000, theta), rtol=1e-9)


def test_decay_legend_names_every_model_drawn_in_any_panel():
    """Every model style draws (the timed models' dash patterns too) and the legend lists each
    model drawn in any panel once."""
    b = np.array([0.0, 1000.0])
    line = (b, np.array([1.0, 0.8]))
    panels = [{"name": name, "b_s_mm2": b, "signal": np.array([1.0, 0.8]),
               "error": np.array([0.01, 0.01]), "curves": curves}
              for name, curves in (("tNAA", {"monoexponential": line}),
                                   ("tCr", {m: line for m in figures.MODEL_STYLES}))]
    svg = figures.decay_figure(panels)
    assert all(svg.count(f">{model}<") == 1 for model in figures.MODEL_STYLES)


def test_inapplicable_models_get_no_curve():
    b = np.array([0.0, 3000.0])
    rows = _amplitude_rows("tCr", b, [1.0, 0.6], [0.1, 0.1])
    diffusion = [{"metabolite": "tCr", "model": "kurtosis", "parameter": p, "value": v,
                  "unit": "", "std_error": "n/a", "applicable": "0", "note": "needs 3 b"}
                 for p, v in (("ADC", "0.2"), ("K", "1.0"))]
    (panel,) = decay_panels(rows, diffusion, metabolites=("tCr",), models=("kurtosis",))
    assert panel["curves"] == {}


def test_svg_is_deterministic_and_undated():
    ppm = np.linspace(4.5, 0.0, 512)
    spectra = np.exp(-((ppm - 2.0) / 0.02) ** 2)[None, :] * np.ones((2, 1))
    panels = [{"label": "b=0", "data": spectra[0], "fit": spectra[1], "baseline": None,
               "components": {}}]
    first, second = figures.fit_figure(ppm, panels), figures.fit_figure(ppm, panels)
    assert first == second
    assert first.startswith("<svg") and "<dc:date>" not in first
    assert not re.search(r"20\d\d-\d\d-\d\dT", first)


def test_display_phase_makes_the_peak_real():
    ppm = np.linspace(4.5, 0.0, 256)
    peak = np.exp(-((ppm - 2.0) / 0.05) ** 2) * np.exp(1j * 1.2)
    factor = display_phase(peak[None, :], ppm)
    top = (peak * factor)[np.argmax(np.abs(peak))]
    assert top.real > 0 and abs(top.imag) < 1e-12


def test_robust_outliers_names_the_odd_participant():
    values = {f"sub-{i:02d}": v for i, v in enumerate([0.15, 0.16, 0.14, 0.155, 0.145, 0.40])}
    assert robust_outliers(values) == {"sub-05"}
    assert robust_outliers({"a": 1.0, "b": 2.0, "c": 9.0}) == set()   # too few to judge
    with pytest.raises(ValueError, match="no values"):
        figures.distribution_figure({}, "ADC", "um^2/ms")


def _two_condition_fit(mode="sequential"):
    from pipeline.basis import Basis
    from pipeline.fitting.conditions import fit_conditions
    from pipeline.spectra import ppm_to_hz, time_axis_s

    n_points, dwell_s, cf_mhz = 1024, 1 / 3000, 298.0
    t = time_axis_s(n_points, dwell_s)
    lines = {"NAA": (2.008, 3), "NAAG": (2.045, 3), "Cr": (3.027, 3), "PCr": (3.03, 3),
             "GPC": (3.21, 9), "Ins": (3.52, 6), "Tau": (3.42, 4)}
    basis = Basis(list(lines), np.array([h * np.exp(2j * np.pi * ppm_to_hz(p, cf_mhz) * t)
                                         for p, h in lines.values()]), dwell_s, cf_mhz)
    envelope = np.exp(-np.pi * 6.0 * t)
    truth = np.array([[10, 1, 6, 4, 2, 5, 1.5], [6, 0.6, 4, 2.5, 1.2, 3, 1.0]], float)
    rng = np.random.default_rng(1)
    fids = (truth @ basis.fids) * envelope + 0.2 * (rng.standard_normal((2, n_points))
                                                   + 1j * rng.standard_normal((2, n_points)))
    return fit_conditions(fids, basis, dwell_s, cf_mhz, [0.0, 3000.0], {"mode": mode}), n_points


@pytest.mark.parametrize("mode", ["sequential", "joint"])
def test_fit_display_rows_sum_back_to_the_fitted_spectrum(tmp_path, mode):
    from bids_app.report import DISPLAY_ROWS, fit_display_array, load_fit_display, \
        save_fit_display
    from pipeline.spectra import fid_to_spectrum, ppm_axis

    fits, n_points = _two_condition_fit(mode)
    assert fits.mode == mode
    points, ppm, spectra = fit_display_array(fits)
    assert spectra.dtype == np.complex64 and spectra.shape == (2, len(DISPLAY_ROWS), len(points))
    full_ppm = ppm_axis(n_points, 1 / 3000, 298.0)
    np.testing.assert_array_equal(ppm, full_ppm[points])
    assert 0.2 <= ppm.min() and ppm.max() <= 4.2 and len(points) < n_points / 2
    for c, f in enumerate(fits.fits):
        fitted = fid_to_spectrum(f.fitted_fid)[points]
        scale = np.abs(fitted).max()
        # baseline + main metabolites + the rest = the fit, to float32 precision
        np.testing.assert_allclose(spectra[c].sum(axis=0), fitted, rtol=0, atol=1e-6 * scale)
        naa = fid_to_spectrum(f.component_fids[[f.names.index("NAA"),
                                                f.names.index("NAAG")]].sum(axis=0))[points]
        np.testing.assert_allclose(spectra[c, DISPLAY_ROWS.index("tNAA")], naa,
                                   rtol=0, atol=1e-6 * scale)
        tau = fid_to_spectrum(f.component_fids[f.names.index("Tau")])[points]
        np.testing.assert_allclose(spectra[c, DISPLAY_ROWS.index("other")], tau,
                                   rtol=0, atol=1e-6 * scale)
        assert not np.any(spectra[c, DISPLAY_ROWS.index("Glx")])      # no Glu/Gln fitted
    path = save_fit_display(fits, tmp_path / "display.tsv")
    assert path.read_bytes() == save_fit_display(fits, tmp_path / "again.tsv").read_bytes()
    loaded = load_fit_display(path, 2, n_points)
    assert set(loaded[0]["components"]) == {"tNAA", "tCr", "tCho", "Ins"}
    outside = np.setdiff1d(np.arange(n_points), points)
    assert np.all(np.isnan(loaded[1]["baseline"][outside]))
    total = loaded[1]["baseline"][points] + sum(
        loaded[1]["components"][n][points] for n in loaded[1]["components"]) \
        + spectra[1, DISPLAY_ROWS.index("other")]
    fitted = fid_to_spectrum(fits.fits[1].fitted_fid)[points]
    np.testing.assert_allclose(total, fitted, rtol=0, atol=1e-5 * np.abs(fitted).max())
    assert load_fit_display(path, 3, n_points) == {}
    assert load_fit_display(tmp_path / "none.tsv", 2, n_points) == {}
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="bad.tsv"):
        load_fit_display(tmp_path / "bad.tsv", 2, n_points)


def test_fit_figure_draws_baseline_residual_and_main_metabolites(tmp_path):
    from bids_app.report import fit_svg, load_fit_display, save_fit_display
    from pipeline.acquisition import Acquisition

    fits, n_points = _two_condition_fit()
    data = np.array([f.fitted_fid + f.residual_fid for f in fits.fits])
    model = np.array([f.fitted_fid for f in fits.fits])

    def acquisition(fids):
        return Acquisition(fids[:, None, None, :], 1 / 3000, 298.0, np.array([0.0, 3000.0]),
                           np.full((2, 3), np.nan))

    display = load_fit_display(save_fit_display(fits, tmp_path / "d.tsv"), 2, n_points)
    def legend(svg):
        return {t.split(" (")[0] for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}

    shown = legend(fit_svg(acquisition(data), acquisition(model), ["b=0", "b=3000"], display))
    assert {"data", "fit", "baseline", "residual", "tNAA", "tCr", "tCho", "Ins"} <= shown
    assert "Glx" not in shown                      # not fitted: not drawn
    plain = legend(fit_svg(acquisition(data), acquisition(model), ["b=0", "b=3000"], {}))
    assert {"data", "fit", "residual"} <= plain and not plain & {"baseline", "tNAA"}


def test_group_distributions_split_by_session_and_site(tmp_path):
    from bids_app.group_report import group_parameter_figures, participant_sites

    (tmp_path / "participants.tsv").write_text(
        "participant_id\tsite\nsub-01\tA\nsub-02\tB\nsub-03\tn/a\n")
    sites = participant_sites(tmp_path)
    assert sites == {"sub-01": "A", "sub-02": "B"}
    rows = [{"participant_id": p, "session_id": ses, "metabolite": "tNAA",
             "model": "monoexponential", "parameter": "ADC", "value": str(v),
             "unit": "um^2/ms", "applicable": "1"}
            for p, ses, v in (("sub-01", "ses-1", 0.15), ("sub-02", "ses-1", 0.16),
                              ("sub-01", "ses-2", 0.14))]
    (figure,) = group_parameter_figures(rows, sites)
    for label in ("tNAA ses-1 A", "tNAA ses-1 B", "tNAA ses-2 A"):
        assert f">{label}<" in figure["svg"] or label in figure["svg"]


def test_group_concentrations_use_each_acquisitions_lowest_b_and_name_outliers():
    from bids_app.group_report import group_parameter_figures, lowest_b_rows

    amplitudes = []
    for i, mm in enumerate([12.1, 11.8, 12.4, 12.0, 30.0]):    # sub-05 is far off
        for b, scale in ((0.0, 1.0), (3000.0, 0.6)):
            amplitudes.append({"participant_id": f"sub-0{i + 1}", "session_id": "n/a",
                               "source": f"sub-0{i + 1}_svs", "metabolite": "tNAA",
                               "b_value": str(b), "concentration_mm": str(mm * scale)})
    low = lowest_b_rows(amplitudes)
    assert len(low) == 5 and {r["b_value"] for r in low} == {"0.0"}
    (figure,) = group_parameter_figures([], {}, amplitudes)
    assert figure["unit"] == "mM" and "lowest b" in figure["title"]
    assert figure["outliers"] == ["sub-05 (tNAA)"]
    # without water scaling (no concentration column) there is no such figure
    assert group_parameter_figures([], {}, [{k: v for k, v in r.items()
                                             if k != "concentration_mm"}
                                            for r in amplitudes]) == []


def test_bids_uris_resolve_against_the_source_dataset(tmp_path):
    import json

    from bids_app.report import resolve_source

    bids, out = tmp_path / "in put", tmp_path / "out"
    target = bids / "sub-01" / "mrs" / "sub-01_svs.nii.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    out.mkdir()
    (out / "dataset_description.json").write_text(json.dumps(
        {"SourceDatasets": [{"URL": bids.resolve().as_uri()}]}))     # "in%20put"
    assert resolve_source("bids::sub-01/mrs/sub-01_svs.nii.gz", out) == target.resolve()
    assert resolve_source("bids::sub-02/mrs/none.nii.gz", out) is None
    assert resolve_source(str(target), None) == target and resolve_source("", out) is None


def test_before_after_round_trip_through_the_shifts():
    from types import SimpleNamespace

    from bids_app.report import before_after
    from pipeline.qc.metrics import apply_shifts

    rng = np.random.default_rng(0)
    n_cond, n_trans, n_points, dwell_s = 2, 3, 64, 1e-3
    raw = rng.standard_normal((n_cond, n_trans, 1, n_points)) * (1 + 0.5j)
    freq, phase = rng.normal(0, 3, (n_cond, n_trans)), rng.normal(0, 20, (n_cond, n_trans))
    rows = [{"condition": c, "transient": t, "freq_shift_hz": freq[c, t],
             "phase_shift_deg": phase[c, t], "rejected": int(t == 2)}
            for c in range(n_cond) for t in range(n_trans)]
    acq = lambda fids: SimpleNamespace(fids=fids, n_conditions=n_cond, n_transients=n_trans,
                                       dwell_s=dwell_s)
    before, after, rejected = before_after(acq(raw), rows)
    assert rejected.tolist() == [[False, False, True]] * 2
    for c in range(n_cond):
        np.testing.assert_allclose(after[c], apply_shifts(before[c], dwell_s, freq[c], phase[c]))
    aligned = after[:, :, None, :]
    again_before, again_after, _ = before_after(acq(aligned), rows, aligned=True)
    # equal up to the display normalisation (one complex factor for the whole acquisition)
    k = np.vdot(after, again_after) / np.vdot(after, after)
    np.testing.assert_allclose(again_after, k * after, atol=1e-12)
    np.testing.assert_allclose(again_before, k * before, atol=1e-12)
    assert before_after(acq(raw), rows[:-1]) is None


# --- report display faults (2026-12-07): axes labelled, one text size --------------------------

def texts(svg: str) -> list[str]:
    """Every text drawn in an SVG (figures keep text as text: svg.fonttype none)."""
    return re.findall(r">([^<]*)</text>", svg)


def test_distribution_figures_have_one_width_whatever_their_columns():
    """The page scales each SVG to its width: a 3 in figure (2 metabolites) had text 2.5 x
    larger than the 7.5 in ones beside it."""
    def width(n):
        groups = {f"m{i}": [("01", 1.0 + i), ("02", 1.2 + i)] for i in range(n)}
        svg = figures.distribution_figure(groups, "K (kurtosis)", "1")
        return re.search(r'<svg[^>]*\bwidth="([^"]+)"', svg).group(1)

    assert width(2) == width(8) == width(12) == "540pt"


def test_fit_figure_labels_the_bottom_panel_of_each_column():
    """Three conditions in two columns: the right column ends a row above the bottom."""
    ppm = np.linspace(4.5, -0.5, 400)
    panels = [{"label": f"c{i}", "data": np.exp(-((ppm - 2) / 0.05) ** 2), "fit":
               np.exp(-((ppm - 2) / 0.05) ** 2), "baseline": None} for i in range(3)]
    drawn = texts(figures.fit_figure(ppm, panels))
    assert drawn.count("chemical shift (ppm)") == 2
    assert drawn.count("3.5") == 2  # ppm tick labels under both columns


@pytest.mark.parametrize("low, high", [(0.85, 1.05), (0.97, 1.01), (0.26, 1.05),
                                       (0.999, 1.001), (1e-4, 1.5)])
def test_log_ticks_give_at_least_three_inside_the_range(low, high):
    ticks = figures.log_ticks(low, high)
    assert len(ticks) >= 3 and len(set(f"{t:.6g}" for t in ticks)) == len(ticks)
    assert all(low <= t <= high for t in ticks) and ticks == sorted(ticks)


def test_a_narrow_decay_panel_has_three_labelled_y_ticks():
    """A decay within 6 % of 1 showed the single tick "1"."""
    b = np.array([0.0, 1000.0, 2000.0, 3000.0])
    panel = {"name": "tCr", "b_s_mm2": b, "signal": np.exp(-b * 2e-5), "error": 0.002 * b / b.max(),
             "curves": {}}
    drawn = texts(figures.decay_figure([panel]))
    y_labels = [t for t in drawn if re.fullmatch(r"0\.9\d*|1", t)]
    assert len(y_labels) >= 3, drawn


def test_drift_axes_say_drift_not_correction():
    """The plotted shifts are the drift found in the input (``_transients.tsv``); the
    alignment applied their negative."""
    svg = figures.drift_figure(np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 0.0]),
                               np.zeros(3, bool), np.zeros(3, int), {0: "b=0"})
    assert {"frequency drift (Hz)", "phase drift (deg)"} <= set(texts(svg))
