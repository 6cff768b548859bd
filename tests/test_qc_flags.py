"""QC thresholds: exact pass/warn/fail boundaries, and flags that fire on simulated bad data
(broad lines, low SNR, many outliers, residual water, broad water) and stay quiet on good data."""

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.preprocess.align import align_conditions
from pipeline.preprocess.outliers import detect_outliers
from pipeline.qc import flags as qcflags
from pipeline.qc import metrics
from pipeline.qc.summary import condition_metrics, judged, similarity_metrics, summarise
from pipeline.simulate.synthetic import SyntheticSpec, simulate_acquisition
from pipeline.spectra import ppm_to_hz, time_axis_s

N_POINTS, DWELL_S, CF_MHZ = 2048, 1 / 4000, 298.06
SINGLETS = {"NAA": (2.008, 3), "Cr": (3.027, 3), "GPC": (3.212, 9), "Ins": (3.52, 6),
            "Glu": (2.35, 2)}


def singlet_basis() -> Basis:
    t = time_axis_s(N_POINTS, DWELL_S)
    fids = [protons * np.exp(2j * np.pi * ppm_to_hz(ppm, CF_MHZ) * t)
            for ppm, protons in SINGLETS.values()]
    return Basis(list(SINGLETS), np.array(fids), DWELL_S, CF_MHZ)


GOOD = dict(
    concentrations_mm={"NAA": 12.0, "Cr": 8.0, "GPC": 1.5, "Ins": 6.0, "Glu": 8.0},
    b_values_s_mm2=[0, 3000], n_transients=16, lorentzian_fwhm_hz=5.0, gaussian_fwhm_hz=6.0,
    freq_jitter_hz=1.0, phase_jitter_deg=5.0, snr=60.0, water_fwhm_hz=8.0, seed=11,
    diffusion={"NAA": {"model": "monoexponential", "params": {"adc": 0.15}}},
    default_diffusion={"model": "monoexponential", "params": {"adc": 0.15}})


def qc_of(**changes) -> dict:
    """Simulate, align, reject outliers and average as the pipeline does; then judge."""
    result = simulate_acquisition(singlet_basis(), SyntheticSpec.from_dict({**GOOD, **changes}))
    acq = result.metabolite
    raw = acq.fids[:, :, 0, :]
    aligned = align_conditions(raw, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2)
    per_condition, freq, phase, rejected = [], [], [], []
    for c, alignment in enumerate(aligned):
        outliers = detect_outliers(alignment.corrected, acq.dwell_s, acq.cf_mhz)
        average = alignment.corrected[~outliers.rejected].mean(axis=0)
        values, _ = condition_metrics(average, acq.dwell_s, acq.cf_mhz)
        values.update(similarity_metrics(raw[c], alignment.corrected, outliers.rejected,
                                         acq.dwell_s, acq.cf_mhz))
        per_condition.append(values)
        freq += list(alignment.freq_hz)
        phase += list(alignment.phase_deg)
        rejected += list(outliers.rejected)
    water = result.water.fids[0, :, 0, :].mean(axis=0)
    water_lw = metrics.linewidth_hz(water, acq.dwell_s, acq.cf_mhz, (4.2, 5.1))
    summary = summarise(per_condition, acq.b_values_s_mm2,
                        metrics.drift_statistics(freq, phase, rejected), water_lw)
    out = judged(summary, acq.cf_mhz)
    out["by_metric"] = {f["metric"]: f for f in out["flags"]}
    out["summary"] = summary
    return out


@pytest.fixture(scope="module")
def good():
    return qc_of()


def test_good_data_pass_every_measured_flag(good):
    measured = {m: f for m, f in good["by_metric"].items() if f["status"] != "n/a"}
    assert {f["status"] for f in measured.values()} == {"pass"}, measured
    # every spectral/transient metric was measured (only fit-based ones need a fit)
    assert set(good["by_metric"]) - set(measured) == {"fit_quality_max", "crlb_percent_max",
                                                      "concentration_max_mm"}
    assert good["qc_status"] == "pass" and good["qc_failed"] == "" and good["qc_warned"] == ""
    # the simulated SNR (tNAA peak over noise SD of the average) is what the metric measures
    assert good["summary"]["snr_tnaa_b0"] == pytest.approx(60.0, rel=0.25)
    # Voigt FWHM (Olivero & Longbothum) of the simulated 5 Hz Lorentzian x 6 Hz Gaussian
    voigt_hz = 0.5346 * 5.0 + np.sqrt(0.2166 * 5.0 ** 2 + 6.0 ** 2)
    assert good["summary"]["linewidth_tnaa_hz"] == pytest.approx(voigt_hz, rel=0.1)


