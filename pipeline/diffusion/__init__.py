"""Diffusion modelling of metabolite signal decay (b in ms/um^2, D in um^2/ms, radii in um).

- ``signals``: pure signal functions (mono-exponential, kurtosis, bi-exponential, sticks,
  cylinders and spheres with finite pulses in the Gaussian phase approximation, anisotropic voxels).
- ``models``: dipy-style models with ``predict``/``jacobian``/``bounds``/``fit`` and ``MODELS``.
- ``fitting``: weighted multi-start bounded least squares, Jacobian and Monte Carlo/bootstrap errors.
- ``powder``: direction averaging and the direction-count check; ``tensor``: tensor spectroscopy.
- ``applicability``: consensus validity rules; ``table``: ``fit_all_models`` -> ``_diffusion.tsv`` rows.
"""

from pipeline.diffusion.fitting import DiffusionFit, estimate_sigma_biexponential, fit_model
from pipeline.diffusion.models import MODELS, DiffusionModel, make_model
from pipeline.diffusion.table import COLUMNS, diffusion_table, fit_all_models, gradient_timing_ms

__all__ = ["MODELS", "COLUMNS", "DiffusionFit", "DiffusionModel", "diffusion_table",
           "estimate_sigma_biexponential", "fit_all_models", "fit_model", "gradient_timing_ms",
           "make_model"]
