"""The server subprocess and page helpers shared by the browser tests and scripts/screenshot.py."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`li2 serve` on a fixed port and data dir, restartable on the same ones."""

    def __init__(self, data_dir: Path, port: int | None = None, log: Path | None = None,
                 args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.args = args
        self.port = port or free_port()
        self.log = log or data_dir.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "li2cli", "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self.args]
        with open(self.log, "ab") as log:
            # own process group: stop() ends the server and its worker processes together
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /api/health within {timeout} s; see {self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)




def open_dashboard(page, base_url: str, hash_: str = "") -> None:
    page.goto(f"{base_url}/#{hash_}" if hash_ else f"{base_url}/")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)


def set_field(page, name: str, value: str) -> None:
    """Types into a config control the way a person does (the page reacts on change)."""
    box = page.locator(f"#input-{name}")
    box.fill(value)
    box.dispatch_event("change")


def li2(page, key: str):
    return page.evaluate(f"window.__li2.{key}")


def wait_for(page, expression: str, timeout_s: float = 60.0) -> None:
    page.wait_for_function(expression, timeout=timeout_s * 1000, polling=100)


def measure_live(page, seconds: float) -> dict:
    """Redraw rate and step-to-screen latency over `seconds` of a live run."""
    r0, t0 = li2(page, "redraws"), time.monotonic()
    time.sleep(seconds)
    r1, t1 = li2(page, "redraws"), time.monotonic()
    lat = li2(page, "latencies") or [0.0]
    e2e = li2(page, "endToEnd") or []
    return {
        "redraws_per_s": (r1 - r0) / (t1 - t0),
        "latency_median_ms": statistics.median(lat),
        "latency_p95_ms": sorted(lat)[int(0.95 * (len(lat) - 1))],
        "latency_max_ms": max(lat),
        "latency_samples": len(lat),
        "worker_to_screen_median_ms": statistics.median(e2e) if e2e else None,
    }
