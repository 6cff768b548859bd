"""The metabolite basis: one time-domain signal per metabolite, sharing one sampling grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .spectra import H1_REFERENCE_PPM, fid_to_spectrum, ppm_axis


@dataclass
class Basis:
    """A set of basis FIDs on one grid, in the project's sign convention (see ``spectra``).

    Scaling: each FID is the signal of a 1 mM (arbitrary unit) solution, so that an FID
    sequence gives FID[0] equal to the number of protons of the spin system (before any
    relaxation). Sources that use another scale record it in ``provenance['scale']``.
    """

    names: list[str]
    fids: np.ndarray  # complex, shape (n_metabolites, n_points)
    dwell_s: float
    cf_mhz: float
    ref_ppm: float = H1_REFERENCE_PPM
    nucleus: str = "1H"
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.fids = np.atleast_2d(np.asarray(self.fids, dtype=complex))
        self.names = list(self.names)
        if self.fids.shape[0] != len(self.names):
            raise ValueError(
                f"basis has {len(self.names)} names but {self.fids.shape[0]} FIDs")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"basis names are not unique: {self.names}")

    @property
    def n_points(self) -> int:
        return self.fids.shape[-1]

    @property
    def spectral_width_hz(self) -> float:
        return 1.0 / self.dwell_s

    def ppm(self) -> np.ndarray:
        return ppm_axis(self.n_points, self.dwell_s, self.cf_mhz, self.ref_ppm)

    def spectra(self) -> np.ndarray:
        return fid_to_spectrum(self.fids)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"metabolite {name!r} not in basis {self.names}") from None

    def fid(self, name: str) -> np.ndarray:
        return self.fids[self.index(name)]

    def subset(self, names) -> "Basis":
        """A basis holding only ``names`` (in that order)."""
        idx = [self.index(n) for n in names]
        return Basis(list(names), self.fids[idx].copy(), self.dwell_s, self.cf_mhz,
                     self.ref_ppm, self.nucleus, dict(self.provenance))

    def with_entries(self, extra: "Basis", provenance: dict | None = None) -> "Basis":
        """This basis with the entries of ``extra`` (same grid) appended."""
        if extra.n_points != self.n_points or not np.isclose(extra.dwell_s, self.dwell_s):
            raise ValueError(f"basis entries {extra.names} are on another grid "
                             f"({extra.n_points} points, dwell {extra.dwell_s} s) than "
                             f"{self.n_points} points, dwell {self.dwell_s} s")
        return Basis(self.names + list(extra.names), np.vstack([self.fids, extra.fids]),
                     self.dwell_s, self.cf_mhz, self.ref_ppm, self.nucleus,
                     dict(provenance if provenance is not None else self.provenance))
