"""Issue 14 item 7: one tested recipe per vendor route, starting from ../shared/data with the
example mappings installed with the package (``dmrs-bids-convert --example NAME``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bids_app.convert import (ConversionError, bids_validator_errors, convert_dataset,
                              example_mappings, example_text, load_mapping, main)
from pipeline.io.nifti_mrs import read_nifti_mrs

RECIPES = {  # example -> folder of ../shared/data it reads
    "nifti_mrs": "siemens_7t_steam_coils",
    "siemens_rda_dicom": "vendor_formats_suspect/siemens",
    "philips_sdat_mm": "osprey_3t/exampledata/sdat/UnEdited_with_MM_data/sub-01/ses-01/mrs",
    "lcmodel_raw": "ismrm2016_fitting_challenge/datasets_LCModel",
    "dmrs_7t_steam_synthetic": "dmrs_7t_steam_synthetic",
    "varian_svs": "mm_consensus",
}
TEMPLATES = ("siemens_twix", "ge_pfile", "philips_dicom", "dwslaser_philips")


def _mapping(tmp_path, name):
    path = tmp_path / f"{name}.toml"
    path.write_text(example_text(name))
    return path


def _sidecar(path):
    return json.loads(path.with_suffix("").with_suffix(".json").read_text())


def test_every_example_is_listed_and_parses(tmp_path):
    assert set(RECIPES) | set(TEMPLATES) | {"dmrs_7t_steam_invivo"} == set(example_mappings())
    for name in example_mappings():
        load_mapping(_mapping(tmp_path, name))


def test_example_flag_prints_the_installed_mapping(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--example", "nifti_mrs"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == example_text("nifti_mrs")
    help_text = subprocess.run([sys.executable, "-m", "bids_app.convert", "--help"],
                               capture_output=True, text=True).stdout
    assert all(name in help_text for name in example_mappings())
    with pytest.raises(ConversionError, match="no such example"):
        example_text("nope")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_gives_a_valid_bids_dataset(shared_data, tmp_path, name):
    out = tmp_path / "bids"
    written = convert_dataset(_mapping(tmp_path, name), out, shared_data / RECIPES[name],
                              log=lambda *_: None)
    for path in written:
        acq = read_nifti_mrs(path, sidecar=_sidecar(path))
        assert acq.n_points >= 1024 and np.all(np.isfinite(acq.fids))
    assert bids_validator_errors(out) == []
    first = _sidecar(written[0])
    if name == "nifti_mrs":
        assert first["PulseSequenceType"] == "STEAM" and first["NumberOfTransients"] == 16
    if name == "siemens_rda_dicom":  # the RDA and the VB DICOM are one scan of 64 averages
        assert first["PulseSequenceType"] == "PRESS" and first["NumberOfTransients"] == 64
        assert [_sidecar(p)["NumberOfTransients"] for p in written[1:]] == [64, 80]
    if name == "philips_sdat_mm":
        assert first["PulseSequenceType"] == "PRESS" and first["EchoTime"] == 0.030
        assert first["NumberOfTransients"] == 48  # SPAR: averages 48, rows 1
        assert first["MacromoleculeSignal"].endswith("sub-01_ses-01_acq-mm_svs.nii.gz")
    if name == "lcmodel_raw":
        assert first["PulseSequenceType"] == "PRESS" and first["SpectralWidth"] == 4000
    if name == "dmrs_7t_steam_synthetic":
        assert read_nifti_mrs(written[0]).n_conditions == 9
    if name == "varian_svs":  # procpar te/tm (s), seqfil steam7T, block ctcount 160
        assert first["PulseSequenceType"] == "STEAM" and first["NumberOfTransients"] == 160
        assert (first["EchoTime"], first["MixingTime"]) == (0.006, 0.032)
        assert first["MacromoleculeSignal"].endswith("sub-01_acq-mm_svs.nii.gz")


def test_philips_dicom_route_fails_with_one_clear_line(shared_data, tmp_path, capsys):
    """The only Philips DICOM here is one spec2nii cannot read: exit 2, one line naming it."""
    mapping = _mapping(tmp_path, "philips_dicom")
    source = shared_data / "vendor_formats_suspect/dicom/No_Name/Mrs_Dti_Qa/MRSshortTELN_401"
    code = main([str(mapping), str(tmp_path / "out"), "--source-dir", str(source)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "IM-0001-0002.dcm" in err
