"""dmrs-bids-basis: writes a readable LCModel .BASIS / JSON basis, with clear errors."""

import numpy as np
import pytest

from bids_app.basis_cli import build_parser, main
from pipeline.simulate.basis_simulation import simulate_basis

basis_formats = pytest.importorskip("pipeline.io.basis_formats")

ARGS = ["--sequence", "steam", "--echo-time", "0.045", "--mixing-time", "0.060",
        "--spectrometer-frequency", "298.06", "--spectral-width", "3000", "--points", "1024"]


def test_lcmodel_output_reads_back_as_the_simulation(tmp_path):
    out = tmp_path / "basis.BASIS"
    cache = tmp_path / "cache"
    assert main(ARGS + ["--metabolites", "NAA,Cr,Glu", "--cache-dir", str(cache),
                        "-o", str(out)]) == 0
    text = out.read_text()
    assert "HZPPPM = 298.06" in text and "NDATAB = 1024" in text
    back = basis_formats.read_basis(out, convention="as_stored", referencing="as_stored")
    expected = simulate_basis("steam", 298.06, 1 / 3000, 1024, echo_time_s=0.045,
                              mixing_time_s=0.060, metabolites=["NAA", "Cr", "Glu"],
                              cache_dir=str(cache))
    assert back.names == ["NAA", "Cr", "Glu"]
    assert back.cf_mhz == pytest.approx(298.06) and back.dwell_s == pytest.approx(1 / 3000)
    np.testing.assert_allclose(back.fids, expected.fids, atol=1e-6 * np.abs(expected.fids).max())


def test_json_format_from_extension_keeps_provenance(tmp_path):
    out = tmp_path / "basis.json"
    assert main(["--sequence", "press", "--echo-time", "0.03", "--te1", "0.01",
                 "--spectrometer-frequency", "123.2", "--spectral-width", "2000",
                 "--points", "256", "--metabolites", "Lac", "--no-cache", "-o", str(out)]) == 0
    back = basis_formats.read_basis(out)
    assert back.names == ["Lac"] and back.n_points == 256
    assert back.provenance["timings_s"]["te2_s"] == pytest.approx(0.02)
    assert back.provenance["sequence"] == "press"


def test_errors_are_reported_without_traceback(tmp_path, capsys):
    out = tmp_path / "b.BASIS"
    assert main(ARGS[:4] + ARGS[6:] + ["--no-cache", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "mixing time" in err and "Traceback" not in err and not out.exists()
    assert main(ARGS + ["--no-cache", "-o", str(tmp_path / "missing" / "b.BASIS")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_states_units_and_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("seconds", "MHz", "Hz", "TE/2", "lcmodel", "--add-mm", "--cache-dir"):
        assert phrase in text


def test_add_mm_appends_parametric_components_or_says_why_not(tmp_path, capsys):
    import importlib.util
    out = tmp_path / "mm.json"
    code = main(["--sequence", "press", "--echo-time", "0.03", "--spectrometer-frequency",
                 "123.2", "--spectral-width", "2000", "--points", "256", "--metabolites",
                 "Cr", "--no-cache", "--add-mm", "-o", str(out)])
    if importlib.util.find_spec("pipeline.simulate.macromolecules") is None:
        assert code == 2 and "macromolecules" in capsys.readouterr().err
        return
    assert code == 0
    back = basis_formats.read_basis(out)
    assert back.names[0] == "Cr" and len(back.names) > 1
    assert any(name.startswith("MM") for name in back.names[1:])
    assert "macromolecules" in back.provenance
