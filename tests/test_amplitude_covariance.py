"""Covariance of each metabolite's amplitudes across the conditions of a series
(``pipeline.fitting.amplitude_covariance``, ``<src>_desc-amplitudes_covariance.tsv``): the joint fit's
amplitudes of one metabolite are correlated across conditions; the covariance the app writes
must predict their spread over noise realisations, its diagonal must be the CRLBs squared, and
a sequential fit's is diagonal."""

import numpy as np

from pipeline.fitting import FitOptions, fit_conditions
from pipeline.fitting.amplitude_covariance import (amplitude_covariance_rows,
                                                   amplitude_covariances)

from test_fitting_joint import B_S_MM2, joint_options, mono_fids
from test_fitting_support import CF_MHZ, DWELL_S

NAMES = ("NAA", "Cr", "PCr", "Cho")


def test_joint_covariance_predicts_the_spread_of_amplitude_differences():
    """Monoexponential joint model: a metabolite's amplitudes at b = 0 and 1 ms/um^2 move
    together (correlation ~0.95), so A(0) - A(1) scatters far less than independent CRLBs
    say. Truth: the spread over 16 noise realisations."""
    rng = np.random.default_rng(3)
    diffs, predicted, independent = {n: [] for n in ("NAA", "tCr")}, {}, {}
    for _ in range(16):
        basis, fids = mono_fids(noise_sd=0.08, rng=rng, names=NAMES)
        fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, joint_options())
        cov = amplitude_covariances(fits)
        for name in diffs:
            amplitudes, crlbs = fits.series(name)
            assert np.allclose(np.sqrt(np.diag(cov[name])), crlbs, rtol=1e-12)
            diffs[name].append(amplitudes[0] - amplitudes[1])
            predicted.setdefault(name, []).append(cov[name][0, 0] + cov[name][1, 1]
                                                  - 2 * cov[name][0, 1])
            independent.setdefault(name, []).append(crlbs[0] ** 2 + crlbs[1] ** 2)
    for name in diffs:
        spread = np.var(diffs[name], ddof=1)
        assert 0.4 < spread / np.median(predicted[name]) < 2.5, name
        assert spread / np.median(independent[name]) < 0.3, name  # independence is wrong


def test_sequential_covariance_is_diagonal_and_rows_are_written_once_per_pair():
    basis, fids = mono_fids(noise_sd=0.08, rng=np.random.default_rng(1), names=NAMES)
    options = FitOptions.from_dict(dict(ppm_range=(0.5, 4.2), mode="sequential"))
    fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, options)
    cov = amplitude_covariances(fits)
    assert set(cov) == {"NAA", "Cr", "PCr", "Cho", "tNAA", "tCr", "tCho"}
    for name, matrix in cov.items():
        assert np.array_equal(matrix, np.diag(fits.series(name)[1] ** 2)), name
    rows = amplitude_covariance_rows(fits)
    n = B_S_MM2.size
    assert len(rows) == len(cov) * n * (n + 1) // 2
    assert all(r["condition_i"] <= r["condition_j"] for r in rows)
    assert all(r["correlation"] == (1.0 if r["condition_i"] == r["condition_j"] else 0.0)
               for r in rows)
