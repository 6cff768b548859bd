"""QC metrics against analytic truth (Lorentzian lines, white noise of known SD)."""

import numpy as np
import pytest

from pipeline.qc.metrics import (drift_statistics, find_peak, fit_quality,
                                 fitted_component_snr, linewidth_hz, noise_sd, rejection_counts,
                                 snr)
from pipeline.spectra import ppm_to_hz, time_axis_s

DWELL_S = 1 / 3000.0
CF_MHZ = 298.0
N = 1024


def lorentzian_fid(ppm, fwhm_hz, amplitude=1.0, phase_deg=0.0, n=N):
    """FID of a Lorentzian at ``ppm`` with FWHM = 1/(pi T2*)."""
    t = time_axis_s(n, DWELL_S)
    f_hz = ppm_to_hz(ppm, CF_MHZ)
    return (amplitude * np.exp(1j * np.deg2rad(phase_deg))
            * np.exp(2j * np.pi * f_hz * t - np.pi * fwhm_hz * t))


@pytest.mark.parametrize("fwhm_hz", [4.0, 8.0, 15.0])
@pytest.mark.parametrize("phase_deg", [0.0, 70.0, -150.0])
def test_linewidth_of_lorentzian(fwhm_hz, phase_deg):
    fid = lorentzian_fid(2.01, fwhm_hz, phase_deg=phase_deg)
    # Discrete sampling of the FID broadens nothing but the baseline; expect < 3 % error.
    assert linewidth_hz(fid, DWELL_S, CF_MHZ, (1.8, 2.2)) == pytest.approx(fwhm_hz, rel=0.03)
    peak = find_peak(fid, DWELL_S, CF_MHZ, (1.8, 2.2))
    assert peak.ppm == pytest.approx(2.01, abs=0.005)
    assert np.rad2deg(peak.phase_rad) == pytest.approx(phase_deg, abs=4.0)


def test_noise_sd_of_white_noise():
    rng = np.random.default_rng(1)
    sigma = 0.3
    noise = sigma * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
    # real part of an unnormalised FFT of complex white noise: SD = sigma * sqrt(N)
    assert noise_sd(noise, DWELL_S, CF_MHZ) == pytest.approx(sigma * np.sqrt(N), rel=0.15)


def test_snr_matches_analytic_peak_height_over_noise():
    rng = np.random.default_rng(2)
    fwhm_hz, sigma = 6.0, 0.05
    fid = lorentzian_fid(2.01, fwhm_hz, phase_deg=40)
    noisy = fid + sigma * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
    # On-resonance height of sum_n exp(-pi*fwhm*n*dt): 1 / (1 - exp(-pi*fwhm*dt)) (bin-centred
    # peak is within half a bin, costing < 1 %); noise SD sigma*sqrt(N).
    height = 1.0 / (1.0 - np.exp(-np.pi * fwhm_hz * DWELL_S))
    expected = height / (sigma * np.sqrt(N))
    assert snr(noisy, DWELL_S, CF_MHZ) == pytest.approx(expected, rel=0.15)
    # doubling the noise halves the SNR
    noisier = fid + 2 * (noisy - fid)
    assert snr(noisier, DWELL_S, CF_MHZ) == pytest.approx(expected / 2, rel=0.15)


def test_noise_window_too_narrow_falls_back_to_edges():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(N) + 1j * rng.standard_normal(N)
    signal = lorentzian_fid(2.0, 5.0, amplitude=50)
    # a window outside the 7 T spectral range falls back to the edges, which hold only noise
    assert noise_sd(signal + noise, DWELL_S, CF_MHZ, (-3.0, -2.0)) == pytest.approx(
        np.sqrt(N), rel=0.2)


