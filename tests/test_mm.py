"""Macromolecules: the parametric MM basis has its stated components; measured MM spectra
(Philips inversion recovery, Varian MM database, basis 'Mac' entries) load as one 'MM' entry
with the 0.9 ppm peak and the broad 1.2-2.3 ppm hump."""

import numpy as np
import pytest

from conftest import SHARED_DATA
from pipeline.io.mm_spectra import mm09_peak_ppm, mm_entry_name, read_measured_mm, \
    read_varian_fid
from pipeline.simulate.macromolecules import EXTENDED_MM, LCMODEL_MM, parametric_mm_basis
from pipeline.spectra import fid_to_spectrum

GRID = dict(cf_mhz=123.2, dwell_s=2.5e-4, n_points=4096)


def real_spectrum_fine(fid, zero_fill=8):
    padded = np.zeros(fid.size * zero_fill, dtype=complex)
    padded[:fid.size] = fid
    return fid_to_spectrum(padded).real


def fwhm_ppm(ppm, real, centre_ppm, search_ppm=0.05):
    """Full width at half maximum of the peak nearest ``centre_ppm`` (linear interpolation)."""
    near = np.flatnonzero(np.abs(ppm - centre_ppm) <= search_ppm)
    k = near[np.argmax(real[near])]
    half = real[k] / 2
    right = k
    while real[right] > half:
        right += 1
    left = k
    while real[left] > half:
        left -= 1
    def crossing(i, j):
        return ppm[i] + (half - real[i]) * (ppm[j] - ppm[i]) / (real[j] - real[i])
    return abs(crossing(right - 1, right) - crossing(left + 1, left)), ppm[k]


# --- parametric -----------------------------------------------------------------------------

def test_parametric_components_at_their_stated_positions_widths_and_amplitudes():
    basis = parametric_mm_basis(**GRID)
    assert basis.names == list(EXTENDED_MM)
    ppm_fine = 4.65 - (np.arange(8 * basis.n_points) - 4 * basis.n_points) / \
        (8 * basis.n_points * GRID["dwell_s"]) / GRID["cf_mhz"]
    for name, ((ppm, fwhm, amp),) in EXTENDED_MM.items():
        fid = basis.fid(name)
        assert fid[0].real == pytest.approx(amp, rel=1e-12)
        width, peak = fwhm_ppm(ppm_fine, real_spectrum_fine(fid), ppm)
        assert peak == pytest.approx(ppm, abs=0.002), name
        assert width == pytest.approx(fwhm, rel=0.02), name


def test_lcmodel_set_mm20_has_its_four_gaussians_and_combined_entry_is_the_sum():
    basis = parametric_mm_basis(**GRID, components="lcmodel", include_combined=True)
    assert basis.names == list(LCMODEL_MM) + ["MM"]
    assert np.allclose(basis.fid("MM"), basis.fids[:-1].sum(axis=0))
    mm20 = LCMODEL_MM["MM20"]
    assert basis.fid("MM20")[0].real == pytest.approx(sum(a for _, _, a in mm20))
    ppm = basis.ppm()
    real = fid_to_spectrum(basis.fid("MM20")).real
    assert ppm[np.argmax(real)] == pytest.approx(2.08, abs=0.01)
    # the 3.00 ppm satellite is there: real spectrum at 3.00 ppm is a local bump above 2.7 ppm
    at = lambda x: real[np.argmin(np.abs(ppm - x))]
    assert at(3.00) > 3 * at(2.70)


def test_echo_time_weights_by_t2_and_bad_names_are_refused():
    short = parametric_mm_basis(**GRID, components=["MM09"])
    long = parametric_mm_basis(**GRID, components=["MM09"], echo_time_s=0.03, t2_s=0.025)
    assert long.fids[0, 0].real == pytest.approx(short.fids[0, 0].real * np.exp(-1.2))
    with pytest.raises(ValueError, match="MM99"):
        parametric_mm_basis(**GRID, components=["MM99"])


def test_parametric_mm_ppm_positions_hold_at_7t():
    basis = parametric_mm_basis(cf_mhz=298.06, dwell_s=1 / 3000, n_points=2048,
                                components={"X": [(0.91, 0.14, 3.0)], "Y": [(3.95, 0.1, 1.0)]})
    ppm = basis.ppm()
    for name, where in (("X", 0.91), ("Y", 3.95)):
        assert ppm[np.argmax(fid_to_spectrum(basis.fid(name)).real)] == \
            pytest.approx(where, abs=0.005)


