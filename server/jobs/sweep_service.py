"""SweepService: admits sweeps, runs them on a SweepRunner, stores each grid point as an
ordinary run (viewable at /api/runs/{id}) and streams the sweep's progress to subscribers.

A sweep is one worker process, so it waits for a slot of the run queue like a run (a guest of
the RunService); each cell streams into the RunService's hub, so /ws/runs/{cell} is live.
Lives on the event loop; one reader thread per running sweep hands messages to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from li2core.phase_boundary import fit_constant, measured_boundaries
from li2core.sweep import OUTCOMES, SweepConfig
from li2core.theory import P_CRIT_CONSTANT, p_crit

from ..service import GuestJob, RunService, iso, run_view
from ..store import RunRecord
from .pump import WorkerPump
from .runner import WorkerMessage
from .scheduler import QueueFull, QuotaExceeded
from .sweep_store import SWEEP_ACTIVE, SweepRecord, SweepStore
from .sweep_worker import SweepRunner

log = logging.getLogger(__name__)

MAX_QUEUED = 16
ACTIVE_PER_CLIENT = 1


class SweepNotFound(LookupError):
    pass


class SweepConflict(Exception):
    """The sweep's state does not allow the request (HTTP 409)."""


@dataclass(eq=False)
class LiveSweep:
    record: SweepRecord
    sweep: SweepConfig
    runs: list[RunRecord]  # the cells as runs, kept up to date for the live run views
    handle: Any = None
    cancel_requested: bool = False
    failure: str | None = None
    worker_error: str | None = None
    timer: asyncio.TimerHandle | None = None
    subscribers: set[asyncio.Queue] = field(default_factory=set)


def boundary_report(sweep: SweepConfig, cells: list[dict]) -> dict:
    """Measured flip per group and the fitted c (li2core.phase_boundary), from finished cells."""
    if "train_fraction" not in sweep.axis_names:
        return {"boundaries": [], "fit_c": None, "theory_c": P_CRIT_CONSTANT}
    configs = sweep.configs()
    done = [SimpleNamespace(config=configs[c["index"]], outcome=c["outcome"])
            for c in cells if c["status"] == "completed" and c["outcome"]]
    bounds = measured_boundaries(done)
    return {"boundaries": [b.as_dict() for b in bounds], "fit_c": fit_constant(bounds),
            "theory_c": P_CRIT_CONSTANT}


def sweep_view(rec: SweepRecord, queue_position: int | None = None,
               sweep: SweepConfig | None = None) -> dict:
    """The sweep resource of the HTTP API (docs/sweeps.md)."""
    result = rec.result
    if result is None and sweep is not None:  # still running: the boundary so far
        result = boundary_report(sweep, rec.cells)
    axes = list(rec.spec.get("zipped", {})) + list(rec.spec.get("grid", {}))
    return {
        "id": rec.id, "status": rec.status, "name": rec.name, "spec": rec.spec, "axes": axes,
        "queue_position": queue_position, "created_at": iso(rec.created_at),
        "started_at": iso(rec.started_at), "finished_at": iso(rec.finished_at),
        "run_count": len(rec.cells), "steps_total": rec.steps_total,
        "steps_done": rec.steps_done, "cells": rec.cells, "error": rec.error,
        "counts": {o: sum(c["outcome"] == o for c in rec.cells) for o in OUTCOMES},
        **(result or {}),
    }


