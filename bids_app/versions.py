"""Versions of the software a run used (issue 9 item 5): the dependencies, Python and the BLAS
numpy calls, for ``dataset_description.json`` (``GeneratedBy``) and the reports.

Only installed-package metadata is read (``importlib.metadata``, ``numpy.show_config``): no
network, no subprocess, same answer in every process of a run.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

DEPENDENCIES = ("numpy", "scipy", "nibabel", "nifti-mrs", "spec2nii", "nipype", "pybids",
                "matplotlib", "jinja2")


def package_version(name: str) -> str:
    """Installed version of distribution ``name`` ("not installed" when absent)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def blas_info() -> dict:
    """Name and version of the BLAS numpy was built against (empty strings when unknown)."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
    except (TypeError, ValueError, AttributeError):  # numpy < 1.26 has no mode="dicts"
        blas = {}
    return {"name": str(blas.get("name", "")), "version": str(blas.get("version", ""))}


@lru_cache(maxsize=1)
def software_versions() -> dict:
    """``{"python": "3.11.7", "packages": {name: version}, "blas": {"name", "version"}}``."""
    return {"python": platform.python_version(),
            "packages": {name: package_version(name) for name in DEPENDENCIES},
            "blas": blas_info()}


def generated_by_entries(versions: dict | None = None) -> list[dict]:
    """``GeneratedBy`` entries (BIDS: Name, Version, Description) for Python, each dependency
    and the BLAS."""
    versions = versions or software_versions()
    entries = [{"Name": "Python", "Version": versions["python"],
                "Description": "interpreter (dependency of dmrs-bids)"}]
    entries += [{"Name": name, "Version": v, "Description": "dependency of dmrs-bids"}
                for name, v in versions["packages"].items()]
    blas = versions["blas"]
    if blas["name"]:
        entries.append({"Name": blas["name"], "Version": blas["version"],
                        "Description": "BLAS/LAPACK library used by numpy"})
    return entries
