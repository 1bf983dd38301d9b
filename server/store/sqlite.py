"""SQLite RunStore: WAL, one connection owned by one thread, so the server has a single writer.

Every call is a task on that thread's queue, so reads see all earlier writes. Updates and
streaming writes return at once (never blocking the event loop); tasks that arrive together
share one commit.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import queue
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from ..protocol import to_json
from .base import ACTIVE, MetricBatch, RunRecord, StageRecord, StoredSnapshot, check_update

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, config TEXT NOT NULL, client TEXT NOT NULL,
    created_at REAL NOT NULL, max_steps_per_s REAL, started_at REAL, finished_at REAL,
    started TEXT, summary TEXT, error TEXT, last_seq INTEGER NOT NULL DEFAULT 0, lineage TEXT);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, rows TEXT NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS stages (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, step INTEGER NOT NULL, stage TEXT NOT NULL,
    evidence TEXT NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, seq INTEGER NOT NULL, arrays BLOB NOT NULL,
    PRIMARY KEY (run_id, step));
"""
_JSON_COLUMNS = ("config", "started", "summary", "lineage")
_BATCH = 256  # tasks per commit at most
_STOP = object()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _record(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    for col in _JSON_COLUMNS:
        if data[col] is not None:
            data[col] = json.loads(data[col])
    return RunRecord(**data)


class StoreUnreadable(RuntimeError):
    """The database file is corrupt or not a database: one line naming it and what to do."""

    def __init__(self, path: Path, exc: Exception) -> None:
        super().__init__(f"{path} is not a readable run database ({exc}); stop the server, move "
                         f"the file aside (mv {path} {path}.broken) to start with an empty "
                         "store, or restore it from a backup")


def check_readable(path: Path) -> None:
    """Raise StoreUnreadable unless ``path`` (if it exists) is a sound SQLite database."""
    if not path.exists():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreUnreadable(path, exc) from None
    if result != "ok":
        raise StoreUnreadable(path, sqlite3.DatabaseError(result))


class SqliteRunStore:
    """RunStore on one SQLite file; ``path`` is created with its parent folders."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tasks: queue.Queue = queue.Queue()
        self._closed = False
        # called on the database thread with a write that failed after its caller returned
        # (GuardedStore turns it into failed runs and a degraded health)
        self.write_failed = None
        check_readable(self.path)
        ready: Future = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="runstore",
                                        daemon=True)
        self._thread.start()
        try:
            ready.result()  # surfaces a bad path or a locked/corrupt file at start-up
        except sqlite3.DatabaseError as exc:
            raise StoreUnreadable(self.path, exc) from None

    # -- the database thread -------------------------------------------------------------------
    def _serve(self, ready: Future) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            if "lineage" not in {r[1] for r in db.execute("PRAGMA table_info(runs)")}:
                db.execute("ALTER TABLE runs ADD COLUMN lineage TEXT")  # a file from before forks
        except Exception as exc:  # noqa: BLE001 - handed to the constructor
            ready.set_exception(exc)
            return
        ready.set_result(None)
        stop = False
        while not stop:
            batch = [self._tasks.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._tasks.get_nowait())
                except queue.Empty:
                    break
            db.execute("BEGIN")
            done = []
            for task in batch:
                if task is _STOP:
                    stop = True
                    continue
                fn, args, fut = task
                try:
                    done.append((fut, fn(db, *args), None))
                except Exception as exc:  # noqa: BLE001 - one bad task must not stop the writer
                    if fut is None:
                        log.exception("run store: %s failed", fn.__name__)
                        self._report(exc)
                    done.append((fut, None, exc))
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:  # e.g. disk full: fail this batch, keep serving
                log.exception("run store: commit failed")
                self._report(exc)
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                done = [(fut, None, exc) for fut, _, _ in done]
            for fut, result, exc in done:
                if fut is not None:
                    fut.set_exception(exc) if exc else fut.set_result(result)
        db.close()

    def _report(self, exc: BaseException) -> None:
        if self.write_failed is not None:
            self.write_failed(exc)

    def _call(self, fn, *args):
        if self._closed:
            raise RuntimeError("run store is closed")
        fut: Future = Future()
        self._tasks.put((fn, args, fut))
        return fut.result()

    def _send(self, fn, *args) -> None:
        if not self._closed:
            self._tasks.put((fn, args, None))

    # -- RunStore ------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        row = dict(vars(record))
        for col in _JSON_COLUMNS:
            if row[col] is not None:
                row[col] = to_json(row[col])
        cols = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        self._call(lambda db: db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", row))

    def update_run(self, run_id: str, **fields) -> None:
        check_update(fields)
        if not fields:
            return
        row = {k: to_json(v) if k in _JSON_COLUMNS and v is not None else v
               for k, v in fields.items()}
        sets = ", ".join(f"{k} = :{k}" for k in row)
        self._send(lambda db: db.execute(f"UPDATE runs SET {sets} WHERE id = :_id",
                                         {**row, "_id": run_id}))

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._call(lambda db: db.execute("SELECT * FROM runs WHERE id = ?",
                                               (run_id,)).fetchone())
        return _record(row) if row else None

    def list_runs(self, limit: int = 100, *, include_sweeps: bool = True,
                  sweep: str | None = None) -> list[RunRecord]:
        where, args = "", [limit]
        if sweep is not None:
            where, args = "WHERE json_extract(lineage, '$.sweep.id') = ?", [sweep, limit]
        elif not include_sweeps:
            where = "WHERE json_extract(lineage, '$.sweep') IS NULL"
        rows = self._call(lambda db: db.execute(
            f"SELECT * FROM runs {where} ORDER BY created_at DESC LIMIT ?", args).fetchall())
        return [_record(r) for r in rows]

    def delete_run(self, run_id: str) -> bool:
        def delete(db):
            for table in ("metrics", "stages", "snapshots"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0
        return self._call(delete)

    def add_metrics(self, run_id: str, seq: int, rows: list[dict]) -> None:
        text = to_json(rows)
        self._send(lambda db: db.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)",
                                         (run_id, seq, text)))

    def metric_batches(self, run_id: str, since: int = 0) -> list[MetricBatch]:
        rows = self._call(lambda db: db.execute(
            "SELECT seq, rows FROM metrics WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, since)).fetchall())
        return [MetricBatch(seq, json.loads(text)) for seq, text in rows]

    def add_stage(self, run_id: str, record: StageRecord) -> None:
        evidence = to_json(record.evidence)
        self._send(lambda db: db.execute(
            "INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?)",
            (run_id, record.seq, record.step, record.stage, evidence)))

    def stages(self, run_id: str, since: int = 0) -> list[StageRecord]:
        rows = self._call(lambda db: db.execute(
            "SELECT seq, step, stage, evidence FROM stages WHERE run_id = ? AND seq > ? "
            "ORDER BY seq", (run_id, since)).fetchall())
        return [StageRecord(seq, step, stage, json.loads(ev)) for seq, step, stage, ev in rows]

    def add_snapshot(self, run_id: str, seq: int, step: int,
                     arrays: dict[str, np.ndarray]) -> None:
        # serialised on the database thread, off the event loop
        self._send(lambda db: db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                                         (run_id, step, seq, _npz(arrays))))

    def snapshot(self, run_id: str, step: int | None = None) -> StoredSnapshot | None:
        bound = 2**62 if step is None else step
        row = self._call(lambda db: db.execute(
            "SELECT seq, step, arrays FROM snapshots WHERE run_id = ? AND step <= ? "
            "ORDER BY step DESC LIMIT 1", (run_id, bound)).fetchone())
        if row is None:
            return None
        with np.load(io.BytesIO(row[2]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return StoredSnapshot(row[0], row[1], arrays)

    def snapshot_steps(self, run_id: str) -> list[int]:
        rows = self._call(lambda db: db.execute(
            "SELECT step FROM snapshots WHERE run_id = ? ORDER BY step", (run_id,)).fetchall())
        return [r[0] for r in rows]

    def children(self, run_id: str) -> list[str]:
        rows = self._call(lambda db: db.execute(
            "SELECT id FROM runs WHERE json_extract(lineage, '$.parent.run_id') = ? "
            "ORDER BY created_at", (run_id,)).fetchall())
        return [r[0] for r in rows]

    def import_run(self, record: RunRecord, batches: list[MetricBatch],
                   stages: list[StageRecord], snapshots: list[StoredSnapshot]) -> None:
        run = {k: to_json(v) if k in _JSON_COLUMNS and v is not None else v
               for k, v in vars(record).items()}
        cols, marks = ", ".join(run), ", ".join(f":{c}" for c in run)
        metrics = [(record.id, b.seq, to_json(b.rows)) for b in batches]
        stage_rows = [(record.id, s.seq, s.step, s.stage, to_json(s.evidence)) for s in stages]
        snaps = [(record.id, s.step, s.seq, _npz(s.arrays)) for s in snapshots]  # off the db thread

        def insert(db):
            # a savepoint: other tasks share this commit, and a failed import must leave nothing
            db.execute("SAVEPOINT import_run")
            try:
                db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", run)
                db.executemany("INSERT INTO metrics VALUES (?, ?, ?)", metrics)
                db.executemany("INSERT INTO stages VALUES (?, ?, ?, ?, ?)", stage_rows)
                db.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?)", snaps)
            except BaseException:
                db.execute("ROLLBACK TO import_run")
                db.execute("RELEASE import_run")
                raise
            db.execute("RELEASE import_run")
        self._call(insert)

    def mark_interrupted(self, reason: str) -> list[str]:
        def mark(db):
            marks = ",".join("?" * len(ACTIVE))
            ids = [r[0] for r in db.execute(f"SELECT id FROM runs WHERE status IN ({marks})",
                                            ACTIVE)]
            for run_id in ids:
                last = db.execute(
                    "SELECT max(s) FROM (SELECT max(seq) s FROM metrics WHERE run_id = :r "
                    "UNION ALL SELECT max(seq) FROM stages WHERE run_id = :r "
                    "UNION ALL SELECT max(seq) FROM snapshots WHERE run_id = :r)",
                    {"r": run_id}).fetchone()[0]
                db.execute("UPDATE runs SET status = 'interrupted', error = ?, "
                           "last_seq = max(last_seq, ?) WHERE id = ?",
                           (reason, last or 0, run_id))
            return ids
        return self._call(mark)

    def flush(self) -> None:
        self._call(lambda db: None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._tasks.put(_STOP)
        self._thread.join()
