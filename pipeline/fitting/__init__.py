"""Spectral fitting: frequency-domain linear-combination modelling by variable projection.

Public API: :class:`FitOptions`, :func:`fit_spectrum`, :func:`fit_conditions` (sequential or
joint/2D dMRS fit), :func:`amplitudes_table`, quantification (:func:`ratios_to_tcr`,
:func:`water_amplitude`, :func:`water_scaled_concentrations`) and the result types
:class:`SpectralFit` and :class:`ConditionFits`.
"""

from .conditions import amplitudes_table, fit_conditions, fixed_shape_mm_basis
from .options import FitOptions
from .quantification import (effective_water_mm, ratios_to_tcr, water_amplitude,
                             water_scaled_concentrations)
from .results import ConditionFits, SpectralFit, display_spectra, joint_diffusion_rows
from .single import fit_spectrum
from .uncertainty import METABOLITE_SUMS

__all__ = ["FitOptions", "fit_spectrum", "fit_conditions", "amplitudes_table",
           "fixed_shape_mm_basis", "ratios_to_tcr", "water_amplitude",
           "water_scaled_concentrations", "effective_water_mm", "SpectralFit", "ConditionFits",
           "display_spectra", "joint_diffusion_rows", "METABOLITE_SUMS"]
