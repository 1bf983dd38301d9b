"""Run persistence: the RunStore protocol; SQLite (default), PostgreSQL and in-memory stores."""

from .base import (
    ACTIVE,
    STATUSES,
    TERMINAL,
    MetricBatch,
    RunRecord,
    RunStore,
    StageRecord,
    StoredSnapshot,
    SweepRecord,
)
from .memory import MemoryRunStore
from .postgres import PostgresRunStore
from .sqlite import SqliteRunStore

__all__ = ["ACTIVE", "STATUSES", "TERMINAL", "MetricBatch", "RunRecord", "RunStore",
           "StageRecord", "StoredSnapshot", "SweepRecord", "MemoryRunStore", "PostgresRunStore",
           "SqliteRunStore", "open_store"]


def open_store(settings) -> RunStore:
    """The store ``settings`` name: sqlite (default), postgresql or memory."""
    if settings.store == "postgresql":
        return PostgresRunStore(settings.database_url)
    if settings.store == "sqlite":
        return SqliteRunStore(settings.database_path)
    return MemoryRunStore()
