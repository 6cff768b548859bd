"""The built-in demo dataset: a small, valid MRS-BIDS dMRS dataset with its ground truth.

``write_demo_dataset(out_dir)`` simulates, for each participant, a diffusion-weighted ``svs``
acquisition and its unsuppressed water ``mrsref`` (linked by ``ReferenceSignal``) with
``pipeline.simulate.synthetic``, from a basis made by the project's own density-matrix
simulation (``pipeline.simulate.basis_simulation.simulate_basis``, cached on disk), and writes
the ground truth as a BIDS derivative in ``out_dir/derivatives/truth``.

Participants cycle through two designs (b in ms/um^2 below; files state s/mm^2):

* ``3T``: PRESS TE 80 ms, 123.2 MHz, 2000 Hz, b = 0-25 (trace-weighted, no direction), 1 coil;
* ``7T``: STEAM TE 45 ms / TM 60 ms, 298.06 MHz, 3000 Hz (like the pregame data), b = 0 then
  four b-values along three directions, 4 coils with correlated noise.

Truth diffusion (published ranges, apparent ADC at low b ~0.13-0.17 um^2/ms): NAA/NAAG sticks
(D_intra 0.50), Glu/Gln/GABA/GSH/Asp sticks (0.45), tCho sticks (0.40), Cr/PCr bi-exponential,
Ins/sIns cylinders (radius 4 um), others mono-exponential (0.15), MM mono-exponential (0.008),
water bi-exponential. ``small=True`` keeps it fast for CI (fewer metabolites, b-values,
transients and points).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .convert import sampling_sidecar
from pipeline import __version__
from pipeline.io.json_values import write_json
from pipeline.simulate.basis_simulation import simulate_basis
from pipeline.simulate.synthetic import SyntheticResult, SyntheticSpec, simulate_acquisition
from pipeline.units import b_ms_um2_to_s_mm2

DEMO_NAME = "dmrs-bids demo: synthetic dMRS with ground truth"
BIDS_VERSION = "1.10.0"
REPETITION_TIME_S = 3.0
MM_AMPLITUDE = 4.0
"""Scale of each parametric MM component (``parametric_mm_basis`` gives FID[0] = protons x
exp(-TE/T2_MM)): makes MM09 ~15 % of the NAA peak at 7 T TE 45 ms, as in short-TE brain spectra."""

CONCENTRATIONS_MM = {
    "NAA": 11.0, "NAAG": 1.5, "Cr": 7.0, "PCr": 4.0, "GPC": 1.5, "PCh": 1.0, "Ins": 6.0,
    "sIns": 0.3, "Glu": 10.0, "Gln": 3.0, "GABA": 1.5, "GSH": 2.0, "Tau": 1.5, "Lac": 0.8,
    "Ala": 0.5, "Asp": 2.0, "Glc": 1.0, "PE": 1.5, "Asc": 1.0,
}
"""Typical healthy-brain concentrations (mM), within published ranges (e.g. de Graaf, In vivo
NMR spectroscopy, 3rd ed., table 2.1)."""

SMALL_METABOLITES = ["NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "Ins", "sIns", "Glu", "Gln",
                     "GSH", "Tau"]
"""Metabolites of the ``small`` demo (keeps basis simulation and fitting quick)."""


def _sticks(d_intra):
    return {"model": "sticks", "params": {"d_intra": d_intra}}


def demo_diffusion(small_delta_ms: float, big_delta_ms: float) -> dict:
    """Truth diffusion model per metabolite (D in um^2/ms, radius in um, timings in ms)."""
    cylinders = {"model": "cylinders", "params": {
        "d_intra": 0.45, "radius_um": 4.0, "small_delta_ms": small_delta_ms,
        "big_delta_ms": big_delta_ms}}
    creatine = {"model": "biexponential",
                "params": {"fraction_fast": 0.75, "d_fast": 0.2, "d_slow": 0.04}}
    return {"NAA": _sticks(0.50), "NAAG": _sticks(0.50), "Glu": _sticks(0.45),
            "Gln": _sticks(0.45), "GABA": _sticks(0.45), "GSH": _sticks(0.45),
            "Asp": _sticks(0.45), "GPC": _sticks(0.40), "PCh": _sticks(0.40),
            "Cr": creatine, "PCr": creatine, "Ins": cylinders, "sIns": cylinders}


@dataclass
class DemoDesign:
    """Acquisition design of one demo participant (times in s, b in ms/um^2)."""

    label: str
    sequence: str
    pulse_sequence_type: str
    field_t: float
    cf_mhz: float
    spectral_width_hz: float
    echo_time_s: float
    mixing_time_s: float | None
    small_delta_s: float
    big_delta_s: float
    b_values_ms_um2: list
    directions: list | None
    n_coils: int
    snr: float
    t2_s: dict
    default_t2_s: float
    n_points: int = 1024
    coil_noise_correlation: float = 0.3
    extra_sidecar: dict = field(default_factory=dict)


def _conditions(b_shells_ms_um2: list, directions: list | None):
    """b = 0 first, then every shell along every direction (or one trace-weighted condition)."""
    if directions is None:
        return [0.0] + list(b_shells_ms_um2), None
    b = [0.0] + [s for s in b_shells_ms_um2 for _ in directions]
    return b, [None] + [d for _ in b_shells_ms_um2 for d in directions]


def demo_designs(small: bool) -> list[DemoDesign]:
    """The two participant designs (3 T PRESS, 7 T STEAM)."""
    shells_3t = [1, 3, 6, 10, 20] if small else [1, 2, 3, 6, 10, 15, 20, 25]
    shells_7t = [2, 6, 12, 20] if small else [1, 3, 6, 10, 15, 20]
    pregame_directions = [[1, 1, -0.5], [1, -0.5, 1], [-0.5, 1, 1]]
    b_3t, dirs_3t = _conditions(shells_3t, None)
    b_7t, dirs_7t = _conditions(shells_7t, pregame_directions)
    return [
        DemoDesign("3T", "press", "PRESS", 3.0, 123.2, 2000.0, 0.080, None, 0.012, 0.040,
                   b_3t, dirs_3t, n_coils=1, snr=40.0, default_t2_s=0.20,
                   t2_s={"NAA": 0.25, "Cr": 0.15, "PCr": 0.15, "GPC": 0.22, "PCh": 0.22},
                   n_points=1024 if small else 2048),
        DemoDesign("7T", "steam", "STEAM", 7.0, 298.06, 3000.0, 0.045, 0.060, 0.015, 0.084,
                   b_7t, dirs_7t, n_coils=4, snr=60.0, default_t2_s=0.12,
                   t2_s={"NAA": 0.15, "Cr": 0.11, "PCr": 0.11, "GPC": 0.15, "PCh": 0.15}),
    ]


def demo_water_mm(design: DemoDesign) -> float:
    """The demo's water reference signal as a water concentration (mM) attenuated by relaxation:
    a voxel of 60 % grey and 40 % white matter with their literature water contents and water
    T1/T2 at the design's field, at its echo time and TR 3 s (sum over the tissues of fraction x
    content x 55510 mM x exp(-TE/T2) (1 - exp(-TR/T1))). So the app's default water scaling
    (which assumes such a voxel) reports the truth's b = 0 amplitudes, the metabolite
    concentrations attenuated by their own T2 (before 2026-12-07 the demo's water was 35880 mM
    with a T2 of 110 ms at both fields, and the 7 T demo read 5.4 mM tNAA for 9.3)."""
    import math

    from pipeline.fitting.quantification import (DEFAULT_TISSUE_FRACTIONS, PURE_WATER_MM,
                                                 WATER_CONTENT, water_relaxation_for_field)

    t1_s, t2_s, _ = water_relaxation_for_field(design.field_t)
    return PURE_WATER_MM * sum(
        fraction * WATER_CONTENT[tissue] * math.exp(-design.echo_time_s / t2_s[tissue])
        * (1.0 - math.exp(-REPETITION_TIME_S / t1_s[tissue]))
        for tissue, fraction in DEFAULT_TISSUE_FRACTIONS.items() if fraction > 0)


def demo_spec(design: DemoDesign, metabolites: list[str], seed: int, small: bool) -> SyntheticSpec:
    """The ground-truth spec of one demo acquisition."""
    diffusion = demo_diffusion(design.small_delta_s * 1e3, design.big_delta_s * 1e3)
    return SyntheticSpec.from_dict(dict(
        concentrations_mm={m: CONCENTRATIONS_MM[m] for m in metabolites},
        b_values_s_mm2=[float(b) for b in b_ms_um2_to_s_mm2(design.b_values_ms_um2)],
        directions=design.directions, n_transients=8 if small else 16,
        echo_time_s=design.echo_time_s, t2_s=design.t2_s, default_t2_s=design.default_t2_s,
        diffusion={m: d for m, d in diffusion.items() if m in metabolites},
        default_diffusion={"model": "monoexponential", "params": {"adc": 0.15}},
        mm_source="parametric", mm_amplitude=MM_AMPLITUDE, mm_adc_um2_ms=0.008,
        lorentzian_fwhm_hz=2.0 * design.field_t / 3.0, gaussian_fwhm_hz=2.0 * design.field_t,
        residual_water_amplitude=100.0, residual_water_offset_hz=6.0,
        residual_water_fwhm_hz=8.0,
        freq_walk_hz=0.1 * design.field_t / 3.0, freq_jitter_hz=0.5,
        phase_walk_deg=1.0, phase_jitter_deg=4.0,
        snr=design.snr, n_coils=design.n_coils,
        coil_noise_correlation=design.coil_noise_correlation,
        eddy_amplitudes_rad=[0.6, 0.25], eddy_time_constants_s=[0.008, 0.05],
        outlier_fraction=0.05, water_n_transients=4, seed=seed,
        water_concentration_mm=demo_water_mm(design), water_t2_s=None,
        metadata=header_metadata(design, seed)))


def header_metadata(design: DemoDesign, seed: int) -> dict:
    """NIfTI-MRS header keys of a demo acquisition (standard-defined names, times in s)."""
    meta = {"RepetitionTime": REPETITION_TIME_S, "Manufacturer": "dmrs-bids simulation",
            "ConversionMethod": f"dmrs-bids-simulate (pipeline.simulate.synthetic, seed {seed})"}
    if design.mixing_time_s is not None:
        meta["MixingTime"] = design.mixing_time_s
    return meta


def demo_basis(design: DemoDesign, metabolites: list[str], cache_dir: str | None):
    """The project's simulated basis for a design, plus ``H2O`` for the water reference (same
    sequence scaling as the metabolites); cached on disk by ``simulate_basis``."""
    from .config import load_default_config

    # PRESS: the slice-selective refocusing the app's basis assumes by default, so the demo
    # stays fitted by the very model that made it
    bandwidth = load_default_config()["basis"]["press_refocus_bandwidth_hz"] \
        if design.sequence == "press" else 0.0
    return simulate_basis(design.sequence, design.cf_mhz, 1.0 / design.spectral_width_hz,
                          design.n_points, echo_time_s=design.echo_time_s,
                          mixing_time_s=design.mixing_time_s,
                          metabolites=list(metabolites) + ["H2O"], cache_dir=cache_dir,
                          refocus_bandwidth_hz=bandwidth)


def _stem(participant: str, design: DemoDesign) -> str:
    return f"sub-{participant}_acq-dw{design.sequence}"


def mrs_sidecar(design: DemoDesign, result: SyntheticResult, water: bool) -> dict:
    """BIDS sidecar of the metabolite (``water=False``) or water reference acquisition."""
    acq = result.water if water else result.metabolite
    sidecar = {
        "Manufacturer": "dmrs-bids simulation",
        "MagneticFieldStrength": design.field_t,
        "PulseSequenceType": design.pulse_sequence_type,
        "ScanningSequence": "SVS",
        "SequenceName": f"simulated DW-{design.pulse_sequence_type}",
        "SoftwareVersions": f"dmrs-bids {__version__}",
        "PulseSequenceDetails": "dmrs-bids-simulate: density-matrix basis, synthetic dMRS",
        "FlipAngle": 90,
        "ReceiveCoilName": f"simulated {acq.n_coils}-channel receive array",
        **sampling_sidecar(acq),
        "EchoTime": design.echo_time_s,
        "RepetitionTime": REPETITION_TIME_S,
        "WaterSuppression": not water,
        "AcquisitionVoxelSize": [20, 20, 20],
        "DiffusionBValueUnits": "s/mm2",
        "DiffusionGradientDuration": design.small_delta_s,
        "DiffusionGradientSeparation": design.big_delta_s,
        "DiffusionTime": design.big_delta_s - design.small_delta_s / 3.0,
        **design.extra_sidecar,
    }
    if design.mixing_time_s is not None:
        sidecar["MixingTime"] = design.mixing_time_s
    return sidecar


def _truth_rows(truth: dict) -> list[dict]:
    """Rows (condition, b_value_s_mm2, direction, metabolite, amplitude, decay) of the truth."""
    rows = []
    for name, amplitudes in truth["amplitudes"].items():
        for c, amplitude in enumerate(amplitudes):
            direction = truth["directions"][c]
            rows.append({"condition": c, "b_value_s_mm2": truth["b_values_s_mm2"][c],
                         "direction": "n/a" if direction is None else
                         ",".join(f"{v:.6g}" for v in direction),
                         "metabolite": name, "amplitude": f"{amplitude:.10g}",
                         "decay": f"{truth['decays'][name][c]:.10g}"})
    return rows


def _write_tsv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_participant(out_dir: Path, participant: str, design: DemoDesign,
                      result: SyntheticResult) -> dict:
    """Write one participant's svs, mrsref, sidecars and truth files; returns their paths."""
    from pipeline.io.nifti_mrs import write_nifti_mrs

    stem = _stem(participant, design)
    mrs_dir = out_dir / f"sub-{participant}" / "mrs"
    water_path = mrs_dir / f"{stem}_mrsref.nii.gz"
    svs_path = mrs_dir / f"{stem}_svs.nii.gz"
    write_nifti_mrs(result.water, water_path)
    write_nifti_mrs(result.metabolite, svs_path)
    write_json(water_path.with_name(f"{stem}_mrsref.json"), mrs_sidecar(design, result, True))
    sidecar = mrs_sidecar(design, result, False)
    sidecar["ReferenceSignal"] = f"bids::{water_path.relative_to(out_dir).as_posix()}"
    write_json(svs_path.with_name(f"{stem}_svs.json"), sidecar)
    truth_dir = out_dir / "derivatives" / "truth" / f"sub-{participant}" / "mrs"
    truth_json = truth_dir / f"{stem}_desc-truth_svs.json"
    write_json(truth_json, {**result.truth, "Sources": [
        f"bids:raw:{svs_path.relative_to(out_dir).as_posix()}",
        f"bids:raw:{water_path.relative_to(out_dir).as_posix()}"]})
    truth_tsv = truth_dir / f"{stem}_desc-truth_amplitudes.tsv"
    _write_tsv(truth_tsv, _truth_rows(result.truth))
    return {"svs": svs_path, "mrsref": water_path, "truth": truth_json,
            "truth_amplitudes": truth_tsv}


