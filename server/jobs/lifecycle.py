"""JobLifecycle: the one life of every job, a run or a sweep: admission, queue, a slot, a
worker on the Runner, its messages routed to the job's RunStreams, a wall-time limit, cancel,
and one terminal status. RunService and SweepService only add what their resource needs.

Lives on the event loop. Each started job has one reader thread that blocks on
runner.events(handle) and hands every message to the loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..settings import Settings
from ..store import TERMINAL
from .runner import Runner, WorkerMessage
from .scheduler import JobQueue, Limits
from .stream import RunStream

log = logging.getLogger(__name__)


class JobNotFound(LookupError):
    """No such run or sweep (HTTP 404, by the app's exception handler)."""

    kind = "job"

    def __str__(self) -> str:
        return f"no {self.kind} {self.args[0]!r}"


class JobConflict(Exception):
    """The job's state does not allow the request (HTTP 409, by the app's handler)."""


class Job:
    """One unit of the queue. ``streams`` holds its runs (one for a run, one per cell for a
    sweep); subclasses add what their resource needs through the ``on_*`` hooks."""

    kind = "job"

    def __init__(self, job_id: str, client: str, work: dict, streams: list[RunStream]) -> None:
        self.id, self.client, self.work, self.streams = job_id, client, work, streams
        self.status = "queued"
        self.handle: Any = None
        self.cancel_requested = False
        self.failure: str | None = None  # set by the server itself (wall-time limit)
        self.worker_error: str | None = None
        self.timer: asyncio.TimerHandle | None = None

    def complete(self) -> bool:
        """Every run reached its own end (a summary): the job may end ``completed``."""
        return all(s.record.summary is not None for s in self.streams)

    def on_running(self) -> None:
        for stream in self.streams:
            stream.running()

    def on_moved(self, position: int) -> None:
        for stream in self.streams:
            stream.queued(position)

    def on_started(self, cell: int, started: dict) -> None:
        """Hook: a run of the job began (after its stream published it)."""

    def on_finished(self, cell: int, summary: dict) -> None:
        """Hook: a run of the job reached its summary."""

    def on_metrics(self, cell: int, rows: list[dict]) -> None:
        """Hook: a run of the job published metrics rows (after its stream stored them)."""

    def on_progress(self, steps_done: int) -> None:
        """Hook: run-steps done so far (sweeps)."""

    def on_end(self, status: str, error: str | None) -> None:
        """Terminal state of the job: end every run not ended yet."""
        for stream in self.streams:
            if not stream.ended:
                stream.end(status, error)


class JobLifecycle:
    """Runs jobs on ``runner`` with at most ``max_jobs`` at once and the per-kind ``limits``."""

    def __init__(self, settings: Settings, runner: Runner, limits: dict[str, Limits]) -> None:
        self.settings, self.runner = settings, runner
        self.queue = JobQueue(settings.max_jobs or runner.cpus(), limits)
        self.jobs: dict[str, Job] = {}  # queued or running
        self.ended: list[Callable[[Job], None]] = []  # told of every job that ended
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._starting: set[asyncio.Task] = set()

    @property
    def max_jobs(self) -> int:
        return self.queue.max_jobs

    def bind(self) -> None:
        self._loop = asyncio.get_running_loop()

    def position(self, job_id: str) -> int | None:
        return self.queue.position(job_id)

    # -- commands ------------------------------------------------------------------------------
    def admit(self, job_id: str, client: str, kind: str) -> None:
        """Raise AdmissionError (quota, queue full) or reserve a place for ``job_id``."""
        self.queue.admit(job_id, client, kind)

    def submit(self, job: Job) -> None:
        """Queue an admitted job; it starts now if a slot is free."""
        self.jobs[job.id] = job
        self.queue.enqueue(job.id)
        self._schedule()

    def withdraw(self, job_id: str) -> None:
        """Forget an admitted job that could not be persisted."""
        self.jobs.pop(job_id, None)
        self.queue.remove(job_id)

    def cancel(self, job: Job) -> None:
        if job.status == "queued":
            self.finish(job, "cancelled", None)
        elif not job.cancel_requested:
            job.cancel_requested = True
            if job.handle is not None:  # else _start_worker cancels once it has one
                self.runner.cancel(job.handle)

    # -- scheduling ----------------------------------------------------------------------------
    def _schedule(self) -> None:
        started = False
        while (job_id := self.queue.next_to_start()) is not None:
            self._launch(self.jobs[job_id])
            started = True
        if started:  # everyone still waiting moved up
            self._queue_moved()

    def _queue_moved(self) -> None:
        for position, job_id in enumerate(self.queue.queued, 1):
            self.jobs[job_id].on_moved(position)

    def _launch(self, job: Job) -> None:
        job.status = "running"
        job.on_running()
        job.timer = self._loop.call_later(self.settings.wall_time_limit, self._time_up, job.id)
        task = asyncio.ensure_future(self._start_worker(job))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_worker(self, job: Job) -> None:
        # off the loop: the first forkserver start waits for torch to import (seconds)
        try:
            handle = await asyncio.to_thread(self.runner.start, job.work, job_id=job.id)
        except Exception as exc:  # noqa: BLE001 - e.g. out of processes: the job fails, not us
            log.exception("could not start %s %s", job.kind, job.id)
            if self.jobs.get(job.id) is job:
                self.finish(job, "failed", f"could not start a worker: {exc}")
            return
        job.handle = handle
        if job.cancel_requested or job.failure or self._closing:
            self.runner.cancel(handle)  # asked to stop while the worker was starting
        threading.Thread(target=self._pump, args=(job.id, handle), daemon=True,
                         name=f"{job.kind}-{job.id}-events").start()

    def _pump(self, job_id: str, handle: Any) -> None:
        """Reader thread: block on the runner's events and hand each one to the loop."""
        try:
            for message in self.runner.events(handle):
                self._to_loop(job_id, message)
        except Exception as exc:  # noqa: BLE001 - a broken stream fails this job only
            log.exception("event stream of job %s broke", job_id)
            self._to_loop(job_id, WorkerMessage("exit", {
                "exitcode": None, "reason": f"lost the worker's event stream: {exc}"}))

    def _to_loop(self, job_id: str, message: WorkerMessage) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_message, job_id, message)
        except RuntimeError:
            pass  # loop closed at shutdown; keep draining so the runner can reap the worker

    def _time_up(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.failure is None:
            job.failure = f"wall-time limit of {self.settings.wall_time_limit:g} s exceeded"
            if job.handle is not None:
                self.runner.cancel(job.handle)

    # -- messages from workers -----------------------------------------------------------------
    def _on_message(self, job_id: str, message: WorkerMessage) -> None:
        job = self.jobs.get(job_id)
        if job is None or self._closing:
            return
        kind, data = message
        if kind == "metrics":
            for cell, rows in data.items():
                job.streams[cell].metrics(rows)
                job.on_metrics(cell, rows)
        elif kind == "snapshot":
            cell, step, arrays = data
            job.streams[cell].snapshot(step, arrays)
        elif kind == "stage":
            cell, stage = data
            job.streams[cell].stage(stage)
        elif kind == "started":
            cell, started = data
            job.streams[cell].started(started)
            job.on_started(cell, started)
        elif kind == "finished":
            cell, summary = data
            job.streams[cell].finished(summary)
            job.on_finished(cell, summary)
        elif kind == "progress":
            job.on_progress(data)
        elif kind == "error":
            job.worker_error = data
        elif kind == "exit":
            self._on_exit(job, data)
        else:
            log.warning("%s %s: ignoring unknown worker message %r", job.kind, job_id, kind)

    def _on_exit(self, job: Job, exit_info: dict) -> None:
        if job.failure:
            status, error = "failed", job.failure
        elif job.cancel_requested:
            status, error = "cancelled", None
        elif job.worker_error:
            status, error = "failed", job.worker_error
        elif job.complete() and not exit_info.get("exitcode"):
            # every run sent its summary: the work is done and stored, even when the worker
            # was still tearing down (exitcode None) as the stream ended
            status, error = "completed", None
        else:
            status = "failed"
            error = exit_info.get("reason") or "the worker ended without finishing the job"
        self.finish(job, status, error)

    def finish(self, job: Job, status: str, error: str | None) -> None:
        """Persist the terminal state (the job's hook), then free its slot or queue place."""
        assert status in TERMINAL
        if job.timer is not None:
            job.timer.cancel()
        job.status = status
        job.on_end(status, error)
        for listener in self.ended:
            listener(job)
        # the store has the terminal state queued ahead of any later read, so forget it now
        del self.jobs[job.id]
        was_queued = job.id in self.queue.queued
        self.queue.remove(job.id)
        if was_queued:
            self._queue_moved()
        if not self._closing:
            self._schedule()

    async def shutdown(self, reason: str) -> None:
        """Stop every worker; active jobs end as interrupted."""
        self._closing = True
        for job in list(self.jobs.values()):
            if job.handle is not None:
                self.runner.cancel(job.handle)
            self.finish(job, "interrupted", reason.format(kind=job.kind))
        await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.to_thread(self.runner.shutdown)
