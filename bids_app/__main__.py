"""``python -m bids_app BIDS_DIR OUTPUT_DIR {participant,group} ...``: the ``dmrs-bids``
command, for environments where the console scripts are not on PATH."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
