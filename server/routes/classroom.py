"""Classroom mode: broadcast a run under a short code; /watch/<code> shows it read-only.

Broadcasting needs the server's instructor token: without one anybody may start and stop runs,
so a read-only view would promise nothing. Viewers hold no token, so every command (start,
stop, fork, import, broadcast) is refused to them by the routes' own token check.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from html import escape
from pathlib import Path

import segno
from fastapi import APIRouter, Body, HTTPException, Request, Response, WebSocket
from fastapi.responses import FileResponse, HTMLResponse

import frontend

from ..classroom import ClassroomDep
from ..deps import InstructorDep, ServiceDep, SettingsDep, StoreDep
from ..protocol import to_json
from .live import CLOSE_NORMAL, CLOSE_NOT_FOUND, CLOSE_POLICY, origin_allowed
from .lookup import stored_run

router = APIRouter(tags=["classroom"])

WATCH_PAGE = Path(frontend.__file__).parent / "static" / "watch.html"
JOIN_PAGE = Path(frontend.__file__).parent / "static" / "join.html"


def share_base(request: Request, settings) -> str:
    """Where students reach the server: the configured public URL, else the address this
    request came in on (a loopback one only works on the instructor's own machine)."""
    return settings.public_url or str(request.base_url).rstrip("/")


def _broadcast_view(classroom, code: str, base: str | None = None) -> dict:
    run_id = classroom.run_of(code)
    view = {"code": code, "run_id": run_id, "viewers": classroom.viewers(run_id),
            "url": f"/watch/{code}", "qr": f"/api/broadcasts/{code}/qr.svg"}
    if base is not None:
        view["share_url"] = f"{base}/watch/{code}"
    return view


@router.post("/api/runs/{run_id}/broadcast", status_code=201)
async def broadcast_run(
    run_id: str, request: Request, store: StoreDep, settings: SettingsDep,
    classroom: ClassroomDep, _: InstructorDep,
    code: str | None = Body(None, embed=True, max_length=16,
                            description="an existing code to switch to this run"),
) -> dict:
    """{code, run_id, viewers, url}: the same code for the same run until it is ended."""
    if settings.instructor_token is None:
        raise HTTPException(409, "classroom mode needs an instructor token: start the server "
                                 "with LI2_INSTRUCTOR_TOKEN set, so viewers cannot control runs")
    await stored_run(store, run_id)
    try:
        code = classroom.broadcast(run_id, code)
    except KeyError:
        raise HTTPException(422, [{"loc": ["body", "code"], "type": "value_error",
                                   "msg": f"code: no broadcast {code!r} to switch"}]) from None
    return _broadcast_view(classroom, code, share_base(request, settings))


@router.get("/api/runs/{run_id}/broadcast")
async def run_broadcast(run_id: str, request: Request, store: StoreDep, settings: SettingsDep,
                        classroom: ClassroomDep) -> dict:
    """The run's broadcast, or code null when it has none (pages ask on every run they show)."""
    await stored_run(store, run_id)
    code = classroom.code_of(run_id)
    if code is None:
        return {"code": None, "run_id": run_id, "viewers": 0, "url": None}
    return _broadcast_view(classroom, code, share_base(request, settings))


@router.get("/api/broadcasts")
async def list_broadcasts(request: Request, settings: SettingsDep, classroom: ClassroomDep,
                          _: InstructorDep) -> dict:
    """The open broadcasts, so any of the instructor's browsers can reuse or end them."""
    base = share_base(request, settings)
    return {"public_url": settings.public_url, "broadcasts": [
        {**b, **_broadcast_view(classroom, b["code"], base)} for b in classroom.listing()]}


@router.get("/api/broadcasts/{code}/qr.svg", include_in_schema=False)
async def broadcast_qr(code: str, request: Request, settings: SettingsDep,
                       classroom: ClassroomDep) -> Response:
    """The share link as a QR code (SVG), for the projector."""
    code = code.strip().upper()
    if classroom.run_of(code) is None:
        raise HTTPException(404, f"no broadcast with code {code!r}")
    url = f"{share_base(request, settings)}/watch/{code}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, title=url)
    return Response(out.getvalue(), media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


@router.get("/api/broadcasts/{code}")
async def get_broadcast(code: str, request: Request, settings: SettingsDep,
                        classroom: ClassroomDep, service: ServiceDep) -> dict:
    if classroom.run_of(code) is None:
        raise HTTPException(404, f"no broadcast with code {code!r}")
    view = _broadcast_view(classroom, code.strip().upper(), share_base(request, settings))
    with contextlib.suppress(Exception):  # the run may have been deleted since
        view["run"] = await service.get(view["run_id"])
    return view


@router.delete("/api/broadcasts/{code}", status_code=204)
async def end_broadcast(code: str, classroom: ClassroomDep, _: InstructorDep) -> Response:
    if not classroom.end(code):
        raise HTTPException(404, f"no broadcast with code {code!r}")
    return Response(status_code=204)


@router.get("/watch", include_in_schema=False)
async def join_page():
    """The student's page: type the code from the projector, nothing else."""
    return FileResponse(JOIN_PAGE, media_type="text/html")


@router.get("/watch/{code}", include_in_schema=False)
async def watch_page(code: str, classroom: ClassroomDep):
    if classroom.run_of(code) is None:
        return HTMLResponse(
            f"<!doctype html><title>li2lab · no broadcast</title><h1>No broadcast "
            f"“{escape(code)}”</h1><p>Check the code on the projector; it ends when the "
            "instructor stops broadcasting.</p>", status_code=404)
    return FileResponse(WATCH_PAGE, media_type="text/html",
                        headers={"Cache-Control": "no-store"})


@router.websocket("/ws/watch/{code}")
async def watch_stream(websocket: WebSocket, code: str, settings: SettingsDep,
                       classroom: ClassroomDep) -> None:
    """Pushes {type: watch, code, run_id, viewers} on join and on every change; ``count=0``
    watches without being counted (the instructor's own page)."""
    if not origin_allowed(websocket, settings.allowed_origins):
        await websocket.close(CLOSE_POLICY)
        return
    await websocket.accept()
    if classroom.run_of(code) is None:
        await websocket.send_text(to_json({"type": "error", "code": code,
                                           "message": f"no broadcast with code {code!r}"}))
        await websocket.close(CLOSE_NOT_FOUND)
        return
    watcher = classroom.join(code, counted=websocket.query_params.get("count") != "0")

    async def send_loop() -> None:
        while True:
            message = await watcher.next_message()
            await websocket.send_text(to_json(message))
            if message["type"] == "ended":
                return

    async def receive_loop() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # viewers have nothing to say; reading notices that they left

    sender = asyncio.create_task(send_loop())
    receiver = asyncio.create_task(receive_loop())
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when the server cancels us: the count must drop either way
        sender.cancel()
        receiver.cancel()
        classroom.leave(watcher)
    if sender in done and not sender.cancelled() and sender.exception() is None:
        with contextlib.suppress(Exception):  # the broadcast ended: close politely
            await asyncio.wait_for(websocket.close(CLOSE_NORMAL), timeout=2)
