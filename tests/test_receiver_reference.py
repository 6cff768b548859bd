"""NIfTI-MRS ``SpecFreqChemShift`` (the receiver's chemical shift): the conversion stage moves
the data to the 4.65 ppm convention every ppm window of preprocessing and QC assumes (a
receiver at 3.0 ppm made tCr 1.46 mM for 6.55, exit 0)."""

import numpy as np
import pytest

from pipeline.acquisition import Acquisition, with_standard_receiver_ppm
from pipeline.spectra import fid_to_spectrum, ppm_axis

CF_MHZ, DWELL_S, N = 123.2, 1 / 2000, 2048


def _naa_line(receiver_ppm: float) -> Acquisition:
    """One Lorentzian at 2.01 ppm recorded with the receiver at ``receiver_ppm``: its offset
    from the receiver is (receiver - 2.01) ppm (the project's sign: f = (ref - ppm) cf)."""
    t = np.arange(N) * DWELL_S
    fid = np.exp(2j * np.pi * (receiver_ppm - 2.01) * CF_MHZ * t - np.pi * 3.0 * t)
    return Acquisition(fid.reshape(1, 1, 1, N), DWELL_S, CF_MHZ, [0.0], [[np.nan] * 3],
                       ref_ppm=receiver_ppm, metadata={"SpecFreqChemShift": receiver_ppm})


@pytest.mark.parametrize("receiver_ppm", [3.0, 4.0, 4.7])
def test_the_naa_line_lands_at_2_01_ppm_of_the_standard_axis(receiver_ppm):
    acq, shift_hz = with_standard_receiver_ppm(_naa_line(receiver_ppm))
    assert acq.ref_ppm == 4.65 and acq.metadata["SpecFreqChemShift"] == 4.65
    assert shift_hz == pytest.approx((4.65 - receiver_ppm) * CF_MHZ)
    spectrum = np.abs(fid_to_spectrum(acq.fids[0, 0, 0]))
    peak_ppm = ppm_axis(N, DWELL_S, CF_MHZ)[np.argmax(spectrum)]
    assert peak_ppm == pytest.approx(2.01, abs=1 / (N * DWELL_S) / CF_MHZ)
    # read without the shift, the line would sit (4.65 - receiver) ppm away from 2.01
    unshifted = ppm_axis(N, DWELL_S, CF_MHZ)[np.argmax(np.abs(fid_to_spectrum(
        _naa_line(receiver_ppm).fids[0, 0, 0])))]
    assert unshifted == pytest.approx(2.01 + 4.65 - receiver_ppm, abs=0.01)


def test_the_convention_itself_is_left_untouched():
    acq = _naa_line(4.65)
    same, shift_hz = with_standard_receiver_ppm(acq)
    assert same is acq and shift_hz == 0.0
