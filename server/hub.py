"""Live fan-out per run: seq numbers, a replay buffer, latest-wins snapshots, encode once.

Everything here runs on the event loop thread, so subscribe/publish are atomic w.r.t. each other.
"""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np

from .protocol import encode_snapshot, to_json

Frame = str | bytes  # text frames are JSON str, snapshot frames bytes


class Viewer:
    """One connected client: a bounded queue of text frames and a single snapshot slot."""

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.scalars: deque[str] = deque()
        self.snapshot: bytes | None = None
        self.skipped_snapshots = 0
        self.ended = False  # the run finished: send what is pending, then stop
        self.too_slow = asyncio.Event()  # backlog overflowed: the client must reconnect
        self._wake = asyncio.Event()

    def push(self, frame: str) -> None:
        if len(self.scalars) >= self.backlog:
            self.too_slow.set()  # scalars are never dropped silently
            return
        self.scalars.append(frame)
        self._wake.set()

    def offer_snapshot(self, frame: bytes) -> None:
        if self.snapshot is not None:
            self.skipped_snapshots += 1  # latest wins: the unsent one is replaced, not queued
        self.snapshot = frame
        self._wake.set()

    def end(self) -> None:
        self.ended = True
        self._wake.set()

    async def next_frames(self) -> list[Frame] | None:
        """Wait for frames: pending text first, then the newest snapshot; None at the end."""
        while True:
            if self.scalars or self.snapshot is not None:
                frames: list[Frame] = list(self.scalars)
                self.scalars.clear()
                if self.snapshot is not None:
                    frames.append(self.snapshot)
                    self.snapshot = None
                return frames
            if self.ended:
                return None
            self._wake.clear()
            await self._wake.wait()


class Channel:
    """One live run's stream. ``seq`` counts every message; text frames are kept for replay."""

    def __init__(self, run_id: str, *, buffer_bytes: int, snapshot_hz: float,
                 backlog: int) -> None:
        self.run_id = run_id
        self.seq = 0
        self.buffer: deque[tuple[int, str]] = deque()
        self.buffer_bytes, self._buffered = buffer_bytes, 0
        self.dropped_through = 0  # text frames with seq <= this left the buffer (see the store)
        self.viewers: set[Viewer] = set()
        self._backlog = backlog
        self._interval = 1.0 / snapshot_hz
        self._latest: tuple[int, int, dict[str, np.ndarray]] | None = None
        self._latest_frame: bytes | None = None
        self._broadcast_seq = 0
        self._last_broadcast = -1e9
        self._timer: asyncio.TimerHandle | None = None

    def publish(self, message: dict) -> int:
        """Give ``message`` the next seq, encode it once, buffer it, and queue it to viewers."""
        self.seq += 1
        frame = to_json({"type": message["type"], "run_id": self.run_id, "seq": self.seq,
                         **message})
        self.buffer.append((self.seq, frame))
        self._buffered += len(frame)
        while self._buffered > self.buffer_bytes and len(self.buffer) > 1:
            seq, old = self.buffer.popleft()
            self._buffered -= len(old)
            self.dropped_through = seq
        for viewer in tuple(self.viewers):
            viewer.push(frame)
            if viewer.too_slow.is_set():
                self.viewers.discard(viewer)  # its handler closes it; stop feeding it now
        return self.seq

    def publish_snapshot(self, step: int, arrays: dict[str, np.ndarray]) -> int:
        """Record the newest snapshot; viewers get it at most ``snapshot_hz`` times a second."""
        self.seq += 1
        self._latest, self._latest_frame = (self.seq, step, arrays), None
        loop = asyncio.get_running_loop()
        wait = self._last_broadcast + self._interval - loop.time()
        if wait <= 0:
            self._broadcast_snapshot()
        elif self._timer is None:
            self._timer = loop.call_later(wait, self._broadcast_snapshot)
        return self.seq

    def latest_snapshot_frame(self) -> bytes | None:
        if self._latest is not None and self._latest_frame is None:
            seq, step, arrays = self._latest
            self._latest_frame = encode_snapshot(self.run_id, seq, step, arrays)  # once for all
        return self._latest_frame

    def _broadcast_snapshot(self) -> None:
        self._timer = None
        if self._latest is None or self._latest[0] == self._broadcast_seq:
            return
        self._last_broadcast = asyncio.get_running_loop().time()
        self._broadcast_seq = self._latest[0]
        frame = self.latest_snapshot_frame()
        for viewer in self.viewers:
            viewer.offer_snapshot(frame)

    def subscribe(self, since: int, prefix: list[str] = ()) -> Viewer:
        """A viewer preloaded with ``prefix`` (from the store), buffered frames after ``since``,
        and the latest snapshot (always: the client may have skipped it)."""
        viewer = Viewer(self._backlog)
        viewer.scalars.extend(prefix)
        viewer.scalars.extend(frame for seq, frame in self.buffer if seq > since)
        frame = self.latest_snapshot_frame()
        if frame is not None:
            viewer.offer_snapshot(frame)
        self.viewers.add(viewer)
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def end(self) -> None:
        """Flush a throttled snapshot, then let every viewer drain and stop."""
        if self._timer is not None:
            self._timer.cancel()
        self._broadcast_snapshot()
        for viewer in self.viewers:
            viewer.end()
        self.viewers.clear()


class Hub:
    """The live channels, one per queued or running run."""

    def __init__(self, *, buffer_bytes: int = 8 << 20, snapshot_hz: float = 10.0,
                 backlog: int = 4096) -> None:
        self._options = {"buffer_bytes": buffer_bytes, "snapshot_hz": snapshot_hz,
                         "backlog": backlog}
        self.channels: dict[str, Channel] = {}

    def open(self, run_id: str) -> Channel:
        channel = Channel(run_id, **self._options)
        self.channels[run_id] = channel
        return channel

    def get(self, run_id: str) -> Channel | None:
        return self.channels.get(run_id)

    def close(self, run_id: str) -> None:
        channel = self.channels.pop(run_id, None)
        if channel is not None:
            channel.end()
