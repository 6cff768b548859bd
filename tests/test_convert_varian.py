"""Varian/Agilent ``.fid`` folders through ``dmrs-bids-convert`` (the project's own reader,
``pipeline.io.varian``): the real mm_consensus folders convert with procpar's grid and timings
and NAA/MM09 where they belong; a synthetic folder with known sums checks the averaging, the
transients and the geometry; broken folders give one line naming the file; the 7 T human
STEAM spectrum runs end to end with ratios near LCModel's on the same spectrum."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from bids_app.convert import ConversionError, convert_dataset, main
from pipeline.io.nifti_mrs import read_nifti_mrs
from pipeline.spectra import fid_to_spectrum

FOLDERS = sorted(f"{group}/{name}" for group, names in {
    "STEAM_human_spectra": ("7T_STEAM_TE6ms_human.fid", "4T_STEAM_TE4ms_human.fid"),
    "MM_database": ("14.1T_MM_rat_SPECIAL_Lausanne.fid", "3T_MM_human_STEAM_CMRR.fid",
                    "4T_MM_human_STEAM_CMRR.fid", "7T_MM_human_STEAM_CMRR.fid",
                    "9.4T_MM_cat_STEAM_CMRR.fid", "9.4T_MM_human_sLASER_Tubingen.fid",
                    "9.4T_MM_mouse_STEAM_CMRR.fid", "9.4T_MM_rat_STEAM_CMRR.fid")}.items()
    for name in names)
HUMAN_7T = "STEAM_human_spectra/7T_STEAM_TE6ms_human.fid"


def procpar_first(procpar: Path, name: str):
    """First value of ``name`` read straight from the procpar text (the line after the
    parameter's 11-field line), independent of the reader under test."""
    lines = procpar.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[:1] == [name]
             and len(line.split()) == 11)
    value = lines[i + 1].split(None, 1)[1].strip()
    return value.strip('"') if value.startswith('"') else float(value.split()[0])


def _mapping(tmp_path: Path, name: str, suffix: str = "svs", extra: str = "") -> Path:
    mapping = tmp_path / "map.toml"
    mapping.write_text(f'[[acquisition]]\nparticipant = "01"\nsuffix = "{suffix}"\n'
                       f'format = "varian"\nfiles = ["{name}"]\n{extra}')
    return mapping


def _convert(mapping: Path, out: Path, source: Path) -> tuple[Path, dict]:
    [written] = convert_dataset(mapping, out, source, log=lambda *_: None,
                                warn=lambda *_: None)
    return written, json.loads(written.with_suffix("").with_suffix(".json").read_text())


def _peak_and_mirror(acq, centre_ppm: float, half_width_ppm: float = 0.06):
    """(ppm of the largest |spectrum| within centre +/- half width, that height / the largest
    in the mirror-image window about the receiver, 4.65 ppm)."""
    ppm = acq.ppm()
    spectrum = np.abs(fid_to_spectrum(acq.fids[0, :, 0].mean(axis=0)))
    near = np.abs(ppm - centre_ppm) <= half_width_ppm
    mirror = np.abs(ppm - (2 * 4.65 - centre_ppm)) <= half_width_ppm
    return ppm[near][np.argmax(spectrum[near])], spectrum[near].max() / spectrum[mirror].max()


