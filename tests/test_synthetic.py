"""The synthetic (d)MRS generator: its truth is recoverable from the data it makes."""

import json

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.diffusion import signals
from pipeline.io.basis_formats import read_basis
from pipeline.simulate.synthetic import SyntheticSpec, simulate_acquisition
from pipeline.spectra import fid_to_spectrum, ppm_axis, ppm_to_hz, time_axis_s

N_POINTS, DWELL_S, CF_MHZ = 1024, 1 / 3000, 298.06
SINGLETS = {"NAA": (2.008, 3), "NAAG": (2.042, 3), "Cr": (3.027, 3), "PCr": (3.029, 3),
            "GPC": (3.212, 9), "Ins": (3.52, 6), "Mac": (0.90, 10)}


def singlet_basis(n_points=N_POINTS, dwell_s=DWELL_S, cf_mhz=CF_MHZ) -> Basis:
    """Undamped singlets, FID[0] = number of protons (the Basis scaling rule)."""
    t = time_axis_s(n_points, dwell_s)
    fids = [protons * np.exp(2j * np.pi * ppm_to_hz(ppm, cf_mhz) * t)
            for ppm, protons in SINGLETS.values()]
    return Basis(list(SINGLETS), np.array(fids), dwell_s, cf_mhz)


BASE = dict(
    concentrations_mm={"NAA": 11.0, "NAAG": 1.5, "Cr": 7.0, "PCr": 4.0, "GPC": 1.5, "Ins": 6.0},
    b_values_s_mm2=[0, 1000, 5000, 20000], echo_time_s=0.045,
    t2_s={"NAA": 0.2, "Cr": 0.15}, default_t2_s=0.12,
    diffusion={"NAA": {"model": "monoexponential", "params": {"adc": 0.17}},
               "Cr": {"model": "kurtosis", "params": {"adc": 0.16, "k": 0.8}},
               "Ins": {"model": "sticks", "params": {"d_intra": 0.45}}},
    default_diffusion={"model": "biexponential",
                       "params": {"fraction_fast": 0.7, "d_fast": 0.3, "d_slow": 0.05}},
    mm_amplitude=2.0, lorentzian_fwhm_hz=4.0, gaussian_fwhm_hz=6.0,
    residual_water_amplitude=300.0, residual_water_offset_hz=12.0, residual_water_fwhm_hz=10.0,
    n_transients=8, seed=3)


def spec_with(**changes) -> SyntheticSpec:
    return SyntheticSpec.from_dict({**BASE, **changes})


