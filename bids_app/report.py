"""Participant and group HTML reports, built from the derivatives on disk.

``OUT/sub-<label>.html`` is one self-contained file: CSS and SVG figures inline, no scripts,
fonts or links leaving the machine. It opens with the QC flags (each links to the section
showing the evidence), then per acquisition: acquisition table, transients before/after
alignment, drift, fits per condition, diffusion decays with model curves, parameter tables,
methods with references, provenance. The same figures are written as SVG under
``OUT/sub-<label>/figures/``. ``OUT/group.html`` shows distributions across participants.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from pipeline.fitting.fit_display import (DISPLAY_ROWS, fit_display_array,  # noqa: F401
                                          fit_display_text, load_fit_display)
from pipeline.io.files import to_float
from pipeline.metabolites import SUM_NAMES
from pipeline.qc.transients import before_after, table_value  # noqa: F401  (figures use it)

from . import derivatives as d
from . import figures as fig
from .derivatives import FIT_DISPLAY_SUFFIX, fit_display_path  # noqa: F401
from .report_tables import amplitude_table, diffusion_tables, other_amplitudes_label

SUMS = SUM_NAMES
ACQUISITION_KINDS = ("preproc", "fit", "transients", "amplitudes", "diffusion", "qc")
TEMPLATES = Path(__file__).with_name("templates")
FIGURES = ("fit", "drift", "transients", "decay")
"""Figures the workflow draws per acquisition, in parallel with the processing (the
transients and drift as soon as preprocessing is done, beside the spectral fit; the fit
beside diffusion modelling; the decays beside the other figures). The report draws those
missing, from the derivatives and the input dataset only, so that a report rebuild gives
the same files."""
REPORT_FIGURES = FIGURES + ("residualwater",)
"""Every figure of an acquisition: the workflow's and the residual-water figure, which the
report draws because it shows the QC limits of the run (in ``_qc.json``)."""

DECAY_MODELS = ("monoexponential", "kurtosis", "biexponential", "sticks", "cylinders",
                "stick_sphere")
MAIN_DECAY_METABOLITES = SUMS + ("Ins", "NAA", "Cr", "Tau")
ACQUISITION_KEYS = (
    ("SpectrometerFrequency", "spectrometer frequency (MHz)"),
    ("ResonantNucleus", "nucleus"), ("MagneticFieldStrength", "field (T)"),
    ("PulseSequenceType", "sequence"), ("SequenceName", "sequence name"),
    ("EchoTime", "echo time (s)"), ("MixingTime", "mixing time (s)"),
    ("RepetitionTime", "repetition time (s)"),
    ("DiffusionGradientDuration", "gradient duration δ (s)"),
    ("DiffusionGradientSeparation", "gradient separation Δ (s)"),
    ("DiffusionTime", "diffusion time t_d (s)"),
    ("Manufacturer", "manufacturer"), ("ManufacturersModelName", "scanner model"),
    ("AnatomicalLandmark", "voxel location"), ("VoxelVolume", "voxel volume"),
    ("WaterSuppression", "water suppression"), ("ReferenceSignal", "water reference"),
)


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    env.filters["fmt"] = fmt
    return env


def fmt(value, digits: int = 4) -> str:
    """Table cell: ``n/a`` for missing/NaN, ``digits`` significant figures for numbers."""
    if value is None or value == "" or value == "n/a":
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "n/a"
    if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.isdigit()):
        return str(int(number))
    return f"{number:.{digits}g}"


def write_svg(path: Path, svg: str) -> Path:
    """Write a figure unless the file already holds the same text (keeps mtimes stable)."""
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == svg:
        return path
    return d.atomic_write_text(path, svg)


# --- data of one acquisition -----------------------------------------------------------------

def _read_config(entry: dict) -> tuple[dict, str]:
    """The configuration that ran (``<stem>_config.toml`` beside the QC file), and its text."""
    path = entry.get("config") or Path(entry["qc"]).with_name(f"{entry['stem']}_config.toml")
    if not Path(path).is_file():
        return {}, ""
    from .config import read_toml

    return read_toml(path), Path(path).read_text(encoding="utf-8")


def resolve_source(source, output_dir=None) -> Path | None:
    """The input file recorded at conversion: an absolute path, or a ``bids::`` URI resolved
    against the input dataset named in ``OUT/dataset_description.json`` (SourceDatasets);
    None when it cannot be found."""
    if not source:
        return None
    if str(source).startswith("bids::"):
        roots = []
        if output_dir is not None:
            description = Path(output_dir) / "dataset_description.json"
            if description.is_file():
                for item in json.loads(description.read_text()).get("SourceDatasets", []):
                    url = urlparse(str(item.get("URL", "")) if isinstance(item, dict) else "")
                    if url.scheme in ("", "file") and url.path:
                        roots.append(Path(unquote(url.path)))
        candidates = [root / str(source)[len("bids::"):] for root in roots]
    else:
        candidates = [Path(source)]
    return next((c for c in candidates if c.is_file()), None)


def read_transients(path, n_conditions: int):
    """Transients (``Acquisition``) of the raw input or the coil-combined file, or None when
    unreadable or not matching the ``n_conditions`` of the derivatives."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    if path is None or not Path(path).is_file():
        return None
    try:
        acq = read_nifti_mrs(path)
    except (OSError, ValueError):
        return None
    return acq if acq.n_conditions == n_conditions else None


