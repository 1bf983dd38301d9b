import time

import numpy as np
import pytest

from server.store import MemoryRunStore, RunRecord, SqliteRunStore, StageRecord


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryRunStore() if request.param == "memory" else SqliteRunStore(tmp_path / "r.sqlite")
    yield s
    s.close()


def record(run_id: str, status: str = "queued", t: float | None = None) -> RunRecord:
    return RunRecord(id=run_id, status=status, config={"group": "Z7"},
                     created_at=t or time.time(), client="ip:1")


def test_runs_round_trip_and_update(store):
    store.create_run(record("a", t=1.0))
    store.create_run(record("b", t=2.0))
    store.update_run("a", status="completed", summary={"final": {"test_acc": 1.0}},
                     finished_at=3.0, last_seq=9)
    a = store.get_run("a")
    assert (a.status, a.summary, a.finished_at, a.last_seq) == (
        "completed", {"final": {"test_acc": 1.0}}, 3.0, 9)
    assert [r.id for r in store.list_runs()] == ["b", "a"]
    assert store.get_run("zzz") is None
    with pytest.raises(ValueError, match="cannot change"):
        store.update_run("a", config={})
    assert store.delete_run("a") and not store.delete_run("a")


def test_streams_since_and_nearest_snapshot(store):
    store.create_run(record("a"))
    store.add_metrics("a", 1, [{"step": 0}, {"step": 1}])
    store.add_stage("a", StageRecord(2, 1, "independent", {"rule": "r"}))
    store.add_metrics("a", 3, [{"step": 2, "x": None}])
    for seq, step in [(4, 0), (5, 10), (6, 20)]:
        store.add_snapshot("a", seq, step, {"W": np.full((2, 2), step, np.float32)})
    assert [b.seq for b in store.metric_batches("a")] == [1, 3]
    assert store.metric_batches("a", since=1)[0].rows == [{"step": 2, "x": None}]
    assert store.stages("a")[0] == StageRecord(2, 1, "independent", {"rule": "r"})
    assert store.stages("a", since=2) == []
    assert store.snapshot_steps("a") == [0, 10, 20]
    snap = store.snapshot("a", step=15)
    assert (snap.seq, snap.step, float(snap.arrays["W"][0, 0])) == (5, 10, 10.0)
    assert store.snapshot("a").step == 20
    assert store.snapshot("b") is None
    store.delete_run("a")
    assert store.metric_batches("a") == [] and store.snapshot_steps("a") == []


def test_active_runs_become_interrupted_with_their_last_seq(store):
    store.create_run(record("run", status="running"))
    store.create_run(record("wait", status="queued"))
    store.create_run(record("done", status="completed"))
    store.add_metrics("run", 4, [{"step": 0}])
    store.add_snapshot("run", 5, 0, {"W": np.zeros(2, np.float32)})
    assert sorted(store.mark_interrupted("server stopped")) == ["run", "wait"]
    run = store.get_run("run")
    assert (run.status, run.error, run.last_seq) == ("interrupted", "server stopped", 5)
    assert store.get_run("done").status == "completed"


def test_sqlite_survives_reopen_and_uses_wal(tmp_path):
    path = tmp_path / "r.sqlite"
    s = SqliteRunStore(path)
    s.create_run(record("a"))
    s.add_metrics("a", 1, [{"step": 0, "loss": 0.5}])
    s.close()
    s = SqliteRunStore(path)
    assert s.metric_batches("a")[0].rows == [{"step": 0, "loss": 0.5}]
    mode = s._call(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
    s.close()
    assert mode == "wal"


def test_sqlite_reports_an_unusable_file(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match="not a database"):
        SqliteRunStore(path)
