"""Stage interfaces run on real files (fast ones only; the full chain is in test_e2e_*)."""

import json
import os

import numpy as np
import pytest

from datasets import make_synthetic_bids, zero_padded
from pipeline.fitting.water_scaling import (quantification_warnings, quantify_rows,
                                            tissue_fractions_for)
from workflows import interfaces as ifc


@pytest.fixture
def in_tmp(tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def _convert(svs, sidecar, units="auto"):
    return ifc.ConvertToCanonical(in_file=str(svs), sidecar=json.dumps(sidecar),
                                  b_value_units=units).run().outputs


def test_conversion_guesses_unstated_units_and_says_so(shared_data, in_tmp):
    bids = make_synthetic_bids(in_tmp / "bids", shared_data, state_b_value_units=False)
    svs = bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz"
    sidecar = json.loads(svs.with_name("sub-01_acq-dwsteam_svs.json").read_text())
    report = json.loads(open(_convert(svs, sidecar).out_report).read())
    assert np.allclose(report["b_values_s_mm2"],
                       [0, 1000, 3000, 6000, 10000, 20000, 30000, 40000, 50000])
    assert report["shape"] == [9, 32, 1, 1024]
    assert report["warnings"] and "guess" in report["b_value_units_source"].lower()


def test_conversion_honours_explicit_units(shared_data, in_tmp):
    bids = make_synthetic_bids(in_tmp / "bids", shared_data, state_b_value_units=False)
    svs = bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz"
    sidecar = json.loads(svs.with_name("sub-01_acq-dwsteam_svs.json").read_text())
    report = json.loads(open(_convert(svs, sidecar, "s/mm2").out_report).read())
    assert np.allclose(report["b_values_s_mm2"], [0, 1, 3, 6, 10, 20, 30, 40, 50])


def test_conversion_of_empty_file_fails_naming_it(in_tmp):
    empty = in_tmp / "sub-09_svs.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(Exception, match=r"sub-09_svs.nii.gz: file is empty \(0 bytes\)"):
        _convert(empty, {})


def _singlet_basis(cf_mhz=298.0, dwell_s=1 / 3000, n=1024):
    """Lorentzian singlets at the NAA, Cr and Cho positions (a stand-in metabolite basis)."""
    from pipeline.basis import Basis
    from pipeline.spectra import ppm_to_hz, time_axis_s

    t = time_axis_s(n, dwell_s)
    fids = [3 * np.exp(2j * np.pi * ppm_to_hz(ppm, cf_mhz) * t - np.pi * 2.0 * t)
            for ppm in (2.01, 3.03, 3.21)]
    return Basis(["NAA", "Cr", "GPC"], np.array(fids), dwell_s, cf_mhz)


def test_macromolecules_measured_parametric_and_none(in_tmp):
    from pipeline.acquisition import Acquisition
    from pipeline.io.basis_formats import read_basis, write_json_basis
    from pipeline.io.nifti_mrs import write_nifti_mrs
    from pipeline.simulate.macromolecules import parametric_mm_basis

    basis = _singlet_basis()
    write_json_basis(basis, in_tmp / "basis.json")
    mm = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points, echo_time_s=0.045)
    rng = np.random.default_rng(0)
    measured = mm.fids.sum(axis=0) + 0.01 * (rng.standard_normal((4, 1024))
                                             + 1j * rng.standard_normal((4, 1024)))
    acq = Acquisition(measured[None, :, None, :], basis.dwell_s, basis.cf_mhz, [0.0],
                      np.full((1, 3), np.nan),
                      metadata={"EchoTime": 0.045, "SpectrometerFrequency": [basis.cf_mhz],
                                "ResonantNucleus": ["1H"]})
    write_nifti_mrs(acq, in_tmp / "mm.nii")

    def run(mode, mm_file=None, lipids=False):
        node = ifc.MacromoleculeBasis(in_basis=str(in_tmp / "basis.json"), echo_time_s=0.045,
                                      options=json.dumps({"mode": mode, "lipids": lipids}))
        if mm_file:
            node.inputs.mm_file = str(mm_file)
        out = node.run().outputs
        return read_basis(out.out_basis), json.loads(open(out.out_report).read())

    measured_basis, report = run("auto", in_tmp / "mm.nii")
    assert report["mode"] == "measured" and measured_basis.names == ["NAA", "Cr", "GPC", "MM"]
    parametric, report = run("auto")
    assert report["mode"] == "parametric" and set(mm.names) <= set(parametric.names)
    # the parametric entries are the engine's components on the basis grid
    assert np.allclose(parametric.fid(mm.names[0]), mm.fids[0])
    none, _ = run("none")
    assert none.names == ["NAA", "Cr", "GPC"]
    # lipids on request: Lip09/Lip13/Lip20, the methylene group (4 protons) at 1.28-1.31 ppm
    with_lipids, report = run("none", lipids=True)
    assert with_lipids.names == ["NAA", "Cr", "GPC", "Lip09", "Lip13", "Lip20"]
    assert report["mm_entries"] == ["Lip09", "Lip13", "Lip20"]
    lip13 = with_lipids.fid("Lip13")
    assert abs(lip13[0]) == pytest.approx(4.0)
    spectrum = with_lipids.spectra()[with_lipids.index("Lip13")].real
    assert with_lipids.ppm()[np.argmax(spectrum)] == pytest.approx(1.29, abs=0.03)


