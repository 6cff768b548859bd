"""The BIDS App contract without processing: help, version, options, config, discovery, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bids_app import bids_validation, cli, config, derivatives, discovery
from datasets import make_invivo_bids, make_synthetic_bids

ENV = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg"}


@pytest.fixture(autouse=True)
def in_own_folder(tmp_path, monkeypatch):
    """Runs without ``-w`` make ``./work``: each test's goes in its own folder, not the
    repository (tests run in parallel, and a shared work folder is locked by one run)."""
    monkeypatch.chdir(tmp_path)


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bids_app.cli", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def test_version_and_help_explain_every_option():
    from pipeline import __version__

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"dmrs-bids {__version__}"
    text = run_cli("--help").stdout
    for option in ("--participant-label", "--session-label", "--bids-filter-file", "-w",
                   "--nprocs", "--mem-gb", "--plugin", "--plugin-args", "--config", "--basis",
                   "--b-value-units", "--skip-bids-validation", "--stop-on-first-crash",
                   "--reports-only", "-v"):
        assert option in text, option
    # every optional argument's help states its default
    parser = cli.build_parser()
    for action in parser._actions:
        if action.option_strings and action.dest not in ("help", "version"):
            assert "default" in (action.help or ""), action.dest


def test_python_dash_m_bids_app_is_the_dmrs_bids_command(tmp_path):
    """``python -m bids_app`` runs the same CLI as ``dmrs-bids`` (and ``-m bids_app.cli``):
    same version, same help, same exit status 2 naming a missing BIDS folder."""
    from pipeline import __version__

    def run(module, *args):
        return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                              capture_output=True, text=True, env=ENV, timeout=120)

    assert run("bids_app", "--version").stdout.strip() == f"dmrs-bids {__version__}"
    assert run("bids_app", "--help").stdout == run("bids_app.cli", "--help").stdout
    missing = run("bids_app", tmp_path / "nope", tmp_path / "out", "participant")
    assert missing.returncode == run_cli(tmp_path / "nope", tmp_path / "out",
                                         "participant").returncode != 0
    assert str(tmp_path / "nope") in missing.stderr


@pytest.mark.parametrize("text, expected", [
    ('{"n_procs": 3, "sbatch_args": "-p short"}', {"n_procs": 3, "sbatch_args": "-p short"}),
    ("n_procs=2,memory_gb=1.5,sbatch_args=-p short", {"n_procs": 2, "memory_gb": 1.5,
                                                      "sbatch_args": "-p short"}),
    (None, {}),
])
def test_plugin_args_json_or_key_value(text, expected):
    assert cli.parse_plugin_args(text) == expected


def test_plugin_settings_pass_nprocs_and_memory():
    opts = cli.build_parser().parse_args(["a", "b", "participant", "--nprocs", "2",
                                          "--mem-gb", "3"])
    plugin, args = cli.plugin_settings(opts)
    assert plugin == "MultiProc" and args["n_procs"] == 2 and args["memory_gb"] == 3.0
    opts = cli.build_parser().parse_args(["a", "b", "participant", "--plugin", "SLURM",
                                          "--plugin-args", '{"sbatch_args": "-p x"}'])
    assert cli.plugin_settings(opts) == ("SLURM", {"sbatch_args": "-p x"})


def test_bad_plugin_args_are_refused():
    with pytest.raises(cli.CliError, match="key=value"):
        cli.parse_plugin_args("n_procs")


def test_config_merges_and_refuses_unknown_keys(tmp_path):
    user = tmp_path / "user.toml"
    user.write_text('[fitting]\nbaseline_order = 4\n[diffusion]\nmodels = ["monoexponential"]\n')
    merged = config.load_config(user)
    assert merged["fitting"]["baseline_order"] == 4
    assert merged["diffusion"]["models"] == ["monoexponential"]
    assert merged["qc"] == config.load_default_config()["qc"]
    typo = tmp_path / "typo.toml"
    typo.write_text("[fitting]\nbaselin_order = 4\n")
    with pytest.raises(config.ConfigError, match="fitting.baselin_order"):
        config.load_config(typo)
    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text('[fitting]\nbaseline_order = "four"\n')
    with pytest.raises(config.ConfigError, match="baseline_order"):
        config.load_config(wrong_type)


@pytest.mark.parametrize("section, message", [
    ("tissue_fractions = {gm = 0.5, white = 0.5}", "unknown tissue classes ['white']"),
    ("tissue_fractions = {gm = -0.2, wm = 0.5}", "non-negative with a positive sum"),
    ("metabolite_t2_s = {NAA = 0}", "positive times in seconds"),
])
def test_bad_quantification_tables_are_config_errors(tmp_path, section, message):
    path = tmp_path / "q.toml"
    path.write_text(f"[quantification]\n{section}\n")
    with pytest.raises(config.ConfigError, match=r"q.toml: \[quantification\] .*"
                       + message.replace("[", r"\[").replace("]", r"\]")):
        config.load_config(path)


def run_with_config(shared_data, tmp_path, text: str):
    """The CLI on a small synthetic dataset with a user config of ``text``; (run, BIDS root)."""
    bids = make_synthetic_bids(tmp_path / "bids", shared_data)
    cfg = tmp_path / "user.toml"
    cfg.write_text(text)
    return run_cli(bids, tmp_path / "out", "participant", "--config", cfg,
                   "--skip-bids-validation"), bids


def test_missing_tissue_fraction_table_exits_before_any_work(shared_data, tmp_path):
    run, bids = run_with_config(shared_data, tmp_path, '[quantification]\ntissue_fractions_file'
                                ' = "derivatives/fractions.tsv"\n')
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{bids / 'derivatives' / 'fractions.tsv'}: [quantification] " \
           "tissue_fractions_file not found" in run.stderr


def test_basis_mm_mode_without_a_basis_file_exits_before_any_work(shared_data, tmp_path):
    """Before, every participant failed at the MM node after conversion and preprocessing
    (the simulated basis has no MM entry), exit 1."""
    run, _ = run_with_config(shared_data, tmp_path, '[macromolecules]\nmode = "basis"\n')
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert (f'{tmp_path / "user.toml"}: [macromolecules] mode = "basis" needs --basis'
            in run.stderr), run.stderr
    assert "the simulated basis (no --basis) has none" in run.stderr
    assert not (tmp_path / "out").exists()


def test_effective_config_round_trips_through_toml(tmp_path):
    cfg = config.load_config()
    cfg["fitting"]["lineshape_groups"] = {"singlets": ["NAA", "Cr"]}
    path = config.write_config(cfg, tmp_path / "config.toml")
    assert config.read_toml(path) == cfg


def test_default_fitting_section_matches_fit_options():
    """The documented [fitting] keys are FitOptions fields with the engine's defaults, and
    the effective defaults hold every field (so every fit option is configurable)."""
    from bids_app.config import tomllib

    from pipeline.fitting.options import FitOptions

    documented = tomllib.loads(config.DEFAULT_CONFIG_PATH.read_text())["fitting"]
    assert documented.pop("metabolites") == []
    engine = config.fit_option_defaults()
    assert {k: engine[k] for k in documented} == documented
    effective = config.load_default_config()["fitting"]
    assert set(engine) <= set(effective)
    table = {k: v for k, v in effective.items() if k != "metabolites"}
    assert FitOptions.from_dict(table).to_dict() == FitOptions().to_dict()


def test_unknown_config_key_exits_nonzero_with_clear_message(shared_data, tmp_path):
    run, _ = run_with_config(shared_data, tmp_path, "[qc]\nsnr_window = [1, 2]\n")
    assert run.returncode == 2
    assert "unknown configuration key 'qc.snr_window'" in run.stderr
    assert "Traceback" not in run.stderr


def test_unknown_participant_label_exits_nonzero(shared_data, tmp_path):
    bids = make_synthetic_bids(tmp_path / "bids", shared_data)
    run = run_cli(bids, tmp_path / "out", "participant", "--participant-label", "sub-99",
                  "--skip-bids-validation", "-w", str(tmp_path / "work"))
    assert run.returncode == 2
    assert "participant label(s) 99 not found" in run.stderr and "available: 01" in run.stderr
    assert "Traceback" not in run.stderr
    # checked before anything is written: no output or work folder is left behind
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_discovery_finds_water_reference_by_uri_and_by_entities(shared_data, tmp_path):
    bids = make_invivo_bids(tmp_path / "bids", shared_data)
    found = discovery.discover(bids, ["sub-01"])
    (acq,) = found["01"]
    assert acq.water.name == "sub-01_acq-dwsteam_mrsref.nii.gz"
    assert acq.stem == "sub-01_acq-dwsteam" and acq.sidecar["EchoTime"] == 0.040
    # without ReferenceSignal, the mrsref with the same entities is used
    sidecar = bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.json"
    meta = json.loads(sidecar.read_text())
    del meta["ReferenceSignal"]
    sidecar.write_text(json.dumps(meta))
    (acq,) = discovery.discover(bids)["01"]
    assert acq.water.name == "sub-01_acq-dwsteam_mrsref.nii.gz"
    # a filter that matches nothing leaves no acquisitions
    assert discovery.discover(bids, filters={"svs": {"acquisition": "other"}})["01"] == []


def test_discovery_links_mm_acquisition(shared_data, tmp_path):
    bids = make_synthetic_bids(tmp_path / "bids", shared_data)
    mrs = bids / "sub-01/mrs"
    import nibabel as nib  # the MM: another file (a byte copy is the metabolite file itself)
    image = nib.load(str(mrs / "sub-01_acq-dwsteam_svs.nii.gz"))
    nib.save(nib.Nifti2Image(0.2 * np.asanyarray(image.dataobj), image.affine, image.header),
             str(mrs / "sub-01_acq-mm_svs.nii.gz"))
    (mrs / "sub-01_acq-mm_svs.json").write_text((mrs / "sub-01_acq-dwsteam_svs.json").read_text())
    from robust_support import as_measured_mm  # MM lines: a metabolite spectrum is refused
    as_measured_mm(mrs / "sub-01_acq-mm_svs.nii.gz")
    (acq,) = discovery.discover(bids, mm_labels=["mm"])["01"]
    assert acq.svs.name == "sub-01_acq-dwsteam_svs.nii.gz"
    assert acq.mm is not None and acq.mm.name == "sub-01_acq-mm_svs.nii.gz"


def test_bids_filter_file_errors_name_the_file(tmp_path):
    path = tmp_path / "filter.json"
    path.write_text('{"bold": {}}')
    with pytest.raises(discovery.DiscoveryError, match="filter.json.*unknown filter query"):
        discovery.read_bids_filter_file(path)


def test_validator_reports_empty_files_per_file(shared_data):
    root = shared_data / "bids_examples_mrs" / "mrs_fmrs"
    issues = bids_validation.validate_bids(root)
    per_file = bids_validation.files_with_errors(issues, root)
    empty = [p for p, errors in per_file.items() if any("EMPTY_FILE" in e for e in errors)]
    assert root / "sub-01/mrs/sub-01_task-baseline_svs.nii.gz" in empty


def test_derivative_names_follow_bids():
    path = derivatives.acquisition_path("/out", "01", "2", "sub-01_ses-2_acq-x", "preproc")
    assert path == Path("/out/sub-01/ses-2/mrs/sub-01_ses-2_acq-x_desc-preproc_svs.nii.gz")
    assert derivatives.report_path("/out", "01") == Path("/out/sub-01.html")
    assert derivatives.container_info({"DMRS_BIDS_CONTAINER": "docker:dmrs-bids:0.1"}) == \
        {"Type": "docker", "Tag": "dmrs-bids:0.1"}
    desc = derivatives.dataset_description("/nonexistent", "0.1.0", environ={})
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "dmrs-bids"
    assert "Container" not in desc["GeneratedBy"][0]


def test_empty_files_fail_per_participant_with_clear_errors(shared_data, tmp_path):
    """The MRS-BIDS examples hold 0-byte NIfTI files: each selected participant fails with a
    message naming its file; the others are still attempted; exit status is not 0."""
    root = shared_data / "bids_examples_mrs" / "mrs_fmrs"
    out = tmp_path / "out"
    run = run_cli(root, out, "participant", "--participant-label", "01", "sub-02",
                  "-w", tmp_path / "work", "--nprocs", "2", timeout=300)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["failed"] == ["01", "02"] and summary["succeeded"] == []
    for subject in ("01", "02"):
        errors = " ".join(summary["participants"][subject]["errors"])
        assert f"sub-{subject}_task-baseline_svs.nii.gz: file is empty (0 bytes)" in errors
        assert f"sub-{subject}_task-pain_svs.nii.gz: file is empty (0 bytes)" in errors
    log = (out / "logs" / "dmrs-bids.log").read_text()
    assert "BIDS validation error in" in log and "EMPTY_FILE" in log
    assert not (out / "sub-03").exists()  # --participant-label filtered


def test_citation_describes_what_ran():
    from bids_app.citation import citation_markdown

    cfg = config.load_default_config()
    stages = [{"mm.json": {"mode": "basis"}, "fit.json": {"mode": "sequential"},
               "eddy.json": {"flags": []}}]
    text = citation_markdown(cfg, None, stages)
    assert "simulated from the acquisition parameters" in text and "macromolecules: basis" in text
    assert "Klose U" in text and "Ligneul C" in text
    assert "Gasparovic C" not in text  # no water scaling reported by the fit stage
    stages[0]["fit.json"]["quantification"] = {
        "water_scaling": "done", "metabolite_t2_s": {"default": 0.16},
        "tissue_fractions_source": "default (no segmentation): 60 % GM, 40 % WM"}
    text = citation_markdown(cfg, None, stages)
    assert "Gasparovic C" in text and "with metabolite relaxation corrections" in text
    assert "60 % GM, 40 % WM" in text
    # without a water reference no eddy-current correction ran, and none is cited
    del stages[0]["eddy.json"]
    assert "Klose U" not in citation_markdown(cfg, None, stages)
    cfg["preprocessing"]["ecc"] = False
    cfg["diffusion"]["models"] = ["monoexponential"]
    text = citation_markdown(cfg, "/x/basis.BASIS", [])
    assert "Klose U" not in text and "kurtosis" not in text and "basis.BASIS" in text
    # references are numbered in order of first citation, each listed once
    refs = text.split("# References")[1].strip().splitlines()
    assert [r.split(".")[0] for r in refs] == [str(i) for i in range(1, len(refs) + 1)]
    # one paper, one number: the QC limits' sources include the terminology and dMRS consensus
    # papers the methods cite already (the report listed them twice before 2026-12-07)
    papers = [r.split(". ", 1)[1] for r in refs]
    assert len(set(papers)) == len(papers)
    assert sum("Terminology and concepts" in r for r in refs) == 1
    assert "Wilson M" in text and "Lin A" in text and "gallery of artifacts" in text
    # eddy currents are corrected before alignment, and the methods say so in that order
    cfg["preprocessing"]["ecc"] = True
    text = citation_markdown(cfg, None, [])
    assert text.index("eddy currents were corrected") < text.index("transients were aligned")


def test_session_labels_select_sessions(shared_data, tmp_path):
    bids = make_invivo_bids(tmp_path / "bids", shared_data)
    flat = bids / "sub-01" / "mrs"
    for session in ("A", "B"):
        target = bids / "sub-01" / f"ses-{session}" / "mrs"
        target.mkdir(parents=True)
        for path in flat.iterdir():
            name = path.name.replace("sub-01_", f"sub-01_ses-{session}_")
            content = path.read_bytes()
            if path.name.endswith("_svs.json"):
                meta = json.loads(content)
                meta["ReferenceSignal"] = (f"bids::sub-01/ses-{session}/mrs/"
                                           f"sub-01_ses-{session}_acq-dwsteam_mrsref.nii.gz")
                content = json.dumps(meta).encode()
            (target / name).write_bytes(content)
    for path in flat.iterdir():
        path.unlink()
    flat.rmdir()
    (acq,) = discovery.discover(bids, session_labels=["ses-B"])["01"]
    assert acq.session == "B" and acq.stem == "sub-01_ses-B_acq-dwsteam"
    assert acq.water.name == "sub-01_ses-B_acq-dwsteam_mrsref.nii.gz"
    assert len(discovery.discover(bids)["01"]) == 2
    assert derivatives.acquisition_path("/o", "01", acq.session, acq.stem, "qc") == \
        Path("/o/sub-01/ses-B/mrs/sub-01_ses-B_acq-dwsteam_qc.json")
    with pytest.raises(discovery.DiscoveryError, match="session label"):
        discovery.discover(bids, session_labels=["C"])


def test_default_preprocessing_section_matches_preprocess_options():
    from bids_app.config import tomllib

    documented = tomllib.loads(config.DEFAULT_CONFIG_PATH.read_text())["preprocessing"]
    ours = {k: documented.pop(k) for k in ("powder_average", "powder_method")}
    assert ours == {"powder_average": False, "powder_method": "arithmetic"}
    engine = config.preprocess_option_defaults()
    assert {k: engine[k] for k in documented} == documented
    assert set(engine) <= set(config.load_default_config()["preprocessing"])


def test_dangling_reference_signal_fails_that_participant(shared_data, tmp_path):
    bids = make_invivo_bids(tmp_path / "bids", shared_data)
    (bids / "sub-01/mrs/sub-01_acq-dwsteam_mrsref.nii.gz").unlink()
    (bids / "sub-01/mrs/sub-01_acq-dwsteam_mrsref.json").unlink()
    out = tmp_path / "out"
    run = run_cli(bids, out, "participant", "--skip-bids-validation", "-w", tmp_path / "work")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["failed"] == ["01"]
    (error,) = summary["participants"]["01"]["errors"]
    assert "ReferenceSignal" in error and "does not exist" in error


def test_implausible_stated_b_value_unit_fails_that_participant(shared_data, tmp_path):
    """b = 907..3956 stated as ms/um^2: the participant fails naming the file and the likely
    unit, instead of diffusion results for b up to 3 956 000 s/mm^2."""
    bids = make_invivo_bids(tmp_path / "bids", shared_data)
    sidecar = bids / "sub-01/mrs/sub-01_acq-dwsteam_svs.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()),
                                   "DiffusionBValueUnits": "ms/um2"}))
    out = tmp_path / "out"
    run = run_cli(bids, out, "participant", "--skip-bids-validation", "-w", tmp_path / "work")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    assert summary["failed"] == ["01"]
    error = " | ".join(summary["participants"]["01"]["errors"])
    assert "sub-01_acq-dwsteam_svs.nii.gz" in error and "look like s/mm2" in error
    assert "--b-value-units s/mm2" in error and "NiftiMrsError:" not in error


def test_an_mrsi_only_participant_is_told_that_mrsi_is_not_processed(shared_data):
    """bids-examples mrs_2dmrsi holds only _mrsi files: each participant's error says so
    (it was 'no svs acquisition found'), and names the folder."""
    from bids_app import discovery

    errors = {}
    found = discovery.discover(shared_data / "bids_examples_mrs" / "mrs_2dmrsi", errors=errors)
    assert found == {} and errors
    for subject, message in errors.items():
        assert f"sub-{subject}" in message
        assert "found only _mrsi files, which dmrs-bids does not process" in message