def load_acquisition(entry: dict, output_dir=None) -> dict:
    """Everything the report shows about one acquisition, read from its derivatives (and the
    raw input, for the stacked transients, when it can still be found)."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    qc = json.loads(Path(entry["qc"]).read_text())
    pre = read_nifti_mrs(entry["preproc"])
    config, config_text = _read_config(entry)
    return {
        "entry": entry, "stem": entry["stem"], "qc": qc, "preproc": pre,
        "fit": read_nifti_mrs(entry["fit"]),
        "amplitudes": d.read_tsv(entry["amplitudes"]),
        "diffusion": d.read_tsv(entry["diffusion"]),
        "transients": d.read_tsv(entry["transients"]),
        "raw": read_transients(resolve_source(
            qc.get("stages", {}).get("conversion.json", {}).get("source"),
            output_dir),
            pre.n_conditions),
        "config": config, "config_text": config_text,
    }


def condition_label(b_value, direction) -> str:
    text = f"b={to_float(b_value):.0f}"
    return text if direction in ("", "n/a", None) else f"{text} {direction}"


def _labels(pre) -> list[str]:
    out = []
    for b, g in zip(pre.b_values_s_mm2, pre.directions):
        direction = "n/a" if not np.all(np.isfinite(g)) else "[" + ",".join(
            f"{v:.2g}" for v in g) + "]"
        out.append(condition_label(b, direction))
    return out


# --- figures ---------------------------------------------------------------------------------

def display_phase(spectra: np.ndarray, ppm: np.ndarray, window_ppm=(1.9, 2.1)) -> complex:
    """Zero-order phase factor making the tallest peak of the mean spectrum in
    ``window_ppm`` (default tNAA) real and positive, for display."""
    mean = np.asarray(spectra).mean(axis=0)
    inside = np.flatnonzero((ppm >= min(window_ppm)) & (ppm <= max(window_ppm)))
    if inside.size == 0:
        inside = np.arange(ppm.size)
    peak = mean[inside[np.argmax(np.abs(mean[inside]))]]
    return complex(np.exp(-1j * np.angle(peak)))


def transients_svg(transients, transient_rows: list[dict], labels: list[str],
                   aligned: bool = False) -> str | None:
    """Stacked transients of each condition before/after alignment (see
    :func:`before_after`); None when they are unavailable or do not match."""
    from pipeline.preprocess.average import acquired
    from pipeline.spectra import fid_to_spectrum

    arrays = before_after(transients, transient_rows, aligned)
    if arrays is None:
        return None
    ppm = transients.ppm()
    conditions = []
    for label, before, after, rejected in zip(labels, *arrays):
        taken = acquired(before)  # exactly-zero transients: not acquired, not outliers
        before, after = fid_to_spectrum(before), fid_to_spectrum(after)
        phase = display_phase(after[~rejected] if (~rejected).any() else after, ppm)
        conditions.append({"label": label, "before": before * phase, "after": after * phase,
                           "rejected": rejected & taken, "acquired": taken})
    return fig.transients_figure(ppm, conditions)


def transients_to_align(transient_rows: list[dict]) -> bool:
    """Some condition has two or more transients (data averaged at the scanner, e.g. a
    Philips SDAT, has one per condition: no alignment, no drift to show)."""
    counts: dict = {}
    for row in transient_rows:
        counts[row["condition"]] = counts.get(row["condition"], 0) + 1
    return any(n >= 2 for n in counts.values())


def drift_svg(transient_rows: list[dict], labels: list[str]) -> str | None:
    """The drift figure, or None when there are no transients to align; transients not
    acquired (exactly zero) have no drift and are not drawn."""
    if not transients_to_align(transient_rows):
        return None
    column = {k: np.array([table_value(r, k) for r in transient_rows])
              for k in ("condition", "freq_shift_hz", "phase_shift_deg", "rejected", "acquired")}
    taken = column["acquired"] > 0
    shown = {k: np.where(taken, column[k], np.nan) for k in ("freq_shift_hz", "phase_shift_deg")}
    return fig.drift_figure(shown["freq_shift_hz"], shown["phase_shift_deg"],
                            (column["rejected"] > 0) & taken, column["condition"].astype(int),
                            dict(enumerate(labels)))


def residual_water_svg(pre, labels: list[str], limits: dict | None = None) -> str | None:
    """Evidence for the residual-water flag: each condition's mean preprocessed spectrum as
    magnitude over its tNAA height around the window the metric reads
    (:func:`~pipeline.qc.metrics.residual_water_profile`), with the flag's ``limits``; None
    when no condition has a tNAA peak."""
    from pipeline.qc.metrics import RESIDUAL_WATER_PPM, residual_water_profile

    profiles, ppm = [], None
    for fid, label in zip(pre.fids.mean(axis=(1, 2)), labels):
        found = residual_water_profile(fid, pre.dwell_s, pre.cf_mhz)
        if found is not None:
            ppm, ratio = found
            profiles.append({"label": label, "ratio": ratio})
    return fig.residual_water_figure(ppm, profiles, RESIDUAL_WATER_PPM, limits) \
        if profiles else None


def flag_limits(flags: list[dict], metric: str) -> dict:
    """The warning and fail limits a metric was judged against ({} when not stored)."""
    flag = next((f for f in flags if f.get("metric") == metric), {})
    return {"warn": flag.get("warn_limit"), "fail": flag.get("fail_limit")}


def fit_svg(pre, fit, labels: list[str], display: dict | None = None,
            ppm_range=fig.PPM_RANGE) -> str:
    """Fit per condition from the preprocessed and fitted spectra; baseline and component
    spectra come from ``display`` (condition -> {"baseline", "components"}) when saved."""
    from pipeline.spectra import fid_to_spectrum

    data = fid_to_spectrum(pre.fids.mean(axis=(1, 2)))
    model = fid_to_spectrum(fit.fids.mean(axis=(1, 2)))
    phase = [np.exp(-1j * np.angle(np.vdot(m, dd))) if np.any(m) else 1.0
             for m, dd in zip(model, data)]
    display = display or {}
    panels = []
    for c, label in enumerate(labels):
        extra = display.get(c, {})
        baseline = extra.get("baseline")
        panels.append({"label": label, "data": data[c] / phase[c], "fit": model[c] / phase[c],
                       "baseline": None if baseline is None else baseline / phase[c],
                       "components": {n: v / phase[c]
                                      for n, v in extra.get("components", {}).items()}})
    return fig.fit_figure(pre.ppm(), panels, ppm_range)


def entry_fit_display(entry: dict) -> Path | None:
    """The fit-display file of a derivatives entry: listed by the workflow, or (for a report
    rebuild, whose entries list only the contract outputs) found beside the fit file."""
    path = Path(entry.get("fit_display") or fit_display_path(entry["fit"], entry["stem"]))
    return path if path.is_file() else None


def save_fit_display(fits, path) -> Path:
    """Write :func:`fit_display_text` atomically at ``path``."""
    return d.atomic_write_text(Path(path), fit_display_text(fits))


def decay_panels(amplitude_rows: list[dict], diffusion_rows: list[dict],
                 metabolites=MAIN_DECAY_METABOLITES, models=DECAY_MODELS,
                 timing: dict | None = None) -> list[dict]:
    """Per metabolite: S/S0 against b with CRLB error bars and the fitted models' curves.

    The data are normalised to the mean at the lowest b. Each model curve is drawn over the
    b-range the model was fitted on (mono-exponential and kurtosis stop at their
    ``b_max_ms_um2``: beyond it they do not describe the decay) and scaled by the
    least-squares S0 for the points in that range, as the models were fitted with a free S0.
    ``timing``: gradient duration and separation in ms (``small_delta_ms``,
    ``big_delta_ms``; :func:`pipeline.diffusion.table.gradient_timing_ms`), without which the
    timed models (cylinders, stick-sphere) get no curve.
    """
    from pipeline.units import b_s_mm2_to_ms_um2

    panels = []
    for name in metabolites:
        rows = [r for r in amplitude_rows if r["metabolite"] == name]
        if not rows:
            continue
        b = np.array([to_float(r["b_value"]) for r in rows])
        a = np.array([to_float(r["amplitude"]) for r in rows])
        e = np.array([to_float(r["crlb"]) for r in rows])
        ref = float(np.nanmean(a[b == b.min()]))
        if not ref > 0:
            continue
        b_ms = b_s_mm2_to_ms_um2(b)
        curves = {}
        for model in models:
            fitted = _fitted_model(model, name, diffusion_rows, timing)
            used = fitted[0].in_b_range(b_ms) if fitted else np.zeros(b.shape, bool)
            if not used.any():
                continue
            m, theta = fitted
            at_b = m.predict(b_ms[used], theta)
            s0 = float(np.dot(at_b, a[used]) / np.dot(at_b, at_b)) / ref
            b_curve = np.linspace(0.0, b[used].max(), 80)
            curves[model] = (b_curve, s0 * m.predict(b_s_mm2_to_ms_um2(b_curve), theta))
        panels.append({"name": name, "b_s_mm2": b, "signal": a / ref, "error": e / ref,
                       "curves": curves})
    return panels


def _fitted_model(model: str, metabolite: str, diffusion_rows: list[dict],
                  timing: dict | None):
    """(model instance, fitted parameters) of an applicable fit of ``model`` to
    ``metabolite`` in the diffusion table, or None (not fitted, not applicable, a parameter
    not finite, or a timed model without ``timing``)."""
    from pipeline.diffusion import make_model
    from pipeline.diffusion.table import TIMED_MODELS

    params = {r["parameter"]: to_float(r["value"]) for r in diffusion_rows
              if r["metabolite"] == metabolite and r["model"] == model
              and r.get("applicable") in ("1", 1, True, "True")}
    if not params:
        return None
    options = {}
    if model in TIMED_MODELS:
        options = {k: (timing or {}).get(k) for k in ("small_delta_ms", "big_delta_ms")}
        if None in options.values():
            return None
    try:
        m = make_model(model, **options)
    except (ValueError, TypeError):
        return None
    if not all(math.isfinite(params.get(p, math.nan)) for p in m.parameter_names):
        return None
    return m, [params[p] for p in m.parameter_names]


def decay_svg(amplitude_rows: list[dict], diffusion_rows: list[dict],
              n_conditions: int, metadata: dict | None = None) -> str | None:
    """The decays with the models' curves, or None without several conditions or a decay.
    ``metadata``: the acquisition's, for the gradient timing of the timed models."""
    from pipeline.diffusion.table import gradient_timing_ms

    panels = decay_panels(amplitude_rows, diffusion_rows, timing=gradient_timing_ms(metadata))
    return fig.decay_figure(panels) if panels and n_conditions > 1 else None


