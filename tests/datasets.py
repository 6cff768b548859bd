"""Builders of small MRS-BIDS test datasets from the published pregame dMRS files.

The NIfTI-MRS files of ``../shared/data/dmrs_7t_steam_{synthetic,invivo}/nifti`` are copied
byte for byte (legacy ``mrs_v0_2`` headers and all, so the app's conversion stage is exercised)
into a caller-chosen temporary folder, never into the repository, and given BIDS sidecars
with the acquisition facts of the data README.

    make_synthetic_bids(tmp_path / "bids")  ->  tmp_path / "bids"
        sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz        (1,1,1,1024,32,9), b in ms/um^2
    make_invivo_bids(tmp_path / "bids")     ->  tmp_path / "bids"
        sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz        (1,1,1,1024,24,10), b in s/mm^2
        sub-01/mrs/sub-01_acq-dwsteam_mrsref.nii.gz     water, linked by ReferenceSignal

Sidecar keys beyond MRS-BIDS (project conventions, times in s):
``DiffusionBValueUnits`` ("s/mm2" or "ms/um2", the unit of the b-values in the NIfTI-MRS
header), ``DiffusionGradientDuration`` (small delta), ``DiffusionTime``.

The BIDS-validator helpers live in ``bids_app.convert`` (``bids_validator_errors`` ...).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = Path(os.environ.get("DMRS_BIDS_SHARED_DATA",
                                          REPO_ROOT.parent / "shared" / "data"))

SUBJECT = "sub-01"
STEM = f"{SUBJECT}_acq-dwsteam"
SPECTRAL_WIDTH_HZ = 3000.0
N_POINTS = 1024

_COMMON_SIDECAR = {
    "Manufacturer": "Philips",
    "MagneticFieldStrength": 7,
    "PulseSequenceType": "STEAM",
    "ScanningSequence": "SVS",
    "ResonantNucleus": ["1H"],
    "SpectralWidth": SPECTRAL_WIDTH_HZ,
    "NumberOfSpectralPoints": N_POINTS,
    "RepetitionTime": 5.0,
    "MixingTime": 0.060,
}

SYNTHETIC_SIDECAR = {
    **_COMMON_SIDECAR,
    "SpectrometerFrequency": [298.062497],
    "EchoTime": 0.045,
    "WaterSuppression": True,
    "NumberOfTransients": 32 * 9,
    "AcquisitionVoxelSize": [18, 18, 18],
    "DiffusionBValueUnits": "ms/um2",
}

INVIVO_SIDECAR = {
    **_COMMON_SIDECAR,
    "SpectrometerFrequency": [298.062213],
    "EchoTime": 0.040,
    "WaterSuppression": True,
    "NumberOfTransients": 24 * 10,
    "AcquisitionVoxelSize": [15, 30, 20],
    "BodyPart": "BRAIN",
    "BodyPartDetails": "parietal white matter",
    "DiffusionBValueUnits": "s/mm2",
    "DiffusionGradientDuration": 0.015,
    "DiffusionTime": 0.079,
}

INVIVO_WATER_SIDECAR = {
    **INVIVO_SIDECAR,
    "SpectrometerFrequency": [298.062212],
    "WaterSuppression": False,
    "NumberOfTransients": 4 * 10,
}


def _shared_folder(shared_data: Path | None, name: str) -> Path:
    folder = Path(shared_data or DEFAULT_SHARED_DATA) / name
    if not folder.is_dir():
        raise FileNotFoundError(f"shared data folder {folder} is absent")
    return folder


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def _dataset_skeleton(dest: Path, name: str, source: str) -> Path:
    """dataset_description.json, README and participants.tsv/json of a one-subject dataset."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _write_json(dest / "dataset_description.json", {
        "Name": name,
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["dwmrshub pregame-workshop-2021 contributors", "dmrs-bids tests"],
        "SourceDatasets": [{"URL": "https://github.com/dwmrshub/pregame-workshop-2021"}],
    })
    (dest / "README").write_text(
        f"{name}: test dataset built by dmrs-bids tests/datasets.py from {source}.\n")
    (dest / "participants.tsv").write_text("participant_id\n" + SUBJECT + "\n")
    return dest