def test_drift_statistics_linear_drift():
    f = 0.5 * np.arange(20) - 3.0
    p = np.linspace(-10, 10, 20)
    rej = np.zeros(20, bool)
    rej[[3, 7]] = True
    stats = drift_statistics(f, p, rej)
    assert stats["freq_drift_hz_per_transient"] == pytest.approx(0.5)
    assert stats["freq_shift_range_hz"] == pytest.approx(9.5)
    assert stats["phase_shift_range_deg"] == pytest.approx(20.0)
    assert stats["n_rejected"] == 2 and stats["rejected_fraction"] == pytest.approx(0.1)


def test_drift_statistics_leave_out_rejected_outliers():
    """A rejected motion outlier at +9.6 Hz is counted as rejected, not as drift: the range,
    SD, mean and slope are those of the kept transients (which span 4.7 Hz here)."""
    kept = np.linspace(-2.0, 2.7, 9)
    f = np.insert(kept, 4, 9.6)
    phase = np.insert(np.linspace(-3.0, 3.0, 9), 4, 40.0)
    rejected = np.zeros(10, bool)
    rejected[4] = True
    stats = drift_statistics(f, phase, rejected, condition=np.zeros(10, int))
    assert stats["freq_shift_range_hz"] == pytest.approx(4.7)
    assert stats["freq_shift_sd_hz"] == pytest.approx(np.std(kept, ddof=1))
    assert stats["freq_shift_mean_hz"] == pytest.approx(np.mean(kept))
    assert stats["phase_shift_range_deg"] == pytest.approx(6.0)
    assert stats["freq_drift_hz_per_transient"] == pytest.approx(
        np.polyfit(np.delete(np.arange(10), 4), kept, 1)[0])
    assert stats["n_rejected"] == 1 and stats["n_transients"] == 10
    everything = drift_statistics(f, phase, np.ones(10, bool))  # all rejected: all described
    assert everything["freq_shift_range_hz"] == pytest.approx(9.6 + 2.0)


def test_rejection_counts_per_condition():
    cond = [0, 0, 0, 1, 1, 2]
    rej = [1, 0, 1, 0, 0, 1]
    assert rejection_counts(cond, rej) == {"0": 2, "1": 0, "2": 1}


def test_fit_quality_is_one_for_a_perfect_model():
    rng = np.random.default_rng(4)
    model = lorentzian_fid(2.01, 6.0) + lorentzian_fid(3.03, 6.0)
    data = model + 0.1 * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
    perfect = fit_quality(data, model, DWELL_S, CF_MHZ)
    assert perfect["fit_quality"] == pytest.approx(1.0, abs=0.2)
    missing = fit_quality(data, lorentzian_fid(2.01, 6.0), DWELL_S, CF_MHZ)
    assert missing["fit_quality"] > 3.0


def test_snr_refuses_a_window_without_a_peak_maximum():
    # a line at 2.3 ppm seen through 1.9-2.1 ppm: the largest point is on the window's edge,
    # where the height over a line joining the edges is 0 by construction (was reported as 0)
    fid = lorentzian_fid(2.3, 6.0)
    with pytest.raises(ValueError, match="no peak inside 1.9-2.1 ppm"):
        snr(fid, DWELL_S, CF_MHZ, (1.9, 2.1))


@pytest.mark.parametrize("phase_deg", [0.0, -105.0])
def test_fitted_component_snr_is_component_height_over_noise(phase_deg):
    from pipeline.qc.summary import condition_metrics
    from pipeline.spectra import fid_to_spectrum

    rng = np.random.default_rng(4)
    fwhm_hz, sigma = 5.0, 0.05
    # an Ins-like doublet, 0.09 ppm apart (the 3.52/3.61 ppm lines), straddling the old
    # 3.5-3.6 ppm window; the component is the noise-free doublet
    doublet = (lorentzian_fid(3.52, fwhm_hz, phase_deg=phase_deg)
               + lorentzian_fid(3.61, fwhm_hz, phase_deg=phase_deg))
    noisy = doublet + sigma * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
    height = 1.0 / (1.0 - np.exp(-np.pi * fwhm_hz * DWELL_S))   # each line, on resonance
    expected = height / (sigma * np.sqrt(N))
    component = fid_to_spectrum(doublet)
    assert fitted_component_snr(component, noisy, DWELL_S, CF_MHZ) == pytest.approx(
        expected, rel=0.15)
    # NaN outside the fitted window (as in the fit display) is ignored
    padded = np.where(np.arange(N) % 2 == 0, component, np.nan)
    assert fitted_component_snr(padded, noisy, DWELL_S, CF_MHZ) > 0.5 * expected
    values, _ = condition_metrics(noisy, DWELL_S, CF_MHZ, fitted_components={"Ins": component})
    assert values["snr_ins"] == pytest.approx(expected, rel=0.15)
    assert values["snr_glx"] is None          # not fitted: not measured (never a made-up 0)
    assert condition_metrics(noisy, DWELL_S, CF_MHZ)[0]["snr_ins"] is None


