"""Basis file formats: every basis in ../shared/data loads into the project convention, and the
writers round-trip (JSON bit-exact, LCModel within its printed precision)."""

from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from pipeline.basis import Basis
from pipeline.io import basis_tools
from pipeline.io.basis_formats import (BasisFormatError, parse_namelist_body, read_basis,
                                       read_basis_as_stored, write_json_basis,
                                       write_lcmodel_basis)
from pipeline.spectra import H1_REFERENCE_PPM, time_axis_s

ISMRM = "ismrm2016_fitting_challenge"
ISMRM_TEXT_GRID = {"dwell_s": 2.5e-4, "cf_mhz": 123.2}  # 4000 Hz, 123.2 MHz (data README)

# Grids for folder-form basis sets whose files state none. raw_7t_mppca has no header: its
# NAA-Cr separation (0.0801 cycles/sample per ppm) fits 400.2 MHz x 0.2 ms, not 7 T.
FOLDER_GRIDS = {
    f"{ISMRM}/basisset_text": ISMRM_TEXT_GRID,
    f"{ISMRM}/basisset_text_noTMS": ISMRM_TEXT_GRID,
    "basis_variants/raw_7t_mppca": {"dwell_s": 2e-4, "cf_mhz": 400.2},
}

KNOWN_NAMES = {"naa", "naag", "cr", "pcr", "gpc", "pch", "pcho", "ins", "sins", "scyllo", "glu",
               "gln", "gaba", "gsh", "tau", "lac", "ala", "asp", "glc", "pe", "asc", "mac", "mm"}


def discovered_basis_sources():
    """Every basis in the shared data, so that a new one is covered: LCModel .BASIS files,
    folders of >= 5 .RAW files without .H2O (data folders have water references), and
    folders of .txt files named like a basis set."""
    if not SHARED_DATA.is_dir():
        return []
    files = [p for p in SHARED_DATA.rglob("*") if p.is_file() and p.suffix.lower() == ".basis"]
    folders = []
    for folder in (p for p in SHARED_DATA.rglob("*") if p.is_dir()):
        suffixes = [f.suffix.lower() for f in folder.iterdir() if f.is_file()]
        if suffixes.count(".raw") >= 5 and ".h2o" not in suffixes:
            folders.append(folder)
        elif suffixes.count(".txt") >= 5 and "basis" in folder.name.lower():
            folders.append(folder)
    return sorted(str(p.relative_to(SHARED_DATA)) for p in files + folders)


ALL_SOURCES = [(p, FOLDER_GRIDS.get(p, {})) for p in discovered_basis_sources()]


def lorentzian_basis(dwell_s=5e-4, n_points=1024, cf_mhz=123.2, lw_hz=4.0, ref_ppm=4.65):
    """Analytic basis: NAA, Cr, GPC singlets and a 7 Hz doublet at 1.31 ppm ("Lac")."""
    t = time_axis_s(n_points, dwell_s)
    lines = {"NAA": [(2.008, 3.0)], "Cr": [(3.027, 3.0), (3.913, 2.0)], "GPC": [(3.212, 9.0)],
             "Lac": [(1.31 + 3.5 / cf_mhz, 1.5), (1.31 - 3.5 / cf_mhz, 1.5)]}
    fids = [sum(a * np.exp(2j * np.pi * (ref_ppm - d) * cf_mhz * t) for d, a in peaks)
            * np.exp(-np.pi * lw_hz * t) for peaks in lines.values()]
    return Basis(list(lines), np.array(fids), dwell_s, cf_mhz, ref_ppm)


# --- every basis in the shared data -------------------------------------------------------

