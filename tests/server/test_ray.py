"""The Ray runner against a real local Ray (one per test session) and a real PostgreSQL: runs
and sweeps stream to the end, cancel goes through Ray, a killed Ray worker fails its run."""

from __future__ import annotations

import json
import os
import signal

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.store import PostgresRunStore

from .conftest import settings, wait_status, wait_until

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_runner():
    from server.jobs.ray_runner import RayRunner

    runner = RayRunner(None, grace_s=2.0, num_cpus=2)  # a local Ray: ~6 s, once
    yield runner
    ray.shutdown()


@pytest.fixture
def ray_client(ray_runner, postgres, tmp_path):
    """make() -> TestClient on the Ray runner and a fresh PostgreSQL database; make() again
    gives a restarted server on the same database."""
    url = postgres.new_database()
    clients = []

    def make() -> TestClient:
        for old in clients:
            old.__exit__(None, None, None)
        store = PostgresRunStore(url)
        app = create_app(settings(tmp_path, runner="ray", database_url=url, max_jobs=2),
                         runner=ray_runner, store=store)
        client = TestClient(app).__enter__()
        clients[:] = [client]
        client.stores = [store]
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def rows(client, run_id):
    return client.get(f"/api/runs/{run_id}/metrics").json()["rows"]


def test_a_run_streams_every_row_into_postgresql_and_survives_a_restart(ray_client):
    c = ray_client()
    health = c.get("/api/health").json()
    assert (health["runner"], health["store"], health["max_jobs"]) == ("ray", "postgresql", 2)
    run = c.post("/api/runs", json={"group": "Z11", "hidden": 16, "steps": 80,
                                    "snapshot_every": 40}).json()
    steps = []
    with c.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        while True:
            m = ws.receive()
            if m["type"] == "websocket.close":
                break
            if m.get("text") and '"metrics"' in m["text"]:
                steps += [r["step"] for r in json.loads(m["text"])["rows"]]
    assert steps == list(range(81))  # every row, in order, to the end
    done = wait_status(c, run["id"], "completed", timeout=60)
    assert done["summary"]["final"]["step"] == 80
    c.stores[0].flush()
    batches = c.stores[0]._call(lambda db: db.all(
        "SELECT rows FROM metrics WHERE run_id = ? ORDER BY seq", (run["id"],)))
    assert [r["step"] for (text,) in batches for r in json.loads(text)] == list(range(81))
    c = ray_client()  # a restarted server on the same database
    listed = {r["id"]: r for r in c.get("/api/runs").json()}
    assert listed[run["id"]]["status"] == "completed"
    assert [r["step"] for r in rows(c, run["id"])] == list(range(81))


@pytest.mark.slow  # two more Ray workers: ~15 s
def test_cancel_through_ray_and_a_killed_worker_fails_its_run(ray_client, ray_runner):
    c = ray_client()
    slow = {"group": "Z7", "hidden": 16, "steps": 200}
    victim = c.post("/api/runs", params={"max_steps_per_s": 5}, json=slow).json()
    other = c.post("/api/runs", params={"max_steps_per_s": 5}, json=slow).json()
    wait_until(lambda: rows(c, victim["id"]) and rows(c, other["id"]), timeout=60)
    assert c.get(f"/api/runs/{victim['id']}").json()["status"] == "running"
    job, _ = c.app.state.service.live[victim["id"]]
    os.kill(job.handle.pid, signal.SIGKILL)
    failed = wait_status(c, victim["id"], "failed", timeout=30)
    assert failed["error"].startswith("Ray worker failed")
    c.post(f"/api/runs/{other['id']}/cancel")
    cancelled = wait_status(c, other["id"], "cancelled", timeout=30)
    assert cancelled["finished_at"] and 0 < len(rows(c, other["id"])) < 201
    assert c.get("/api/health").json()["running"] == 0


@pytest.mark.slow
def test_a_sweep_runs_through_ray(ray_client):
    c = ray_client()
    sweep = c.post("/api/sweeps", json={
        "name": "ray", "base": {"group": "Z5", "hidden": 8, "steps": 40, "snapshot_every": 20},
        "grid": {"seed": [0, 1], "train_fraction": [0.3, 0.8]}}).json()
    def done():
        s = c.get(f"/api/sweeps/{sweep['id']}").json()
        return s if s["status"] not in ("queued", "running") else None

    view = wait_until(done, timeout=120)
    assert view["status"] == "completed", view["error"]
    assert [cell["status"] for cell in view["cells"]] == ["completed"] * 4
    assert all(cell["outcome"] for cell in view["cells"])
    cell = view["cells"][3]["run_id"]
    assert [r["step"] for r in rows(c, cell)] == list(range(41))


@pytest.mark.slow  # its own Ray (~6 s) and two server starts
def test_li2_serve_runner_ray_database_postgresql(postgres, tmp_path):
    """The command line end to end: `li2 serve --runner ray --database postgresql://…`."""
    import subprocess
    import sys

    import httpx

    from .test_cli import free_port

    url, port = postgres.new_database(), free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "li2cli", "serve", "--runner", "ray", "--database", url,
           "--port", str(port), "--data-dir", str(tmp_path), "--log-level", "warning"]

    def serve() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                start_new_session=True)

        def healthy():
            assert proc.poll() is None, "li2 serve exited during start-up"
            try:
                return httpx.get(f"{base}/api/health", timeout=2).json()
            except httpx.TransportError:
                return None
        health = wait_until(healthy, timeout=120, interval=0.5)
        assert (health["runner"], health["store"]) == ("ray", "postgresql")
        assert health["max_jobs"] >= os.cpu_count()  # the local Ray's CPUs: every core
        return proc

    def stop(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    proc = serve()
    try:
        run = httpx.post(f"{base}/api/runs", json={"group": "Z11", "hidden": 16, "steps": 60,
                                                   "snapshot_every": 20}).json()

        def ended():
            view = httpx.get(f"{base}/api/runs/{run['id']}").json()
            return view if view["status"] not in ("queued", "running") else None
        assert wait_until(ended, timeout=120, interval=0.5)["status"] == "completed"
    finally:
        stop(proc)
    proc = serve()  # a new server on the same database
    try:
        listed = {r["id"]: r for r in httpx.get(f"{base}/api/runs").json()}
        assert listed[run["id"]]["status"] == "completed"
        rows = httpx.get(f"{base}/api/runs/{run['id']}/metrics").json()["rows"]
        assert [r["step"] for r in rows] == list(range(61))
    finally:
        stop(proc)
