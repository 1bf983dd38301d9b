"""SQLite RunStore (the embedded default): WAL, one file, one writer thread (store/sql.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .dialects import SqliteDialect
from .sql import SqlRunStore


class SqliteRunStore(SqlRunStore):
    """RunStore on one SQLite file; ``path`` is created with its parent folders."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(SqliteDialect(self.path))
        self._adopt_old_sweeps(self.path.parent / "sweeps.sqlite")

    def _adopt_old_sweeps(self, old: Path) -> None:
        """Servers before the shared store kept sweeps in their own file beside this one:
        copy its sweeps in once (the file stays, unread, as a backup)."""
        if not old.is_file() or self._call(lambda db: db.all("SELECT 1 FROM sweeps LIMIT 1")):
            return
        with sqlite3.connect(old) as src:
            rows = src.execute("SELECT id, created_at, status, doc FROM sweeps").fetchall()
        self._call(lambda db: db.executemany(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", rows))