def test_fit_node_saves_display_spectra_that_sum_to_the_fit_and_are_drawn(in_tmp):
    from bids_app.derivatives import TRANSIENTS_COLUMNS, write_tsv
    from bids_app.report_nodes import AcquisitionFigures
    from pipeline.fitting.fit_display import DISPLAY_ROWS
    from pipeline.acquisition import Acquisition
    from pipeline.io.basis_formats import write_json_basis
    from pipeline.io.nifti_mrs import read_nifti_mrs, write_nifti_mrs
    from pipeline.spectra import fid_to_spectrum

    basis = _singlet_basis()
    write_json_basis(basis, in_tmp / "basis.json")
    rng = np.random.default_rng(3)
    fids = np.array([[4.0, 3.0, 1.0], [3.0, 2.4, 0.8]]) @ basis.fids
    fids = fids + 0.05 * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))
    acq = Acquisition(fids[:, None, None, :], basis.dwell_s, basis.cf_mhz, [0.0, 3000.0],
                      np.full((2, 3), np.nan),
                      metadata={"SpectrometerFrequency": [basis.cf_mhz], "EchoTime": 0.02,
                                "ResonantNucleus": ["1H"]})
    write_nifti_mrs(acq, in_tmp / "pre.nii")
    out = ifc.FitSpectra(in_file=str(in_tmp / "pre.nii"),
                         in_basis=str(in_tmp / "basis.json")).run().outputs
    table = np.loadtxt(out.out_display, delimiter="\t", skiprows=1)
    fitted = fid_to_spectrum(read_nifti_mrs(out.out_fit).fids[:, 0, 0, :])
    for c in (0, 1):
        rows = table[table[:, 0] == c]
        points = rows[:, 1].astype(int)
        total = rows[:, 3::2].sum(axis=1) + 1j * rows[:, 4::2].sum(axis=1)
        scale = np.abs(fitted[c]).max()
        np.testing.assert_allclose(total, fitted[c, points], rtol=0, atol=2e-6 * scale)
        tnaa = DISPLAY_ROWS.index("tNAA")
        assert np.abs(rows[:, 3 + 2 * tnaa]).max() > 0.3 * scale   # NAA carries its line
    write_tsv(in_tmp / "transients.tsv",
              [{"condition": c, "b_value": b, "direction": "n/a", "transient": 0,
                "freq_shift_hz": 0.0, "phase_shift_deg": 0.0, "rejected": 0}
               for c, b in enumerate((0, 3000))], TRANSIENTS_COLUMNS)
    figures = AcquisitionFigures(
        in_preproc=str(in_tmp / "pre.nii"), in_fit=out.out_fit,
        in_amplitudes=out.out_amplitudes, in_transients=str(in_tmp / "transients.tsv"),
        in_fit_display=out.out_display).run().outputs
    (fit_svg,) = [p for p in figures.out_figures if p.endswith("fit.svg")]
    text = open(fit_svg).read()
    for label in ("baseline", "tNAA (offset down)", "tCr (offset down)", "tCho (offset down)"):
        assert f">{label}<" in text, label