# --- measured ---------------------------------------------------------------------------------

def discovered_mm_sources():
    """Every measured MM source in the shared data (a new file or folder is picked up)."""
    if not SHARED_DATA.is_dir():
        return []
    varian = sorted((SHARED_DATA / "mm_consensus" / "MM_database").glob("*.fid"))
    philips = sorted(SHARED_DATA.glob("osprey_3t/**/*Inverted*act*.SDAT"))
    with_mac = [SHARED_DATA / p for p in (
        "dmrs_7t_steam_synthetic/basis_STEAM_TE45_TM60.BASIS",
        "ismrm2016_fitting_challenge/basisset_LCModel/press3T_30ms.BASIS",
        "basis_variants/dspecial_9p4t/common/mrs_basis_sets/Basis_Set_dSPECIAL_differentTM/"
        "9p4T_Toi_dSPECIAL_TM41_20250925.BASIS")]
    return [str(p.relative_to(SHARED_DATA)) for p in varian + philips + with_mac]


MM_SOURCES = discovered_mm_sources()


def test_discovery_finds_every_measured_mm_source(shared_data):
    """Guards the parametrised test below against passing on an empty or shrunken list."""
    assert sum(p.startswith("mm_consensus/") for p in MM_SOURCES) >= 8
    assert sum(p.startswith("osprey_3t/") for p in MM_SOURCES) >= 2
    assert len(MM_SOURCES) >= 13


@pytest.mark.parametrize("relpath", MM_SOURCES, ids=MM_SOURCES)
def test_measured_mm_has_09_peak_and_broad_hump(shared_data, relpath):
    basis = read_measured_mm(shared_data / relpath)
    assert basis.names == ["MM"] and np.all(np.isfinite(basis.fids))
    ppm = basis.ppm()
    real = fid_to_spectrum(basis.fid("MM")).real
    peak = mm09_peak_ppm(basis)
    assert 0.8 <= peak <= 1.0
    width, _ = fwhm_ppm(ppm, real, peak, 0.01)
    assert 0.08 <= width <= 0.3  # a broad MM line, not a metabolite singlet
    height = real[np.argmin(np.abs(ppm - peak))]
    valley = real[(ppm >= 1.0) & (ppm <= 1.15)].min()
    assert valley < 0.5 * height  # a distinct peak, not a shoulder
    hump = real[(ppm >= 1.2) & (ppm <= 2.3)]
    assert np.mean(hump > 0) >= 0.9 and hump.mean() >= 0.3 * height
    outside = np.abs(real[(ppm < 0.1) | (ppm > 4.5)]).max()
    assert outside < 0.01 * height  # residual water and reference removed


def test_varian_header_and_data_agree(shared_data):
    fid, dwell_s, cf_mhz, params = read_varian_fid(
        shared_data / "mm_consensus/MM_database/3T_MM_human_STEAM_CMRR.fid")
    assert fid.size == params["np"] / 2 == 2048
    assert dwell_s == pytest.approx(1 / 6002.4) and cf_mhz == pytest.approx(123.245)


def test_measured_mm_resampled_onto_the_data_grid(shared_data):
    sdat = sorted(shared_data.glob("osprey_3t/**/*Inverted*act*.SDAT"))[0]
    native = read_measured_mm(sdat)
    on_grid = read_measured_mm(sdat, dwell_s=2.5e-4, n_points=8192, cf_mhz=127.731)
    assert (on_grid.n_points, on_grid.dwell_s, on_grid.cf_mhz) == (8192, 2.5e-4, 127.731)
    assert mm09_peak_ppm(on_grid) == pytest.approx(mm09_peak_ppm(native), abs=0.01)
    with pytest.raises(ValueError, match="J-couplings"):
        read_measured_mm(sdat, dwell_s=1 / 3000, n_points=1024, cf_mhz=298.06)


def test_basis_without_the_mm_entry_is_a_named_value_error(shared_data):
    path = shared_data / "lcmodel_test" / "3t.basis"
    with pytest.raises(ValueError, match="no macromolecule entry") as info:
        read_measured_mm(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="'Nope' not in basis") as info:
        read_measured_mm(shared_data / "dmrs_7t_steam_synthetic" / "basis_STEAM_TE45_TM60.BASIS",
                         entry="Nope")
    assert "basis_STEAM_TE45_TM60.BASIS" in str(info.value)