def figure_or_note(name: str, draw, notes: list):
    """``draw()`` (an SVG text or None); when drawing raises, None and a note in ``notes``
    naming the figure and the error. A figure must never cost a participant its results: the
    tables are written before, and the report says which figure is missing and why (before
    2026-12-07 a figure fault failed the whole participant)."""
    try:
        return draw()
    except Exception as exc:  # any drawing fault; the numbers do not depend on it
        notes.append(f"the {name} figure could not be drawn ({type(exc).__name__}: {exc}); "
                     "the tables are not affected")
        return None


def acquisition_figures(data: dict, figures_dir: Path, notes: list | None = None) -> dict:
    """Every figure of one acquisition as SVG text (also written under ``figures_dir``);
    those the workflow drew (``entry["figures"]``, or for a report rebuild the files already
    in ``figures_dir``) are read, not redrawn: they had the work-directory inputs. A figure
    that cannot be drawn is None, with a note in ``notes`` (:func:`figure_or_note`)."""
    notes = [] if notes is None else notes
    labels = _labels(data["preproc"])
    listed = data["entry"].get("figures") or {
        name: figures_dir / f"{data['stem']}_desc-{name}_fig.svg" for name in REPORT_FIGURES}
    drawn = {name: Path(path).read_text(encoding="utf-8")
             for name, path in listed.items() if name in REPORT_FIGURES and Path(path).is_file()}
    pre = data["preproc"]
    aligned = transients_to_align(data["transients"])
    draw = {"transients": lambda: transients_svg(data["raw"], data["transients"], labels)
            if aligned else None,
            "drift": lambda: drift_svg(data["transients"], labels) if aligned else None,
            "fit": lambda: fit_svg(pre, data["fit"], labels, load_fit_display(
                entry_fit_display(data["entry"]), pre.n_conditions, pre.n_points)),
            "decay": lambda: decay_svg(data["amplitudes"], data["diffusion"],
                                       pre.n_conditions, pre.metadata),
            "residualwater": lambda: residual_water_svg(pre, labels, flag_limits(
                acquisition_flags(data), "residual_water_ratio"))}
    svgs = {name: (drawn.get(name) if name in drawn and (aligned or name not in
                                                         ("transients", "drift"))
                   else figure_or_note(name, fn, notes))
            for name, fn in draw.items()}
    for name, svg in svgs.items():
        if svg and name not in drawn:
            write_svg(figures_dir / f"{data['stem']}_desc-{name}_fig.svg", svg)
    return svgs


