"""GuardedStore: wraps any RunStore so that storage never lies (docs/security.md).

- A per-run snapshot budget: past half of it a run keeps every 2nd snapshot, past 3/4 every
  4th, and so on; the newest snapshot is always stored when the run ends.
- Streaming writes stop when free space on the data disk falls under a reserve, or after the
  store reports a failed write; the runs that lost data end ``failed`` naming storage (the
  reserve leaves room for that last update), and health() reports the store as degraded.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import TERMINAL, RunRecord, RunStore, StageRecord

CHECK_EVERY_S = 0.25  # free space is read at most this often
# a byte handed to the store costs up to twice its size on disk (SQLite's WAL, then the file)
# and reaches the disk later than the write call: count it so, until the next measurement
DISK_COST = 2
RECOVERY_S = 30.0  # degraded at least this long after a failed write (and until space is back)


class StorageFull(OSError):
    """The data disk is under its reserve: nothing new is accepted (HTTP 503)."""


@dataclass
class _RunWrites:
    snapshot_bytes: int = 0
    offered: int = 0  # snapshots the run produced
    kept: int = 0
    level: int = 0  # keeping every 2**level-th snapshot
    held: tuple | None = None  # (seq, step, arrays): the newest one not kept
    lost: str | None = None  # why this run's data is incomplete


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


class GuardedStore:
    """Every RunStore method passes through; the write methods are checked first."""

    def __init__(self, store: RunStore, *, data_dir: Path | None, reserve_bytes: int,
                 snapshot_budget: int) -> None:
        self._store, self.data_dir = store, data_dir
        self.reserve_bytes, self.snapshot_budget = reserve_bytes, snapshot_budget
        self.on_failure: Callable[[str, str], None] | None = None  # (run_id, reason)
        self._runs: dict[str, _RunWrites] = {}
        self._lock = threading.Lock()
        self._free: int | None = None
        self._checked_at, self._since_check = 0.0, 0
        self._error: str | None = None
        self._error_at: float | None = None
        if hasattr(store, "write_failed"):  # the SQL stores report writes that fail later
            store.write_failed = self._write_failed

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    # -- health --------------------------------------------------------------------------------
    def _free_bytes(self, force: bool = False) -> int | None:
        if self.data_dir is None:
            return None
        now = time.monotonic()
        if force or now - self._checked_at > CHECK_EVERY_S:
            with contextlib.suppress(OSError):
                self._free = shutil.disk_usage(self.data_dir).free
            self._checked_at, self._since_check = now, 0
        return None if self._free is None else self._free - self._since_check

    def _degraded(self, free: int | None) -> bool:
        low = free is not None and free < self.reserve_bytes
        if self._error_at is not None:
            recovered = time.monotonic() - self._error_at > RECOVERY_S and \
                (free is None or free >= 2 * self.reserve_bytes)
            if recovered:
                self._error_at = None
        return low or self._error_at is not None

    def health(self) -> dict:
        """{ok, free_bytes, reserve_bytes, last_write_error}; not ok while space is short or
        a write failed and space has not come back since."""
        free = self._free_bytes(force=True)
        with self._lock:
            return {"ok": not self._degraded(free), "free_bytes": free,
                    "reserve_bytes": self.reserve_bytes, "last_write_error": self._error}

    # -- failures ------------------------------------------------------------------------------
    def _fail(self, run_id: str, reason: str) -> None:
        """Mark ``run_id`` as having lost data; called with the lock held."""
        writes = self._runs.setdefault(run_id, _RunWrites())
        if writes.lost is None:
            writes.lost = reason
            if self.on_failure is not None:
                self.on_failure(run_id, reason)

    def _write_failed(self, exc: BaseException) -> None:
        """From the store's writer thread: a write was lost; every run writing now lost data."""
        reason = f"storage: a write to the run store failed ({exc})"
        with self._lock:
            self._error, self._error_at = str(exc), time.monotonic()
            for run_id in list(self._runs):
                self._fail(run_id, reason)

    def _room(self, run_id: str, nbytes: int) -> bool:
        """False (and the run marked) when this write must not happen."""
        with self._lock:
            writes = self._runs.setdefault(run_id, _RunWrites())
            if writes.lost is not None:
                return False
            free = self._free_bytes()
            if free is not None and free - DISK_COST * nbytes < self.reserve_bytes:
                self._error = (f"data disk almost full: {_mb(free)} free, under the reserve of "
                               f"{_mb(self.reserve_bytes)} (LI2_STORAGE_RESERVE_BYTES)")
                self._error_at = time.monotonic()
                self._fail(run_id, f"storage: {self._error}; the run was stopped and what was "
                                   "stored before is kept")
                return False
            self._since_check += DISK_COST * nbytes
            return True

    def _check_space(self) -> None:
        free = self._free_bytes(force=True)
        if free is not None and free < self.reserve_bytes:
            raise StorageFull(f"the server's data disk is full ({_mb(free)} free, reserve "
                              f"{_mb(self.reserve_bytes)}); nothing new can be stored until "
                              "space is freed")

    # -- writes --------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        self._check_space()
        self._store.create_run(record)

    def import_run(self, record: RunRecord, batches, stages, snapshots) -> None:
        self._check_space()
        self._store.import_run(record, batches, stages, snapshots)

    def add_metrics(self, run_id: str, seq: int, rows: list[dict]) -> None:
        if self._room(run_id, 200 * len(rows)):  # ~200 bytes a stored row
            self._store.add_metrics(run_id, seq, rows)

    def add_stage(self, run_id: str, record: StageRecord) -> None:
        if self._room(run_id, 1024):
            self._store.add_stage(run_id, record)

    def add_snapshot(self, run_id: str, seq: int, step: int,
                     arrays: dict[str, np.ndarray]) -> None:
        size = sum(a.nbytes for a in arrays.values())
        with self._lock:
            writes = self._runs.setdefault(run_id, _RunWrites())
            writes.offered += 1
            budget = self.snapshot_budget
            while writes.snapshot_bytes + size > budget * (1 - 2.0 ** -(writes.level + 1)) \
                    and writes.level < 62:
                writes.level += 1
            keep = (writes.offered - 1) % (2 ** writes.level) == 0 and \
                writes.snapshot_bytes + size <= budget
            if not keep:
                writes.held = (seq, step, arrays)
                return
        if self._room(run_id, size):
            with self._lock:
                writes.snapshot_bytes += size
                writes.kept += 1
                writes.held = None
            self._store.add_snapshot(run_id, seq, step, arrays)

    def update_run(self, run_id: str, **fields) -> None:
        """A terminal status stores the newest held-back snapshot first, and becomes ``failed``
        with the storage reason when the run lost data (also for a sweep's cell)."""
        if fields.get("status") in TERMINAL:
            writes = self._runs.get(run_id)
            if writes is not None:
                if writes.held is not None and writes.lost is None and \
                        self._room(run_id, sum(a.nbytes for a in writes.held[2].values())):
                    writes.kept += 1
                    self._store.add_snapshot(run_id, *writes.held)
                with self._lock:
                    self._runs.pop(run_id, None)
                if writes.lost is not None:
                    fields = {**fields, "status": "failed", "error": writes.lost}
                elif writes.level > 0 and fields.get("summary") is not None:
                    fields["summary"] = {**fields["summary"], "storage": {
                        "snapshots_kept": writes.kept, "snapshots_made": writes.offered,
                        "why": f"snapshots thinned to stay within the per-run budget of "
                               f"{_mb(self.snapshot_budget)} (LI2_RUN_SNAPSHOT_BYTES)"}}
        self._store.update_run(run_id, **fields)
