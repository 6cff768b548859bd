"""A water reference recorded at several echo times in one file (a dim header
``{"EchoTime": [...]}``) is used at the metabolite data's TE, or at the shortest TE when none
matches, with a warning; before 2026-12-07 it was refused like a TE series of metabolite data,
which stays refused. Truth: entries scaled by known factors, and the run with the single-TE
water reference the series was built from."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_nifti_mrs_plausibility import BASE, _error, _nifti  # noqa: E402

from pipeline.io.echo_series import WATER_T2_KEY, water_echo_series_note  # noqa: E402
from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs  # noqa: E402


def _scaled_series(path, header, factors, n_transients=4):
    """A NIfTI-MRS file whose DIM_USER_0 entry i is the base FID times ``factors[i]``
    (dim_5 DIM_DYN transients); returns the path and the base FID."""
    _nifti(path, header, shape=(1, 1, 1, 32, n_transients, len(factors)))
    img = nib.load(str(path))
    base = np.asanyarray(img.dataobj)[..., :1]
    data = (base * np.asarray(factors, dtype=np.float32)).astype(np.complex64)
    out = nib.Nifti2Image(data, img.affine, header=img.header)
    nib.save(out, str(path))
    return path, base[0, 0, 0, :, 0, 0]


def _te_header(values, **more):
    return {**BASE, "dim_5": "DIM_DYN", "dim_6": "DIM_USER_0",
            "dim_6_header": {"EchoTime": {"Value": values, "Description": "TE (s)"}, **more}}


def test_water_series_uses_the_entries_at_the_data_te(tmp_path):
    """Entry 1 (TE 30 ms, the data's) is the base FID; the others are scaled: the water read
    is entry 1 exactly, at 30 ms (not the header's top-level 80 ms), with a warning naming
    the file, the TEs and the one used."""
    header = {**_te_header([0.08, 0.03, 0.144]), "EchoTime": 0.08}
    path, fid = _scaled_series(tmp_path / "w.nii.gz", header, [0.5, 1.0, 0.2])
    acq = read_nifti_mrs(path, water_for_echo_time_s=0.03)
    assert acq.fids.shape == (1, 4, 1, 32)
    np.testing.assert_array_equal(acq.fids[0, :, 0], np.broadcast_to(fid, (4, 32)))
    assert acq.metadata["EchoTime"] == 0.03
    note = [w for w in acq.metadata["warnings"] if "EchoTime series" in w]
    assert note == [f"{path}: the water reference holds an EchoTime series along dim_6 "
                    "(3 entries; TE 30 ms, 80 ms, 144 ms): the entries at the metabolite "
                    "data's TE, 30 ms, are used (1 of 3), the others are left out"]
    assert water_echo_series_note(path, 0.03) == note[0]  # discovery says the same


def test_water_series_without_the_data_te_uses_the_shortest(tmp_path):
    """start/increment form 40, 60, 80 ms for data at 30 ms: the 40 ms entry (scale 0.7),
    with the TE water scaling relaxes it at stated."""
    header = _te_header({"start": 0.04, "increment": 0.02})
    path, fid = _scaled_series(tmp_path / "w.nii.gz", header, [0.7, 0.4, 0.25])
    acq = read_nifti_mrs(path, water_for_echo_time_s=0.03)
    np.testing.assert_allclose(acq.fids[0, :, 0], np.broadcast_to(0.7 * fid, (4, 32)),
                               rtol=1e-6)
    assert acq.metadata["EchoTime"] == pytest.approx(0.04)
    assert any("none is at the metabolite data's TE (TE 30 ms), so the entries at the "
               "shortest TE, 40 ms, are used (1 of 3)" in w and
               w.endswith("water scaling relaxes the water at 40 ms")
               for w in acq.metadata["warnings"])


def test_water_t2_of_the_series_is_estimated_and_only_reported(tmp_path):
    """Entries scaled by exp(-TE / 95 ms) at 60/30/120/30 ms give T2 = 95 ms (the two at
    30 ms, the data's TE, are read as repeats: 2 x 4 transients); entries that also differ
    in b give none, saying why."""
    echo_times = [0.06, 0.03, 0.12, 0.03]
    path, _ = _scaled_series(tmp_path / "w.nii.gz", _te_header(echo_times),
                             [np.exp(-t / 0.095) for t in echo_times])
    acq = read_nifti_mrs(path, water_for_echo_time_s=0.03)
    assert acq.fids.shape == (1, 8, 1, 32)
    estimate = acq.metadata[WATER_T2_KEY]
    assert estimate["t2_s"] == pytest.approx(0.095, rel=1e-5)
    assert estimate["echo_times_s"] == [0.03, 0.06, 0.12]
    np.testing.assert_allclose(estimate["relative_signal"],
                               np.exp(-(np.array([0.03, 0.06, 0.12]) - 0.03) / 0.095),
                               rtol=1e-5)
    header = _te_header([0.03, 0.08], b_value=[0, 1000])
    path, _ = _scaled_series(tmp_path / "b.nii.gz", header, [1.0, 0.5])
    estimate = read_nifti_mrs(path, water_for_echo_time_s=0.03).metadata[WATER_T2_KEY]
    assert estimate["t2_s"] is None and "also labels b-values" in estimate["note"]


def test_water_t2_needs_two_echo_times(tmp_path):
    """30 and 30.04 ms are one TE (within 0.1 ms): no T2 can come from one TE, whatever the
    entries hold (entry 2 is the base times 0.5). Before, a line through the one averaged
    point reported t2_s 0.0193 s for the in-vivo 7 T water."""
    path, _ = _scaled_series(tmp_path / "w.nii.gz", _te_header([0.03, 0.03004]), [1.0, 0.5])
    acq = read_nifti_mrs(path, water_for_echo_time_s=0.03)
    assert acq.fids.shape == (1, 8, 1, 32)  # both kept, read as repeats
    estimate = acq.metadata[WATER_T2_KEY]
    assert estimate["t2_s"] is None and estimate["echo_times_s"] == [0.03]
    assert "one echo time" in estimate["note"]


def test_water_series_also_in_b_keeps_the_b_rules(tmp_path):
    """TE and b in one dimension: the entries at the data's TE (within 0.1 ms: 30 and
    30.04 ms are one TE) keep their b-values as diffusion conditions; a MixingTime still
    varying among them is refused as before."""
    header = _te_header([0.03, 0.03004, 0.08, 0.08], b_value=[0, 1000, 0, 1000])
    path, fid = _scaled_series(tmp_path / "w.nii.gz", header, [1.0, 0.6, 0.5, 0.3])
    acq = read_nifti_mrs(path, water_for_echo_time_s=0.03)
    np.testing.assert_array_equal(acq.b_values_s_mm2, [0, 1000])
    np.testing.assert_allclose(acq.fids[1, 0, 0], 0.6 * fid, rtol=1e-6)
    mixed = _te_header([0.03, 0.03, 0.08, 0.08], b_value=[0, 0, 0, 0],
                       MixingTime=[0.02, 0.3, 0.02, 0.3])
    path, _ = _scaled_series(tmp_path / "m.nii.gz", mixed, [1.0, 1.0, 0.5, 0.5])
    assert "'MixingTime' gives its 2 entries different MixingTime values [0.02, 0.3]" in \
        _error(path, water_for_echo_time_s=0.03)


def test_metabolite_series_and_two_te_dimensions_are_refused(tmp_path):
    """Read as data (no water TE given) the series is refused with the unchanged message;
    TEs along two dimensions or in ms are refused for a water reference too, naming it."""
    path, _ = _scaled_series(tmp_path / "a.nii.gz", _te_header([0.08, 0.03, 0.144]), [1, 1, 1])
    message = _error(path)
    assert "dim_6_header 'EchoTime' gives its 3 entries different EchoTime values " \
           "[0.08, 0.03, 0.144]" in message and "one file per timing" in message
    two = {**_te_header([0.03, 0.08]), "dim_5": "DIM_USER_1",
           "dim_5_header": {"EchoTime": [0.03, 0.144]}}
    path, _ = _scaled_series(tmp_path / "b.nii.gz", two, [1, 1], n_transients=2)
    assert "EchoTime varies along dim_5 and dim_6" in _error(path, water_for_echo_time_s=0.03)
    path, _ = _scaled_series(tmp_path / "c.nii.gz", _te_header([30, 80]), [1, 1])
    assert "echo times must be numbers of seconds" in _error(path, water_for_echo_time_s=0.03)
    with pytest.raises(NiftiMrsError, match="c.nii.gz"):
        water_echo_series_note(path, 0.03)


# ----------------------------------------------------------------- the whole run, real water

OSPREY_TE_S = 0.035
WATER_T2_S = 0.08
"""Injected water T2: an entry at TE t is the real water reference times exp(-(t - 35 ms)/T2)."""


def _series_dataset(single: Path, root: Path, echo_times: list[float], kind="mrsref") -> Path:
    """A copy of the spec2nii BIDS set whose ``kind`` file holds ``echo_times`` along
    DIM_USER_0, built from its single-TE file (header and sidecar EchoTime: the first
    entry's, a single value as a scanner export might state)."""
    bids = root / "bids"
    shutil.copytree(single, bids)
    path = bids / "sub-01" / "mrs" / f"sub-01_{kind}.nii.gz"
    img = nib.load(str(path))
    fid = np.asanyarray(img.dataobj)
    data = np.stack([fid * np.float32(np.exp(-(te - OSPREY_TE_S) / WATER_T2_S))
                     if te != OSPREY_TE_S else fid for te in echo_times], axis=-1)
    ext = next(json.loads(e.get_content()) for e in img.header.extensions if e.get_code() == 44)
    ext.update({"EchoTime": echo_times[0], "dim_5": "DIM_USER_0",
                "dim_5_header": {"EchoTime": {"Value": echo_times, "Description": "TE (s)"}}})
    out = nib.Nifti2Image(data.astype(fid.dtype), img.affine, header=img.header)
    out.header.extensions.clear()
    out.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    nib.save(out, str(path))
    sidecar = path.with_name(f"sub-01_{kind}.json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()),
                                   "EchoTime": echo_times[0]}))
    return bids


def _results(out: Path) -> tuple[dict, dict]:
    """(metabolite -> concentration_mm at the only condition, the QC JSON)."""
    from e2e_support import read_tsv

    mrs = out / "sub-01" / "mrs"
    rows = {r["metabolite"]: float(r["concentration_mm"])
            for r in read_tsv(mrs / "sub-01_amplitudes.tsv")}
    return rows, json.loads((mrs / "sub-01_qc.json").read_text())


@pytest.mark.slow
def test_runs_with_a_real_water_te_series(shared_data, tmp_path):
    """Osprey 3 T PRESS (TE 35 ms) with its water reference as a 3-TE series: at 70/35/140 ms
    (header and sidecar EchoTime 70 ms) the 35 ms entry is used and the concentrations equal
    the single-TE run's exactly; at 100/50/200 ms the 50 ms water is
    used, and every concentration moves by exactly W_eff(50)/W_eff(35) / exp(-15/80), the
    water's own relaxation model against the injected decay. The same series as metabolite
    data fails the participant, naming the file."""
    from e2e_support import run_app
    from test_e2e_nifti_input import _spec2nii_bids

    from pipeline.fitting.quantification import DEFAULT_TISSUE_FRACTIONS, effective_water_mm

    single = _spec2nii_bids(shared_data, tmp_path / "single")
    results = {}
    for name, echo_times in (("single", None), ("match", [0.07, 0.035, 0.14]),
                             ("shortest", [0.1, 0.05, 0.2])):
        bids = single if echo_times is None else \
            _series_dataset(single, tmp_path / name, echo_times)
        run, _ = run_app(bids, tmp_path / name / "out", "participant")
        assert run.returncode == 0, run.stderr[-2000:]
        results[name] = _results(tmp_path / name / "out")
    (reference, _), (matched, qc) = results["single"], results["match"]
    assert reference.keys() == matched.keys() and "tNAA" in reference
    for name, value in reference.items():
        assert matched[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    water = str(tmp_path / "match" / "bids" / "sub-01" / "mrs" / "sub-01_mrsref.nii.gz")
    assert f"{water}: the water reference holds an EchoTime series along dim_5 (3 entries; " \
           "TE 35 ms, 70 ms, 140 ms): the entries at the metabolite data's TE, 35 ms, are " \
           "used (1 of 3)" in " ".join(qc["warnings"])
    quantification = qc["stages"]["fit.json"]["quantification"]
    assert quantification["water_echo_time_s"] == OSPREY_TE_S
    assert quantification["water_t2_from_echo_series"]["t2_s"] == \
        pytest.approx(WATER_T2_S, rel=1e-4)  # reported; the default T2 scaled (equality above)

    shortest, qc = results["shortest"]
    quantification = qc["stages"]["fit.json"]["quantification"]
    assert quantification["water_echo_time_s"] == 0.05
    assert any("the shortest TE, 50 ms, are used" in w for w in qc["warnings"])
    field_t, tr_s = quantification["field_t"], quantification["water_repetition_time_s"]
    expected = effective_water_mm(0.05, DEFAULT_TISSUE_FRACTIONS, tr_s, field_t=field_t) / \
        effective_water_mm(OSPREY_TE_S, DEFAULT_TISSUE_FRACTIONS, tr_s, field_t=field_t) / \
        np.exp(-0.015 / WATER_T2_S)
    for name in ("tNAA", "tCr", "tCho", "Ins", "Glx"):
        assert shortest[name] / reference[name] == pytest.approx(expected, rel=2e-5), name

    bids = _series_dataset(single, tmp_path / "data", [0.07, 0.035, 0.14], kind="svs")
    run, _ = run_app(bids, tmp_path / "data" / "out", "participant")
    assert run.returncode != 0
    svs = bids / "sub-01" / "mrs" / "sub-01_svs.nii.gz"
    assert f"{svs}: dim_5_header 'EchoTime' gives its 3 entries different EchoTime values" \
        in run.stderr + run.stdout


def test_header_and_sidecar_echo_times_of_the_series_do_not_contradict(tmp_path):
    """A water series whose header states EchoTime 80 ms and whose sidecar states 30 ms, both
    echo times of its own series: the run uses the entries of one of them, so this is no
    contradiction (before 2026-12-07 the participant failed on it); a sidecar TE outside the
    series still contradicts the header."""
    from pipeline.io.input_checks import header_extension, stated_timing_problems
    from pipeline.io.signal_checks import _echo_times

    header = {**_te_header([0.08, 0.03, 0.144]), "EchoTime": 0.08}
    path, _ = _scaled_series(tmp_path / "w.nii.gz", header, [0.5, 1.0, 0.2])
    series = _echo_times(path)
    assert series == pytest.approx([0.08, 0.03, 0.144])
    ext = header_extension(path)
    assert stated_timing_problems(path, ext, {"EchoTime": 0.03}, "sidecar", series) == []
    (problem,) = stated_timing_problems(path, ext, {"EchoTime": 0.05}, "sidecar", series)
    assert "EchoTime 0.08 s in the header" in problem and "contradicts 0.05 s" in problem
    (problem,) = stated_timing_problems(path, ext, {"EchoTime": 0.03}, "sidecar")
    assert "contradicts 0.03 s" in problem  # without the series: as before