@pytest.mark.parametrize("name", FOLDERS)
def test_real_varian_folder_converts_with_procpar_facts(shared_data, tmp_path, name):
    """Grid (sfrq MHz, sw Hz, np / 2 points), TE/TR in s as procpar states them (te 0.002-0.024
    s here), MixingTime only for STEAM; NAA (spectra) or MM09 (MM) on the app's axis and no
    mirror image: the stored FIDs need no conjugation."""
    source = shared_data / "mm_consensus"
    procpar = source / name / "procpar"
    suffix = "mm" if name.startswith("MM_") else "svs"
    written, sidecar = _convert(_mapping(tmp_path, name, suffix), tmp_path / "out", source)
    acq = read_nifti_mrs(written, sidecar=sidecar)
    assert acq.fids.shape == (1, 1, 1, procpar_first(procpar, "np") / 2)
    assert acq.cf_mhz == pytest.approx(procpar_first(procpar, "sfrq"), rel=1e-9)
    assert sidecar["SpectralWidth"] == pytest.approx(procpar_first(procpar, "sw"), rel=1e-9)
    assert sidecar["EchoTime"] == procpar_first(procpar, "te") < 0.03
    assert sidecar["RepetitionTime"] == procpar_first(procpar, "tr")
    steam = "STEAM" in name
    assert sidecar.get("MixingTime") == (procpar_first(procpar, "tm") if steam else None)
    assert sidecar.get("PulseSequenceType") == ("STEAM" if steam else "sLASER" if "sLASER" in
                                                name else None)  # SPECIAL: none simulated
    if suffix == "svs":
        naa_ppm, over_mirror = _peak_and_mirror(acq, 2.01)
        assert naa_ppm == pytest.approx(2.01, abs=0.03) and over_mirror > 5
    else:
        _, over_mirror = _peak_and_mirror(acq, 0.9, 0.12)
        assert over_mirror > 3


def test_7t_fid_is_the_stored_sum_over_its_transients(shared_data, tmp_path):
    """The written FID is the file's float32 data (after the 32-byte file and 28-byte block
    headers) divided by the block's ctcount, 160 = procpar nt; NumberOfTransients 160."""
    source = shared_data / "mm_consensus"
    written, sidecar = _convert(_mapping(tmp_path, HUMAN_7T), tmp_path / "out", source)
    raw = np.frombuffer((source / HUMAN_7T / "fid").read_bytes(), ">f4", offset=60)
    stored = raw[0::2] + 1j * raw[1::2]
    assert read_nifti_mrs(written).fids[0, 0, 0] == pytest.approx(stored / 160, rel=1e-6)
    assert sidecar["NumberOfTransients"] == 160 == procpar_first(source / HUMAN_7T / "procpar",
                                                                 "nt")
    assert sidecar["Manufacturer"] == "Varian" and "PatientName" not in sidecar


# --- a synthetic folder with known content --------------------------------------------

PROCPAR_LINES = {  # name -> (basic type 1 real / 2 string, values)
    "sfrq": (1, [400.2]), "sw": (1, [5000.0]), "np": (1, [8.0]), "te": (1, [0.01]),
    "tr": (1, [3.0]), "tm": (1, [0.02]), "tn": (2, ["H1"]), "seqfil": (2, ["steam"]),
    "rcvrs": (2, ["y"]), "array": (2, [""]), "vox1": (1, [2.0]), "vox2": (1, [3.0]),
    "vox3": (1, [4.0]), "pos1": (1, [0.5]), "pos2": (1, [-0.2]), "pos3": (1, [0.1]),
    "vpsi": (1, [0.0]), "vphi": (1, [90.0]), "vtheta": (1, [0.0]),
}


def write_procpar(path: Path, params: dict) -> None:
    text = []
    for name, (kind, values) in params.items():
        text.append(f"{name} 1 {kind} 1e+18 -1e+18 0 2 1 0 1 64")
        shown = [f'"{v}"' for v in values] if kind == 2 else [f"{v:g}" for v in values]
        text += [f"{len(values)} {shown[0]}", *shown[1:]] if kind == 2 else \
            [f"{len(values)} {' '.join(shown)} "]
        text.append("0 ")
    path.write_text("\n".join(text) + "\n")


def write_fid(path: Path, blocks: np.ndarray, counts, scales=None, dtype=">i4") -> None:
    """``blocks`` (blocks, traces, points) complex as integer sums (int32, or int16 with
    ``dtype=">i2"``), one header per block; a block's ``scales`` s > 0 (VnmrJ's right shift of
    integer data) stores its sums divided by 2^s, with s in its header."""
    n_blocks, n_traces, n_points = blocks.shape
    size = np.dtype(dtype).itemsize
    status = 0x1 | 0x10 | (0x4 if size == 4 else 0)
    header = struct.pack(">6i2hi", n_blocks, n_traces, 2 * n_points, size,
                         2 * size * n_points, 28 + 2 * size * n_points * n_traces, 0, status, 1)
    body = b""
    for block, count, scale in zip(blocks, counts, scales or [0] * n_blocks):
        body += struct.pack(">4hi4f", scale, status, 0, 0, count, 0, 0, 0, 0)
        values = np.empty((n_traces, 2 * n_points))
        values[:, 0::2], values[:, 1::2] = block.real, block.imag
        body += np.round(values / 2 ** scale).astype(dtype).tobytes()
    path.write_bytes(header + body)