def test_discovery_finds_every_basis_dialect(shared_data):
    """Guards the parametrised test below against passing on an empty or shrunken list."""
    found = {relpath for relpath, _ in ALL_SOURCES}
    assert len(found) >= 19
    for expected in ("dmrs_7t_steam_synthetic/basis_STEAM_TE45_TM60.BASIS",
                     f"{ISMRM}/basisset_LCModel", f"{ISMRM}/basisset_JMRUI",
                     f"{ISMRM}/basisset_text", "basis_variants/raw_7t_mppca",
                     "lcmodel_test/3t.basis", "vendor_formats_suspect/lcmodel/press_30ms_3T.basis"):
        assert expected in found
    assert sum("dspecial_9p4t" in p for p in found) == 4  # the HZPPPM= (no space) dialect
    assert sum(p.startswith("osprey_3t/") for p in found) == 5


@pytest.mark.parametrize("relpath,grid", ALL_SOURCES, ids=[s[0] for s in ALL_SOURCES])
def test_shared_basis_loads_with_singlets_in_place(shared_data, relpath, grid):
    basis = read_basis(shared_data / relpath, **grid)
    assert len(basis.names) >= 10
    assert np.all(np.isfinite(basis.fids)) and basis.n_points >= 512
    assert all(n and n.isprintable() and "/" not in n for n in basis.names)
    recognised = {n.lower() for n in basis.names} & KNOWN_NAMES
    assert len(recognised) >= 8, basis.names
    offsets = basis_tools.singlet_offsets_ppm(basis)
    assert len(offsets) >= 3, basis.names
    for name, offset in offsets.items():
        assert abs(offset) < 0.01, f"{relpath}: {name} singlet off by {offset:+.4f} ppm"
    # no reference peak left at 0 ppm, and the decisions are on record
    assert not any(basis_tools.has_reference_peak(f, basis.dwell_s, basis.cf_mhz)
                   for n, f in zip(basis.names, basis.fids) if n.lower() != "mac")
    assert {"convention", "referencing", "format", "source"} <= set(basis.provenance)
    assert basis.provenance["domain_check"]["decision"].startswith("format's domain")


def test_lcmodel_basis_equals_its_raw_files(shared_data):
    """press3T_30ms.BASIS (spectra, 4096 points) and the .RAW FIDs it was made from (2048
    points) agree after the domain/ISHIFT handling: same FID up to LCModel's 1/64 scale,
    zero-filled to twice the length."""
    folder = shared_data / ISMRM / "basisset_LCModel"
    spectra_form = read_basis_as_stored(folder / "press3T_30ms.BASIS")
    fid_form = read_basis_as_stored(folder)
    for name in ("NAA", "Cr", "Glu", "Mac"):
        long_fid, fid = spectra_form.fid(name), fid_form.fid(name)
        head = long_fid[:fid.size]
        assert np.linalg.norm(head - fid / 64) < 1e-4 * np.linalg.norm(head)
        assert np.abs(long_fid[fid.size:]).max() < 1e-4 * np.abs(head).max()


def test_jmrui_text_and_raw_forms_agree_after_convention_detection(shared_data):
    """The jMRUI export is the complex conjugate of the .RAW/.txt FIDs; detection must undo it."""
    jmrui = read_basis(shared_data / ISMRM / "basisset_JMRUI")
    assert all(jmrui.provenance["convention"]["conjugated"].values())
    text = read_basis(shared_data / ISMRM / "basisset_text", dwell_s=jmrui.dwell_s,
                      cf_mhz=jmrui.cf_mhz)
    assert not any(text.provenance["convention"]["conjugated"].values())
    assert text.names == jmrui.names
    for name in text.names:
        a, b = text.fid(name), jmrui.fid(name)
        assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(b), name


