"""Residual water off resonance (ISMRM 2016 challenge dataset 24: a large line at 4.1-4.3 ppm)
no longer zeroes the metabolites (issue 13, item 3).

With the former defaults (water removal from 4.2 ppm, fit window to 4.2 ppm) the shift ran to
its bound and tNAA, tCho and Ins came out 0. Truth: the challenge spectra are brain-like, so
each of these is a clearly non-zero fraction of tCr (the challenge's own ranges, as in
``test_fitting_ismrm``).
"""

import pytest

from pipeline.fitting import FitOptions, fit_spectrum, ratios_to_tcr
from pipeline.preprocess.water import RESIDUAL_WATER_WINDOW_PPM, remove_residual_water

from test_fitting_support import ISMRM_CF_MHZ, ISMRM_DWELL_S


@pytest.fixture(scope="module")
def dataset24(shared_data):
    from pipeline.io.basis_formats import read_basis, read_lcmodel_raw
    folder = shared_data / "ismrm2016_fitting_challenge"
    basis = read_basis(folder / "basisset_LCModel" / "press3T_30ms.BASIS")
    fid, _ = read_lcmodel_raw(folder / "datasets_LCModel" / "dataset24.RAW")
    return fid, basis


def test_default_water_window_reaches_4_ppm():
    assert RESIDUAL_WATER_WINDOW_PPM[0] <= 4.0
    assert FitOptions().ppm_range[1] <= RESIDUAL_WATER_WINDOW_PPM[0]


def test_dataset24_keeps_tnaa_tcho_and_ins_with_the_defaults(dataset24):
    fid, basis = dataset24
    cleaned, info = remove_residual_water(fid, ISMRM_DWELL_S, ISMRM_CF_MHZ)
    assert info["n_components_removed"] >= 1
    fit = fit_spectrum(cleaned, basis, ISMRM_DWELL_S, ISMRM_CF_MHZ, FitOptions())
    ratios = ratios_to_tcr(fit)
    assert fit.at_bounds == [], fit.at_bounds
    assert 0.9 < ratios["tNAA"] < 2.2
    assert 0.05 < ratios["tCho"] < 0.5
    assert ratios["Ins"] > 0.05