def test_mm_entry_names():
    assert mm_entry_name(["NAA", "Mac", "Cr"]) == "Mac"
    assert mm_entry_name(["naa", "MM_full_fit_new"]) == "MM_full_fit_new"
    with pytest.raises(KeyError):
        mm_entry_name(["NAA", "Cr"])


def test_measured_mm_from_synthetic_gaussians_keeps_shape_and_scale():
    """A noiseless MM built from the LCModel set, conjugated and with water added, comes back
    unconjugated, without water, with MM09 = 3 protons as documented."""
    from pipeline.io.mm_spectra import mm_basis_from_fid
    truth = parametric_mm_basis(**GRID, components="lcmodel", include_combined=True)
    t = np.arange(GRID["n_points"]) * GRID["dwell_s"]
    water = 50.0 * np.exp(-t / 0.03)
    measured = np.conj(0.7 * truth.fid("MM") + water)
    mm = mm_basis_from_fid(measured, GRID["dwell_s"], GRID["cf_mhz"], "synthetic")
    assert mm.provenance["convention"]["conjugated"] is True
    ppm = mm.ppm()
    band = (ppm > 0.6) & (ppm < 3.9)
    got, want = fid_to_spectrum(mm.fids[0]).real[band], \
        fid_to_spectrum(truth.fid("MM")).real[band]
    scale = np.dot(got, want) / np.dot(want, want)
    assert np.abs(got - scale * want).max() < 0.02 * want.max()
    # MM09 (3 protons) dominates the +/-0.14 ppm window, so the factor is close to 1
    assert scale == pytest.approx(1.0, abs=0.1)


def test_an_mm_entry_the_data_cannot_use_is_zero_and_named_in_a_warning(shared_data):
    """Another group's basis (ISMRM 2016 challenge, 3 T PRESS 30 ms) and a measured MM spectrum
    (Osprey sub-01, metabolite-nulled): data = metabolites at mid-range concentrations + that MM
    (0.9 ppm peak 0.4 x the NAA peak) + noise (SNR 100). Truth: with the MM's own shape as the
    entry, MM/NAA is recovered (within 10 %) and nothing is flagged; an entry of the opposite
    sign cannot be used by any non-negative amplitude, so it is 0 and the QC warning names it."""
    import validation_support as vs
    from bids_app.config import load_config
    from pipeline.basis import Basis
    from pipeline.fitting import FitOptions
    from pipeline.fitting.conditions import absent_mm_flags, fit_conditions

    source = vs.SOURCES[0]
    published = vs.load_basis(shared_data, source)
    n, dwell, cf = source.n_points, published.dwell_s, published.cf_mhz
    metabolites = Basis(published.names, published.fids[:, :n], dwell, cf, published.ref_ppm)
    conc = {name: float(np.mean(vs.CONCENTRATION_RANGES_MM[vs.canonical(name)]))
            for name in metabolites.names}
    signal = sum(conc[name] * metabolites.fids[i] for i, name in enumerate(metabolites.names))
    ppm = vs.ppm_axis(n, dwell, cf)
    mm_shape = vs.mm_on_grid(vs.measured_mm(shared_data, "3T")[0], ppm, dwell)
    naa_height = vs.peak_height(vs.to_spectrum(signal), ppm)
    mm_scale = 0.4 * naa_height / vs.peak_height(vs.to_spectrum(mm_shape), ppm, 0.8, 1.05)
    noise = np.random.default_rng(0).standard_normal((2, n)) * naa_height / 100 / np.sqrt(n)
    fid = signal + mm_scale * mm_shape + noise[0] + 1j * noise[1]
    options = FitOptions.from_dict(load_config()["fitting"])

    def fitted(sign):
        entry = Basis(["MM"], sign * mm_shape[None], dwell, cf, published.ref_ppm)
        return fit_conditions(fid[None], metabolites.with_entries(entry), dwell, cf, [0.0],
                              options)

    right = fitted(1.0)
    ratio = right.fits[0].amplitude("MM") / right.fits[0].amplitude("NAA")
    assert ratio == pytest.approx(mm_scale / conc["NAA"], rel=0.10)
    assert absent_mm_flags(right) == []
    wrong = fitted(-1.0)
    assert wrong.fits[0].amplitude("MM") == 0.0
    (flag,) = absent_mm_flags(wrong)
    assert "(MM) are 0 in every condition" in flag
