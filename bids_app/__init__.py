"""The BIDS App: command line, dataset discovery, derivatives, reports, group level."""
