"""A diffusion-weighted condition (b > 0) whose gradient direction is [0, 0, 0] is physically
contradictory. Read as "no direction" it silently changed the shell grouping of the in-vivo
data (direction rank -> b tolerance) and dropped the condition from direction-based steps, so
the reader refuses it, naming the file and the condition, when other weighted conditions have
directions; when none has one (isotropic or trace weighting) it warns. b = 0 with [0, 0, 0] is
the normal convention and stays accepted."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import read_nifti, write_nifti  # noqa: E402

from pipeline.diffusion.powder import group_shells  # noqa: E402
from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs  # noqa: E402


def _invivo_with_directions(shared_data, tmp_path: Path, edit) -> Path:
    """The in-vivo metabolite file (b = 0, then 3 shells x 3 directions) with its direction
    list changed by ``edit``."""
    source = shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz"
    path = tmp_path / "sub-01_svs.nii.gz"
    shutil.copyfile(source, path)
    data, ext, img = read_nifti(path)
    ext["dim_6_header"]["direction"] = edit(ext["dim_6_header"]["direction"])
    write_nifti(path, data, ext, img)
    return path


def test_b0_with_zero_direction_is_read_as_no_direction(shared_data):
    acq = read_nifti_mrs(shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz")
    assert acq.b_values_s_mm2[0] == 0 and np.all(np.isnan(acq.directions[0]))
    np.testing.assert_allclose(np.linalg.norm(acq.directions[1:], axis=1), 1.0)
    assert group_shells(acq.b_values_s_mm2 / 1000, acq.directions).method == "direction rank"
    assert not any("[0, 0, 0]" in w for w in acq.metadata["warnings"])


def test_weighted_condition_with_zero_direction_among_others_is_refused(shared_data, tmp_path):
    def zero_fourth(dirs):
        return dirs[:4] + [[0, 0, 0]] + dirs[5:]

    path = _invivo_with_directions(shared_data, tmp_path, zero_fourth)
    with pytest.raises(NiftiMrsError) as err:
        read_nifti_mrs(path)
    message = str(err.value)
    assert message.startswith(f"{path}: diffusion-weighted condition(s) 4 (b = 2155 s/mm^2) "
                              "have gradient direction [0, 0, 0] while the other")
    assert "only b = 0 may have [0, 0, 0]" in message


def test_every_weighted_condition_with_zero_direction_warns(shared_data, tmp_path):
    path = _invivo_with_directions(shared_data, tmp_path, lambda dirs: [[0, 0, 0]] * len(dirs))
    acq = read_nifti_mrs(path)
    assert np.all(np.isnan(acq.directions))
    np.testing.assert_array_equal(acq.b_values_s_mm2,
                                  [0, 907, 907, 907, 2155, 2155, 2155, 3956, 3956, 3956])
    (warning,) = [w for w in acq.metadata["warnings"] if "[0, 0, 0]" in w]
    assert warning.startswith(f"{path}: every diffusion-weighted condition has gradient "
                              "direction [0, 0, 0] (conditions 1 (b = 907 s/mm^2), ")
    assert "read as no direction" in warning


def test_a_crusher_b_on_the_reference_condition_with_zero_direction_is_accepted(shared_data,
                                                                               tmp_path):
    """A "b = 0" condition stated with the few s/mm^2 of its crushers (here 5) and direction
    [0, 0, 0] next to directional shells is the reference condition, not a contradiction
    (below B_MIN_WEIGHTED_S_MM2, 10 s/mm^2, the app treats b as unweighted elsewhere too)."""
    source = shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz"
    path = tmp_path / "sub-01_svs.nii.gz"
    shutil.copyfile(source, path)
    data, ext, img = read_nifti(path)
    header = ext["dim_6_header"]
    header["Bval"] = [5] + list(header["Bval"][1:])  # s/mm^2, as the file states them
    header["direction"] = [[0, 0, 0]] + header["direction"][1:]
    write_nifti(path, data, ext, img)
    acq = read_nifti_mrs(path, b_value_units="s/mm2")
    assert acq.b_values_s_mm2[0] == 5
    assert np.all(np.isnan(acq.directions[0]))
    np.testing.assert_allclose(np.linalg.norm(acq.directions[1:], axis=1), 1.0)
