"""The offline BIDS validator (``bids-validator-deno``): running it, reading its JSON report and
grouping its errors by the file they concern."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .discovery import DiscoveryError


@dataclass
class ValidationIssue:
    """One issue of the validator's report (severity "error" or "warning")."""

    severity: str
    code: str
    location: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.severity.upper()} {self.code}: {self.location}{extra}"


def validator_executable() -> str | None:
    """Path of ``bids-validator-deno`` (PATH, or beside the Python interpreter)."""
    exe = shutil.which("bids-validator-deno")
    if exe:
        return exe
    candidate = Path(sys.executable).with_name("bids-validator-deno")
    return str(candidate) if candidate.exists() else None


def parse_validator_json(text: str, source: str = "bids-validator") -> list[ValidationIssue]:
    """Issues of a ``bids-validator --format json`` report."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiscoveryError(f"{source}: no JSON report ({exc})") from None
    issues = report.get("issues", {}).get("issues", [])
    return [ValidationIssue(i.get("severity", "error"), i.get("code", "?"),
                            i.get("location", ""), i.get("subCode") or i.get("issueMessage") or "")
            for i in issues]


def validate_bids(bids_dir, timeout_s: float = 600) -> list[ValidationIssue]:
    """Run the offline validator; returns its issues. No validator installed -> DiscoveryError."""
    exe = validator_executable()
    if exe is None:
        raise DiscoveryError("bids-validator-deno is not installed "
                             "(pip install bids-validator-deno, or use --skip-bids-validation)")
    run = subprocess.run([exe, "--format", "json", "--no-color", str(bids_dir)],
                         capture_output=True, text=True, timeout=timeout_s)
    return parse_validator_json(run.stdout, f"bids-validator on {bids_dir}")


def files_with_errors(issues: list[ValidationIssue], bids_dir) -> dict[Path, list[str]]:
    """Validator errors grouped by the file they concern (dataset-level ones under the root)."""
    grouped: dict[Path, list[str]] = {}
    for issue in issues:
        if issue.severity != "error":
            continue
        path = Path(bids_dir) / issue.location.lstrip("/") if issue.location else Path(bids_dir)
        detail = f": {issue.detail}" if issue.detail else ""
        grouped.setdefault(path, []).append(f"{issue.code}{detail}")
    return grouped
