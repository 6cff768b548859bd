"""Per-participant HTML report and its figures, built from the derivatives on disk.

``OUT/sub-<label>.html`` links figures in ``OUT/sub-<label>/figures/``: per acquisition the
preprocessed spectra with the fit, the amplitude decay of the metabolite sums, and the drift
and rejections per transient; plus tables of QC metrics and diffusion parameters.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from . import derivatives as d

SUMS = ("tNAA", "tCr", "tCho", "Glx")
ACQUISITION_KINDS = ("preproc", "fit", "transients", "amplitudes", "diffusion", "qc")
TEMPLATES = Path(__file__).with_name("templates")


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=jinja2.select_autoescape(["html", "j2"]))


def _save_svg(fig, path: Path) -> Path:
    """Deterministic SVG (fixed hash salt, no date) written atomically."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "dmrs-bids"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    d.atomic_write_bytes(path, buffer.getvalue())
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spectra_figure(preproc_path, fit_path, out_path, ppm_range=(0.2, 4.2)) -> Path:
    """Real spectra per condition (offset by b) with the fitted model overlaid."""
    from pipeline.io.nifti_mrs import read_nifti_mrs
    from pipeline.spectra import fid_to_spectrum

    plt = _pyplot()
    pre = read_nifti_mrs(preproc_path)
    fit = read_nifti_mrs(fit_path)
    ppm = pre.ppm()
    mask = (ppm >= min(ppm_range)) & (ppm <= max(ppm_range))
    data = fid_to_spectrum(pre.fids.mean(axis=(1, 2))).real
    model = fid_to_spectrum(fit.fids.mean(axis=(1, 2))).real
    step = 0.6 * np.max(np.abs(data[:, mask])) if mask.any() else 1.0
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * pre.n_conditions))
    for c in range(pre.n_conditions):
        offset = -c * step
        ax.plot(ppm[mask], data[c, mask] + offset, color="0.3", lw=0.7)
        ax.plot(ppm[mask], model[c, mask] + offset, color="tab:red", lw=0.8)
        ax.text(min(ppm_range), offset + 0.15 * step, f"b={pre.b_values_s_mm2[c]:.0f}",
                fontsize=6, ha="right", va="bottom", color="0.2")
    ax.set_xlim(max(ppm_range), min(ppm_range))
    ax.set_yticks([])
    ax.set_xlabel("chemical shift (ppm)")
    ax.set_title("preprocessed spectra (grey) and fit (red), per condition", fontsize=9)
    fig.tight_layout()
    path = _save_svg(fig, Path(out_path))
    plt.close(fig)
    return path


def decay_figure(amplitude_rows: list[dict], out_path) -> Path:
    """Normalised amplitudes of the metabolite sums against b (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in SUMS:
        rows = [r for r in amplitude_rows if r["metabolite"] == name]
        if not rows:
            continue
        b = np.array([float(r["b_value"]) for r in rows])
        a = np.array([float(r["amplitude"]) for r in rows])
        s = np.array([d_float(r["crlb"]) for r in rows])
        ref = np.mean(a[b == b.min()])
        if ref <= 0:
            continue
        ax.errorbar(b, a / ref, yerr=np.nan_to_num(s / ref), fmt="o", ms=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("b (s/mm²)")
    ax.set_ylabel("S(b) / S(b_min)")
    ax.legend(fontsize=7)
    ax.set_title("signal decay of metabolite sums", fontsize=9)
    fig.tight_layout()
    path = _save_svg(fig, Path(out_path))
    plt.close(fig)
    return path


def drift_figure(transient_rows: list[dict], out_path) -> Path:
    """Frequency and phase shift per transient (acquisition order), rejected ones crossed."""
    plt = _pyplot()
    f = np.array([d_float(r["freq_shift_hz"]) for r in transient_rows])
    p = np.array([d_float(r["phase_shift_deg"]) for r in transient_rows])
    rej = np.array([int(r["rejected"]) for r in transient_rows], bool)
    idx = np.arange(f.size)
    fig, axes = plt.subplots(2, 1, figsize=(6, 3.5), sharex=True)
    for ax, values, label in ((axes[0], f, "frequency (Hz)"), (axes[1], p, "phase (deg)")):
        ax.plot(idx, values, ".", ms=3, color="tab:blue")
        ax.plot(idx[rej], values[rej], "x", ms=5, color="tab:red", label="rejected")
        ax.set_ylabel(label, fontsize=8)
    axes[1].set_xlabel("transient (all conditions, in file order)")
    axes[0].set_title("drift found per transient; red crosses: rejected", fontsize=9)
    fig.tight_layout()
    path = _save_svg(fig, Path(out_path))
    plt.close(fig)
    return path


def d_float(value) -> float:
    return float("nan") if value in ("n/a", "", None) else float(value)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.4g}"
    return str(value)


FIGURES = ("spectra", "decay", "drift")


def make_figures(preproc, fit, amplitudes_tsv, transients_tsv, paths: dict) -> dict:
    """The acquisition's figures at ``paths`` (figure name -> path); returns ``paths``."""
    spectra_figure(preproc, fit, paths["spectra"])
    decay_figure(d.read_tsv(amplitudes_tsv), paths["decay"])
    drift_figure(d.read_tsv(transients_tsv), paths["drift"])
    return paths