@pytest.fixture
def synthetic(tmp_path) -> tuple[Path, np.ndarray]:
    """Two blocks (``nt`` arrayed: repetitions) of one 4-point trace, sums of 4 and 2
    transients."""
    folder = tmp_path / "src" / "scan.fid"
    folder.mkdir(parents=True)
    sums = np.array([[[400 + 40j, 200 - 80j, -120 + 0j, 8 + 4j]],
                     [[100 + 10j, 60 - 20j, -30 + 2j, 2 + 2j]]])
    write_fid(folder / "fid", sums, [4, 2])
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "array": (2, ["nt"])})
    return folder, sums


def test_synthetic_blocks_are_averaged_transients_with_procpar_geometry(synthetic, tmp_path):
    folder, sums = synthetic
    written, sidecar = _convert(_mapping(tmp_path, folder.name), tmp_path / "out",
                                folder.parent)
    acq = read_nifti_mrs(written)
    assert acq.fids.shape == (1, 2, 1, 4)
    assert acq.fids[0, :, 0] == pytest.approx(sums[:, 0] / np.array([[4], [2]]))
    assert sidecar["NumberOfTransients"] == 6 and sidecar["AcquisitionVoxelSize"] == [2, 3, 4]
    assert (sidecar["EchoTime"], sidecar["MixingTime"], sidecar["PulseSequenceType"]) == \
        (0.01, 0.02, "STEAM")
    affine = np.asarray(acq.metadata["nifti_affine"])
    assert affine[:3, :3] == pytest.approx(np.diag([2, 3, 4]))  # identity rotation, mm
    assert affine[:3, 3] == pytest.approx([5, -2, 1])  # pos1-3 in cm
    [warning] = [w for w in acq.metadata["warnings"] if "orientation" in w]
    assert str(folder) in warning and "vphi 90" in warning


@pytest.mark.parametrize("array, values", [("gdiff", [0.0, 30.0]), ("(gdiff,dro)", [0.0, 30.0]),
                                           ("bdiff", []), ("gdiff", None)])
def test_blocks_of_an_arrayed_acquisition_are_not_pooled_silently(synthetic, tmp_path, array,
                                                                    values):
    """Blocks arrayed over a diffusion gradient (two strengths), jointly arrayed, or over a
    parameter procpar does not state: pooled as transients they averaged the b = 0 and the
    diffusion-weighted spectrum into one, exit 0 (before 2026-12-07). Now the conversion is
    refused naming the folder, the parameter and its values, and nothing is written; without
    ``gdiff`` in ``array`` (``values`` None: array names only ``nt``) the blocks are pooled."""
    folder, sums = synthetic
    params = {**PROCPAR_LINES, "array": (2, [array if values is not None else "nt"])}
    if values:
        params["gdiff"] = (1, values)
    write_procpar(folder / "procpar", params)
    out = tmp_path / "out"
    if values is None:
        written, _ = _convert(_mapping(tmp_path, folder.name), out, folder.parent)
        assert read_nifti_mrs(written).fids.shape == (1, 2, 1, 4)
        return
    with pytest.raises(ConversionError) as err:
        convert_dataset(_mapping(tmp_path, folder.name), out, folder.parent,
                        log=lambda *_: None, warn=lambda *_: None)
    message = str(err.value)
    assert str(folder) in message and "2 blocks" in message
    assert "[acquisition.dynamics] n_conditions = 2" in message
    name = "bdiff" if array == "bdiff" else "gdiff"
    assert (f"{name} = 0, 30" if values else f"{name} (no values in procpar)") in message
    assert not list(out.glob("**/*.nii.gz"))


