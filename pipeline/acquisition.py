"""The in-memory form of one (d)MRS acquisition that every processing stage exchanges."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .spectra import H1_REFERENCE_PPM, ppm_axis, time_axis_s

WATER_SCALE_NOTE_KEY = "dmrs_bids_water_scale_not_comparable"
"""Metadata key of a preprocessed water reference whose signal scale is not that of the
combined metabolite data (``preprocess.steps.combined_water_scale_note``): water scaling then
says why it gave no concentrations instead of giving wrong ones."""


def condition_order(b_values_s_mm2, directions=None) -> np.ndarray:
    """Condition indices by b-value, then gradient axis, then storage index.

    The axis is the unit direction with its first non-zero component made positive, in
    descending order (x before y before z; no direction first), so the order depends neither
    on how a file lists its conditions (a converter's loop order, a shell's directions in
    another order) nor on the directions' polarity or length. Steps that chain one condition
    to the next (alignment templates) use it: with the storage order, the in-vivo 7 T set with
    its conditions permuted gave drifts up to 2.6 Hz apart per transient and amplitudes up to
    6.5 % (Ins) apart."""
    b = np.round(np.asarray(b_values_s_mm2, dtype=float).reshape(-1), 6)
    n = b.size
    d = np.full((n, 3), np.nan) if directions is None else \
        np.asarray(directions, dtype=float).reshape(-1, 3)
    norms = np.linalg.norm(d, axis=1)
    given = np.isfinite(norms) & (norms > 0)
    axes = np.zeros((n, 3))
    axes[given] = d[given] / norms[given, None]
    axes = np.round(axes, 6) + 0.0  # -0.0 -> 0.0
    for row in axes:
        nonzero = np.flatnonzero(row)
        if nonzero.size and row[nonzero[0]] < 0:
            row *= -1.0
    return np.lexsort((np.arange(n), -axes[:, 2], -axes[:, 1], -axes[:, 0], given, b))


@dataclass
class Acquisition:
    """Single-voxel (d)MRS data in canonical axis order.

    ``fids`` has shape ``(n_conditions, n_transients, n_coils, n_points)``: a *condition* is one
    diffusion weighting (b-value and direction); plain MRS is one condition with b = 0.
    ``b_values_s_mm2`` has one entry per condition (s/mm^2). ``directions`` is
    ``(n_conditions, 3)`` unit vectors, rows of NaN where no direction applies (b = 0, or
    powder-averaged/trace-weighted data).
    ``metadata`` holds the merged BIDS sidecar / NIfTI-MRS header keys (EchoTime in s, etc.).
    """

    fids: np.ndarray
    dwell_s: float
    cf_mhz: float
    b_values_s_mm2: np.ndarray
    directions: np.ndarray
    nucleus: str = "1H"
    ref_ppm: float = H1_REFERENCE_PPM
    metadata: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        self.fids = np.asarray(self.fids)
        if self.fids.ndim != 4:
            raise ValueError(
                f"{self.source or 'acquisition'}: fids must be 4-D "
                f"(conditions, transients, coils, points), got shape {self.fids.shape}")
        self.b_values_s_mm2 = np.asarray(self.b_values_s_mm2, dtype=float).reshape(-1)
        self.directions = np.asarray(self.directions, dtype=float).reshape(-1, 3)
        n_cond = self.fids.shape[0]
        if self.b_values_s_mm2.size != n_cond or self.directions.shape[0] != n_cond:
            raise ValueError(
                f"{self.source or 'acquisition'}: {n_cond} conditions but "
                f"{self.b_values_s_mm2.size} b-values and {self.directions.shape[0]} directions")

    @property
    def n_conditions(self) -> int:
        return self.fids.shape[0]

    @property
    def n_transients(self) -> int:
        return self.fids.shape[1]

    @property
    def n_coils(self) -> int:
        return self.fids.shape[2]

    @property
    def n_points(self) -> int:
        return self.fids.shape[3]

    @property
    def is_diffusion(self) -> bool:
        return self.n_conditions > 1 or bool(np.any(self.b_values_s_mm2 > 0))

    def time_s(self) -> np.ndarray:
        return time_axis_s(self.n_points, self.dwell_s)

    def ppm(self) -> np.ndarray:
        return ppm_axis(self.n_points, self.dwell_s, self.cf_mhz, self.ref_ppm)

    def direction_labels(self) -> list[str]:
        """Directions as "x,y,z" strings, or "n/a" where none applies (for TSV output)."""
        return ["n/a" if np.any(np.isnan(d)) else ",".join(f"{v:g}" for v in d)
                for d in self.directions]

    def with_fids(self, fids: np.ndarray, **changes) -> "Acquisition":
        """A copy with new ``fids`` (and optionally other fields changed)."""
        fields = dict(fids=fids, dwell_s=self.dwell_s, cf_mhz=self.cf_mhz,
                      b_values_s_mm2=self.b_values_s_mm2, directions=self.directions,
                      nucleus=self.nucleus, ref_ppm=self.ref_ppm,
                      metadata=dict(self.metadata), source=self.source)
        fields.update(changes)
        return Acquisition(**fields)


RECEIVER_PPM_TOLERANCE = 1e-6
"""Receiver references closer than this (ppm) to :data:`H1_REFERENCE_PPM` are left as they are."""


STATED_RECEIVER_KEY = "StatedSpecFreqChemShift"
"""Metadata key keeping the receiver's chemical shift the input stated, once the data are
referenced to 4.65 ppm (:func:`with_standard_receiver_ppm`): checks that depend on where water
sat (``pipeline.preprocess.axis_scale``) read it."""


def with_standard_receiver_ppm(acq: Acquisition) -> tuple[Acquisition, float]:
    """``acq`` referenced to the project's receiver convention (4.65 ppm at 0 Hz) and the
    frequency shift applied (Hz; 0 when it already was, or for another nucleus).

    NIfTI-MRS states the chemical shift of the receiver frequency (``SpecFreqChemShift``):
    Bruker writes 4.7, some exports the metabolite region's centre. The fit reads it, but
    preprocessing and QC place their ppm windows (alignment, outliers, residual water, SNR,
    linewidths) on the 4.65 convention, so a receiver at 3.0 ppm put them 1.65 ppm off (tCr
    1.46 mM for 6.55, exit 0). Multiplying every FID by ``exp(2 i pi df t)``, ``df = (4.65 -
    ref) cf``, moves each line to the frequency the convention gives its ppm (a circular shift
    of the spectrum: the far edges wrap, which hold no signal)."""
    if acq.nucleus != "1H" or abs(acq.ref_ppm - H1_REFERENCE_PPM) < RECEIVER_PPM_TOLERANCE:
        return acq, 0.0
    shift_hz = (H1_REFERENCE_PPM - acq.ref_ppm) * acq.cf_mhz
    t = time_axis_s(acq.fids.shape[-1], acq.dwell_s)
    fids = acq.fids * np.exp(2j * np.pi * shift_hz * t).astype(acq.fids.dtype, copy=False)
    metadata = {**acq.metadata, "SpecFreqChemShift": H1_REFERENCE_PPM,
                STATED_RECEIVER_KEY: acq.ref_ppm}
    return Acquisition(fids, acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2, acq.directions,
                       acq.nucleus, H1_REFERENCE_PPM, metadata, acq.source), float(shift_hz)
