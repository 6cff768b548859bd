"""The app's guarded readers live in :mod:`pipeline.io.input_checks` and the signal checks in
:mod:`pipeline.io.signal_checks` (the workflow nodes use them too, and ``workflows`` never
imports ``bids_app``); re-exported here for the app."""

from pipeline.io.input_checks import (MAX_SAMPLES, InputError,  # noqa: F401
                                      check_frequency_agreement, check_metadata,
                                      check_motion_grid, check_nucleus, check_readable,
                                      check_water_grid, nifti_grid, read_acquisition,
                                      read_basis_file, timing_problems)
from pipeline.io.signal_checks import (check_fid_start, check_macromolecule_signal,  # noqa: F401
                                       check_water_reference)
