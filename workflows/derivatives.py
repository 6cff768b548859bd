"""Derivative names and table schemas: the output contract, defined once.

The workflow's sink writes these files and the app (reports, group level, run summary) reads
them, so they live here, below both (``bids_app`` -> ``workflows`` -> ``pipeline``)::

    OUT/sub-<label>/[ses-<label>/]mrs/<src>_desc-preproc_svs.nii.gz
                                      <src>_desc-fit_svs.nii.gz
                                      <src>_transients.tsv, _amplitudes.tsv, _diffusion.tsv,
                                      <src>_desc-amplitudes_covariance.tsv,
                                      <src>_qc.json, <src>_config.toml,
                                      <src>_desc-fitcomponents_spectra.tsv
    OUT/sub-<label>/figures/<src>_desc-<name>_fig.svg
    OUT/sub-<label>.html
    OUT/dataset_description.json, OUT/logs/
"""

from __future__ import annotations

from pathlib import Path

from pipeline.tables import DIFFUSION_COLUMNS as _DIFFUSION_TABLE_COLUMNS

PIPELINE_NAME = "dmrs-bids"

# Derivative kinds of one acquisition -> file-name suffix after "<src>_".
ACQUISITION_OUTPUTS = {
    "preproc": "desc-preproc_svs.nii.gz",
    "fit": "desc-fit_svs.nii.gz",
    "transients": "transients.tsv",
    "amplitudes": "amplitudes.tsv",
    "diffusion": "diffusion.tsv",
    "qc": "qc.json",
    "config": "config.toml",
}
FIT_DISPLAY_SUFFIX = "desc-fitcomponents_spectra.tsv"
"""``<src>_desc-fitcomponents_spectra.tsv`` beside ``<src>_desc-fit_svs.nii.gz``: the fit's
baseline and metabolite spectra on its ppm window, so a report rebuild redraws the traces."""
AMPLITUDE_COVARIANCE_SUFFIX = "desc-amplitudes_covariance.tsv"
"""``<src>_desc-amplitudes_covariance.tsv`` beside ``<src>_amplitudes.tsv``: each metabolite's (and
sum's) amplitude covariance across conditions (``pipeline.fitting.amplitude_covariance``),
read by the diffusion models (their SEs carry the correlation); older outputs without it are
fitted with independent CRLBs."""
CONTRACT_KINDS = ("preproc", "fit", "transients", "amplitudes", "diffusion", "qc")
"""Kinds every processed acquisition has (the config copy is written when one is given)."""

SHIFT_COLUMNS = ["condition", "b_value", "direction", "transient", "freq_shift_hz",
                 "phase_shift_deg"]
TRANSIENTS_COLUMNS = SHIFT_COLUMNS + ["rejected", "acquired"]
AMPLITUDES_COLUMNS = ["condition", "b_value", "direction", "metabolite", "amplitude", "crlb",
                      "crlb_percent"]
LAST_AMPLITUDE_COLUMN = "fit_flags"


def amplitudes_columns(rows: list[dict], leading=()) -> list[str]:
    """Header of an amplitudes table: ``leading`` (e.g. group IDs), ``AMPLITUDES_COLUMNS``, the
    other columns of ``rows`` in first-seen order (``ratio_tcr``, concentrations), and
    ``fit_flags`` last, whichever row first has which column."""
    head = list(leading) + AMPLITUDES_COLUMNS
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in head))
    tail = [LAST_AMPLITUDE_COLUMN] if LAST_AMPLITUDE_COLUMN in extra else []
    return head + [k for k in extra if k != LAST_AMPLITUDE_COLUMN] + tail
DIFFUSION_COLUMNS = list(_DIFFUSION_TABLE_COLUMNS)


def subject_dir(output_dir, subject: str) -> Path:
    return Path(output_dir) / f"sub-{subject}"


def mrs_dir(output_dir, subject: str, session: str | None) -> Path:
    """``OUT/sub-<label>/[ses-<label>/]mrs``."""
    base = subject_dir(output_dir, subject)
    return (base / f"ses-{session}" / "mrs") if session else base / "mrs"


def acquisition_path(output_dir, subject: str, session: str | None, stem: str,
                     kind: str) -> Path:
    """Path of one derivative (``kind`` in :data:`ACQUISITION_OUTPUTS`) of input ``stem``."""
    if kind not in ACQUISITION_OUTPUTS:
        raise KeyError(f"unknown derivative kind {kind!r}; known: {sorted(ACQUISITION_OUTPUTS)}")
    return mrs_dir(output_dir, subject, session) / f"{stem}_{ACQUISITION_OUTPUTS[kind]}"


def fit_display_path(fit_path, stem: str) -> Path:
    """The fit-display derivative of acquisition ``stem`` beside its fit file."""
    return Path(fit_path).with_name(f"{stem}_{FIT_DISPLAY_SUFFIX}")


def amplitude_covariance_path(amplitudes_path, stem: str) -> Path:
    """The amplitude-covariance derivative of acquisition ``stem`` beside its amplitudes."""
    return Path(amplitudes_path).with_name(f"{stem}_{AMPLITUDE_COVARIANCE_SUFFIX}")


def figures_dir(output_dir, subject: str) -> Path:
    return subject_dir(output_dir, subject) / "figures"


def figure_path(output_dir, subject: str, stem: str, name: str, ext: str = "svg") -> Path:
    return figures_dir(output_dir, subject) / f"{stem}_desc-{name}_fig.{ext}"


def report_path(output_dir, subject: str) -> Path:
    return Path(output_dir) / f"sub-{subject}.html"


def logs_dir(output_dir) -> Path:
    return Path(output_dir) / "logs"