def make_figures(preproc, fit, amplitudes_tsv, transients_tsv, paths: dict,
                 fit_display=None, raw=None, diffusion_tsv=None) -> dict:
    """The workflow's per-acquisition figures named in ``paths`` (of ``FIGURES``), written
    there; returns those drawn: no drift or transients figure without transients to align,
    no transients figure without the ``raw`` input (transients before alignment), no decay
    figure without a decay. ``fit``: the fitted spectra (needed for "fit"); ``fit_display``:
    optional :func:`save_fit_display` file (baseline, metabolite traces); ``amplitudes_tsv``
    and ``diffusion_tsv`` are needed for "decay"."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    unknown = set(paths) - set(FIGURES)
    if unknown:
        raise ValueError(f"figures: unknown figure names {sorted(unknown)}; known: {FIGURES}")
    pre = read_nifti_mrs(preproc)
    labels = _labels(pre)
    drawn, notes = {}, []  # a figure that fails is left to the report, which says why
    if "fit" in paths:
        if not fit:
            raise ValueError("figures: the fit figure needs the fitted spectra (in_fit)")
        display = load_fit_display(fit_display, pre.n_conditions, pre.n_points)
        drawn["fit"] = figure_or_note(
            "fit", lambda: fit_svg(pre, read_nifti_mrs(fit), labels, display), notes)
    rows = d.read_tsv(transients_tsv)
    if "drift" in paths:
        drawn["drift"] = figure_or_note("drift", lambda: drift_svg(rows, labels), notes)
    if "transients" in paths and transients_to_align(rows):
        drawn["transients"] = figure_or_note("transients", lambda: transients_svg(
            read_transients(raw, pre.n_conditions), rows, labels), notes)
    if "decay" in paths:
        if not (amplitudes_tsv and diffusion_tsv):
            raise ValueError("figures: the decay figure needs the amplitudes and the "
                             "diffusion models (in_amplitudes, in_diffusion)")
        drawn["decay"] = figure_or_note("decay", lambda: decay_svg(
            d.read_tsv(amplitudes_tsv), d.read_tsv(diffusion_tsv), pre.n_conditions,
            pre.metadata), notes)
    for name, svg in drawn.items():
        if svg:
            write_svg(Path(paths[name]), svg)
    return {name: paths[name] for name, svg in drawn.items() if svg}


# --- QC flags and tables ---------------------------------------------------------------------

def acquisition_flags(data: dict) -> list[dict]:
    """The flags stored in ``_qc.json`` (judged with the configured thresholds), or, for
    older derivatives, evaluated now from its summary with the default thresholds."""
    from pipeline.qc import flags as qcflags

    stored = data["qc"].get("flags")
    if stored and isinstance(stored, list) and isinstance(stored[0], dict):
        return stored
    flags = qcflags.evaluate(data["qc"].get("summary", {}), data["preproc"].cf_mhz)
    return [f.to_dict() for f in flags]


def _cell(value) -> str:
    """A sidecar value for a table: one-element lists unwrapped, lists joined, dicts as JSON."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return json.dumps(value) if isinstance(value, dict) else fmt(value, 6)


