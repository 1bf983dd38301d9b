"""LocalProcessRunner: one worker process per run, started from a forkserver or spawn context.

Never plain fork: the server is threaded (store, readers), and a forked copy of held locks hangs.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from li2core.config import RunConfig

from .runner import WorkerMessage, exit_reason
from .worker import run_worker

# imported once by the forkserver, so each fork starts training without re-importing torch
PRELOAD = ["torch", "li2core.train", "server.jobs.worker"]
KILL_AFTER_TERMINATE_S = 2.0


@dataclass(eq=False)
class LocalHandle:
    run_id: str
    process: multiprocessing.process.BaseProcess
    conn: Connection
    stop: ctypes.c_bool  # shared with the worker, which polls it between steps
    timers: list[threading.Timer] = field(default_factory=list)
    # set by the events() thread, the only one that joins (see _reap_lock)
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int | None:
        return self.process.pid


class LocalProcessRunner:
    """Runner on this machine; ``cancel`` sets a stop flag and terminates after ``grace_s``."""

    def __init__(self, start_method: str = "forkserver", grace_s: float = 5.0) -> None:
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be forkserver or spawn, not {start_method!r}")
        self._ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(PRELOAD)
        self.grace_s = grace_s
        self._live: set[LocalHandle] = set()
        self._lock = threading.Lock()
        # Process.start() polls every finished child; a forkserver child's exit status can be
        # read only once, so a poll racing our join would leave a bogus 255: one at a time
        self._reap_lock = threading.Lock()

    def start(self, config: RunConfig, *, run_id: str, max_steps_per_s: float | None = None,
              initial: dict | None = None) -> LocalHandle:
        receive, send = self._ctx.Pipe(duplex=False)
        # a shared byte, not an Event: no semaphores to leak when the server dies by a signal
        stop = self._ctx.RawValue(ctypes.c_bool, False)
        process = self._ctx.Process(target=run_worker, name=f"li2-run-{run_id}", daemon=True,
                                    args=(config.model_dump(), max_steps_per_s, send, stop,
                                          initial))
        try:
            with self._reap_lock:
                process.start()
        finally:
            send.close()  # only the child writes; EOF then means the child is gone
        handle = LocalHandle(run_id, process, receive, stop)
        with self._lock:
            self._live.add(handle)
        return handle

    def events(self, handle: LocalHandle) -> Iterator[WorkerMessage]:
        conn, process = handle.conn, handle.process
        try:
            while True:
                ready = wait([conn, process.sentinel])
                if conn not in ready:
                    # the process ended; take what it sent before it went
                    while conn.poll():
                        yield WorkerMessage(*conn.recv())
                    break
                yield WorkerMessage(*conn.recv())
        except (EOFError, OSError):
            pass  # pipe closed: the worker exited or was killed mid-message
        finally:
            conn.close()
        wait([process.sentinel], timeout=KILL_AFTER_TERMINATE_S + 1)  # EOF may come first
        with self._reap_lock:
            process.join(timeout=0)
        handle.exited.set()
        for timer in handle.timers:
            timer.cancel()
        with self._lock:
            self._live.discard(handle)
        yield WorkerMessage("exit", {"exitcode": process.exitcode,
                                     "reason": exit_reason(process.exitcode)})

    def cancel(self, handle: LocalHandle) -> None:
        handle.stop.value = True
        if not handle.timers:
            timer = threading.Timer(self.grace_s, self._terminate, args=(handle,))
            timer.daemon = True
            handle.timers.append(timer)
            timer.start()

    @staticmethod
    def _terminate(handle: LocalHandle) -> None:
        if not handle.exited.is_set():
            handle.process.terminate()
            if not handle.exited.wait(KILL_AFTER_TERMINATE_S):
                handle.process.kill()

    def shutdown(self) -> None:
        with self._lock:
            handles = list(self._live)
        for handle in handles:
            handle.stop.value = True
            if not handle.exited.is_set():
                handle.process.terminate()
        for handle in handles:
            if not handle.exited.wait(KILL_AFTER_TERMINATE_S):
                handle.process.kill()