def test_tissue_fraction_table_per_participant_and_session(tmp_path):
    table = tmp_path / "fractions.tsv"
    table.write_text("participant_id\tsession_id\tgm\twm\tcsf\n"
                     "sub-01\tses-A\t0.5\t0.4\t0.1\n"
                     "sub-01\tses-B\t0.6\t0.35\t0.05\n"
                     "02\t\t0.3\t0.6\t0.1\n")
    assert tissue_fractions_for(str(table), "01", "B") == {"gm": 0.6, "wm": 0.35,
                                                                 "csf": 0.05}
    assert tissue_fractions_for(str(table), "02", "") == {"gm": 0.3, "wm": 0.6, "csf": 0.1}
    with pytest.raises(ValueError, match=r"fractions.tsv: no row for participant '03'"):
        tissue_fractions_for(str(table), "03", "")
    bad = tmp_path / "bad.tsv"
    bad.write_text("participant_id\tgm\twm\nsub-01\t0.5\t0.5\n")
    with pytest.raises(ValueError, match=r"bad.tsv: .*missing \['csf'\]"):
        tissue_fractions_for(str(bad), "01", "")
    negative = tmp_path / "negative.tsv"
    negative.write_text("participant_id\tgm\twm\tcsf\nsub-01\t-0.5\t0.5\tn/a\n")
    with pytest.raises(ValueError, match="unusable fractions"):
        tissue_fractions_for(str(negative), "01", "")


def test_quantification_is_skipped_with_a_reason():
    rows = [{"condition": 0, "metabolite": "Cr", "amplitude": 1.0, "crlb": 0.1}]
    water_fid = np.ones(8, complex)
    out, report = quantify_rows(rows, {"water_scaling": False}, water_fid, 1e-3, None, {},
                                123.2, "01", "")
    assert out == rows and report["water_scaling"].startswith("off")
    out, report = quantify_rows(rows, {}, None, None, None, {}, 123.2, "01", "")
    assert out == rows and report == {"water_scaling": "no water reference"}


def test_quantification_warns_about_untabulated_fields_and_missing_metabolite_t2():
    """3 T and 7 T have literature water relaxation defaults; 9.4 T does not (nearest: 7 T)."""
    scaling = {"effective_water_concentration_mm": None, "water_t2_s": None,
               "metabolite_t2_s": None}
    at_7t = quantification_warnings(scaling, 298.06)
    assert not any("water T2/T1" in w for w in at_7t)
    assert any("metabolite T2" in w for w in at_7t)
    at_9t4 = quantification_warnings(scaling, 400.2)
    assert any("9.4 T uses the 7 T water T2/T1" in w for w in at_9t4)
    assert quantification_warnings({**scaling, "metabolite_t2_s": {"default": 0.2}},
                                       123.2) == []


def test_a_water_t2_without_t1_off_the_table_says_the_t1_is_borrowed():
    """At 14.1 T with only water_t2_s set, the water T1 came silently from the 7 T table."""
    scaling = {"effective_water_concentration_mm": None, "metabolite_t2_s": {"default": 0.1},
               "water_t2_s": {"gm": 0.04, "wm": 0.04, "csf": 0.5}, "water_t1_s": None}
    (note,) = quantification_warnings(scaling, 600.0)
    assert "14.1 T takes water_t1_s gm, wm, csf from the 7 T literature defaults" in note
    partial = {**scaling, "water_t1_s": {"gm": 2.2, "wm": 1.4}}
    (note,) = quantification_warnings(partial, 600.0)
    assert "water_t1_s csf" in note and "water_t2_s" not in note
    complete = {**partial, "water_t1_s": {"gm": 2.2, "wm": 1.4, "csf": 4.5}}
    assert quantification_warnings(complete, 600.0) == []


def test_implausible_concentrations_are_warned_about():
    """A series stored as sums of 256 averages against a water reference summed over 8 reads
    32 x too high (tNAA 340 mM): warned, naming the values and the likely causes; brain and
    phantom values, and higher b-values, are not."""
    from pipeline.fitting.water_scaling import implausible_concentrations

    def rows(tnaa, tcr, high_b=500.0):
        return [{"b_value": b, "metabolite": m, "concentration_mm": c}
                for b, m, c in ((0.0, "tNAA", tnaa), (0.0, "tCr", tcr), (0.0, "MM", 900.0),
                                (1000.0, "tNAA", high_b))]
    note = implausible_concentrations(rows(340.0, 280.0))
    assert "tNAA 340 mM, tCr 280 mM" in note and "sums" in note and "water reference" in note
    assert implausible_concentrations(rows(12.5, 10.0)) == ""
    assert implausible_concentrations(rows(45.0, 40.0)) == ""  # a concentrated phantom
    assert implausible_concentrations([{"b_value": 0.0, "metabolite": "tNAA",
                                        "concentration_mm": "n/a"}]) == ""


