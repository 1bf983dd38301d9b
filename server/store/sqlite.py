"""SQLite RunStore (the embedded default): WAL, one file, one writer thread (store/sql.py)."""

from __future__ import annotations

from pathlib import Path

from .dialects import SqliteDialect
from .sql import SqlRunStore


class SqliteRunStore(SqlRunStore):
    """RunStore on one SQLite file; ``path`` is created with its parent folders."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(SqliteDialect(self.path))
