"""MM lineshape per entry (``FitOptions.mm_lineshape``, issue 13).

Truth is constructed: two MM singlets broadened differently (15 Hz and 35 Hz extra Lorentzian)
and shifted differently, on top of metabolite singlets. One shared MM Voigt cannot follow both;
a Voigt and shift per MM entry can, and the metabolite ratios stay right.
"""

import numpy as np
import pytest

from pipeline.basis import Basis
from pipeline.fitting import FitOptions
from pipeline.fitting.model import lineshape_groups
from pipeline.spectra import time_axis_s

from test_fitting_support import (CF_MHZ, DWELL_S, N_POINTS, SINGLETS, broaden, fit_and_quality,
                                  singlet_fid)

METABOLITES = {"NAA": 1.0, "Cr": 0.8, "Cho": 0.3}
MM = {"MM09": (0.90, 15.0, 3.0), "MM20": (2.05, 35.0, -4.0)}   # ppm, extra Lorentz Hz, shift Hz


def _data_and_basis():
    names = list(METABOLITES) + list(MM)
    fids = [singlet_fid(*SINGLETS[n]) for n in METABOLITES]
    fids += [singlet_fid(ppm, 3) for ppm, _, _ in MM.values()]
    basis = Basis(names, np.array(fids), DWELL_S, CF_MHZ)
    t = time_axis_s(N_POINTS, DWELL_S)
    metab = broaden(np.array([a * basis.fids[i] for i, a in enumerate(METABOLITES.values())]),
                    DWELL_S, 2.0, 3.0, 2.0).sum(axis=0)
    mm = sum(0.5 * basis.fids[names.index(n)] * np.exp(-np.pi * width * t + 2j * np.pi * shift * t)
             for n, (_, width, shift) in MM.items())
    rng = np.random.default_rng(5)
    fid = metab + mm + 0.01 * (rng.standard_normal(t.size) + 1j * rng.standard_normal(t.size))
    return fid, basis


def _fit(**options):
    opts = FitOptions(ppm_range=(0.5, 4.0), max_lorentz_hz=45.0, **options)
    return fit_and_quality(*_data_and_basis(), opts)


def test_groups_per_mm_entry():
    group_of, groups = lineshape_groups(["NAA", "MM09", "Cr", "MM20"], {}, "per_entry")
    assert groups == ["metabolites", "mm:MM09", "mm:MM20"]
    assert group_of.tolist() == [0, 1, 0, 2]
    _, shared = lineshape_groups(["NAA", "MM09", "MM20"], {})
    assert shared == ["metabolites", "mm"]


def test_per_entry_mm_lineshape_follows_different_mm_widths():
    shared, shared_quality = _fit()
    own, own_quality = _fit(mm_lineshape="per_entry")
    assert shared_quality > 1.5
    assert own_quality < 1.2
    assert own.lorentz_fwhm_hz["mm:MM20"] - own.lorentz_fwhm_hz["mm:MM09"] == pytest.approx(
        MM["MM20"][1] - MM["MM09"][1], abs=2.0)
    for name in ("Cr", "Cho"):
        ratio = own.amplitude(name) / own.amplitude("NAA")
        assert ratio == pytest.approx(METABOLITES[name] / METABOLITES["NAA"], rel=0.03)


def test_unknown_mm_lineshape_is_refused():
    with pytest.raises(ValueError, match="mm_lineshape"):
        FitOptions(mm_lineshape="each")