def test_quantification_problem_skips_concentrations_with_a_warning(in_tmp):
    basis = _singlet_basis()  # NAA, Cr, GPC singlets: a creatine entry exists
    water = np.exp(-np.arange(1024) * basis.dwell_s * 20.0) * 1000.0
    rows = [{"condition": 0, "metabolite": "NAA", "amplitude": 1.0, "crlb": 0.1}]
    out, report = quantify_rows(rows, {"tissue_fractions_file": str(in_tmp / "no.tsv")},
                                water.astype(complex), basis.dwell_s, basis, {"EchoTime": 0.03},
                                basis.cf_mhz, "01", "")
    assert out == rows and report["water_scaling"].startswith("water-scaled concentrations "
                                                              "skipped")
    assert "no.tsv" in report["flags"][0]


def _coil_node_outputs(shared_data, in_tmp, variants: dict) -> dict:
    """The coil stage run on the published 7 T set (converted to the canonical form) and on
    each ``variants`` name -> function(Acquisition) -> Acquisition of it: name -> (combined
    FIDs, coils.json, the header's NumberOfSpectralPoints), with "as_is" for the set itself."""
    from pipeline.io.nifti_mrs import write_nifti_mrs
    from workflows.fileio import load_acquisition

    bids = make_synthetic_bids(in_tmp / "bids", shared_data)
    svs = bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz"
    sidecar = json.loads(svs.with_name("sub-01_acq-dwsteam_svs.json").read_text())
    canonical = _convert(svs, sidecar).out_file
    acq = load_acquisition(canonical)
    paths = {"as_is": canonical}
    for name, change in variants.items():
        paths[name] = str(in_tmp / f"{name}.nii.gz")
        write_nifti_mrs(change(acq), paths[name])
    outputs = {}
    for name, path in paths.items():
        os.makedirs(name)
        os.chdir(name)
        out = ifc.CombineCoils(in_file=path).run().outputs
        combined = load_acquisition(out.out_file)
        outputs[name] = (combined.fids, json.loads(open(out.out_report).read()),
                         combined.metadata.get("NumberOfSpectralPoints"))
        os.chdir("..")
    return outputs


def test_coil_node_conjugates_mirrored_input_and_flags_it(shared_data, in_tmp):
    """The published 7 T set stored conjugated (as spec2nii's raw reader does to .RAW files)
    leaves the coil stage exactly as the original does, with an orientation flag."""
    outputs = _coil_node_outputs(shared_data, in_tmp,
                                 {"mirrored": lambda acq: acq.with_fids(np.conj(acq.fids))})
    assert outputs["as_is"][1]["orientation"]["verdict"] == "as_is"
    assert outputs["as_is"][1]["flags"] == []
    assert outputs["mirrored"][1]["orientation"]["verdict"] == "mirrored"
    assert any("mirror" in f for f in outputs["mirrored"][1]["flags"])
    assert np.allclose(outputs["mirrored"][0], outputs["as_is"][0])


def test_coil_node_trims_zero_filled_input_and_flags_it(shared_data, in_tmp):
    """The published 7 T set (1024 points) zero-filled to 2048 leaves the coil stage with the
    set's own 1024 points, unchanged, and a flag naming the file and the counts."""
    def zero_filled(acq):
        return acq.with_fids(zero_padded(acq.fids, 2048),
                             metadata={**acq.metadata, "NumberOfSpectralPoints": 2048})

    outputs = _coil_node_outputs(shared_data, in_tmp, {"zero_filled": zero_filled})
    fids, report, header_points = outputs["zero_filled"]
    assert report["zero_filling"] == {"n_points_given": 2048, "n_points_acquired": 1024}
    assert header_points == outputs["as_is"][2] == 1024
    assert "zero_filling" not in outputs["as_is"][1]
    assert [f for f in report["flags"] if f.startswith("zero-filled input")] == [
        f"zero-filled input: {in_tmp / 'zero_filled.nii.gz'}: the last 1024 of 2048 points are "
        "0 in every FID (not acquired); processed on the first 1024"]
    np.testing.assert_allclose(fids, outputs["as_is"][0], rtol=0, atol=1e-6 * np.abs(fids).max())