def test_drift_and_rejections_of_single_transients_are_not_measured():
    """A scanner-averaged spectrum (one transient): nothing was aligned or could be rejected,
    so the drift and rejection figures are None (n/a in QC), not a 0 that passes. With one
    transient per condition nothing could be rejected either, but the shifts of the condition
    means (registered to the lowest b) are measured drift and stay."""
    from pipeline.qc.flags import evaluate
    from pipeline.qc.summary import similarity_metrics

    single = drift_statistics([0.0], [0.0], [0], condition=[0])
    assert single["n_transients"] == 1
    assert all(single[k] is None for k in ("freq_shift_range_hz", "freq_shift_sd_hz",
                                           "phase_shift_sd_deg", "rejected_fraction"))
    flags = {f.metric: f.status for f in evaluate({**single, "rejected_fraction_max": None},
                                                  CF_MHZ)}
    assert flags["freq_shift_range_ppm"] == "n/a" and flags["rejected_fraction_max"] == "n/a"
    means = drift_statistics([0.0, 5.0, 12.0], [0.0, 3.0, 7.0], [0, 0, 0], condition=[0, 1, 2])
    assert means["freq_shift_range_hz"] == pytest.approx(12.0)
    assert means["rejected_fraction"] is None and means["n_rejected"] is None
    assert similarity_metrics(np.ones((1, 8)), np.ones((1, 8)), np.zeros(1, bool), DWELL_S,
                              CF_MHZ)["rejected_fraction"] is None
    # two transients in one condition: measured as before
    measured = drift_statistics([0.0, 1.0, 0.0], [0.0, 5.0, 0.0], [0, 0, 0], condition=[0, 0, 1])
    assert measured["freq_shift_range_hz"] == pytest.approx(1.0)
    assert measured["rejected_fraction"] == 0.0


def test_no_tnaa_peak_in_its_window_fails_the_snr_instead_of_passing_unjudged():
    """A spectrum misreferenced by 0.3 ppm: no maximum inside 1.9-2.1 ppm. The thresholded tNAA
    SNR is 0 with a note (QC fails it), while tCr's SNR is not measured (None, with a note)."""
    from pipeline.qc.flags import evaluate
    from pipeline.qc.summary import snr_metrics

    fid = lorentzian_fid(2.31, 6.0) + 0.8 * lorentzian_fid(3.33, 6.0)   # NAA, Cr + 0.3 ppm
    values, notes = snr_metrics(fid, DWELL_S, CF_MHZ, (1.9, 2.1), fitted_components={})
    assert values["snr_tnaa"] == 0.0 and values["snr_tcr"] is None
    assert any(n.startswith("SNR: no peak inside 1.9-2.1 ppm") for n in notes)
    assert any(n.startswith("SNR of tCr: no peak inside") for n in notes)
    assert any(n == "SNR of Ins: no fitted component (amplitude 0)" for n in notes)
    flags = {f.metric: f.status for f in evaluate({"snr_tnaa_b0": 0.0}, CF_MHZ)}
    assert flags["snr_tnaa_b0"] == "fail"
