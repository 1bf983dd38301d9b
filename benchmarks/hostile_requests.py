"""Issue 12's hostile requests against a real uvicorn server: each refusal's latency, the
/api/health latency while a 27 MB body is pushed at the server, and the process's peak RSS.

.venv/bin/python benchmarks/hostile_requests.py
"""

from __future__ import annotations

import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.app import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.server.conftest import uvicorn_server  # noqa: E402
from tests.server.fakes import FakeRunner  # noqa: E402

JSON = {"Content-Type": "application/json"}
CASES = [  # (label, method, path, body text or None, extra headers)
    ("product spec of 21 factors", "GET", "/api/groups/" + "Z2x" * 20 + "Z2", None, {}),
    ("NaN in a config", "POST", "/api/runs", '{"lr": NaN}', JSON),
    ("1e400 in a config", "POST", "/api/runs", '{"lr": 1e400}', JSON),
    ("hidden: true", "POST", "/api/runs", '{"hidden": true}', JSON),
    ("lr: \"0.01\"", "POST", "/api/runs", '{"lr": "0.01"}', JSON),
    ("2^63 in a Cayley table", "POST", "/api/runs",
     '{"group": "custom", "group_table": [[9223372036854775808, 1], [1, 0]]}', JSON),
    ("since=2^63", "GET", "/api/runs/x/metrics?since=9223372036854775808", None, {}),
    ("throttle 1e-300", "POST", "/api/runs?max_steps_per_s=1e-300", "{}", JSON),
    ("JSON nested 100 000 deep", "POST", "/api/runs", "[" * 100_000 + "]" * 100_000, JSON),
    ("sweep grid with NaN", "POST", "/api/sweeps", '{"grid": {"lr": [NaN]}}', JSON),
    ("cross-site form POST", "POST", "/api/runs", "group=Z7",
     {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"}),
    ("text/plain POST", "POST", "/api/runs", "{}", {"Content-Type": "text/plain"}),
]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def push(host: str, size: int) -> bytes:
    name, port = host.split(":")
    sock = socket.create_connection((name, int(port)))
    sock.settimeout(5)
    piece = b"x" * 65536
    try:
        sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(piece)):
            sock.sendall(piece)
    except OSError:
        pass
    try:
        return sock.recv(200)
    finally:
        sock.close()


def main() -> None:
    data = Path(tempfile.mkdtemp())
    app = create_app(Settings(store="memory", data_dir=data, max_jobs=1), runner=FakeRunner())
    with uvicorn_server(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        client.get("/api/health")
        base = rss_mb()
        print(f"{'case':32} {'status':>6} {'ms':>8}")
        for label, method, path, body, headers in CASES:
            start = time.perf_counter()
            r = client.request(method, path, content=body, headers=headers)
            print(f"{label:32} {r.status_code:>6} {1000 * (time.perf_counter() - start):8.1f}")
        latencies: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                httpx.get(f"http://{host}/api/health", timeout=10)
                latencies.append(time.perf_counter() - t)
        poller = threading.Thread(target=poll)
        poller.start()
        start = time.perf_counter()
        reply = push(host, 27 << 20)
        took = time.perf_counter() - start
        time.sleep(0.5)
        stop.set()
        poller.join()
        print(f"27 MB body: {reply.split(b' ')[1].decode()} after {1000 * took:.1f} ms; "
              f"/api/health meanwhile: {len(latencies)} answers, max "
              f"{1000 * max(latencies):.1f} ms; peak RSS {rss_mb():.0f} MB "
              f"(+{rss_mb() - base:.1f} MB over the run)")


if __name__ == "__main__":
    main()
