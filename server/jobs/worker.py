"""Worker side of every runner: run one job (a run or a sweep) and send its events as messages.

A job is a plain dict, so it crosses a pipe or a Ray task unchanged:
``{"kind": "run", "config": RunConfig dict, "max_steps_per_s": x, "initial": {W, V, step}}`` or
``{"kind": "sweep", "spec": SweepConfig dict}``. A run is a job with one cell (index 0), a sweep
one with a cell per grid point; messages name their cell (see runner.py for the list).

No top-level torch import: a spawned worker sets OMP_NUM_THREADS before torch loads; under the
forkserver torch is preloaded and torch.set_num_threads(1) pins it before first use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from ..protocol import finite
from .processes import reporting_failure, setup_worker_process

FLUSH_SECONDS = 0.1  # scalar rows and progress wait at most this long before they are sent
FLUSH_ROWS = 256


class EventSender:
    """Turns li2core events of any cell into messages; metrics rows of all cells and the
    run-step count are batched and sent at most every ``flush_s`` (fewer, larger frames)."""

    def __init__(self, send: Callable[[tuple], None], flush_s: float = FLUSH_SECONDS,
                 max_rows: int = FLUSH_ROWS) -> None:
        self._send, self._flush_s, self._max_rows = send, flush_s, max_rows
        self._rows: dict[int, list[dict]] = {}
        self._pending = 0
        self._steps = self._sent_steps = 0
        self._last = -float("inf")  # the first row, and any after a quiet spell, goes at once

    def steps(self, n: int) -> None:
        """``n`` more run-steps done (a sweep's progress)."""
        self._steps += n
        self._maybe_flush()

    def event(self, cell: int, event) -> None:
        if event.kind == "metrics":
            self._rows.setdefault(cell, []).append(
                finite({**event.row(), "wall_time": time.time()}))
            self._pending += 1
            self._maybe_flush()
            return
        self.flush()  # keep the order: rows before the event that follows them
        if event.kind == "snapshot":
            arrays = {k: np.ascontiguousarray(a, dtype=np.float32)
                      for k, a in event.arrays.items()}
            self._send(("snapshot", (cell, event.step, arrays)))
        elif event.kind == "stage":
            self._send(("stage", (cell, finite({"step": event.step, "stage": event.stage,
                                                "evidence": event.evidence,
                                                "layer": event.layer}))))
        elif event.kind == "started":
            self._send(("started", (cell, finite(dataclasses.asdict(event)))))
        elif event.kind == "finished":
            self._send(("finished", (cell, finite(event.summary))))

    def _maybe_flush(self) -> None:
        if self._pending >= self._max_rows or time.monotonic() - self._last >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._send(("metrics", self._rows))
            self._rows, self._pending = {}, 0
        if self._steps != self._sent_steps:
            self._send(("progress", self._steps))
            self._sent_steps = self._steps
        self._last = time.monotonic()


def execute_job(job: dict, send: Callable[[tuple], None], stop: Callable[[], bool]) -> None:
    """Run ``job`` to its end, reporting through ``send``; an error is sent as one ``error``
    message, not raised. ``stop()`` is polled between steps (a cooperative cancel)."""
    events = EventSender(send)
    with reporting_failure(events.flush, send):
        if job["kind"] == "run":
            from li2core.config import RunConfig
            from li2core.train import train

            for event in train(RunConfig(**job["config"]), stop=stop,
                               max_steps_per_s=job.get("max_steps_per_s"),
                               initial=job.get("initial")):
                events.event(0, event)
        elif job["kind"] == "sweep":
            from li2core.sweep import SweepConfig, run_sweep

            run_sweep(SweepConfig(**job["spec"]), stop=stop, on_steps=events.steps,
                      on_event=events.event, snapshots=True)
        else:
            raise ValueError(f"unknown job kind {job['kind']!r}")


def job_process(job: dict, conn, stop) -> None:
    """Process entry: ``conn`` is the write end of a pipe, ``stop`` a shared c_bool."""
    setup_worker_process()
    try:
        execute_job(job, conn.send, lambda: stop.value)
    finally:
        conn.close()