@pytest.mark.parametrize("timing", ["tm", "ti"])
def test_blocks_arrayed_over_a_timing_are_refused_without_a_split_that_cannot_work(
        synthetic, tmp_path, timing):
    """Two mixing times (``tm`` arrayed) or inversion times (``ti``): one per acquisition in
    dmrs-bids, so no mapping split helps; the refusal says so instead of proposing b-values (a
    review found the proposed split then failed with "2 conditions need diffusion.b_values",
    or, for ``ti``, would label two inversion times as b-values)."""
    folder, _ = synthetic
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "array": (2, [timing]),
                                       timing: (1, [0.02, 0.1])})
    with pytest.raises(ConversionError) as err:
        convert_dataset(_mapping(tmp_path, folder.name), tmp_path / "out", folder.parent,
                        log=lambda *_: None, warn=lambda *_: None)
    message = str(err.value)
    assert f"{timing} = 0.02, 0.1" in message and f"one {timing} per acquisition" in message
    assert "[acquisition.dynamics]" not in message and "own .fid folder" in message


def test_a_varian_mm_arrayed_over_another_parameter_is_refused(synthetic):
    """The measured-MM reader averaged every block: an MM arrayed over its inversion time
    (two TIs) became one spectrum averaging both, without a word (review, 2026-12-07). Now
    refused naming the folder and the array; an ``nt`` array is still averaged (truth: the
    mean of the stored sums written; the MM's scale is fitted, so its counts do not matter)."""
    from pipeline.io.basis_formats import BasisFormatError
    from pipeline.io.mm_spectra import read_varian_fid

    folder, sums = synthetic
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "array": (2, ["ti"]),
                                       "ti": (1, [0.6, 0.9])})
    with pytest.raises(BasisFormatError, match=r"scan\.fid: its 2 blocks .*ti = 0\.6, 0\.9"):
        read_varian_fid(folder)
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "array": (2, ["nt"])})
    fid, *_ = read_varian_fid(folder)
    assert fid == pytest.approx((sums[0, 0] + sums[1, 0]) / 2)


def test_arrayed_blocks_split_by_the_mapping_become_conditions(synthetic, tmp_path):
    """The same two-strength gradient array with ``[acquisition.dynamics]`` and the b-values
    in the mapping: two conditions, each its own block's average (truth: the sums written)."""
    folder, sums = synthetic
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "array": (2, ["gdiff"]),
                                       "gdiff": (1, [0.0, 30.0])})
    extra = ('[acquisition.dynamics]\nn_conditions = 2\norder = "transient_fastest"\n'
             '[acquisition.diffusion]\nb_values = [0, 3000]\nb_value_units = "s/mm2"\n')
    written, _ = _convert(_mapping(tmp_path, folder.name, extra=extra), tmp_path / "out",
                          folder.parent)
    acq = read_nifti_mrs(written)
    assert acq.n_conditions == 2
    assert list(acq.b_values_s_mm2) == [0, 3000]
    averages = sums[:, 0] / np.array([[4], [2]])
    for condition in range(2):
        assert acq.fids[condition].reshape(-1, 4) == pytest.approx(averages[condition][None])


def _arrayed_folder(tmp_path, n_traces: int, array: str, values: dict):
    """A fid of ``len`` blocks x ``n_traces`` traces arrayed over ``values`` (name -> procpar
    values); block b, trace t holds the constant 1000 (b + 1) + 10 t (4 transients summed), so
    each written transient names the block and trace it came from."""
    n_blocks = max(len(v) for v in values.values()) if "," not in array else \
        int(np.prod([len(v) for v in values.values()]))
    folder = tmp_path / "src" / "scan.fid"
    folder.mkdir(parents=True)
    sums = 4 * np.array([[[1000 * (b + 1) + 10 * t] * 4 for t in range(n_traces)]
                         for b in range(n_blocks)], dtype=complex)
    write_fid(folder / "fid", sums, [4] * n_blocks)
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "array": (2, [array]),
                                       **{k: (1, v) for k, v in values.items()}})
    return folder


SPLIT = ('[acquisition.dynamics]\nn_conditions = 2\n{order}[acquisition.diffusion]\n'
         'b_values = [0, 3000]\nb_value_units = "s/mm2"\n')