def test_tms_removal_matches_the_no_tms_basis(shared_data):
    """ismrm2016 basisset_text carries TMS at 0 ppm, basisset_text_noTMS does not: after removal
    they agree. (Their Mac entries differ beyond TMS, e.g. first point 20.04 vs 10.51:
    excluded.)"""
    with_tms = read_basis(shared_data / ISMRM / "basisset_text", **ISMRM_TEXT_GRID)
    without = read_basis(shared_data / ISMRM / "basisset_text_noTMS", **ISMRM_TEXT_GRID)
    removed = with_tms.provenance["reference_peak_removed"]
    assert set(removed) == set(with_tms.names) - {"Mac"}
    assert "reference_peak_removed" not in without.provenance
    for name in set(with_tms.names) - {"Mac"}:
        assert abs(removed[name]["ppm"]) < 0.01
        a, b = with_tms.fid(name), without.fid(name)
        assert np.linalg.norm(a - b) < 1e-3 * np.linalg.norm(b), name
    kept = read_basis(shared_data / ISMRM / "basisset_text", remove_reference=False,
                      **ISMRM_TEXT_GRID)
    tms_at_t0 = (kept.fid("NAA") - without.fid("NAA"))[0]  # the TMS really was there: 0.1
    assert tms_at_t0 == pytest.approx(0.1, abs=1e-3)


def test_osprey_basis_referenced_to_published_singlets(shared_data):
    """Osprey's 3 T PRESS basis sets are referenced 0.03 ppm low; reading fixes that."""
    path = (shared_data / "osprey_3t/fit/basissets/3T/philips/unedited/press/35"
            / "3T_PRESS_Philips_35ms_noMM.BASIS")
    as_stored = read_basis(path, referencing="as_stored")
    assert basis_tools.singlet_offsets_ppm(as_stored)["NAA"] == pytest.approx(-0.030, abs=0.002)
    fixed = read_basis(path)
    assert fixed.provenance["referencing"]["median_offset_ppm"] == pytest.approx(-0.030,
                                                                                  abs=0.002)
    for offset in basis_tools.singlet_offsets_ppm(fixed).values():
        assert abs(offset) < 0.002


# --- writers: round trips -----------------------------------------------------------------

def test_json_round_trip_is_bit_exact(tmp_path):
    basis = lorentzian_basis()
    basis.provenance = {"how": "analytic", "numbers": [1.0, 2.5e-300], "nested": {"a": True}}
    write_json_basis(basis, tmp_path / "b.json")
    back = read_basis(tmp_path / "b.json")
    assert np.array_equal(back.fids, basis.fids)
    assert (back.names, back.dwell_s, back.cf_mhz, back.ref_ppm, back.nucleus) == \
        (basis.names, basis.dwell_s, basis.cf_mhz, basis.ref_ppm, basis.nucleus)
    assert back.provenance == basis.provenance


def _printed_precision_bound(fid: np.ndarray, digits: int = 8) -> float:
    """Largest FID change from printing the spectrum with ``digits`` decimals in E format:
    each real or imaginary value moves by at most half a unit in its last place,
    0.5 * 10**-digits of its magnitude; the inverse FFT averages those over N bins."""
    spectrum = np.fft.fft(fid)
    per_bin = 0.5 * 10.0 ** -digits * (np.abs(spectrum.real) + np.abs(spectrum.imag))
    return float(per_bin.sum() / fid.size) * (1 + 1e-6) + 1e-15


def test_lcmodel_round_trip_within_printed_precision(tmp_path):
    basis = lorentzian_basis()
    write_lcmodel_basis(basis, tmp_path / "b.BASIS", echo_time_s=0.03, sequence="PRESS")
    stored = read_basis(tmp_path / "b.BASIS", convention="as_stored", remove_reference=False,
                        referencing="as_stored")
    assert stored.names == basis.names
    assert stored.dwell_s == basis.dwell_s and stored.cf_mhz == basis.cf_mhz
    assert stored.provenance["echo_time_s"] == pytest.approx(0.03)
    for name in basis.names:
        error = np.abs(stored.fid(name) - basis.fid(name)).max()
        assert error <= _printed_precision_bound(basis.fid(name)), name
    # the automatic decisions leave a basis in the project convention untouched
    auto = read_basis(tmp_path / "b.BASIS")
    assert not any(auto.provenance["convention"]["conjugated"].values())
    assert "reference_peak_removed" not in auto.provenance
    assert auto.provenance["referencing"]["decision"].startswith("as stored")
    assert np.array_equal(auto.fids, stored.fids)


