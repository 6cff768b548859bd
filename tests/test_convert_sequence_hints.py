"""dmrs-bids-convert's hint for a header that names no pulse sequence: STEAM when a mixing time
is known (only STEAM has one), otherwise both PRESS and STEAM; the nifti_mrs example says
what it cannot know about the Siemens STEAM data (their mixing time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bids_app.convert import convert_dataset, example_mappings, pulse_sequence_hint
from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import write_nifti_mrs

EXAMPLES = Path(__file__).resolve().parents[1] / "bids_app" / "conversion_examples"


@pytest.mark.parametrize("mixing", [0.060, [0.032]])
def test_hint_says_steam_when_a_mixing_time_is_known(mixing):
    hint = pulse_sequence_hint({"MixingTime": mixing})
    assert 'PulseSequenceType = "STEAM"' in hint and "PRESS" not in hint


@pytest.mark.parametrize("metadata", [{}, {"MixingTime": 0}, {"MixingTime": "n/a"}])
def test_hint_names_press_and_steam_otherwise(metadata):
    hint = pulse_sequence_hint(metadata)
    assert '"PRESS"' in hint and '"STEAM"' in hint and "MixingTime" in hint


def _mapping(tmp_path, name, sidecar):
    mapping = tmp_path / "m.toml"
    mapping.write_text(f"[sidecar]\n{sidecar}\n[[acquisition]]\nparticipant = \"01\"\n"
                       f"suffix = \"svs\"\nfiles = [\"{name}\"]\n")
    return mapping


def _sequence_warnings(mapping, tmp_path, source_dir):
    messages = []
    convert_dataset(mapping, tmp_path / "out", source_dir, log=messages.append)
    return [m for m in messages if "no PulseSequenceType written" in m]


def test_nifti_without_sequence_but_with_mixing_time_gets_the_steam_hint(tmp_path):
    """A NIfTI-MRS file whose header names no sequence, converted with MixingTime in the
    mapping: the warning tells the user to write STEAM (it used to suggest PRESS)."""
    t = np.arange(512) * 2.5e-4
    fid = np.exp(-t / 0.05) * np.exp(2j * np.pi * 50 * t)
    fids = np.tile(fid, (1, 4, 1, 1))
    acq = Acquisition(fids=fids, dwell_s=2.5e-4, cf_mhz=297.2, b_values_s_mm2=[0.0],
                      directions=[[np.nan] * 3], metadata={"EchoTime": 0.011})
    write_nifti_mrs(acq, tmp_path / "steam.nii.gz")
    warned = _sequence_warnings(_mapping(tmp_path, "steam.nii.gz", "MixingTime = 0.032"),
                                tmp_path, tmp_path)
    assert len(warned) == 1 and str(tmp_path / "steam.nii.gz") in warned[0]
    assert 'PulseSequenceType = "STEAM"' in warned[0] and '"PRESS"' not in warned[0]
    assert "MixingTime 0.032 s is given" in warned[0]
    # without a mixing time both sequences are offered
    warned = _sequence_warnings(_mapping(tmp_path, "steam.nii.gz", "EchoTime = 0.011"),
                                tmp_path / "b", tmp_path)
    assert len(warned) == 1 and '"PRESS"' in warned[0] and '"STEAM"' in warned[0]


def test_published_invivo_nifti_with_mixing_time_gets_the_steam_hint(shared_data, tmp_path):
    """The pregame 7 T DW-STEAM NIfTI-MRS headers name no sequence (spec2nii 0.3.4)."""
    folder = shared_data / "dmrs_7t_steam_invivo"
    warned = _sequence_warnings(_mapping(tmp_path, "nifti/metab.nii.gz", "MixingTime = 0.060"),
                                tmp_path, folder)
    assert len(warned) == 1 and 'PulseSequenceType = "STEAM"' in warned[0]
    assert '"PRESS"' not in warned[0]


def test_nifti_mrs_example_says_the_mixing_time_is_not_in_the_data():
    """The Siemens STEAM example cannot state a MixingTime (neither the headers nor the
    shared-data README give one): it must say so and show where the value goes."""
    text = (EXAMPLES / "nifti_mrs.toml").read_text()
    assert "nifti_mrs" in example_mappings()
    assert "MixingTime" in text and "not stated" in text
    assert "# MixingTime = " in text  # the line to fill in, commented out
