"""simulate_basis: grid, sign convention, scaling, singlet positions and areas, cache."""

import numpy as np
import pytest

import pipeline
from pipeline.basis import Basis
from pipeline.simulate import basis_simulation
from pipeline.simulate.basis_simulation import (DEFAULT_METABOLITES, default_cache_dir,
                                                match_reference, simulate_basis)
from pipeline.spectra import ppm_axis, ppm_to_hz

CF_MHZ, DWELL_S, N = 123.2, 2.5e-4, 4096


def _fine_spectrum(basis, name, zero_fill=8):
    """Real spectrum zero-filled ``zero_fill`` times (first point halved) and its ppm axis."""
    fid = basis.fid(name).copy()
    fid[0] *= 0.5
    n = zero_fill * basis.n_points
    spec = np.fft.fftshift(np.fft.fft(fid, n)).real / basis.n_points
    return ppm_axis(n, basis.dwell_s, basis.cf_mhz, basis.ref_ppm), spec


def _peak_ppm(basis, name, near_ppm, half_width_ppm=0.1):
    """Shift of the largest real spectral point near ``near_ppm``, parabolic sub-bin."""
    ppm, spec = _fine_spectrum(basis, name)
    idx = np.flatnonzero(np.abs(ppm - near_ppm) < half_width_ppm)
    k = idx[np.argmax(spec[idx])]
    y0, y1, y2 = spec[k - 1], spec[k], spec[k + 1]
    frac = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return ppm[k] + frac * (ppm[k + 1] - ppm[k])


def _area(basis, name, centre_ppm, half_width_ppm=0.1):
    ppm, spec = _fine_spectrum(basis, name)
    return spec[np.abs(ppm - centre_ppm) < half_width_ppm].sum()


@pytest.fixture(scope="module")
def fid_basis(tmp_path_factory):
    return simulate_basis("fid", CF_MHZ, DWELL_S, N, metabolites=["NAA", "Cr", "Cho", "sIns"],
                          cache_dir=str(tmp_path_factory.mktemp("cache")), linewidth_hz=2.0)


@pytest.mark.parametrize("name,ppm", [("NAA", 2.008), ("Cr", 3.027), ("Cr", 3.913),
                                      ("Cho", 3.185), ("sIns", 3.340)])
def test_singlets_at_published_shifts(fid_basis, name, ppm):
    assert _peak_ppm(fid_basis, name, ppm) == pytest.approx(ppm, abs=5e-4)


def test_singlet_relative_areas(fid_basis):
    cr3 = _area(fid_basis, "Cr", 3.027)
    assert _area(fid_basis, "Cr", 3.913) / cr3 == pytest.approx(2 / 3, rel=0.02)
    assert _area(fid_basis, "NAA", 2.008) / cr3 == pytest.approx(1.0, rel=0.02)
    assert _area(fid_basis, "Cho", 3.185) / cr3 == pytest.approx(3.0, rel=0.02)
    assert _area(fid_basis, "sIns", 3.340) / cr3 == pytest.approx(2.0, rel=0.02)


def test_fid_scaling_is_number_of_protons(fid_basis):
    """FID[0] = protons: NAA 3 + 3, Cr 3 + 2, Cho 9 + 4, sIns 6."""
    np.testing.assert_allclose(fid_basis.fids[:, 0].real, [6, 5, 13, 6], atol=1e-9)
    np.testing.assert_allclose(fid_basis.fids[:, 0].imag, 0, atol=1e-9)


def test_sign_convention_matches_project():
    """A singlet at delta ppm is exp(-2j pi (delta - 4.65) cf t) = exp(2j pi ppm_to_hz t)."""
    sins = simulate_basis("fid", CF_MHZ, DWELL_S, 64, metabolites=["sIns"], use_cache=False)
    t = np.arange(64) * DWELL_S
    expected = 6 * np.exp(2j * np.pi * float(ppm_to_hz(3.34, CF_MHZ)) * t)
    np.testing.assert_allclose(sins.fids[0], expected, atol=1e-9)


def test_basis_fields_and_provenance(tmp_path):
    basis = simulate_basis("press", 298.06, 1 / 3000, 1024, echo_time_s=0.03, te1_s=0.012,
                           metabolites=["Lac", "GABA"], cache_dir=str(tmp_path))
    assert isinstance(basis, Basis) and basis.names == ["Lac", "GABA"]
    assert basis.fids.shape == (2, 1024) and basis.cf_mhz == 298.06
    assert basis.dwell_s == pytest.approx(1 / 3000) and basis.ref_ppm == 4.65
    prov = basis.provenance
    assert prov["sequence"] == "press"
    assert prov["timings_s"] == pytest.approx({"echo_time_s": 0.03, "te1_s": 0.012,
                                               "te2_s": 0.018})
    assert set(prov["spin_system_sources"]) == {"Lac", "GABA"}
    assert "G2015" in prov["spin_system_sources"]["GABA"]
    assert prov["software_version"] == pipeline.__version__ and prov["linewidth_hz"] == 0.0


def test_default_metabolites_and_water():
    assert len(DEFAULT_METABOLITES) == 19 and "H2O" not in DEFAULT_METABOLITES
    basis = simulate_basis("se", 123.2, 2.5e-4, 256, echo_time_s=0.03, use_cache=False,
                           metabolites=DEFAULT_METABOLITES + ["H2O"])
    assert basis.names[-1] == "H2O" and basis.fids.shape == (20, 256)
    assert np.all(np.isfinite(basis.fids))