class SweepService(WorkerPump):
    _job, _lost_stream, _log = "sweep", "lost the sweep's event stream", log

    def __init__(self, service: RunService, sweeps: SweepStore, runner: SweepRunner,
                 wall_time_limit: float, quota: int = ACTIVE_PER_CLIENT) -> None:
        self.service, self.runs, self.hub = service, service.store, service.hub
        self.store, self.runner = sweeps, runner
        self.wall_time_limit, self.quota = wall_time_limit, quota
        self.live: dict[str, LiveSweep] = {}
        self.cells: dict[str, tuple[LiveSweep, int]] = {}  # run id → its active sweep, index
        service.guest_view = self.cell_view
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._starting: set[asyncio.Task] = set()

    async def start(self) -> list[str]:
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            self.store.mark_interrupted, "the server stopped while this sweep was active")

    # -- queries -------------------------------------------------------------------------------
    def _position(self, sweep_id: str) -> int | None:
        return self.service.jobs.position(sweep_id)

    def cell_view(self, run_id: str) -> dict | None:
        """The run resource of a cell of an active sweep (it waits in its sweep's place)."""
        if (entry := self.cells.get(run_id)) is None:
            return None
        live, index = entry
        record = live.runs[index]
        return run_view(record, self._position(live.record.id)
                        if record.status == "queued" else None)

    async def get(self, sweep_id: str) -> dict:
        live = self.live.get(sweep_id)
        if live is not None:
            return sweep_view(live.record, self._position(sweep_id), live.sweep)
        rec = await asyncio.to_thread(self.store.get, sweep_id)
        if rec is None:
            raise SweepNotFound(sweep_id)
        return sweep_view(rec)

    async def list(self, limit: int) -> list[dict]:
        recs = await asyncio.to_thread(self.store.list, limit)
        out = []
        for rec in recs:
            live = self.live.get(rec.id)
            view = (sweep_view(live.record, self._position(rec.id), live.sweep) if live
                    else sweep_view(rec))
            out.append({k: v for k, v in view.items() if k != "cells"})
        return out

    # -- commands ------------------------------------------------------------------------------
    async def submit(self, sweep: SweepConfig, client: str) -> dict:
        """Persist the sweep and one queued run per grid point, then queue it."""
        mine = sum(1 for s in self.live.values() if s.record.client == client)
        if mine >= self.quota:
            raise QuotaExceeded(f"quota: this client already has {mine} active sweep(s) (the "
                                "limit); wait for it to finish or cancel it")
        waiting = sum(1 for s in self.live.values() if s.record.status == "queued")
        if waiting >= MAX_QUEUED:
            raise QueueFull(f"queue full: {waiting} sweeps are waiting; try later")
        sweep_id = secrets.token_hex(6)
        now = time.time()
        configs = sweep.configs()
        cells, records = [], []
        for i, (point, config) in enumerate(zip(sweep.points(), configs, strict=True)):
            run_id = secrets.token_hex(6)
            records.append(RunRecord(
                id=run_id, status="queued", config=config.model_dump(), created_at=now,
                client=client, lineage={"sweep": {"id": sweep_id, "index": i, "point": point}}))
            cells.append({"index": i, "run_id": run_id, "point": point, "status": "queued",
                          "outcome": None, "train_acc": None, "test_acc": None,
                          "first_test_acc_0.9": None, "steps": 0,
                          "p_crit": p_crit(config.build_group())})
        rec = SweepRecord(id=sweep_id, status="queued", name=sweep.name,
                          spec=sweep.model_dump(), created_at=now, client=client,
                          steps_total=sum(c.steps for c in configs), cells=cells)

        def persist() -> None:
            for r in records:
                self.runs.create_run(r)
            self.store.put(rec)

        await asyncio.to_thread(persist)
        live = self.live[sweep_id] = LiveSweep(rec, sweep, records)
        for index, record in enumerate(records):
            self.cells[record.id] = (live, index)
            self.hub.open(record.id)
        self.service.queue_guest(sweep_id, GuestJob(start=lambda: self._start(live),
                                                    moved=lambda pos: self._moved(live, pos)))
        return await self.get(sweep_id)

    async def cancel(self, sweep_id: str) -> dict:
        """Stop every run of the sweep; finished runs keep their results."""
        live = self.live.get(sweep_id)
        if live is None:
            view = await self.get(sweep_id)
            raise SweepConflict(f"sweep {sweep_id} is already {view['status']}")
        if live.record.status == "queued":
            self._finish(live, "cancelled", None)
        elif not live.cancel_requested:
            live.cancel_requested = True
            if live.handle is not None:
                self.runner.cancel(live.handle)
        return await self.get(sweep_id)

    def subscribe(self, sweep_id: str) -> asyncio.Queue | None:
        """A queue of progress messages, None when the sweep is not active."""
        live = self.live.get(sweep_id)
        if live is None:
            return None
        q: asyncio.Queue = asyncio.Queue()
        live.subscribers.add(q)
        return q

    def unsubscribe(self, sweep_id: str, q: asyncio.Queue) -> None:
        live = self.live.get(sweep_id)
        if live is not None:
            live.subscribers.discard(q)

    # -- scheduling (the RunService's job queue calls these) ------------------------------------
    def _start(self, live: LiveSweep) -> None:
        """The sweep got a job slot: start its worker."""
        rec = live.record
        rec.status, rec.started_at = "running", time.time()
        self.store.put(rec)
        self._publish(live, {"type": "status", "status": "running", "queue_position": None})
        live.timer = self._loop.call_later(self.wall_time_limit, self._time_up, rec.id)
        task = asyncio.ensure_future(self._start_worker(live))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    def _moved(self, live: LiveSweep, position: int) -> None:
        status = {"type": "status", "status": "queued", "queue_position": position}
        self._publish(live, status)
        for record in live.runs:
            if (channel := self.hub.get(record.id)) is not None:
                channel.publish(status)

    async def _start_worker(self, live: LiveSweep) -> None:
        rec = live.record
        try:
            handle = await asyncio.to_thread(self.runner.start, rec.spec, sweep_id=rec.id)
        except Exception as exc:  # noqa: BLE001 - the sweep fails, not the server
            log.exception("could not start sweep %s", rec.id)
            if self.live.get(rec.id) is live:
                self._finish(live, "failed", f"could not start a worker: {exc}")
            return
        live.handle = handle
        if live.cancel_requested or live.failure or self._closing:
            self.runner.cancel(handle)
        self._start_pump(rec.id, handle)

    # -- events from the worker ----------------------------------------------------------------
    def _publish(self, live: LiveSweep, message: dict) -> None:
        for q in live.subscribers:
            q.put_nowait({**message, "sweep_id": live.record.id})

    def _update_cell(self, live: LiveSweep, index: int, **fields) -> None:
        record = live.runs[index]
        for name, value in fields.items():
            setattr(record, name, value)
        self.runs.update_run(record.id, **fields)

    def _end_cell(self, live: LiveSweep, index: int, status: str, error: str | None) -> None:
        """Persist a cell's terminal state, tell its viewers and close its channel."""
        record = live.runs[index]
        if (channel := self.hub.get(record.id)) is not None:
            channel.publish({"type": "status", "status": status, "queue_position": None,
                             "error": error})
            record.last_seq = channel.publish({"type": "finished", "status": status,
                                               "summary": record.summary, "error": error})
        self._update_cell(live, index, status=status, error=error, finished_at=time.time(),
                          summary=record.summary, last_seq=record.last_seq)
        self.hub.close(record.id)

    def _on_message(self, sweep_id: str, message: WorkerMessage) -> None:
        live = self.live.get(sweep_id)
        if live is None or self._closing:
            return
        kind, data = message
        rec = live.record
        # a cell's messages go to its run channel (live viewers), then to the store with the
        # channel's seq, exactly as RunService does for a run
        if kind == "metrics":
            for index, rows in data.items():
                run_id = rec.cells[index]["run_id"]
                if (channel := self.hub.get(run_id)) is not None:
                    seq = channel.publish({"type": "metrics", "rows": rows})
                    self.runs.add_metrics(run_id, seq, rows)
        elif kind == "snapshot":
            index, step, arrays = data
            run_id = rec.cells[index]["run_id"]
            if (channel := self.hub.get(run_id)) is not None:
                self.runs.add_snapshot(run_id, channel.publish_snapshot(step, arrays), step,
                                       arrays)
        elif kind == "cell_started":
            index, started = data
            cell = rec.cells[index]
            cell["status"] = "running"
            self._update_cell(live, index, status="running", started_at=time.time(),
                              started=started)
            if (channel := self.hub.get(cell["run_id"])) is not None:
                channel.publish({"type": "status", "status": "running", "queue_position": None,
                                 "started": started})
            self._publish(live, {"type": "cell", "cell": cell})
        elif kind == "cell_finished":
            self._cell_finished(live, *data)
        elif kind == "progress":
            rec.steps_done = data
            self._publish(live, {"type": "progress", "steps_done": data,
                                 "steps_total": rec.steps_total})
        elif kind == "error":
            live.worker_error = data
        elif kind == "exit":
            self._on_exit(live, data)

    def _cell_finished(self, live: LiveSweep, index: int, summary: dict) -> None:
        cell = live.record.cells[index]
        final, stopped = summary.get("final") or {}, bool(summary.get("stopped"))
        cell.update(status="cancelled" if stopped else "completed",
                    outcome=None if stopped else summary.get("outcome"),
                    train_acc=final.get("train_acc"), test_acc=final.get("test_acc"),
                    steps=summary.get("steps_done", 0),
                    **{"first_test_acc_0.9": (summary.get("first_step") or {}).get(
                        "test_acc>=0.9")})
        live.runs[index].summary = summary
        self._end_cell(live, index, cell["status"], None)
        self.store.put(live.record)
        self._publish(live, {"type": "cell", "cell": cell})

    def _on_exit(self, live: LiveSweep, info: dict) -> None:
        if live.failure:
            status, error = "failed", live.failure
        elif live.cancel_requested:
            status, error = "cancelled", None
        elif live.worker_error:
            status, error = "failed", live.worker_error
        elif info.get("exitcode") == 0:
            status, error = "completed", None
        else:
            status, error = "failed", info.get("reason") or "the sweep worker ended early"
        self._finish(live, status, error)

    def _finish(self, live: LiveSweep, status: str, error: str | None) -> None:
        """Terminal state for the sweep and every cell that had not ended; tell subscribers."""
        rec = live.record
        if live.timer is not None:
            live.timer.cancel()
        now = time.time()
        cell_status = "cancelled" if status in ("cancelled", "completed") else status
        for cell in rec.cells:
            if cell["status"] in SWEEP_ACTIVE:
                cell["status"] = cell_status
                self._end_cell(live, cell["index"], cell_status, error)
        rec.status, rec.error, rec.finished_at = status, error, now
        rec.result = boundary_report(live.sweep, rec.cells)
        self.store.put(rec)
        view = sweep_view(rec)
        self._publish(live, {"type": "finished", "sweep": view})
        for q in live.subscribers:
            q.put_nowait(None)  # end of stream
        del self.live[rec.id]
        for record in live.runs:
            self.cells.pop(record.id, None)
        # free the job slot (or the place in the queue); at shutdown start nothing new
        self.service.release_guest(rec.id, schedule=not self._closing)

    async def shutdown(self) -> None:
        self._closing = True
        for live in list(self.live.values()):
            if live.handle is not None:
                self.runner.cancel(live.handle)
            self._finish(live, "interrupted", "the server shut down while this sweep was active")
        await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.to_thread(self.runner.shutdown)
        await asyncio.to_thread(self.store.close)