@pytest.mark.parametrize("n_traces, array, values, order", [
    (2, "gdiff", {"gdiff": [0.0, 30.0]}, ""),
    (1, "gdiff,tm", {"gdiff": [0.0, 30.0], "tm": [0.02, 0.05, 0.1]},
     'order = "transient_fastest"\n')])
def test_conditions_that_pool_different_array_elements_are_refused(tmp_path, n_traces, array,
                                                                    values, order):
    """A split that does not follow the blocks: two gradient strengths x two traces each with
    the default order (condition_fastest: condition 0 got block 1's first trace and block 2's
    first trace, so both conditions averaged b = 0 with b = 3000, exit 0 before), or a gdiff x
    tm array of 6 blocks split into 2 conditions (three mixing times pooled in each, exit 0
    before). Now refused naming the folder, the condition and the proper split."""
    folder = _arrayed_folder(tmp_path, n_traces, array, values)
    out = tmp_path / "out"
    with pytest.raises(ConversionError) as err:
        convert_dataset(_mapping(tmp_path, folder.name, extra=SPLIT.format(order=order)), out,
                        folder.parent, log=lambda *_: None, warn=lambda *_: None)
    message = str(err.value)
    n_blocks = 2 if array == "gdiff" else 6
    assert str(folder) in message and "condition 1 of 2" in message
    assert f"n_conditions = {n_blocks}" in message and "transient_fastest" in message
    assert ("gdiff = 0; gdiff = 30" if array == "gdiff" else "block 1; block 2") in message
    assert not list(out.glob("**/*.nii.gz"))


def test_conditions_that_pool_repeated_array_elements_are_kept(tmp_path):
    """Four blocks arrayed over gdiff = 0, 0, 30, 30 split into two conditions (transient
    fastest): each condition pools the two blocks of its own gradient, as it should; truth:
    the values written into those blocks."""
    folder = _arrayed_folder(tmp_path, 1, "gdiff", {"gdiff": [0.0, 0.0, 30.0, 30.0]})
    extra = SPLIT.format(order='order = "transient_fastest"\n')
    written, _ = _convert(_mapping(tmp_path, folder.name, extra=extra), tmp_path / "out",
                          folder.parent)
    fids = read_nifti_mrs(written).fids
    assert fids.shape == (2, 2, 1, 4)
    assert fids[:, :, 0, 0].real.tolist() == [[1000, 2000], [3000, 4000]]


@pytest.mark.parametrize("dtype", [">i2", ">i4"])
def test_block_scale_multiplies_the_stored_integers_back(synthetic, tmp_path, dtype):
    """VnmrJ stores an integer block whose sum would overflow right-shifted by its header's
    scale s (readFIDdata multiplies by 2^s / ctcount). The same sums stored with scale 0 and
    with scale 3 give the same averages; before, the scaled block came out 8 x too small
    (exit 0: its transients an eighth of the others, the average 44 % low)."""
    folder, sums = synthetic
    both = np.concatenate([sums[:1], sums[:1]]) * 8
    write_fid(folder / "fid", both, [4, 4], scales=[0, 3], dtype=dtype)
    written, sidecar = _convert(_mapping(tmp_path, folder.name), tmp_path / "out",
                                folder.parent)
    fids = read_nifti_mrs(written).fids[0, :, 0]
    assert fids[0] == pytest.approx(both[0, 0] / 4) and fids[1] == pytest.approx(fids[0])
    assert sidecar["NumberOfTransients"] == 8


