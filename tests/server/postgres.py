"""A throwaway PostgreSQL server for the store tests: Debian's binaries, run as the postgres
user (initdb refuses root) in a temporary folder on a free port. Installs nothing itself:
scripts/test.sh installs the postgresql package when it is missing."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _binaries() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    def __init__(self) -> None:
        bindir = _binaries()
        if bindir is None:
            message = "PostgreSQL not installed (apt-get install postgresql; scripts/test.sh does)"
            if os.environ.get("LI2_REQUIRE_POSTGRES"):
                pytest.fail(message)
            pytest.skip(message)
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix="li2-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        data = os.path.join(self.dir, "data")
        subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", data, "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)
        subprocess.run(_as_postgres([
            f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "start",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"]),
            check=True, capture_output=True)
        self.data = data
        self._count = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._count += 1
        name = f"t{self._count}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(_as_postgres([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast",
                                     "-w", "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
