"""Shared setup of the end-to-end fault-injection tests (no tests here): the small demo with
exact copies of its participant, each to receive one fault, and the app run over them, so the
untouched participant ``01`` is the truth the faulted ones are compared with."""

from __future__ import annotations

from pathlib import Path

from e2e_support import FAST_CONFIG, run_app
from robust_support import copy_good


def demo_with_copies(base: Path, labels) -> tuple[Path, dict]:
    """The small demo (participant ``01``) in ``base / "in"`` and an exact copy of it as each
    of ``labels``; returns the dataset and label -> the copy's file paths
    (``robust_support.paths``). The demo's participants.tsv, which lists only ``01``, is
    removed."""
    from bids_app.demo import write_demo_dataset

    bids = base / "in"
    write_demo_dataset(bids, participants=1, small=True, cache_dir=str(base / "cache"))
    copies = {label: copy_good(bids, label) for label in labels}
    (bids / "participants.tsv").unlink()
    return bids, copies


def run_levels(bids: Path, base: Path, levels=("participant",)) -> Path:
    """dmrs-bids on ``bids`` at each of ``levels`` in turn (two processes, the fast diffusion
    models, no validation), asserting exit 0; returns the output folder."""
    config = base / "fast.toml"
    config.write_text(FAST_CONFIG)
    out = base / "out"
    for level in levels:
        run, _ = run_app(bids, out, level, "-w", base / "work", "--nprocs", "2",
                         "--skip-bids-validation", "--config", config)
        assert run.returncode == 0, run.stderr[-3000:]
    return out
