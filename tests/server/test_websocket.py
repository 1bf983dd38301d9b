"""The live stream: order, no gaps, resume with since, replay of ended runs, Origin checks."""

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from server.app import create_app
from server.protocol import decode_snapshot
from server.routes.live import CLOSE_TOO_SLOW
from server.store import MemoryRunStore

from .conftest import TINY, settings, uvicorn_server, wait_status, wait_until
from .fakes import FakeRunner, fake_arrays, fake_row


def read_all(ws) -> list:
    """Every message until the server closes: dicts for text, (header, arrays) for binary."""
    out = []
    while True:
        m = ws.receive()
        if m["type"] == "websocket.close":
            return out
        out.append(json.loads(m["text"]) if m.get("text") is not None
                   else decode_snapshot(m["bytes"]))


def texts(messages, kind=None):
    return [m for m in messages if isinstance(m, dict) and (kind is None or m["type"] == kind)]


def steps_of(messages):
    return [row["step"] for m in texts(messages, "metrics") for row in m["rows"]]


def test_live_steps_arrive_in_order_without_gaps(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner)
    run = c.post("/api/runs", json=TINY).json()
    h = wait_until(lambda: runner.handles.get(run["id"]))
    with c.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        hello = json.loads(ws.receive_text())
        assert hello["type"] == "hello" and hello["status"] == "running"
        assert hello["config"]["hidden"] == 24 and hello["seq"] == 0
        for start in range(0, 60, 6):
            h.emit("metrics", [fake_row(s) for s in range(start, start + 6)])
        h.emit("snapshot", (59, fake_arrays(59)))
        h.emit("finished", {"final": {"step": 59}})
        h.exit(0)
        messages = read_all(ws)
    assert steps_of(messages) == list(range(60))
    seqs = [m["seq"] for m in texts(messages)]
    assert seqs == sorted(seqs) and all(m["run_id"] == run["id"] for m in texts(messages))
    assert [m["status"] for m in texts(messages, "status")] == ["running", "completed"]
    assert texts(messages)[-1]["type"] == "finished"
    assert texts(messages)[-1]["summary"] == {"final": {"step": 59}}
    header, arrays = [m for m in messages if isinstance(m, tuple)][-1]
    assert header["step"] == 59 and arrays["W"][0, 0] == 59


def test_resume_with_since_replays_only_what_was_missed(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner)
    run = c.post("/api/runs", json=TINY).json()
    h = wait_until(lambda: runner.handles.get(run["id"]))
    url = f"/ws/runs/{run['id']}"
    with c.websocket_connect(url) as ws:
        json.loads(ws.receive_text())  # hello
        h.emit("metrics", [fake_row(s) for s in range(10)])
        h.emit("snapshot", (9, fake_arrays(9)))
        seen = []
        while not any(m.get("type") == "metrics" for m in seen):
            seen.append(json.loads(ws.receive_text()))
        last_seq = seen[-1]["seq"]
    # while disconnected: more rows, a stage and a newer snapshot
    h.emit("metrics", [fake_row(s) for s in range(10, 20)])
    h.emit("stage", {"step": 15, "stage": "interactive", "evidence": {}})
    h.emit("snapshot", (19, fake_arrays(19)))
    wait_until(lambda: c.get(f"/api/runs/{run['id']}/metrics").json()["rows"][-1]["step"] == 19)
    with c.websocket_connect(f"{url}?since={last_seq}") as ws:
        hello = json.loads(ws.receive_text())
        assert hello["seq"] == last_seq and hello["latest_seq"] > last_seq
        got = [json.loads(ws.receive_text()), json.loads(ws.receive_text())]
        header, _ = decode_snapshot(ws.receive_bytes())
    assert [m["type"] for m in got] == ["metrics", "stage"]
    assert [r["step"] for r in got[0]["rows"]] == list(range(10, 20))
    assert all(m["seq"] > last_seq for m in got)
    assert header["step"] == 19  # the latest snapshot, the one from before is not resent
    h.exit(0)


def test_replay_reaches_past_the_live_buffer_through_the_store(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner, replay_buffer_bytes=1 << 16)
    run = c.post("/api/runs", json=TINY).json()
    h = wait_until(lambda: runner.handles.get(run["id"]))
    for step in range(0, 2000, 10):  # ~170 kB of rows: most leave the 64 kB buffer
        h.emit("metrics", [{**fake_row(s), "pad": "x" * 50} for s in range(step, step + 10)])
    wait_until(lambda: len(c.get(f"/api/runs/{run['id']}/metrics",
                                 params={"since": 0}).json()["rows"]) == 2000)
    with c.websocket_connect(f"/ws/runs/{run['id']}?since=0") as ws:
        json.loads(ws.receive_text())
        rows = []
        while len(rows) < 2000:
            m = json.loads(ws.receive_text())
            rows += m.get("rows", [])
    assert [r["step"] for r in rows] == list(range(2000))
    h.exit(0)


