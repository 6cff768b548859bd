"""Broken copies of a good demo participant, one defect per participant (no tests here), and
the demo dataset fixtures of the robustness tests.

Each builder takes the good participant's files and writes participant ``label`` with one
defect; ``BAD_CASES`` maps the label to the builder and to words the app's error message for
that participant must contain (besides the file name).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

GOOD = "01"
STEM = "acq-dwpress"


def paths(root: Path, label: str) -> dict:
    """svs/mrsref NIfTI and sidecar paths of participant ``label``."""
    mrs = Path(root) / f"sub-{label}" / "mrs"
    base = mrs / f"sub-{label}_{STEM}"
    return {"svs": Path(f"{base}_svs.nii.gz"), "svs_json": Path(f"{base}_svs.json"),
            "ref": Path(f"{base}_mrsref.nii.gz"), "ref_json": Path(f"{base}_mrsref.json")}


def checksums(root: Path) -> dict:
    """SHA-256 of every file under ``root`` (relative path -> hex digest)."""
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def read_nifti(path: Path) -> tuple[np.ndarray, dict, nib.Nifti2Image]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj), json.loads(img.header.extensions[0].get_content()), img


def write_nifti(path: Path, data: np.ndarray, ext: dict, like: nib.Nifti2Image,
                dwell_s: float | None = None) -> None:
    """A NIfTI-2 image with ``data`` and the NIfTI-MRS header extension ``ext`` (ecode 44)."""
    img = nib.Nifti2Image(data, like.affine)
    img.header.set_intent(like.header.get_intent()[0])
    zooms = list(like.header.get_zooms()[:3]) + [dwell_s or float(like.header["pixdim"][4])]
    img.header["pixdim"][1:5] = zooms
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    nib.save(img, str(path))


def as_measured_mm(path: Path) -> None:
    """Rewrite NIfTI-MRS ``path`` (a copy of a metabolite acquisition) as a metabolite-nulled
    macromolecule spectrum: every FID the parametric MM lines (``pipeline.simulate.
    macromolecules``: broad lines, no metabolite singlet) on its grid, peaking at 0.2 of its
    largest sample. A scaled metabolite spectrum is refused as the MM at discovery
    (``pipeline.io.mm_likeness``)."""
    from pipeline.simulate.macromolecules import parametric_mm_basis

    data, ext, img = read_nifti(path)
    dwell_s = float(img.header["pixdim"][4])
    cf_mhz = float(np.ravel(ext["SpectrometerFrequency"])[0])
    mm = parametric_mm_basis(cf_mhz, dwell_s, data.shape[3], include_combined=True).fid("MM")
    mm = mm * 0.2 * np.abs(data).max() / np.abs(mm).max()
    shape = (1, 1, 1, -1) + (1,) * (data.ndim - 4)
    write_nifti(path, np.broadcast_to(mm.reshape(shape), data.shape).astype(data.dtype), ext,
                img)


def copy_good(root: Path, label: str) -> dict:
    """Participant ``label`` as an exact copy of the good one (sidecar links rewritten)."""
    src, dst = paths(root, GOOD), paths(root, label)
    dst["svs"].parent.mkdir(parents=True, exist_ok=True)
    for key in ("svs", "ref", "ref_json"):
        shutil.copyfile(src[key], dst[key])
    sidecar = json.loads(src["svs_json"].read_text())
    sidecar["ReferenceSignal"] = f"bids::sub-{label}/mrs/{dst['ref'].name}"
    dst["svs_json"].write_text(json.dumps(sidecar, indent=1))
    return dst


def _edit_svs(p: dict, data_fn=None, ext_fn=None, dwell_s=None, key: str = "svs") -> None:
    data, ext, img = read_nifti(p[key])
    data = data_fn(data) if data_fn else data
    ext = ext_fn(ext) if ext_fn else ext
    write_nifti(p[key], data, ext, img, dwell_s)


def _edit_json(path: Path, fn) -> None:
    path.write_text(json.dumps(fn(json.loads(path.read_text())), indent=1))


def _without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def zero_bytes(p):
    p["svs"].write_bytes(b"")


def truncated_gzip(p):
    raw = p["svs"].read_bytes()
    p["svs"].write_bytes(raw[: len(raw) // 2])


def real_valued(p):
    _edit_svs(p, lambda d: d.real.astype(np.float64))


def too_few_dims(p):
    _edit_svs(p, lambda d: d[0, 0, :, :, 0, 0])  # 3 dimensions: (1, 1024, ...) -> (1, 1024)


def too_many_dims(p):
    """A 7th dimension of a kind the app does not process (edited spectra)."""
    def ext(e):
        return {**e, "dim_7": "DIM_EDIT"}
    _edit_svs(p, lambda d: np.stack([d, d], axis=-1), ext)


def multi_voxel(p):
    _edit_svs(p, lambda d: np.concatenate([d, d], axis=0))


def nan_samples(p):
    def data(d):
        d = d.copy()
        d[0, 0, 0, 10, 2, 1] = np.nan
        d[0, 0, 0, 11, 3, 2] = np.inf
        return d
    _edit_svs(p, data)


def missing_keys(p):
    _edit_svs(p, ext_fn=lambda e: _without(e, "EchoTime"))
    _edit_json(p["svs_json"], lambda s: _without(s, "EchoTime"))


def missing_nucleus(p):
    _edit_svs(p, ext_fn=lambda e: _without(e, "ResonantNucleus"))
    _edit_json(p["svs_json"], lambda s: _without(s, "ResonantNucleus"))


def broken_sidecar(p):
    p["svs_json"].write_text(p["svs_json"].read_text()[:-30])


def header_disagrees(p):
    _edit_json(p["svs_json"], lambda s: {**s, "SpectralWidth": 4000.0})


def _b_values(e, values):
    e = json.loads(json.dumps(e))
    e["dim_6_header"]["b_value"]["Value"] = values
    return e


def b_list_mismatch(p):
    _edit_svs(p, ext_fn=lambda e: _b_values(e, e["dim_6_header"]["b_value"]["Value"][:-1]))


def negative_b(p):
    _edit_svs(p, ext_fn=lambda e: _b_values(
        e, [-500.0] + e["dim_6_header"]["b_value"]["Value"][1:]))


def unknown_units(p):
    _edit_json(p["svs_json"], lambda s: {**s, "DiffusionBValueUnits": "furlongs"})


def water_points(p):
    _edit_svs(p, lambda d: np.ascontiguousarray(d[:, :, :, :512]), key="ref")
    _edit_json(p["ref_json"], lambda s: {**s, "NumberOfSpectralPoints": 512})


def water_dwell(p):
    _edit_svs(p, dwell_s=0.00025, key="ref")
    _edit_json(p["ref_json"], lambda s: {**s, "SpectralWidth": 4000.0})


# label -> (builder, words the participant's error must contain besides the file name)
BAD_CASES = {
    "zerobytes": (zero_bytes, ["0 bytes"], "svs"),
    "truncated": (truncated_gzip, ["not a readable"], "svs"),
    "realvalued": (real_valued, ["complex"], "svs"),
    "fewdims": (too_few_dims, ["dimensions"], "svs"),
    "manydims": (too_many_dims, ["DIM_EDIT"], "svs"),
    "multivoxel": (multi_voxel, ["single-voxel"], "svs"),
    "nan": (nan_samples, ["NaN or infinite"], "svs"),
    "missingkeys": (missing_keys, ["EchoTime"], "svs"),
    "nonucleus": (missing_nucleus, ["ResonantNucleus"], "svs"),
    "disagree": (header_disagrees, ["SpectralWidth", "disagrees"], "svs"),
    "badjson": (broken_sidecar, ["sidecar not valid JSON"], "svs_json"),
    "blist": (b_list_mismatch, ["5 entries", "6"], "svs"),
    "negb": (negative_b, ["negative b-values"], "svs"),
    "units": (unknown_units, ["b-value unit"], "svs"),
    "waterpoints": (water_points, ["512", "1024"], "ref"),
    "waterdwell": (water_dwell, ["dwell"], "ref"),
}


def make_bad_dataset(root: Path, cases=BAD_CASES) -> dict:
    """Add one broken participant per case to the dataset at ``root`` (which holds the good
    participant ``01``); returns label -> the file the error must name."""
    named = {}
    for label, (build, _, culprit) in cases.items():
        p = copy_good(root, label)
        build(p)
        named[label] = p[culprit]
    participants = Path(root) / "participants.tsv"
    if participants.exists():
        participants.unlink()  # the demo's table lists only the good participants
    return named



@pytest.fixture(scope="module")
def demo_master(tmp_path_factory) -> Path:
    """The small two-participant demo dataset (built once per test module)."""
    from bids_app.demo import write_demo_dataset

    base = tmp_path_factory.mktemp("demo")
    write_demo_dataset(base / "demo", participants=2, small=True, cache_dir=str(base / "cache"))
    return base / "demo"


@pytest.fixture
def demo(demo_master, tmp_path) -> Path:
    """A private copy of :func:`demo_master` (tests edit it)."""
    shutil.copytree(demo_master, tmp_path / "in", symlinks=True)
    return tmp_path / "in"
