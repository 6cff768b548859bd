"""Check Singularity.def without Singularity: parse it with spython, stage its ``%files``, run
its ``%post`` install steps in a fresh virtual environment, and write its ``%environment``.

Paths under the recipe's install prefix (the common folder of the ``%files`` destinations, e.g.
``/opt/dmrs-bids``) are mapped into ``ROOT``; ``python`` in ``%post`` is the new environment's.

Usage: ``python singularity_venv.py RECIPE CONTEXT_DIR ROOT VENV`` — prints the path of an env
file to ``source`` before running the venv's ``dmrs-bids`` (exit 1 when a step fails); the
recipe's ``%test`` is written to ROOT/test.sh.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import sys
import venv
from pathlib import Path


class RecipeError(ValueError):
    """The recipe lacks something the image needs."""


def _parser_class():
    """spython's recipe parser, keeping %test as its lines (spython's own turns them into
    %post commands writing /tests.sh, which must not run on this machine)."""
    from spython.main.parse.parsers import SingularityParser

    class Parser(SingularityParser):
        def _test(self, lines):
            self.recipe[self.active_layer].test = "\n".join(lines)

    return Parser


def parse_recipe(path) -> dict:
    """The parts of a Singularity recipe that matter here, as parsed by spython."""
    recipe = _parser_class()(str(path)).recipe
    if len(recipe) != 1:
        raise RecipeError(f"{path}: expected one stage, found {len(recipe)}")
    stage = next(iter(recipe.values()))
    text = Path(path).read_text()
    for section in ("%runscript", "%test", "%labels", "%help", "%post", "%files"):
        if section not in text:
            raise RecipeError(f"{path}: no {section} section")
    files = [tuple(line.split()) for line in stage.files]
    if not files or any(len(pair) != 2 for pair in files):
        raise RecipeError(f"{path}: %files entries must be 'source destination'")
    return {"from": stage.fromHeader, "files": files, "post": list(stage.install),
            "environment": list(stage.environ), "labels": dict(
                line.split(None, 1) for line in stage.labels), "runscript": stage.cmd,
            "test": stage.test}


def install_prefix(files: list[tuple[str, str]]) -> str:
    """The common folder of the ``%files`` destinations."""
    prefix = posixpath.commonpath([dst for _, dst in files])
    if prefix in ("", "/"):
        raise RecipeError("%files destinations share no folder to map into the test root")
    return prefix


def stage_files(files, context: Path, root: Path) -> None:
    """Copy each ``%files`` source (relative to the build context) to ROOT/destination."""
    for src, dst in files:
        target = root / dst.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = context / src
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)


def post_script(post_lines: list[str], prefix: str, root: Path) -> str:
    """The ``%post`` lines as a bash script, with the install prefix mapped into ROOT."""
    mapped = [line.replace(prefix, str(root) + prefix) for line in post_lines]
    return "set -euo pipefail\n" + "\n".join(mapped) + "\n"


def environment_file(env_lines: list[str], venv_dir: Path) -> str:
    """``%environment`` plus the venv on PATH, as a file to source."""
    exports = [line if line.startswith("export ") else f"export {line}" for line in env_lines]
    exports.append(f"export PATH={venv_dir / 'bin'}:$PATH")
    return "\n".join(exports) + "\n"


def run(recipe_path, context, root, venv_dir) -> Path:
    """Stage, install, and write the env file; returns its path."""
    context, root, venv_dir = (Path(p).resolve() for p in (context, root, venv_dir))
    recipe = parse_recipe(recipe_path)
    prefix = install_prefix(recipe["files"])
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(venv_dir, ignore_errors=True)
    stage_files(recipe["files"], context, root)
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    # As in an image build: no pip settings of this machine, only what the recipe says
    # (PIP_INDEX and CA_BUNDLE pass through).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PATH=f"{venv_dir / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv_dir))
    subprocess.run(["bash", "-c", post_script(recipe["post"], prefix, root)], env=env,
                   cwd=root, check=True, stdout=sys.stderr)  # stdout: the env file path only
    env_path = root / "environment.sh"
    env_path.write_text(environment_file(recipe["environment"], venv_dir))
    (root / "test.sh").write_text("set -euo pipefail\n" + recipe["test"] + "\n")
    return env_path


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(run(*args))
    except (RecipeError, subprocess.CalledProcessError) as exc:
        print(f"singularity_venv: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
