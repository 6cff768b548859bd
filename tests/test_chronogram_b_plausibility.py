"""b-values computed from gradient chronograms go through the plausibility check of header
b-values (largest b in [10, 250000] s/mm^2, or 0): a chronogram whose gradient column is read
in the wrong unit is refused, naming the data file, each chronogram with its b and the likely
cause, instead of fitting diffusion to b-values off by 10^6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.io.chronogram import chronogram_b_problem
from workflows.interfaces import ConvertToCanonical

PUBLISHED_B_S_MM2 = {1: [907, 2155, 3956], 2: [903, 2148, 3945], 3: [901, 2144, 3940]}
NAMES = [f"chronogram_G{g}_dir{d}.csv" for g in (15, 25, 35) for d in (1, 2, 3)]


def _relabelled(shared_data, folder: Path, unit: str) -> list[str]:
    """The in-vivo chronograms (mT/m values) with a header stating ``unit`` for Gx, Gy, Gz."""
    folder.mkdir()
    source = shared_data / "dmrs_7t_steam_invivo" / "chronogram"
    paths = []
    for name in NAMES:
        lines = (source / name).read_text().splitlines(keepends=True)
        assert lines[0].strip() == "Gx,Gy,Gz,RF"
        (folder / name).write_text(f"Gx [{unit}],Gy [{unit}],Gz [{unit}],RF\n"
                                   + "".join(lines[1:]))
        paths.append(str(folder / name))
    return paths


def _convert(tmp_path: Path, data: Path, chronograms: list[str]):
    node = ConvertToCanonical(in_file=str(data), chronograms=chronograms,
                              chronogram_sequence="steam")
    return node.run(cwd=str(tmp_path))


@pytest.mark.parametrize("unit, factor, why", [
    ("T/m", 1e6, "above 250000 s/mm^2"),      # mT/m values read as T/m: b x 10^6
    ("uT/m", 1e-6, "below 10 s/mm^2"),        # mT/m values read as uT/m: b x 10^-6
])
def test_chronogram_b_values_in_the_wrong_gradient_unit_are_refused(shared_data, tmp_path,
                                                                    unit, factor, why):
    data = shared_data / "dmrs_7t_steam_invivo" / "nifti" / "metab.nii.gz"
    chronograms = _relabelled(shared_data, tmp_path / "chron", unit)
    (tmp_path / "node").mkdir()
    with pytest.raises(ValueError) as err:
        _convert(tmp_path / "node", data, chronograms)
    message = " ".join(str(err.value).split())
    assert str(data) in message and why in message
    assert "gradient amplitudes are likely not in the unit read" in message
    # each chronogram is named with its b: the published b times the unit's factor squared
    expected = [PUBLISHED_B_S_MM2[d][k] * factor for k in range(3) for d in (1, 2, 3)]
    for name, b in zip(NAMES, expected):
        shown = float(message.split(f"{name}: ")[1].split(",")[0].split(" ")[0])
        assert shown == pytest.approx(b, rel=2e-3), name


def test_plausible_chronogram_b_values_pass_and_limits_match_the_header_check():
    paths = ["a.csv", "b.csv"]
    assert chronogram_b_problem(np.array([907.6, 3956.0]), paths) is None
    assert chronogram_b_problem(np.array([0.0, 0.0]), paths) is None
    assert chronogram_b_problem(np.array([5.0, 9.9]), paths).startswith(
        "b-values computed from the gradient chronograms (a.csv: 5, b.csv: 9.9 s/mm^2) give a "
        "largest b of 9.9 s/mm^2, below 10")
    assert chronogram_b_problem(np.array([10.0, 250000.0]), paths) is None
    assert "above 250000" in chronogram_b_problem(np.array([1e3, 250001.0]), paths)
