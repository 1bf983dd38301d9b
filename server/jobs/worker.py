"""Child-process side of LocalProcessRunner: run li2core.train and send its events up a pipe.

No top-level torch import: a spawned worker sets OMP_NUM_THREADS before torch loads; under the
forkserver torch is preloaded and torch.set_num_threads(1) pins it before first use.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..protocol import finite
from .processes import reporting_failure, setup_worker_process

FLUSH_SECONDS = 0.1  # scalar rows wait at most this long before they are sent
FLUSH_ROWS = 256


class RowBatcher:
    """Collects metrics rows and sends them as one message per ~100 ms (fewer, larger frames)."""

    def __init__(self, send, flush_s: float = FLUSH_SECONDS, max_rows: int = FLUSH_ROWS) -> None:
        self._send, self._flush_s, self._max_rows = send, flush_s, max_rows
        self._rows: list[dict] = []
        self._last = -float("inf")  # the first row, and any after a quiet spell, goes at once

    def add(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._max_rows or time.monotonic() - self._last >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._send(("metrics", self._rows))
            self._rows = []
        self._last = time.monotonic()


def _float32(arrays: dict) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()}


def run_worker(config: dict, max_steps_per_s: float | None, conn, stop,
               initial: dict | None = None) -> None:
    """Process entry: ``conn`` is the write end of a pipe, ``stop`` a shared c_bool;
    ``initial`` = {"W", "V", "step"} starts from stored weights (a fork)."""
    setup_worker_process()
    from li2core.config import RunConfig
    from li2core.train import train

    send = conn.send
    batch = RowBatcher(send)
    try:
        with reporting_failure(batch.flush, send):
            events = train(RunConfig(**config), stop=lambda: stop.value,
                           max_steps_per_s=max_steps_per_s, initial=initial)
            for event in events:
                if event.kind == "metrics":
                    batch.add(finite({**event.row(), "wall_time": time.time()}))
                    continue
                batch.flush()  # keep the order: rows before the event that follows them
                if event.kind == "snapshot":
                    send(("snapshot", (event.step, _float32(event.arrays))))
                elif event.kind == "stage":
                    send(("stage", finite({"step": event.step, "stage": event.stage,
                                           "evidence": event.evidence})))
                elif event.kind == "started":
                    send(("started", finite(dataclasses.asdict(event))))
                elif event.kind == "finished":
                    send(("finished", finite(event.summary)))
    finally:
        conn.close()
