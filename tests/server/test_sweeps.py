"""/api/sweeps and /ws/sweeps: 422s for bad specs, real (tiny) sweeps, cancel, stores."""

import contextlib
import time

import pytest
from fastapi.testclient import TestClient

from li2core.vocabulary import OUTCOMES
from server.app import create_app
from server.jobs import LocalProcessRunner
from server.jobs.sweep_service import LIVE_SECONDS
from server.store import MemoryRunStore

from .conftest import browser, settings, wait_until
from .fakes import FakeRunner

# the smoke preset: Z11, p = 0.2 memorises and p = 0.8 generalises within 300 steps
SMOKE = {"name": "smoke", "base": {"group": "Z11", "hidden": 32, "lr": 1e-2,
                                   "weight_decay": 1e-3, "steps": 300, "eval_every": 5,
                                   "snapshot_every": 100},
         "grid": {"train_fraction": [0.2, 0.8]}}
# two batches (two groups), slow enough to act in between with a step delay
TWO_BATCHES = {"name": "two", "base": {"hidden": 16, "steps": 60, "snapshot_every": 30},
               "zipped": {"group": ["Z5", "Z7"], "hidden": [16, 16]},
               "grid": {"seed": [0, 1]}}


@pytest.fixture
def sweep_client(tmp_path):
    """make(step_delay=0, **settings) -> TestClient whose sweeps run in a thread."""
    stack = contextlib.ExitStack()

    def make(step_delay: float = 0.0, **changes) -> TestClient:
        app = create_app(settings(tmp_path, **changes),
                         runner=FakeRunner(sweep_step_delay=step_delay), store=MemoryRunStore())
        return stack.enter_context(TestClient(app))

    with stack:
        yield make


def wait_sweep(client, sweep_id, *statuses, timeout=30.0) -> dict:
    def done():
        s = client.get(f"/api/sweeps/{sweep_id}").json()
        return s if s["status"] in statuses else None
    return wait_until(done, timeout)


