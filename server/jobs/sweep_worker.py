"""Where a sweep executes: li2core.sweep.run_sweep (batched) in a worker process or a thread,
its per-run events turned into messages for the SweepService.

Messages (kind, data): ``cell_started`` (index, RunStarted dict), ``metrics`` ({index: rows}),
``snapshot`` (index, step, arrays), ``cell_finished`` (index, summary with "outcome"),
``progress`` (run-steps done), ``error`` (text); the runner appends one final ``exit``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..protocol import finite
from .processes import (
    KILL_AFTER_TERMINATE_S,
    ProcessJobs,
    drain,
    reporting_failure,
    setup_worker_process,
)
from .runner import WorkerMessage

FLUSH_SECONDS = 0.2  # metrics rows and progress wait at most this long before they are sent


class SweepEvents:
    """Turns run_sweep's callbacks into messages, batching metrics rows of all runs."""

    def __init__(self, send: Callable[[tuple], None], flush_s: float = FLUSH_SECONDS) -> None:
        self._send, self._flush_s = send, flush_s
        self._rows: dict[int, list[dict]] = {}
        self._steps = 0
        self._sent_steps = 0
        self._last = -float("inf")

    def steps(self, n: int) -> None:
        self._steps += n
        self._maybe_flush()

    def event(self, index: int, event) -> None:
        if event.kind == "metrics":
            self._rows.setdefault(index, []).append(
                finite({**event.row(), "wall_time": time.time()}))
            self._maybe_flush()
            return
        self.flush()  # keep the order: rows before the event that follows them
        if event.kind == "started":
            self._send(("cell_started", (index, finite(dataclasses.asdict(event)))))
        elif event.kind == "snapshot":
            arrays = {k: np.ascontiguousarray(a, dtype=np.float32)
                      for k, a in event.arrays.items()}
            self._send(("snapshot", (index, event.step, arrays)))
        elif event.kind == "finished":
            self._send(("cell_finished", (index, finite(event.summary))))

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._send(("metrics", self._rows))
            self._rows = {}
        if self._steps != self._sent_steps:
            self._send(("progress", self._steps))
            self._sent_steps = self._steps
        self._last = time.monotonic()


def execute_sweep(spec: dict, send: Callable[[tuple], None], stop: Callable[[], bool]) -> None:
    """Run the sweep ``spec`` (SweepConfig fields), reporting through ``send``; errors are sent
    as one ``error`` message, not raised."""
    from li2core.sweep import SweepConfig, run_sweep

    events = SweepEvents(send)
    with reporting_failure(events.flush, send):
        run_sweep(SweepConfig(**spec), stop=stop, on_steps=events.steps, on_event=events.event,
                  snapshots=True)


def sweep_process(spec: dict, conn, stop) -> None:
    """Process entry: one torch thread, Ctrl-C left to the server, messages up ``conn``."""
    setup_worker_process()
    try:
        execute_sweep(spec, conn.send, stop.is_set)
    finally:
        conn.close()


class SweepRunner(Protocol):
    """start(spec) → handle; events(handle) blocks and ends with one "exit"; cancel(handle)."""

    def start(self, spec: dict, *, sweep_id: str) -> Any: ...

    def events(self, handle: Any) -> Iterator[WorkerMessage]: ...

    def cancel(self, handle: Any) -> None: ...

    def shutdown(self) -> None: ...


@dataclass(eq=False)
class ProcessHandle:
    sweep_id: str
    process: multiprocessing.process.BaseProcess
    conn: Any
    stop: Any
    timers: list[threading.Timer] = field(default_factory=list)
    exited: threading.Event = field(default_factory=threading.Event)


class LocalSweepRunner(ProcessJobs):
    """One worker process per sweep (forkserver or spawn, never fork: the server is threaded)."""

    def __init__(self, start_method: str = "forkserver", grace_s: float = 5.0) -> None:
        super().__init__(grace_s)
        self._ctx = multiprocessing.get_context(start_method)

    def start(self, spec: dict, *, sweep_id: str) -> ProcessHandle:
        receive, send = self._ctx.Pipe(duplex=False)
        stop = self._ctx.Event()
        process = self._ctx.Process(target=sweep_process, name=f"li2-sweep-{sweep_id}",
                                    daemon=True, args=(spec, send, stop))
        try:
            process.start()
        finally:
            send.close()
        handle = ProcessHandle(sweep_id, process, receive, stop)
        self._track(handle)
        return handle

    def events(self, handle: ProcessHandle) -> Iterator[WorkerMessage]:
        process = handle.process
        yield from drain(handle.conn, process)
        process.join(timeout=KILL_AFTER_TERMINATE_S + 1)
        yield self._reaped(handle)

    @staticmethod
    def _ask_to_stop(handle: ProcessHandle) -> None:
        handle.stop.set()


@dataclass(eq=False)
class ThreadHandle:
    sweep_id: str
    messages: queue.Queue = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)


class ThreadSweepRunner:
    """The sweep in a thread of this process: tests, and servers that must not spawn.

    ``step_delay`` seconds are slept after every step, so a test can act mid-sweep.
    """

    def __init__(self, step_delay: float = 0.0) -> None:
        self.step_delay = step_delay
        self._handles: list[ThreadHandle] = []

    def start(self, spec: dict, *, sweep_id: str) -> ThreadHandle:
        handle = ThreadHandle(sweep_id)
        self._handles.append(handle)

        def stop() -> bool:
            if self.step_delay:
                time.sleep(self.step_delay)
            return handle.stop.is_set()

        def body() -> None:
            try:
                execute_sweep(spec, lambda m: handle.messages.put(WorkerMessage(*m)), stop)
            finally:
                handle.messages.put(WorkerMessage("exit", {"exitcode": 0, "reason": None}))

        threading.Thread(target=body, name=f"sweep-{sweep_id}", daemon=True).start()
        return handle

    def events(self, handle: ThreadHandle) -> Iterator[WorkerMessage]:
        while True:
            message = handle.messages.get()
            yield message
            if message.kind == "exit":
                return

    def cancel(self, handle: ThreadHandle) -> None:
        handle.stop.set()

    def shutdown(self) -> None:
        for handle in self._handles:  # daemon threads: each ends at its next step
            handle.stop.set()
