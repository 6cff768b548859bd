"""The order a file stores its dMRS conditions in is a converter's choice (loop order, the
directions of a shell listed in another order), so it must not change any result. Before
2026-12-07 alignment chained each condition's first template to the condition before it in
storage order among equal b-values: the in-vivo 7 T set with its conditions permuted (data
and water alike) gave per-transient drifts up to 2.6 Hz / 14.6 deg apart and amplitudes up to
6.5 % (Ins) apart, exit 0.

Truth: the same real data in its stored order (a permutation is a relabelling, so every
per-condition result must be the same to rounding)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import read_invivo_pair  # noqa: E402

from pipeline.acquisition import condition_order

PERMUTATION = [3, 7, 0, 5, 1, 9, 2, 8, 4, 6]
"""b = 0 in the middle, each shell's directions in another order than stored."""


def test_condition_order_ignores_storage_order_polarity_and_length():
    b = np.array([0.0, 1000.0, 1000.0, 1000.0, 2000.0])
    directions = np.array([[np.nan] * 3, [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], float)
    assert condition_order(b, directions).tolist() == [0, 1, 2, 3, 4]
    shuffled = [4, 2, 0, 3, 1]
    order = condition_order(b[shuffled], directions[shuffled])
    assert np.asarray(shuffled)[order].tolist() == [0, 1, 2, 3, 4]
    flipped = directions * np.array([[1], [-2], [3], [-0.5], [1]])
    assert condition_order(b, flipped).tolist() == [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def invivo(shared_data):
    return read_invivo_pair(shared_data)


def _permuted(acq, order):
    return acq.with_fids(acq.fids[order], b_values_s_mm2=acq.b_values_s_mm2[order],
                         directions=acq.directions[order])


def _drifts(result, n_conditions: int, key: str) -> np.ndarray:
    return np.array([[r[key] for r in result.transients if r["condition"] == c]
                     for c in range(n_conditions)])


def test_conditions_stored_in_another_order_give_the_same_preprocessing(invivo):
    from pipeline.preprocess.pipeline import preprocess_acquisition
    acq, water = invivo
    stored = preprocess_acquisition(acq, water)
    permuted = preprocess_acquisition(_permuted(acq, PERMUTATION), _permuted(water, PERMUTATION))
    n = acq.n_conditions
    for key, tolerance in (("freq_shift_hz", 1e-6), ("phase_shift_deg", 1e-5)):
        assert np.abs(_drifts(stored, n, key)[PERMUTATION]
                      - _drifts(permuted, n, key)).max() < tolerance, key
    averaged = stored.averaged.fids[PERMUTATION]
    assert np.abs(permuted.averaged.fids - averaged).max() < 1e-8 * np.abs(averaged).max()
