"""The RunStore on a SQL database: one implementation, two dialects (SQLite, PostgreSQL).

One connection owned by one thread, so the server has a single writer. Every call is a task on
that thread's queue, so reads see all earlier writes. Updates and streaming writes return at
once (never blocking the event loop); tasks that arrive together share one commit.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

import numpy as np

from ..protocol import finite, to_json
from . import base  # sweeps: base.SweepRecord, base.interrupt_sweep
from .base import ACTIVE, MetricBatch, RunRecord, StageRecord, StoredSnapshot, check_update
from .dialects import MIGRATIONS, Dialect

STAGE_COLUMNS = "(run_id, seq, step, stage, evidence, layer) VALUES (?, ?, ?, ?, ?, ?)"

log = logging.getLogger(__name__)

_JSON_COLUMNS = ("config", "started", "summary", "lineage")
_BATCH = 256  # tasks per commit at most
_STOP = object()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _json_columns(values: dict) -> dict:
    return {k: to_json(v) if k in _JSON_COLUMNS and v is not None else v
            for k, v in values.items()}


class Db:
    """The database thread's view of its connection: ``?`` placeholders in every dialect."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn, self.dialect = conn, dialect

    def execute(self, sql: str, args: tuple | list = ()):
        return self.conn.execute(self.dialect.sql(sql), args)

    def executemany(self, sql: str, rows: list) -> None:
        if rows:
            self.conn.cursor().executemany(self.dialect.sql(sql), rows)

    def all(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        return self.execute(sql, args).fetchall()

    def dicts(self, sql: str, args: tuple | list = ()) -> list[dict]:
        cur = self.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _record(row: dict) -> RunRecord:
    for col in _JSON_COLUMNS:
        if row[col] is not None:
            row[col] = json.loads(row[col])
    return RunRecord(**row)


class SqlRunStore:
    """RunStore on ``dialect``'s database; the schema is created or upgraded at start."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._tasks: queue.Queue = queue.Queue()
        self._closed = False
        # called on the database thread with a write that failed after its caller returned
        # (GuardedStore turns it into failed runs and a degraded health)
        self.write_failed = None
        ready: Future = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="runstore",
                                        daemon=True)
        self._thread.start()
        ready.result()  # surfaces a bad path, a refused connection or a corrupt file now

    # -- the database thread -------------------------------------------------------------------
    def _serve(self, ready: Future) -> None:
        try:
            db = Db(self.dialect.connect(), self.dialect)
            self.dialect.migrate(db, MIGRATIONS)
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
                    # a savepoint per task: one failed statement (PostgreSQL then refuses the
                    # rest of the transaction) is undone alone, its neighbours still commit
                    db.execute("SAVEPOINT task")
                    result = fn(db, *args)
                    db.execute("RELEASE task")
                    done.append((fut, result, None))
                except Exception as exc:  # noqa: BLE001 - one bad task must not stop the writer
                    with contextlib.suppress(Exception):
                        db.execute("ROLLBACK TO task")
                        db.execute("RELEASE task")
                    if fut is None:
                        log.exception("run store: %s failed", getattr(fn, "__name__", fn))
                        self._report(exc)
                    done.append((fut, None, exc))
            try:
                db.execute("COMMIT")
            except Exception as exc:  # noqa: BLE001 - e.g. disk full: fail this batch, keep on
                log.exception("run store: commit failed")
                self._report(exc)
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                done = [(fut, None, exc) for fut, _, _ in done]
            for fut, result, exc in done:
                if fut is not None:
                    fut.set_exception(exc) if exc else fut.set_result(result)
        db.conn.close()

    def _report(self, exc: BaseException) -> None:
        if self.write_failed is not None:
            self.write_failed(exc)

    def _call(self, fn, *args):
        if self._closed:
            raise RuntimeError("run store is closed")
        fut: Future = Future()
        self._tasks.put((fn, args, fut))
        try:
            return fut.result()
        except self.dialect.integrity_errors() as exc:
            # a duplicate id or seq reads the same from every store (MemoryRunStore too)
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc

    def _send(self, fn, *args) -> None:
        if not self._closed:
            self._tasks.put((fn, args, None))

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        row = _json_columns(vars(record))
        sql = f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        self._call(lambda db: db.execute(sql, list(row.values())))

    def update_run(self, run_id: str, **fields) -> None:
        check_update(fields)
        if not fields:
            return
        row = _json_columns(fields)
        sets = ", ".join(f"{k} = ?" for k in row)
        self._send(lambda db: db.execute(f"UPDATE runs SET {sets} WHERE id = ?",
                                         [*row.values(), run_id]))

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._call(lambda db: db.dicts("SELECT * FROM runs WHERE id = ?", (run_id,)))
        return _record(rows[0]) if rows else None

    def list_runs(self, limit: int = 100, *, include_sweeps: bool = True,
                  sweep: str | None = None) -> list[RunRecord]:
        where, args = "", [limit]
        if sweep is not None:
            where = f"WHERE {self.dialect.json_text('lineage', 'sweep', 'id')} = ?"
            args = [sweep, limit]
        elif not include_sweeps:
            where = f"WHERE {self.dialect.json_text('lineage', 'sweep')} IS NULL"
        rows = self._call(lambda db: db.dicts(
            f"SELECT * FROM runs {where} ORDER BY created_at DESC LIMIT ?", args))
        return [_record(r) for r in rows]

    def delete_run(self, run_id: str) -> bool:
        def delete(db):
            for table in ("metrics", "stages", "snapshots"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0
        return self._call(delete)

    def children(self, run_id: str) -> list[str]:
        parent = self.dialect.json_text("lineage", "parent", "run_id")
        rows = self._call(lambda db: db.all(
            f"SELECT id FROM runs WHERE {parent} = ? ORDER BY created_at", (run_id,)))
        return [r[0] for r in rows]

    # -- streams -------------------------------------------------------------------------------
    def add_metrics(self, run_id: str, seq: int, rows: list[dict]) -> None:
        text = to_json(rows)
        self._send(lambda db: db.execute(
            "INSERT INTO metrics VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, seq) DO UPDATE SET rows = excluded.rows", (run_id, seq, text)))

    def metric_batches(self, run_id: str, since: int = 0) -> list[MetricBatch]:
        rows = self._call(lambda db: db.all(
            "SELECT seq, rows FROM metrics WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, since)))
        return [MetricBatch(seq, json.loads(text)) for seq, text in rows]

    def add_stage(self, run_id: str, record: StageRecord) -> None:
        row = (run_id, record.seq, record.step, record.stage, to_json(record.evidence),
               record.layer)
        self._send(lambda db: db.execute(
            f"INSERT INTO stages {STAGE_COLUMNS} ON CONFLICT (run_id, seq) DO UPDATE "
            "SET step = excluded.step, stage = excluded.stage, evidence = excluded.evidence, "
            "layer = excluded.layer", row))

    def stages(self, run_id: str, since: int = 0) -> list[StageRecord]:
        rows = self._call(lambda db: db.all(
            "SELECT seq, step, stage, evidence, layer FROM stages WHERE run_id = ? AND seq > ? "
            "ORDER BY seq", (run_id, since)))
        return [StageRecord(seq, step, stage, json.loads(ev), int(layer))
                for seq, step, stage, ev, layer in rows]

    def add_snapshot(self, run_id: str, seq: int, step: int,
                     arrays: dict[str, np.ndarray]) -> None:
        # serialised on the database thread, off the event loop
        self._send(lambda db: db.execute(
            "INSERT INTO snapshots VALUES (?, ?, ?, ?) ON CONFLICT (run_id, step) DO UPDATE "
            "SET seq = excluded.seq, arrays = excluded.arrays",
            (run_id, step, seq, _npz(arrays))))

    def snapshot(self, run_id: str, step: int | None = None) -> StoredSnapshot | None:
        bound = 2**62 if step is None else step
        rows = self._call(lambda db: db.all(
            "SELECT seq, step, arrays FROM snapshots WHERE run_id = ? AND step <= ? "
            "ORDER BY step DESC LIMIT 1", (run_id, bound)))
        if not rows:
            return None
        seq, at, blob = rows[0]
        with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return StoredSnapshot(seq, at, arrays)

    def snapshot_steps(self, run_id: str) -> list[int]:
        rows = self._call(lambda db: db.all(
            "SELECT step FROM snapshots WHERE run_id = ? ORDER BY step", (run_id,)))
        return [r[0] for r in rows]

    def import_run(self, record: RunRecord, batches: list[MetricBatch],
                   stages: list[StageRecord], snapshots: list[StoredSnapshot]) -> None:
        run = _json_columns(vars(record))
        insert_run = f"INSERT INTO runs ({', '.join(run)}) VALUES ({', '.join('?' * len(run))})"
        metrics = [(record.id, b.seq, to_json(b.rows)) for b in batches]
        stage_rows = [(record.id, s.seq, s.step, s.stage, to_json(s.evidence), s.layer)
                      for s in stages]
        snaps = [(record.id, s.step, s.seq, _npz(s.arrays)) for s in snapshots]  # off the db thread

        def insert(db):  # the task's savepoint makes it all or nothing
            db.execute(insert_run, list(run.values()))
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?)", metrics)
            db.executemany(f"INSERT INTO stages {STAGE_COLUMNS}", stage_rows)
            db.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?)", snaps)
        self._call(insert)

    def mark_interrupted(self, reason: str) -> list[str]:
        def mark(db):
            marks = ",".join("?" * len(ACTIVE))
            ids = [r[0] for r in db.all(f"SELECT id FROM runs WHERE status IN ({marks})",
                                        ACTIVE)]
            for run_id in ids:
                last = db.all(
                    "SELECT max(s) FROM (SELECT max(seq) AS s FROM metrics WHERE run_id = ? "
                    "UNION ALL SELECT max(seq) FROM stages WHERE run_id = ? "
                    "UNION ALL SELECT max(seq) FROM snapshots WHERE run_id = ?) AS seqs",
                    (run_id,) * 3)[0][0] or 0
                db.execute("UPDATE runs SET status = 'interrupted', error = ?, last_seq = "
                           "CASE WHEN last_seq > ? THEN last_seq ELSE ? END WHERE id = ?",
                           (reason, last, last, run_id))
            return ids
        return self._call(mark)

    # -- sweeps: one JSON document each; writes are rare (state changes, cell ends) -------------
    def put_sweep(self, record: base.SweepRecord) -> None:
        doc = json.dumps(finite(asdict(record)))
        self._send(lambda db: db.execute(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
            "SET status = excluded.status, doc = excluded.doc",
            (record.id, record.created_at, record.status, doc)))

    def get_sweep(self, sweep_id: str) -> base.SweepRecord | None:
        rows = self._call(lambda db: db.all("SELECT doc FROM sweeps WHERE id = ?", (sweep_id,)))
        return base.SweepRecord(**json.loads(rows[0][0])) if rows else None

    def list_sweeps(self, limit: int = 100) -> list[base.SweepRecord]:
        rows = self._call(lambda db: db.all(
            "SELECT doc FROM sweeps ORDER BY created_at DESC LIMIT ?", (limit,)))
        return [base.SweepRecord(**json.loads(r[0])) for r in rows]

    def mark_sweeps_interrupted(self, reason: str) -> list[str]:
        def mark(db):
            marks = ",".join("?" * len(ACTIVE))
            ids = []
            for (doc,) in db.all(f"SELECT doc FROM sweeps WHERE status IN ({marks})", ACTIVE):
                rec = base.SweepRecord(**json.loads(doc))
                base.interrupt_sweep(rec, reason)
                db.execute("UPDATE sweeps SET status = ?, doc = ? WHERE id = ?",
                           (rec.status, json.dumps(finite(asdict(rec))), rec.id))
                ids.append(rec.id)
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
