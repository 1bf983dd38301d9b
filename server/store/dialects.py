"""What differs between the SQL databases of the run store, and the schema migrations.

A migration is a list of statements run once, in order, recorded in ``schema_version``; the
first start on an empty database creates the whole schema. ``{float}`` and ``{blob}`` stand
for the dialect's column types.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

MIGRATIONS: list[list[str]] = [
    [  # 1: runs and their streams
        "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
        "config TEXT NOT NULL, client TEXT NOT NULL, created_at {float} NOT NULL, "
        "max_steps_per_s {float}, started_at {float}, finished_at {float}, started TEXT, "
        "summary TEXT, error TEXT, last_seq BIGINT NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at)",
        "CREATE TABLE IF NOT EXISTS metrics (run_id TEXT NOT NULL, seq BIGINT NOT NULL, "
        "rows TEXT NOT NULL, PRIMARY KEY (run_id, seq))",
        "CREATE TABLE IF NOT EXISTS stages (run_id TEXT NOT NULL, seq BIGINT NOT NULL, "
        "step BIGINT NOT NULL, stage TEXT NOT NULL, evidence TEXT NOT NULL, "
        "PRIMARY KEY (run_id, seq))",
        "CREATE TABLE IF NOT EXISTS snapshots (run_id TEXT NOT NULL, step BIGINT NOT NULL, "
        "seq BIGINT NOT NULL, arrays {blob} NOT NULL, PRIMARY KEY (run_id, step))",
    ],
    [  # 2: where a run came from (forks, imports, sweeps)
        "ALTER TABLE runs ADD COLUMN lineage TEXT",
    ],
    [  # 3: sweeps, one JSON document each, beside their runs
        "CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, created_at {float} NOT NULL, "
        "status TEXT NOT NULL, doc TEXT NOT NULL)",
    ],
    [  # 4: the hidden layer a stage belongs to (depth ≥ 2); earlier runs had only layer 1
        "ALTER TABLE stages ADD COLUMN layer BIGINT NOT NULL DEFAULT 1",
    ],
]


class Dialect:
    name: str
    types: dict[str, str]

    def connect(self) -> Any:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        """The statement with this driver's placeholders (the store writes ``?``)."""
        return text

    def json_text(self, column: str, *keys: str) -> str:
        """SQL for the text at ``keys`` inside the JSON ``column`` (NULL when absent)."""
        raise NotImplementedError

    def columns(self, db, table: str) -> set[str]:
        raise NotImplementedError

    def integrity_errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors for a broken key or constraint."""
        raise NotImplementedError

    def lock(self, db) -> None:
        """Hold off other servers migrating the same database at the same time."""

    def migrate(self, db, migrations: list[list[str]]) -> None:
        db.execute("BEGIN")
        self.lock(db)
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        rows = db.all("SELECT max(version) FROM schema_version")
        done = rows[0][0] or 0
        for version, statements in enumerate(migrations, 1):
            if version <= done:
                continue
            for statement in statements:
                if statement.startswith("ALTER TABLE runs ADD COLUMN lineage") \
                        and "lineage" in self.columns(db, "runs"):
                    continue  # a SQLite file from before schema_version already has it
                db.execute(statement.format(**self.types))
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
        db.execute("COMMIT")


class SqliteDialect(Dialect):
    name = "sqlite"
    types = {"float": "DOUBLE PRECISION", "blob": "BLOB"}

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def json_text(self, column: str, *keys: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(keys)}')"

    def columns(self, db, table: str) -> set[str]:
        return {r[1] for r in db.all(f"PRAGMA table_info({table})")}

    def integrity_errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.IntegrityError,)


class PostgresDialect(Dialect):
    name = "postgresql"
    types = {"float": "DOUBLE PRECISION", "blob": "BYTEA"}

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> Any:
        import psycopg  # optional: pip install li2lab[cluster]

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def json_text(self, column: str, *keys: str) -> str:
        return f"({column}::jsonb #>> '{{{','.join(keys)}}}')"

    def columns(self, db, table: str) -> set[str]:
        return {r[0] for r in db.all("SELECT column_name FROM information_schema.columns "
                                     "WHERE table_name = ?", (table,))}

    def integrity_errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.IntegrityError,)

    def lock(self, db) -> None:
        db.execute("SELECT pg_advisory_xact_lock(4207)")