def _add_acquisition(dest: Path, source_file: Path, suffix: str, sidecar: dict) -> Path:
    """Copy one NIfTI-MRS file into sub-01/mrs/ under the BIDS name and write its sidecar."""
    mrs_dir = dest / SUBJECT / "mrs"
    mrs_dir.mkdir(parents=True, exist_ok=True)
    target = mrs_dir / f"{STEM}_{suffix}.nii.gz"
    shutil.copyfile(source_file, target)
    _write_json(mrs_dir / f"{STEM}_{suffix}.json", sidecar)
    return target


def _sidecar(base: dict, state_b_value_units: bool) -> dict:
    sidecar = dict(base)
    if not state_b_value_units:
        sidecar.pop("DiffusionBValueUnits", None)
    return sidecar


def make_synthetic_bids(dest: Path, shared_data: Path | None = None,
                        state_b_value_units: bool = True) -> Path:
    """MRS-BIDS dataset of the synthetic 7 T DW-STEAM set (9 b-values x 32 transients).

    With ``state_b_value_units=False`` the sidecar does not state the b-value unit, so a reader
    has to guess it (and warn). Returns ``dest``.
    """
    source = _shared_folder(shared_data, "dmrs_7t_steam_synthetic")
    dest = _dataset_skeleton(dest, "dMRS 7T STEAM synthetic (pregame 2021)", source.name)
    _add_acquisition(dest, source / "nifti" / "synthetic.nii.gz", "svs",
                     _sidecar(SYNTHETIC_SIDECAR, state_b_value_units))
    return dest


def make_invivo_bids(dest: Path, shared_data: Path | None = None,
                     state_b_value_units: bool = True) -> Path:
    """MRS-BIDS dataset of the in-vivo 7 T DW-STEAM set with its water reference (mrsref).

    The metabolite sidecar links the water by ``ReferenceSignal`` (a BIDS URI). Returns ``dest``.
    """
    source = _shared_folder(shared_data, "dmrs_7t_steam_invivo")
    dest = _dataset_skeleton(dest, "dMRS 7T STEAM in vivo (pregame 2021)", source.name)
    water = _add_acquisition(dest, source / "nifti" / "water.nii.gz", "mrsref",
                             _sidecar(INVIVO_WATER_SIDECAR, state_b_value_units))
    metab_sidecar = _sidecar(INVIVO_SIDECAR, state_b_value_units)
    metab_sidecar["ReferenceSignal"] = f"bids::{water.relative_to(dest).as_posix()}"
    _add_acquisition(dest, source / "nifti" / "metab.nii.gz", "svs", metab_sidecar)
    return dest


def zero_padded(array: np.ndarray, n_points: int, axis: int = -1) -> np.ndarray:
    """``array`` zero-filled along ``axis`` to ``n_points`` (a converter's zero-filling)."""
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, n_points - array.shape[axis])
    return np.pad(array, widths)


def zero_fill_svs(bids: Path, factor: int = 2) -> Path:
    """Zero-fill sub-01's svs file in place to ``factor`` x its points (a converter's
    zero-filling), its header extension kept and the sidecar's NumberOfSpectralPoints updated
    when it states one. Returns the file."""
    path = bids / SUBJECT / "mrs" / f"{STEM}_svs.nii.gz"
    image = nib.load(path)
    data = np.asarray(image.dataobj)
    padded = zero_padded(data, factor * data.shape[3], axis=3)
    nib.save(type(image)(padded, image.affine, image.header), path)
    sidecar_path = path.with_name(f"{STEM}_svs.json")
    sidecar = json.loads(sidecar_path.read_text())
    if "NumberOfSpectralPoints" in sidecar:
        sidecar["NumberOfSpectralPoints"] = int(padded.shape[3])
        _write_json(sidecar_path, sidecar)
    return path


def read_invivo_pair(shared_data: Path | None = None) -> tuple:
    """The in-vivo 7 T DW-STEAM metabolite data and water reference as read by the app
    (b-values in s/mm^2, as their headers hold them): ``(acquisition, water)``."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    folder = _shared_folder(shared_data, "dmrs_7t_steam_invivo") / "nifti"
    sidecar = {"DiffusionBValueUnits": "s/mm2"}
    return tuple(read_nifti_mrs(folder / name, sidecar=sidecar, b_value_units="s/mm2")
                 for name in ("metab.nii.gz", "water.nii.gz"))
