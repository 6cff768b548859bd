"""QC of preprocessing-level powder averages: transients mapped onto their shells (F8)."""

import numpy as np

from pipeline.acquisition import Acquisition
from workflows.interfaces.qc import by_condition

DIRS = ["1,0,0", "0,1,0", "0,0,1"]


def _rows(rejected):
    """_transients.tsv rows: b = 0 (no direction), then b = 1000 and 3000 s/mm^2 along x, y, z;
    ``rejected[c]`` the transients rejected in condition c (4 transients each)."""
    conditions = [(0.0, "n/a")] + [(b, d) for b in (1000.0, 3000.0) for d in DIRS]
    return [{"condition": str(c), "b_value": str(b), "direction": d, "transient": str(t),
             "rejected": str(int(t in rejected.get(c, ())))}
            for c, (b, d) in enumerate(conditions) for t in range(4)]


def _preprocessed(b_values):
    n = len(b_values)
    return Acquisition(np.zeros((n, 1, 1, 16), complex), 2.5e-4, 123.2,
                       np.asarray(b_values, float), np.full((n, 3), np.nan))


def test_powder_averaged_shells_get_the_transients_of_their_conditions():
    """7 acquired conditions, 3 shells after the powder average: shell 1 holds conditions 1-3
    (12 transients, 1 rejected), shell 2 conditions 4-6 (3 rejected); indexing the 7-condition
    table by the 3 shells (before) read condition 1 and 2 alone, and 5 shells of 13 conditions
    raised an IndexError."""
    rows = _rows({2: (0,), 4: (1, 2), 6: (3,)})
    rejected = by_condition(rows, _preprocessed([0.0, 1000.0, 3000.0]), "rejected")
    assert [r.size for r in rejected] == [4, 12, 12]
    assert [float(r.mean()) for r in rejected] == [0.0, 1 / 12, 3 / 12]


def test_unaveraged_conditions_keep_their_own_transients():
    rows = _rows({2: (0,), 4: (1, 2)})
    rejected = by_condition(rows, _preprocessed([0.0] + [1000.0] * 3 + [3000.0] * 3),
                            "rejected")
    assert [int(r.sum()) for r in rejected] == [0, 0, 1, 0, 2, 0, 0]
