"""In-vivo 7 T DW-STEAM (shared data): tNAA and tCr ADCs in the published white-matter range.

Preprocessing (alignment, outliers, eddy currents with the water reference, averaging; plain
averaging without alignment inflates the ADCs through incoherent high-b averages), sequential
spectral fits with the LCModel basis, then the diffusion table with the powder average over the
three directions.
"""

import numpy as np
import pytest

from pipeline.diffusion import diffusion_table, gradient_timing_ms

SIDECAR = {"EchoTime": 0.040, "DiffusionGradientDuration": 0.015, "DiffusionTime": 0.079}


@pytest.fixture(scope="module")
def invivo_rows(shared_data):
    from pipeline.fitting.conditions import fit_conditions
    from pipeline.io.basis_formats import read_basis
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.preprocess.pipeline import preprocess_acquisition

    folder = shared_data / "dmrs_7t_steam_invivo"
    acq = read_nifti_mrs(folder / "nifti" / "metab.nii.gz", sidecar=SIDECAR, b_value_units="s/mm2")
    water = read_nifti_mrs(folder / "nifti" / "water.nii.gz", sidecar=SIDECAR, b_value_units="s/mm2")
    averaged = preprocess_acquisition(acq, water).averaged
    basis = read_basis(folder / "basis_STEAM_TE45_TM60.BASIS")
    with pytest.warns(UserWarning):  # basis resampled to the data's centre frequency
        fits = fit_conditions(averaged.fids[:, 0, 0, :], basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2)
    timing = gradient_timing_ms(acq.metadata)
    series = {name: fits.series(name) for name in ("tNAA", "tCr")}
    return diffusion_table(series, acq.b_values_s_mm2, directions=acq.directions,
                           models=("monoexponential", "sticks"), small_delta_ms=timing["small_delta_ms"],
                           big_delta_ms=timing["big_delta_ms"], echo_time_ms=timing["echo_time_ms"],
                           diffusion_time_ms=timing["diffusion_time_ms"], n_draws=0)


@pytest.mark.slow
@pytest.mark.parametrize("metabolite", ["tNAA", "tCr"])
def test_invivo_adc_in_white_matter_range(invivo_rows, metabolite):
    (adc,) = [r for r in invivo_rows if r["metabolite"] == metabolite and r["parameter"] == "ADC"]
    assert 0.1 <= adc["value"] <= 0.25
    assert 0 < adc["std_error"] < 0.05
    assert adc["applicable"] == 1
    assert "powder average over 3 directions" in adc["note"] and "diffusion time 79 ms" in adc["note"]
