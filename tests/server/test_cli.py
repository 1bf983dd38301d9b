"""`li2 serve` / serve_command: flags, refusals, and a real server process killed and restarted."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from li2cli.main import main as li2_main
from server.cli import serve_command
from server.store import SqliteRunStore

from .conftest import wait_until


def test_help_and_refused_settings(capsys):
    assert serve_command(["--help"]) == 0
    assert "--wall-time-limit" in capsys.readouterr().out
    assert li2_main(["serve", "--help"]) == 0  # the lead's `li2` hands `serve` to us
    assert "--instructor-token" in capsys.readouterr().out
    assert serve_command(["--quota", "0"]) == 2
    assert "quota (LI2_QUOTA)" in capsys.readouterr().err
    assert serve_command(["--max-jobs", "many"]) == 2
    assert "invalid int value" in capsys.readouterr().err
    assert serve_command(["--database", "mysql://x@y/z"]) == 2
    err = capsys.readouterr().err
    assert "database_url (LI2_DATABASE_URL)" in err and "Traceback" not in err
    assert serve_command(["--ray-address", "auto"]) == 2  # without --runner ray
    assert "ray_address (LI2_RAY_ADDRESS)" in capsys.readouterr().err
    assert serve_command(["--runner", "slurm"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir, port):
    env = {**os.environ, "LI2_DATA_DIR": str(data_dir), "LI2_MAX_JOBS": "1",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port),
                             "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return httpx.get(f"{base}/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            assert proc.poll() is None, "server exited during start-up"
            return False
    wait_until(healthy, timeout=60, interval=0.2)
    return proc, base


@pytest.mark.slow  # two server processes and two workers: ~25 s
def test_server_process_killed_then_restarted_keeps_runs(tmp_path):
    port = free_port()
    proc, base = start_server(tmp_path, port)
    try:
        run = httpx.post(f"{base}/api/runs", params={"max_steps_per_s": 20}, json={
            "group": "Z7", "hidden": 16, "steps": 200}).json()
        wait_until(lambda: httpx.get(f"{base}/api/runs/{run['id']}/metrics").json()["rows"],
                   timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown hook runs
        proc.wait(10)
    proc, base = start_server(tmp_path, port)
    try:
        after = httpx.get(f"{base}/api/runs/{run['id']}").json()
        assert after["status"] == "interrupted"
        assert after["error"] == "the server stopped while this run was active"
        rows = httpx.get(f"{base}/api/runs/{run['id']}/metrics").json()["rows"]
        assert rows and rows[0]["step"] == 0
        second = httpx.post(f"{base}/api/runs", params={"max_steps_per_s": 20}, json={
            "group": "Z7", "hidden": 16, "steps": 200}).json()
        wait_until(lambda: httpx.get(f"{base}/api/runs/{second['id']}/metrics").json()["rows"],
                   timeout=60)
    finally:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # graceful: the lifespan shutdown runs
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        assert time.monotonic() - t0 < 15
    store = SqliteRunStore(tmp_path / "runs.sqlite")
    stopped = store.get_run(second["id"])
    store.close()
    assert (stopped.status, stopped.error) == (
        "interrupted", "the server shut down while this run was active")
