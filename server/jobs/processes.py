"""One worker process per job (local.py, worker.py; Ray's workers reuse the child's part):
the child's set-up and failure report, the parent's draining loop, and cancel / shutdown
(ask to stop, terminate after a grace period, then kill).

No top-level torch import: the forkserver preloads this module (via worker.py), and a spawned
child must set OMP_NUM_THREADS before torch loads.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from .runner import WorkerMessage, exit_reason

KILL_AFTER_TERMINATE_S = 2.0


def setup_worker_process(ignore_interrupt: bool = True) -> None:
    """Child side, first thing: one torch thread, and Ctrl-C left to the server (not under
    Ray, whose cancel arrives as a KeyboardInterrupt)."""
    if ignore_interrupt:
        # the server owns shutdown: a terminal Ctrl-C must not kill jobs behind its back
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@contextmanager
def reporting_failure(flush: Callable[[], None], send: Callable[[tuple], None]):
    """Child side, around the job: flush at the end; an exception becomes one ``error``
    message (after the rows batched before it), a closed pipe ends the job quietly."""
    try:
        yield
        flush()
    except (BrokenPipeError, ConnectionResetError):
        return  # the server is gone; nobody is listening
    except Exception as exc:  # noqa: BLE001 - reported to the server as the job's failure
        traceback.print_exc(file=sys.stderr)
        flush()
        send(("error", f"{type(exc).__name__}: {exc}"))


def drain(conn: Connection, process: BaseProcess) -> Iterator[WorkerMessage]:
    """Parent side: every message the child sends until it exits or the pipe breaks; closes
    ``conn``. Reaping the process is left to the caller (the runners reap differently)."""
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


class ProcessJobs:
    """Bookkeeping, cancel and shutdown of a runner with one process per job. Its handles
    have ``process``, ``timers`` and ``exited``; ``_ask_to_stop`` sets the job's stop flag."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._live: set = set()
        self._lock = threading.Lock()

    @staticmethod
    def _ask_to_stop(handle) -> None:
        raise NotImplementedError

    def _track(self, handle) -> None:
        with self._lock:
            self._live.add(handle)

    def _reaped(self, handle) -> WorkerMessage:
        """After the events thread joined the process: forget it; the final ``exit`` message."""
        process = handle.process
        handle.exited.set()
        for timer in handle.timers:
            timer.cancel()
        with self._lock:
            self._live.discard(handle)
        return WorkerMessage("exit", {"exitcode": process.exitcode,
                                      "reason": exit_reason(process.exitcode)})

    def cancel(self, handle) -> None:
        self._ask_to_stop(handle)
        if not handle.timers:
            timer = threading.Timer(self.grace_s, self._terminate, args=(handle,))
            timer.daemon = True
            handle.timers.append(timer)
            timer.start()

    @staticmethod
    def _terminate(handle) -> None:
        if not handle.exited.is_set():
            handle.process.terminate()
            if not handle.exited.wait(KILL_AFTER_TERMINATE_S):
                handle.process.kill()

    def shutdown(self) -> None:
        with self._lock:
            handles = list(self._live)
        for handle in handles:
            self._ask_to_stop(handle)
            if not handle.exited.is_set():
                handle.process.terminate()
        for handle in handles:
            if not handle.exited.wait(KILL_AFTER_TERMINATE_S):
                handle.process.kill()