def test_noiseless_spectrum_is_the_sum_of_its_parts():
    basis = singlet_basis()
    result = simulate_acquisition(basis, spec_with())
    t = time_axis_s(N_POINTS, DWELL_S)
    envelope = np.exp(-np.pi * 4.0 * t) * np.exp(-(np.pi * 6.0 * t) ** 2 / (4 * np.log(2)))
    b_ms_um2 = np.array(BASE["b_values_s_mm2"]) / 1000
    decays = {"NAA": signals.monoexponential(b_ms_um2, 0.17),
              "Cr": signals.kurtosis(b_ms_um2, 0.16, 0.8),
              "Ins": signals.sticks_powder_average(b_ms_um2, 0.45),
              "Mac": np.exp(-b_ms_um2 * 0.008)}
    default = signals.biexponential(b_ms_um2, 0.7, 0.3, 0.05)
    t2 = {"NAA": 0.2, "Cr": 0.15}
    expected = np.zeros((4, N_POINTS), dtype=complex)
    for name in SINGLETS:
        conc = 2.0 if name == "Mac" else BASE["concentrations_mm"][name]
        t2_factor = 1.0 if name == "Mac" else np.exp(-0.045 / t2.get(name, 0.12))
        amplitude = conc * t2_factor * decays.get(name, default)
        np.testing.assert_allclose(result.truth["amplitudes"][name], amplitude, rtol=1e-12)
        expected += amplitude[:, None] * basis.fid(name) * envelope
    water_decay = signals.biexponential(b_ms_um2, 0.85, 0.9, 0.12)
    water = np.exp(2j * np.pi * (12.0 + ppm_to_hz(4.65, CF_MHZ)) * t - np.pi * 10.0 * t)
    expected += 300.0 * water_decay[:, None] * water * envelope
    fids = result.metabolite.fids
    assert fids.shape == (4, 8, 1, N_POINTS)
    for j in range(8):
        np.testing.assert_allclose(fids[:, j, 0], expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(sum(result.components.values()), expected, atol=1e-10)
    spectrum = fid_to_spectrum(fids[0, 0, 0]).real
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    assert abs(ppm[np.argmax(spectrum * ((ppm > 1.9) & (ppm < 2.1)))] - 2.008) < 0.01


def test_truth_sums_decays_and_json():
    result = simulate_acquisition(singlet_basis(), spec_with())
    truth = json.loads(json.dumps(result.truth))
    amps = truth["amplitudes"]
    np.testing.assert_allclose(amps["tNAA"], np.add(amps["NAA"], amps["NAAG"]), rtol=1e-12)
    np.testing.assert_allclose(amps["tCr"], np.add(amps["Cr"], amps["PCr"]), rtol=1e-12)
    np.testing.assert_allclose(truth["decays"]["NAA"], np.exp(-np.array([0, 1, 5, 20]) * 0.17))
    np.testing.assert_allclose(truth["decays"]["tCr"], np.divide(amps["tCr"], amps["tCr"][0]))
    np.testing.assert_allclose(truth["decays"]["Mac"], np.exp(-np.array([0, 1, 5, 20]) * 0.008))
    assert "Glx" not in amps and truth["mm_source"] == "basis"
    assert "peak" in truth["noise"]["snr_definition"].lower() or "H =" in truth["noise"]["snr_definition"]


def _measured_drifts(result):
    """Frequency (Hz) and phase (deg) per transient of condition 0, from a linear fit of the
    unwrapped phase of data / clean (noise-free data: ratio = exp(i(2 pi f t + phi)))."""
    clean = sum(result.components.values())[0]
    t = time_axis_s(clean.size, result.metabolite.dwell_s)
    phase = np.unwrap(np.angle(result.metabolite.fids[0, :, 0] / clean), axis=-1)
    slope, intercept = np.polyfit(t, phase.T, 1)
    return slope / (2 * np.pi), np.rad2deg(intercept)


def _unwrapped_like(phase_deg, reference_deg):
    """``phase_deg`` shifted by multiples of 360 to lie within 180 of ``reference_deg``."""
    return reference_deg + (phase_deg - reference_deg + 180) % 360 - 180


@pytest.mark.parametrize("kind", ["walk", "jitter"])
def test_drift_statistics_match_the_spec(kind):
    n, freq_sd_hz, phase_sd_deg = 2000, 0.4, 3.0
    drift = ({"freq_walk_hz": freq_sd_hz, "phase_walk_deg": phase_sd_deg} if kind == "walk"
             else {"freq_jitter_hz": freq_sd_hz, "phase_jitter_deg": phase_sd_deg})
    result = simulate_acquisition(singlet_basis(), spec_with(
        b_values_s_mm2=[0], n_transients=n, residual_water_amplitude=0.0, **drift))
    truth_freq = np.array(result.truth["drifts"]["freq_hz"][0])
    truth_phase = np.array(result.truth["drifts"]["phase_deg"][0])
    freq_hz, phase_deg = _measured_drifts(result)
    phase_deg = _unwrapped_like(phase_deg, truth_phase)
    # the data carry exactly the drifts the truth states (convention of _transients.tsv)
    np.testing.assert_allclose(freq_hz, truth_freq, atol=1e-8)
    np.testing.assert_allclose(phase_deg, truth_phase, atol=1e-6)
    # a walk has independent increments of SD = step; jitter is independent with SD = jitter,
    # around zero. An SD estimated from m independent normal values has relative SE 1/sqrt(2m).
    for series, sd in ((freq_hz, freq_sd_hz), (phase_deg, phase_sd_deg)):
        values = np.diff(series) if kind == "walk" else series
        measured_sd = np.sqrt(np.mean(values ** 2))
        assert abs(measured_sd / sd - 1) < 5 / np.sqrt(2 * values.size)
        assert abs(np.mean(values)) < 5 * sd / np.sqrt(values.size)
    if kind == "walk":
        assert truth_freq[0] == 0.0 and truth_phase[0] == 0.0  # the walk starts at zero


def _measured_snr(result, noise_region_ppm=(-3.0, 0.3)):
    """Peak height of the noiseless average / SD of the real noise in the averaged spectrum."""
    acq = result.metabolite
    ppm = ppm_axis(acq.n_points, acq.dwell_s, acq.cf_mhz)
    noise_bins = (ppm > noise_region_ppm[0]) & (ppm < noise_region_ppm[1])
    averages = fid_to_spectrum(acq.fids[:, :, 0].mean(axis=1)).real  # (n_conditions, n_points)
    return noise_bins.sum(), np.std(averages[:, noise_bins], axis=1, ddof=1)


def test_noise_level_matches_the_stated_snr():
    snr, n_cond, n_trans = 25.0, 12, 16
    spec = spec_with(b_values_s_mm2=[0] * n_cond, n_transients=n_trans, snr=snr,
                     residual_water_amplitude=0.0, concentrations_mm={"NAA": 11.0, "Cr": 7.0},
                     mm_source="none")
    noisy = simulate_acquisition(singlet_basis(), spec)
    clean = simulate_acquisition(singlet_basis(), spec_with(**{**spec.to_dict(), "snr": None}))
    noise = (noisy.metabolite.fids - clean.metabolite.fids).reshape(-1)
    sd = noisy.truth["noise"]["sd_per_transient"]
    tolerance = 5 / np.sqrt(2 * noise.size)
    assert abs(np.std(noise.real) / sd - 1) < tolerance
    assert abs(np.std(noise.imag) / sd - 1) < tolerance
    assert abs(np.corrcoef(noise.real, noise.imag)[0, 1]) < 5 / np.sqrt(noise.size)
    # SNR as defined: noiseless NAA height over the SD of the real spectrum of the average
    spectrum = fid_to_spectrum(clean.metabolite.fids[0, 0, 0]).real
    ppm = ppm_axis(N_POINTS, DWELL_S, CF_MHZ)
    height = spectrum[(ppm > 1.9) & (ppm < 2.1)].max()
    assert height == pytest.approx(noisy.truth["noise"]["reference_peak_height"], rel=1e-12)
    n_bins, sds = _measured_snr(noisy)
    measured_snr = height / np.sqrt(np.mean(sds ** 2))
    assert abs(measured_snr / snr - 1) < 5 / np.sqrt(2 * n_bins * n_cond)


def test_coil_sensitivities_and_noise_covariance_are_reproduced():
    sens = [[1.0, 0.0], [0.3, 0.6], [-0.5, 0.2], [0.0, -0.8]]
    shape = np.array([[1.0, 0.3, 0.1, 0.0], [0.3, 1.2, 0.25j, 0.0],
                      [0.1, -0.25j, 0.9, 0.2], [0.0, 0.0, 0.2, 1.1]])
    spec = spec_with(n_coils=4, coil_sensitivities=sens,
                     noise_covariance=[[[z.real, z.imag] for z in row] for row in shape],
                     snr=10.0, n_transients=16)
    noisy = simulate_acquisition(singlet_basis(), spec)
    clean = simulate_acquisition(singlet_basis(), spec_with(**{**spec.to_dict(), "snr": None}))
    s = np.array([complex(*p) for p in sens])
    np.testing.assert_allclose(clean.metabolite.fids[:, :, 1] / clean.metabolite.fids[:, :, 0],
                               s[1] / s[0] * np.ones_like(clean.metabolite.fids[:, :, 0]),
                               rtol=1e-12)
    noise = np.moveaxis(noisy.metabolite.fids - clean.metabolite.fids, 2, 0).reshape(4, -1)
    covariance = np.array(noisy.truth["coils"]["noise_covariance"])
    covariance = covariance[..., 0] + 1j * covariance[..., 1]
    sample = noise @ noise.conj().T / noise.shape[1]
    scale = np.sqrt(np.outer(np.diag(covariance).real, np.diag(covariance).real) / noise.shape[1])
    assert np.all(np.abs(sample - covariance) < 5 * scale)
    np.testing.assert_allclose(covariance / covariance[0, 0], shape / shape[0, 0], atol=1e-12)
    # the optimal unit-gain combination has the stated per-transient noise SD
    weights = np.linalg.solve(covariance, s)
    weights = weights / (s.conj() @ weights)
    combined = weights.conj() @ noise
    sd = noisy.truth["noise"]["sd_per_transient"]
    assert abs(np.std(combined.real) / sd - 1) < 5 / np.sqrt(2 * combined.size)


def test_eddy_current_phase_is_removed_by_the_water_reference():
    spec = dict(eddy_amplitudes_rad=[1.5, -0.4], eddy_time_constants_s=[0.02, 0.1],
                freq_walk_hz=0.5, phase_jitter_deg=5.0)
    with_ec = simulate_acquisition(singlet_basis(), spec_with(**spec))
    without = simulate_acquisition(singlet_basis(), spec_with(
        **{**spec, "eddy_amplitudes_rad": [], "eddy_time_constants_s": []}))
    assert not np.allclose(with_ec.metabolite.fids[1:], without.metabolite.fids[1:])
    np.testing.assert_allclose(with_ec.metabolite.fids[0], without.metabolite.fids[0])  # b = 0
    water_phase = np.angle(with_ec.water.fids.mean(axis=1))  # Klose: phase of the water FID
    corrected = with_ec.metabolite.fids * np.exp(-1j * water_phase)[:, None]
    np.testing.assert_allclose(corrected, without.metabolite.fids, atol=1e-9)
    water = with_ec.truth["water_reference"]
    amplitudes = (35880 * np.exp(-0.045 / 0.11)
                  * signals.biexponential(np.array([0, 1, 5, 20]), 0.85, 0.9, 0.12))
    np.testing.assert_allclose(water["amplitudes"], amplitudes)
    # a singlet of 2 protons at 4.65 ppm (no H2O basis entry), on resonance, zero phase at b = 0
    np.testing.assert_allclose(with_ec.water.fids[:, :, 0, 0], 2 * amplitudes[:, None]
                               * np.exp(1j * water_phase[:, 0, 0])[:, None]
                               * np.ones((1, with_ec.water.n_transients)), rtol=1e-12)
    assert water["shape"].startswith("singlet")


def test_outliers_lose_amplitude_and_phase_at_their_stated_indices():
    n_trans = 20
    spec = spec_with(outlier_fraction=0.1, n_transients=n_trans)
    result = simulate_acquisition(singlet_basis(), spec)
    clean = sum(result.components.values())
    outliers = result.truth["outliers"]
    assert len(outliers) == round(0.1 * 3 * n_trans)  # b > 0 conditions only
    bad = {(o["condition"], o["transient"]): o for o in outliers}
    for c in range(4):
        for j in range(n_trans):
            ratio = result.metabolite.fids[c, j, 0] / clean[c]
            if (c, j) in bad:
                o = bad[(c, j)]
                spread = np.deg2rad(o["phase_spread_deg"]) / 2
                assert o["amplitude_factor"] == pytest.approx(abs(np.sin(spread) / spread))
                np.testing.assert_allclose(ratio, o["amplitude_factor"]
                                           * np.exp(1j * np.deg2rad(o["phase_deg"])), rtol=1e-9)
                assert o["amplitude_factor"] < 0.75
            else:
                np.testing.assert_allclose(ratio, 1.0, rtol=1e-9)
    assert all(o["condition"] > 0 for o in outliers)


def test_deterministic_for_a_seed_and_independent_streams():
    spec = dict(snr=20.0, n_coils=3, coil_noise_correlation=0.4, freq_walk_hz=0.4,
                phase_jitter_deg=4.0, outlier_fraction=0.1)
    first = simulate_acquisition(singlet_basis(), spec_with(**spec))
    again = simulate_acquisition(singlet_basis(), spec_with(**spec))
    other = simulate_acquisition(singlet_basis(), spec_with(**{**spec, "seed": 4}))
    np.testing.assert_array_equal(first.metabolite.fids, again.metabolite.fids)
    np.testing.assert_array_equal(first.water.fids, again.water.fids)
    assert json.dumps(first.truth) == json.dumps(again.truth)
    assert not np.allclose(first.metabolite.fids, other.metabolite.fids)
    quiet = simulate_acquisition(singlet_basis(), spec_with(**{**spec, "snr": None}))
    assert quiet.truth["drifts"] == first.truth["drifts"]
    assert quiet.truth["outliers"] == first.truth["outliers"]


def test_bad_specs_raise_value_errors():
    with pytest.raises(ValueError, match="unknown synthetic-spec keys"):
        SyntheticSpec.from_dict({"concentration": {}})
    with pytest.raises(ValueError, match="diffusion model"):
        spec_with(diffusion={"NAA": {"model": "tensor", "params": {}}})
    with pytest.raises(ValueError, match="directions"):
        spec_with(directions=[[1, 0, 0]])
    with pytest.raises(ValueError, match="not in the basis"):
        simulate_acquisition(singlet_basis(), spec_with(concentrations_mm={"Lac": 1.0}))


def test_real_basis_with_measured_mm(shared_data):
    basis = read_basis(
        shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS")
    mm_name = next(n for n in basis.names if n in ("Mac", "MM"))
    conc = {n: 1.0 for n in basis.names if n != mm_name}
    result = simulate_acquisition(basis, SyntheticSpec.from_dict(dict(
        concentrations_mm=conc, b_values_s_mm2=[0, 10000], echo_time_s=0.045, snr=None,
        mm_amplitude=0.5, n_transients=2)))
    assert result.truth["mm_source"] == "basis"
    np.testing.assert_allclose(result.truth["decays"][mm_name], [1.0, np.exp(-10 * 0.008)])
    np.testing.assert_allclose(result.metabolite.fids[:, 0, 0], sum(result.components.values()),
                               atol=1e-12 * np.abs(result.metabolite.fids).max())


def test_real_sensitivities_of_two_coils_are_not_read_as_one_complex_number():
    result = simulate_acquisition(singlet_basis(), spec_with(n_coils=2,
                                                             coil_sensitivities=[1.0, 0.5]))
    fids = result.metabolite.fids
    np.testing.assert_allclose(fids[:, :, 1], 0.5 * fids[:, :, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="Hermitian"):
        simulate_acquisition(singlet_basis(), spec_with(
            n_coils=2, noise_covariance=[[1.0, 0.9], [0.1, 1.0]], snr=10.0))