def acquisition_table(pre, raw) -> list[tuple[str, str]]:
    """Rows (label, value) from the sidecar/header, then the data dimensions."""
    meta = pre.metadata
    rows = [(label, _cell(meta[key])) for key, label in ACQUISITION_KEYS if key in meta]
    rows += [("conditions (b-values, s/mm²)",
              ", ".join(f"{b:.0f}" for b in pre.b_values_s_mm2)),
             ("spectral points", str(pre.n_points)),
             ("dwell time (s)", fmt(pre.dwell_s)),
             ("spectral width (Hz)", fmt(1.0 / pre.dwell_s))]
    if raw is not None:
        rows += [("transients per condition", str(raw.n_transients)),
                 ("receive coils", str(raw.n_coils))]
    return rows


def directional(pre) -> bool:
    """The diffusion-weighted conditions hold several gradient directions (up to sign, within
    the angle tolerance: chronogram tilts of one direction are one): the decay figure then
    draws one point per direction, while the models were fitted to their powder average."""
    from pipeline.diffusion.tensor import count_distinct_directions

    return count_distinct_directions(pre.directions, pre.b_values_s_mm2 / 1000.0) > 1


def _provenance(data: dict) -> dict:
    meta = data["preproc"].metadata
    steps = meta.get("ProcessingApplied") or []
    return {"steps": [s if isinstance(s, dict) else {"Method": str(s)} for s in steps],
            "config_text": data["config_text"],
            "warnings": data["qc"].get("warnings", [])}


