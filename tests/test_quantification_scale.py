"""Water scaling does not depend on the arbitrary scale a file is stored at (fault injection,
session 23): the water reference's line amplitude and the basis's creatine scale scale exactly
with their input. Truth: the same published file at its stored scale. Before the fix, the
in-vivo 7 T water reference at 1e-6 / 1e-8 of its scale gave a water signal 5 % / 37 % off
(every concentration with it), and the ISMRM challenge basis at 1e-12 a creatine scale 9.5 % off.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from pipeline.fitting.quantification import basis_proton_scale, unit_peak, water_amplitude
from pipeline.io.basis_formats import read_basis

SCALES = (1e15, 1e12, 1e-6, 1e-8, 1e-12)


@pytest.fixture(scope="module")
def invivo_water(shared_data):
    """Lowest-b water reference of the published 7 T DW-STEAM set, its 4 transients averaged,
    and its dwell time (s)."""
    img = nib.load(str(shared_data / "dmrs_7t_steam_invivo" / "nifti" / "water.nii.gz"))
    fid = np.asarray(img.dataobj)[0, 0, 0, :, :, 0].mean(axis=1)
    return fid.astype(complex), float(img.header["pixdim"][4])


@pytest.mark.parametrize("scale", SCALES)
def test_water_amplitude_scales_with_the_data(invivo_water, scale):
    fid, dwell_s = invivo_water
    stored = water_amplitude(fid, dwell_s)
    assert stored == pytest.approx(0.0538, rel=0.01)  # |FID(0)| of the stored file: 0.0552
    assert water_amplitude(fid * scale, dwell_s) == pytest.approx(stored * scale, rel=1e-6)


@pytest.mark.parametrize("scale", SCALES)
def test_basis_creatine_scale_scales_with_the_basis(shared_data, scale):
    basis = read_basis(shared_data / "ismrm2016_fitting_challenge" / "basisset_LCModel"
                       / "press3T_30ms.BASIS")
    fids = np.asarray(basis.fids)
    stored = basis_proton_scale(basis.names, fids)
    assert basis_proton_scale(basis.names, fids * scale) == pytest.approx(stored * scale,
                                                                          rel=1e-6)


def test_unit_peak_and_an_empty_reference():
    fid, peak = unit_peak(np.array([3 + 4j, -1j, 0.5]))
    assert peak == 5.0 and np.max(np.abs(fid)) == 1.0 and fid[0] == pytest.approx(0.6 + 0.8j)
    assert water_amplitude(np.zeros(1024, complex), 2.5e-4) == 0.0


def test_concentrations_far_below_brain_values_are_warned_about():
    """The largest main metabolite below 1 mM at the lowest b (a water reference at another
    scale than the data: 1e6 x gave tNAA 9.2e-6 mM) is warned about; brain values, a lowest b
    missing its tNAA value, and higher b-values are not."""
    from pipeline.fitting.water_scaling import implausible_concentrations

    def rows(tnaa, tcho, high_b=0.1):
        return [{"b_value": b, "metabolite": m, "concentration_mm": c}
                for b, m, c in ((0.0, "tNAA", tnaa), (0.0, "tCho", tcho), (0.0, "MM", 0.01),
                                (20000.0, "tNAA", high_b))]
    note = implausible_concentrations(rows(9.22e-6, 1.8e-6))
    assert "the largest of tNAA, tCr, tCho, Ins, Glx is 9.22e-06 mM" in note
    assert "stored at the data's scale" in note
    assert implausible_concentrations(rows(9.22, 1.8)) == ""
    assert implausible_concentrations(rows("n/a", 1.8)) == ""
