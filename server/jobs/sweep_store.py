"""Persistence of sweep records: SQLite (a file beside the run store) or memory.

A sweep's cells are ordinary runs in the RunStore (lineage {"sweep": ...}); this store keeps
the sweep itself: its spec, status, cell table and measured boundary, as one JSON document.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ..protocol import finite

SWEEP_ACTIVE = ("queued", "running")
SWEEP_TERMINAL = ("completed", "failed", "cancelled", "interrupted")


@dataclass
class SweepRecord:
    """One sweep; ``cells`` holds one dict per grid point (index, run_id, point, status,
    outcome, final accuracies, first step test ≥ 0.9, p_crit of its group)."""

    id: str
    status: str
    name: str
    spec: dict  # SweepConfig.model_dump()
    created_at: float
    client: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    steps_total: int = 0
    steps_done: int = 0
    cells: list[dict] = field(default_factory=list)
    result: dict | None = None  # {"boundaries": [...], "fit_c": c} once ended
    error: str | None = None


class SweepStore(Protocol):
    def put(self, record: SweepRecord) -> None: ...

    def get(self, sweep_id: str) -> SweepRecord | None: ...

    def list(self, limit: int = 100) -> list[SweepRecord]: ...

    def mark_interrupted(self, reason: str) -> list[str]: ...

    def close(self) -> None: ...


def _interrupt(rec: SweepRecord, reason: str) -> None:
    rec.status, rec.error = "interrupted", reason
    for cell in rec.cells:
        if cell["status"] in SWEEP_ACTIVE:
            cell["status"] = "interrupted"


class MemorySweepStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sweeps: dict[str, SweepRecord] = {}

    def put(self, record: SweepRecord) -> None:
        with self._lock:
            self._sweeps[record.id] = copy.deepcopy(record)

    def get(self, sweep_id: str) -> SweepRecord | None:
        with self._lock:
            rec = self._sweeps.get(sweep_id)
            return copy.deepcopy(rec) if rec else None

    def list(self, limit: int = 100) -> list[SweepRecord]:
        with self._lock:
            recs = sorted(self._sweeps.values(), key=lambda r: r.created_at, reverse=True)
            return [copy.deepcopy(r) for r in recs[:limit]]

    def mark_interrupted(self, reason: str) -> list[str]:
        with self._lock:
            ids = [r.id for r in self._sweeps.values() if r.status in SWEEP_ACTIVE]
            for i in ids:
                _interrupt(self._sweeps[i], reason)
            return ids

    def close(self) -> None:
        pass


class SqliteSweepStore:
    """One table, one JSON document per sweep; writes are rare (state changes, cell ends)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, "
                         "created_at REAL NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL)")

    def put(self, record: SweepRecord) -> None:
        doc = json.dumps(finite(asdict(record)))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?)",
                             (record.id, record.created_at, record.status, doc))

    def get(self, sweep_id: str) -> SweepRecord | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return SweepRecord(**json.loads(row[0])) if row else None

    def list(self, limit: int = 100) -> list[SweepRecord]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM sweeps ORDER BY created_at DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [SweepRecord(**json.loads(r[0])) for r in rows]

    def mark_interrupted(self, reason: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM sweeps WHERE status IN (?, ?)",
                                    SWEEP_ACTIVE).fetchall()
        ids = []
        for (doc,) in rows:
            rec = SweepRecord(**json.loads(doc))
            _interrupt(rec, reason)
            self.put(rec)
            ids.append(rec.id)
        return ids

    def close(self) -> None:
        with self._lock:
            self._db.close()