def _write_dataset_files(out_dir: Path, participants: list[str], designs: list[DemoDesign],
                         seed: int, small: bool) -> None:
    """dataset_description, README, participants.tsv/json, and the truth derivative's files."""
    write_json(out_dir / "dataset_description.json", {
        "Name": DEMO_NAME, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw", "License": "CC0",
        "Authors": ["dmrs-bids developers", "dmrs-bids-simulate (synthetic data)"],
        "GeneratedBy": [{"Name": "dmrs-bids-simulate", "Version": __version__,
                         "Description": f"seed {seed}, small={small}"}]})
    (out_dir / "README").write_text(
        f"{DEMO_NAME}.\n\nMade by `dmrs-bids-simulate` (seed {seed}). Every participant has a "
        "diffusion-weighted single-voxel acquisition (svs; conditions along DIM_USER_0 with "
        "b-values in s/mm^2 and unit directions in the NIfTI-MRS header) and an unsuppressed "
        "water reference (mrsref, linked by ReferenceSignal). The ground truth (amplitudes, "
        "decays, drifts, outliers, noise, coils) is in derivatives/truth.\n")
    (out_dir / "participants.tsv").write_text(
        "participant_id\tfield_strength_t\n"
        + "".join(f"sub-{p}\t{d.field_t:g}\n" for p, d in zip(participants, designs)))
    write_json(out_dir / "participants.json", {
        "field_strength_t": {"Description": "Simulated magnetic field strength",
                             "Units": "T"}})
    truth_root = out_dir / "derivatives" / "truth"
    write_json(truth_root / "dataset_description.json", {
        "Name": "Ground truth of the dmrs-bids demo dataset", "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "dmrs-bids-simulate", "Version": __version__}],
        "SourceDatasets": [{"URL": "bids::"}]})
    (truth_root / "README").write_text(
        "Per acquisition: *_desc-truth_svs.json (the full truth of "
        "pipeline.simulate.synthetic, with the spec it came from and the SNR definition) and "
        "*_desc-truth_amplitudes.tsv (true amplitudes on the basis scale and decays S(b)/S(0) "
        "per condition, metabolite and sum tNAA, tCr, tCho, Glx).\n"
        "The amplitude at b = 0 is the metabolite concentration (mM) times exp(-TE/T2) of that "
        "metabolite (T2 in the spec), and the water reference is the signal of a voxel of 60 % "
        "grey and 40 % white matter with literature water content and water T1/T2 at the "
        "design's field (TR 3 s; water_reference.concentration_mm is that signal as an "
        "attenuated water concentration). So dmrs-bids' concentration_mm at the lowest b, "
        "with its default quantification (that voxel, no metabolite relaxation correction), "
        "compares with the b = 0 amplitude here; the concentrations themselves are in "
        "concentrations_mm of *_desc-truth_svs.json.\n")


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``; then clear what the demo writes."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise ValueError(f"{out_dir}: directory is not empty; pass --overwrite to replace "
                             "the demo dataset in it")
        for old in list(out_dir.glob("sub-*")) + [out_dir / "derivatives" / "truth"]:
            if old.is_dir():
                shutil.rmtree(old)
    out_dir.mkdir(parents=True, exist_ok=True)


