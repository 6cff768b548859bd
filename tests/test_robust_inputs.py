"""Issue 8: bad inputs give one clear message naming the file and the problem, the participant
is marked failed (run summary in OUT/logs and exit status 1), everyone else is processed; the
input dataset is read-only and unchanged; no network is used.

One CLI run covers every case: a dataset of one good demo participant plus one broken copy per
defect (tests/robust_support.py), run in a user+mount+network namespace (``unshare -rmn``)
where the input is bind-mounted read-only and no network interface is up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import BAD_CASES, GOOD, checksums, make_bad_dataset  # noqa: E402

ENV = {**os.environ, "NIPYPE_NO_ET": "1", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
       "OMP_NUM_THREADS": "1"}
NO_NETWORK_PROBE = ("import socket\ns = socket.socket()\ns.settimeout(2)\n"
                    "try:\n    s.connect(('1.1.1.1', 53))\n    print('NETWORK UP')\n"
                    "except OSError:\n    pass\n")


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rmn", "true"], capture_output=True).returncode == 0


def isolated_command(bids_dir: Path, argv: list[str]) -> list[str]:
    """``argv`` run with ``bids_dir`` mounted read-only and without network; the script
    prints WRITABLE / NETWORK UP if the isolation did not take."""
    script = (f'mount --bind "{bids_dir}" "{bids_dir}" && '
              f'mount -o remount,bind,ro "{bids_dir}" "{bids_dir}" || exit 97\n'
              f'touch "{bids_dir}/.probe" 2>/dev/null && echo WRITABLE\n'
              f'"{sys.executable}" -c "{NO_NETWORK_PROBE}"\n'
              'exec "$@"\n')
    return ["unshare", "-rmn", "sh", "-c", script, "sh", *argv]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    if not _namespaces_work():
        pytest.skip("unshare -rmn is not permitted here (needs user namespaces)")
    from bids_app.demo import write_demo_dataset

    base = tmp_path_factory.mktemp("robust")
    bids = base / "in"
    write_demo_dataset(bids, participants=1, small=True, cache_dir=str(base / "cache"))
    culprits = make_bad_dataset(bids)
    before = checksums(bids)
    out = base / "out"
    argv = [sys.executable, "-m", "bids_app.cli", str(bids), str(out), "participant",
            "-w", str(base / "work"), "--nprocs", "2"]
    run = subprocess.run(isolated_command(bids, argv), capture_output=True, text=True,
                         env=ENV, cwd=base, timeout=600)
    summary = json.loads((out / "logs" / "run_summary.json").read_text())
    return {"run": run, "out": out, "bids": bids, "culprits": culprits, "before": before,
            "after": checksums(bids), "summary": summary}


@pytest.mark.slow  # shares one app run over every bad input (about 90 s)
@pytest.mark.parametrize("label", sorted(BAD_CASES))
def test_bad_input_fails_its_participant_with_a_clear_message(bad_run, label):
    entry = bad_run["summary"]["participants"][label]
    assert entry["status"] == "failed"
    message = " | ".join(entry["errors"])
    assert str(bad_run["culprits"][label]) in message, message
    for word in BAD_CASES[label][1]:
        assert word in message, message
    assert "Traceback" not in message and "NiftiMrsError:" not in message


@pytest.mark.slow  # shares one app run over every bad input (about 90 s)
def test_good_participant_is_processed_and_exit_status_names_the_failed(bad_run):
    run, out, summary = bad_run["run"], bad_run["out"], bad_run["summary"]
    assert summary["succeeded"] == [GOOD]
    assert sorted(summary["failed"]) == sorted(BAD_CASES)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert f"{len(BAD_CASES)} of {len(BAD_CASES) + 1} participant(s) failed" in last
    assert all(f"sub-{label}" in last for label in BAD_CASES)
    assert "Traceback" not in run.stderr
    mrs = out / f"sub-{GOOD}" / "mrs"
    amplitudes = (mrs / f"sub-{GOOD}_acq-dwpress_amplitudes.tsv").read_text().splitlines()
    assert len(amplitudes) > 1 + 6 * 4  # header + 6 conditions x (metabolites + sums)
    assert [p for label in BAD_CASES
            for p in (out / f"sub-{label}" / "mrs").glob("*_amplitudes.tsv")] == []


@pytest.mark.slow  # shares one app run over every bad input (about 90 s)
def test_input_dataset_is_read_only_and_unchanged(bad_run):
    assert "WRITABLE" not in bad_run["run"].stdout  # the run really had a read-only input
    assert bad_run["after"] == bad_run["before"]
    assert len(bad_run["before"]) > 4 * len(BAD_CASES)


@pytest.mark.slow  # shares one app run over every bad input (about 90 s)
def test_runs_without_network(bad_run):
    """The whole run, validator included, happened in a namespace with no network."""
    assert "NETWORK UP" not in bad_run["run"].stdout
    assert bad_run["summary"]["participants"][GOOD]["status"] == "ok"
    assert (bad_run["out"] / "logs" / "bids_validation.json").is_file()


@pytest.mark.slow  # shares one app run over every bad input (about 90 s)
def test_validator_findings_are_reported_for_the_dataset_not_in_failure_reasons(bad_run):
    """The validator's EMPTY_FILE on the zero-byte svs is in the run summary's dataset-level
    section; the participant's own failure reason names only its problem (validator lines
    matched by path prefix once put sub-10's notes into sub-1's reason)."""
    errors = bad_run["summary"]["participants"]["zerobytes"]["errors"]
    assert errors and not any("BIDS validator" in e for e in errors), errors
    assert any("file is empty" in e for e in errors), errors
    found = bad_run["summary"]["bids_validation"]["errors"]
    svs = [codes for path, codes in found.items() if path.startswith("sub-zerobytes/")
           and path.endswith("_svs.nii.gz")]
    assert svs and any("EMPTY_FILE" in codes for codes in svs), found


def test_varian_folder_with_truncated_fid(shared_data, tmp_path):
    """dmrs-bids-convert on a copy of an mm_consensus Varian folder whose fid lost its end:
    exit 2, one line naming the fid and the sizes, nothing written (the Philips DICOM case is
    in test_convert; the untouched folder converts: test_convert_varian)."""
    folder = tmp_path / "src" / "7T_MM_human_STEAM_CMRR.fid"
    folder.mkdir(parents=True)
    original = shared_data / "mm_consensus/MM_database/7T_MM_human_STEAM_CMRR.fid"
    (folder / "procpar").write_bytes((original / "procpar").read_bytes())
    (folder / "fid").write_bytes((original / "fid").read_bytes()[:-100])
    mapping = tmp_path / "varian.toml"
    mapping.write_text('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       f'format = "varian"\nfiles = ["{folder.name}"]\n')
    run = subprocess.run([sys.executable, "-m", "bids_app.convert", str(mapping),
                          str(tmp_path / "out"), "--source-dir", str(folder.parent)],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert run.returncode == 2
    assert f"{folder}/fid:" in run.stderr and "holds 16344 bytes" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
