"""Render an HTML report in headless Chromium, offline: DOM, console messages, screenshot.

Chromium runs with networking disabled for its own services and, where ``unshare -n`` works,
in a network namespace without any interface, so nothing can leave the machine. Console
messages are read from Chromium's log (``--enable-logging=stderr``), which prints each as
``CONSOLE(...)`` / ``console.*`` lines.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0")
CONSOLE = re.compile(r"(CONSOLE\(\d+\)|console\.(error|warn)|Uncaught|"
                     r"Failed to load resource|net::ERR_)", re.IGNORECASE)
EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@dataclass
class Rendered:
    dom: str
    console: list[str]
    screenshot: Path | None
    isolated: bool


def chromium() -> str | None:
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def _network_isolation() -> list[str]:
    """``unshare -n`` when it can create a network namespace here (root or user namespaces)."""
    unshare = shutil.which("unshare")
    if not unshare:
        return []
    for prefix in ([unshare, "-n"], [unshare, "-r", "-n"]):
        try:
            ok = subprocess.run(prefix + ["true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return prefix
    return []


def external_references(html: str) -> list[str]:
    """``src=``/``href=``/``url(`` values that point off the machine (http, https, //host)."""
    return [m.group(0) for m in EXTERNAL.finditer(html)]


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)


def render(html_path, screenshot_path=None, width: int = 1200, height: int = 4000,
           timeout_s: float = 120.0) -> Rendered:
    """DOM after load, console lines, and (optionally) a PNG screenshot of the page."""
    exe = chromium()
    if exe is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    prefix = _network_isolation()
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        base = prefix + [exe, *FLAGS, f"--user-data-dir={profile}",
                         f"--window-size={width},{height}"]
        dom_run = _run(base + ["--dump-dom", url], timeout_s)
        console = [line for line in dom_run.stderr.splitlines() if CONSOLE.search(line)]
        shot = None
        if screenshot_path is not None:
            shot = Path(screenshot_path)
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot_run = _run(base + [f"--screenshot={shot}", url], timeout_s)
            console += [line for line in shot_run.stderr.splitlines() if CONSOLE.search(line)]
            if not shot.is_file():
                raise RuntimeError(f"chromium wrote no screenshot of {html_path}: "
                                   f"{shot_run.stderr[-2000:]}")
    if dom_run.returncode != 0 or "<html" not in dom_run.stdout.lower():
        raise RuntimeError(f"chromium could not render {html_path} "
                           f"(exit {dom_run.returncode}): {dom_run.stderr[-2000:]}")
    return Rendered(dom_run.stdout, console, shot, bool(prefix))
