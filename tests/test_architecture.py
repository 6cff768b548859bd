"""Imports run one way: bids_app -> workflows -> pipeline (CONTRIBUTING, DESIGN).

Every module is parsed (``ast``), so an import inside a function counts as much as one at the
top. Relative imports stay inside their package and are resolved to it.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BANNED = {
    "pipeline": {"nipype", "bids", "workflows", "bids_app"},
    "workflows": {"bids_app"},
}
MAX_MODULE_LINES = 600
"""Issue 16: no production module (pipeline/, workflows/, bids_app/) over 600 lines."""


def imported_packages(path: Path, package: str) -> set[str]:
    """Top-level names of every module ``path`` imports (relative ones resolve to
    ``package``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(BANNED))
def test_layers_import_one_way(package):
    offending = {str(p.relative_to(REPO)): sorted(imported_packages(p, package) & BANNED[package])
                 for p in modules(package)}
    offending = {k: v for k, v in offending.items() if v}
    assert not offending, f"{package}/ must not import {sorted(BANNED[package])}: {offending}"


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bids_app.report import x\n    import nipype.pipeline\n"
                      "from . import sibling\n")
    assert imported_packages(module, "workflows") == {"bids_app", "nipype", "workflows"}


def module_lines(package: str) -> dict[str, int]:
    return {p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
            for p in modules(package)}


@pytest.mark.parametrize("package", ["pipeline", "workflows", "bids_app"])
def test_production_modules_have_at_most_600_lines(package):
    too_long = {name: n for name, n in module_lines(package).items()
                if n > MAX_MODULE_LINES}
    assert not too_long, f"split these modules by responsibility (<= {MAX_MODULE_LINES} " \
                         f"lines each): {too_long}"


def test_the_pipeline_package_imports_without_nipype_or_pybids():
    """Importing every pipeline module in a fresh interpreter loads neither nipype nor
    pybids (``bids``)."""
    import subprocess
    import sys

    names = [".".join(p.relative_to(REPO).with_suffix("").parts) for p in modules("pipeline")]
    names = [n.removesuffix(".__init__") for n in names]
    code = ("import importlib, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "print(sorted(m for m in ('nipype', 'bids', 'workflows', 'bids_app') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
