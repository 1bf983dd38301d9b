"""POST /api/runs/{id}/fork: continue a stored snapshot of a run with changed settings."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError

from ..deps import ClientDep, InstructorDep, ServiceDep, StoreDep
from ..fork import ForkError, ForkRequest, plan_fork
from ..jobs import AdmissionError
from .runs import MIN_THROTTLE

router = APIRouter(prefix="/api/runs", tags=["forks"])


@router.post("/{run_id}/fork", status_code=201)
async def fork_run(
    run_id: str, body: ForkRequest, service: ServiceDep, store: StoreDep, client: ClientDep,
    _: InstructorDep,
    max_steps_per_s: Annotated[float | None, Query(ge=MIN_THROTTLE, le=100_000, allow_inf_nan=False,
                                                   description="default: "
                                                   "the parent's throttle")] = None,
) -> dict:
    """A new run from the snapshot at or before ``step``; it records parent, step and changes."""
    record = await asyncio.to_thread(store.get_run, run_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id!r}")
    snap = await asyncio.to_thread(store.snapshot, run_id, body.step)
    if snap is None:
        raise RequestValidationError([{
            "loc": ["body", "step"], "type": "value_error",
            "msg": f"step: run {run_id} has no snapshot at or before step {body.step}"}])
    try:
        stages = await asyncio.to_thread(store.stages, run_id)
        plan = plan_fork(run_id, record.config, record.lineage, snap.step, snap.arrays,
                         body.changes, [s.as_dict(seq=False) for s in stages])
    except ForkError as exc:
        raise RequestValidationError(exc.errors) from None
    throttle = max_steps_per_s if max_steps_per_s is not None else record.max_steps_per_s
    try:
        return await service.submit(plan.config, client, throttle, lineage=plan.lineage,
                                     initial=plan.initial)
    except AdmissionError as exc:
        raise HTTPException(exc.status_code, str(exc)) from None
