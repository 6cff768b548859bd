"""Basis resampling of FIDs that decay to exact zeros (pipeline.io.basis_tools)."""

import numpy as np

from pipeline.spectra import time_axis_s


def test_resampling_a_fid_that_decays_to_exact_zeros():
    """Parametric MM entries (Gaussians) decay to exact zeros; resampling them to another dwell
    raised 'Singular matrix' (issue 13). The result must match the analytic signal."""
    from pipeline.io.basis_tools import resample_fids

    def gaussian(t):
        fid = np.exp(-(120.0 * t) ** 2 + 2j * np.pi * 150.0 * t)
        fid[np.abs(fid) < 1e-200] = 0.0
        return fid

    old = gaussian(time_axis_s(2048, 1 / 4000))
    assert np.count_nonzero(old == 0) > 1000
    new = resample_fids(old[None], 1 / 4000, 1 / 3000, 1536)[0]
    truth = gaussian(time_axis_s(1536, 1 / 3000))
    assert np.max(np.abs(new - truth)) < 1e-4
