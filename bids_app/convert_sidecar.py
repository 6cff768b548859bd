"""What ``dmrs-bids-convert`` writes beside the data: each acquisition's MRS-BIDS sidecar
(facts from the data and the header, then mapping extras) and the dataset files
(``dataset_description.json``, ``README``, ``participants.tsv``).
"""

from __future__ import annotations

from pathlib import Path

from pipeline import __version__
from pipeline.acquisition import Acquisition
from pipeline.io.json_values import write_json
from pipeline.units import field_strength_t

from .convert_mapping import ConversionError

_HEADER_TO_SIDECAR = {
    "Manufacturer": "Manufacturer", "ManufacturersModelName": "ManufacturersModelName",
    "DeviceSerialNumber": "DeviceSerialNumber", "SoftwareVersions": "SoftwareVersions",
    "InstitutionName": "InstitutionName", "InstitutionAddress": "InstitutionAddress",
    "SequenceName": "SequenceName", "EchoTime": "EchoTime", "RepetitionTime": "RepetitionTime",
    "MixingTime": "MixingTime", "InversionTime": "InversionTime",
    "ExcitationFlipAngle": "FlipAngle", "WaterSuppressed": "WaterSuppression",
    "PulseSequenceType": "PulseSequenceType", "NumberOfTransients": "NumberOfTransients",
    "AcquisitionVoxelSize": "AcquisitionVoxelSize",
}
"""NIfTI-MRS header keys copied into the BIDS sidecar (header name -> BIDS name)."""


# --------------------------------------------------------------------------- sidecars

def sampling_sidecar(acq: Acquisition) -> dict:
    """The MRS-BIDS sidecar keys that follow from the data themselves (nucleus, MHz, Hz,
    points, transients over all conditions), shared by conversion and the demo dataset."""
    return {
        "ResonantNucleus": [acq.nucleus],
        "SpectrometerFrequency": [acq.cf_mhz],
        "SpectralWidth": 1.0 / acq.dwell_s,
        "NumberOfSpectralPoints": acq.n_points,
        "NumberOfTransients": acq.n_conditions * acq.n_transients,
    }


def bids_sidecar(acq: Acquisition, extras: dict) -> dict:
    """MRS-BIDS sidecar of ``acq``: header facts, then mapping extras (which win)."""
    sidecar = sampling_sidecar(acq)
    sidecar.update({bids: acq.metadata[key] for key, bids in _HEADER_TO_SIDECAR.items()
                    if _informative(key, acq.metadata.get(key))})
    if acq.nucleus == "1H":
        sidecar["MagneticFieldStrength"] = round(field_strength_t(acq.cf_mhz), 1)
    sidecar.update(extras)
    if acq.is_diffusion:
        sidecar["DiffusionBValueUnits"] = "s/mm2"
    return sidecar


def _informative(key: str, value) -> bool:
    """False for absent or empty header values, and for zero Mixing/InversionTime (vendor
    headers fill these with 0 when the sequence has none)."""
    if value is None or value == "":
        return False
    return not (key in ("MixingTime", "InversionTime") and value == 0)


def _write_dataset_files(out_dir: Path, mapping: dict, participants: list[str],
                         overwrite: bool) -> None:
    info = mapping.get("dataset", {})
    description = out_dir / "dataset_description.json"
    if overwrite or not description.exists():
        content = {"Name": info.get("name", "dMRS dataset converted by dmrs-bids-convert"),
                   "BIDSVersion": info.get("bids_version", "1.10.0"), "DatasetType": "raw",
                   "GeneratedBy": [{"Name": "dmrs-bids-convert", "Version": __version__}]}
        for key, bids_key in (("authors", "Authors"), ("license", "License")):
            if key in info:
                content[bids_key] = info[key]
        write_json(description, content)
    readme = out_dir / "README"
    if not readme.exists():
        readme.write_text(f"{info.get('name', 'dMRS dataset')}\n\nConverted from vendor files by "
                          f"dmrs-bids-convert {__version__} (spec2nii).\n")
    _merge_participants(out_dir / "participants.tsv", participants)


def read_participants(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of an existing participants.tsv; a missing or blank file is a table
    with no rows. A first column other than ``participant_id`` is a ConversionError (called
    before anything is written, so a bad file stops the conversion up front)."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
    if not lines:
        return ["participant_id"], []
    header = lines[0].split("\t")
    if header[0].strip() != "participant_id":
        raise ConversionError(f"{path}: the first column of participants.tsv is "
                              f"{header[0]!r}, not 'participant_id' (BIDS); fix or remove "
                              "the file")
    return header, [ln.split("\t") for ln in lines[1:]]


def _merge_participants(path: Path, participants: list[str]) -> None:
    """Add missing participant rows to participants.tsv (other columns 'n/a')."""
    header, rows = read_participants(path)
    known = {r[0] for r in rows}
    for pid in participants:
        if pid not in known:
            rows.append([pid] + ["n/a"] * (len(header) - 1))
            known.add(pid)
    write_participants(path, header, rows)


def write_participants(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a participants.tsv: tab-separated, header first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")
