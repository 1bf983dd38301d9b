"""100 websocket viewers of one real run on a real server process (slow: ~30 s)."""

import asyncio
import threading
import time

import pytest

from benchmarks.streaming import ServerProcess, ViewerLog, view

VIEWERS = 100
STEPS = 1500  # at 100 steps/s: a 15 s stream
RSS_SLACK = 25 << 20


@pytest.mark.slow
def test_hundred_viewers_get_every_batch_and_the_last_snapshot_with_flat_rss(tmp_path):
    server = ServerProcess(tmp_path, LI2_MAX_JOBS="1")
    try:
        run = server.request("POST", "/api/runs?max_steps_per_s=100", {
            "group": "Z13", "hidden": 32, "steps": STEPS, "snapshot_every": 10})
        deadline = time.monotonic() + 60
        while not server.request("GET", f"/api/runs/{run['id']}/metrics")["rows"]:
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.1)
        logs = [ViewerLog() for _ in range(VIEWERS)]
        rss: list[tuple[float, int]] = []
        watching = threading.Event()

        def sample():
            while not watching.is_set():
                rss.append((time.monotonic(), server.rss_bytes()))
                time.sleep(0.5)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        async def crowd():
            until = time.monotonic() + 90  # hard cap; the server closes when the run ends
            await asyncio.gather(*(view(f"{server.ws_base}/ws/runs/{run['id']}", log, until)
                                   for log in logs))
        t0 = time.monotonic()
        asyncio.run(crowd())
        watching.set()
        sampler.join()
        final = server.request("GET", f"/api/runs/{run['id']}")
    finally:
        server.stop()
    assert final["status"] == "completed", final
    assert time.monotonic() - t0 > 5, "the stream should have been live, not a replay"
    for log in logs:
        assert log.close_code == 1000
        assert log.steps == list(range(STEPS + 1))  # every scalar batch, in order, no gap
        assert log.text_seqs == sorted(set(log.text_seqs))
        assert log.last_snapshot_step == STEPS  # skipped snapshots maybe, never the last
        assert log.statuses[-1] == "completed"
    # RSS once all viewers are streaming (2 s in) against every later sample
    settled = [b for t, b in rss if t >= t0 + 2]
    assert len(settled) >= 10
    growth = max(settled) - settled[0]
    print(f"server RSS {settled[0] / 2**20:.1f} MiB, max growth {growth / 2**20:.1f} MiB "
          f"over {len(settled) / 2:.0f} s with {VIEWERS} viewers")
    assert growth < RSS_SLACK
