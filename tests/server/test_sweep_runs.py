"""A sweep's cells as runs: live on /ws/runs/{cell}, hidden from GET /api/runs unless asked
for, cancel/delete pointing to the sweep, and a running sweep holding one of the job slots."""

import contextlib
import json

import pytest
from fastapi.testclient import TestClient

from li2core.vocabulary import OUTCOMES
from server.app import create_app
from server.protocol import decode_snapshot
from server.store import MemoryRunStore, RunRecord

from .conftest import TINY, settings, wait_status, wait_until
from .fakes import FakeRunner
from .test_sweeps import SMOKE, TWO_BATCHES, wait_sweep


@pytest.fixture
def make(tmp_path):
    """make(runner=FakeRunner(), step_delay=0, **settings) -> TestClient; sweeps in a thread."""
    stack = contextlib.ExitStack()

    def build(runner=None, step_delay: float = 0.0, **changes) -> TestClient:
        if runner is None:
            runner = FakeRunner()
        runner.sweeps.step_delay = step_delay
        app = create_app(settings(tmp_path, **changes), runner=runner, store=MemoryRunStore())
        return stack.enter_context(TestClient(app))

    with stack:
        yield build


def read_all(ws) -> list:
    """Every message until the server closes: dicts for text, snapshot headers for binary."""
    out = []
    while True:
        m = ws.receive()
        if m["type"] == "websocket.close":
            return out
        out.append(json.loads(m["text"]) if m.get("text") is not None
                   else decode_snapshot(m["bytes"])[0])


def texts(messages, kind):
    return [m for m in messages if m["type"] == kind]