def test_leftover_tm_of_another_sequence_is_neither_written_nor_judged(synthetic, tmp_path):
    """A sLASER/SPECIAL procpar carries a leftover ``tm`` the sequence does not use: not
    written, so not refused either (before, a leftover tm of 20 refused the folder as a
    MixingTime in ms, though no MixingTime was written); a STEAM one is still refused."""
    folder, _ = synthetic
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "seqfil": (2, ["special"]),
                                       "tm": (1, [20.0])})
    logged: list[str] = []
    [written] = convert_dataset(_mapping(tmp_path, folder.name), tmp_path / "out",
                                folder.parent, log=logged.append, warn=lambda *_: None)
    sidecar = json.loads(written.with_suffix("").with_suffix(".json").read_text())
    assert "MixingTime" not in sidecar and sidecar["EchoTime"] == 0.01
    assert any("procpar tm = 20 not written: seqfil 'special'" in line for line in logged)
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "tm": (1, [20.0])})
    with pytest.raises(Exception, match="procpar tm = 20: VnmrJ states seconds"):
        _convert(_mapping(tmp_path, folder.name), tmp_path / "out2", folder.parent)


@pytest.mark.parametrize("key, value", [("tr", 80.0), ("tm", 4.0)])
def test_procpar_times_beyond_what_discovery_accepts_are_refused_at_conversion(
        synthetic, tmp_path, key, value):
    """The reader judges procpar times by the limits discovery applies to the converted file
    (TR 60 s, TM 3 s): before, TR 60-100 s and TM 3-5 s were written and the converted
    participant then refused by dmrs-bids."""
    from pipeline.io.input_checks import TIMING_LIMITS_S
    assert value > TIMING_LIMITS_S[{"tr": "RepetitionTime", "tm": "MixingTime"}[key]]
    folder, _ = synthetic
    write_procpar(folder / "procpar", {**PROCPAR_LINES, key: (1, [value])})
    with pytest.raises(Exception, match=f"procpar {key} = {value:g}"):
        _convert(_mapping(tmp_path, folder.name), tmp_path / "out", folder.parent)


@pytest.mark.parametrize("nt, warned", [([4.0, 2.0], False), ([40.0], True)])
def test_ctcount_against_procpar_nt(synthetic, tmp_path, nt, warned):
    """Block ctcounts 4 and 2: procpar nt 4, 2 agrees; nt 40 does not (a fid processed after
    the acquisition), which a warning names with both counts."""
    folder, _ = synthetic
    write_procpar(folder / "procpar", {**PROCPAR_LINES, "nt": (1, nt)})
    warnings: list[str] = []
    convert_dataset(_mapping(tmp_path, folder.name), tmp_path / "out", folder.parent,
                    log=lambda *_: None, warn=warnings.append)
    found = [w for w in warnings if "procpar nt" in w]
    assert found == ([f"{folder}: the fid's block header(s) state ctcount 4, 2 transient(s), "
                      "procpar nt 40: the fid was likely processed after the acquisition "
                      "(summed, cut or saved by another program); its sums are divided by "
                      "ctcount and NumberOfTransients is their sum. Ratios to tCr do not "
                      "depend on it; check the scale before water scaling with a reference "
                      "stored otherwise"] if warned else [])


def test_real_folders_whose_ctcount_is_not_nt_are_warned_about(shared_data):
    """procpar nt against the block ctcount on the real folders (read straight from the
    procpar text and the first block header): the 7 T human spectrum agrees (160), the 4 T
    one does not (ctcount 20, nt 160: NumberOfTransients 20)."""
    from pipeline.io.varian import read_varian_svs
    for name, agrees in (("STEAM_human_spectra/7T_STEAM_TE6ms_human.fid", True),
                         ("STEAM_human_spectra/4T_STEAM_TE4ms_human.fid", False)):
        folder = shared_data / "mm_consensus" / name
        ctcount = struct.unpack(">4hi4f", (folder / "fid").read_bytes()[32:60])[4]
        assert (ctcount == procpar_first(folder / "procpar", "nt")) == agrees
        acq, _ = read_varian_svs(folder)
        found = [w for w in acq.metadata["warnings"] if "procpar nt" in w]
        assert len(found) == (0 if agrees else 1)
        if not agrees:
            assert f"ctcount {ctcount} transient(s), procpar nt 160" in found[0]


