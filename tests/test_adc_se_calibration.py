"""The ADC standard errors of ``_diffusion.tsv``, end to end from spectra, against the spread of
the ADC over noise realisations (full measurement: benchmarks/bench_adc_se_calibration.py,
README "Standard errors").

The published 7 T dMRS set's condition averages (the app's preprocessing) get complex white
noise of 2 x the set's own noise added, 10 times; each is fitted with the app's defaults and
its amplitudes, CRLBs and amplitude covariance across conditions (``_desc-amplitudes_covariance.tsv``)
go through the diffusion stage's functions. The reported SE includes the set's own noise, the
spread over realisations only the added noise, so the SE is scaled by 2/sqrt(5).
Measured 2026-12-08 (40 realisations, k = 1 and 2): with the covariance the ADC's spread is
0.79-1.03 of its SE (pooled 0.93); before, with the CRLBs taken as independent, 0.65-0.89
(pooled 0.77-0.78), because a metabolite's amplitudes are positively correlated across
conditions in the joint fit (b = 0 with b = 1 ms/um^2: +0.3 to +0.8).
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_adc_se_calibration import (METABOLITES, published_set,  # noqa: E402
                                      realisations, spread_over_se)

ADDED_NOISE = 2.0
N_REALISATIONS = 10
SPREAD_OVER_SE_BAND = (0.88, 1.25)
"""Pooled over the five metabolites: RMS of SD / SE. Measured 0.93 (40 realisations at k = 1
and at k = 2); these 10 realisations give 1.00, and 0.80 with the CRLBs taken as independent
(the code before 2026-12-08, which this band fails). Above 1.25 the SEs would be too narrow
(over-confident), the worse fault."""
D_INTRA_SPREAD_OVER_SE_MAX = 1.3
"""Sticks D_intra of tNAA and Ins, pooled RMS of SD / SE: 1.10 on these realisations (0.84-1.08
over 40), 1.44 with the CRLBs taken as independent (SE too small: the amplitudes' correlation
at high b, up to +0.98 between neighbouring conditions for Ins, was ignored)."""


@pytest.mark.slow
def test_adc_standard_errors_bound_the_spread_over_added_noise(shared_data):
    draws, amps, _, _, _ = realisations(published_set(), N_REALISATIONS, ADDED_NOISE, seed=2)
    ratios = [spread_over_se(draws, (m, "monoexponential", "ADC"), ADDED_NOISE)
              for m in METABOLITES]
    pooled = float(np.sqrt(np.mean(np.square(ratios))))
    assert SPREAD_OVER_SE_BAND[0] <= pooled <= SPREAD_OVER_SE_BAND[1], dict(zip(METABOLITES,
                                                                                ratios))
    d_intra = [spread_over_se(draws, (m, "sticks", "D_intra"), ADDED_NOISE)
               for m in ("tNAA", "Ins")]
    assert np.sqrt(np.mean(np.square(d_intra))) <= D_INTRA_SPREAD_OVER_SE_MAX, d_intra
    # b = 0 and b = 1 amplitudes move together, as the covariance the fit writes says
    correlations = [np.corrcoef([s[m][0][0] for s in amps], [s[m][0][1] for s in amps])[0, 1]
                    for m in ("tNAA", "tCr", "tCho")]
    assert np.mean(correlations) > 0.3, correlations
    written = [np.median([s[m][2][0, 1] / np.sqrt(s[m][2][0, 0] * s[m][2][1, 1]) for s in amps])
               for m in ("tNAA", "tCr", "tCho")]
    assert np.mean(np.abs(np.subtract(written, correlations))) < 0.25, (written, correlations)
