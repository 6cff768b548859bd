"""preprocess_acquisition end to end on generator data with coils, outliers, eddy currents."""

import numpy as np
import pytest

from pipeline.preprocess.pipeline import PreprocessOptions, preprocess_acquisition


def test_options_from_dict_defaults_and_errors():
    options = PreprocessOptions.from_dict({"align_ppm_range": [1.8, 4.2], "outliers": False})
    assert options.align_ppm_range == (1.8, 4.2)
    assert options.outlier_flag_fraction == 0.3
    assert PreprocessOptions.from_dict(options.to_dict()) == options
    with pytest.raises(ValueError, match="config.toml: unknown preprocess options"):
        PreprocessOptions.from_dict({"allign": True}, source="config.toml")
    with pytest.raises(ValueError, match="align_reference"):
        PreprocessOptions.from_dict({"align_reference": "naa"})


@pytest.fixture(scope="module")
def generated(shared_data):
    from pipeline.simulate.synthetic import simulate_acquisition
    from preprocess_support import pregame_basis, pregame_spec
    spec = pregame_spec(5, b_ms_um2=[0, 10, 30], n_transients=20, n_coils=3,
                        coil_noise_correlation=0.3, outlier_fraction=0.1,
                        eddy_amplitudes_rad=[2.0], eddy_time_constants_s=[0.01],
                        eddy_scale_with_b=False, water_reference=True, water_n_transients=2)
    return simulate_acquisition(pregame_basis(shared_data), spec)


def test_preprocess_acquisition_on_generator_data(generated):
    acq, water, truth = generated.metabolite, generated.water, generated.truth
    result = preprocess_acquisition(acq, water, {"residual_water": False})
    assert result.averaged.fids.shape == (3, 1, 1, acq.n_points)
    assert len(result.transients) == 3 * 20
    assert {"condition", "b_value", "direction", "transient", "freq_shift_hz",
            "phase_shift_deg", "rejected"} <= set(result.transients[0])
    assert len(result.coil_weights) == 3
    # outliers: sensitivity >= 90 %, false positives <= 5 %
    rejected = np.array([[r["rejected"] for r in result.transients if r["condition"] == c]
                         for c in range(3)], bool)
    truth_mask = np.zeros_like(rejected)
    for c, j in truth["outlier_indices"]:
        truth_mask[c, j] = True
    assert (rejected & truth_mask).sum() >= 0.9 * truth_mask.sum()
    assert (rejected & ~truth_mask).sum() <= 0.05 * (~truth_mask).sum()
    # relative drifts of kept transients
    freq = np.array([[r["freq_shift_hz"] for r in result.transients if r["condition"] == c]
                     for c in range(3)])
    err = freq - np.asarray(truth["drifts"]["freq_hz"])
    kept = ~truth_mask
    rel = [err[c][kept[c]] - err[c][kept[c]].mean() for c in range(3)]
    assert max(np.sqrt(np.mean(r ** 2)) for r in rel) < 1.2
    # ECC: the averaged FID matches the clean one up to a phase a + 2 pi f t
    clean = sum(generated.components.values())[0]
    no_ecc = preprocess_acquisition(acq, water, {"residual_water": False, "ecc": False})
    distortion_off = _nonlinear_phase_rad(no_ecc.averaged.fids[0, 0, 0], clean, acq.dwell_s)
    distortion_on = _nonlinear_phase_rad(result.averaged.fids[0, 0, 0], clean, acq.dwell_s)
    assert distortion_off > 0.1, distortion_off
    assert distortion_on < 0.2 * distortion_off, (distortion_on, distortion_off)
    assert not any("motion" in f for f in result.flags), result.flags


def _nonlinear_phase_rad(fid, clean, dwell_s, n_points=300):
    """Weighted RMS of phase(fid / clean) about its best line over the first points."""
    t = np.arange(n_points) * dwell_s
    weights = np.abs(clean[:n_points]) ** 2
    phase = np.unwrap(np.angle(fid[:n_points] / clean[:n_points]))
    design = np.stack([np.ones_like(t), t], axis=1) * np.sqrt(weights)[:, None]
    coefficients, *_ = np.linalg.lstsq(design, phase * np.sqrt(weights), rcond=None)
    residual = phase - coefficients[0] - coefficients[1] * t
    return float(np.sqrt(np.sum(weights * residual ** 2) / weights.sum()))


def test_mismatched_water_reference_is_reported_with_its_source():
    from pipeline.acquisition import Acquisition
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1, 4, 1, 256)) + 0j
    acq = Acquisition(data, 1 / 3000, 298.0, [0.0], np.full((1, 3), np.nan), source="metab.nii.gz")
    water = Acquisition(data[..., :128], 1 / 3000, 298.0, [0.0], np.full((1, 3), np.nan),
                        source="water.nii.gz")
    with pytest.raises(ValueError, match="water.nii.gz: 128 points"):
        preprocess_acquisition(acq, water)