def test_synthetic_folder_without_angles_names_the_missing_keys(synthetic, tmp_path):
    folder, _ = synthetic
    params = {k: v for k, v in PROCPAR_LINES.items() if k not in ("vpsi", "vphi", "vtheta")}
    write_procpar(folder / "procpar", params)
    warnings = []
    convert_dataset(_mapping(tmp_path, folder.name), tmp_path / "out", folder.parent,
                    log=lambda *_: None, warn=warnings.append)
    assert any(str(folder) in w and "lacks vpsi, vphi, vtheta" in w for w in warnings)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("damage, named, problem", [
    ("no procpar", "", "'procpar' missing"),
    ("truncated fid", "/fid", "truncated"),
    ("two receivers", "/procpar", "2 receivers"),
    ("procpar of another scan", "/fid", "procpar np 16 states 8"),
    ("te in ms", "/procpar", "te = 10: VnmrJ states seconds"),
    ("status of int16, 4-byte values", "/fid", "status 0x11 states 2-byte int16 values but its "
     "bytes per value 4"),
])
def test_broken_varian_folder_exits_2_with_one_line(synthetic, tmp_path, capsys, damage,
                                                    named, problem):
    folder, _ = synthetic
    if damage == "no procpar":
        (folder / "procpar").unlink()
    elif damage == "truncated fid":
        (folder / "fid").write_bytes((folder / "fid").read_bytes()[:-10])
    elif damage.startswith("status"):  # the int32 bit (0x4) cleared in the file header
        raw = bytearray((folder / "fid").read_bytes())
        raw[26:28] = struct.pack(">h", 0x1 | 0x10)
        (folder / "fid").write_bytes(bytes(raw))
    else:
        changed = {"two receivers": {"rcvrs": (2, ["yy"])}, "te in ms": {"te": (1, [10.0])},
                   "procpar of another scan": {"np": (1, [16.0])}}[damage]
        write_procpar(folder / "procpar", {**PROCPAR_LINES, **changed})
    assert main([str(_mapping(tmp_path, folder.name)), str(tmp_path / "out"), "--source-dir",
                 str(folder.parent), "-q"]) == 2
    line = _one_error_line(capsys)
    assert f"{folder}{named}:" in line and problem in line, line
    assert not (tmp_path / "out").exists()


# --- end to end ------------------------------------------------------------------------

LCMODEL_7T_WITH_MEASURED_MM = {"tNAA": 1.487, "Ins": 0.773, "Glx": 1.645}
"""LCModel's ratios to tCr on the 7 T human STEAM spectrum with the app's simulated STEAM basis
and the group's measured 7 T STEAM MM (README, CMRR table, row '7 T, sim + MM': app value and
its difference from LCModel, measured 2026-12-07 with benchmarks/bench_real_vs_lcmodel.py)."""


@pytest.mark.slow
def test_7t_human_steam_converted_and_run_end_to_end(shared_data, tmp_path):
    """The installed varian_svs example (7 T spectrum + measured MM) converted, then dmrs-bids
    with no configuration: exit 0, QC not failed, spectrum kept as stored (no mirror), tNAA/
    tCr within 5 % of LCModel's, Ins/tCr and Glx/tCr within 10 %."""
    from bids_app.convert import example_text
    from e2e_support import read_tsv, run_app

    mapping = tmp_path / "varian_svs.toml"
    mapping.write_text(example_text("varian_svs"))
    convert_dataset(mapping, tmp_path / "bids", shared_data / "mm_consensus",
                    log=lambda *_: None, warn=lambda *_: None)
    out = tmp_path / "out"
    run, _ = run_app(tmp_path / "bids", out, "participant", "-w", tmp_path / "work",
                     "--nprocs", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    stem = out / "sub-01" / "mrs" / "sub-01_acq-steam"
    qc = json.loads(Path(f"{stem}_qc.json").read_text())
    assert qc["summary"]["qc_status"] != "fail"
    assert qc["stages"]["coils.json"]["orientation"]["verdict"] == "as_is"
    assert qc["stages"]["mm.json"]["mode"] == "measured"
    ratios = {r["metabolite"]: float(r["ratio_tcr"]) for r in read_tsv(f"{stem}_amplitudes.tsv")}
    for name, lcmodel in LCMODEL_7T_WITH_MEASURED_MM.items():
        limit = 0.05 if name == "tNAA" else 0.10
        assert ratios[name] == pytest.approx(lcmodel, rel=limit), (name, ratios[name])

