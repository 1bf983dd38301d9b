"""A viewer that falls behind is closed with 4008 (docs/protocol.md), over a real socket."""

from __future__ import annotations

import time

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server.app import create_app

from .conftest import TINY, settings, uvicorn_server, wait_until
from .fakes import FakeRunner, fake_row


def test_a_viewer_that_stops_reading_is_closed_with_4008(tmp_path):
    runner = FakeRunner(auto=False)
    app = create_app(settings(tmp_path, viewer_backlog=16), runner=runner)
    with uvicorn_server(app) as host:
        run = httpx.post(f"http://{host}/api/runs", json=TINY).json()
        wait_until(lambda: run["id"] in runner.handles)
        handle = runner.handles[run["id"]]
        # a tiny receive buffer: the server's writes back up at once
        with connect(f"ws://{host}/ws/runs/{run['id']}", max_size=None,
                     max_queue=1) as ws:
            ws.recv()  # hello
            batch = [fake_row(s) for s in range(2000)]  # ~200 kB a frame
            for _ in range(100):
                handle.emit("metrics", batch)
            time.sleep(1)  # the backlog overflows while nothing is read
            code = None
            deadline = time.monotonic() + 60
            try:
                while time.monotonic() < deadline:
                    ws.recv(timeout=30)
                    time.sleep(0.1)  # a phone on a weak link: reads, but slowly
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            assert code == 4008
        handle.exit(0)
