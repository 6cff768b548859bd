"""Running LCModel (the peer program, built outside the project) on the app's own spectra.

Shared by ``benchmarks/bench_real_vs_lcmodel.py`` and the tests that compare with LCModel (no
tests here). The spectrum is written as an LCModel ``.RAW`` in the app's sign convention (the
one ``pipeline.io.basis_formats.read_lcmodel_raw`` reads back unchanged), so LCModel fits the
very FID the app fits.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

LCMODEL_BINARY = Path(os.environ.get("LCMODEL_BINARY", "/tmp/lcmodel/lcmodel"))
LCMODEL_SUMS = {"NAA+NAAG": "tNAA", "Cr+PCr": "tCr", "GPC+PCho": "tCho", "Glu+Gln": "Glx",
                "PCh+GPC": "tCho", "GPC+PCh": "tCho", "Ins+Gly": "Ins+Gly"}


def lcmodel_available() -> bool:
    return LCMODEL_BINARY.is_file() and os.access(LCMODEL_BINARY, os.X_OK)


def write_lcmodel_raw(path: Path, fid: np.ndarray, label: str = "app") -> None:
    """An LCModel ``.RAW`` holding ``fid`` as it is (real, imaginary pairs)."""
    values = np.column_stack([fid.real, fid.imag]).reshape(-1)
    lines = [f" $NMID ID='{label}', FMTDAT='(2E16.7)'", " TRAMP=1., VOLUME=1. $END"]
    lines += [f"{values[i]:16.7E}{values[i + 1]:16.7E}" for i in range(0, values.size, 2)]
    Path(path).write_text("\n".join(lines) + "\n")


def run_lcmodel(fid: np.ndarray, dwell_s: float, cf_mhz: float, basis_path: Path,
                ppm_range=(0.2, 4.0), extra: dict | None = None, omit=(),
                workdir: Path | None = None) -> dict:
    """Fit ``fid`` with LCModel; returns ``{"conc": {name: value}, "sd_percent": {name: %SD},
    "coord": {...}}``.

    ``conc`` holds LCModel's concentrations of single entries and its sums renamed to the app's
    (tNAA, tCr, tCho, Glx); ``sd_percent`` their %SD (LCModel's Cramer-Rao SD in whole percent
    of the concentration, 999 for an entry fitted as 0). ``coord`` has ``ppm``, ``data``,
    ``fit`` (incl. baseline) and ``baseline`` over the fitted window, as LCModel plots them
    (real part, its phase).
    """
    own = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="lcm_")) if own else Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    write_lcmodel_raw(folder / "data.raw", fid)
    settings = {"key": 210387309, "nunfil": fid.size, "deltat": f"{dwell_s:.7e}",
                "hzpppm": f"{cf_mhz:.6f}", "filbas": f"'{Path(basis_path).resolve()}'",
                "filraw": f"'{folder / 'data.raw'}'", "filps": f"'{folder / 'out.ps'}'",
                "filcoo": f"'{folder / 'out.coord'}'", "lcoord": 9,
                "filcsv": f"'{folder / 'out.csv'}'", "lcsv": 11,
                "filtab": f"'{folder / 'out.table'}'", "ltable": 7,
                "ppmst": ppm_range[1], "ppmend": ppm_range[0]}
    settings.update(extra or {})
    lines = [" $LCMODL"] + [f" {k}= {v}" for k, v in settings.items()]
    for k, name in enumerate(omit, start=1):
        lines.append(f" chomit({k})= '{name}'")
    if omit:
        lines.append(f" nomit= {len(omit)}")
    lines.append(" $END")
    control = "\n".join(lines) + "\n"
    done = subprocess.run([str(LCMODEL_BINARY)], input=control, text=True, capture_output=True,
                          cwd=folder, timeout=300)
    if not (folder / "out.coord").is_file():
        raise RuntimeError(f"LCModel wrote no .coord in {folder}: {done.stderr[-500:]}")
    table = read_lcmodel_table(folder / "out.coord")
    return {"conc": {k: v[0] for k, v in table.items()},
            "sd_percent": {k: v[1] for k, v in table.items()},
            "coord": read_lcmodel_coord(folder / "out.coord"), "folder": folder}


CONC_ROW = re.compile(r"^\s*([-+\d.E]+)\s+(\d+)%\s+([-\d.]+(?:E[-+]\d+)?)\s*\+?\s*(\S+)\s*$")


def read_lcmodel_table(path: Path) -> dict:
    """(concentration, %SD) per basis name (and sums renamed to the app's) from the
    concentration table of an LCModel ``.coord`` file; a ``+`` glued to a name (prior
    exceeded) is dropped."""
    lines = Path(path).read_text().splitlines()
    out = {}
    for k, line in enumerate(lines):
        match = re.match(r"\s*(\d+) lines in following concentration table", line)
        if not match:
            continue
        for row in lines[k + 2:k + 1 + int(match.group(1))]:
            found = CONC_ROW.match(row)
            if found:
                name = found.group(4)
                out[LCMODEL_SUMS.get(name, name)] = (float(found.group(1)),
                                                     float(found.group(2)))
        break
    return out


def read_lcmodel_concentrations(path: Path) -> dict:
    """Concentrations per basis name (and sums renamed to the app's) of an LCModel ``.coord``
    file (:func:`read_lcmodel_table` without the %SD)."""
    return {k: v[0] for k, v in read_lcmodel_table(path).items()}


def _numbers(lines: list, start: int, count: int) -> tuple[np.ndarray, int]:
    values, k = [], start
    while len(values) < count:
        values += [float(v) for v in lines[k].split()]
        k += 1
    return np.array(values[:count]), k


def read_lcmodel_coord(path: Path) -> dict:
    """``ppm``, ``data``, ``fit``, ``baseline`` arrays and ``phase0_deg``/``phase1_deg_ppm``
    from an LCModel ``.coord`` file."""
    lines = Path(path).read_text().splitlines()
    out = {}
    for k, line in enumerate(lines):
        match = re.match(r"\s*(\d+) points on ppm-axis = NY", line)
        if match:
            n = int(match.group(1))
            out["ppm"], k2 = _numbers(lines, k + 1, n)
            out["data"], k2 = _numbers(lines, k2 + 1, n)
            out["fit"], k2 = _numbers(lines, k2 + 1, n)
            out["baseline"], _ = _numbers(lines, k2 + 1, n)
            break
        match = re.search(r"Ph:\s*(-?\d+)\s*deg\s*(-?[\d.]+)\s*deg/ppm", line)
        if match:
            out["phase0_deg"], out["phase1_deg_ppm"] = float(match.group(1)), float(match.group(2))
    return out
