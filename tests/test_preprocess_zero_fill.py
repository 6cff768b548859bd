"""Zero-filled input is trimmed to its acquired points before anything else, with a flag.

Truth: the same data without the zero-filling. A zero-filled FID's extra points hold no noise,
so its spectral points are correlated; a fit that counts them as independent reports CRLBs
that are too small, which is what trimming prevents (measured here on a real spectrum).
"""

import numpy as np
import pytest

from datasets import zero_padded
from pipeline.acquisition import Acquisition
from pipeline.preprocess.steps import zero_fill_step
from pipeline.spectra import MIN_ZERO_FILL_POINTS, acquired_points

DWELL_S, CF_MHZ = 2.5e-4, 123.2


def _noise(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _acquisition(fids: np.ndarray, source="zf.nii.gz", cf_mhz=CF_MHZ) -> Acquisition:
    n_cond = fids.shape[0]
    return Acquisition(fids, DWELL_S, cf_mhz, np.zeros(n_cond), np.zeros((n_cond, 3)),
                       source=source)


def test_acquired_points_is_the_last_nonzero_sample_of_any_fid():
    fids = _noise((2, 3, 2, 1024))
    assert acquired_points(fids) == 1024
    padded = zero_padded(fids, 4096)
    assert acquired_points(padded) == 1024
    padded[1, 2, 0, 1500] = 1e-12  # one FID longer than the others: its samples are kept
    assert acquired_points(padded) == 1501


def test_a_short_run_of_zeros_is_not_zero_filling():
    fids = _noise((1, 2, 1, 1024))
    fids[..., -(MIN_ZERO_FILL_POINTS - 1):] = 0
    assert acquired_points(fids) == 1024
    fids[..., -MIN_ZERO_FILL_POINTS:] = 0
    assert acquired_points(fids) == 1024 - MIN_ZERO_FILL_POINTS
    assert acquired_points(np.zeros((1, 1, 1, 512))) == 512


def test_step_trims_data_and_water_to_the_datas_acquired_points_and_names_the_files():
    data = _noise((1, 4, 1, 1024))
    water = _noise((1, 2, 1, 1536), seed=1)  # a water reference acquired longer
    step = zero_fill_step(_acquisition(zero_padded(data, 2048)),
                          _acquisition(zero_padded(water, 2048), "water.nii.gz"))
    assert step.acq.n_points == step.water.n_points == 1024
    np.testing.assert_array_equal(step.acq.fids, data)
    np.testing.assert_array_equal(step.water.fids, water[..., :1024])
    assert step.report == {"n_points_given": 2048, "n_points_acquired": 1024,
                           "water_n_points_given": 2048, "water_n_points_kept": 1024}
    assert step.flags == [
        "zero-filled input: zf.nii.gz: the last 1024 of 2048 points are 0 in every FID (not "
        "acquired); processed on the first 1024",
        "water reference cut: water.nii.gz: from 2048 to the 1024 points the metabolite data "
        "were acquired with"]
    both = zero_fill_step(_acquisition(zero_padded(data, 2048)),
                          _acquisition(zero_padded(water[..., :512], 2048), "water.nii.gz"))
    assert both.water.n_points == 1024 and "the last 1024 of 2048" in both.flags[1]
    other_grid = _acquisition(zero_padded(water, 2048))
    unmatched = zero_fill_step(_acquisition(zero_padded(data, 1536)), other_grid)
    assert unmatched.acq.n_points == 1024 and unmatched.water is other_grid
    given = _acquisition(data)
    untouched = zero_fill_step(given, _acquisition(water[..., :1024]))
    assert untouched.acq is given
    assert (untouched.report, untouched.flags) == ({}, [])


def test_a_zero_filled_water_reference_is_cut_or_flagged():
    """Beyond the data's points a water reference's zeros are cut (another grid made one);
    within them they stay, flagged (its SNR, phase and amplitude use its acquired points)."""
    data = _noise((1, 4, 1, 1024))
    water = _noise((1, 2, 1, 512), seed=1)
    longer = zero_fill_step(_acquisition(data), _acquisition(zero_padded(water, 2048), "w.nii.gz"))
    assert longer.water.n_points == 1024
    assert longer.report == {"water_n_points_given": 2048, "water_n_points_kept": 1024}
    assert longer.flags == [
        "zero-filled input: w.nii.gz: the last 1024 of 2048 points are 0 in every FID (not "
        "acquired); processed on the first 1024",
        "zero-filled water reference: w.nii.gz: acquired on 512 of its 1024 points; its SNR, "
        "eddy-current phase and amplitude come from those"]
    same = zero_fill_step(_acquisition(data), _acquisition(zero_padded(water, 1024), "w.nii.gz"))
    assert same.water.n_points == 1024 and len(same.flags) == 1
    assert same.report == {}  # nothing cut: the methods text must not claim a cut


def test_almost_empty_data_are_refused_naming_the_file():
    data = np.zeros((1, 2, 1, 1024), complex)
    data[..., :20] = 1.0
    with pytest.raises(ValueError, match="zf.nii.gz: only the first 20 of 1024 points are "
                                         "non-zero; the data are truncated or empty"):
        zero_fill_step(_acquisition(data), None)


def test_water_amplitude_of_a_zero_filled_reference_is_that_of_its_acquired_points():
    """A water line acquired for 0.1 s (400 points at 4 kHz) and zero-filled to 2048: its
    fitted amplitude is the true one (the zeros no longer pull the 0.2 s fit down)."""
    from pipeline.fitting.quantification import water_amplitude

    t = np.arange(2048) * DWELL_S
    water = 1e4 * np.exp(-t / 0.1 + 2j * np.pi * 5.0 * t)
    water[400:] = 0
    assert water_amplitude(water, DWELL_S) == pytest.approx(1e4, rel=1e-6)


def test_measured_mm_of_a_zero_filled_export_is_that_of_its_acquired_points(challenge_spectrum):
    """A measured MM acquisition zero-filled 2 x gives the MM entry of the unpadded one."""
    from pipeline.fitting.mm_basis import measured_mm_basis
    from pipeline.io.basis_formats import read_basis

    fid, basis_path = challenge_spectrum
    basis = read_basis(basis_path)
    mm = _noise((1, 4, 1, 2048), seed=5) * 1e-3 + fid[None, None, None, :]
    as_acquired = measured_mm_basis(_acquisition(mm, cf_mhz=basis.cf_mhz), basis)
    zero_filled = measured_mm_basis(_acquisition(zero_padded(mm, 4096), cf_mhz=basis.cf_mhz), basis)
    np.testing.assert_allclose(zero_filled.fids, as_acquired.fids, rtol=0,
                               atol=1e-9 * np.abs(as_acquired.fids).max())


@pytest.fixture(scope="module")
def challenge_spectrum(shared_data):
    from pipeline.io.basis_formats import read_lcmodel_raw
    folder = shared_data / "ismrm2016_fitting_challenge"
    fid, _ = read_lcmodel_raw(folder / "datasets_LCModel" / "dataset1.RAW")
    return fid, folder / "basisset_LCModel" / "press3T_30ms.BASIS"


def test_zero_filled_spectrum_is_fitted_as_the_acquired_one(challenge_spectrum):
    """ISMRM challenge spectrum 1 zero-filled 2 x: preprocessing returns its 2048 acquired
    points exactly, so the fit and its CRLBs are those of the spectrum as acquired. Fitted
    without the cut, the same data report CRLBs 23-31 % smaller (the README's figure; a
    white-noise 1/sqrt(2) would be 29 %)."""
    from pipeline.fitting import FitOptions, fit_spectrum
    from pipeline.io.basis_formats import read_basis
    from pipeline.preprocess.pipeline import preprocess_acquisition

    fid, basis_path = challenge_spectrum
    options = {"outliers": False, "motion_check": False, "align": False}
    acquired = preprocess_acquisition(_acquisition(fid[None, None, None, :]), None, options)
    zero_filled = preprocess_acquisition(
        _acquisition(zero_padded(fid, 2 * fid.size)[None, None, None, :]), None, options)
    assert any(f.startswith("zero-filled input: zf.nii.gz: the last 2048 of 4096")
               for f in zero_filled.averaged.metadata["PreprocessingFlags"])
    np.testing.assert_array_equal(zero_filled.averaged.fids, acquired.averaged.fids)

    basis, fit_options = read_basis(basis_path), FitOptions()
    as_acquired = fit_spectrum(acquired.averaged.fids[0, 0, 0], basis, DWELL_S, CF_MHZ,
                               fit_options)
    untrimmed = fit_spectrum(zero_padded(acquired.averaged.fids[0, 0, 0], 2 * fid.size), basis,
                             DWELL_S, CF_MHZ, fit_options)
    ratios = [untrimmed.uncertainty(n) / as_acquired.uncertainty(n)
              for n in ("NAA", "Cr", "Ins", "Glu")]
    assert all(0.68 <= r <= 0.78 for r in ratios), ratios  # 22.9-30.6 % smaller


def test_methods_text_says_when_zero_filling_was_trimmed():
    from bids_app.citation import methods_text

    conversion = {"shape": [1, 1, 1, 2048], "b_values_s_mm2": [0.0]}
    trimmed = {"conversion.json": conversion, "coils.json": {
        "n_coils": 1, "zero_filling": {"n_points_given": 2048, "n_points_acquired": 1024}}}
    as_given = {"conversion.json": conversion, "coils.json": {"n_coils": 1, "zero_filling": {}}}
    text, _ = methods_text({}, None, [trimmed])
    assert ("Zero-filled input was cut to its acquired points (1024 of 2048 points) before any "
            "processing.") in text
    assert "Zero-filled" not in methods_text({}, None, [as_given])[0]
    water_only = {"conversion.json": conversion, "coils.json": {"n_coils": 1, "zero_filling": {
        "water_n_points_given": 2048, "water_n_points_kept": 1024}}}
    text, _ = methods_text({}, None, [water_only])
    assert "Zero-filled input" not in text
    assert ("The water reference was cut to the metabolite data's points (1024 of 2048 points) "
            "before any processing.") in text


def test_eddy_correction_holds_the_phase_beyond_a_zero_filled_water_reference():
    """A water reference acquired on 1024 points and zero-filled to 2048, with data acquired on
    2048: the eddy-current phase (known, decaying) is removed where the water was acquired (up
    to the straight line the correction keeps) and held beyond it (without the hold, the
    phase of the zeros made the data's late points wrong by about a radian)."""
    from pipeline.preprocess.eddy import eddy_current_correct

    n, dwell_s = 2048, 2.5e-4
    t = np.arange(n) * dwell_s
    eddy_rad = 0.8 * np.exp(-t / 0.02)
    water = 1e3 * np.exp(-t / 0.08 + 1j * eddy_rad)
    water[1024:] = 0
    data = np.exp(-t / 0.15 + 1j * (2 * np.pi * 40 * t + eddy_rad))
    done = eddy_current_correct(data, water, dwell_s, denoise=False)  # noise-free water
    left = np.unwrap(np.angle(done.corrected)) - 2 * np.pi * 40 * t  # phase not removed
    line = np.polyval(np.polyfit(t[:1024], left[:1024], 1), t[:1024])
    assert np.isfinite(done.water_snr)
    np.testing.assert_allclose(left[:1024], line, atol=1e-9)
    np.testing.assert_allclose(left[1024:], left[1023] + eddy_rad[1024:] - eddy_rad[1023],
                               atol=1e-9)


def test_water_reference_at_the_datas_acquired_points_passes_the_grid_check(tmp_path):
    """Data zero-filled to 2048 points (1024 acquired) with a 1024-point water reference share
    one grid once the data are cut; a 1536-point water reference does not."""
    from pipeline.io.input_checks import InputError, check_water_grid
    from pipeline.io.nifti_mrs import write_nifti_mrs

    data = _acquisition(zero_padded(_noise((1, 4, 1, 1024)), 2048))
    svs = tmp_path / "svs.nii.gz"
    write_nifti_mrs(data, str(svs))
    for n_points, fits in ((1024, True), (2048, True), (1536, False)):
        water = tmp_path / f"water{n_points}.nii.gz"
        write_nifti_mrs(_acquisition(_noise((1, 2, 1, n_points))), str(water))
        if fits:
            check_water_grid(svs, water)
        else:
            with pytest.raises(InputError, match="water reference has 1536 spectral points"):
                check_water_grid(svs, water)