def test_a_cell_streams_live_to_the_run_websocket(make):
    c = make(step_delay=0.003)  # each batch of two runs takes ≥ 0.2 s
    sweep = c.post("/api/sweeps", json=TWO_BATCHES).json()
    cell = sweep["cells"][3]  # second batch: still queued when we connect
    with c.websocket_connect(f"/ws/runs/{cell['run_id']}") as ws:
        hello = json.loads(ws.receive_text())
        assert hello["type"] == "hello" and hello["status"] == "queued"
        assert hello["config"]["group"] == "Z7" and hello["config"]["seed"] == 1
        messages = read_all(ws)
    statuses = texts(messages, "status")
    assert [m["status"] for m in statuses] == ["running", "completed"]
    assert statuses[0]["started"]["config"]["seed"] == 1  # the RunStarted event, live
    rows = [r for m in texts(messages, "metrics") for r in m["rows"]]
    assert [r["step"] for r in rows] == list(range(61))  # every row, none twice
    assert len(texts(messages, "metrics")) > 1  # rows arrived over time, not at the end
    assert [h["step"] for h in messages if h["type"] == "snapshot"][-1] == 60
    finished = [m for m in messages if m["type"] != "snapshot"][-1]  # a snapshot may follow
    assert finished["type"] == "finished" and finished["status"] == "completed"
    assert finished["summary"]["outcome"] in OUTCOMES
    seqs = [m["seq"] for m in messages if m["type"] != "snapshot"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # the store holds the same seq numbers: a viewer resuming after the end gets the rest
    run = c.get(f"/api/runs/{cell['run_id']}").json()
    assert run["status"] == "completed" and run["last_seq"] == finished["seq"]
    assert run["sweep"] == {"id": sweep["id"], "index": 3, "point": cell["point"]}
    mid = texts(messages, "metrics")[1]["seq"]
    with c.websocket_connect(f"/ws/runs/{cell['run_id']}?since={mid}") as ws:
        again = read_all(ws)
    assert [m["seq"] for m in texts(again, "metrics")] == \
        [m["seq"] for m in texts(messages, "metrics") if m["seq"] > mid]
    assert texts(again, "finished")[0]["seq"] == finished["seq"]
    wait_sweep(c, sweep["id"], "completed")


def test_a_cell_of_a_cancelled_sweep_ends_cancelled_for_its_viewer(make):
    c = make(step_delay=0.02)
    sweep = c.post("/api/sweeps", json=TWO_BATCHES).json()
    run_id = sweep["cells"][0]["run_id"]
    wait_status(c, run_id, "running", timeout=30)
    with c.websocket_connect(f"/ws/runs/{run_id}") as ws:
        assert json.loads(ws.receive_text())["status"] == "running"
        wait_until(lambda: c.get(f"/api/runs/{run_id}/metrics").json()["rows"], timeout=30)
        c.post(f"/api/sweeps/{sweep['id']}/cancel")
        messages = read_all(ws)
    assert texts(messages, "finished")[0]["status"] == "cancelled"
    assert texts(messages, "metrics")  # rows kept arriving until the stop


def test_runs_list_leaves_out_sweep_cells_unless_asked(make):
    c = make()
    sweep = wait_sweep(c, c.post("/api/sweeps", json=SMOKE).json()["id"], "completed")
    run = c.post("/api/runs", json=TINY).json()
    cells = [cell["run_id"] for cell in sweep["cells"]]
    assert [r["id"] for r in c.get("/api/runs").json()] == [run["id"]]
    everything = c.get("/api/runs", params={"include_sweeps": "true"}).json()
    assert {r["id"] for r in everything} == {run["id"], *cells}
    only = c.get("/api/runs", params={"sweep": sweep["id"]}).json()
    assert sorted(r["id"] for r in only) == sorted(cells)
    assert {r["sweep"]["id"] for r in only} == {sweep["id"]}
    assert c.get("/api/runs", params={"sweep": "nope"}).json() == []
    assert c.get("/api/runs", params={"include_sweeps": "maybe"}).status_code == 422


def test_stores_filter_sweep_cells(store_factory):
    store = store_factory()
    for i, lineage in enumerate([None, {"sweep": {"id": "s1", "index": 0, "point": {}}},
                                 {"parent": {"run_id": "a", "step": 1, "changes": {}}},
                                 {"sweep": {"id": "s2", "index": 0, "point": {}}}]):
        store.create_run(RunRecord(f"r{i}", "completed", {}, float(i), lineage=lineage))
    assert [r.id for r in store.list_runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.id for r in store.list_runs(include_sweeps=False)] == ["r2", "r0"]
    assert [r.id for r in store.list_runs(1, include_sweeps=False)] == ["r2"]
    assert [r.id for r in store.list_runs(sweep="s1")] == ["r1"]


def test_cancelling_or_deleting_a_cell_points_to_the_sweep(make):
    c = make(step_delay=0.01)
    sweep = c.post("/api/sweeps", json=TWO_BATCHES).json()
    run_id = sweep["cells"][0]["run_id"]
    for method, path in (("POST", f"/api/runs/{run_id}/cancel"), ("DELETE", f"/api/runs/{run_id}")):
        r = c.request(method, path)
        assert r.status_code == 409, r.text
        assert f"cancel the whole sweep with POST /api/sweeps/{sweep['id']}/cancel" in \
            r.json()["detail"]
    assert c.get(f"/api/runs/{run_id}").json()["status"] in ("queued", "running")
    c.post(f"/api/sweeps/{sweep['id']}/cancel")
    wait_sweep(c, sweep["id"], "cancelled")
    r = c.post(f"/api/runs/{run_id}/cancel")
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]


def test_a_sweep_takes_a_job_slot_in_turn_with_runs(make):
    runner = FakeRunner(auto=False)
    c = make(runner=runner, step_delay=0.005, max_jobs=1)  # the sweep runs for ≥ 1.5 s
    first = c.post("/api/runs", json=TINY).json()
    assert first["status"] == "running"
    sweep = c.post("/api/sweeps", json=SMOKE).json()
    assert (sweep["status"], sweep["queue_position"]) == ("queued", 1)
    cell = c.get(f"/api/runs/{sweep['cells'][0]['run_id']}").json()
    assert (cell["status"], cell["queue_position"]) == ("queued", 1)
    second = c.post("/api/runs", json=TINY).json()
    assert (second["status"], second["queue_position"]) == ("queued", 2)  # behind the sweep
    health = c.get("/api/health").json()
    assert (health["running"], health["queued"]) == (1, 2)
    c.post(f"/api/runs/{first['id']}/cancel")
    wait_sweep(c, sweep["id"], "running")  # the sweep got the slot, not the later run
    waiting = c.get(f"/api/runs/{second['id']}").json()
    assert (waiting["status"], waiting["queue_position"]) == ("queued", 1)
    assert second["id"] not in runner.started
    wait_sweep(c, sweep["id"], "completed")
    wait_status(c, second["id"], "running")  # the slot went back to the run queue
    assert c.get("/api/health").json()["running"] == 1
