"""/api/runs: create, list, inspect, cancel and delete runs, and read their stored streams."""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Body, HTTPException, Query, Response

from li2core.config import RunConfig

from ..deps import ClientDep, InstructorDep, ServiceDep, StoreDep
from ..jobs import AdmissionError
from ..ownership import RunOwnerDep
from ..protocol import MAX_WIRE_INT, encode_snapshot

# an unknown run is a 404 and a run in the wrong state a 409 wherever service.* raises them
# (RunNotFound / RunConflict, answered by the app's handlers for JobNotFound / JobConflict)
router = APIRouter(prefix="/api/runs", tags=["runs"])
MIN_THROTTLE = 0.01  # steps per second; slower would hold a job slot for days per step


@router.post("", status_code=201)
async def create_run(
    service: ServiceDep, client: ClientDep, _: InstructorDep,
    config: Annotated[RunConfig | None, Body(description="RunConfig fields; omitted → defaults")]
    = None,
    max_steps_per_s: Annotated[float | None, Query(ge=MIN_THROTTLE, le=100_000,
                                                   allow_inf_nan=False,
                                                   description="throttle for lectures")] = None,
) -> dict:
    try:
        return await service.submit(config or RunConfig(), client, max_steps_per_s)
    except AdmissionError as exc:
        raise HTTPException(exc.status_code, str(exc)) from None


@router.get("")
async def list_runs(
    service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_sweeps: Annotated[bool, Query(description="also list the runs of sweeps")] = False,
    sweep: Annotated[str | None, Query(description="only the runs of this sweep")] = None,
) -> list[dict]:
    """Newest first; a sweep's cells (up to 256 each) only when asked for."""
    return await service.list(limit, include_sweeps=include_sweeps, sweep=sweep)


@router.get("/{run_id}")
async def get_run(run_id: str, service: ServiceDep) -> dict:
    return await service.get(run_id)


@router.post("/{run_id}/cancel")
async def cancel_run(run_id: str, service: ServiceDep, _: InstructorDep,
                     _owner: RunOwnerDep) -> dict:
    return await service.cancel(run_id)


@router.delete("/{run_id}", status_code=204)
async def delete_run(run_id: str, service: ServiceDep, _: InstructorDep,
                     _owner: RunOwnerDep) -> Response:
    await service.delete(run_id)
    return Response(status_code=204)


@router.get("/{run_id}/metrics")
async def run_metrics(run_id: str, service: ServiceDep, store: StoreDep,
                      since: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)] = 0) -> dict:
    """Rows of every batch with seq > since; ``seq`` is the last one included (for ws since=)."""
    await service.get(run_id)
    batches = await asyncio.to_thread(store.metric_batches, run_id, since)
    return {"run_id": run_id, "seq": batches[-1].seq if batches else since,
            "rows": [row for batch in batches for row in batch.rows]}


@router.get("/{run_id}/stages")
async def run_stages(run_id: str, service: ServiceDep, store: StoreDep) -> list[dict]:
    await service.get(run_id)
    stages = await asyncio.to_thread(store.stages, run_id)
    return [s.as_dict() for s in stages]


@router.get("/{run_id}/snapshots")
async def run_snapshot_steps(run_id: str, service: ServiceDep, store: StoreDep) -> list[int]:
    await service.get(run_id)
    return await asyncio.to_thread(store.snapshot_steps, run_id)


@router.get("/{run_id}/snapshot", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def run_snapshot(
    run_id: str, service: ServiceDep, store: StoreDep,
    step: Annotated[int | None, Query(ge=0, le=MAX_WIRE_INT,
                                      description="nearest stored step at or before; "
                                                  "omitted → latest")] = None,
    format: Annotated[Literal["frame", "npz"], Query()] = "frame",
) -> Response:
    """The snapshot as a binary frame (docs/protocol.md) or, with format=npz, a numpy archive."""
    await service.get(run_id)
    snap = await asyncio.to_thread(store.snapshot, run_id, step)
    if snap is None:
        raise HTTPException(404, f"run {run_id!r} has no snapshot at or before step {step}")
    headers = {"X-Snapshot-Step": str(snap.step), "X-Snapshot-Seq": str(snap.seq)}
    if format == "npz":
        buf = io.BytesIO()
        np.savez(buf, **snap.arrays)
        headers["Content-Disposition"] = f'attachment; filename="{run_id}-{snap.step}.npz"'
        return Response(buf.getvalue(), media_type="application/octet-stream", headers=headers)
    frame = encode_snapshot(run_id, snap.seq, snap.step, snap.arrays)
    return Response(frame, media_type="application/octet-stream", headers=headers)
