"""dmrs-bids-basis: writes a readable LCModel .BASIS / JSON basis, with clear errors."""

import numpy as np
import pytest

from bids_app.basis_cli import build_parser, main
from pipeline.io import basis_formats
from pipeline.simulate.basis_simulation import simulate_basis

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
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the option help
    for phrase in ("seconds", "MHz", "Hz", "min(0.4 TE, 14 ms)", "--refocus-bandwidth",
                   "press_refocus_bandwidth_hz = 1100", "lcmodel", "--add-mm", "--cache-dir"):
        assert phrase in text


def test_add_mm_appends_parametric_components(tmp_path):
    out = tmp_path / "mm.json"
    assert main(["--sequence", "press", "--echo-time", "0.03", "--spectrometer-frequency",
                 "123.2", "--spectral-width", "2000", "--points", "256", "--metabolites",
                 "Cr", "--no-cache", "--add-mm", "-o", str(out)]) == 0
    back = basis_formats.read_basis(out)
    assert back.names[0] == "Cr" and len(back.names) > 1
    assert all(name.startswith("MM") for name in back.names[1:])
    assert "macromolecules" in back.provenance


GRID = ["--spectrometer-frequency", "123.2", "--spectral-width", "2000", "--points", "64"]


@pytest.mark.parametrize("argv, problem", [
    (["--sequence", "mega", "--echo-time", "0.03"] + GRID, "invalid choice: 'mega'"),
    (["--sequence", "se", "--echo-time", "-0.03"] + GRID, "positive time in seconds"),
    (["--sequence", "se", "--echo-time", "abc"] + GRID, "invalid float value: 'abc'"),
    (["--sequence", "se", "--echo-time", "0.03", "--spectrometer-frequency", "-3",
      "--spectral-width", "2000", "--points", "64"], "cf_mhz must be positive"),
    (["--sequence", "se", "--echo-time", "0.03", "--spectrometer-frequency", "123.2",
      "--spectral-width", "0", "--points", "64"], "--spectral-width must be positive"),
    (["--sequence", "se", "--echo-time", "0.03", "--spectrometer-frequency", "123.2",
      "--spectral-width", "nan", "--points", "64"], "--spectral-width must be positive"),
    (["--sequence", "se", "--echo-time", "0.03", "--spectrometer-frequency", "123.2",
      "--spectral-width", "2000", "--points", "0"], "n_points must be an integer >= 2"),
    (["--sequence", "se", "--echo-time", "0.03", "--linewidth", "-2"] + GRID, "linewidth_hz"),
    (["--sequence", "se", "--echo-time", "0.03", "--reference-ppm", "nan"] + GRID, "ref_ppm"),
    (["--sequence", "se", "--echo-time", "0.03", "--metabolites", "Foo"] + GRID,
     "no spin system named 'Foo'"),
    (["--sequence", "fid", "--mixing-time", "0.05"] + GRID, "no mixing time"),
    (["--sequence", "press", "--echo-time", "0.03", "--te1", "0.05"] + GRID, "te2_s"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, problem):
    out = tmp_path / "b.BASIS"
    try:
        code = main(argv + ["--no-cache", "-o", str(out)])
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and problem in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("dmrs-bids-basis: error:")
    assert not out.exists()


def test_unknown_output_extension_needs_format(tmp_path, capsys):
    out = tmp_path / "basis.txt"
    args = ["--sequence", "se", "--echo-time", "0.03", "--metabolites", "Cr", "--no-cache"] + GRID
    assert main(args + ["-o", str(out)]) == 2
    assert "unknown output extension '.txt'" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--format", "lcmodel", "-o", str(out)]) == 0
    assert basis_formats.read_lcmodel_basis_raw(out).names == ["Cr"]


@pytest.mark.slow  # a demo participant fitted twice, about 40 s
def test_default_basis_is_the_one_the_app_simulates_itself(tmp_path):
    """The demo's 3 T PRESS participant fitted with ``--basis`` from ``dmrs-bids-basis`` (its
    defaults, the data's grid) gives the amplitudes of the run without ``--basis``. Before, the
    tool's PRESS basis had ideal refocusing pulses while the app's has slice-selective ones
    (``[basis] press_refocus_bandwidth_hz``): at b = 0 tNAA -9.2 %, tCr -4.9 %, Ins -23.7 %."""
    import csv
    import subprocess
    import sys

    def run(module, *args):
        done = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]

    def amplitudes(out):
        path = out / "sub-01" / "mrs" / "sub-01_acq-dwpress_amplitudes.tsv"
        with open(path) as fh:
            return {(r["condition"], r["metabolite"]): float(r["amplitude"])
                    for r in csv.DictReader(fh, delimiter="\t")}

    demo, cache = tmp_path / "demo", tmp_path / "cache"
    run("bids_app.simulate_cli", demo, "--small", "--participants", "1", "--cache-dir", cache)
    basis = tmp_path / "press.json"
    run("bids_app.basis_cli", "--sequence", "press", "--echo-time", "0.08",
        "--spectrometer-frequency", "123.2", "--spectral-width", "2000", "--points", "1024",
        "--cache-dir", cache, "-o", basis)
    for out, extra in (("own", []), ("file", ["--basis", basis])):
        run("bids_app.cli", demo, tmp_path / out, "participant", "-w", tmp_path / f"w-{out}",
            "--skip-bids-validation", *extra)
    own, from_file = amplitudes(tmp_path / "own"), amplitudes(tmp_path / "file")
    assert own.keys() == from_file.keys()
    for key in [k for k in own if k[0] == "0" and k[1] in ("tNAA", "tCr", "tCho", "Ins", "Glu")]:
        assert from_file[key] == pytest.approx(own[key], rel=1e-4), key


@pytest.mark.parametrize("cf_mhz, warned", [(123.2, False), (298.06, True)])
def test_press_above_4_t_warns_about_the_refocusing_bandwidth(tmp_path, capsys, cf_mhz, warned):
    """The 1100 Hz default suits 3 T; at 7 T the tool says so, as the app's basis report does
    of its own PRESS basis, naming the option to set."""
    assert main(["--sequence", "press", "--echo-time", "0.03", "--spectrometer-frequency",
                 str(cf_mhz), "--spectral-width", "2000", "--points", "256", "--metabolites",
                 "Lac", "--no-cache", "-o", str(tmp_path / "b.json")]) == 0
    err = capsys.readouterr().err
    assert ("1100 Hz refocusing pulses" in err and "--refocus-bandwidth" in err) == warned, err
    assert main(["--sequence", "press", "--echo-time", "0.03", "--spectrometer-frequency",
                 str(cf_mhz), "--spectral-width", "2000", "--points", "256", "--metabolites",
                 "Lac", "--no-cache", "--refocus-bandwidth", "0", "-o",
                 str(tmp_path / "ideal.json")]) == 0
    assert "refocusing" not in capsys.readouterr().err  # ideal pulses: nothing to say
