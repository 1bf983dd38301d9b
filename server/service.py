"""RunService: admits runs, starts them on the Runner, and forwards their events to hub + store.

Lives on the event loop. Each running job has one reader thread that blocks on
runner.events(handle) and hands every message to the loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from li2core.config import RunConfig

from .hub import Hub
from .jobs import JobQueue, Runner, WorkerMessage
from .jobs.pump import WorkerPump
from .settings import Settings
from .store import ACTIVE, TERMINAL, RunRecord, RunStore, StageRecord

log = logging.getLogger(__name__)


class RunNotFound(LookupError):
    pass


class RunConflict(Exception):
    """The run's state does not allow the request (HTTP 409)."""


@dataclass(eq=False)
class LiveRun:
    """In-memory state of a queued or running run; the store holds the rest."""

    record: RunRecord
    config: RunConfig
    handle: Any = None
    cancel_requested: bool = False
    failure: str | None = None  # set by the server itself (wall-time limit)
    worker_error: str | None = None
    timer: asyncio.TimerHandle | None = None
    initial: dict | None = None  # {"W", "V", "step"}: a fork starts from stored weights


@dataclass(eq=False)
class GuestJob:
    """A job that is not a run (a sweep) but holds a slot of the run queue like one."""

    start: Callable[[], None]  # called on the loop when the job gets its slot
    moved: Callable[[int], None]  # its queue position changed while it waits


def sweep_hint(view: dict) -> str | None:
    """Why an active sweep cell cannot be cancelled or deleted on its own, else None."""
    sweep = view.get("sweep")
    if not sweep or view["status"] not in ACTIVE:
        return None
    return (f"run {view['id']} is cell {sweep['index']} of sweep {sweep['id']}, whose runs "
            f"train together in one process: cancel the whole sweep with "
            f"POST /api/sweeps/{sweep['id']}/cancel")


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


def run_view(record: RunRecord, queue_position: int | None = None) -> dict:
    """The run resource of the HTTP API (docs/contracts.md)."""
    return {
        "id": record.id, "status": record.status, "queue_position": queue_position,
        "config": record.config, "created_at": iso(record.created_at),
        "started_at": iso(record.started_at), "finished_at": iso(record.finished_at),
        "max_steps_per_s": record.max_steps_per_s, "started": record.started,
        "summary": record.summary, "error": record.error, "last_seq": record.last_seq,
        "parent": (record.lineage or {}).get("parent"),  # fork: {run_id, step, changes}
        "imported_from": (record.lineage or {}).get("imported_from"),
        "sweep": (record.lineage or {}).get("sweep"),  # a sweep's cell: {id, index, point}
    }