@pytest.mark.parametrize("body,loc,needle", [
    ({"grid": {"steps": [1, 2]}}, ["body", "grid", "steps", "[key]"], "Input should be"),
    ({"grid": {"lr": []}}, ["body", "grid", "lr"], "at least 1 item"),
    ({"grid": {"lr": [1e-3, 5.0]}}, ["body", "grid", "lr"], "grid point (lr=5.0)"),
    ({"zipped": {"group": ["Z5", "Q3"], "hidden": [8, 8]}}, ["body", "zipped", "group"],
     "group=Q3"),
    ({"grid": {"seed": list(range(20)), "lr": [0.001 * (i + 1) for i in range(20)]}},
     ["body", "grid"], "exceeds the limit of 256"),
    ({"zipped": {"group": ["Z5", "Z7"], "hidden": [8]}}, ["body", "zipped"], "equal lengths"),
    ({"base": {"lr": 3.0}}, ["body", "base", "lr"], "less than or equal to 1"),
    ({"gird": {"lr": [0.1]}}, ["body", "gird"], "Extra inputs"),
])
def test_bad_sweep_specs_are_422s_naming_the_field(sweep_client, body, loc, needle):
    c = sweep_client()
    r = c.post("/api/sweeps", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any(d["loc"] == loc and needle in d["msg"] for d in detail), detail
    assert c.get("/api/sweeps").json() == []  # nothing was created


def test_body_must_be_an_object(sweep_client):
    assert sweep_client().post("/api/sweeps", json=[1, 2]).status_code == 422


def test_presets_are_listed_with_their_specs(sweep_client):
    presets = {p["name"]: p for p in sweep_client().get("/api/sweeps/presets").json()}
    assert presets["scaling-law"]["run_count"] == 52
    assert presets["smoke"]["spec"]["grid"]["train_fraction"] == [0.2, 0.8]


def test_a_sweep_stores_every_cell_as_a_run_and_measures_the_boundary(sweep_client):
    c = sweep_client()
    created = c.post("/api/sweeps", json=SMOKE)
    assert created.status_code == 201
    sweep = wait_sweep(c, created.json()["id"], "completed")
    assert [cell["outcome"] for cell in sweep["cells"]] == ["memorised", "generalised"]
    assert sweep["counts"] == {"generalised": 1, "memorised": 1, "still_learning": 0,
                               "not_fitted": 0, "diverged": 0}
    assert sweep["steps_done"] == sweep["steps_total"] == 600
    assert sweep["boundaries"][0]["p_star"] == pytest.approx(0.5)
    assert sweep["theory_c"] == 2.7482 and sweep["fit_c"] > 0
    for cell in sweep["cells"]:
        run = c.get(f"/api/runs/{cell['run_id']}").json()
        assert run["status"] == "completed" and run["config"]["train_fraction"] == \
            cell["point"]["train_fraction"]
        assert run["summary"]["outcome"] == cell["outcome"]
        rows = c.get(f"/api/runs/{cell['run_id']}/metrics").json()["rows"]
        assert [r["step"] for r in rows] == list(range(0, 301, 5))
        assert c.get(f"/api/runs/{cell['run_id']}/snapshots").json() == [0, 100, 200, 300]
    csv_text = c.get(f"/api/sweeps/{sweep['id']}/outcomes.csv").text.splitlines()
    assert csv_text[0].startswith("run,run_id,train_fraction,status,outcome")
    assert len(csv_text) == 3 and "memorised" in csv_text[1]
    listed = c.get("/api/sweeps").json()
    assert [s["id"] for s in listed] == [sweep["id"]] and "cells" not in listed[0]


def test_progress_is_streamed_over_the_websocket(sweep_client):
    c = sweep_client(step_delay=0.002)
    sweep_id = c.post("/api/sweeps", json=TWO_BATCHES).json()["id"]
    kinds, cells_done = [], set()
    with c.websocket_connect(f"/ws/sweeps/{sweep_id}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["sweep"]["run_count"] == 4
        while True:
            msg = ws.receive_json()
            kinds.append(msg["type"])
            if msg["type"] == "cell" and msg["cell"]["status"] == "completed":
                cells_done.add(msg["cell"]["index"])
            if msg["type"] == "finished":
                assert msg["sweep"]["status"] == "completed"
                break
    assert "progress" in kinds and cells_done == {0, 1, 2, 3}
    # an ended sweep: hello and finished at once
    with c.websocket_connect(f"/ws/sweeps/{sweep_id}") as ws:
        assert ws.receive_json()["type"] == "hello"
        assert ws.receive_json()["sweep"]["status"] == "completed"


def test_running_cells_stream_their_live_accuracy_throttled(sweep_client):
    c = sweep_client(step_delay=0.02)  # each batch ≥ 1.2 s: several throttle windows
    spec = {**TWO_BATCHES, "base": {**TWO_BATCHES["base"], "eval_every": 2}}
    sweep_id = c.post("/api/sweeps", json=spec).json()["id"]
    live_steps: dict[int, list[int]] = {i: [] for i in range(4)}
    done: set[int] = set()
    lives, start = 0, time.monotonic()
    with c.websocket_connect(f"/ws/sweeps/{sweep_id}") as ws:
        assert "live" in ws.receive_json()["sweep"]  # an active sweep's hello carries it too
        while (msg := ws.receive_json())["type"] != "finished":
            if msg["type"] == "live":
                lives += 1
                for cell in msg["cells"]:
                    i = cell["index"]
                    assert i not in done  # a finished cell shows its outcome, not live rows
                    assert 0 <= cell["test_acc"] <= 1 and 0 <= cell["train_acc"] <= 1
                    live_steps[i].append(cell["step"])
            elif msg["type"] == "cell" and msg["cell"]["status"] == "completed":
                done.add(msg["cell"]["index"])
    elapsed = time.monotonic() - start
    assert done == {0, 1, 2, 3}
    for steps in live_steps.values():  # every cell was seen training, step by step
        assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] > steps[0]
    # 4 cells x 31 rows each, yet at most one live message per LIVE_SECONDS
    assert lives <= elapsed / LIVE_SECONDS + 2
    assert c.get("/api/sweeps").json()[0].get("live") is None  # the list leaves it out


def test_cancel_stops_every_run_and_keeps_the_finished_ones(sweep_client):
    c = sweep_client(step_delay=0.02)  # each batch takes ≥ 1.2 s: time to cancel mid-way
    sweep_id = c.post("/api/sweeps", json=TWO_BATCHES).json()["id"]

    def second_batch_running():
        cells = c.get(f"/api/sweeps/{sweep_id}").json()["cells"]
        return cells if cells[2]["status"] == "running" else None

    wait_until(second_batch_running, timeout=30)
    assert c.post(f"/api/sweeps/{sweep_id}/cancel").status_code == 200
    sweep = wait_sweep(c, sweep_id, "cancelled")
    statuses = [cell["status"] for cell in sweep["cells"]]
    assert statuses == ["completed", "completed", "cancelled", "cancelled"]
    assert all(cell["outcome"] for cell in sweep["cells"][:2])
    assert [cell["outcome"] for cell in sweep["cells"][2:]] == [None, None]
    for cell, status in zip(sweep["cells"], statuses, strict=True):
        assert c.get(f"/api/runs/{cell['run_id']}").json()["status"] == status
    r = c.post(f"/api/sweeps/{sweep_id}/cancel")
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]


