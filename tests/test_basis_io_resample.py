"""resample_basis: a resampled analytic basis equals the analytic basis made on the new grid."""

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.io.basis_tools import resample_basis, singlet_offsets_ppm
from pipeline.spectra import fid_to_spectrum, time_axis_s

LINES_PPM = {"NAA": [(2.008, 3.0)], "Cr": [(3.027, 3.0), (3.913, 2.0)], "GPC": [(3.212, 9.0)]}


def analytic(dwell_s, n_points, cf_mhz, ref_ppm=4.65, decay_rate_s=40.0):
    t = time_axis_s(n_points, dwell_s)
    fids = [sum(a * np.exp(2j * np.pi * (ref_ppm - d) * cf_mhz * t) for d, a in peaks)
            * np.exp(-decay_rate_s * t) for peaks in LINES_PPM.values()]
    return Basis(list(LINES_PPM), np.array(fids), dwell_s, cf_mhz, ref_ppm)


def relative_error(a: Basis, b: Basis) -> float:
    return float(np.abs(a.fids - b.fids).max() / np.abs(b.fids).max())


# source: 2000 Hz, 1024 points (0.512 s, decayed to e^-20); decay 40/s = 12.7 Hz FWHM
SOURCE = dict(dwell_s=5e-4, n_points=1024, cf_mhz=123.2)


@pytest.mark.parametrize("dwell_s,n_points", [
    (2.5e-4, 2048),   # wider band, same duration (upsampling in time)
    (2.5e-4, 4096),   # longer than the source: zero-padded
    (1e-3, 256),      # narrower band (1000 Hz still holds 0.6-8.7 ppm), same duration
    (4e-4, 700),      # non-integer dwell ratio, shorter than the source: truncated
])
def test_resampled_equals_analytic_on_new_grid(dwell_s, n_points):
    out = resample_basis(analytic(**SOURCE), dwell_s, n_points, SOURCE["cf_mhz"])
    truth = analytic(dwell_s, n_points, SOURCE["cf_mhz"])
    assert out.n_points == n_points and out.dwell_s == dwell_s
    assert relative_error(out, truth) < 1e-5


def test_small_field_change_keeps_ppm_positions():
    """cf 123.2 -> 123.7 MHz (+0.41 %): time axis scaled, so the ppm and the decay (in units of
    the new frequency scale) match an analytic basis made at 123.7 MHz with decay x ratio."""
    ratio = 123.7 / 123.2
    with pytest.warns(UserWarning, match="centre frequency changed"):
        out = resample_basis(analytic(**SOURCE), 2.5e-4, 2048, 123.7)
    truth = analytic(2.5e-4, 2048, 123.7, decay_rate_s=40.0 * ratio)
    assert relative_error(out, truth) < 1e-5
    assert abs(singlet_offsets_ppm(out)["NAA"]) < 1e-3


def test_reference_change_moves_the_receiver_not_the_ppm():
    out = resample_basis(analytic(**SOURCE), 2.5e-4, 2048, SOURCE["cf_mhz"], ref_ppm=4.7)
    truth = analytic(2.5e-4, 2048, SOURCE["cf_mhz"], ref_ppm=4.7)
    assert out.ref_ppm == 4.7
    assert relative_error(out, truth) < 1e-5


def test_other_field_strength_is_refused_with_reason():
    with pytest.raises(ValueError, match="J-couplings"):
        resample_basis(analytic(**SOURCE), 3.3e-4, 2048, 297.2)


def test_band_narrower_than_the_signals_drops_them_without_aliasing():
    """At 300 Hz (3.43-5.87 ppm) only Cr 3.913 ppm lies inside the band. NAA (325 Hz) would
    alias to 25 Hz as a full peak; it must be gone, only its far Lorentzian tail may remain."""
    out = resample_basis(analytic(**SOURCE), 1 / 300.0, 150, SOURCE["cf_mhz"])
    t = time_axis_s(150, 1 / 300.0)
    cr_ch2 = 2.0 * np.exp(2j * np.pi * (4.65 - 3.913) * 123.2 * t - 40.0 * t)
    assert np.abs(out.fid("Cr") - cr_ch2).max() < 0.01 * 2.0
    naa_peak = np.abs(fid_to_spectrum(out.fid("NAA"))).max()
    assert naa_peak < 0.01 * np.abs(fid_to_spectrum(cr_ch2)).max()


def test_same_dwell_and_field_truncates_or_zero_fills_exactly():
    source = analytic(**SOURCE)
    longer = resample_basis(source, SOURCE["dwell_s"], 2048, SOURCE["cf_mhz"])
    assert np.array_equal(longer.fids[:, :1024], source.fids)
    assert not longer.fids[:, 1024:].any()
    shorter = resample_basis(source, SOURCE["dwell_s"], 300, SOURCE["cf_mhz"])
    assert np.array_equal(shorter.fids, source.fids[:, :300])
