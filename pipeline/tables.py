"""Columns of the tables the science core produces (numpy-free, so the app's command line can
read them before numpy loads): defined once, used by pipeline.diffusion.table and by the
output contract in workflows/derivatives.py."""

DIFFUSION_COLUMNS = ("metabolite", "model", "parameter", "value", "unit", "std_error",
                     "applicable", "note", "reason", "b_max_s_mm2")
DIFFUSION_ADDED_COLUMNS = ("b_max_s_mm2",)
"""Columns added since 2026-12-07 (``b_max_s_mm2``: the largest b-value the row's model was
fitted on, so that values fitted over different b-ranges can be told apart): tables written by
earlier versions lack them."""
