"""qc stage of the dmrs-bids science core."""
