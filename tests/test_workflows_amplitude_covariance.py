"""``<src>_desc-amplitudes_covariance.tsv``: the fit node writes each metabolite's amplitude
covariance across conditions beside ``_amplitudes.tsv``; the diffusion node reads it and its
SEs carry the correlation; without it (older outputs) the CRLBs are taken as independent, as
before."""

import json

import numpy as np
import pytest

from pipeline.diffusion.fitting import fit_model
from pipeline.diffusion.models import MonoExponential
from pipeline.io.files import read_tsv, tsv_text
from workflows import interfaces as ifc

from test_workflows_diffusion_parts import B_S_MM2, _inputs, _run

OPTIONS = json.dumps({"models": ["monoexponential"]})
RHO = 0.8


def _covariance_file(folder, name, crlb=0.01, rho=RHO):
    """tNAA's amplitudes: SD ``crlb``, correlation rho^|i-j| between conditions."""
    rows = [{"metabolite": name, "condition_i": i, "condition_j": j,
             "covariance": crlb ** 2 * rho ** (j - i), "correlation": rho ** (j - i)}
            for i in range(len(B_S_MM2)) for j in range(i, len(B_S_MM2))]
    path = folder / "amplitude_covariance.tsv"
    path.write_text(tsv_text(rows, list(rows[0])))
    return str(path)


def _rows(path, metabolite):
    return {r["parameter"]: r for r in read_tsv(path) if r["metabolite"] == metabolite}


def test_diffusion_node_fits_with_the_covariance_and_without_it_as_before(tmp_path):
    pre, amps = _inputs(tmp_path)
    cov = _covariance_file(tmp_path, "tNAA")
    before = _run(tmp_path, "before", in_preproc=pre, in_amplitudes=amps, options=OPTIONS)
    after = _run(tmp_path, "after", in_preproc=pre, in_amplitudes=amps, in_covariance=cov,
                 options=OPTIONS)
    # tNAA: the fit of its b <= 5 ms/um^2 points (b = 0, 1, 3) with their covariance
    table = [r for r in read_tsv(amps) if r["metabolite"] == "tNAA"]
    b = np.array([float(r["b_value_s_mm2"]) for r in table]) / 1000
    signal = np.array([float(r["amplitude"]) for r in table])
    i = np.arange(3)
    expected = fit_model(MonoExponential(b_max_ms_um2=5), b[:3], signal[:3], 0.01,
                    covariance=1e-4 * RHO ** np.abs(i[:, None] - i[None, :]),
                    lack_of_fit_test=True)
    adc = _rows(after, "tNAA")["ADC"]
    assert float(adc["value"]) == pytest.approx(expected.param("ADC"), rel=1e-9)
    assert float(adc["std_error"]) == pytest.approx(expected.std_errors[0], rel=1e-9)
    assert "correlation across conditions" in adc["note"]
    assert adc["std_error"] != _rows(before, "tNAA")["ADC"]["std_error"]
    # the others have no covariance in the file: unchanged
    assert _rows(after, "tCr") == _rows(before, "tCr")
    assert "correlation across conditions" not in _rows(before, "tNAA")["ADC"]["note"]


def test_a_covariance_file_from_another_fit_fails_the_node_naming_it(tmp_path):
    pre, amps = _inputs(tmp_path)
    cov = _covariance_file(tmp_path, "tNAA", crlb=0.02)  # the amplitudes' CRLBs are 0.01
    with pytest.raises(Exception, match="amplitude_covariance.tsv: the tNAA variances"):
        _run(tmp_path, "bad", in_preproc=pre, in_amplitudes=amps, in_covariance=cov,
             options=OPTIONS)


def test_fit_node_writes_the_covariance_with_the_crlbs_on_its_diagonal(tmp_path, monkeypatch):
    from pipeline.acquisition import Acquisition
    from pipeline.io.basis_formats import write_json_basis
    from pipeline.io.nifti_mrs import write_nifti_mrs
    from test_workflows_interfaces import _singlet_basis

    monkeypatch.chdir(tmp_path)
    in_tmp = tmp_path
    basis = _singlet_basis()
    write_json_basis(basis, in_tmp / "basis.json")
    rng = np.random.default_rng(3)
    fids = np.array([[4.0, 3.0, 1.0], [3.0, 2.4, 0.8], [2.0, 1.9, 0.6]]) @ basis.fids
    fids = fids + 0.05 * (rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape))
    acq = Acquisition(fids[:, None, None, :], basis.dwell_s, basis.cf_mhz,
                      [0.0, 3000.0, 6000.0], np.full((3, 3), np.nan),
                      metadata={"SpectrometerFrequency": [basis.cf_mhz], "EchoTime": 0.02,
                                "ResonantNucleus": ["1H"]})
    write_nifti_mrs(acq, in_tmp / "pre.nii")
    out = ifc.FitSpectra(in_file=str(in_tmp / "pre.nii"), in_basis=str(in_tmp / "basis.json"),
                         options=json.dumps({"mode": "joint"})).run().outputs
    crlb = {(r["metabolite"], int(r["condition"])): float(r["crlb"])
            for r in read_tsv(out.out_amplitudes)}
    rows = read_tsv(out.out_covariance)
    assert list(rows[0]) == ["metabolite", "condition_i", "condition_j", "covariance",
                             "correlation"]
    assert {(r["metabolite"], int(r["condition_i"])) for r in rows} == set(crlb)
    for r in rows:
        i, j, name = int(r["condition_i"]), int(r["condition_j"]), r["metabolite"]
        expected = crlb[name, i] * crlb[name, j] * float(r["correlation"])
        assert float(r["covariance"]) == pytest.approx(expected, rel=1e-9, abs=1e-300)
        if i == j:
            assert float(r["covariance"]) == pytest.approx(crlb[name, i] ** 2, rel=1e-12)
    off = [float(r["correlation"]) for r in rows if r["condition_i"] != r["condition_j"]]
    assert max(np.abs(off)) > 0.1  # a joint fit's amplitudes are correlated across conditions


def test_a_covariance_file_missing_condition_pairs_fails_the_node_naming_it(tmp_path):
    """A file with tNAA's rows but not all its condition pairs (truncated or edited) is not the
    app's: the node fails naming it. Before, tNAA was fitted with its CRLBs as independent and
    the node finished with no word of the file."""
    pre, amps = _inputs(tmp_path)
    cov = _covariance_file(tmp_path, "tNAA")
    lines = open(cov).read().splitlines()
    assert lines[2].startswith("tNAA\t0\t1\t")
    open(cov, "w").write("\n".join(lines[:2] + lines[3:]) + "\n")  # pair (0, 1) left out
    with pytest.raises(Exception, match=r"amplitude_covariance.tsv: tNAA has no row for "
                                        r"the condition pairs \[\(0, 1\)\]"):
        _run(tmp_path, "truncated", in_preproc=pre, in_amplitudes=amps, in_covariance=cov,
             options=OPTIONS)
