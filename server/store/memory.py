"""In-memory RunStore for tests and throwaway servers (nothing survives the process)."""

from __future__ import annotations

import copy
import threading

import numpy as np

from .base import (
    ACTIVE,
    MetricBatch,
    RunRecord,
    StageRecord,
    StoredSnapshot,
    SweepRecord,
    check_update,
    interrupt_sweep,
)


class MemoryRunStore:
    """Same semantics as SqliteRunStore; a lock makes it safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._metrics: dict[str, list[MetricBatch]] = {}
        self._stages: dict[str, list[StageRecord]] = {}
        self._snapshots: dict[str, dict[int, StoredSnapshot]] = {}
        self._sweeps: dict[str, SweepRecord] = {}

    def create_run(self, record: RunRecord) -> None:
        with self._lock:
            if record.id in self._runs:
                raise ValueError(f"run {record.id} already exists")
            self._runs[record.id] = copy.deepcopy(record)

    def update_run(self, run_id: str, **fields) -> None:
        check_update(fields)
        with self._lock:
            rec = self._runs.get(run_id)
            if rec is not None:
                for k, v in copy.deepcopy(fields).items():
                    setattr(rec, k, v)

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            rec = self._runs.get(run_id)
            return copy.deepcopy(rec) if rec else None

    def list_runs(self, limit: int = 100, *, include_sweeps: bool = True,
                  sweep: str | None = None) -> list[RunRecord]:
        def listed(rec: RunRecord) -> bool:
            cell = (rec.lineage or {}).get("sweep")
            if sweep is not None:
                return cell is not None and cell.get("id") == sweep
            return include_sweeps or cell is None

        with self._lock:
            recs = sorted(filter(listed, self._runs.values()), key=lambda r: r.created_at,
                          reverse=True)
            return [copy.deepcopy(r) for r in recs[:limit]]

    def delete_run(self, run_id: str) -> bool:
        with self._lock:
            for table in (self._metrics, self._stages, self._snapshots):
                table.pop(run_id, None)
            return self._runs.pop(run_id, None) is not None

    def add_metrics(self, run_id: str, seq: int, rows: list[dict]) -> None:
        with self._lock:
            self._metrics.setdefault(run_id, []).append(MetricBatch(seq, copy.deepcopy(rows)))

    def metric_batches(self, run_id: str, since: int = 0) -> list[MetricBatch]:
        with self._lock:
            return [copy.deepcopy(b) for b in self._metrics.get(run_id, []) if b.seq > since]

    def add_stage(self, run_id: str, record: StageRecord) -> None:
        with self._lock:
            self._stages.setdefault(run_id, []).append(copy.deepcopy(record))

    def stages(self, run_id: str, since: int = 0) -> list[StageRecord]:
        with self._lock:
            return [copy.deepcopy(s) for s in self._stages.get(run_id, []) if s.seq > since]

    def add_snapshot(self, run_id: str, seq: int, step: int,
                     arrays: dict[str, np.ndarray]) -> None:
        copied = {k: np.array(v, copy=True) for k, v in arrays.items()}
        with self._lock:
            self._snapshots.setdefault(run_id, {})[step] = StoredSnapshot(seq, step, copied)

    def snapshot(self, run_id: str, step: int | None = None) -> StoredSnapshot | None:
        with self._lock:
            snaps = self._snapshots.get(run_id, {})
            steps = [s for s in snaps if step is None or s <= step]
            return snaps[max(steps)] if steps else None

    def snapshot_steps(self, run_id: str) -> list[int]:
        with self._lock:
            return sorted(self._snapshots.get(run_id, {}))

    def children(self, run_id: str) -> list[str]:
        with self._lock:
            kids = [r for r in self._runs.values()
                    if ((r.lineage or {}).get("parent") or {}).get("run_id") == run_id]
            return [r.id for r in sorted(kids, key=lambda r: r.created_at)]

    def import_run(self, record: RunRecord, batches: list[MetricBatch],
                   stages: list[StageRecord], snapshots: list[StoredSnapshot]) -> None:
        # everything is copied and checked before the first table changes: all or nothing
        snaps = {}
        for s in snapshots:
            if s.step in snaps:
                raise ValueError(f"import_run: two snapshots at step {s.step}")
            snaps[s.step] = StoredSnapshot(s.seq, s.step, {k: np.array(v, copy=True)
                                                          for k, v in s.arrays.items()})
        for seqs in ([b.seq for b in batches], [s.seq for s in stages]):
            if len(set(seqs)) != len(seqs):
                raise ValueError("import_run: repeated seq")
        with self._lock:
            if record.id in self._runs:
                raise ValueError(f"run {record.id} already exists")
            self._runs[record.id] = copy.deepcopy(record)
            self._metrics[record.id] = copy.deepcopy(batches)
            self._stages[record.id] = copy.deepcopy(stages)
            self._snapshots[record.id] = snaps

    def mark_interrupted(self, reason: str) -> list[str]:
        with self._lock:
            ids = [r.id for r in self._runs.values() if r.status in ACTIVE]
            for run_id in ids:
                rec = self._runs[run_id]
                rec.status, rec.error = "interrupted", reason
                rec.last_seq = max([rec.last_seq]
                                   + [b.seq for b in self._metrics.get(run_id, [])]
                                   + [s.seq for s in self._stages.get(run_id, [])]
                                   + [s.seq for s in self._snapshots.get(run_id, {}).values()])
            return ids

    def put_sweep(self, record: SweepRecord) -> None:
        with self._lock:
            self._sweeps[record.id] = copy.deepcopy(record)

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        with self._lock:
            return copy.deepcopy(self._sweeps.get(sweep_id))

    def list_sweeps(self, limit: int = 100) -> list[SweepRecord]:
        with self._lock:
            recs = sorted(self._sweeps.values(), key=lambda r: r.created_at, reverse=True)
            return copy.deepcopy(recs[:limit])

    def mark_sweeps_interrupted(self, reason: str) -> list[str]:
        with self._lock:
            ids = [r.id for r in self._sweeps.values() if r.status in ACTIVE]
            for sweep_id in ids:
                interrupt_sweep(self._sweeps[sweep_id], reason)
            return ids

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
