"""b = 0 ratios to tCr on the published 7 T dMRS set, the app beside LCModel (issue 13).

The truth is the set's stated concentrations times exp(-TE/T2) with its own T2s
(``metab_b0.txt``, ``pipeline.simulate.presets``). Transients are aligned and averaged per
condition; the published basis and the 0.5-4.2 ppm window are used by all three fits:

- the app's default mode for the series (joint, shape-free), its b = 0 condition;
- the app's default single-spectrum fit of the b = 0 average alone;
- LCModel (``/tmp/lcmodel/lcmodel``) on the same b = 0 average with the same basis.

    PYTHONPATH=$PWD python benchmarks/bench_published_b0.py [--decay-constraint completely_monotone]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lcmodel_support import lcmodel_available, run_lcmodel  # noqa: E402
from test_fitting_support import truncated  # noqa: E402
from pipeline.fitting import FitOptions, fit_conditions, fit_spectrum  # noqa: E402
from pipeline.io.basis_formats import read_basis, write_lcmodel_basis  # noqa: E402
from pipeline.io.nifti_mrs import read_nifti_mrs  # noqa: E402
from pipeline.preprocess.align import align_transients  # noqa: E402
from pipeline.simulate.presets import (PREGAME_CONCENTRATIONS_MM, PREGAME_ECHO_TIME_S,  # noqa: E402
                                       PREGAME_T2_S)

DATA = Path(os.environ.get("DMRS_BIDS_SHARED_DATA", ROOT.parent / "shared" / "data"))
FOLDER = DATA / "dmrs_7t_steam_synthetic"
MEMBERS = {"tNAA": ("NAA", "NAAG"), "tCr": ("Cr", "PCr"), "tCho": ("GPC", "PCh"),
           "Ins": ("Ins",), "Glu": ("Glu",)}
REPORTED = ("tNAA", "tCho", "Ins", "Glu")
WINDOW_PPM = (0.5, 4.2)


def truth_ratios() -> dict:
    """Stated concentration times T2 decay at TE, summed per metabolite, over tCr."""
    weighted = {k: c * np.exp(-PREGAME_ECHO_TIME_S / PREGAME_T2_S[k])
                for k, c in PREGAME_CONCENTRATIONS_MM.items()}
    totals = {k: sum(weighted[m] for m in v) for k, v in MEMBERS.items()}
    return {k: totals[k] / totals["tCr"] for k in REPORTED}


def ratios(amplitude) -> dict:
    """Ratios to tCr from ``amplitude(name)`` of single entries."""
    totals = {k: sum(amplitude(m) for m in v) for k, v in MEMBERS.items()}
    return {k: totals[k] / totals["tCr"] for k in REPORTED}


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decay-constraint", default="none",
                        help="FitOptions.joint_decay_constraint of the fits")
    args = parser.parse_args(argv)
    if not FOLDER.is_dir():
        print(f"published set not found at {FOLDER}")
        return 1
    basis = truncated(read_basis(FOLDER / "basis_STEAM_TE45_TM60.BASIS"), 1024)
    acq = read_nifti_mrs(FOLDER / "nifti" / "synthetic.nii.gz")
    averages = np.array([align_transients(acq.fids[c, :, 0, :], acq.dwell_s, acq.cf_mhz,
                                          n_iterations=1, n_model_iterations=0)
                         .corrected.mean(axis=0) for c in range(acq.n_conditions)])
    options = FitOptions(ppm_range=WINDOW_PPM, joint_decay_constraint=args.decay_constraint)
    rows = {}
    series = fit_conditions(averages, basis, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                            options)
    rows[f"app, {series.mode}, {args.decay_constraint}, b = 0"] = ratios(series.fits[0].amplitude)
    alone = fit_spectrum(averages[0], basis, acq.dwell_s, acq.cf_mhz, options)
    rows["app, b = 0 spectrum alone"] = ratios(alone.amplitude)
    if lcmodel_available():
        folder = Path(tempfile.mkdtemp(prefix="b0_"))
        write_lcmodel_basis(basis, folder / "basis.BASIS")
        conc = run_lcmodel(averages[0], acq.dwell_s, acq.cf_mhz, folder / "basis.BASIS",
                           ppm_range=WINDOW_PPM, workdir=folder)["conc"]
        rows["LCModel, b = 0 spectrum"] = ratios(lambda m: conc.get(m, 0.0))
    truth = truth_ratios()
    print("b = 0 ratio to tCr, relative to the stated concentrations x exp(-TE/T2) "
          "(target +-2 %)")
    print(f"{'fit':44s} " + " ".join(f"{k:>8s}" for k in REPORTED))
    for label, values in rows.items():
        print(f"{label:44s} " + " ".join(f"{100 * (values[k] / truth[k] - 1):+7.1f}%"
                                         for k in REPORTED))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
