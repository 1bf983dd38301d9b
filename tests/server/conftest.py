"""Server test fixtures: apps built through create_app's seams, and a real uvicorn in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient

from server.app import create_app
from server.identity import COOKIE
from server.settings import Settings
from server.store import MemoryRunStore

from .fakes import FakeRunner

# tiny: Z7..Z13, hidden 16-32, steps <= 200 (see the brief)
TINY = {"group": "Z11", "hidden": 24, "steps": 60, "snapshot_every": 20}


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def settings(tmp_path, **changes) -> Settings:
    base = {"store": "memory", "data_dir": tmp_path, "max_jobs": 1, "quota": 2}
    return Settings(**{**base, **changes})


@pytest.fixture
def make_client(tmp_path):
    """make_client(runner=..., store=..., **settings) -> TestClient with the lifespan running."""
    stack = contextlib.ExitStack()

    def make(runner=None, store=None, **changes) -> TestClient:
        app = create_app(settings(tmp_path, **changes), runner=runner or FakeRunner(),
                         store=store if store is not None else MemoryRunStore())
        return stack.enter_context(TestClient(app))

    with stack:
        yield make


def browser(client: TestClient, name: str) -> dict:
    """Headers of another browser: its own signed identity cookie (``name``: a short label)."""
    value = client.app.state.identity.issue(name.ljust(16, "_")[:16])
    return {"Cookie": f"{COOKIE}={value}"}


def wait_status(client: TestClient, run_id: str, *statuses: str, timeout: float = 10.0) -> dict:
    def done():
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in statuses else None
    return wait_until(done, timeout)


@contextlib.contextmanager
def uvicorn_server(app):
    """Serve ``app`` on 127.0.0.1:<free port> in a thread; yields 'host:port'."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                           ws_per_message_deflate=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session (tests/server/postgres.py)."""
    from .postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_factory(request, tmp_path):
    """open() -> a RunStore of the parametrized kind; calling it again reopens the same
    database (a restarted server). Every store opened is closed at the end."""
    from server.store import MemoryRunStore, PostgresRunStore, SqliteRunStore

    opened = []
    memory = MemoryRunStore()
    url = request.getfixturevalue("postgres").new_database() \
        if request.param == "postgresql" else None

    def open_store():
        s = {"memory": lambda: memory, "sqlite": lambda: SqliteRunStore(tmp_path / "r.sqlite"),
             "postgresql": lambda: PostgresRunStore(url)}[request.param]()
        opened.append(s)
        return s

    open_store.kind = request.param
    yield open_store
    for s in opened:
        s.close()
