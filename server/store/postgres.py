"""PostgreSQL RunStore (a shared, scaled-out deployment): the same SQL store, psycopg 3."""

from __future__ import annotations

from .dialects import PostgresDialect
from .sql import SqlRunStore


class PostgresRunStore(SqlRunStore):
    """RunStore on the database at ``url`` (postgresql://user@host:port/db); the schema is
    created on first start."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(PostgresDialect(url))