@pytest.mark.parametrize("lorentz_hz, gauss_hz", [(20.0, 8.0), (40.0, 10.0)])
def test_linewidth_follows_the_simulated_voigt_width(lorentz_hz, gauss_hz):
    voigt_hz = 0.5346 * lorentz_hz + np.sqrt(0.2166 * lorentz_hz ** 2 + gauss_hz ** 2)
    measured = qc_of(lorentzian_fwhm_hz=lorentz_hz, gaussian_fwhm_hz=gauss_hz)["summary"]
    assert measured["linewidth_tnaa_hz"] == pytest.approx(voigt_hz, rel=0.08)


def test_alignment_raises_the_similarity_index(good):
    drifting = qc_of(freq_jitter_hz=5.0, phase_jitter_deg=40.0)["summary"]
    assert drifting["similarity_before"] < good["summary"]["similarity_before"] - 0.2
    # after alignment the drifting run is as self-similar as the steady one (noise-limited)
    assert drifting["similarity_after"] == pytest.approx(good["summary"]["similarity_after"],
                                                         abs=0.03)


@pytest.mark.parametrize("changes, metric, status", [
    ({"lorentzian_fwhm_hz": 40.0, "gaussian_fwhm_hz": 10.0}, "linewidth_tnaa_ppm", "fail"),
    ({"snr": 5.0}, "snr_tnaa_b0", "fail"),
    ({"outlier_fraction": 0.45}, "rejected_fraction_max", "fail"),
    ({"residual_water_amplitude": 3000.0, "residual_water_fwhm_hz": 15.0},
     "residual_water_ratio", "fail"),
    ({"water_fwhm_hz": 60.0}, "linewidth_water_ppm", "fail"),
])
def test_flags_fire_on_bad_data(changes, metric, status):
    out = qc_of(**changes)
    flag = out["by_metric"][metric]
    assert flag["status"] == status, flag
    assert out["qc_status"] == "fail" and metric in out["qc_failed"].split(",")
    assert flag["source"] in qcflags.REFERENCES and flag["reason"]


def test_worst_condition_flags_name_the_condition():
    # outliers are simulated only at b > 0: condition 1 of [0, 3000] s/mm^2 is the worst
    out = qc_of(outlier_fraction=0.45)
    assert out["summary"]["rejected_fraction_max_condition"] == "condition 1"
    assert out["by_metric"]["rejected_fraction_max"]["reason"].endswith("at condition 1")
    # with the node's per-condition labels the name carries the b-value and direction
    per_condition = [{"condition": 0, "b_value": 0.0, "direction": "n/a", "fit_quality": 1.1},
                     {"condition": 1, "b_value": 20000.0, "direction": 2, "fit_quality": 3.2},
                     {"condition": 2, "b_value": 20000.0, "direction": 3, "fit_quality": None}]
    summary = summarise(per_condition, [0, 20000, 20000], {})
    assert summary["fit_quality_max"] == pytest.approx(3.2)
    where = "condition 1 (b = 20000 s/mm^2, direction 2)"
    assert summary["fit_quality_max_condition"] == where
    flag = {f.metric: f for f in qcflags.evaluate(summary, 298.0)}["fit_quality_max"]
    assert flag.status == "fail" and flag.reason == f"3.2 > 2.5 (fail limit) at {where}"
    # a passing metric keeps its plain reason
    summary["fit_quality_max"] = 1.2
    flag = {f.metric: f for f in qcflags.evaluate(summary, 298.0)}["fit_quality_max"]
    assert flag.status == "pass" and "condition" not in flag.reason


def test_judge_boundaries_and_directions():
    lw = qcflags.THRESHOLDS["linewidth_water_ppm"]       # above: warn 0.10, fail 0.15
    assert qcflags.judge(0.10, lw).status == "pass"       # at the limit: still within
    assert qcflags.judge(0.1001, lw).status == "warn"
    assert qcflags.judge(0.1501, lw).status == "fail"
    snr = qcflags.THRESHOLDS["snr_tnaa_b0"]              # below: warn 20, fail 8
    assert qcflags.judge(20.0, snr).status == "pass"
    assert qcflags.judge(19.9, snr).status == "warn"
    assert qcflags.judge(7.9, snr).status == "fail"
    assert qcflags.judge(None, snr).status == "n/a"
    assert qcflags.judge(float("nan"), snr).status == "n/a"
    assert "< 8 (fail limit)" in qcflags.judge(3.0, snr).reason


