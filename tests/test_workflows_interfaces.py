"""Stage interfaces run on real files (fast ones only; the full chain is in test_e2e_*)."""

import json
import os

import numpy as np
import pytest

from datasets import make_synthetic_bids
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
