"""``[conversion] chronograms``: b-values and directions of the in-vivo DW-STEAM data computed
from its gradient chronograms in the conversion node (issue 5 item 8), replacing the header's
nominal b-values (907 s/mm^2 for all three directions of the 15 mT shell) by the published
values with cross terms: 907/2155/3956, 903/2148/3945, 901/2144/3940 s/mm^2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bids_app.config import load_config
from pipeline.io.nifti_mrs import read_nifti_mrs
from workflows.interfaces import ConvertToCanonical
from workflows.participant import chronogram_paths

PUBLISHED_B_S_MM2 = {1: [907, 2155, 3956], 2: [903, 2148, 3945], 3: [901, 2144, 3940]}


def _chronograms(shared_data) -> list[str]:
    folder = shared_data / "dmrs_7t_steam_invivo" / "chronogram"
    return [str(folder / f"chronogram_G{g}_dir{d}.csv") for g in (15, 25, 35) for d in (1, 2, 3)]


def _convert(tmp_path: Path, data: Path, chronograms: list[str]):
    tmp_path.mkdir(exist_ok=True)
    node = ConvertToCanonical(in_file=str(data), chronograms=chronograms,
                              chronogram_sequence="steam")
    return node.run(cwd=str(tmp_path))


def test_invivo_b_values_from_chronograms(shared_data, tmp_path):
    data = shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz"
    header = read_nifti_mrs(data)
    assert np.all(header.b_values_s_mm2[1:4] == 907)  # nominal: one b per shell
    result = _convert(tmp_path / "node", data, _chronograms(shared_data))
    acq = read_nifti_mrs(result.outputs.out_file)
    b = acq.b_values_s_mm2
    assert b[0] == 0 and np.all(np.isnan(acq.directions[0]))
    for d, published in PUBLISHED_B_S_MM2.items():
        np.testing.assert_allclose(b[d::3], published, atol=1.0)
    np.testing.assert_allclose(np.linalg.norm(acq.directions[1:], axis=1), 1.0, atol=1e-9)
    # the chronogram directions stay close to the nominal ones (cross terms tilt them a little)
    cosines = np.einsum("ij,ij->i", acq.directions[1:], header.directions[1:])
    assert np.all(cosines > 0.95) and np.all(cosines < 0.9999)
    report = json.loads(Path(result.outputs.out_report).read_text())
    assert report["b_value_units_source"].startswith("gradient chronograms")
    assert report["b_values_from"][0] == "chronogram_G15_dir1.csv"
    np.testing.assert_allclose(acq.fids, header.fids)  # the spectra themselves are untouched


def test_wrong_number_of_chronograms_names_the_file(shared_data, tmp_path):
    data = shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz"
    with pytest.raises(ValueError, match="9 diffusion-weighted conditions but 3 chronograms") \
            as err:
        _convert(tmp_path / "node", data, _chronograms(shared_data)[:3])
    assert str(data) in str(err.value)


def test_chronogram_config_paths_resolve_against_the_bids_root(tmp_path):
    user = tmp_path / "config.toml"
    user.write_text('[conversion]\nchronograms = ["code/g15_x.csv", "/abs/g25_x.csv"]\n')
    config = load_config(user)
    assert config["conversion"]["chronogram_sequence"] == "steam"
    assert chronogram_paths(config["conversion"], tmp_path / "bids") == [
        str(tmp_path / "bids" / "code" / "g15_x.csv"), "/abs/g25_x.csv"]
    assert chronogram_paths(load_config()["conversion"], tmp_path) == []
