"""Example ``dmrs-bids-convert`` TOML mappings (shipped as package data)."""
