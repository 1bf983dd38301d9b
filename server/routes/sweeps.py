"""/api/sweeps and /ws/sweeps/{id}: submit, list, inspect, cancel and watch sweeps.

Each grid point of a sweep is an ordinary run (GET /api/runs/{cell.run_id}); the sweep record
adds its spec, the outcome of each cell and the measured boundary (docs/sweeps.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.requests import HTTPConnection
from pydantic import ValidationError

from li2core.sweep import SweepConfig
from li2core.sweep_presets import SWEEP_PRESETS

from ..deps import ClientDep, InstructorDep, SettingsDep
from ..errors import error_entries
from ..jobs import AdmissionError
from ..jobs.sweep_service import SweepNotFound, SweepService
from ..ownership import SweepOwnerDep
from ..protocol import to_json
from .live import CLOSE_NORMAL, CLOSE_NOT_FOUND, CLOSE_POLICY, origin_allowed

# unknown sweep → 404, wrong state → 409: SweepNotFound / SweepConflict reach the app's handlers
router = APIRouter(tags=["sweeps"])

_POINT = re.compile(r"^(?:Value error, )?grid point \(.*?\): (\w+):")
_AXIS = re.compile(r"^(?:Value error, )?(grid|zipped)(?:\.(\w+))?")


def get_sweeps(conn: HTTPConnection) -> SweepService:
    return conn.app.state.sweeps


SweepsDep = Annotated[SweepService, Depends(get_sweeps)]


def _locate(error: dict, spec: dict) -> dict:
    """SweepConfig's cross-field checks fail at loc (); point loc at the axis they name."""
    loc = tuple(error.get("loc", ()))
    if loc:
        return {**error, "loc": ("body", *loc)}
    msg = error.get("msg", "")
    if m := _POINT.match(msg):
        where = "zipped" if m.group(1) in spec.get("zipped", {}) else "grid"
        return {**error, "loc": ("body", where, m.group(1))}
    if m := _AXIS.match(msg):
        return {**error, "loc": ("body", *(g for g in m.groups() if g))}
    return {**error, "loc": ("body",)}


def parse_spec(body: dict) -> SweepConfig:
    """SweepConfig from a JSON body, or a 422 whose loc names the field or axis at fault."""
    try:
        return SweepConfig.model_validate(body)
    except ValidationError as exc:
        errors = error_entries(exc.errors(include_url=False))  # a base field's check: in loc
        raise RequestValidationError([_locate(e, body) for e in errors], body=body) from None


@router.get("/api/sweeps/presets")
async def list_sweep_presets() -> list[dict]:
    return [{"name": name, "description": desc, "run_count": sw.run_count,
             "spec": sw.model_dump()} for name, (desc, sw) in SWEEP_PRESETS.items()]


@router.post("/api/sweeps", status_code=201)
async def create_sweep(
    sweeps: SweepsDep, client: ClientDep, _: InstructorDep,
    body: Annotated[dict, Body(description="SweepConfig: {name, base, grid, zipped}")],
) -> dict:
    sweep = parse_spec(body)
    try:
        return await sweeps.submit(sweep, client)
    except AdmissionError as exc:
        raise HTTPException(exc.status_code, str(exc)) from None


@router.get("/api/sweeps")
async def list_sweeps(sweeps: SweepsDep,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    return await sweeps.list(limit)


@router.get("/api/sweeps/{sweep_id}")
async def get_sweep(sweep_id: str, sweeps: SweepsDep) -> dict:
    return await sweeps.get(sweep_id)


@router.post("/api/sweeps/{sweep_id}/cancel")
async def cancel_sweep(sweep_id: str, sweeps: SweepsDep, _: InstructorDep,
                       _owner: SweepOwnerDep) -> dict:
    return await sweeps.cancel(sweep_id)


@router.get("/api/sweeps/{sweep_id}/outcomes.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def sweep_csv(sweep_id: str, sweeps: SweepsDep) -> Response:
    """One row per cell, the columns of ``li2 sweep``'s outcomes.csv plus run_id and status."""
    view = await sweeps.get(sweep_id)
    buf = io.StringIO()
    axes = view["axes"]
    fields = ["run", "run_id", *axes, "status", "outcome", "train_acc", "test_acc",
              "first_test_acc_0.9", "steps", "p_crit"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for cell in view["cells"]:
        writer.writerow({**cell, **cell["point"], "run": cell["index"]})
    return Response(buf.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="sweep-{sweep_id}.csv"'})


@router.websocket("/ws/sweeps/{sweep_id}")
async def sweep_stream(websocket: WebSocket, sweep_id: str, settings: SettingsDep) -> None:
    """hello (the sweep), then status / progress / cell messages, then finished; closes."""
    if not origin_allowed(websocket, settings.allowed_origins):
        await websocket.close(CLOSE_POLICY)
        return
    await websocket.accept()
    sweeps: SweepService = websocket.app.state.sweeps
    q = sweeps.subscribe(sweep_id)  # before reading the view: no message falls in between
    try:
        try:
            view = await sweeps.get(sweep_id)
        except SweepNotFound:
            await websocket.send_text(to_json({"type": "error", "sweep_id": sweep_id,
                                               "message": f"no sweep {sweep_id!r}"}))
            await websocket.close(CLOSE_NOT_FOUND)
            return
        await websocket.send_text(to_json({"type": "hello", "sweep_id": sweep_id,
                                           "sweep": view}))
        if q is None:  # ended before we came: its view is final
            await websocket.send_text(to_json({"type": "finished", "sweep_id": sweep_id,
                                               "sweep": view}))
        else:
            receiver = asyncio.create_task(websocket.receive())
            while (message := await q.get()) is not None:
                await websocket.send_text(to_json(message))
                if receiver.done():
                    break  # the client left
            receiver.cancel()
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_NORMAL)
    finally:
        if q is not None:
            sweeps.unsubscribe(sweep_id, q)
