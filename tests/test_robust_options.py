"""Issue 17 items 9, 10, 12 and 13 (options): every numeric configuration option has a range
checked at load, naming the key; a fit window that excludes a basis entry drops it with a
warning; --nprocs/--mem-gb validated; the work directory must be private and is locked against
a concurrent run; usage errors exit 2 naming the file or option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bids_app import cli
from bids_app.config import (NUMERIC_RANGES, ConfigError, load_config, load_default_config,
                             numeric_problems)


def _toml(tmp_path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, key", [
    ("[quantification]\nwater_concentration_mm = -5.0\n", "quantification.water_concentration_mm"),
    ("[preprocessing]\noutlier_threshold = nan\n", "preprocessing.outlier_threshold"),
    ("[preprocessing]\nalign_iterations = 1000000000\n", "preprocessing.align_iterations"),
    ("[fitting]\nmax_iterations = 0\n", "fitting.max_iterations"),
    ("[fitting]\nppm_range = [4.2, 0.2]\n", "fitting.ppm_range"),
    ("[preprocessing]\nalign_ppm_range = [0.6, inf]\n", "preprocessing.align_ppm_range"),
    ("[fitting]\njoint_b_max_ms_um2 = {NAA = nan}\n", "fitting.joint_b_max_ms_um2.NAA"),
    ("[diffusion]\ngradient_duration_s = 5.0\n", "diffusion.gradient_duration_s"),
    ("[diffusion]\nmodels = [\"__import__\"]\n", "diffusion.models"),
    ("[fitting]\njoint_models = {NAA = \"nope\"}\n", "fitting.joint_models.NAA"),
])
def test_out_of_range_options_are_refused_naming_the_key(tmp_path, text, key):
    path = _toml(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value), str(err.value)


@pytest.mark.parametrize("key, value", [("baseline", "splines"),
                                        ("joint_decay_constraint", "monotone"),
                                        ("basis_without_water_lines", "sometimes"),
                                        ("noise", "everywhere")])
def test_fit_choices_the_fit_would_refuse_are_refused_at_load(tmp_path, key, value):
    """Before, an unknown [fitting] choice passed the config check and failed in every
    participant's fit node."""
    path = _toml(tmp_path, f'[fitting]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and key in message and repr(value) in message, message


def test_every_numeric_option_has_a_range_and_the_defaults_are_inside():
    defaults = load_default_config()
    numeric = {(s, k) for s, section in defaults.items() for k, v in section.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric - set(NUMERIC_RANGES) == set()
    assert numeric_problems(defaults) == []


def test_config_error_exits_2_naming_the_key(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "dataset_description.json").write_text('{"Name": "x"}')
    path = _toml(tmp_path, "[quantification]\nwater_concentration_mm = -5.0\n")
    status = cli.main([str(tmp_path / "in"), str(tmp_path / "out"), "participant", "--config",
                       str(path), "-w", str(tmp_path / "work")])
    assert status == cli.EXIT_USAGE
    assert "water_concentration_mm" in capsys.readouterr().err


@pytest.mark.parametrize("args, option", [(["--nprocs", "0"], "--nprocs"),
                                          (["--nprocs", "-3"], "--nprocs"),
                                          (["--mem-gb", "0"], "--mem-gb"),
                                          (["--mem-gb", "nan"], "--mem-gb"),
                                          (["--mem-gb", "-1"], "--mem-gb"),
                                          (["--mem-gb", "0.1"], "--mem-gb"),
                                          (["--plugin-args", "n_procs=0"], "n_procs"),
                                          (["--plugin-args", '{"memory_gb": 0}'], "memory_gb")])
def test_resource_options_are_validated_with_exit_2(tmp_path, capsys, args, option):
    (tmp_path / "in").mkdir()
    status = cli.main([str(tmp_path / "in"), str(tmp_path / "out"), "participant",
                       "-w", str(tmp_path / "work"), *args])
    assert status == cli.EXIT_USAGE
    assert option in capsys.readouterr().err


def test_fit_window_excluding_an_entry_drops_it_with_a_warning():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_fitting_support import CF_MHZ, DWELL_S, singlet_basis, synthetic_fid

    from pipeline.fitting import FitOptions, fit_spectrum

    truth = {"Cr": 6.0, "Cho": 1.5, "Ins": 4.0, "Lac": 0.7}
    basis = singlet_basis(list(truth))
    fid = synthetic_fid(basis, truth, lorentz_hz=3.0, gauss_hz=2.0)
    with pytest.warns(UserWarning, match=r"\['Lac'\].*left out"):
        fit = fit_spectrum(fid, basis, DWELL_S, CF_MHZ, FitOptions(ppm_range=(2.8, 4.2)))
    assert fit.success and "Lac" not in fit.names
    for name in ("Cr", "Cho", "Ins"):  # the Lac line outside the window does not matter
        assert fit.amplitude(name) == pytest.approx(truth[name], rel=2e-2)


def test_work_directory_must_be_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(cli.CliError, match="writable by its group and all users"):
        cli.check_work_dir_safe(shared)
    os.chmod(shared, 0o775)
    with pytest.raises(cli.CliError, match=r"writable by its group \(mode 0o775\)"):
        cli.check_work_dir_safe(shared)
    os.chmod(shared, 0o755)
    cli.check_work_dir_safe(shared)
    with pytest.raises(cli.CliError, match="owned by user id") as err:
        cli.check_work_dir_safe(shared, uid=os.getuid() + 1)
    assert "trusted like the code" in str(err.value)
    fresh = tmp_path / "a" / "fresh"
    cli.check_work_dir_safe(fresh)
    assert fresh.stat().st_mode & 0o777 == 0o700


def test_second_run_on_one_work_directory_is_refused(tmp_path):
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from bids_app.cli import lock_work_dir; lock_work_dir(Path(sys.argv[1])); "
         "print('locked', flush=True); time.sleep(60)", str(work)],
        stdout=subprocess.PIPE, text=True, env={**os.environ,
                                                "PYTHONPATH": str(Path(cli.__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(cli.CliError) as err:
            cli.lock_work_dir(work)
        assert "in use by another dmrs-bids run" in str(err.value)
        assert f"pid {holder.pid}" in str(err.value) and str(work) in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    cli.lock_work_dir(work)  # free again once the other run ended
    cli.release_work_dir_locks()


def test_logs_path_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "logs").write_text("not a folder")
    status = cli.main([str(tmp_path / "in"), str(tmp_path / "out"), "group"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE
    assert str(tmp_path / "out" / "logs") in err and "not a folder" in err
    assert "Errno" not in err


def test_digests_of_named_files_follow_their_content(tmp_path):
    """Issue 17 item 1 helper: the digest changes exactly when a named file's bytes change
    (a path string alone, the nipype cache key today, does not)."""
    from bids_app.config import digests_json, file_digest, named_file_digests

    bids = tmp_path / "in"
    bids.mkdir()
    table = bids / "fractions.tsv"
    table.write_text("participant_id\tgm\twm\tcsf\nsub-01\t0.6\t0.4\t0\n")
    basis = tmp_path / "basis"
    basis.mkdir()
    (basis / "NAA.RAW").write_bytes(b"naa")
    config = load_default_config()
    config["quantification"]["tissue_fractions_file"] = "fractions.tsv"
    config["conversion"]["chronograms"] = [str(table)]
    first = named_file_digests(config, bids, basis)
    assert set(first) == {"quantification.tissue_fractions_file", "conversion.chronograms[0]",
                          "basis"}
    import hashlib
    assert first["quantification.tissue_fractions_file"] == hashlib.sha256(
        table.read_bytes()).hexdigest()
    assert named_file_digests(config, bids, basis) == first  # same content, same key
    table.write_text("participant_id\tgm\twm\tcsf\nsub-01\t0.2\t0.2\t0.6\n")
    (basis / "NAA.RAW").write_bytes(b"naa2")
    second = named_file_digests(config, bids, basis)
    assert all(second[k] != first[k] for k in first)
    assert digests_json(second) == digests_json(dict(reversed(list(second.items()))))
    (basis / "Cr.RAW").write_bytes(b"cr")
    assert file_digest(basis) != second["basis"]
    with pytest.raises(ConfigError, match="absent.tsv"):
        config["quantification"]["tissue_fractions_file"] = "absent.tsv"
        named_file_digests(config, bids)


def test_output_path_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").write_text("a file")
    status = cli.main([str(tmp_path / "in"), str(tmp_path / "out"), "group"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and "exists and is not a folder" in err
    assert str(tmp_path / "out") in err
