import time

import numpy as np
import pytest

from server.store import RunRecord, SqliteRunStore, StageRecord, SweepRecord


@pytest.fixture
def store(store_factory):
    """Each test runs on every store: memory, SQLite and PostgreSQL (conftest.store_factory)."""
    return store_factory()


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


def test_sweeps_round_trip_and_a_restart_interrupts_the_active_one(store_factory):
    s = store_factory()
    cells = [{"index": 0, "status": "completed", "outcome": "memorised"},
             {"index": 1, "status": "running", "outcome": None}]
    s.put_sweep(SweepRecord("a", "queued", "x", {"grid": {}}, 1.0, cells=cells))
    s.put_sweep(SweepRecord("a", "running", "x", {"grid": {}}, 1.0, cells=cells))  # replaces
    s.put_sweep(SweepRecord("b", "completed", "y", {}, 2.0))
    assert [r.id for r in s.list_sweeps()] == ["b", "a"]
    assert [r.id for r in s.list_sweeps(1)] == ["b"]
    s.flush()
    if store_factory.kind != "memory":
        s.close()
        s = store_factory()  # a new server on the same database
    assert s.mark_sweeps_interrupted("server stopped") == ["a"]
    a = s.get_sweep("a")
    assert a.status == "interrupted" and a.error == "server stopped"
    assert [cell["status"] for cell in a.cells] == ["completed", "interrupted"]
    assert s.get_sweep("nope") is None


def test_acknowledged_writes_survive_a_reopen(store_factory):
    """What the store accepted before close() is there for the next server: rows, stages,
    snapshots and the runs left active (then marked interrupted with their last seq)."""
    if store_factory.kind == "memory":
        pytest.skip("nothing survives the process by design")
    s = store_factory()
    s.create_run(record("a", status="running"))
    for seq in range(1, 41):
        s.add_metrics("a", seq, [{"step": seq, "loss": 1 / seq}])
    s.add_stage("a", StageRecord(41, 40, "independent", {"rule": "r"}))
    s.add_snapshot("a", 42, 40, {"W": np.arange(6, dtype=np.float32).reshape(2, 3)})
    s.close()
    s = store_factory()
    assert [b.seq for b in s.metric_batches("a")] == list(range(1, 41))
    assert s.stages("a")[0].stage == "independent"
    assert s.snapshot("a").arrays["W"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert s.mark_interrupted("restarted") == ["a"]
    assert (s.get_run("a").status, s.get_run("a").last_seq) == ("interrupted", 42)


def test_postgresql_schema_is_created_once_and_versioned(store_factory):
    if store_factory.kind != "postgresql":
        pytest.skip("PostgreSQL only")
    s = store_factory()
    s.close()
    s = store_factory()  # the second start finds the schema and changes nothing
    versions = s._call(lambda db: db.all("SELECT version FROM schema_version ORDER BY 1"))
    assert [v[0] for v in versions] == [1, 2, 3, 4]


def test_sweeps_of_an_older_server_are_adopted_from_their_own_file(tmp_path):
    import json
    import sqlite3

    old = sqlite3.connect(tmp_path / "sweeps.sqlite")
    old.execute("CREATE TABLE sweeps (id TEXT PRIMARY KEY, created_at REAL NOT NULL, "
                "status TEXT NOT NULL, doc TEXT NOT NULL)")
    doc = {"id": "old", "status": "completed", "name": "n", "spec": {}, "created_at": 1.0}
    old.execute("INSERT INTO sweeps VALUES ('old', 1.0, 'completed', ?)", (json.dumps(doc),))
    old.commit()
    old.close()
    s = SqliteRunStore(tmp_path / "runs.sqlite")
    assert [r.id for r in s.list_sweeps()] == ["old"]
    s.put_sweep(SweepRecord("new", "completed", "m", {}, 2.0))
    s.close()
    s = SqliteRunStore(tmp_path / "runs.sqlite")  # adopted once, not again
    assert [r.id for r in s.list_sweeps()] == ["new", "old"]
    s.close()


def test_stages_stored_before_depth_read_as_layer_1(tmp_path):
    import sqlite3

    from server.store.dialects import MIGRATIONS

    old = sqlite3.connect(tmp_path / "runs.sqlite")  # a database of the schema before depth
    old.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:3], 1):
        for statement in statements:
            old.execute(statement.format(float="DOUBLE PRECISION", blob="BLOB"))
        old.execute("INSERT INTO schema_version VALUES (?)", (version,))
    old.execute("INSERT INTO stages VALUES ('r', 1, 10, 'independent', '{}')")
    old.commit()
    old.close()
    s = SqliteRunStore(tmp_path / "runs.sqlite")
    (rec,) = s.stages("r")
    assert (rec.step, rec.stage, rec.layer) == (10, "independent", 1)
    s.add_stage("r", StageRecord(2, 20, "interactive", {}, layer=2))
    assert [r.layer for r in s.stages("r")] == [1, 2]
    s.close()


def test_every_store_keeps_the_layer_of_a_stage(store_factory):
    s = store_factory()
    s.create_run(RunRecord("d", "running", {}, 1.0))
    s.add_stage("d", StageRecord(1, 0, "lazy", {"rule": "x"}, layer=1))
    s.add_stage("d", StageRecord(2, 0, "lazy", {"rule": "x"}, layer=2))
    s.add_stage("d", StageRecord(3, 5, "independent", {}, layer=3))
    assert [(r.seq, r.stage, r.layer) for r in s.stages("d")] == [(1, "lazy", 1), (2, "lazy", 2),
                                                                   (3, "independent", 3)]
