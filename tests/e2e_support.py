"""Shared checks of the end-to-end tests (no tests here): run the CLI, read its outputs."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ENV = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"}
BIDS_DERIVATIVE_NAME = re.compile(
    r"^sub-[A-Za-z0-9]+(_[a-z]+-[A-Za-z0-9]+)*_[A-Za-z0-9]+\.(nii\.gz|tsv|json|toml|svg)$")
CONTRACT = {
    "transients.tsv": ["condition", "b_value", "direction", "transient", "freq_shift_hz",
                       "phase_shift_deg", "rejected"],
    "amplitudes.tsv": ["condition", "b_value", "direction", "metabolite", "amplitude", "crlb",
                       "crlb_percent"],
    "diffusion.tsv": ["metabolite", "model", "parameter", "value", "unit", "std_error",
                      "applicable", "note"],
}
FAST_CONFIG = """
[diffusion]
models = ["monoexponential", "kurtosis"]
"""


def run_app(*args, timeout=900) -> tuple[subprocess.CompletedProcess, float]:
    """The ``dmrs-bids`` CLI in a subprocess; returns the completed process and wall time."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "bids_app.cli", *map(str, args)],
                         capture_output=True, text=True, env=ENV, timeout=timeout)
    return run, time.perf_counter() - start


def read_tsv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def tsv_header(path) -> list[str]:
    return Path(path).read_text().splitlines()[0].split("\t")


def nifti_mrs_header(path) -> dict:
    img = nib.load(str(path))
    return json.loads(img.header.extensions[0].get_content())


def check_participant_outputs(out: Path, subject: str, stem: str, n_conditions: int) -> dict:
    """Every contract output exists, parses and is BIDS-named; returns the parsed tables."""
    mrs = out / f"sub-{subject}" / "mrs"
    paths = {kind: mrs / f"{stem}_{kind}" for kind in
             ("desc-preproc_svs.nii.gz", "desc-fit_svs.nii.gz", "transients.tsv",
              "amplitudes.tsv", "diffusion.tsv", "qc.json")}
    for path in paths.values():
        assert path.is_file(), path
    for path in list(mrs.iterdir()) + list((out / f"sub-{subject}" / "figures").iterdir()):
        assert BIDS_DERIVATIVE_NAME.match(path.name), path.name
    for kind, columns in CONTRACT.items():
        assert tsv_header(paths[kind])[:len(columns)] == columns, kind
    preproc = nib.load(str(paths["desc-preproc_svs.nii.gz"]))
    header = nifti_mrs_header(paths["desc-preproc_svs.nii.gz"])
    assert preproc.shape[:4] == (1, 1, 1, preproc.shape[3]) and preproc.shape[4] == n_conditions
    assert header["dim_5"] == "DIM_USER_0"
    assert len(header["dim_5_header"]["b_value"]["Value"]) == n_conditions
    methods = [step["Method"] for step in header["ProcessingApplied"]]
    assert "Signal averaging" in methods and "Frequency and phase correction" in methods
    fit = nib.load(str(paths["desc-fit_svs.nii.gz"]))
    assert fit.shape == preproc.shape
    report = out / f"sub-{subject}.html"
    html = report.read_text()
    for src in re.findall(r'src="([^"]+)"', html):
        assert (out / src).is_file(), src
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "dmrs-bids"
    assert "References" in (out / "logs" / "CITATION.md").read_text()
    return {
        "amplitudes": read_tsv(paths["amplitudes.tsv"]),
        "diffusion": read_tsv(paths["diffusion.tsv"]),
        "transients": read_tsv(paths["transients.tsv"]),
        "qc": json.loads(paths["qc.json"].read_text()),
    }


def series(rows: list[dict], metabolite: str) -> tuple[np.ndarray, np.ndarray]:
    """(b_s_mm2, amplitude) of one metabolite in condition order."""
    picked = sorted((r for r in rows if r["metabolite"] == metabolite),
                    key=lambda r: int(r["condition"]))
    return (np.array([float(r["b_value"]) for r in picked]),
            np.array([float(r["amplitude"]) for r in picked]))


def shell_means(b: np.ndarray, values: np.ndarray, rel_tol: float = 0.05):
    """Mean over directions of each b-shell (b within ``rel_tol`` of each other)."""
    shells, means = [], []
    for value in np.sort(b):
        if not shells or value > shells[-1] * (1 + rel_tol) + 1.0:
            shells.append(value)
    for s in shells:
        close = np.abs(b - s) <= s * rel_tol + 1.0
        means.append(values[close].mean())
    return np.array(shells), np.array(means)


def parameter(rows: list[dict], metabolite: str, model: str, name: str) -> float:
    (row,) = [r for r in rows if r["metabolite"] == metabolite and r["model"] == model
              and r["parameter"] == name]
    return float(row["value"])


def outputs_snapshot(out: Path) -> dict[str, bytes]:
    """Bytes of every derivative (logs and the per-participant run records ``*_run.json``
    excluded: they record the run's id and times)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and "logs" not in p.relative_to(out).parts
            and not p.name.endswith("_run.json")}


def check_runs_to_report(bids: Path, root: Path, amplitudes_tsv: str) -> None:
    """``dmrs-bids bids root/out participant`` (no config) succeeds and writes sub-01's report
    and a positive tNAA/NAA amplitude."""
    out = root / "out"
    run, _ = run_app(bids, out, "participant", "-w", root / "work", "--nprocs", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "sub-01.html").stat().st_size > 10_000
    rows = read_tsv(out / "sub-01" / "mrs" / amplitudes_tsv)
    naa = [float(r["amplitude"]) for r in rows if r["metabolite"] in ("NAA", "tNAA")]
    assert naa and all(a > 0 for a in naa)