def test_cache_hit_reuses_file_and_key_covers_parameters(tmp_path, monkeypatch):
    kwargs = dict(metabolites=["Lac"], cache_dir=str(tmp_path))
    first = simulate_basis("se", CF_MHZ, DWELL_S, 256, echo_time_s=0.144, **kwargs)
    files = sorted(tmp_path.glob("*.npy"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    def boom(*args, **kw):
        raise AssertionError("simulated although cached")
    monkeypatch.setattr(basis_simulation, "simulate_metabolite_fid", boom)
    again = simulate_basis("se", CF_MHZ, DWELL_S, 256, echo_time_s=0.144, **kwargs)
    np.testing.assert_array_equal(again.fids, first.fids)
    monkeypatch.undo()
    simulate_basis("se", CF_MHZ, DWELL_S, 256, echo_time_s=0.288, **kwargs)
    simulate_basis("se", CF_MHZ + 1, DWELL_S, 256, echo_time_s=0.144, **kwargs)
    assert len(list(tmp_path.glob("*.npy"))) == 3


def test_corrupt_cache_file_is_recomputed(tmp_path):
    first = simulate_basis("fid", CF_MHZ, DWELL_S, 128, metabolites=["Cr"],
                           cache_dir=str(tmp_path))
    (cached,) = tmp_path.glob("*.npy")
    cached.write_bytes(b"not a numpy file")
    again = simulate_basis("fid", CF_MHZ, DWELL_S, 128, metabolites=["Cr"],
                           cache_dir=str(tmp_path))
    np.testing.assert_allclose(again.fids, first.fids)


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "dmrs-bids" / "basis"


@pytest.mark.parametrize("kwargs,problem", [
    (dict(sequence="mega"), "unknown sequence"),
    (dict(sequence="steam", echo_time_s=0.02), "mixing time"),
    (dict(sequence="fid", metabolites=["Unobtainium"]), "no spin system"),
    (dict(sequence="fid", n_points=1), "n_points"),
    (dict(sequence="fid", cf_mhz=-1.0), "cf_mhz"),
    (dict(sequence="fid", dwell_s=0.0), "dwell_s"),
    (dict(sequence="fid", ref_ppm=float("nan")), "ref_ppm"),
    (dict(sequence="fid", linewidth_hz=-2.0), "linewidth_hz"),
    (dict(sequence="se", echo_time_s=-0.03), "positive time"),
])
def test_bad_requests_raise_value_error(kwargs, problem):
    args = dict(cf_mhz=CF_MHZ, dwell_s=DWELL_S, n_points=64, use_cache=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=problem):
        simulate_basis(**args)


def test_match_reference_recovers_known_shift_and_broadening():
    """Broaden and shift a simulated basis by known amounts, then recover them."""
    sim = simulate_basis("fid", CF_MHZ, DWELL_S, N, metabolites=["Cr", "NAA"], use_cache=False)
    t = np.arange(N) * DWELL_S
    target = sim.fids * np.exp(-np.pi * 4.0 * t + 2j * np.pi * 1.7 * t)
    ref = Basis(sim.names, target, DWELL_S, CF_MHZ)
    match = match_reference(sim, ref, "Cr")
    assert match["shift_hz"] == pytest.approx(1.7, abs=0.05)
    assert match["lorentz_hz"] == pytest.approx(4.0, abs=0.5)


def test_concurrent_writers_share_one_complete_cache_file(tmp_path):
    """Writers racing on one key each write a temporary file and rename it into place."""
    from concurrent.futures import ThreadPoolExecutor

    def run(_):
        return simulate_basis("press", CF_MHZ, DWELL_S, 512, echo_time_s=0.03,
                              metabolites=["GABA"], cache_dir=str(tmp_path)).fids
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(8)))
    for fids in results[1:]:
        np.testing.assert_array_equal(fids, results[0])
    assert len(list(tmp_path.glob("*.npy"))) == 1 and not list(tmp_path.glob("*.tmp"))
    reread = simulate_basis("press", CF_MHZ, DWELL_S, 512, echo_time_s=0.03,
                            metabolites=["GABA"], cache_dir=str(tmp_path))
    np.testing.assert_array_equal(reread.fids, results[0])


@pytest.mark.parametrize("te_s, sign", [(0.144, -1.0), (0.288, 1.0)])
def test_lactate_basis_entry_inverted_at_te_144_upright_at_288(te_s, sign):
    """The packaged Lac spin system through simulate_basis (spin echo, 3 T): the real part of
    the 1.31 ppm doublet is negative at TE 144 ms and positive at 288 ms, with an area close to
    its 3 protons times cos(pi J TE) (weak coupling, J = 6.93 Hz)."""
    basis = simulate_basis("se", CF_MHZ, DWELL_S, N, echo_time_s=te_s, metabolites=["Lac"],
                           linewidth_hz=2.0, use_cache=False)
    doublet = _area(basis, "Lac", 1.31, 0.06)
    reference = _area(simulate_basis("fid", CF_MHZ, DWELL_S, N, metabolites=["Lac"],
                                     linewidth_hz=2.0, use_cache=False), "Lac", 1.31, 0.06)
    assert np.sign(doublet) == sign
    assert doublet / reference == pytest.approx(np.cos(np.pi * 6.93 * te_s), abs=0.05)