def test_quota_queue_and_cancelling_a_queued_sweep(sweep_client):
    c = sweep_client(step_delay=0.01)
    alice, bob = browser(c, "alice"), browser(c, "bob")
    a = c.post("/api/sweeps", json=TWO_BATCHES, headers=alice).json()
    r = c.post("/api/sweeps", json=SMOKE, headers=alice)
    assert r.status_code == 429 and "quota" in r.json()["detail"]
    b = c.post("/api/sweeps", json=SMOKE, headers=bob).json()
    assert (b["status"], b["queue_position"]) == ("queued", 1)
    cancelled = c.post(f"/api/sweeps/{b['id']}/cancel", headers=bob).json()
    assert cancelled["status"] == "cancelled"
    assert {cell["status"] for cell in cancelled["cells"]} == {"cancelled"}
    for cell in cancelled["cells"]:
        assert c.get(f"/api/runs/{cell['run_id']}").json()["status"] == "cancelled"
    c.post(f"/api/sweeps/{a['id']}/cancel", headers=alice)
    wait_sweep(c, a["id"], "cancelled")


def test_unknown_sweep_is_404(sweep_client):
    c = sweep_client()
    assert c.get("/api/sweeps/nope").status_code == 404
    assert c.post("/api/sweeps/nope/cancel").status_code == 404
    assert c.get("/api/sweeps/nope/outcomes.csv").status_code == 404


def test_instructor_token_guards_sweep_commands(sweep_client):
    c = sweep_client(instructor_token="a-long-enough-token")
    assert c.post("/api/sweeps", json=SMOKE).status_code == 401
    r = c.post("/api/sweeps", json=SMOKE, headers={"X-Instructor-Token": "a-long-enough-token"})
    assert r.status_code == 201


def test_the_process_runner_streams_a_sweep():
    runner = LocalProcessRunner("spawn")
    job = {"kind": "sweep", "spec": {
        "base": {"group": "Z5", "hidden": 8, "steps": 20, "snapshot_every": 10},
        "grid": {"seed": [0, 1]}}}
    messages = list(runner.events(runner.start(job, job_id="t")))
    kinds = [m.kind for m in messages]
    # 0, or None when the process was still tearing down as its pipe closed (a loaded machine)
    assert kinds[-1] == "exit" and messages[-1].data["exitcode"] in (0, None)
    assert kinds.count("started") == kinds.count("finished") == 2
    rows = {i: 0 for i in range(2)}
    for m in messages:
        if m.kind == "metrics":
            for i, batch in m.data.items():
                rows[i] += len(batch)
    assert rows == {0: 21, 1: 21}
    snaps = [m.data[:2] for m in messages if m.kind == "snapshot"]
    assert sorted(snaps) == [(0, 0), (0, 10), (0, 20), (1, 0), (1, 10), (1, 20)]
    finished = [m.data[1] for m in messages if m.kind == "finished"]
    assert all(f["outcome"] in OUTCOMES for f in finished)