class RunService(WorkerPump):
    _job, _lost_stream, _log = "run", "lost the worker's event stream", log

    def __init__(self, settings: Settings, runner: Runner, store: RunStore, hub: Hub) -> None:
        self.settings, self.runner, self.store, self.hub = settings, runner, store, hub
        self.jobs = JobQueue(settings.max_jobs, settings.quota, settings.max_queued)
        self.live: dict[str, LiveRun] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._starting: set[asyncio.Task] = set()
        # sweeps (server/jobs/sweep_service.py) queue here as guests and train their cells
        # themselves; guest_view gives the live view of such a cell (None: not one)
        self._guests: dict[str, GuestJob] = {}
        self.guest_view: Callable[[str], dict | None] = lambda run_id: None

    @property
    def wall_time_limit(self) -> float:
        return self.settings.wall_time_limit

    async def start(self) -> list[str]:
        """Bind to the running loop; runs a previous server left active become interrupted."""
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            self.store.mark_interrupted, "the server stopped while this run was active")

    # -- queries -------------------------------------------------------------------------------
    def view(self, run_id: str) -> dict | None:
        live = self.live.get(run_id)
        return run_view(live.record, self.jobs.position(run_id)) if live else \
            self.guest_view(run_id)

    async def get(self, run_id: str) -> dict:
        view = self.view(run_id)
        if view is None:
            record = await asyncio.to_thread(self.store.get_run, run_id)
            if record is None:
                raise RunNotFound(run_id)
            view = run_view(record)
        view["children"] = await asyncio.to_thread(self.store.children, run_id)
        return view

    async def list(self, limit: int, *, include_sweeps: bool = False,
                   sweep: str | None = None) -> list[dict]:
        """Newest first; a sweep's cells only with ``include_sweeps`` or ``sweep`` (its id)."""
        records = await asyncio.to_thread(self.store.list_runs, limit,
                                          include_sweeps=include_sweeps, sweep=sweep)
        views = [self.view(r.id) or run_view(r) for r in records]
        # forks are newer than their parent, so a listed parent's children are listed too
        kids: dict[str, list[str]] = {}
        for view in reversed(views):
            if view["parent"]:
                kids.setdefault(view["parent"]["run_id"], []).append(view["id"])
        return [{**view, "children": kids.get(view["id"], [])} for view in views]

    # -- commands ------------------------------------------------------------------------------
    async def submit(self, config: RunConfig, client: str,
                     max_steps_per_s: float | None = None, *, lineage: dict | None = None,
                     initial: dict | None = None) -> dict:
        """Admit (or raise AdmissionError), persist, queue, and start if a slot is free."""
        run_id = secrets.token_hex(6)
        self.jobs.admit(run_id, client)
        record = RunRecord(id=run_id, status="queued", config=config.model_dump(),
                           created_at=time.time(), client=client,
                           max_steps_per_s=max_steps_per_s, lineage=lineage)
        self.live[run_id] = LiveRun(record, config, initial=initial)
        self.hub.open(run_id)
        try:
            await asyncio.to_thread(self.store.create_run, record)
        except Exception:
            self.jobs.remove(run_id)
            self.live.pop(run_id, None)
            self.hub.close(run_id)
            raise
        self._schedule()
        return self.view(run_id) or await self.get(run_id)

    async def cancel(self, run_id: str) -> dict:
        live = self.live.get(run_id)
        if live is None:
            view = await self.get(run_id)  # raises RunNotFound
            raise RunConflict(sweep_hint(view) or f"run {run_id} is already {view['status']}")
        if live.record.status == "queued":
            self._finish(live, "cancelled", None)
        elif not live.cancel_requested:
            live.cancel_requested = True
            if live.handle is not None:  # else _start_worker cancels once it has one
                self.runner.cancel(live.handle)
        return await self.get(run_id)

    async def delete(self, run_id: str) -> None:
        if run_id in self.live:
            raise RunConflict(f"run {run_id} is {self.live[run_id].record.status}; "
                              "cancel it before deleting")
        guest = self.guest_view(run_id)
        if guest is not None and (hint := sweep_hint(guest)):
            raise RunConflict(hint)
        if not await asyncio.to_thread(self.store.delete_run, run_id):
            raise RunNotFound(run_id)

    # -- scheduling ----------------------------------------------------------------------------
    def queue_guest(self, job_id: str, job: GuestJob) -> None:
        """Queue a guest behind the jobs already waiting (its owner did the admission checks);
        ``job.start`` runs once it has a slot, perhaps before this returns."""
        self._guests[job_id] = job
        self.jobs.enqueue(job_id)
        self._schedule()

    def release_guest(self, job_id: str, *, schedule: bool = True) -> None:
        """A guest ended or was cancelled: free its slot or its place in the queue."""
        self._guests.pop(job_id, None)
        was_queued = job_id in self.jobs.queued
        self.jobs.remove(job_id)
        if was_queued:
            self._queue_moved()
        if schedule and not self._closing:
            self._schedule()

    def _schedule(self) -> None:
        started = False
        while (job_id := self.jobs.next_to_start()) is not None:
            if job_id in self._guests:
                self._guests[job_id].start()
            else:
                self._launch(self.live[job_id])
            started = True
        if started:  # everyone still waiting moved up
            self._queue_moved()

    def _queue_moved(self) -> None:
        for position, job_id in enumerate(self.jobs.queued, 1):
            if job_id in self._guests:
                self._guests[job_id].moved(position)
            else:
                self._publish(job_id, {"type": "status", "status": "queued",
                                       "queue_position": position})

    def _launch(self, live: LiveRun) -> None:
        rec = live.record
        rec.status, rec.started_at = "running", time.time()
        self.store.update_run(rec.id, status="running", started_at=rec.started_at)
        self._publish(rec.id, {"type": "status", "status": "running", "queue_position": None})
        live.timer = self._loop.call_later(self.wall_time_limit, self._time_up, rec.id)
        task = asyncio.create_task(self._start_worker(live))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_worker(self, live: LiveRun) -> None:
        # off the loop: the first forkserver start waits for torch to import (seconds)
        rec = live.record
        try:
            fork = {} if live.initial is None else {"initial": live.initial}
            handle = await asyncio.to_thread(self.runner.start, live.config, run_id=rec.id,
                                             max_steps_per_s=rec.max_steps_per_s, **fork)
        except Exception as exc:  # noqa: BLE001 - e.g. out of processes: the run fails, not us
            log.exception("could not start run %s", rec.id)
            if self.live.get(rec.id) is live:
                self._finish(live, "failed", f"could not start a worker: {exc}")
            return
        live.handle = handle
        if live.cancel_requested or live.failure or self._closing:
            self.runner.cancel(handle)  # asked to stop while the process was starting
        self._start_pump(rec.id, handle)

    # -- events from workers -------------------------------------------------------------------
    def _publish(self, run_id: str, message: dict) -> int:
        channel = self.hub.get(run_id)
        return channel.publish(message) if channel else 0

    def _on_message(self, run_id: str, message: WorkerMessage) -> None:
        live = self.live.get(run_id)
        if live is None or self._closing:
            return
        kind, data = message
        channel = self.hub.get(run_id)
        if kind == "metrics":
            self.store.add_metrics(run_id, channel.publish({"type": "metrics", "rows": data}),
                                   data)
        elif kind == "snapshot":
            step, arrays = data
            self.store.add_snapshot(run_id, channel.publish_snapshot(step, arrays), step, arrays)
        elif kind == "stage":
            seq = channel.publish({"type": "stage", **data})
            self.store.add_stage(run_id, StageRecord(seq, data["step"], data["stage"],
                                                     data.get("evidence", {})))
        elif kind == "started":
            live.record.started = data
            self.store.update_run(run_id, started=data)
            channel.publish({"type": "status", "status": "running", "queue_position": None,
                             "started": data})
        elif kind == "finished":
            live.record.summary = data
        elif kind == "error":
            live.worker_error = data
        elif kind == "exit":
            self._on_exit(live, data)
        else:
            log.warning("run %s: ignoring unknown worker message %r", run_id, kind)

    def _on_exit(self, live: LiveRun, exit_info: dict) -> None:
        if live.failure:
            status, error = "failed", live.failure
        elif live.cancel_requested:
            status, error = "cancelled", None
        elif live.worker_error:
            status, error = "failed", live.worker_error
        elif live.record.summary is not None and exit_info.get("exitcode") == 0:
            status, error = "completed", None
        else:
            status = "failed"
            error = exit_info.get("reason") or "worker process ended without finishing the run"
        self._finish(live, status, error)

    def _finish(self, live: LiveRun, status: str, error: str | None) -> None:
        """Persist the terminal state, tell viewers, close the channel and free the slot."""
        assert status in TERMINAL
        rec = live.record
        if live.timer is not None:
            live.timer.cancel()
        rec.status, rec.error, rec.finished_at = status, error, time.time()
        channel = self.hub.get(rec.id)
        if channel is not None:
            channel.publish({"type": "status", "status": status, "queue_position": None,
                             "error": error})
            rec.last_seq = channel.publish({"type": "finished", "status": status,
                                            "summary": rec.summary, "error": error})
        self.store.update_run(rec.id, status=status, error=error, finished_at=rec.finished_at,
                              summary=rec.summary, last_seq=rec.last_seq)
        self.hub.close(rec.id)
        # the store has the terminal state queued ahead of any later read, so forget it now
        del self.live[rec.id]
        was_queued = rec.id in self.jobs.queued
        self.jobs.remove(rec.id)
        if was_queued:
            self._queue_moved()
        if not self._closing:
            self._schedule()

    async def shutdown(self) -> None:
        """Stop every worker; active runs end as interrupted."""
        self._closing = True
        for live in list(self.live.values()):
            self._finish(live, "interrupted", "the server shut down while this run was active")
        await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.to_thread(self.runner.shutdown)
        await asyncio.to_thread(self.store.flush)