def test_lcmodel_writer_layout(tmp_path):
    basis = lorentzian_basis(n_points=512)
    write_lcmodel_basis(basis, tmp_path / "b.BASIS")
    lines = (tmp_path / "b.BASIS").read_text().splitlines()
    sections = [ln.strip() for ln in lines if ln.strip().startswith("$")]
    expected = ["$SEQPAR", "$END", "$BASIS1", "$END"] + \
        ["$NMUSED", "$END", "$BASIS", "$END"] * len(basis.names)
    assert sections == expected
    data = [ln for ln in lines if ln and not ln.lstrip().startswith("$") and "=" not in ln]
    assert len(data) == len(basis.names) * (2 * 512 // 6 + 1)
    assert all(len(ln) == 96 for ln in data[:-1] if len(ln) != 2 * 512 % 6 * 16)
    assert "FMTBAS = '(6E16.8)'" in "\n".join(lines)


def test_re_reading_a_shared_basis_through_lcmodel_and_json(shared_data, tmp_path):
    original = read_basis(shared_data / "lcmodel_test" / "3t.basis")
    write_lcmodel_basis(original, tmp_path / "a.BASIS")
    write_json_basis(original, tmp_path / "a.json")
    again = read_basis(tmp_path / "a.BASIS")
    assert again.names == original.names
    for name in original.names:
        assert np.abs(again.fid(name) - original.fid(name)).max() <= \
            _printed_precision_bound(original.fid(name)), name
    assert np.array_equal(read_basis(tmp_path / "a.json").fids, original.fids)


# --- convention detection and referencing on analytic data --------------------------------

def _write_text_folder(folder: Path, basis: Basis, conjugate: bool):
    folder.mkdir()
    for name, fid in zip(basis.names, basis.fids):
        fid = np.conj(fid) if conjugate else fid
        np.savetxt(folder / f"{name}.txt", np.column_stack([fid.real, fid.imag]), fmt="%.17e")


@pytest.mark.parametrize("conjugate", [False, True])
def test_conjugation_detected_from_the_data(tmp_path, conjugate):
    basis = lorentzian_basis()
    _write_text_folder(tmp_path / "txt", basis, conjugate)
    back = read_basis(tmp_path / "txt", dwell_s=basis.dwell_s, cf_mhz=basis.cf_mhz)
    assert sorted(back.names) == sorted(basis.names)
    assert list(back.provenance["convention"]["conjugated"].values()) == \
        [conjugate] * len(basis.names)
    assert np.allclose(back.fids, basis.subset(back.names).fids, rtol=0, atol=1e-12)


def test_misreferenced_basis_is_shifted_back(tmp_path):
    basis = lorentzian_basis(dwell_s=2.5e-4, n_points=4096)
    shifted = Basis(basis.names, basis_tools.shift_fids_ppm(basis.fids, basis.dwell_s,
                                                            basis.cf_mhz, 0.04),
                    basis.dwell_s, basis.cf_mhz)
    assert basis_tools.singlet_offsets_ppm(shifted)["NAA"] == pytest.approx(0.04, abs=1e-3)
    fixed = basis_tools.reference_basis(shifted)
    assert fixed.provenance["referencing"]["median_offset_ppm"] == pytest.approx(0.04, abs=1e-3)
    assert np.abs(fixed.fids - basis.fids).max() < 0.02 * np.abs(basis.fids).max()


def test_reference_peak_fit_recovers_an_added_tms_line():
    basis = lorentzian_basis(dwell_s=2.5e-4, n_points=2048)
    t = time_axis_s(basis.n_points, basis.dwell_s)
    tms = 0.2 * np.exp(2j * np.pi * H1_REFERENCE_PPM * basis.cf_mhz * t - 6.0 * t - 30 * t ** 2)
    with_tms = Basis(basis.names, basis.fids + tms, basis.dwell_s, basis.cf_mhz)
    cleaned = basis_tools.remove_reference_peak(with_tms)
    removed = cleaned.provenance["reference_peak_removed"]
    assert set(removed) == set(basis.names)
    for fit in removed.values():
        assert fit["amplitude_abs"] == pytest.approx(0.2, rel=2e-3)
        assert fit["lorentz_rate_s"] == pytest.approx(6.0, rel=0.02)
        assert fit["gauss_rate_s2"] == pytest.approx(30.0, rel=0.02)
        assert abs(fit["ppm"]) < 1e-4
    # what is left differs from the clean basis by < 0.5 % of the TMS amplitude
    assert np.abs(cleaned.fids - basis.fids).max() < 5e-3 * 0.2
    untouched = basis_tools.remove_reference_peak(basis)
    assert np.array_equal(untouched.fids, basis.fids)


# --- namelist dialects and bad input ------------------------------------------------------

def test_namelist_dialects():
    body = """ FWHMBA= -1.00000000    ,
 HZPPPM=  400.216003    ,
 ID = 'Mac''''',
 ECHOT =  ,
 SEQ = 'PRESS'
 AUTOPH=F, FLAG = .true.,
 PPMAPP =  0.5 -0.5,
 BADELT = 2.5D-04, NDATAB =       4096,"""
    values = parse_namelist_body(body)
    assert values["HZPPPM"] == 400.216003 and values["FWHMBA"] == -1.0
    assert values["ID"] == "Mac''" and values["ECHOT"] is None and values["SEQ"] == "PRESS"
    assert values["AUTOPH"] is False and values["FLAG"] is True
    assert values["PPMAPP"] == [0.5, -0.5]
    assert values["BADELT"] == 2.5e-4 and values["NDATAB"] == 4096


def test_truncated_basis_is_refused_naming_the_file(tmp_path):
    write_lcmodel_basis(lorentzian_basis(n_points=256), tmp_path / "b.BASIS")
    text = (tmp_path / "b.BASIS").read_text().splitlines()
    (tmp_path / "cut.BASIS").write_text("\n".join(text[:-5]) + "\n")
    with pytest.raises(BasisFormatError, match=r"cut\.BASIS.*NDATAB"):
        read_basis(tmp_path / "cut.BASIS")


def test_encrypted_basis_is_refused(tmp_path):
    write_lcmodel_basis(lorentzian_basis(n_points=64), tmp_path / "b.BASIS")
    text = (tmp_path / "b.BASIS").read_text().replace("BADELT = 0.0005", "BADELT = -1.0")
    (tmp_path / "enc.BASIS").write_text(text)
    with pytest.raises(BasisFormatError, match="encrypted"):
        read_basis(tmp_path / "enc.BASIS")


def test_plain_text_without_grid_asks_for_it(tmp_path):
    _write_text_folder(tmp_path / "txt", lorentzian_basis(n_points=64), False)
    with pytest.raises(BasisFormatError, match="dwell_s"):
        read_basis(tmp_path / "txt")


def test_unknown_file_is_refused(tmp_path):
    (tmp_path / "x.dat").write_text("hello\n")
    with pytest.raises(ValueError, match=r"x\.dat"):
        read_basis(tmp_path / "x.dat")


def test_domain_is_checked_against_the_data(tmp_path):
    """Spectra saved where FIDs are expected are recognised and transformed back."""
    basis = lorentzian_basis(n_points=512)
    folder = tmp_path / "spectra_as_text"
    folder.mkdir()
    for name, fid in zip(basis.names, basis.fids):
        spectrum = np.fft.fft(fid)
        np.savetxt(folder / f"{name}.txt", np.column_stack([spectrum.real, spectrum.imag]),
                   fmt="%.17e")
    back = read_basis(folder, dwell_s=basis.dwell_s, cf_mhz=basis.cf_mhz)
    assert back.provenance["domain_check"]["decision"].startswith("other domain")
    assert np.allclose(back.fids, basis.subset(back.names).fids, rtol=0, atol=1e-12)
