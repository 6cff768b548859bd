"""The app's guarded readers live in :mod:`pipeline.io.input_checks` (the workflow nodes use
them too, and ``workflows`` never imports ``bids_app``); re-exported here for the app."""

from pipeline.io.input_checks import (MAX_SAMPLES, InputError, check_readable,  # noqa: F401
                                      check_water_grid, nifti_grid, read_acquisition,
                                      read_basis_file)
