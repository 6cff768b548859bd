"""A transient rejected in one condition concerns that condition's alignment only: the other
conditions' templates never held it, so their first alignment stands. Before 2026-12-07
every condition was re-aligned once any transient was rejected, and through the template
model shared across conditions the re-alignment moved them all: on the in-vivo 7 T set, the
transients rejected at b = 3956 s/mm^2 moved the shifts of the b = 0 transients by 0.5-0.7
Hz SD and its average by 8-11 % in 1.8-3.4 ppm (one borderline transient more or less
rejected moved tCr at b = 0 by 3.8 %), exit 0.

Truth: the first alignment of the same real data, on which the outliers were found."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import read_invivo_pair  # noqa: E402


@pytest.fixture(scope="module")
def invivo(shared_data):
    return read_invivo_pair(shared_data)


def _shifts(result, key: str, n_conditions: int) -> np.ndarray:
    return np.array([[r[key] for r in result.transients if r["condition"] == c]
                     for c in range(n_conditions)])


def test_conditions_without_a_rejected_transient_keep_their_first_alignment(invivo):
    from pipeline.preprocess import steps
    from pipeline.preprocess.pipeline import PreprocessOptions, preprocess_acquisition
    acq, water = invivo
    options = PreprocessOptions()
    combined = steps.combine_step(acq, water, options.coil_whiten)
    unaligned, _ = steps.eddy_step(combined.fids, combined.water_fids, water.b_values_s_mm2,
                                   acq, options.ecc_min_water_snr, water.directions)
    first = steps.align_step(unaligned, acq, options)
    result = preprocess_acquisition(acq, water, options)
    n = acq.n_conditions
    rejected = np.array([[r["rejected"] for r in result.transients if r["condition"] == c]
                         for c in range(n)], bool)
    kept = ~rejected.any(axis=1)
    assert 0 < kept.sum() < n  # some conditions lost a transient, others none
    for key, found in (("freq_shift_hz", first.freq_hz), ("phase_shift_deg", first.phase_deg)):
        assert np.abs(_shifts(result, key, n)[kept] - found[kept]).max() < 1e-9, key
