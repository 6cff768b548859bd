"""The kernel gate's Voigt residual/noise (``voigt_fit_quality``) is the QC's fit quality of
the Voigt fit (review rev6): same residual (real part over the fit window, baseline removed),
same noise SD. Checked on real spectra (ISMRM 2016 challenge), where the QC computes it
independently from the data and fitted FIDs. The gate runs at ``baseline_stiffness``, before
the stiffness is chosen per spectrum, so these fits keep that stiffness fixed (the Voigt fit is
then the final fit the QC sees)."""

import numpy as np
import pytest

from pipeline.fitting import FitOptions, fit_spectrum
from pipeline.io.basis_formats import read_basis, read_lcmodel_raw
from pipeline.qc.metrics import fit_quality

DWELL_S, CF_MHZ = 2.5e-4, 123.2


@pytest.mark.parametrize("dataset", [1, 22])
def test_voigt_fit_quality_is_the_qc_fit_quality(shared_data, dataset):
    folder = shared_data / "ismrm2016_fitting_challenge"
    basis = read_basis(folder / "basisset_LCModel" / "press3T_30ms.BASIS")
    fid, _ = read_lcmodel_raw(folder / "datasets_LCModel" / f"dataset{dataset}.RAW")
    # a gate no spectrum reaches: the Voigt fit is the final fit, so the QC can measure it
    options = FitOptions(lineshape_kernel_min_fit_quality=1e6, baseline_stiffness_choices=())
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, options)
    assert "lineshape_kernel" not in fit.extra
    qc = fit_quality(fid, fit.fitted_fid, DWELL_S, CF_MHZ, fit_ppm=options.ppm_range)
    assert fit.extra["voigt_fit_quality"] == pytest.approx(qc["fit_quality"], rel=1e-6)
    assert np.isfinite(qc["fit_quality"]) and qc["fit_quality"] > 0.5


def test_noise_window_sets_the_noise_of_the_gate(shared_data):
    """``noise_sd_ppm`` (the app passes ``[qc] noise_ppm``) is the noise the gate divides by:
    with interference added to part of the default noise region, the gate's quality equals the
    QC's fit quality measured in the same clean window, and the default region's inflated noise
    would have made the Voigt fit look better than it is."""
    from pipeline.spectra import fid_to_spectrum, ppm_axis, spectrum_to_fid

    folder = shared_data / "ismrm2016_fitting_challenge"
    basis = read_basis(folder / "basisset_LCModel" / "press3T_30ms.BASIS")
    fid, _ = read_lcmodel_raw(folder / "datasets_LCModel" / "dataset1.RAW")
    ppm = ppm_axis(fid.size, DWELL_S, CF_MHZ)
    spectrum = fid_to_spectrum(fid)
    band = (ppm > -5.0) & (ppm < -0.5)  # inside the default noise region, outside the fit
    clean_sd = np.std(spectrum.real[(ppm > 11.0) & (ppm < 14.0)])
    rng = np.random.default_rng(7)
    spectrum[band] += 4 * clean_sd * (rng.standard_normal(band.sum())
                                      + 1j * rng.standard_normal(band.sum()))
    fid = spectrum_to_fid(spectrum)
    window = (11.0, 14.0)
    options = FitOptions(lineshape_kernel_min_fit_quality=1e6, noise_sd_ppm=window,
                         baseline_stiffness_choices=())
    fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, options)
    in_window = fit_quality(fid, fit.fitted_fid, DWELL_S, CF_MHZ, fit_ppm=options.ppm_range,
                            noise_ppm=window)
    default_region = fit_quality(fid, fit.fitted_fid, DWELL_S, CF_MHZ, fit_ppm=options.ppm_range)
    assert fit.extra["voigt_fit_quality"] == pytest.approx(in_window["fit_quality"], rel=1e-6)
    assert default_region["fit_quality"] < 0.6 * in_window["fit_quality"]
