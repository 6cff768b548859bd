"""nipype's MultiProc scheduler, guarded against the ways it waits for ever.

Plain MultiProc records a task's result from a callback on the worker's future; when that
future raises instead of returning (the worker was killed, e.g. by the out-of-memory killer,
which breaks the whole process pool; or the result could not be passed back, e.g. a result file
missing from a full or altered work directory), the callback fails, the result never arrives
and the main process polls for it for ever. Here such a task fails its node with a message
saying what happened (so only that participant fails, named in the run summary), a broken pool
is replaced so the other participants carry on, and a scheduler that has nothing running and
nothing it can start for ``stall_timeout_s`` seconds stops the run with a clear error.
"""

from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from time import monotonic

import numpy as np
from nipype.pipeline.plugins.multiproc import MultiProcPlugin, process_initializer, run_node

from workflows.participant import PRIORITY_ATTRIBUTE

STALL_TIMEOUT_S = 60.0
"""Seconds with no step running and none able to start before the run is stopped."""
WAKE_TIMEOUT_S = 0.5
"""Longest wait for a running step to finish before the scheduler looks again anyway."""


class SchedulerStalled(RuntimeError):
    """The scheduler can make no further progress (nothing running, nothing startable)."""


def task_failure_line(node_name: str, exc: BaseException) -> str:
    """The error line recorded for a task whose worker returned no result."""
    if isinstance(exc, BrokenProcessPool):
        return (f"WorkerDiedError: the worker process running {node_name} ended abruptly "
                "(killed by the system, most often for lack of memory: lower --nprocs or "
                "--mem-gb, or give the job more memory)")
    return (f"ResultUnreadableError: the result of {node_name} could not be passed back from "
            f"its worker ({type(exc).__name__}: {exc}); is the work directory full, or was it "
            "changed during the run?")


class GuardedMultiProcPlugin(MultiProcPlugin):
    """MultiProc whose dead workers and lost results fail their node instead of hanging.

    Extra plugin argument: ``stall_timeout_s`` (default :data:`STALL_TIMEOUT_S`).

    While every step that could start has started, the scheduler sleeps until a running one
    finishes (woken by its result) instead of polling every ``poll_sleep_duration``: the
    polling loop cost the main process ~2 s of CPU per participant, taken from the workers
    on a machine with few cores.
    """

    def __init__(self, plugin_args=None):
        args = dict(plugin_args or {})
        self.stall_timeout_s = float(args.pop("stall_timeout_s", STALL_TIMEOUT_S))
        super().__init__(plugin_args=args)
        self._task_names: dict[int, str] = {}
        self._idle_since: float | None = None
        self._finished = threading.Event()
        self.workers_lost = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing as mp

        return ProcessPoolExecutor(
            max_workers=self.processors, initializer=process_initializer,
            initargs=(self._cwd,), mp_context=mp.get_context(self.plugin_args.get("mp_context")))

    def _renew_pool(self) -> None:
        """Replace a broken pool (its futures have all failed already)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def _submit_job(self, node, updatehash=False):
        if getattr(self.pool, "_broken", False):
            self._renew_pool()
        self._taskid += 1
        taskid = self._taskid
        if getattr(node.interface, "terminal_output", "") == "stream":
            node.interface.terminal_output = "allatonce"
        try:
            future = self.pool.submit(run_node, node, updatehash, taskid)
        except BrokenProcessPool:
            self._renew_pool()
            future = self.pool.submit(run_node, node, updatehash, taskid)
        self._task_obj[taskid] = future
        self._task_names[taskid] = node.fullname
        future.add_done_callback(partial(self._task_done, taskid))
        return taskid

    def _task_done(self, taskid: int, future) -> None:
        """Record the task's result, or an error result when the worker gave none."""
        try:
            result = future.result()
        except BaseException as exc:  # noqa: BLE001 - any failure becomes the node's error
            if isinstance(exc, BrokenProcessPool):
                self.workers_lost += 1
            result = {"result": None, "taskid": taskid, "traceback": [
                task_failure_line(self._task_names.get(taskid, f"task {taskid}"), exc)]}
        self._taskresult[taskid] = result
        self._finished.set()

    def _clear_task(self, taskid):
        super()._clear_task(taskid)
        self._task_names.pop(taskid, None)

    def _send_procs_to_workers(self, updatehash=False, graph=None):
        super()._send_procs_to_workers(updatehash=updatehash, graph=graph)
        if self.pending_tasks and not self._can_start_more():
            self._finished.wait(WAKE_TIMEOUT_S)  # set when a result comes back
            self._finished.clear()  # results that came before are read in the next pass
        if self.pending_tasks or np.all(self.proc_done):
            self._idle_since = None
            return
        now = monotonic()
        self._idle_since = self._idle_since or now
        if now - self._idle_since > self.stall_timeout_s:
            waiting = [self.procs[j].fullname for j in np.flatnonzero(~self.proc_done)]
            raise SchedulerStalled(
                f"processing stalled: no step running and none can start for "
                f"{self.stall_timeout_s:g} s ({len(waiting)} waiting, e.g. {waiting[0]}); "
                "check --mem-gb/--nprocs and the free space of the work directory")

    def _sort_jobs(self, jobids, scheduler="tsort"):
        """Ready steps with a higher ``dmrs_priority`` attribute first (the diffusion parts:
        the report waits for them, not for the figures), else nipype's order."""
        jobids = super()._sort_jobs(jobids, scheduler=scheduler)
        return sorted(jobids, key=lambda j: -getattr(self.procs[j], PRIORITY_ATTRIBUTE, 0))

    def _can_start_more(self) -> bool:
        """A step is ready (its inputs done) and a processor is free for it."""
        ready = np.flatnonzero(~self.proc_done & (self.depidx.sum(axis=0) == 0).__array__())
        if ready.size == 0:
            return False
        _, free_processors, _ = self._check_resources(self.pending_tasks)
        return free_processors > 0

    def run(self, graph, config, updatehash=False):
        try:
            return super().run(graph, config, updatehash=updatehash)
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
