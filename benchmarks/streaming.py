"""Live streaming under load: a real `python -m server` process, one run, N websocket viewers.

Prints, per viewer count: step-to-viewer latency (median, p95; a row's wall_time stamp in the
worker to its arrival at a viewer, both on this machine's clock), snapshot frames delivered per
viewer per second, and the server process's CPU (total and per viewer, above a 0-viewer run).
Usage: .venv/bin/python benchmarks/streaming.py [--viewers 0 1 10 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
# mid-sized: ~75 kB snapshots, 10 snapshots and ~10 metric batches a second
BENCH_CONFIG = {"group": "Z31", "hidden": 128, "steps": 100_000, "snapshot_every": 10}
STEPS_PER_S = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """`python -m server` on a free port with its own data dir; CPU and RSS read from /proc."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        full_env = {**os.environ, "LI2_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1",
                    "LI2_QUOTA": "100", **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=full_env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited during start-up")
            try:
                self.request("GET", "/api/health")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not become healthy in 90 s")

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class ViewerLog:
    """What one viewer saw."""

    hello: dict | None = None
    joined: float = 0.0  # wall time of the hello: rows stamped earlier are replay, not live
    text_seqs: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    snapshot_times: list[float] = field(default_factory=list)
    last_snapshot_step: int | None = None
    statuses: list[str] = field(default_factory=list)
    close_code: int | None = None


def snapshot_step(frame: bytes) -> int:
    header_len = int.from_bytes(frame[8:12], "little")
    return json.loads(frame[12:12 + header_len])["step"]


async def view(url: str, log: ViewerLog, until: float) -> None:
    """Record every frame until the server closes or the monotonic deadline ``until``."""
    async with connect(url, max_size=None, compression=None) as ws:
        try:
            while (left := until - time.monotonic()) > 0:
                try:
                    frame = await asyncio.wait_for(ws.recv(), timeout=left)
                except TimeoutError:
                    break
                now = time.time()
                if isinstance(frame, bytes):
                    log.snapshot_times.append(now)
                    log.last_snapshot_step = snapshot_step(frame)
                    continue
                msg = json.loads(frame)
                if msg["type"] == "hello":
                    log.hello, log.joined = msg, now
                    continue
                log.text_seqs.append(msg["seq"])
                if msg["type"] == "metrics":
                    for row in msg["rows"]:
                        log.steps.append(row["step"])
                        if row["wall_time"] >= log.joined:
                            log.latencies.append(now - row["wall_time"])
                elif msg["type"] == "status":
                    log.statuses.append(msg["status"])
        except Exception:  # noqa: BLE001 - the close code says what happened
            pass
        log.close_code = ws.close_code


async def watch(ws_url: str, n: int, seconds: float) -> list[ViewerLog]:
    """``n`` viewers from seq 0 for ``seconds``; returns once all are connected and done."""
    logs = [ViewerLog() for _ in range(n)]
    until = time.monotonic() + seconds
    await asyncio.gather(*(view(ws_url, log, until) for log in logs))
    return logs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure(server: ServerProcess, n: int, seconds: float) -> dict:
    """One fresh run watched by ``n`` viewers; rows from before they joined are ignored."""
    run = server.request("POST", f"/api/runs?max_steps_per_s={STEPS_PER_S}", BENCH_CONFIG)
    while not server.request("GET", f"/api/runs/{run['id']}/metrics")["rows"]:
        time.sleep(0.1)  # the worker is up and training
    url = f"{server.ws_base}/ws/runs/{run['id']}"
    cpu0, t0 = server.cpu_seconds(), time.time()
    if n:
        logs = asyncio.run(watch(url, n, seconds))
    else:
        time.sleep(seconds)  # the baseline: the server forwarding and storing, nobody watching
        logs = []
    cpu = server.cpu_seconds() - cpu0
    wall = time.time() - t0
    server.request("POST", f"/api/runs/{run['id']}/cancel")
    live = [lat for log in logs for lat in log.latencies]
    # the first second holds the connection and the replayed snapshot: count from then on
    snaps = [len([t for t in log.snapshot_times if t >= t0 + 1]) / (wall - 1) for log in logs]
    return {"viewers": n, "seconds": wall, "server_cpu": cpu / wall,
            "latency_median_ms": 1000 * statistics.median(live) if live else float("nan"),
            "latency_p95_ms": 1000 * percentile(live, 0.95),
            "snapshots_per_viewer_s": statistics.mean(snaps) if snaps else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[0, 1, 10, 100])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), LI2_MAX_JOBS="1")
        try:
            results = [measure(server, n, args.seconds) for n in args.viewers]
        finally:
            server.stop()
    base = next((r["server_cpu"] for r in results if r["viewers"] == 0), 0.0)
    print(f"config {json.dumps(BENCH_CONFIG)} at {STEPS_PER_S} steps/s, {args.seconds:g} s each")
    print("viewers  latency median  p95      snapshots/viewer/s  server CPU  CPU/viewer")
    for r in results:
        per = (r["server_cpu"] - base) / r["viewers"] if r["viewers"] else float("nan")
        print(f"{r['viewers']:7d}  {r['latency_median_ms']:11.1f} ms  {r['latency_p95_ms']:6.1f}"
              f" ms  {r['snapshots_per_viewer_s']:18.2f}  {100 * r['server_cpu']:8.1f} %"
              f"  {100 * per:8.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
