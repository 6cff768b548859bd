"""The discovery-time water-reference and MM checks judge the frequency axis the run uses: the
reader lets the BIDS sidecar's SpectrometerFrequency and SpecFreqChemShift win over the
NIfTI-MRS header's, and so do the checks. Before, the checks read the header only, so a
sidecar that corrects the header had a correct water reference refused, and a sidecar that
misstates it let through a reference the run then reads on another axis."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_json, _edit_svs, copy_good, demo, demo_master  # noqa: E402,F401

from bids_app import discovery  # noqa: E402
from pipeline.io.input_checks import InputError  # noqa: E402
from pipeline.io.nifti_mrs import read_nifti_mrs  # noqa: E402
from pipeline.io.signal_checks import (check_macromolecule_signal,  # noqa: E402
                                       check_water_reference, stated_frequency)
from pipeline.spectra import ppm_to_hz  # noqa: E402

CF_MHZ, DWELL_S, N_POINTS = 297.2, 1 / 4000, 2048
TRUE_RECEIVER_PPM = 4.65
WRONG_RECEIVER_PPM = 2.65
"""Read with this receiver shift, the water line at 4.65 ppm sits at 2.65 ppm: inside the
metabolite window and out of the water window of ``pipeline.qc.reference``."""


def _lines(water: float, naa: float) -> np.ndarray:
    """An FID of a water line at 4.65 ppm and an NAA line at 2.01 ppm (half-width 2 Hz),
    acquired with the receiver at :data:`TRUE_RECEIVER_PPM`."""
    t = np.arange(N_POINTS) * DWELL_S
    fid = sum(amplitude * np.exp(2j * np.pi * ppm_to_hz(ppm, CF_MHZ, TRUE_RECEIVER_PPM) * t)
              for ppm, amplitude in ((4.65, water), (2.01, naa)))
    return fid * np.exp(-np.pi * 4.0 * t)


def _nifti_mrs(path: Path, fid: np.ndarray, header_ppm: float) -> Path:
    """A small NIfTI-MRS file (two identical transients) whose header states
    SpecFreqChemShift ``header_ppm``."""
    data = np.repeat(fid[:, None], 2, axis=1)[None, None, None].astype(np.complex64)
    image = nib.Nifti2Image(data, np.eye(4))
    image.header["pixdim"][4] = DWELL_S
    meta = {"SpectrometerFrequency": [CF_MHZ], "ResonantNucleus": ["1H"], "EchoTime": 0.03,
            "SpecFreqChemShift": header_ppm, "dim_5": "DIM_DYN"}
    image.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(meta).encode()))
    nib.save(image, str(path))
    return path


def _svs(tmp_path) -> Path:
    """Water-suppressed metabolite data with a correct header."""
    return _nifti_mrs(tmp_path / "svs.nii", _lines(water=1.0, naa=1.0), TRUE_RECEIVER_PPM)


@pytest.mark.parametrize("header_ppm, sidecar_ppm, accepted", [
    (WRONG_RECEIVER_PPM, TRUE_RECEIVER_PPM, True),   # the sidecar corrects the header
    (TRUE_RECEIVER_PPM, WRONG_RECEIVER_PPM, False)])  # the sidecar misstates it
def test_water_check_uses_the_sidecar_shift_as_the_reader_does(tmp_path, header_ppm,
                                                               sidecar_ppm, accepted):
    water = _nifti_mrs(tmp_path / "water.nii", _lines(water=1000.0, naa=1.0), header_ppm)
    sidecar = {"SpecFreqChemShift": sidecar_ppm}
    assert read_nifti_mrs(water, sidecar=sidecar).ref_ppm == sidecar_ppm  # the run's axis
    assert stated_frequency(water, sidecar) == (CF_MHZ, sidecar_ppm)
    assert stated_frequency(water) == (CF_MHZ, header_ppm)
    svs = _svs(tmp_path)
    judged = {}
    for name, used in (("sidecar", sidecar), ("header only", None)):
        try:
            check_water_reference(svs, water, {}, used)
            judged[name] = True
        except InputError as err:
            assert "looks water-suppressed" in str(err) and str(water) in str(err)
            judged[name] = False
    # the verdict follows the sidecar, and differs from the header-only one
    assert judged == {"sidecar": accepted, "header only": not accepted}


def test_mm_check_finds_unsuppressed_water_on_the_sidecar_axis(tmp_path):
    """A water scan linked as the MM, its header shift wrong and the sidecar's right: on the
    header's axis its water line sits among the metabolites and it passed as an MM."""
    svs = _svs(tmp_path)
    mm = _nifti_mrs(tmp_path / "mm.nii", _lines(water=1000.0, naa=1.0), WRONG_RECEIVER_PPM)
    check_macromolecule_signal(svs, mm)  # header only: not recognised
    with pytest.raises(InputError, match="looks like unsuppressed water"):
        check_macromolecule_signal(svs, mm, None, {}, {"SpecFreqChemShift": TRUE_RECEIVER_PPM})


def test_discovery_judges_the_reference_axis_the_run_reads(demo):
    """The water reference's SpecFreqChemShift 2 ppm off in its header only (the sidecar,
    which the run reads, states the true receiver shift): accepted, where the header alone has
    it refused as water-suppressed; off in its sidecar only: refused, naming the file. (Header
    and sidecar must agree on its SpectrometerFrequency, as on the data's:
    test_companion_frequency_agreement.py.)"""
    header_off = copy_good(demo, "hdr")
    _edit_svs(header_off, key="ref",
              ext_fn=lambda e: {**e, "SpecFreqChemShift": WRONG_RECEIVER_PPM})
    _edit_json(header_off["ref_json"], lambda s: {**s, "SpecFreqChemShift": TRUE_RECEIVER_PPM})
    with pytest.raises(InputError, match="looks water-suppressed"):
        check_water_reference(header_off["svs"], header_off["ref"])  # the header alone
    sidecar_off = copy_good(demo, "side")
    _edit_json(sidecar_off["ref_json"],
               lambda s: {**s, "SpecFreqChemShift": WRONG_RECEIVER_PPM})
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert "hdr" in found and "hdr" not in errors
    assert "side" not in found
    assert errors["side"].startswith(  # named with the link that chose it
        f"{sidecar_off['svs_json']}: ReferenceSignal 'bids::sub-side/mrs/"
        f"{sidecar_off['ref'].name}' points to {sidecar_off['ref']}: not an unsuppressed water "
        "reference"), errors["side"]
