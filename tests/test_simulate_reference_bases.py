"""Simulated bases against the independently simulated LCModel basis sets in ../shared/data.

After matching the frequency referencing (global shift from the Cr singlets) and the linewidth
(Voigt broadening fitted on Cr) the real part of each metabolite spectrum over 0.5-4.2 ppm must
correlate with the reference, a zero-order phase being allowed per metabolite. The whole table
is printed by ``benchmarks/bench_basis_simulation.py``.
"""

import pytest

from pipeline.io.basis_formats import read_basis
from pipeline.simulate.basis_simulation import (basis_correlations, match_reference,
                                                simulate_basis)

REFERENCE_SETS = {
    "7T-STEAM-TE45-TM60": ("dmrs_7t_steam_synthetic/basis_STEAM_TE45_TM60.BASIS",
                           {"sequence": "steam", "echo_time_s": 0.045, "mixing_time_s": 0.060}),
    "3T-PRESS-TE30": ("ismrm2016_fitting_challenge/basisset_LCModel/press3T_30ms.BASIS",
                      {"sequence": "press", "echo_time_s": 0.030}),
    "3T-PRESS-TE35": ("osprey_3t/fit/basissets/3T/philips/unedited/press/35/"
                      "3T_PRESS_Philips_35ms_noMM.BASIS",
                      {"sequence": "press", "echo_time_s": 0.035}),
}
THRESHOLDS = {**{m: 0.95 for m in ("NAA", "Cr", "PCr", "GPC", "PCh", "Tau", "sIns")},
              **{m: 0.85 for m in ("Glu", "Gln", "Ins", "GABA", "GSH")}}
ALIASES = {"PCh": ("PCh", "PCho"), "sIns": ("sIns", "Scyllo")}


@pytest.mark.parametrize("label", sorted(REFERENCE_SETS))
def test_correlation_with_reference_basis(shared_data, label):
    rel_path, sim_args = REFERENCE_SETS[label]
    reference = read_basis(shared_data / rel_path)
    names = {m: a for m in THRESHOLDS for a in ALIASES.get(m, (m,)) if a in reference.names}
    assert {"NAA", "Cr", "GPC", "Glu", "GABA"} <= set(names)
    simulated = simulate_basis(cf_mhz=reference.cf_mhz, dwell_s=reference.dwell_s,
                               n_points=reference.n_points, metabolites=list(names),
                               ref_ppm=reference.ref_ppm, use_cache=False, **sim_args)
    match = match_reference(simulated, reference, "Cr")
    # referencing and linewidth corrections stay physical: < 0.02 ppm, a few Hz
    assert abs(match["shift_hz"]) < 0.02 * reference.cf_mhz
    assert match["lorentz_hz"] + match["gauss_hz"] < 10
    result = basis_correlations(simulated, reference, names, match)
    failing = {m: round(r["correlation"], 3) for m, r in result.items()
               if r["correlation"] < THRESHOLDS[m]}
    assert not failing, f"{label}: below threshold {failing}"
