"""RunStore additions for runs over time: lineage, children, and all-or-nothing imports."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from server.store import (
    MetricBatch,
    RunRecord,
    SqliteRunStore,
    StageRecord,
    StoredSnapshot,
)


@pytest.fixture
def store(store_factory):
    """Each test runs on every store: memory, SQLite and PostgreSQL (conftest.store_factory)."""
    return store_factory()


def record(run_id: str, lineage: dict | None = None, t: float | None = None) -> RunRecord:
    return RunRecord(id=run_id, status="completed", config={"group": "Z7"},
                     created_at=t or time.time(), client="ip:1", last_seq=9, lineage=lineage)


def fork_of(parent: str) -> dict:
    return {"parent": {"run_id": parent, "step": 40, "changes": {"lr": {"from": 1, "to": 2}}}}


def test_lineage_is_stored_and_children_are_found(store):
    store.create_run(record("p", t=1.0))
    store.create_run(record("b", fork_of("p"), t=3.0))
    store.create_run(record("a", fork_of("p"), t=2.0))
    store.create_run(record("grandchild", fork_of("a"), t=4.0))
    assert store.get_run("a").lineage == fork_of("p")
    assert store.get_run("p").lineage is None
    assert store.children("p") == ["a", "b"]  # oldest first
    assert store.children("a") == ["grandchild"]
    assert store.children("b") == [] and store.children("nope") == []


def _payload(run_id: str, bad_seq: bool = False):
    arrays = {"W": np.arange(6, dtype=np.float32).reshape(3, 2)}
    batches = [MetricBatch(1, [{"step": 0, "x": 0.5}]), MetricBatch(2, [{"step": 1}])]
    if bad_seq:
        batches.append(MetricBatch(2, [{"step": 2}]))  # the same seq twice: the insert fails
    return (record(run_id, {"imported_from": {"run_id": "elsewhere"}}), batches,
            [StageRecord(3, 1, "lazy", {"rule": "r"})],
            [StoredSnapshot(4, 0, arrays), StoredSnapshot(5, 1, arrays)])


def test_import_run_stores_everything_at_once(store):
    store.import_run(*_payload("imp"))
    assert store.get_run("imp").lineage == {"imported_from": {"run_id": "elsewhere"}}
    assert [b.seq for b in store.metric_batches("imp")] == [1, 2]
    assert [(s.step, s.stage) for s in store.stages("imp")] == [(1, "lazy")]
    assert store.snapshot_steps("imp") == [0, 1]
    np.testing.assert_array_equal(store.snapshot("imp", 1).arrays["W"],
                                  np.arange(6, dtype=np.float32).reshape(3, 2))


def test_a_failed_import_leaves_nothing_behind(store):
    store.create_run(record("other"))
    with pytest.raises(ValueError):
        store.import_run(*_payload("imp", bad_seq=True))
    assert store.get_run("imp") is None
    assert store.metric_batches("imp") == [] and store.stages("imp") == []
    assert store.snapshot_steps("imp") == []
    # the store keeps working, and a second import of the same run is refused whole too
    store.import_run(*_payload("imp"))
    with pytest.raises(ValueError):
        store.import_run(*_payload("imp"))
    assert [b.seq for b in store.metric_batches("imp")] == [1, 2]
    assert [r.id for r in store.list_runs()] and store.get_run("other") is not None


def test_sqlite_file_from_before_lineage_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, status TEXT NOT NULL, config TEXT NOT "
               "NULL, client TEXT NOT NULL, created_at REAL NOT NULL, max_steps_per_s REAL, "
               "started_at REAL, finished_at REAL, started TEXT, summary TEXT, error TEXT, "
               "last_seq INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO runs (id, status, config, client, created_at) "
               "VALUES ('old', 'completed', '{}', 'ip:1', 1.0)")
    db.commit()
    db.close()
    store = SqliteRunStore(path)
    try:
        assert store.get_run("old").lineage is None
        store.create_run(record("new", fork_of("old")))
        assert store.children("old") == ["new"]
    finally:
        store.close()
