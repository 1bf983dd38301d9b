"""LocalProcessRunner: one worker process per job, started from a forkserver or spawn context.

Never plain fork: the server is threaded (store, readers), and a forked copy of held locks hangs.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from .processes import KILL_AFTER_TERMINATE_S, ProcessJobs, drain
from .runner import WorkerMessage
from .worker import job_process

# imported once by the forkserver, so each fork starts training without re-importing torch
# torch._dynamo: torch.optim imports it lazily at the first optimizer (~2 s), which would
# otherwise delay the start of every run; server.jobs.preload compiles li2core.kernels
PRELOAD = ["torch", "torch._dynamo", "li2core.train", "li2core.batched", "server.jobs.worker",
           "server.jobs.preload"]


@dataclass(eq=False)
class LocalHandle:
    job_id: str
    process: multiprocessing.process.BaseProcess
    conn: Connection
    stop: ctypes.c_bool  # shared with the worker, which polls it between steps
    timers: list[threading.Timer] = field(default_factory=list)
    # set by the events() thread, the only one that joins (see _reap_lock)
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int | None:
        return self.process.pid


class LocalProcessRunner(ProcessJobs):
    """Runner on this machine; ``cancel`` sets a stop flag and terminates after ``grace_s``."""

    name = "local"

    def __init__(self, start_method: str = "forkserver", grace_s: float = 5.0) -> None:
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be forkserver or spawn, not {start_method!r}")
        super().__init__(grace_s)
        self._ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(PRELOAD)
        # Process.start() polls every finished child; a forkserver child's exit status can be
        # read only once, so a poll racing our join would leave a bogus 255: one at a time
        self._reap_lock = threading.Lock()

    @staticmethod
    def cpus() -> int:
        return os.cpu_count() or 1

    def start(self, job: dict, *, job_id: str) -> LocalHandle:
        receive, send = self._ctx.Pipe(duplex=False)
        # a shared byte, not an Event: no semaphores to leak when the server dies by a signal
        stop = self._ctx.RawValue(ctypes.c_bool, False)
        process = self._ctx.Process(target=job_process, name=f"li2-{job['kind']}-{job_id}",
                                    daemon=True, args=(job, send, stop))
        try:
            with self._reap_lock:
                process.start()
        finally:
            send.close()  # only the child writes; EOF then means the child is gone
        handle = LocalHandle(job_id, process, receive, stop)
        self._track(handle)
        return handle

    def events(self, handle: LocalHandle) -> Iterator[WorkerMessage]:
        process = handle.process
        yield from drain(handle.conn, process)
        # EOF may come first; a process still tearing down after that reports exitcode None
        wait([process.sentinel], timeout=KILL_AFTER_TERMINATE_S + 1)
        with self._reap_lock:
            process.join(timeout=0)
        yield self._reaped(handle)

    @staticmethod
    def _ask_to_stop(handle: LocalHandle) -> None:
        handle.stop.value = True
