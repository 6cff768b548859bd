"""Real spectra: the app's fit against LCModel on the very same spectra (issue 13, item 2).

For each dataset the spectrum is prepared once with the project's own readers and
preprocessing functions (mirror check, ``preprocess_acquisition`` for multi-transient NIfTI-MRS,
HLSVD residual-water removal with the default window); then the app fits it with
``pipeline.fitting.fit_spectrum`` and the ``[fitting]`` defaults of ``bids_app/default_config.toml``
(MM handled as the ``[macromolecules]`` default ``auto`` does: a measured MM spectrum when
given, else the basis' MM entry, else the parametric MM set), and LCModel fits the same FID
(written as ``.RAW``) with the same final basis (written as ``.BASIS``; ``nsimul = 0`` so both
programs have the same components) over the same ppm window, default spline baseline. The app's
fit takes the residual-water window's lines out of that basis (``[fitting]
water_removed_ppm``); ``--lcmodel-basis as-app`` gives LCModel that basis too.

Not the full app (BIDS conversion, nipype graph): the preprocessing steps are called directly.
The basis is the dataset's own LCModel basis (the app's simulated basis is another study); for
the 7 T NIfTI-MRS data the published 7 T basis whose echo time is nearest the header's
``EchoTime`` (Siemens STEAM TE 11 ms -> Osprey SPECIAL TE 9 ms; the dMRS set TE 40 ms -> pregame
STEAM TE 45 ms). Source ``cmrr``: two CMRR human STEAM spectra (Varian, ``mm_consensus``; 7 T
TE 6 ms, 4 T TE 4 ms; no water reference, so ratios only) fitted with the app's own simulated
STEAM basis at the procpar TE/TM (the app's default without ``--basis``; LCModel gets the same
basis as ``.BASIS``), with and without the same group's measured MM of the same sequence, and
the 7 T one also with the nearest-TE published basis. Residual/noise uses the QC's noise
estimate (``pipeline.qc.metrics.noise_sd``), which leaves out the anti-aliasing filter roll-off
at the edges of wide bands.

Prints per dataset the ratios to tCr for both programs, the median |difference| (relative to
LCModel) per ratio and in units of the app's CRLB of that ratio (:func:`ratio_crlb_percent`),
both programs' residual/noise and the app's fit-residual QC status.

    PYTHONPATH=$PWD python benchmarks/bench_real_vs_lcmodel.py [--only challenge,osprey,...]
        [--set metabolite_shift_sd_ppm=0.004 --set baseline_order=4]   # other [fitting] values
        [--lcmodel-basis as-app] [--residual-water-window 4.25 5.5 --set ppm_range=[0.2,4.2]]
        [--lipids]              # the app's lipid entries in both programs' basis (app default)
        [--lcmodel-mm own]      # LCModel's own MM/lipid simulation where the app's is parametric
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lcmodel_support import lcmodel_available, run_lcmodel  # noqa: E402
from pipeline.fitting import FitOptions, fit_spectrum  # noqa: E402
from pipeline.fitting.options import is_mm_name  # noqa: E402
from pipeline.metabolites import INOSITOL_NAMES, METABOLITE_SUMS  # noqa: E402
from pipeline.io.basis_formats import read_basis, read_lcmodel_raw, write_lcmodel_basis  # noqa: E402
from pipeline.preprocess.orientation import apply_mirror_policy  # noqa: E402
from pipeline.preprocess.water import RESIDUAL_WATER_WINDOW_PPM, remove_residual_water  # noqa: E402
from pipeline.qc.flags import THRESHOLDS  # noqa: E402
from pipeline.qc.metrics import fit_quality  # noqa: E402
from pipeline.spectra import fid_to_spectrum, ppm_axis  # noqa: E402

DATA = Path(__import__("os").environ.get("DMRS_BIDS_SHARED_DATA", ROOT.parent / "shared" / "data"))
RATIOS = ("tNAA", "tCho", "Ins", "Glx", "Glu", "Ins+Gly")
"""Ins+Gly (no target): where a basis has glycine, its 3.55 ppm singlet sits on the Ins
multiplet and the two fits may split the signal differently."""
TARGETS = {"tNAA": 0.05, "tCho": 0.05, "Ins": 0.05, "Glx": 0.10}
OSPREY = DATA / "osprey_3t" / "exampledata" / "sdat" / "UnEdited_with_MM_data"
PHILIPS_35 = (DATA / "osprey_3t" / "fit" / "basissets" / "3T" / "philips" / "unedited" / "press"
              / "35" / "3T_PRESS_Philips_35ms_noMM.BASIS")
STEAM_7T = DATA / "dmrs_7t_steam_invivo" / "basis_STEAM_TE45_TM60.BASIS"
SPECIAL_7T_TE9 = (DATA / "osprey_3t" / "fit" / "basissets" / "7T" / "siemens" / "unedited"
                  / "special" / "9" / "basis_siemens_special9.basis")
BASES_7T_BY_TE_S = {0.009: SPECIAL_7T_TE9, 0.045: STEAM_7T}
"""Published 7 T bases by echo time: Osprey's Siemens SPECIAL TE 9 ms (with its measured MM
``mac``) and the pregame STEAM TE 45 ms. No published 7 T STEAM basis at TE 11 ms is at hand;
at short TE J-evolution is small, so the nearest echo time matters more than the sequence."""


def nearest_te_basis(echo_time_s: float, bases: dict = BASES_7T_BY_TE_S) -> Path:
    """The basis of ``bases`` (TE in s -> path) whose echo time is nearest ``echo_time_s``."""
    return bases[min(bases, key=lambda te: abs(te - echo_time_s))]


def default_fit_table() -> dict:
    """The ``[fitting]`` defaults as the app resolves them (``water_removed_ppm``: the residual-
    water window, as ``prepare`` removes residual water with it)."""
    from bids_app.config import load_config
    table = load_config()["fitting"]
    if not table.get("metabolites"):
        table.pop("metabolites", None)
    return table


def app_basis(basis_path, echo_time_s: float, mm_fid, dwell_s: float, cf_mhz: float,
              n_points: int, lipids: bool = False):
    """The basis the app fits with ([macromolecules] mode auto; lipids as ``lipids``, off
    unless ``--lipids``); ``basis_path`` a basis file or a ``Basis`` already made (the app's
    simulated one)."""
    basis = _app_basis_mm(basis_path, echo_time_s, mm_fid, dwell_s, cf_mhz, n_points)
    if not lipids:
        return basis
    from pipeline.simulate.macromolecules import with_lipids
    return with_lipids(basis)


def _app_basis_mm(basis_path, echo_time_s: float, mm_fid, dwell_s: float, cf_mhz: float,
                  n_points: int):
    """:func:`app_basis` before lipids: the MM entries of ``[macromolecules] mode auto``."""
    from pipeline.io.basis_tools import resample_basis
    from pipeline.io.mm_spectra import mm_basis_from_fid
    from pipeline.simulate.macromolecules import parametric_mm_basis

    basis = read_basis(basis_path) if isinstance(basis_path, (str, Path)) else basis_path
    in_basis = [n for n in basis.names if is_mm_name(n)]
    if mm_fid is None and in_basis:
        return basis
    # on the data grid first: resampling a parametric MM entry (a Gaussian decaying to exact
    # zeros) fails in basis_tools.smooth_extension (singular matrix) -- a bug reported
    basis = resample_basis(basis, dwell_s, n_points, basis.cf_mhz)
    metabolites = basis.subset([n for n in basis.names if not is_mm_name(n)])
    if mm_fid is not None:
        mm = mm_basis_from_fid(mm_fid, dwell_s, cf_mhz, "measured MM")
        mm = resample_basis(mm, basis.dwell_s, basis.n_points, basis.cf_mhz, ref_ppm=basis.ref_ppm)
    else:
        mm = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                                 echo_time_s=echo_time_s)
    return metabolites.with_entries(mm)


WATER_WINDOW_PPM = RESIDUAL_WATER_WINDOW_PPM
"""Residual-water removal window of :func:`prepare` (``--residual-water-window``)."""


def prepare(fid: np.ndarray, dwell_s: float, cf_mhz: float, water_fid=None,
            remove_water: bool = True) -> tuple[np.ndarray, str]:
    """Mirror check (fix), eddy-current correction with the water reference when there is
    one (``pipeline.preprocess.eddy``, as the app's ``ecc`` step), residual-water removal."""
    from pipeline.preprocess.eddy import eddy_current_correct
    fid, water_fid, verdict = apply_mirror_policy(fid, dwell_s, cf_mhz, water_fids=water_fid)
    if water_fid is not None:
        fid = eddy_current_correct(fid, water_fid, dwell_s).corrected
    if remove_water:
        fid, _ = remove_residual_water(fid, dwell_s, cf_mhz, window_ppm=WATER_WINDOW_PPM)
    return fid, verdict.verdict


def challenge_items():
    folder = DATA / "ismrm2016_fitting_challenge"
    basis = folder / "basisset_LCModel" / "press3T_30ms.BASIS"
    for i in range(1, 29):
        fid, _ = read_lcmodel_raw(folder / "datasets_LCModel" / f"dataset{i}.RAW")
        yield f"challenge{i:02d}", fid, 2.5e-4, 123.2, basis, 0.030, None, None


def _sdat(folder: Path):
    from pipeline.io.mm_spectra import read_philips_sdat
    path = next(p for p in folder.iterdir() if p.suffix.lower() == ".sdat")
    fid, dwell_s, cf_mhz, params = read_philips_sdat(path)
    return fid, dwell_s, cf_mhz, float(params.get("echo_time", 30)) / 1000


def osprey_items():
    for sub in ("sub-01", "sub-02"):
        mrs = OSPREY / sub / "ses-01" / "mrs"
        fid, dwell_s, cf_mhz, te_s = _sdat(mrs / f"{sub}_ses-01_press")
        water, *_ = _sdat(mrs / f"{sub}_ses-01_press_ref")
        mm, *_ = _sdat(mrs / f"{sub}_ses-01_press-inverted")
        mm_water, *_ = _sdat(mrs / f"{sub}_ses-01_press-inverted_ref")
        mm, _ = prepare(mm, dwell_s, cf_mhz, mm_water, remove_water=False)
        yield f"osprey_{sub}", fid, dwell_s, cf_mhz, PHILIPS_35, te_s, None, water
        yield f"osprey_{sub}+MM", fid, dwell_s, cf_mhz, PHILIPS_35, te_s, mm, water


def spant_items():
    folder = DATA / "spant_sdat" / "inst" / "extdata"
    fid, dwell_s, cf_mhz, te_s = _sdat_pair(folder / "philips_spar_sdat_WS.SDAT")
    water, *_ = _sdat_pair(folder / "philips_spar_sdat_W.SDAT")
    yield "spant_sdat", fid, dwell_s, cf_mhz, PHILIPS_35, te_s, None, water


def _sdat_pair(path: Path):
    from pipeline.io.mm_spectra import read_philips_sdat
    fid, dwell_s, cf_mhz, params = read_philips_sdat(path)
    return fid, dwell_s, cf_mhz, float(params.get("echo_time", 30)) / 1000


def _nifti_average(path: Path, water_path: Path | None, condition: int = 0):
    """(FID, dwell, cf, echo time in s from the header) of one preprocessed condition."""
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.preprocess.pipeline import preprocess_acquisition
    acq = read_nifti_mrs(path)
    water = read_nifti_mrs(water_path) if water_path else None
    done = preprocess_acquisition(acq, water, {"residual_water": False})
    averaged = done.averaged
    return (averaged.fids[condition, 0, 0], averaged.dwell_s, averaged.cf_mhz,
            float(acq.metadata["EchoTime"]))


def siemens_items():
    """Siemens 7 T STEAM: its header says TE 11 ms, so the nearest-TE published 7 T basis
    (SPECIAL TE 9 ms), not the pregame STEAM TE 45 ms basis used before (a benchmark bug)."""
    folder = DATA / "siemens_7t_steam_coils"
    fid, dwell_s, cf_mhz, te_s = _nifti_average(folder / "metab_raw.nii.gz",
                                                folder / "wref_raw.nii.gz")
    yield "siemens_7t_steam", fid, dwell_s, cf_mhz, nearest_te_basis(te_s), te_s, None, None


def dmrs_items():
    folder = DATA / "dmrs_7t_steam_invivo" / "nifti"
    fid, dwell_s, cf_mhz, te_s = _nifti_average(folder / "metab.nii.gz",
                                                folder / "water.nii.gz")
    yield "dmrs_7t_invivo_b0", fid, dwell_s, cf_mhz, nearest_te_basis(te_s), te_s, None, None


CMRR = DATA / "mm_consensus"
CMRR_SPECTRA = {"7t": "7T_STEAM_TE6ms_human", "4t": "4T_STEAM_TE4ms_human"}
"""CMRR human brain STEAM (Varian, no water reference: ratios only) and the same group's
measured MM spectrum of the same sequence (``MM_database``, another subject)."""
CMRR_MM = {"7t": "7T_MM_human_STEAM_CMRR", "4t": "4T_MM_human_STEAM_CMRR"}


def read_cmrr(name: str):
    """(FID, dwell s, MHz, TE s, TM s) of a Varian ``.fid`` folder of ``mm_consensus``, FID as
    stored. Its procpar ``lsfid`` (3 at 7 T, 5 at 4 T) is not applied: the stored FID already
    starts at the echo top (left-shifted, NAA 2.01 and Cr 3.03 ppm come out 54 deg (7 T) apart
    in phase instead of 4 deg; measured 2026-12-07)."""
    from pipeline.io.mm_spectra import read_varian_fid
    folder = next(CMRR.glob(f"*/{name}.fid"))
    fid, dwell_s, cf_mhz, params = read_varian_fid(folder)
    return fid, dwell_s, cf_mhz, float(params["te"]), float(params["tm"])


def simulated_steam_basis(cf_mhz: float, dwell_s: float, n_points: int, echo_time_s: float,
                          mixing_time_s: float):
    """The app's default basis for these data: ``simulate_basis`` for sequence steam at the
    procpar TE/TM, the simulator's metabolite list (what the app does without ``--basis``)."""
    from pipeline.simulate.basis_simulation import simulate_basis
    return simulate_basis("steam", cf_mhz, dwell_s, n_points, echo_time_s=echo_time_s,
                          mixing_time_s=mixing_time_s)


def cmrr_items():
    """7 T STEAM TE 6 ms with the nearest-TE published 7 T basis (SPECIAL TE 9 ms, its measured
    MM) and with the app's simulated STEAM basis (parametric MM); 4 T STEAM TE 4 ms with the
    simulated basis only (no published 4 T basis here). ``+MM``: the simulated basis with the
    group's measured MM of the same sequence, as the app fits when given an MM acquisition."""
    for field, label in (("7t", "cmrr_7t_te6"), ("4t", "cmrr_4t_te4")):
        fid, dwell_s, cf_mhz, te_s, tm_s = read_cmrr(CMRR_SPECTRA[field])
        simulated = simulated_steam_basis(cf_mhz, dwell_s, fid.size, te_s, tm_s)
        mm, mm_dwell_s, *_ = read_cmrr(CMRR_MM[field])
        if (mm_dwell_s, mm.size) != (dwell_s, fid.size):
            raise ValueError(f"{CMRR_MM[field]}: another grid than {CMRR_SPECTRA[field]}")
        if field == "7t":
            yield label, fid, dwell_s, cf_mhz, nearest_te_basis(te_s), te_s, None, None
        yield f"{label}_sim", fid, dwell_s, cf_mhz, simulated, te_s, None, None
        yield f"{label}_sim+MM", fid, dwell_s, cf_mhz, simulated, te_s, mm, None


def siemens_rda_items():
    """Siemens 3 T PRESS TE 30 ms (``vendor_formats_suspect/siemens/SVS_30.rda``, suspect's
    test data; one averaged spectrum, no water reference: ratios only), converted by spec2nii
    as the app's converter does, fitted with the challenge's PRESS 3 T TE 30 ms basis. The
    same folder's ``SVS_XA60.dcm`` is a phantom (``svs_se_30_phantom``): not brain, left out."""
    from bids_app.convert_vendor import run_spec2nii
    from pipeline.io.nifti_mrs import read_nifti_mrs
    source = DATA / "vendor_formats_suspect" / "siemens" / "SVS_30.rda"
    with tempfile.TemporaryDirectory(prefix="bench_rda_") as tmp:
        [converted] = run_spec2nii("rda", [source], Path(tmp))
        acq = read_nifti_mrs(converted)
    basis = DATA / "ismrm2016_fitting_challenge" / "basisset_LCModel" / "press3T_30ms.BASIS"
    yield ("siemens_3t_rda", acq.fids[0].mean(axis=(0, 1)), acq.dwell_s, acq.cf_mhz, basis,
           float(acq.metadata["EchoTime"]), None, None)


SOURCES = {"challenge": challenge_items, "osprey": osprey_items, "spant": spant_items,
           "siemens": siemens_items, "dmrs": dmrs_items, "cmrr": cmrr_items,
           "siemens_rda": siemens_rda_items}


RATIO_SUMS = {**METABOLITE_SUMS, "Ins+Gly": (*INOSITOL_NAMES, "Gly")}


def ratio_crlb_percent(fit) -> dict:
    """The app's CRLB of each ratio to tCr, in % of the ratio: first-order propagation of the
    amplitude covariance through numerator / tCr (both sums, their covariance included; a
    numerator sharing tCr's fluctuations moves the ratio less). The scale against which an
    app-LCModel difference of the ratio is judged."""
    def weights(name):
        members = RATIO_SUMS.get(name, (name,))
        return np.array([1.0 if n in members else 0.0 for n in fit.names])

    cov = np.asarray(fit.covariance, float)
    w_den = weights("tCr")
    den = float(w_den @ fit.amplitudes)
    out = {}
    for name in RATIOS:
        w_num = weights(name)
        num = float(w_num @ fit.amplitudes)
        if num <= 0 or den <= 0:
            out[name] = np.nan
            continue
        g = w_num / num - w_den / den  # gradient of log(num / den)
        out[name] = 100 * float(np.sqrt(max(g @ cov @ g, 0.0)))
    return out


def ratios(amplitudes: dict) -> dict:
    sums = RATIO_SUMS
    total = {k: sum(amplitudes.get(n, 0.0) for n in v) for k, v in sums.items()}
    tcr = total["tCr"]
    out = {}
    for name in RATIOS:
        value = total[name] if name in total else amplitudes.get(name, np.nan)
        out[name] = value / tcr if tcr > 0 else np.nan
    return out


def lcmodel_residual_over_noise(coord: dict, fid: np.ndarray, dwell_s: float, cf_mhz: float,
                                noise_sd: float) -> float:
    """LCModel's residual SD over its fit window, in the noise SD of the same spectrum.

    LCModel plots its own scaling and phase of the (2x zero-filled) spectrum; the complex
    factor mapping the app's zero-filled spectrum onto LCModel's data curve is found by linear
    least squares, and the noise SD is scaled by its modulus.
    """
    n = fid.size
    padded = np.concatenate([fid, np.zeros(n, complex)])
    spectrum = fid_to_spectrum(padded)
    ppm = ppm_axis(2 * n, dwell_s, cf_mhz)
    order = np.argsort(ppm)
    re = np.interp(coord["ppm"], ppm[order], spectrum.real[order])
    im = np.interp(coord["ppm"], ppm[order], spectrum.imag[order])
    (a, b), *_ = np.linalg.lstsq(np.column_stack([re, -im]), coord["data"], rcond=None)
    residual = coord["data"] - coord["fit"]
    return float(np.std(residual) / (noise_sd * np.hypot(a, b)))


def qc_status(value: float) -> str:
    t = THRESHOLDS["fit_quality_max"]
    return "fail" if value > t.fail else ("warn" if value > t.warn else "pass")


def lcmodel_basis(basis, options: FitOptions, choice: str, own_mm: bool = False):
    """The basis LCModel gets: ``whole`` (its usual use) or ``as-app``, without the lines of the
    residual-water window as the app's fit takes them out (``fitting.window_lines``);
    ``own_mm``: without the parametric MM and lipid entries, which LCModel then simulates
    itself (:func:`lcmodel_mm_settings`)."""
    if own_mm:
        basis = basis.subset([n for n in basis.names if not parametric_nuisance(n)])
    if choice == "whole" or not options.basis_window_ppm:
        return basis
    import dataclasses

    from pipeline.fitting.window_lines import metabolites_without_window_lines
    return dataclasses.replace(basis, fids=metabolites_without_window_lines(
        basis.fids, basis.names, basis.dwell_s, basis.cf_mhz, options.basis_window_ppm,
        basis.ref_ppm))


def parametric_nuisance(name: str) -> bool:
    """A parametric MM (``MM09``...; not a measured ``MM``/``mac``) or lipid (``Lip13``...)
    entry: what LCModel's own simulation (``nsimul``) stands in for."""
    from pipeline.fitting.options import is_lipid_name
    return is_lipid_name(name) or (is_mm_name(name) and name[2:4].isdigit())


def lcmodel_mm_settings(basis, lcmodel_mm: str) -> tuple[bool, dict]:
    """(own MM?, extra LCModel settings): ``same`` gives LCModel the app's MM entries and
    ``nsimul = 0``; ``own`` (only where the app's MM is parametric, no measured entry) leaves
    them out and keeps LCModel's default MM/lipid simulation (its prior ratios included)."""
    own = lcmodel_mm == "own" and not any(is_mm_name(n) and not parametric_nuisance(n)
                                          for n in basis.names)
    return own, ({} if own else {"nsimul": 0})


def run_one(name, fid, dwell_s, cf_mhz, basis_path, te_s, mm_fid, water_fid, table,
            workdir: Path, lcmodel_basis_choice: str = "whole", lipids: bool = False,
            lcmodel_mm: str = "same") -> dict:
    fid, orientation = prepare(fid, dwell_s, cf_mhz, water_fid)
    basis = app_basis(basis_path, te_s, mm_fid, dwell_s, cf_mhz, fid.size, lipids)
    options = FitOptions.from_dict(table)
    start = time.perf_counter()
    fit = fit_spectrum(fid, basis, dwell_s, cf_mhz, options)
    app_s = time.perf_counter() - start
    quality = fit_quality(fid, fit.fitted_fid, dwell_s, cf_mhz, fit_ppm=options.ppm_range)
    app_amp = dict(zip(fit.names, fit.amplitudes))
    row = {"dataset": name, "orientation": orientation, "app": ratios(app_amp),
           "app_res": quality["fit_quality"], "qc": qc_status(quality["fit_quality"]),
           "at_bounds": list(getattr(fit, "at_bounds", [])), "app_s": app_s,
           "app_crlb_pct": ratio_crlb_percent(fit),
           "stiffness": fit.extra.get("baseline_stiffness", options.baseline_stiffness),
           "basis": basis_label(basis_path)}
    if lcmodel_available():
        folder = workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        basis_file = folder / "basis.BASIS"
        own_mm, extra = lcmodel_mm_settings(basis, lcmodel_mm)
        write_lcmodel_basis(lcmodel_basis(basis, options, lcmodel_basis_choice, own_mm),
                            basis_file)
        row["lcm_mm"] = "own" if own_mm else "same"
        start = time.perf_counter()
        out = run_lcmodel(fid, dwell_s, cf_mhz, basis_file, ppm_range=options.ppm_range,
                          extra=extra, workdir=folder)
        row["lcm_s"] = time.perf_counter() - start
        row["lcm"] = ratios(out["conc"])
        row["lcm_res"] = lcmodel_residual_over_noise(out["coord"], fid, dwell_s, cf_mhz,
                                                     quality["noise_sd"])
    return row


def basis_label(basis_path) -> str:
    """The basis file's name, or for the app's simulated basis its sequence and timings."""
    if isinstance(basis_path, (str, Path)):
        return Path(basis_path).name
    timings = basis_path.provenance.get("timings_s", {})
    return (f"app-simulated {basis_path.provenance.get('sequence')} " + " ".join(
        f"{k.removesuffix('_s').replace('echo_time', 'TE').replace('mixing_time', 'TM')} "
        f"{v * 1e3:g} ms" for k, v in timings.items() if isinstance(v, float))
        + " (LCModel gets it as .BASIS)")


def relative_difference(row: dict, name: str) -> float:
    app, lcm = row["app"][name], row.get("lcm", {}).get(name, np.nan)
    return (app - lcm) / lcm if lcm and np.isfinite(lcm) and lcm > 0 else np.nan


def print_table(rows: list) -> None:
    head = f"{'dataset':22s} " + " ".join(f"{r + '/tCr app|LCM':>20s}" for r in RATIOS)
    print(head + f" {'res/noise app|LCM':>18s} {'QC':>5s} {'stiffness':>9s}  at bounds")
    for row in rows:
        cells = " ".join(f"{row['app'][r]:9.3f}|{row.get('lcm', {}).get(r, np.nan):<10.3f}"
                         for r in RATIOS)
        print(f"{row['dataset']:22s} {cells} {row['app_res']:8.2f}|{row.get('lcm_res', np.nan):<9.2f}"
              f" {row['qc']:>5s} {row['stiffness']:9.4g}  {','.join(row['at_bounds']) or '-'}"
              + (f"  [{row['orientation']}]" if row["orientation"] != "as_is" else "")
              + (f"  basis: {row['basis']}" if row["basis"].startswith("app-") else ""))


def summarise(rows: list, label: str) -> None:
    if not rows:
        return
    print(f"\n{label} ({len(rows)} spectra): median |app - LCModel| / LCModel")
    for name in RATIOS:
        diffs = np.array([relative_difference(r, name) for r in rows])
        target = TARGETS.get(name)
        median = float(np.nanmedian(np.abs(diffs))) if np.any(np.isfinite(diffs)) else np.nan
        verdict = "" if target is None else ("  meets" if median <= target else "  MISSES") + \
            f" target {target:.0%}"
        crlb = np.array([r["app_crlb_pct"][name] / 100 for r in rows])
        # |app - LCModel| in units of the app's CRLB of the same ratio (absolute, not relative
        # to LCModel's value as ``diffs`` is)
        in_crlb = np.array([abs(r["app"][name] - r.get("lcm", {}).get(name, np.nan))
                            / (r["app"][name] * c) for r, c in zip(rows, crlb)])
        in_crlb = float(np.nanmedian(in_crlb)) if np.any(np.isfinite(in_crlb)) else np.nan
        print(f"  {name + '/tCr':9s} {median:7.1%}   (median signed {np.nanmedian(diffs):+.1%}; "
              f"median |diff| / app CRLB {in_crlb:.2f}, app CRLB median {np.nanmedian(crlb):.1%})"
              f"{verdict}")


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SOURCES), help="comma-separated sources")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--set", action="append", default=[],
                        help="override a [fitting] key, e.g. --set ppm_range=[0.2,4.0]")
    parser.add_argument("--lcmodel-basis", choices=("whole", "as-app"), default="whole",
                        help="LCModel's basis: whole (default) or without the residual-water "
                             "window's lines, as the app fits")
    parser.add_argument("--residual-water-window", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="ppm window of the residual-water removal ([preprocessing] "
                             "residual_water_window_ppm; the app's fit takes its lines out of "
                             "the basis as the app does), e.g. 4.25 5.5")
    parser.add_argument("--lipids", action="store_true",
                        help="add the app's lipid components to the basis ([macromolecules] "
                             "lipids = true, the app's default); both programs get them")
    parser.add_argument("--lcmodel-mm", choices=("same", "own"), default="same",
                        help="LCModel's MM: the app's entries with nsimul = 0 (default) or, "
                             "where the app's MM is parametric, LCModel's own MM/lipid "
                             "simulation (its default nsimul) instead")
    args = parser.parse_args(argv)
    table = default_fit_table()
    global WATER_WINDOW_PPM  # prepare() reads it; reset on every call, not left from the last
    WATER_WINDOW_PPM = tuple(args.residual_water_window or RESIDUAL_WATER_WINDOW_PPM)
    if args.residual_water_window:
        table["water_removed_ppm"] = list(WATER_WINDOW_PPM)
    for item in args.set:
        key, value = item.split("=", 1)
        table[key] = tomllib.loads(f"v = {value}")["v"]
    if not lcmodel_available():
        print("LCModel binary not found (LCMODEL_BINARY); app column only")
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="bench_real_lcm_"))
    for source in args.only.split(","):
        for item in SOURCES[source]():
            rows.append(run_one(*item, table, workdir, args.lcmodel_basis, args.lipids,
                                args.lcmodel_mm))
            print_table(rows[-1:])
            sys.stdout.flush()
    print("\n=== all ===")
    print_table(rows)
    summarise(rows, "all datasets")
    summarise([r for r in rows if r["dataset"].startswith("challenge")], "challenge 1-28")
    summarise([r for r in rows if not r["dataset"].startswith(("challenge", "cmrr"))],
              "in-vivo")
    summarise([r for r in rows if r["dataset"].startswith("cmrr")],
              "CMRR STEAM TE 4-6 ms (same spectra with 2-3 bases)")
    if args.json:
        import json
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return rows


if __name__ == "__main__":
    main()