def _acquisition_section(output_dir: Path, subject: str, entry: dict, options: dict) -> dict:
    """Template values of one acquisition; figures are drawn here unless the entry lists
    them already (the workflow draws them in parallel with diffusion modelling)."""
    stem = entry["stem"]
    qc = json.loads(Path(entry["qc"]).read_text())
    diffusion = d.read_tsv(entry["diffusion"])
    figures = []
    if options.get("figures", True):
        paths = entry.get("figures") or {}
        if not all(Path(paths.get(name, "")).is_file() for name in FIGURES):
            paths = make_figures(entry["preproc"], entry["fit"], entry["amplitudes"],
                                 entry["transients"],
                                 {n: d.figure_path(output_dir, subject, stem, n)
                                  for n in FIGURES})
        figures = [{"name": n, "src": Path(paths[n]).relative_to(output_dir).as_posix()}
                   for n in FIGURES]
    sums = [r for r in diffusion if r["metabolite"] in SUMS
            and r["parameter"] not in ("AIC", "BIC")]
    return {
        "stem": stem, "figures": figures,
        "summary": [(k, _fmt(v)) for k, v in qc.get("summary", {}).items()],
        "warnings": qc.get("warnings", []),
        "flagged": qc.get("flagged_conditions", []),
        "units": qc.get("b_value_units_source", ""),
        "diffusion": [{k: r[k] for k in d.DIFFUSION_COLUMNS} for r in sums],
        "files": {k: Path(entry[k]).relative_to(output_dir).as_posix()
                  for k in ACQUISITION_KINDS},
    }


def write_participant_report(output_dir, subject: str, entries: list[dict],
                             options: dict | None = None) -> Path:
    """Figures and ``OUT/sub-<label>.html`` for one participant's acquisitions."""
    from pipeline import __version__

    output_dir = Path(output_dir)
    options = options or {}
    report = d.report_path(output_dir, subject)
    if _report_current(report, output_dir, entries):
        return report
    sections = [_acquisition_section(output_dir, subject, e, options)
                for e in sorted(entries, key=lambda e: e["stem"])]
    text = _environment().get_template("participant.html.j2").render(
        subject=subject, sections=sections, version=__version__)
    return d.atomic_write_text(report, text)


def _report_current(report: Path, output_dir: Path, entries: list[dict]) -> bool:
    """The report and every figure it links are newer than all the derivatives it shows."""
    if not report.is_file():
        return False
    sources = [e[k] for e in entries for k in ACQUISITION_KINDS]
    figures = [output_dir / src for src in re.findall(r'src="([^"]+)"', report.read_text())]
    return all(f.is_file() and d.is_up_to_date(f, sources) for f in figures) \
        and d.is_up_to_date(report, sources)


def write_group_report(output_dir, tables: dict[str, list[dict]], failed: list[str]) -> Path:
    """``OUT/group.html``: QC table and diffusion parameters of the sums over participants."""
    from pipeline import __version__

    output_dir = Path(output_dir)
    qc = tables.get("qc", [])
    diffusion = [r for r in tables.get("diffusion", []) if r.get("metabolite") in SUMS
                 and r.get("model") == "monoexponential" and r.get("parameter") not in
                 ("AIC", "BIC")]
    text = _environment().get_template("group.html.j2").render(
        version=__version__, qc_columns=list(qc[0].keys()) if qc else [], qc=qc,
        diffusion=diffusion, failed=failed,
        participants=sorted({r["participant_id"] for r in qc}))
    return d.atomic_write_text(output_dir / "group.html", text)
