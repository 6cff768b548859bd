"""Cluster plugins that only submit (nipype's ``*Graph`` plugins): tag the jobs of this run
and wait for them, so outputs are collected after the jobs ran, not after they were queued.

SLURMGraph submits every node as an ``sbatch`` job with dependencies and returns at once; the
jobs carry ``--comment=<token>`` (a token unique to this run) and the CLI polls
``squeue --me --format=%k`` until no job with that comment is left.
"""

from __future__ import annotations

import subprocess
import time
import uuid

SUBMIT_ONLY_PLUGINS = {"SLURMGraph": "sbatch_args"}
POLL_S = 5.0


class ClusterWaitError(ValueError):
    """The jobs of this run could not be followed (squeue failing, or still queued at the
    time limit)."""


def run_token() -> str:
    """A job comment unique to this run: ``dmrs-bids-<uuid4 hex>``."""
    return f"dmrs-bids-{uuid.uuid4().hex}"


def tag_jobs(plugin: str, plugin_args: dict, token: str) -> dict:
    """``plugin_args`` with ``--comment=<token>`` appended to the submit-only plugin's
    scheduler arguments (unchanged for other plugins)."""
    key = SUBMIT_ONLY_PLUGINS.get(plugin)
    if key is None:
        return dict(plugin_args)
    tagged = dict(plugin_args)
    tagged[key] = f"{tagged.get(key, '')} --comment={token}".strip()
    return tagged


def queued_comments(squeue: str = "squeue", timeout_s: float = 60) -> list[str]:
    """Comments of this user's queued or running SLURM jobs."""
    try:
        run = subprocess.run([squeue, "--me", "--noheader", "--format=%k"],
                             capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterWaitError(f"cannot run {squeue} to follow the submitted jobs ({exc})") \
            from None
    if run.returncode != 0:
        raise ClusterWaitError(f"{squeue} failed ({run.returncode}): "
                               f"{' '.join(run.stderr.split())[:300]}")
    return [line.strip() for line in run.stdout.splitlines() if line.strip()]


def wait_for_jobs(token: str, timeout_s: float, logger, poll_s: float = POLL_S,
                  list_comments=queued_comments) -> float:
    """Block until no job tagged ``token`` is queued; a progress line whenever the count
    changes (and every minute). Returns the seconds waited."""
    start = time.monotonic()
    last_count, last_line = None, start
    while True:
        count = sum(1 for c in list_comments() if c == token)
        waited = time.monotonic() - start
        if count == 0:
            logger.info("cluster: all jobs of this run finished (waited %.0f s)", waited)
            return waited
        if waited > timeout_s:
            raise ClusterWaitError(f"{count} SLURM job(s) tagged {token} still queued after "
                                   f"{timeout_s:.0f} s; outputs of unfinished participants "
                                   "are missing (re-run with the same work directory later)")
        if count != last_count or time.monotonic() - last_line > 60:
            logger.info("cluster: %d job(s) of this run queued or running (%.0f s)", count,
                        waited)
            last_count, last_line = count, time.monotonic()
        time.sleep(poll_s)
