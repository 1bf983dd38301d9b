"""RunService: the runs resource (submit, view, list, cancel, delete) on the JobLifecycle,
which runs, streams and ends a run exactly as it does a sweep (server/jobs/lifecycle.py)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import datetime, timezone

from li2core.config import RunConfig

from .hub import Hub
from .jobs import Job, JobLifecycle
from .jobs.lifecycle import JobConflict, JobNotFound
from .jobs.stream import RunStream
from .store import ACTIVE, RunRecord, RunStore

log = logging.getLogger(__name__)


class RunNotFound(JobNotFound):
    kind = "run"


class RunConflict(JobConflict):
    """The run's state does not allow the request (HTTP 409)."""


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


class RunJob(Job):
    """A run: a job with one cell."""

    kind = "run"


class RunService:
    def __init__(self, lifecycle: JobLifecycle, store: RunStore, hub: Hub) -> None:
        self.lifecycle, self.store, self.hub = lifecycle, store, hub
        self.settings, self.runner = lifecycle.settings, lifecycle.runner
        # every live run, a run job's or a sweep's cell: run id → (its job, its stream)
        self.live: dict[str, tuple[Job, RunStream]] = {}
        lifecycle.ended.append(self.untrack)

    async def start(self) -> list[str]:
        """Bind to the running loop; runs a previous server left active become interrupted."""
        self.lifecycle.bind()
        return await asyncio.to_thread(
            self.store.mark_interrupted, "the server stopped while this run was active")

    def track(self, job: Job) -> None:
        """Make the job's runs visible to view() until they end (sweeps call this too)."""
        for stream in job.streams:
            self.live[stream.record.id] = (job, stream)

    def untrack(self, job: Job) -> None:
        for stream in job.streams:
            self.live.pop(stream.record.id, None)

    # -- queries -------------------------------------------------------------------------------
    def view(self, run_id: str) -> dict | None:
        """The live view of a queued or running run (a sweep's cell waits in its sweep's place)."""
        if (entry := self.live.get(run_id)) is None:
            return None
        job, stream = entry
        position = self.lifecycle.position(job.id) if stream.record.status == "queued" else None
        return run_view(stream.record, position)

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
        self.lifecycle.admit(run_id, client, RunJob.kind)
        record = RunRecord(id=run_id, status="queued", config=config.model_dump(),
                           created_at=time.time(), client=client,
                           max_steps_per_s=max_steps_per_s, lineage=lineage)
        try:
            await asyncio.to_thread(self.store.create_run, record)
        except Exception:
            self.lifecycle.withdraw(run_id)
            raise
        work = {"kind": "run", "config": record.config, "max_steps_per_s": max_steps_per_s,
                "initial": initial}
        job = RunJob(run_id, client, work, [RunStream(record, self.hub, self.store)])
        self.track(job)
        self.lifecycle.submit(job)
        return self.view(run_id) or await self.get(run_id)

    async def cancel(self, run_id: str) -> dict:
        entry = self.live.get(run_id)
        if entry is None or entry[0].kind != RunJob.kind:
            view = await self.get(run_id)  # raises RunNotFound
            raise RunConflict(sweep_hint(view) or f"run {run_id} is already {view['status']}")
        self.lifecycle.cancel(entry[0])
        return await self.get(run_id)

    async def delete(self, run_id: str) -> None:
        if (view := self.view(run_id)) is not None:
            raise RunConflict(sweep_hint(view) or f"run {run_id} is {view['status']}; "
                              "cancel it before deleting")
        if not await asyncio.to_thread(self.store.delete_run, run_id):
            raise RunNotFound(run_id)

    async def shutdown(self) -> None:
        """Stop every worker; active runs and sweeps end as interrupted."""
        await self.lifecycle.shutdown("the server shut down while this {kind} was active")
