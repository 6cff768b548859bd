"""A receive coil that recorded nothing (exactly zero) is left out of the coil combination with
a flag. Before, its zero noise made the whitening singular and the participant failed with
"LinAlgError: Singular matrix".

Truth: the same real uncombined data (Siemens 7 T STEAM, 4 coils) given without that coil.
"""

import numpy as np
import pytest

from pipeline.preprocess.pipeline import preprocess_acquisition
from pipeline.preprocess.steps import combine_step, dead_coils

DEAD = 2


@pytest.fixture(scope="module")
def siemens(shared_data):
    from pipeline.io.nifti_mrs import read_nifti_mrs
    folder = shared_data / "siemens_7t_steam_coils"
    return read_nifti_mrs(folder / "metab_raw.nii.gz"), read_nifti_mrs(folder / "wref_raw.nii.gz")


def _without(acq, coil):
    keep = [k for k in range(acq.n_coils) if k != coil]
    return acq.with_fids(acq.fids[:, :, keep, :])


def _zeroed(acq, coil):
    fids = acq.fids.copy()
    fids[:, :, coil, :] = 0
    return acq.with_fids(fids)


def test_dead_coils_are_the_exactly_zero_ones():
    fids = np.ones((2, 3, 4, 8), dtype=complex)
    fids[:, :, 1] = 0
    fids[0, 0, 3, 0] = 0  # one zero sample is not a dead coil
    assert dead_coils(fids).tolist() == [False, True, False, False]


@pytest.mark.parametrize("in_water_too", [False, True])
def test_a_dead_coil_is_left_out_as_if_never_given(siemens, in_water_too):
    acq, water = siemens
    given_water = _zeroed(water, DEAD) if in_water_too else water
    result = preprocess_acquisition(_zeroed(acq, DEAD), given_water)
    truth = preprocess_acquisition(_without(acq, DEAD), _without(water, DEAD))
    np.testing.assert_allclose(result.averaged.fids, truth.averaged.fids,
                               atol=1e-6 * np.abs(truth.averaged.fids).max())
    assert any(f"coil(s) {DEAD} of 4 exactly zero" in f for f in result.flags)
    assert [row["weight"] for row in result.coil_weights][DEAD] == 0.0


def test_a_coil_dead_in_the_water_only_takes_weights_from_the_data(siemens):
    acq, water = siemens
    step = combine_step(acq, _zeroed(water, DEAD))
    assert step.report["weights_from"] == "data"
    assert "no water-scaled concentrations" in step.water_scale_note
    assert any("exactly zero where" in f for f in step.flags)


def test_all_coils_dead_is_refused_naming_the_file(siemens):
    acq, water = siemens
    empty = acq.with_fids(np.zeros_like(acq.fids))
    with pytest.raises(ValueError, match="metab_raw.nii.gz: all 4 coils are exactly zero"):
        combine_step(empty, water)


def test_a_dead_coil_in_a_measured_mm_file_is_left_out(siemens, shared_data):
    """The measured-MM path combined coils on its own and failed with 'LinAlgError: Singular
    matrix' on a dead coil; it now gives the MM entry of the data without that coil."""
    from pipeline.fitting.mm_basis import measured_mm_basis
    from pipeline.io.basis_formats import read_basis
    acq, _ = siemens
    basis = read_basis(shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS")
    result = measured_mm_basis(_zeroed(acq, DEAD), basis)
    truth = measured_mm_basis(_without(acq, DEAD), basis)
    np.testing.assert_allclose(result.fids, truth.fids, atol=1e-9 * np.abs(truth.fids).max())


def test_the_combined_water_keeps_the_data_type(siemens):
    """A complex128 weight vector put the combined water in double precision (twice the file,
    last digits of every later step changed)."""
    acq, water = siemens
    step = combine_step(acq, water)
    assert step.water_fids.dtype == step.fids.dtype == acq.fids.dtype


def test_a_transient_zero_in_some_coils_only_is_left_out(siemens):
    """A water transient zero in coils 1 and 3 only took the water signal to 0.84 x (and
    concentrations +20 %) with no flag: it is now left out as not acquired."""
    from pipeline.fitting.quantification import water_amplitude
    from pipeline.preprocess.average import acquired_mean
    acq, water = siemens
    fids = water.fids.copy()
    fids[0, 1, [1, 3]] = 0
    step = combine_step(acq, water.with_fids(fids))
    kept = combine_step(acq, water.with_fids(water.fids[:, :1]))
    assert water_amplitude(acquired_mean(step.water_fids[0]), water.dwell_s) == pytest.approx(
        water_amplitude(kept.water_fids[0].mean(axis=0), water.dwell_s), rel=1e-6)
    assert any("exactly zero in some coils only" in f for f in step.flags)
    data = acq.fids.copy()
    data[0, 5, :2] = 0
    result = preprocess_acquisition(acq.with_fids(data), water)
    assert [r["rejected"] for r in result.transients if r["transient"] == 5] == [1]
