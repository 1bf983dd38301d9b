"""Real worker processes (few: each start costs seconds): streaming, SIGKILL, cancel, limits."""

import json
import os
import signal
import time

from server.app import create_app
from server.jobs import LocalProcessRunner
from server.jobs.worker import EventSender
from server.store import MemoryRunStore

from .conftest import wait_status, wait_until


def real_client(make_client, start_method="forkserver", **changes):
    grace = changes.pop("cancel_grace", 5.0)
    return make_client(runner=LocalProcessRunner(start_method, grace_s=grace),
                       cancel_grace=grace, **changes)


def first_rows(client, run_id):
    return client.get(f"/api/runs/{run_id}/metrics").json()["rows"]


def test_worker_streams_live_and_a_sigkilled_worker_fails_only_its_run(make_client):
    c = real_client(make_client, max_jobs=2)
    victim = c.post("/api/runs", params={"max_steps_per_s": 20}, json={
        "group": "Z13", "hidden": 32, "steps": 200, "snapshot_every": 50}).json()
    other = c.post("/api/runs", json={"group": "Z11", "hidden": 16, "steps": 120,
                                      "snapshot_every": 40}).json()
    steps, snapshots, statuses = [], [], []
    with c.websocket_connect(f"/ws/runs/{other['id']}") as ws:
        while True:
            m = ws.receive()
            if m["type"] == "websocket.close":
                break
            if m.get("bytes") is not None:
                snapshots.append(m["bytes"])
                continue
            msg = json.loads(m["text"])
            if msg["type"] == "metrics":
                steps += [row["step"] for row in msg["rows"]]
                assert all(row["wall_time"] <= time.time() for row in msg["rows"])
            statuses.append(msg.get("status"))
    assert steps == list(range(121))  # every step, in order, no gap
    assert statuses[-1] == "completed" and snapshots
    wait_until(lambda: first_rows(c, victim["id"]), timeout=30)  # it is training
    pid = c.app.state.service.live[victim["id"]][0].handle.pid
    os.kill(pid, signal.SIGKILL)
    failed = wait_status(c, victim["id"], "failed")
    assert failed["error"] == "worker process was killed by SIGKILL"
    assert c.get("/api/health").json()["running"] == 0
    assert c.get(f"/api/runs/{other['id']}").json()["status"] == "completed"
    final = c.get(f"/api/runs/{other['id']}").json()["summary"]["final"]
    assert final["step"] == 120 and 0 <= final["test_acc"] <= 1


def test_cancel_is_a_cooperative_stop(make_client):
    c = real_client(make_client, start_method="spawn", max_jobs=1)
    run = c.post("/api/runs", params={"max_steps_per_s": 30}, json={
        "group": "Z7", "hidden": 16, "steps": 200, "snapshot_every": 20}).json()
    wait_until(lambda: first_rows(c, run["id"]), timeout=60)
    t0 = time.monotonic()
    c.post(f"/api/runs/{run['id']}/cancel")
    done = wait_status(c, run["id"], "cancelled")
    assert time.monotonic() - t0 < 4.0  # well inside the 5 s grace: the worker stopped itself
    assert done["summary"]["stopped"] is True and done["summary"]["final"]["step"] < 200


def test_cancel_terminates_a_worker_that_does_not_stop_within_grace(make_client):
    # 0.2 steps/s: after its first row the worker sleeps 5 s inside a step, blind to the flag
    c = real_client(make_client, max_jobs=1, cancel_grace=0.5)
    run = c.post("/api/runs", params={"max_steps_per_s": 0.2}, json={
        "group": "Z7", "hidden": 16, "steps": 50}).json()
    wait_until(lambda: first_rows(c, run["id"]), timeout=60)
    t0 = time.monotonic()
    c.post(f"/api/runs/{run['id']}/cancel")
    done = wait_status(c, run["id"], "cancelled", timeout=10)
    assert time.monotonic() - t0 < 4.0  # grace 0.5 s, then SIGTERM; not the 5 s step
    assert done["summary"] is None  # terminated: it never reached its summary


def test_event_sender_batches_rows_of_every_cell_by_count_and_time():
    from li2core.events import StepMetrics

    def row(step):
        return StepMetrics(step, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0)

    sent = []
    sender = EventSender(sent.append, flush_s=0.5, max_rows=3)
    for step in range(7):
        sender.event(step % 2, row(step))
    # the first row is not held back; then every third row, cells together
    assert [{c: [r["step"] for r in rows] for c, rows in m[1].items()} for m in sent] == [
        {0: [0]}, {1: [1, 3], 0: [2]}, {0: [4, 6], 1: [5]}]
    time.sleep(0.6)
    sender.steps(8)
    assert sent[-1] == ("progress", 8)
    sender.flush()
    assert len(sent) == 4  # nothing pending: no empty message


def test_create_app_defaults_to_a_local_runner(tmp_path):
    from .conftest import settings

    app = create_app(settings(tmp_path, max_jobs=None), store=MemoryRunStore())
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        assert isinstance(app.state.service.runner, LocalProcessRunner)
        health = c.get("/api/health").json()
    # capacity out of the box: a job per core, each on one torch thread
    assert (health["runner"], health["store"]) == ("local", "memory")
    assert health["max_jobs"] == os.cpu_count()
