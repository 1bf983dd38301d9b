"""SQLite RunStore (the embedded default): WAL, one file, one writer thread (store/sql.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .dialects import SqliteDialect
from .sql import SqlRunStore


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


class SqliteRunStore(SqlRunStore):
    """RunStore on one SQLite file; ``path`` is created with its parent folders."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_readable(self.path)
        try:
            super().__init__(SqliteDialect(self.path))
        except sqlite3.DatabaseError as exc:  # a file that broke between the check and here
            raise StoreUnreadable(self.path, exc) from None
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
