"""SweepService: the sweeps resource. A sweep is a job of the JobLifecycle like a run, whose
worker trains a cell per grid point; each cell is an ordinary run (viewable and live at
/api/runs/{id}), so all that is left here is what is sweep-specific: the grid, each cell's
outcome, the measured boundary and the sweep's own progress stream.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from types import SimpleNamespace

from li2core.phase_boundary import fit_constant, measured_boundaries
from li2core.sweep import OUTCOMES, SweepConfig
from li2core.theory import P_CRIT_CONSTANT, p_crit

from ..service import RunService, iso
from ..store import ACTIVE, RunRecord, RunStore, SweepRecord
from .lifecycle import Job, JobConflict, JobNotFound
from .stream import RunStream


class SweepNotFound(JobNotFound):
    kind = "sweep"


class SweepConflict(JobConflict):
    """The sweep's state does not allow the request (HTTP 409)."""


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


LIVE_SECONDS = 0.5  # a sweep's per-cell live message goes out at most this often


def live_cell(cell: int, row: dict) -> dict:
    """A running cell's latest step and accuracies, from its newest metrics row."""
    return {"index": cell, "step": row.get("step"), "train_acc": row.get("train_acc"),
            "test_acc": row.get("test_acc")}


class SweepJob(Job):
    """A sweep on the job queue: its cells are its runs; the sweep record follows them."""

    kind = "sweep"

    def __init__(self, record: SweepRecord, sweep: SweepConfig, streams: list[RunStream],
                 store: RunStore) -> None:
        super().__init__(record.id, record.client, {"kind": "sweep", "spec": record.spec},
                         streams)
        self.record, self.sweep, self.store = record, sweep, store
        self.subscribers: set[asyncio.Queue] = set()
        # running cells' latest rows; the changed ones go out together, throttled, so 256 cells
        # training at once make one ``live`` message per LIVE_SECONDS, not one per row
        self.live: dict[int, dict] = {}
        self.live_changed: set[int] = set()
        self.live_sent = 0.0

    def publish(self, message: dict) -> None:
        for q in self.subscribers:
            q.put_nowait({**message, "sweep_id": self.id})

    def on_running(self) -> None:
        # the cells stay queued until the worker reaches each one
        rec = self.record
        rec.status, rec.started_at = "running", time.time()
        self.store.put_sweep(rec)
        self.publish({"type": "status", "status": "running", "queue_position": None})

    def on_moved(self, position: int) -> None:
        super().on_moved(position)
        self.publish({"type": "status", "status": "queued", "queue_position": position})

    def on_started(self, cell: int, started: dict) -> None:
        self.record.cells[cell]["status"] = "running"
        self.publish({"type": "cell", "cell": self.record.cells[cell]})

    def on_metrics(self, cell: int, rows: list[dict]) -> None:
        if rows and self.record.cells[cell]["status"] == "running":
            self.live[cell] = live_cell(cell, rows[-1])
            self.live_changed.add(cell)
            self.flush_live()

    def flush_live(self, force: bool = False) -> None:
        """Publish the running cells whose rows changed, at most once per LIVE_SECONDS."""
        now = time.monotonic()
        if not self.live_changed or (not force and now - self.live_sent < LIVE_SECONDS):
            return
        cells = [self.live[c] for c in sorted(self.live_changed) if c in self.live]
        self.live_changed.clear()
        self.live_sent = now
        if cells:
            self.publish({"type": "live", "cells": cells})

    def on_finished(self, cell: int, summary: dict) -> None:
        """A cell ended: its outcome goes into the table, its run ends now."""
        self.live.pop(cell, None)
        self.live_changed.discard(cell)
        row = self.record.cells[cell]
        final, stopped = summary.get("final") or {}, bool(summary.get("stopped"))
        row.update(status="cancelled" if stopped else "completed",
                   outcome=None if stopped else summary.get("outcome"),
                   train_acc=final.get("train_acc"), test_acc=final.get("test_acc"),
                   steps=summary.get("steps_done", 0),
                   **{"first_test_acc_0.9": (summary.get("first_step") or {}).get(
                       "test_acc>=0.9")})
        self.streams[cell].end(row["status"], None)
        self.store.put_sweep(self.record)
        self.publish({"type": "cell", "cell": row})

    def on_progress(self, steps_done: int) -> None:
        self.flush_live()  # rows that came in the last throttle window go out now
        self.record.steps_done = steps_done
        self.publish({"type": "progress", "steps_done": steps_done,
                      "steps_total": self.record.steps_total})

    def on_end(self, status: str, error: str | None) -> None:
        """Terminal state for the sweep and every cell that had not ended; tell subscribers."""
        rec = self.record
        self.live.clear()
        self.live_changed.clear()
        cell_status = "cancelled" if status in ("cancelled", "completed") else status
        for row, stream in zip(rec.cells, self.streams):
            if row["status"] in ACTIVE:
                row["status"] = cell_status
            if not stream.ended:
                stream.end(cell_status, error)
        rec.status, rec.error, rec.finished_at = status, error, time.time()
        rec.result = boundary_report(self.sweep, rec.cells)
        self.store.put_sweep(rec)
        self.publish({"type": "finished", "sweep": sweep_view(rec)})
        for q in self.subscribers:
            q.put_nowait(None)  # end of stream


