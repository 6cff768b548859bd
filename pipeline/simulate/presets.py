"""Synthetic-generator settings matched to published data, for accuracy studies.

* :func:`pregame_7t_spec` — the published 7 T DW-STEAM synthetic set (dwmrshub
  pregame-workshop-2021, ``shared/data/dmrs_7t_steam_synthetic``): concentrations and T2s from
  its ``metab_b0.txt``, its b-values and 32 transients per b; the macromolecule level and ADC,
  the lineshape and the noise were measured on the set itself with this project's fit (aligned
  b = 0 average: MM/NAA amplitude ratio 9.86e-6 on its basis, MM ADC 0.0054 um^2/ms, added
  Lorentzian 11.8 Hz and Gaussian 1.5 Hz, noise SD 0.00100 per transient and real/imaginary
  part = 0.00748 x the NAA amplitude in the 32-transient average spectrum, i.e. SNR 172 in the
  generator's definition). ``tests/test_presets.py`` re-measures these on the published data.
* :func:`press_3t_spec` — a typical 3 T PRESS TE 30 ms brain spectrum as in the ISMRM 2016
  fitting challenge (``shared/data/ismrm2016_fitting_challenge``): median over its 28 spectra of
  this project's fit, added Lorentzian 2.9 Hz, Gaussian 0.7 Hz, MM/NAA amplitude ratio 0.82 on
  the challenge basis (per mM, measured MM). The SNR is the study's choice (the challenge spans
  17-170); the concentrations and T2s are those of the 7 T set.
"""

from __future__ import annotations

import numpy as np

from .synthetic import SyntheticSpec

PREGAME_B_VALUES_S_MM2 = (0, 1000, 3000, 6000, 10000, 20000, 30000, 40000, 50000)
PREGAME_CONCENTRATIONS_MM = {"NAA": 12, "NAAG": 1, "Cr": 5, "PCr": 5, "GPC": 0.8, "PCh": 0.8,
                             "Ins": 7, "Glu": 10, "Gln": 3, "Tau": 1.5, "GSH": 1, "GABA": 1,
                             "Asp": 2, "Lac": 0.5, "PE": 1.5, "Scyllo": 0.5, "Ala": 0.5}
"""Pregame set concentrations (mM, relative to tCr = 10; metab_b0.txt)."""
PREGAME_T2_S = {"NAA": 0.132, "NAAG": 0.090, "Cr": 0.090, "PCr": 0.090, "GPC": 0.152,
                "PCh": 0.152, "Ins": 0.095, "Glu": 0.093, "Gln": 0.093, "Tau": 0.093,
                "GSH": 0.061, "GABA": 0.093, "Asp": 0.095, "Lac": 0.095, "PE": 0.095,
                "Scyllo": 0.095, "Ala": 0.095}
"""Pregame set metabolite T2s (s; metab_b0.txt)."""
PREGAME_ECHO_TIME_S = 0.045
PREGAME_MM_TO_NAA = 9.86e-6
"""Measured MM/NAA amplitude ratio of the pregame set on its own basis (its ``Mac`` entry)."""
PREGAME_SNR = 172.0
"""Generator SNR whose noise equals the pregame set's (relative to the NAA amplitude)."""
PRESS_3T_ECHO_TIME_S = 0.030
PRESS_3T_MM_TO_NAA = 0.82
"""Median MM/NAA amplitude ratio of the ISMRM 2016 challenge spectra on the challenge basis."""
CLINICAL_B_VALUES_S_MM2 = (0, 500, 1000, 2000, 3000, 4000, 5000)
"""A b-range clinical systems reach (up to 5 ms/um^2): the 3 T preset and the ADC study."""
ADC_STUDY_ADC_UM2_MS = 0.15
NAME_ALIASES = {"PCho": "PCh", "sIns": "Scyllo"}
"""Basis spellings of the metabolites named differently in the pregame tables."""
STICKS_DEFAULT = {"model": "sticks", "params": {"d_intra": 0.45}}
"""Default decay of every metabolite: randomly oriented sticks, D_intra 0.45 um^2/ms."""


def attenuated_amplitude(name: str, echo_time_s: float) -> float:
    """Basis amplitude of a pregame-concentration metabolite after T2 decay at ``echo_time_s``."""
    return PREGAME_CONCENTRATIONS_MM[name] * float(np.exp(-echo_time_s / PREGAME_T2_S[name]))


def _per_basis_name(names, table: dict) -> dict:
    """``table`` (pregame names) keyed by the basis' own spelling, for names it holds."""
    out = {}
    for name in names:
        key = NAME_ALIASES.get(name, name)
        if key in table:
            out[name] = table[key]
    return out


def _spec(names, echo_time_s: float, mm_to_naa: float, **settings) -> SyntheticSpec:
    """Spec with the pregame concentrations/T2s for the basis ``names`` and MM scaled to NAA."""
    values = dict(concentrations_mm=_per_basis_name(names, PREGAME_CONCENTRATIONS_MM),
                  t2_s=_per_basis_name(names, PREGAME_T2_S),
                  echo_time_s=echo_time_s, default_diffusion=STICKS_DEFAULT,
                  mm_amplitude=mm_to_naa * attenuated_amplitude("NAA", echo_time_s),
                  water_reference=False)
    values.update(settings)
    return SyntheticSpec(**values)


def pregame_7t_spec(names, seed: int = 0, **overrides) -> SyntheticSpec:
    """Generator spec at the parameters of the published 7 T pregame set (see module doc)."""
    settings = dict(b_values_s_mm2=list(PREGAME_B_VALUES_S_MM2), n_transients=32,
                    mm_adc_um2_ms=0.0054, lorentzian_fwhm_hz=11.8, gaussian_fwhm_hz=1.5,
                    snr=PREGAME_SNR, seed=seed)
    return _spec(names, PREGAME_ECHO_TIME_S, PREGAME_MM_TO_NAA, **{**settings, **overrides})


def press_3t_spec(names, snr: float, seed: int = 0, **overrides) -> SyntheticSpec:
    """Generator spec of a typical 3 T PRESS TE 30 ms dMRS acquisition (see module doc)."""
    settings = dict(b_values_s_mm2=list(CLINICAL_B_VALUES_S_MM2), n_transients=32,
                    mm_adc_um2_ms=0.0054, lorentzian_fwhm_hz=2.9, gaussian_fwhm_hz=0.7,
                    snr=snr, seed=seed)
    return _spec(names, PRESS_3T_ECHO_TIME_S, PRESS_3T_MM_TO_NAA, **{**settings, **overrides})


def adc_study_spec(names, seed: int = 0, snr: float = 30.0) -> SyntheticSpec:
    """The joint-vs-sequential ADC study: pregame lineshape and MM, mono-exponential decays
    (ADC 0.15 um^2/ms) at b <= 5 ms/um^2, 16 transients; SNR 30 is about the in-vivo pregame
    set's b = 0 SNR (34)."""
    return pregame_7t_spec(names, seed=seed, snr=snr, n_transients=16,
                           b_values_s_mm2=list(CLINICAL_B_VALUES_S_MM2),
                           default_diffusion={"model": "monoexponential",
                                              "params": {"adc": ADC_STUDY_ADC_UM2_MS}})
