"""The RunStore protocol and its records (runs, their streams, sweeps); SQLite is the
embedded default, PostgreSQL the shared one, memory the throwaway one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

ACTIVE = ("queued", "running")
TERMINAL = ("completed", "failed", "cancelled", "interrupted")
STATUSES = ACTIVE + TERMINAL
# columns of RunRecord that update_run may change
MUTABLE = ("status", "started_at", "finished_at", "started", "summary", "error", "last_seq")


@dataclass
class RunRecord:
    """One run as persisted; ``config`` is RunConfig.model_dump() and reproduces the run."""

    id: str
    status: str
    config: dict
    created_at: float
    client: str = ""
    max_steps_per_s: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    started: dict | None = None  # the RunStarted event (group facts, n_train, p_crit, ...)
    summary: dict | None = None
    error: str | None = None
    last_seq: int = 0
    # where the run came from: {"parent": {"run_id", "step", "changes"}} for a fork (its config
    # alone does not reproduce it: it starts from the parent's weights), {"imported_from": ...}
    lineage: dict | None = None


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


def interrupt_sweep(rec: SweepRecord, reason: str) -> None:
    rec.status, rec.error = "interrupted", reason
    for cell in rec.cells:
        if cell["status"] in ACTIVE:
            cell["status"] = "interrupted"


@dataclass
class MetricBatch:
    seq: int
    rows: list[dict]


@dataclass
class StageRecord:
    seq: int
    step: int
    stage: str
    evidence: dict = field(default_factory=dict)
    layer: int = 1  # the hidden layer (1 = the bottom; runs stored before depth read as 1)

    def as_dict(self, seq: bool = True) -> dict:
        """The stage as clients see it (API, exports, bundles, forks)."""
        out = {"seq": self.seq} if seq else {}
        return {**out, "step": self.step, "stage": self.stage, "evidence": self.evidence,
                "layer": self.layer}


@dataclass
class StoredSnapshot:
    seq: int
    step: int
    arrays: dict[str, np.ndarray]


class RunStore(Protocol):
    """Persistence for runs and their streams.

    Writes other than create/delete may be applied asynchronously but in call order, and every
    read observes all writes called before it (SQLite: one queue, one thread).
    """

    def create_run(self, record: RunRecord) -> None: ...

    def update_run(self, run_id: str, **fields) -> None: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, limit: int = 100, *, include_sweeps: bool = True,
                  sweep: str | None = None) -> list[RunRecord]:
        """Newest first; without ``include_sweeps`` the cells of sweeps (lineage "sweep") are
        left out; ``sweep`` = an id lists only that sweep's cells."""
        ...

    def delete_run(self, run_id: str) -> bool: ...

    def add_metrics(self, run_id: str, seq: int, rows: list[dict]) -> None: ...

    def metric_batches(self, run_id: str, since: int = 0) -> list[MetricBatch]: ...

    def add_stage(self, run_id: str, record: StageRecord) -> None: ...

    def stages(self, run_id: str, since: int = 0) -> list[StageRecord]: ...

    def add_snapshot(self, run_id: str, seq: int, step: int,
                     arrays: dict[str, np.ndarray]) -> None: ...

    def snapshot(self, run_id: str, step: int | None = None) -> StoredSnapshot | None:
        """The snapshot at or before ``step`` (the latest when None)."""
        ...

    def snapshot_steps(self, run_id: str) -> list[int]: ...

    def children(self, run_id: str) -> list[str]:
        """Ids of the runs forked from ``run_id``, oldest first."""
        ...

    def import_run(self, record: RunRecord, batches: list[MetricBatch],
                   stages: list[StageRecord], snapshots: list[StoredSnapshot]) -> None:
        """Insert a whole ended run in one transaction: all of it or, on any error, nothing."""
        ...

    def mark_interrupted(self, reason: str) -> list[str]:
        """Runs left queued/running by a previous server become interrupted; returns their ids."""
        ...

    def put_sweep(self, record: SweepRecord) -> None:
        """Insert or replace the sweep (its cells are runs of their own)."""
        ...

    def get_sweep(self, sweep_id: str) -> SweepRecord | None: ...

    def list_sweeps(self, limit: int = 100) -> list[SweepRecord]: ...

    def mark_sweeps_interrupted(self, reason: str) -> list[str]:
        """Sweeps left queued/running by a previous server become interrupted."""
        ...

    def flush(self) -> None:
        """Block until every write submitted so far is durable."""
        ...

    def close(self) -> None: ...


def check_update(fields: dict) -> None:
    bad = set(fields) - set(MUTABLE)
    if bad:
        raise ValueError(f"update_run: cannot change {sorted(bad)}")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"update_run: unknown status {fields['status']!r}")
