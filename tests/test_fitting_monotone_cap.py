"""The completely-monotone decay constraint's cap (D <= 1 um^2/ms, probe s20 F1): a faster
decay is held at the cap; the fit warns and the diffusion rows say so (applicable 0)."""

import warnings

import numpy as np
import pytest

from pipeline.diffusion.amplitudes import amplitude_series, flagged_metabolites
from pipeline.diffusion.table import diffusion_table
from pipeline.fitting import FitOptions, amplitudes_table, fit_conditions
from pipeline.fitting.monotone import CAP_FLAG, DICTIONARY_D_MAX_UM2_MS, at_cap

from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, synthetic_fid

B_S_MM2 = np.array([0.0, 250.0, 500.0, 1000.0, 1500.0])
TRUE_D_UM2_MS = {"NAA": 1.2, "Cr": 1.2, "Ins": 0.2}
"""NAA and Cr decay like a phantom at 37 C (1.2 um^2/ms, above the cap); Ins below it."""
S0 = {"NAA": 10.0, "Cr": 7.0, "Ins": 5.0}


def test_at_cap_is_a_mono_exponential_adc_within_5_percent_of_the_cap():
    b = np.array([0.0, 0.5, 1.0, 1.5])
    assert DICTIONARY_D_MAX_UM2_MS == 1.0
    assert at_cap(b, np.exp(-1.0 * b)) and at_cap(b, 3.0 * np.exp(-0.96 * b))
    assert not at_cap(b, np.exp(-0.94 * b))
    assert not at_cap(b, 0.5 * np.exp(-1.0 * b) + 0.5 * np.exp(-0.1 * b))  # ADC 0.44
    assert not at_cap(b, np.array([1.0, 0.5, 0.0, 0.0]))  # no ADC without positive amplitudes


def _fit(constraint):
    basis = singlet_basis(tuple(TRUE_D_UM2_MS))
    fids = np.stack([synthetic_fid(basis, {n: S0[n] * np.exp(-b / 1000 * d)
                                           for n, d in TRUE_D_UM2_MS.items()},
                                   lorentz_hz=3.0, gauss_hz=3.0, shift_hz=1.0, phase_rad=0.2)
                     for b in B_S_MM2])
    options = FitOptions(ppm_range=(0.5, 4.2), mode="joint", joint_default_model="free",
                         joint_shared=("lineshape", "shift", "phase"),
                         joint_decay_constraint=constraint, metabolite_shift_sd_ppm=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = fit_conditions(fids, basis, DWELL_S, CF_MHZ, B_S_MM2, options)
    rows = [{**r, "b_value": r["b_value_s_mm2"]} for r in amplitudes_table(fits)]
    return fits, rows, [str(w.message) for w in caught]


def _adc_rows(rows):
    series = amplitude_series(rows)
    table = diffusion_table({n: series[n] for n in TRUE_D_UM2_MS}, B_S_MM2,
                            at_cap=flagged_metabolites(rows, CAP_FLAG),
                            models=("monoexponential",), uncertainty="jacobian")
    return {r["metabolite"]: r for r in table if r["parameter"] == "ADC"}


def test_a_decay_faster_than_the_cap_is_flagged_and_its_diffusion_rows_not_applicable():
    """Noise-free D = 1.2: the constrained NAA and Cr decays come out at the cap, exp(-1.0 b)
    (ADC 1.0000, applicable 1 and no warning before); now the fit warns, the amplitude rows
    carry the flag and the ADC rows are applicable 0 naming the cap and the option that lifts
    it. Ins (0.2 um^2/ms) is untouched."""
    fits, rows, caught = _fit("completely_monotone")
    assert fits.fits[0].extra["decay_at_cap"] == ["NAA", "Cr", "tNAA", "tCr"]  # sums too
    assert any("NAA, Cr, tNAA, tCr: " + CAP_FLAG in w and 'joint_decay_constraint = "none"' in w
               for w in caught)
    assert flagged_metabolites(rows, CAP_FLAG) == {"NAA", "Cr", "tNAA", "tCr"}
    adc = _adc_rows(rows)
    for name in ("NAA", "Cr"):
        assert adc[name]["value"] == pytest.approx(1.0, abs=0.01)  # the cap, not the truth
        assert adc[name]["applicable"] == 0
        assert CAP_FLAG in adc[name]["reason"]
        assert 'joint_decay_constraint = "none"' in adc[name]["reason"]
    assert adc["Ins"]["value"] == pytest.approx(0.2, rel=0.03)
    assert adc["Ins"]["applicable"] == 1


def test_without_the_constraint_the_fast_decay_is_fitted_and_not_flagged():
    fits, rows, caught = _fit("none")
    assert fits.fits[0].extra.get("decay_at_cap", []) == []
    assert not any(CAP_FLAG in w for w in caught)
    adc = _adc_rows(rows)
    assert adc["NAA"]["value"] == pytest.approx(1.2, rel=1e-3)
    assert adc["NAA"]["applicable"] == 1
