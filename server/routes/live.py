"""WebSocket /ws/runs/{id}?since=SEQ: hello, replay of what the client missed, then live frames.

A receive loop and a send loop run side by side; both end when the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket

from ..deps import ServiceDep, SettingsDep
from ..hub import Viewer
from ..protocol import MAX_WIRE_INT, encode_snapshot, to_json
from ..service import RunService, run_view
from ..store import RunStore

router = APIRouter(tags=["live"])

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # bad origin or bad query
CLOSE_TOO_SLOW = 4008  # backlog overflow: reconnect with since=<last seq>
CLOSE_NOT_FOUND = 4404
_SINCE = re.compile(r"^[0-9]{1,16}$")


def origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Browsers always send Origin: accept the page's own host or a configured origin."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser; Origin checks only stop cross-site pages
    origin = origin.rstrip("/").lower()
    if origin in (o.lower() for o in allowed):
        return True
    host = websocket.headers.get("host", "").lower()
    return bool(host) and urlsplit(origin).netloc == host


def stored_frames(store: RunStore, run_id: str, after: int, through: int | None = None) -> list:
    """Text frames of the stored metrics and stages with after < seq <= through, in seq order."""
    messages = [(b.seq, {"type": "metrics", "run_id": run_id, "seq": b.seq, "rows": b.rows})
                for b in store.metric_batches(run_id, after)]
    messages += [(s.seq, {"type": "stage", "run_id": run_id, **s.as_dict()})
                 for s in store.stages(run_id, after)]
    messages.sort(key=lambda m: m[0])
    return [to_json(m) for seq, m in messages if through is None or seq <= through]


def hello(view: dict, since: int, latest: int) -> str:
    # seq = where the replay starts, so a client tracking max(seq) never skips replayed frames
    return to_json({"type": "hello", "run_id": view["id"], "seq": min(since, latest),
                    "latest_seq": latest, "status": view["status"],
                    "queue_position": view["queue_position"], "config": view["config"],
                    "started": view["started"], "error": view["error"]})


async def _send(websocket: WebSocket, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        await websocket.send_bytes(frame)
    else:
        await websocket.send_text(frame)


async def _close(websocket: WebSocket, code: int, reason: str = "", timeout: float = 2) -> None:
    with contextlib.suppress(Exception):  # the client may already be gone
        await asyncio.wait_for(websocket.close(code, reason), timeout=timeout)


async def _replay_ended(websocket: WebSocket, service: RunService, run_id: str,
                        since: int) -> None:
    """A run with no live channel: everything from the store, then ``finished`` and close."""
    record = await asyncio.to_thread(service.store.get_run, run_id)
    if record is None:
        await websocket.send_text(to_json({"type": "error", "run_id": run_id, "seq": 0,
                                           "message": f"no run {run_id!r}"}))
        await _close(websocket, CLOSE_NOT_FOUND, "no such run")
        return
    frames = await asyncio.to_thread(stored_frames, service.store, run_id, since)
    snap = await asyncio.to_thread(service.store.snapshot, run_id)
    await websocket.send_text(hello(run_view(record), since, record.last_seq))
    for frame in frames:
        await websocket.send_text(frame)
    if snap is not None:
        await websocket.send_bytes(encode_snapshot(run_id, snap.seq, snap.step, snap.arrays))
    await websocket.send_text(to_json({
        "type": "finished", "run_id": run_id, "seq": record.last_seq, "status": record.status,
        "summary": record.summary, "error": record.error}))
    await _close(websocket, CLOSE_NORMAL)


async def _serve_viewer(websocket: WebSocket, viewer: Viewer) -> None:
    async def send_loop() -> None:
        while (frames := await viewer.next_frames()) is not None:
            for frame in frames:
                await _send(websocket, frame)

    async def receive_loop() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say yet; reading notices that they left

    sender = asyncio.create_task(send_loop())
    tasks = {sender, asyncio.create_task(receive_loop()),
             asyncio.create_task(viewer.too_slow.wait())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        # asyncio.wait, not gather: a cancellation of this handler must keep its own identity
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # a send to a departed client fails; that is the normal end
    if viewer.too_slow.is_set():
        # a slow link reads what is queued before it reaches the close frame: give it time,
        # or it sees an abnormal 1006 instead of the 4008 that tells it to reconnect
        await _close(websocket, CLOSE_TOO_SLOW, "too slow: reconnect with since=<last seq>",
                     timeout=15)
    elif sender in done and sender.exception() is None:
        await _close(websocket, CLOSE_NORMAL)


@router.websocket("/ws/runs/{run_id}")
async def run_stream(websocket: WebSocket, run_id: str, service: ServiceDep,
                     settings: SettingsDep) -> None:
    if not origin_allowed(websocket, settings.allowed_origins):
        await websocket.close(CLOSE_POLICY)  # before accept: the handshake fails with 403
        return
    await websocket.accept()
    raw = websocket.query_params.get("since", "0")
    # ASCII digits only (str.isdigit also takes "²"), and few enough to stay a wire integer
    if not _SINCE.match(raw) or int(raw) > MAX_WIRE_INT:
        await websocket.send_text(to_json({"type": "error", "run_id": run_id, "seq": 0,
                                           "message": "since: expected a non-negative integer"}))
        await _close(websocket, CLOSE_POLICY, "bad since")
        return
    since = asked = int(raw)
    prefix: list = []
    while True:
        channel = service.hub.get(run_id)
        if channel is None:  # ended (perhaps while we read the store): replay it whole
            await _replay_ended(websocket, service, run_id, asked)
            return
        if since >= channel.dropped_through:
            break
        # the live buffer no longer reaches back to `since`: fill the gap from the store
        through = channel.dropped_through
        prefix += await asyncio.to_thread(stored_frames, service.store, run_id, since, through)
        since = through
    viewer = channel.subscribe(since, prefix)  # atomic with hello: no await in between
    first = hello(service.view(run_id), asked, channel.seq)
    try:
        await websocket.send_text(first)
        await _serve_viewer(websocket, viewer)
    finally:
        channel.unsubscribe(viewer)
