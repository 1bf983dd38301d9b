"""Run persistence: the RunStore protocol, SQLite (default) and in-memory implementations."""

from .base import (
    ACTIVE,
    STATUSES,
    TERMINAL,
    MetricBatch,
    RunRecord,
    RunStore,
    StageRecord,
    StoredSnapshot,
)
from .memory import MemoryRunStore
from .sqlite import SqliteRunStore

__all__ = ["ACTIVE", "STATUSES", "TERMINAL", "MetricBatch", "RunRecord", "RunStore",
           "StageRecord", "StoredSnapshot", "MemoryRunStore", "SqliteRunStore"]