class SweepService:
    def __init__(self, runs: RunService) -> None:
        self.runs, self.lifecycle, self.store = runs, runs.lifecycle, runs.store
        self.live: dict[str, SweepJob] = {}
        self.lifecycle.ended.append(lambda job: self.live.pop(job.id, None))

    async def start(self) -> list[str]:
        return await asyncio.to_thread(
            self.store.mark_sweeps_interrupted, "the server stopped while this sweep was active")

    # -- queries -------------------------------------------------------------------------------
    def _live_view(self, job: SweepJob) -> dict:
        return {**sweep_view(job.record, self.lifecycle.position(job.id), job.sweep),
                "live": list(job.live.values())}

    async def get(self, sweep_id: str) -> dict:
        if (job := self.live.get(sweep_id)) is not None:
            return self._live_view(job)
        rec = await asyncio.to_thread(self.store.get_sweep, sweep_id)
        if rec is None:
            raise SweepNotFound(sweep_id)
        return sweep_view(rec)

    async def list(self, limit: int) -> list[dict]:
        recs = await asyncio.to_thread(self.store.list_sweeps, limit)
        views = [self._live_view(self.live[r.id]) if r.id in self.live else sweep_view(r)
                 for r in recs]
        return [{k: v for k, v in view.items() if k not in ("cells", "live")} for view in views]

    # -- commands ------------------------------------------------------------------------------
    async def submit(self, sweep: SweepConfig, client: str) -> dict:
        """Admit, persist the sweep and one queued run per grid point, then queue it."""
        sweep_id = secrets.token_hex(6)
        self.lifecycle.admit(sweep_id, client, SweepJob.kind)
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
                self.store.create_run(r)
            self.store.put_sweep(rec)

        try:
            await asyncio.to_thread(persist)
        except Exception:
            self.lifecycle.withdraw(sweep_id)
            raise
        streams = [RunStream(r, self.runs.hub, self.store) for r in records]
        job = self.live[sweep_id] = SweepJob(rec, sweep, streams, self.store)
        self.runs.track(job)
        self.lifecycle.submit(job)
        return await self.get(sweep_id)

    async def cancel(self, sweep_id: str) -> dict:
        """Stop every run of the sweep; finished runs keep their results."""
        job = self.live.get(sweep_id)
        if job is None:
            view = await self.get(sweep_id)
            raise SweepConflict(f"sweep {sweep_id} is already {view['status']}")
        self.lifecycle.cancel(job)
        return await self.get(sweep_id)

    def subscribe(self, sweep_id: str) -> asyncio.Queue | None:
        """A queue of progress messages, None when the sweep is not active."""
        job = self.live.get(sweep_id)
        if job is None:
            return None
        q: asyncio.Queue = asyncio.Queue()
        job.subscribers.add(q)
        return q

    def unsubscribe(self, sweep_id: str, q: asyncio.Queue) -> None:
        job = self.live.get(sweep_id)
        if job is not None:
            job.subscribers.discard(q)
