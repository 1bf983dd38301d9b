"""Hub rules without sockets: seq, replay, latest-wins snapshots, slow viewers, encode-once."""

import asyncio
import json

import numpy as np

from server.hub import Channel, Hub
from server.protocol import decode_snapshot


def arrays(step):
    return {"W": np.full((2, 2), step, np.float32)}


def run(coro):
    return asyncio.run(coro)


def test_seq_replay_and_latest_snapshot_for_late_viewers():
    async def main():
        ch = Channel("r", buffer_bytes=1 << 20, snapshot_hz=1000, backlog=100)
        assert ch.publish({"type": "metrics", "rows": [{"step": 0}]}) == 1
        assert ch.publish_snapshot(0, arrays(0)) == 2
        assert ch.publish({"type": "metrics", "rows": [{"step": 1}]}) == 3
        late = ch.subscribe(since=1)
        frames = await late.next_frames()
        texts = [json.loads(f) for f in frames if isinstance(f, str)]
        assert [(m["type"], m["seq"], m["run_id"]) for m in texts] == [("metrics", 3, "r")]
        header, got = decode_snapshot(frames[-1])  # the latest snapshot, even though seq 2 < 3
        assert header["seq"] == 2 and got["W"][0, 0] == 0
    run(main())


def test_slow_viewer_skips_snapshots_but_gets_every_scalar_and_the_last_snapshot():
    async def main():
        ch = Channel("r", buffer_bytes=1 << 20, snapshot_hz=1000, backlog=1000)
        viewer = ch.subscribe(since=0)
        got_seqs, snaps = [], []
        gate = asyncio.Event()

        async def slow_client():
            while (frames := await viewer.next_frames()) is not None:
                for f in frames:
                    if isinstance(f, bytes):
                        snaps.append(decode_snapshot(f)[0]["step"])
                    else:
                        got_seqs.append(json.loads(f)["seq"])
                    await gate.wait()  # blocked until the producer is done

        client = asyncio.create_task(slow_client())
        sent = []
        for step in range(200):
            sent.append(ch.publish({"type": "metrics", "rows": [{"step": step}]}))
            ch.publish_snapshot(step, arrays(step))
            await asyncio.sleep(0.002)  # lets the throttle (1 ms) broadcast
        ch.end()
        gate.set()
        await client
        assert got_seqs == sent  # no scalar lost or reordered
        assert len(snaps) <= 3 and snaps[-1] == 199  # skipped, not queued; the last arrives
        assert viewer.skipped_snapshots >= 190
    run(main())


def test_snapshot_rate_is_capped_and_the_final_one_flushed():
    async def main():
        ch = Channel("r", buffer_bytes=1 << 20, snapshot_hz=10, backlog=1000)
        viewer = ch.subscribe(since=0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for step in range(50):
            ch.publish_snapshot(step, arrays(step))
            await asyncio.sleep(0.001)
        elapsed = loop.time() - t0
        ch.end()
        frames = await viewer.next_frames()
        offered = viewer.skipped_snapshots + len(frames)
        assert offered <= 2 + elapsed / 0.1  # one per 100 ms, plus the flush at the end
        assert decode_snapshot(frames[-1])[0]["step"] == 49
    run(main())


def test_backlog_overflow_marks_the_viewer_too_slow():
    async def main():
        ch = Channel("r", buffer_bytes=1 << 20, snapshot_hz=10, backlog=16)
        viewer = ch.subscribe(since=0)
        for step in range(17):
            ch.publish({"type": "metrics", "rows": [{"step": step}]})
        assert viewer.too_slow.is_set() and len(viewer.scalars) == 16
    run(main())


def test_replay_buffer_is_bounded_and_reports_what_it_dropped():
    async def main():
        ch = Channel("r", buffer_bytes=2000, snapshot_hz=10, backlog=1000)
        for step in range(100):
            ch.publish({"type": "metrics", "rows": [{"step": step, "pad": "x" * 50}]})
        assert sum(len(f) for _, f in ch.buffer) <= 2000
        assert ch.dropped_through == ch.buffer[0][0] - 1 > 0
        viewer = ch.subscribe(since=0, prefix=["older"])
        frames = await viewer.next_frames()
        assert frames[0] == "older" and json.loads(frames[1])["seq"] == ch.dropped_through + 1
    run(main())


def test_encode_once_same_bytes_for_every_viewer():
    async def main():
        hub = Hub(snapshot_hz=1000)
        ch = hub.open("r")
        viewers = [ch.subscribe(0) for _ in range(5)]
        ch.publish({"type": "metrics", "rows": [{"step": 0}]})
        ch.publish_snapshot(0, arrays(0))
        batches = [await v.next_frames() for v in viewers]
        assert all(b[0] is batches[0][0] and b[1] is batches[0][1] for b in batches)
        hub.close("r")
        assert hub.get("r") is None and all(v.ended for v in viewers)
    run(main())