def test_linewidths_are_judged_in_ppm_of_the_field():
    # 35 Hz water FWHM: 0.117 ppm at 298 MHz (warn) but 0.28 ppm at 123 MHz (fail)
    summary = {"linewidth_water_hz": 35.0}
    at_7t = {f.metric: f for f in qcflags.evaluate(summary, 298.0)}
    at_3t = {f.metric: f for f in qcflags.evaluate(summary, 123.2)}
    assert at_7t["linewidth_water_ppm"].status == "warn"
    assert at_3t["linewidth_water_ppm"].status == "fail"
    assert at_3t["linewidth_water_ppm"].value == pytest.approx(35.0 / 123.2)


def test_overrides_and_bad_overrides():
    table = qcflags.thresholds_with({"snr_tnaa_b0": {"warn": 50, "fail": 30}})
    assert qcflags.judge(40.0, table["snr_tnaa_b0"]).status == "warn"
    with pytest.raises(ValueError, match="unknown metric"):
        qcflags.thresholds_with({"snr": {"warn": 1}})
    with pytest.raises(ValueError, match="warn"):
        qcflags.thresholds_with({"snr_tnaa_b0": {"limit": 1}})
    with pytest.raises(ValueError, match="MHz"):
        qcflags.evaluate({}, 0.0)


def test_similarity_index_and_shift_undo_are_exact():
    t = time_axis_s(N_POINTS, DWELL_S)
    clean = 3 * np.exp(2j * np.pi * ppm_to_hz(2.0, CF_MHZ) * t - t / 0.05)
    freq_hz, phase_deg = np.array([0.0, 4.0, -3.0]), np.array([0.0, 30.0, -45.0])
    drifted = clean * np.exp(1j * (2 * np.pi * freq_hz[:, None] * t
                                   + np.deg2rad(phase_deg)[:, None]))
    undone = metrics.apply_shifts(drifted, DWELL_S, freq_hz, phase_deg)
    np.testing.assert_allclose(undone, np.broadcast_to(clean, undone.shape), atol=1e-12)
    assert metrics.similarity_index(undone, DWELL_S, CF_MHZ) == pytest.approx(1.0)
    assert metrics.similarity_index(drifted, DWELL_S, CF_MHZ) < 0.9


def test_config_thresholds_override_and_unknown_metric_is_a_config_error(tmp_path):
    from bids_app.config import ConfigError, load_config

    good = tmp_path / "good.toml"
    good.write_text("[qc]\nthresholds = { linewidth_water_ppm = { warn = 0.08, fail = 0.12 } }\n")
    config = load_config(good)
    assert qcflags.thresholds_with(config["qc"]["thresholds"])["linewidth_water_ppm"].fail == 0.12
    bad = tmp_path / "bad.toml"
    bad.write_text("[qc]\nthresholds = { linewidth_h2o = { warn = 1.0 } }\n")
    with pytest.raises(ConfigError, match="bad.toml.*unknown metric 'linewidth_h2o'"):
        load_config(bad)


def test_concentrations_far_above_brain_values_warn_and_fail():
    """A scaling fault (pre-summed transients: tNAA 340 mM; the MM scan as the water
    reference: tCr 3103 mM) warns above 50 mM and fails above 200 mM; brain values pass."""
    from pipeline.qc.flags import evaluate
    from pipeline.qc.summary import concentration_max_mm

    def rows(tnaa, tcr):
        return [{"b_value": "0", "metabolite": "tNAA", "concentration_mm": str(tnaa)},
                {"b_value": "0", "metabolite": "tCr", "concentration_mm": str(tcr)},
                {"b_value": "0", "metabolite": "MM", "concentration_mm": "900"},
                {"b_value": "1000", "metabolite": "tNAA", "concentration_mm": "500"}]
    status = {}
    for label, (tnaa, tcr) in {"brain": (12.5, 10.0), "summed": (34.0, 120.0),
                               "mm as water": (4000.0, 3103.0)}.items():
        value = concentration_max_mm(rows(tnaa, tcr))
        assert value == max(tnaa, tcr)
        status[label] = {f.metric: f.status for f in evaluate(
            {"concentration_max_mm": value}, 123.2)}["concentration_max_mm"]
    assert status == {"brain": "pass", "summed": "warn", "mm as water": "fail"}
    assert concentration_max_mm([{"b_value": "0", "metabolite": "tNAA",
                                  "concentration_mm": "n/a"}]) is None
