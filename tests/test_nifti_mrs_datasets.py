"""The BIDS test-dataset builders of tests/datasets.py produce valid MRS-BIDS datasets."""

import json

import nibabel as nib
import pytest

from bids_app.convert import bids_validator_errors, bids_validator_issues
from datasets import make_invivo_bids, make_synthetic_bids


@pytest.fixture(scope="module")
def synthetic_bids(shared_data, tmp_path_factory):
    return make_synthetic_bids(tmp_path_factory.mktemp("synthetic") / "bids", shared_data)


@pytest.fixture(scope="module")
def invivo_bids(shared_data, tmp_path_factory):
    return make_invivo_bids(tmp_path_factory.mktemp("invivo") / "bids", shared_data)


def test_synthetic_dataset_passes_bids_validator(synthetic_bids):
    assert bids_validator_errors(synthetic_bids) == []


def test_invivo_dataset_passes_bids_validator(invivo_bids):
    assert bids_validator_errors(invivo_bids) == []


def test_validator_detects_a_missing_required_key(shared_data, tmp_path):
    """The validator check is not vacuous: drop SpectralWidth and it reports an error."""
    root = make_synthetic_bids(tmp_path / "bids", shared_data)
    sidecar_path = root / "sub-01/mrs/sub-01_acq-dwsteam_svs.json"
    sidecar = json.loads(sidecar_path.read_text())
    del sidecar["SpectralWidth"]
    sidecar_path.write_text(json.dumps(sidecar))
    codes = {(i["code"], i.get("subCode")) for i in bids_validator_issues(root)
             if i["severity"] == "error"}
    assert ("SIDECAR_KEY_REQUIRED", "SpectralWidth") in codes


def test_synthetic_layout_and_shapes(synthetic_bids):
    svs = synthetic_bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz"
    assert nib.load(svs).shape == (1, 1, 1, 1024, 32, 9)
    sidecar = json.loads(svs.with_name("sub-01_acq-dwsteam_svs.json").read_text())
    assert sidecar["EchoTime"] == 0.045 and sidecar["MixingTime"] == 0.060
    assert sidecar["DiffusionBValueUnits"] == "ms/um2"
    assert (synthetic_bids / "participants.tsv").read_text().split() == ["participant_id", "sub-01"]


def test_invivo_reference_signal_resolves_to_the_water(invivo_bids):
    mrs = invivo_bids / "sub-01/mrs"
    sidecar = json.loads((mrs / "sub-01_acq-dwsteam_svs.json").read_text())
    assert sidecar["ReferenceSignal"] == "bids::sub-01/mrs/sub-01_acq-dwsteam_mrsref.nii.gz"
    water = invivo_bids / sidecar["ReferenceSignal"].removeprefix("bids::")
    assert nib.load(water).shape == (1, 1, 1, 1024, 4, 10)
    assert nib.load(mrs / "sub-01_acq-dwsteam_svs.nii.gz").shape == (1, 1, 1, 1024, 24, 10)
    assert sidecar["DiffusionGradientDuration"] == 0.015 and sidecar["DiffusionTime"] == 0.079
    water_sidecar = json.loads((mrs / "sub-01_acq-dwsteam_mrsref.json").read_text())
    assert water_sidecar["WaterSuppression"] is False


def test_unstated_units_are_left_out(shared_data, tmp_path):
    root = make_synthetic_bids(tmp_path / "bids", shared_data, state_b_value_units=False)
    sidecar = json.loads((root / "sub-01/mrs/sub-01_acq-dwsteam_svs.json").read_text())
    assert "DiffusionBValueUnits" not in sidecar