def _methods(data_list: list[dict]) -> tuple[str, list[str]]:
    from .citation import REFERENCES, methods_text

    config = data_list[0]["config"] if data_list else {}
    basis = config.get("fitting", {}).get("basis") or None
    text, keys = methods_text(config, basis, [x["qc"].get("stages", {}) for x in data_list])
    return text, [REFERENCES[k] for k in keys]


def versions() -> list[tuple[str, str]]:
    """(software, version) rows: dmrs-bids, Python, the dependencies and numpy's BLAS."""
    from pipeline import __version__

    from .versions import software_versions

    info = software_versions()
    rows = [("dmrs-bids", __version__), ("python", info["python"])]
    rows += list(info["packages"].items())
    if info["blas"]["name"]:
        rows.append((f"BLAS ({info['blas']['name']})", info["blas"]["version"]))
    return rows


def _files(entry: dict, output_dir: Path) -> dict:
    """Derivative kind -> path relative to ``output_dir``, for the report's file list."""
    paths = {k: entry[k] for k in ACQUISITION_KINDS if k in entry}
    display = entry_fit_display(entry)
    if display:
        paths["fit_display"] = display
    return {k: Path(v).relative_to(output_dir).as_posix() for k, v in paths.items()}


def _section(data: dict, figures_dir: Path, output_dir: Path, draw: bool = True) -> dict:
    """Template values of one acquisition."""
    from pipeline.diffusion.amplitudes import has_decay
    from pipeline.qc.flags import STATUSES

    flags = acquisition_flags(data)
    judged = [f["status"] for f in flags if f["status"] in STATUSES]
    main_amplitudes, other_amplitudes = amplitude_table(data["amplitudes"])
    figure_notes: list[str] = []
    return {
        "stem": data["stem"], "anchor": data["stem"],
        "status": max(judged, key=STATUSES.index) if judged else "pass",
        "flags": flags,
        "svgs": acquisition_figures(data, figures_dir, figure_notes) if draw else {},
        "figure_notes": figure_notes,
        "acquisition": acquisition_table(data["preproc"], data["raw"]),
        "qc_rows": [(k, fmt(v)) for k, v in data["qc"].get("summary", {}).items()],
        "per_condition": data["qc"].get("per_condition", []),
        "amplitudes": main_amplitudes, "other_amplitudes": other_amplitudes,
        "other_amplitudes_label": other_amplitudes_label(len(other_amplitudes)),
        **diffusion_tables(data["diffusion"]),
        "has_decay": has_decay([to_float(r["b_value"]) for r in data["amplitudes"]]),
        "directional": directional(data["preproc"]),
        "aligned": transients_to_align(data["transients"]),
        "provenance": _provenance(data),
        "files": _files(data["entry"], output_dir),
    }


def write_participant_report(output_dir, subject: str, entries: list[dict],
                             options: dict | None = None) -> Path:
    """Figures and the self-contained ``OUT/sub-<label>.html`` of one participant."""
    from pipeline import __version__

    output_dir = Path(output_dir)
    draw = (options or {}).get("figures", True)
    data_list = [load_acquisition(e, output_dir)
                 for e in sorted(entries, key=lambda e: e["stem"])]
    figures_dir = d.figures_dir(output_dir, subject)
    sections = [_section(x, figures_dir, output_dir, draw) for x in data_list]
    methods, references = _methods(data_list)
    text = _environment().get_template("participant_report.html.j2").render(
        subject=subject, sections=sections, version=__version__, methods=methods,
        references=references, versions=versions())
    report = d.report_path(output_dir, subject)
    if report.is_file() and report.read_text(encoding="utf-8") == text:
        return report
    return d.atomic_write_text(report, text)
