"""Names of the units a user may state, importable without numpy: the command line offers them
before it has set the linear-algebra thread count (``--omp-nthreads``), which numpy reads
once, when it loads."""

B_VALUE_UNITS = ("s/mm2", "ms/um2")
"""The b-value units a user may request ([conversion] b_value_units, --b-value-units, besides
"auto"): the spellings the conversion stage accepts."""
