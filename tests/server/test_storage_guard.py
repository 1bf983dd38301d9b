"""Storage that never lies: a filled data disk fails the run naming storage, health degrades,
the store stays readable; the per-run snapshot budget thins snapshots (docs/security.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.store import MemoryRunStore, RunRecord, SqliteRunStore
from server.store.guarded import GuardedStore

from .conftest import TINY, settings, wait_status, wait_until
from .fakes import FakeRunner


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MB tmpfs for the data directory (needs root's mount)."""
    path = tmp_path / "disk"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 20 MB tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_run_that_fills_the_disk_fails_naming_storage(small_disk):
    runner = FakeRunner(auto=False)
    store = SqliteRunStore(small_disk / "runs.sqlite")
    try:
        app = create_app(settings(small_disk, store="sqlite"), runner=runner, store=store)
        with TestClient(app) as c:
            run = c.post("/api/runs", json=TINY).json()
            wait_until(lambda: run["id"] in runner.handles)
            handle = runner.handles[run["id"]]
            rng = np.random.default_rng(0)
            for step in range(60):  # 1 MB a snapshot, 60 MB offered to a 20 MB disk
                handle.emit("snapshot", (step, {"W": rng.random((512, 512), np.float32)}))
            ended = wait_status(c, run["id"], "failed", "completed", timeout=30)
            assert ended["status"] == "failed" and ended["error"].startswith("storage:")
            assert "full" in ended["error"]
            health = c.get("/api/health").json()
            assert health["status"] == "degraded" and health["storage"]["ok"] is False
            assert "full" in health["storage"]["last_write_error"]
            # what was stored is still readable
            assert c.get(f"/api/runs/{run['id']}/snapshots").json()
            assert c.get(f"/api/runs/{run['id']}/snapshot").status_code == 200
            # something else fills the disk: new runs are refused with a reason, not a 500
            free = shutil.disk_usage(small_disk).free
            (small_disk / "filler").write_bytes(b"\0" * (free - (1 << 20)))
            r = c.post("/api/runs", json=TINY)
            assert r.status_code == 503 and "disk is full" in r.json()["detail"]
    finally:
        store.close()


def _record(run_id: str) -> RunRecord:
    return RunRecord(id=run_id, status="running", config={}, created_at=0.0)


def test_the_snapshot_budget_thins_and_keeps_the_last():
    store = GuardedStore(MemoryRunStore(), data_dir=None, reserve_bytes=0,
                         snapshot_budget=100 * 4096)
    store.create_run(_record("r"))
    for step in range(1000):  # 4 kB each: 4 MB offered against a 400 kB budget
        store.add_snapshot("r", step + 1, step, {"W": np.zeros(1024, np.float32)})
    store.update_run("r", status="completed", summary={"final": {}})
    steps = store.snapshot_steps("r")
    assert len(steps) * 4096 <= 100 * 4096 + 4096
    assert steps[0] == 0 and steps[-1] == 999  # spans the run, the last always kept
    assert len(steps) > 50
    gaps = np.diff(steps)
    assert gaps[0] == 1 and gaps.max() > 1  # thinned later, not at the start
    summary = store.get_run("r").summary
    assert summary["storage"]["snapshots_made"] == 1000
    assert summary["storage"]["snapshots_kept"] == len(steps)


def test_a_write_the_store_reports_lost_fails_the_run(tmp_path):
    sqlite = SqliteRunStore(tmp_path / "runs.sqlite")
    store = GuardedStore(sqlite, data_dir=tmp_path, reserve_bytes=0, snapshot_budget=1 << 30)
    failed = []
    store.on_failure = lambda run_id, reason: failed.append((run_id, reason))
    run_id = uuid.uuid4().hex[:12]
    store.create_run(_record(run_id))
    store.add_metrics(run_id, 1, [{"step": 0}])
    sqlite.write_failed(OSError(28, "No space left on device"))  # as the writer thread does
    assert failed and failed[0][0] == run_id and "storage" in failed[0][1]
    assert store.health()["ok"] is False
    assert "No space left" in store.health()["last_write_error"]
    store.update_run(run_id, status="completed")
    sqlite.flush()
    record = sqlite.get_run(run_id)
    assert record.status == "failed" and record.error.startswith("storage:")
    sqlite.close()


def test_a_corrupt_database_is_named_in_one_line(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    done = subprocess.run([sys.executable, "-m", "li2cli", "serve", "--data-dir", str(tmp_path),
                           "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "mv " in lines[0]


def test_the_sql_writer_reports_a_lost_write_on_both_dialects(store_factory):
    if store_factory.kind == "memory":
        pytest.skip("the memory store writes synchronously: nothing is lost after the call")
    sql = store_factory()
    store = GuardedStore(sql, data_dir=None, reserve_bytes=0, snapshot_budget=1 << 30)
    failed = []
    store.on_failure = lambda run_id, reason: failed.append((run_id, reason))
    run_id = uuid.uuid4().hex[:12]
    store.create_run(_record(run_id))
    store.add_metrics(run_id, 1, [{"step": 0}])
    # a fire-and-forget task failing inside the writer thread, as a full disk would
    sql._send(lambda db: db.execute("INSERT INTO no_such_table VALUES (1)"))
    sql.flush()
    wait_until(lambda: failed)
    assert failed[0][0] == run_id and failed[0][1].startswith("storage:")
    assert store.health()["ok"] is False and "no_such_table" in store.health()["last_write_error"]
    store.update_run(run_id, status="completed")
    sql.flush()
    assert sql.get_run(run_id).status == "failed"


def test_a_sweep_cell_that_lost_data_fails_its_sweep(tmp_path):
    app = create_app(settings(tmp_path), runner=FakeRunner(sweep_step_delay=0.05),
                     store=MemoryRunStore())
    spec = {"name": "lossy", "base": {"group": "Z5", "hidden": 16, "steps": 400},
            "grid": {"seed": [0, 1]}}
    with TestClient(app) as c:
        sweep = c.post("/api/sweeps", json=spec).json()
        cell = wait_until(lambda: c.get(f"/api/sweeps/{sweep['id']}").json()["cells"][0]
                          .get("run_id"))
        wait_until(lambda: c.get(f"/api/sweeps/{sweep['id']}").json()["status"] == "running")
        # what GuardedStore does (from the writer thread) when a cell's row cannot be stored
        app.state.service.store.on_failure(cell, "storage: a write to the run store failed")
        done = wait_until(lambda: (s := c.get(f"/api/sweeps/{sweep['id']}").json())["status"]
                          not in ("queued", "running") and s, timeout=30)
        assert done["status"] == "failed", done["status"]
        assert "storage" in (done.get("error") or "")
