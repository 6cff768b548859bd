"""How the water reference enters water scaling: its own echo and repetition times, and a
scanner-combined water against uncombined metabolite coils (whose scale is not the data's)."""

import numpy as np
import pytest

from pipeline.acquisition import WATER_SCALE_NOTE_KEY, Acquisition
from pipeline.basis import Basis
from pipeline.fitting.water_scaling import quantify_rows
from pipeline.preprocess.steps import combine_step
from pipeline.spectra import ppm_to_hz, time_axis_s

DWELL_S, CF_MHZ, N = 1 / 2000, 123.2, 1024
T_S = time_axis_s(N, DWELL_S)


def _basis() -> Basis:
    fids = [np.exp(2j * np.pi * ppm_to_hz(ppm, CF_MHZ) * T_S - np.pi * 2.0 * T_S)
            for ppm in (2.01, 3.03)]
    return Basis(["NAA", "Cr"], np.array(fids), DWELL_S, CF_MHZ)


ROWS = [{"condition": 0, "metabolite": "NAA", "amplitude": 2.0, "crlb": 0.1},
        {"condition": 0, "metabolite": "Cr", "amplitude": 1.5, "crlb": 0.1}]
WATER = (1000.0 * np.exp(-T_S * 20.0)).astype(complex)
ONE_CLASS = {"tissue_fractions": {"gm": 1.0, "wm": 0.0, "csf": 0.0}, "csf_corrected": False,
             "water_t2_s": {"gm": 0.100}, "water_t1_s": {"gm": 1.50},
             "metabolite_t2_s": {"default": 0.2}}


def _naa_mm(water_metadata, metadata=None):
    rows, report = quantify_rows(ROWS, ONE_CLASS, WATER, DWELL_S, _basis(),
                                 metadata or {"EchoTime": 0.080, "RepetitionTime": 3.0},
                                 CF_MHZ, "01", "", water_metadata)
    return next(r["concentration_mm"] for r in rows if r["metabolite"] == "NAA"), report


def test_water_relaxation_uses_the_water_references_own_echo_and_repetition_time():
    """The probe's case: water at TE 30 ms / TR 10 s, metabolites at TE 80 ms / TR 3 s. The
    water signal is attenuated by exp(-TE/T2) (1 - exp(-TR/T1)) at the water's own timing, so
    the concentration scales by the ratio of the two attenuations (computed here by hand for
    one tissue class, T2 100 ms, T1 1.5 s)."""
    same, _ = _naa_mm({"EchoTime": 0.080, "RepetitionTime": 3.0})
    own, report = _naa_mm({"EchoTime": 0.030, "RepetitionTime": 10.0})
    at_metabolite_timing = np.exp(-0.080 / 0.100) * (1 - np.exp(-3.0 / 1.50))
    at_water_timing = np.exp(-0.030 / 0.100) * (1 - np.exp(-10.0 / 1.50))
    assert own / same == pytest.approx(at_water_timing / at_metabolite_timing, rel=1e-9)
    assert own / same == pytest.approx(1.90, abs=0.01)  # 0.740 / 0.389: not a small effect
    assert report["water_echo_time_s"] == 0.030 and report["water_repetition_time_s"] == 10.0
    assert report["water_echo_time_source"] == "water reference"


def test_water_timing_not_stated_by_the_water_falls_back_to_the_data_and_says_so():
    stated, _ = _naa_mm({"EchoTime": 0.080, "RepetitionTime": 3.0})
    missing, report = _naa_mm({})
    assert missing == stated
    assert report["water_echo_time_source"].startswith("metabolite data")


def _acquisition(n_coils: int, source: str) -> Acquisition:
    rng = np.random.default_rng(n_coils)
    gains = (0.5 + rng.random(n_coils)) * np.exp(1j * rng.uniform(-3, 3, n_coils))
    signal = np.exp(2j * np.pi * ppm_to_hz(2.01, CF_MHZ) * T_S - 10 * T_S)
    noise = 0.01 * (rng.standard_normal((1, 4, n_coils, N))
                    + 1j * rng.standard_normal((1, 4, n_coils, N)))
    fids = gains[None, None, :, None] * signal + noise
    return Acquisition(fids, DWELL_S, CF_MHZ, [0.0], [[np.nan] * 3], source=source)


def test_scanner_combined_water_against_uncombined_coils_gives_no_concentrations():
    """A one-channel water beside four uncombined metabolite coils: the app's coil weights set
    the data's scale, the scanner's the water's, so water scaling must stop with the reason
    (instead of concentrations off by an arbitrary factor) while the water still goes on to the
    eddy-current correction."""
    data, water = _acquisition(4, "metab.nii.gz"), _acquisition(1, "water.nii.gz")
    step = combine_step(data, water)
    assert step.water_fids is not None
    assert "water.nii.gz" in step.water_scale_note and "4 uncombined coils" in step.water_scale_note
    assert step.flags == [f"coils: {step.water_scale_note}"]
    rows, report = quantify_rows(ROWS, ONE_CLASS, WATER, DWELL_S, _basis(), {"EchoTime": 0.03},
                                 CF_MHZ, "01", "", {WATER_SCALE_NOTE_KEY: step.water_scale_note})
    assert rows == ROWS  # no concentration columns
    assert report["water_scaling"].startswith("water-scaled concentrations skipped")
    assert "scanner-combined" in report["flags"][0]


@pytest.mark.parametrize("data_coils, water_coils", [(4, 4), (1, 1)])
def test_water_with_the_datas_coils_keeps_its_scale(data_coils, water_coils):
    step = combine_step(_acquisition(data_coils, "m"), _acquisition(water_coils, "w"))
    assert step.water_scale_note == "" and step.flags == []