def test_ended_run_replays_from_the_store_then_closes(make_client):
    c = make_client(runner=FakeRunner())
    run = c.post("/api/runs", json=TINY).json()
    wait_status(c, run["id"], "completed")
    with c.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        messages = read_all(ws)
    assert messages[0]["type"] == "hello" and messages[0]["status"] == "completed"
    assert steps_of(messages) == list(range(61))
    assert [m["stage"] for m in texts(messages, "stage")] == ["independent"]
    assert messages[-1]["type"] == "finished" and messages[-1]["status"] == "completed"
    snaps = [m for m in messages if isinstance(m, tuple)]
    assert len(snaps) == 1 and snaps[0][0]["step"] == 60
    with c.websocket_connect(f"/ws/runs/{run['id']}?since={messages[-1]['seq']}") as ws:
        again = read_all(ws)
    assert steps_of(again) == [] and again[-1]["type"] == "finished"


def test_queued_viewer_sees_position_then_start(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner, max_jobs=1, quota=5)
    first = c.post("/api/runs", json=TINY).json()
    second = c.post("/api/runs", json=TINY).json()
    with c.websocket_connect(f"/ws/runs/{second['id']}") as ws:
        hello = json.loads(ws.receive_text())
        assert (hello["status"], hello["queue_position"]) == ("queued", 1)
        wait_until(lambda: runner.handles.get(first["id"])).exit(0)
        status = [json.loads(ws.receive_text()) for _ in range(1)][0]
        assert (status["type"], status["status"]) == ("status", "running")
    wait_until(lambda: runner.handles.get(second["id"])).exit(0)


def test_unknown_run_and_bad_since(make_client):
    c = make_client()
    with c.websocket_connect("/ws/runs/nope") as ws:
        msg = json.loads(ws.receive_text())
        assert msg["type"] == "error" and "nope" in msg["message"]
        assert ws.receive()["code"] == 4404
    run = c.post("/api/runs", json=TINY).json()
    with c.websocket_connect(f"/ws/runs/{run['id']}?since=-3") as ws:
        assert "since" in json.loads(ws.receive_text())["message"]
        assert ws.receive()["code"] == 1008


def test_origin_is_checked_on_a_real_server(tmp_path):
    app = create_app(settings(tmp_path, allowed_origins="https://lab.example"),
                     runner=FakeRunner(), store=MemoryRunStore())
    with uvicorn_server(app) as addr:
        url = f"ws://{addr}/ws/runs/nope"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin="http://evil.example")
        assert refused.value.response.status_code == 403
        for origin in (f"http://{addr}", "https://lab.example", None):
            with connect(url, origin=origin) as ws:  # same host, allow-listed, non-browser
                assert json.loads(ws.recv())["type"] == "error"


def test_a_viewer_that_stops_reading_is_dropped_not_buffered(tmp_path):
    runner = FakeRunner(auto=False)
    app = create_app(settings(tmp_path, viewer_backlog=16), runner=runner,
                     store=MemoryRunStore())
    with uvicorn_server(app) as addr:
        run = httpx.post(f"http://{addr}/api/runs", json=TINY).json()
        h = wait_until(lambda: runner.handles.get(run["id"]))
        url = f"ws://{addr}/ws/runs/{run['id']}"
        # max_queue=1: the stalled client stops reading its socket after one message
        with connect(url, max_queue=1, close_timeout=0.1) as stalled, connect(url) as healthy:
            channel = app.state.service.hub.get(run["id"])
            wait_until(lambda: len(channel.viewers) == 2)
            pad = "x" * 20_000
            got = 0
            for step in range(0, 1000, 8):  # ~20 MB: more than the socket buffers hold
                for s in range(step, step + 8):
                    h.emit("metrics", [{**fake_row(s), "pad": pad}])
                while got < step + 8:  # a reader that keeps up stays within its backlog
                    got += len(json.loads(healthy.recv(timeout=20)).get("rows", []))
            wait_until(lambda: len(channel.viewers) == 1, timeout=20)  # the stalled one left
            assert all(len(v.scalars) <= 16 for v in channel.viewers)
            h.exit(0)
            with pytest.raises(ConnectionClosed):
                while True:
                    stalled.recv(timeout=5)  # what it had buffered, then the drop
            assert stalled.close_code in (CLOSE_TOO_SLOW, 1006)
