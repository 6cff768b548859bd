"""The diffusion stage shared among nodes gives the very table one node gives."""

import json
import os

import numpy as np

from pipeline.acquisition import Acquisition
from pipeline.io.files import tsv_text
from pipeline.io.nifti_mrs import write_nifti_mrs
from workflows import interfaces as ifc
from workflows.interfaces.diffusion import share

B_S_MM2 = [0.0, 1000.0, 3000.0, 6000.0, 10000.0, 20000.0]
ADCS_UM2_MS = {"tNAA": 0.15, "tCr": 0.16, "tCho": 0.12, "Ins": 0.2, "Glu": 0.18, "Tau": 0.25,
               "NAA": 0.15}


def _inputs(folder):
    """A preprocessed acquisition (b-values, STEAM timing) and amplitudes with known ADCs;
    Lac has no signal at b = 0, so it gets the unmodelled rows."""
    rng = np.random.default_rng(0)
    fids = np.ones((len(B_S_MM2), 1, 1, 64), dtype=complex)
    acq = Acquisition(fids, 2.5e-4, 297.2, B_S_MM2, np.full((len(B_S_MM2), 3), np.nan),
                      metadata={"SpectrometerFrequency": [297.2], "EchoTime": 0.045,
                                "ResonantNucleus": ["1H"], "MixingTime": 0.06,
                                "DiffusionGradientDuration": 0.012, "DiffusionTime": 0.08})
    write_nifti_mrs(acq, folder / "pre.nii")
    rows = []
    for c, b in enumerate(B_S_MM2):
        for name, adc in {**ADCS_UM2_MS, "Lac": 0.1}.items():
            amp = 0.0 if name == "Lac" else np.exp(-b * 1e-3 * adc) * (1 + 0.01 * rng.normal())
            rows.append({"condition": c, "b_value_s_mm2": b, "metabolite": name,
                         "amplitude": amp, "crlb": 0.01})
    (folder / "amplitudes.tsv").write_text(
        tsv_text(rows, ["condition", "b_value_s_mm2", "metabolite", "amplitude", "crlb"]))
    return str(folder / "pre.nii"), str(folder / "amplitudes.tsv")


def _run(folder, name, **inputs):
    (folder / name).mkdir()
    cwd = os.getcwd()
    os.chdir(folder / name)
    try:
        return ifc.DiffusionModels(**inputs).run().outputs.out_diffusion
    finally:
        os.chdir(cwd)


def test_shared_diffusion_nodes_join_into_the_single_node_table(tmp_path):
    pre, amps = _inputs(tmp_path)
    options = json.dumps({"models": ["monoexponential", "kurtosis", "sticks"]})
    whole = _run(tmp_path, "whole", in_preproc=pre, in_amplitudes=amps, options=options)
    parts = [_run(tmp_path, f"part{k}", in_preproc=pre, in_amplitudes=amps, options=options,
                  part=k, n_parts=2) for k in range(2)]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        joined = ifc.MergeTables(in_tables=parts).run().outputs.out_diffusion
    finally:
        os.chdir(cwd)
    text = open(whole).read()
    assert open(joined).read() == text
    assert all(open(p).read() != text for p in parts)  # each part has only its share
    # and the table holds the generating ADCs (mono-exponential, b <= 5 ms/um^2)
    lines = [line.split("\t") for line in text.splitlines()[1:]]
    adcs = {c[0]: float(c[3]) for c in lines
            if c[1:3] == ["monoexponential", "ADC"] and c[0] != "Lac"}
    assert set(adcs) == set(ADCS_UM2_MS)
    for name, adc in adcs.items():
        assert abs(adc - ADCS_UM2_MS[name]) < 0.03, (name, adc)
    assert lines[0][0] == "Lac" and lines[0][6] == "0"  # unmodelled rows first, as one node


def test_share_gives_contiguous_parts_and_the_unmodelled_rows_to_the_first():
    names = list("abcdefg")
    pieces = [share(["u"], names, k, 3) for k in range(3)]
    assert [rows for rows, _ in pieces] == [["u"], [], []]
    assert sum((m for _, m in pieces), []) == names
    assert max(len(m) for _, m in pieces) - min(len(m) for _, m in pieces) <= 1