def write_demo_dataset(out_dir, participants: int = 2, seed: int = 0, small: bool = False,
                       overwrite: bool = False, cache_dir: str | None = None) -> dict:
    """Write the demo MRS-BIDS dataset to ``out_dir``; returns {participant: written paths}.

    Participant ``i`` (1-based) uses design ``(i - 1) % 2`` and seed ``seed * 1000 + i``.
    With ``overwrite``, existing ``sub-*`` folders and ``derivatives/truth`` are removed first.
    """
    if participants < 1:
        raise ValueError(f"{out_dir}: need at least one participant, got {participants}")
    if seed < 0:
        raise ValueError(f"{out_dir}: the seed must be a non-negative integer, got {seed}")
    out_dir = Path(out_dir)
    _prepare_output(out_dir, overwrite)
    designs = demo_designs(small)
    chosen = [designs[i % len(designs)] for i in range(participants)]
    labels = [f"{i + 1:02d}" for i in range(participants)]
    written, bases = {}, {}
    for index, (label, design) in enumerate(zip(labels, chosen), start=1):
        metabolites = SMALL_METABOLITES if small else list(CONCENTRATIONS_MM)
        if design.label not in bases:
            bases[design.label] = demo_basis(design, metabolites, cache_dir)
        spec = demo_spec(design, metabolites, seed * 1000 + index, small)
        result = simulate_acquisition(bases[design.label], spec)
        written[label] = write_participant(out_dir, label, design, result)
    _write_dataset_files(out_dir, labels, chosen, seed, small)
    return written
