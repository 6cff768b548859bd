"""Which macromolecule component the fit uses, and the measured one on the basis grid."""

from __future__ import annotations

import numpy as np

MM_MODES = ("measured", "basis", "parametric", "none")


def mm_mode(requested: str, has_measured: bool, basis_has_mm: bool,
            basis_source: str = "the basis") -> str:
    """Resolve ``auto``: measured MM if acquired, else MM already in the basis, else
    parametric. Refuses ``measured`` without an MM acquisition and ``basis`` without an MM
    entry in ``basis_source`` (either would fit no MM at all)."""
    if requested == "auto":
        return "measured" if has_measured else ("basis" if basis_has_mm else "parametric")
    if requested == "measured" and not has_measured:
        raise ValueError("[macromolecules] mode = 'measured' but the dataset has no MM "
                         "acquisition for this spectrum")
    if requested == "basis" and not basis_has_mm:
        raise ValueError(f"[macromolecules] mode = 'basis' but {basis_source} has no MM "
                         "entry (MM..., Mac...); use mode = 'auto' or 'parametric', or a basis "
                         "with a macromolecule entry")
    if requested not in MM_MODES:
        raise ValueError(f"[macromolecules] mode must be auto, measured, basis, parametric or "
                         f"none, got {requested!r}")
    return requested


def measured_mm_basis(acq, basis, source: str = ""):
    """One "MM" entry on the basis grid from a measured (metabolite-nulled) ``Acquisition``:
    lowest-b condition on its acquired points (zero-filling cut), coils combined, transients
    averaged; ``source`` names it (default the acquisition's source)."""
    from ..io.basis_tools import resample_basis
    from ..io.mm_spectra import mm_basis_from_fid
    from ..preprocess.average import acquired_mean
    from ..preprocess.coils import combine_coils, dead_coils
    from ..spectra import acquired_points

    low = acq.fids[int(np.argmin(acq.b_values_s_mm2))]
    low = low[..., :acquired_points(low)]  # a zero-filled export: its acquired points
    low = low[:, ~dead_coils(low)] if not dead_coils(low).all() else low  # channels with data
    fid = acquired_mean(combine_coils(low).combined if low.shape[1] > 1 else low[:, 0])
    mm = mm_basis_from_fid(fid, acq.dwell_s, acq.cf_mhz, source or str(acq.source))
    return resample_basis(mm, basis.dwell_s, basis.n_points, basis.cf_mhz, ref_ppm=basis.ref_ppm)
