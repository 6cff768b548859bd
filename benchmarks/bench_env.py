"""Set-up the benchmarks share; import it before numpy.

- One BLAS/OpenMP thread unless the environment says otherwise: the figures are per core, and
  the thread count is read when numpy loads.
- The repository and its ``tests/`` folder (the validation-set builders the tests share) on
  ``sys.path``.
- ``SHARED``: the shared real/published data (``$DMRS_BIDS_SHARED_DATA``, else
  ``../shared/data`` beside the repository).
"""

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
for _folder in (ROOT / "tests", ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

SHARED = Path(os.environ.get("DMRS_BIDS_SHARED_DATA", ROOT.parent / "shared" / "data"))
