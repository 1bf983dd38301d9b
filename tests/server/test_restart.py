"""A new app on the same SQLite data dir finds every run; active ones become interrupted."""

import json
import time

from fastapi.testclient import TestClient

from server.app import create_app
from server.store import RunRecord, SqliteRunStore

from .conftest import TINY, settings, wait_status, wait_until
from .fakes import FakeRunner, fake_arrays, fake_row


def sqlite_app(tmp_path, runner):
    return create_app(settings(tmp_path, store="sqlite", max_jobs=2, quota=5), runner=runner)


def test_runs_survive_a_restart_and_the_running_one_is_interrupted(tmp_path):
    runner = FakeRunner(auto=False)
    with TestClient(sqlite_app(tmp_path, runner)) as c:
        done = c.post("/api/runs", json=TINY).json()
        live = c.post("/api/runs", json=TINY).json()
        h_done = wait_until(lambda: runner.handles.get(done["id"]))
        h_live = wait_until(lambda: runner.handles.get(live["id"]))
        h_done.emit("metrics", [fake_row(s) for s in range(5)])
        h_done.emit("snapshot", (4, fake_arrays(4)))
        h_done.emit("finished", {"final": {"step": 4}})
        h_done.exit(0)
        h_live.emit("metrics", [fake_row(s) for s in range(3)])
        h_live.emit("snapshot", (2, fake_arrays(2)))
        wait_status(c, done["id"], "completed")
        wait_until(lambda: c.get(f"/api/runs/{live['id']}/metrics").json()["rows"])
    assert runner.shut_down

    with TestClient(sqlite_app(tmp_path, FakeRunner())) as c:
        runs = {r["id"]: r for r in c.get("/api/runs").json()}
        assert runs[done["id"]]["status"] == "completed"
        assert runs[done["id"]]["summary"] == {"final": {"step": 4}}
        assert runs[live["id"]]["status"] == "interrupted"
        assert "shut down" in runs[live["id"]]["error"]
        rows = c.get(f"/api/runs/{done['id']}/metrics").json()["rows"]
        assert [r["step"] for r in rows] == list(range(5))
        assert c.get(f"/api/runs/{live['id']}/snapshots").json() == [2]
        with c.websocket_connect(f"/ws/runs/{live['id']}") as ws:
            messages = []
            while (m := ws.receive())["type"] != "websocket.close":
                messages.append(json.loads(m["text"]) if m.get("text") else "snapshot")
        assert messages[0]["status"] == "interrupted"
        assert [r["step"] for r in messages[1]["rows"]] == [0, 1, 2]
        assert messages[-2] == "snapshot" and messages[-1]["status"] == "interrupted"
        # the restarted server keeps working
        new = c.post("/api/runs", json=TINY).json()
        assert wait_status(c, new["id"], "completed")["summary"]["final"]["step"] == 60


def test_runs_left_running_by_a_crash_are_marked_interrupted_at_start(tmp_path):
    store = SqliteRunStore(settings(tmp_path).database_path)
    store.create_run(RunRecord(id="crashed", status="running", config={"group": "Z7"},
                               created_at=time.time(), client="ip:1", started_at=time.time()))
    store.add_metrics("crashed", 3, [{"step": 0}])
    store.close()  # no terminal update: as if the server had been SIGKILLed
    with TestClient(sqlite_app(tmp_path, FakeRunner())) as c:
        run = c.get("/api/runs/crashed").json()
    assert run["status"] == "interrupted"
    assert run["error"] == "the server stopped while this run was active"
    assert run["last_seq"] == 3
