"""Columns of the tables the science core produces (numpy-free, so the app's command line can
read them before numpy loads): defined once, used by pipeline.diffusion.table and by the
output contract in workflows/derivatives.py."""

DIFFUSION_COLUMNS = ("metabolite", "model", "parameter", "value", "unit", "std_error",
                     "applicable", "note", "reason")
