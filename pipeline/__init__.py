"""dmrs-bids science core: numpy/scipy only, no nipype, no BIDS, no paths outside ``io``."""

__version__ = "0.1.0"
