"""Container recipes: fast checks of the Dockerfile, Singularity.def, lock file and the output
comparison; and the real build-and-run with buildah (when podman/buildah are installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent / "container"))
import compare_outputs  # noqa: E402
import singularity_venv  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
RECIPE = REPO / "Singularity.def"
LOCK = REPO / "requirements.lock"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.-]*)==([A-Za-z0-9_.+!-]+)", line.strip())
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        pins[_normalise(match[1])] = match[2]
    return pins


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, rest in _dockerfile_instructions():
        if keyword == "ENV":
            env.update(re.findall(r'(\w+)=("[^"]*"|\S+)', rest))
    return {k: v.strip('"') for k, v in env.items()}


def test_lock_pins_every_runtime_dependency():
    pins = _lock_pins()
    for requirement in _project()["dependencies"]:
        if "python_version < '3.11'" in requirement:
            continue  # tomli: not needed on the image's Python 3.11
        name = _normalise(re.match(r"[A-Za-z0-9_.-]+", requirement)[0])
        assert name in pins, f"requirements.lock lacks {name} (pyproject dependency)"
    # the validator the app runs by default, and the build backend used with --no-build-isolation
    for name in ("bids-validator-deno", "setuptools", "wheel", "numpy", "scipy"):
        assert name in pins, f"requirements.lock lacks {name}"


def test_dockerfile_follows_the_bids_app_contract():
    rows = _dockerfile_instructions()
    keywords = [k for k, _ in rows]
    assert rows[keywords.index("FROM")][1] == "python:3.11-slim-bookworm"
    assert rows[keywords.index("ENTRYPOINT")][1] == '["dmrs-bids"]'
    user = rows[len(keywords) - 1 - keywords[::-1].index("USER")][1]
    assert user.split(":")[0] not in ("0", "root"), "the image must not run as root"
    labels = " ".join(rest for k, rest in rows if k == "LABEL")
    for key in ("version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    args = dict(re.findall(r"(\w+)=(\S*)", " ".join(rest for k, rest in rows if k == "ARG")))
    assert args["VERSION"] == _project()["version"]
    runs = " ".join(rest for k, rest in rows if k == "RUN")
    assert "-r /opt/dmrs-bids/requirements.lock" in runs and "--no-deps" in runs
    env = _dockerfile_env()
    assert env["NIPYPE_NO_ET"] == "1"
    for cache in ("MPLCONFIGDIR", "NIPYPE_CONFIG_DIR", "XDG_CACHE_HOME", "HOME"):
        assert env[cache].startswith("/tmp/"), f"{cache} must be writable with a read-only root"


def test_singularity_recipe_matches_dockerfile():
    pytest.importorskip("spython", reason="spython (PyPI) parses Singularity recipes")
    recipe = singularity_venv.parse_recipe(RECIPE)
    assert recipe["from"] == dict(_dockerfile_instructions())["FROM"]
    assert recipe["labels"]["org.opencontainers.image.version"] == _project()["version"]
    assert recipe["labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    for source, _ in recipe["files"]:
        assert (REPO / source).exists(), f"Singularity.def %files: {source} missing"
    recipe_env = dict(line.removeprefix("export ").split("=", 1)
                      for line in recipe["environment"])
    docker_env = _dockerfile_env()
    for key in ("NIPYPE_NO_ET", "MPLBACKEND", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                "MPLCONFIGDIR", "NIPYPE_CONFIG_DIR", "XDG_CACHE_HOME"):
        assert recipe_env[key] == docker_env[key], key
    assert recipe_env["DMRS_BIDS_CONTAINER"].startswith("singularity:")
    post = "\n".join(recipe["post"])
    assert "-r requirements.lock" in post and "--no-deps" in post
    assert 'dmrs-bids "$@"' in recipe["runscript"]


def test_post_script_maps_the_install_prefix(tmp_path):
    files = [("pipeline", "/opt/dmrs-bids/pipeline"), ("README.md", "/opt/dmrs-bids/README.md")]
    prefix = singularity_venv.install_prefix(files)
    script = singularity_venv.post_script(["cd /opt/dmrs-bids", "pip install ."], prefix, tmp_path)
    assert prefix == "/opt/dmrs-bids"
    assert f"cd {tmp_path}/opt/dmrs-bids\n" in script and script.startswith("set -euo pipefail")
    with pytest.raises(ValueError, match="no folder"):
        singularity_venv.install_prefix([("a", "/a"), ("b", "/b")])


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed")
def test_hadolint_clean():
    run = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _derivatives(root: Path, amplitude: float, sample: complex, container: str) -> Path:
    mrs = root / "sub-01" / "mrs"
    mrs.mkdir(parents=True)
    (mrs / "sub-01_amplitudes.tsv").write_text(f"metabolite\tamplitude\nNAA\t{amplitude!r}\n")
    (mrs / "sub-01_qc.json").write_text(json.dumps({"snr": amplitude, "nan": float("nan")}))
    data = np.full((1, 1, 1, 8), 1 + 2j, dtype=np.complex128)
    data[0, 0, 0, 3] = sample
    nib.save(nib.Nifti2Image(data, np.eye(4)), mrs / "sub-01_svs.nii.gz")
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "GeneratedBy": [{"Name": "dmrs-bids", "Container": {"Type": container}}],
         "SourceDatasets": [{"URL": f"file://{root}"}]}))
    (root / "logs").mkdir()
    (root / "logs" / "run_summary.json").write_text(json.dumps({"elapsed_s": amplitude}))
    return root


def test_compare_outputs_finds_a_one_ulp_change(tmp_path):
    value, sample = 6.688894228590108, 0.25 - 1.5j
    base = _derivatives(tmp_path / "a", value, sample, "docker")
    same = _derivatives(tmp_path / "b", value, sample, "singularity")
    problems, n_files = compare_outputs.compare_derivatives(base, same)
    assert (problems, n_files) == ([], 4)  # container, source path and logs are not compared
    next_value = float(np.nextafter(value, np.inf))
    tsv = _derivatives(tmp_path / "c", next_value, sample, "docker")
    problems, _ = compare_outputs.compare_derivatives(base, tsv)
    assert sorted(problems) == ["sub-01/mrs/sub-01_amplitudes.tsv: text differs",
                                "sub-01/mrs/sub-01_qc.json: JSON values differ"]
    nifti = _derivatives(tmp_path / "d", value,
                         complex(sample.real, float(np.nextafter(sample.imag, 0))), "docker")
    problems, _ = compare_outputs.compare_derivatives(base, nifti)
    assert problems == ["sub-01/mrs/sub-01_svs.nii.gz: data arrays differ"]


def _can_build_images() -> str | None:
    missing = [exe for exe in ("podman", "buildah", "debootstrap") if shutil.which(exe) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install podman buildah debootstrap)"
    if os.geteuid() != 0:
        return "building the base rootfs with debootstrap needs root"
    if shutil.which("dmrs-bids") is None:
        return "dmrs-bids console script not on PATH (pip install -e .)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_can_build_images() is not None, reason=str(_can_build_images()))
def test_image_builds_and_gives_the_outputs_of_a_run_outside(tmp_path):
    pytest.importorskip("spython", reason="spython (PyPI) parses Singularity recipes")
    run = subprocess.run(["bash", str(REPO / "tests" / "container" / "build_and_run.sh"),
                          str(tmp_path)], capture_output=True, text=True, timeout=3600)
    print(run.stdout[-4000:])
    assert run.returncode == 0, (run.stdout[-3000:] + run.stderr[-3000:])
    assert "hadolint: clean" in run.stdout
    # three comparisons: demo made inside vs outside, image vs outside, Singularity venv vs outside
    verdicts = re.findall(r"compared (\d+) files: (\w+)", run.stdout)
    assert len(verdicts) == 3 and all(v == "identical" and int(n) > 10 for n, v in verdicts)
    assert run.stdout.rstrip().endswith("container check: OK")


def test_compare_outputs_maps_the_input_folder(tmp_path):
    for run, data in (("a", "/tmp/study"), ("b", "/data")):
        mrs = tmp_path / run / "sub-01" / "mrs"
        mrs.mkdir(parents=True)
        (mrs / "sub-01_qc.json").write_text(json.dumps(
            {"source": f"{data}/sub-01/mrs/sub-01_svs.nii.gz", "snr": 12.5}))
    a, b = tmp_path / "a", tmp_path / "b"
    assert compare_outputs.compare_derivatives(a, b)[0] == [
        "sub-01/mrs/sub-01_qc.json: JSON values differ"]
    assert compare_outputs.compare_derivatives(a, b, {"/tmp/study": "/data"}) == ([], 1)
    # a different file under the mapped folder still differs
    assert compare_outputs.compare_derivatives(a, b, {"/tmp/study/sub-01": "/data/sub-02"})[0]
