"""RayRunner: each job a Ray task (``num_cpus=1``) on a local Ray or a cluster, its messages
streamed back through a Ray streaming generator; cancel is ``ray.cancel``.

In the task, the job trains on a thread of the worker while the generator yields what it sends;
Ray's cancel arrives as a KeyboardInterrupt there, which stops the training at its next step.
A worker that dies (killed, out of memory, node lost) ends the stream with Ray's error, which
becomes the job's failure reason. Ray is optional: ``pip install li2lab[cluster]``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .runner import WorkerMessage

log = logging.getLogger(__name__)

_END = object()


def ray_job(job: dict) -> Iterator[tuple]:
    """The task body: a ``hello`` (worker pid and node), then the job's messages."""
    import ray

    from .processes import setup_worker_process
    from .worker import execute_job

    setup_worker_process(ignore_interrupt=False)  # Ray's cancel is a KeyboardInterrupt
    messages: queue.Queue = queue.Queue()
    stop = threading.Event()

    def body() -> None:
        try:
            execute_job(job, messages.put, stop.is_set)
        finally:
            messages.put(_END)

    thread = threading.Thread(target=body, name="li2-job", daemon=True)
    thread.start()
    yield ("hello", {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()})
    try:
        while (message := messages.get()) is not _END:
            yield message
    except KeyboardInterrupt:
        stop.set()  # the worker process is reused: the training must end before the task
        thread.join()
        raise


@dataclass(eq=False)
class RayHandle:
    job_id: str
    stream: Any  # ray ObjectRefGenerator
    pid: int | None = None
    node: str | None = None
    cancelled: bool = False
    ended: threading.Event = field(default_factory=threading.Event)
    timers: list[threading.Timer] = field(default_factory=list)


class RayRunner:
    """Runner on Ray. ``address`` None starts a local Ray instance on this machine; ``auto`` or
    ``ray://host:port`` joins a running cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, grace_s: float = 5.0,
                 num_cpus: int | None = None) -> None:
        import ray

        self._ray, self.grace_s = ray, grace_s
        if not ray.is_initialized():
            here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            options: dict = {"address": address, "include_dashboard": False,
                             "log_to_driver": False, "configure_logging": False}
            if address is None:  # our own Ray: its workers import this source tree
                options["num_cpus"] = num_cpus
                options["runtime_env"] = {"env_vars": {
                    "PYTHONPATH": os.pathsep.join(filter(None, [
                        here, os.environ.get("PYTHONPATH")])),
                    "OMP_NUM_THREADS": "1"}}
            ray.init(**options)
        self._task = ray.remote(num_cpus=1, max_retries=0)(ray_job)
        self._live: set[RayHandle] = set()
        self._lock = threading.Lock()

    def cpus(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def start(self, job: dict, *, job_id: str) -> RayHandle:
        stream = self._task.options(num_returns="streaming", name=f"li2-{job['kind']}-{job_id}"
                                    ).remote(job)
        handle = RayHandle(job_id, stream)
        with self._lock:
            self._live.add(handle)
        return handle

    def events(self, handle: RayHandle) -> Iterator[WorkerMessage]:
        ray = self._ray
        exit_info: dict = {"exitcode": 0, "reason": None}
        try:
            for ref in handle.stream:
                kind, data = ray.get(ref)
                if kind == "hello":
                    handle.pid, handle.node = data["pid"], data["node"]
                    continue
                yield WorkerMessage(kind, data)
        except ray.exceptions.TaskCancelledError:
            exit_info = {"exitcode": None, "reason": "cancelled through Ray"}
        except ray.exceptions.RayTaskError as exc:
            cancelled = isinstance(exc.cause, (ray.exceptions.TaskCancelledError,
                                               KeyboardInterrupt))
            exit_info = {"exitcode": None, "reason": "cancelled through Ray" if cancelled
                         else f"the job raised in its Ray worker: {exc.cause!r}"}
        except ray.exceptions.RayError as exc:  # worker died, node lost, out of memory
            exit_info = {"exitcode": None, "reason": f"Ray worker failed: {_first_line(exc)}"}
        finally:
            handle.ended.set()
            for timer in handle.timers:
                timer.cancel()
            with self._lock:
                self._live.discard(handle)
        yield WorkerMessage("exit", exit_info)

    def cancel(self, handle: RayHandle) -> None:
        """Ray's cancel (a KeyboardInterrupt in the task); forced after ``grace_s``."""
        if handle.cancelled or handle.ended.is_set():
            return
        handle.cancelled = True
        self._ray.cancel(handle.stream)
        timer = threading.Timer(self.grace_s, self._force, args=(handle,))
        timer.daemon = True
        handle.timers.append(timer)
        timer.start()

    def _force(self, handle: RayHandle) -> None:
        if not handle.ended.is_set():
            self._ray.cancel(handle.stream, force=True)

    def shutdown(self) -> None:
        with self._lock:
            handles = list(self._live)
        for handle in handles:
            self._ray.cancel(handle.stream, force=True)
        for handle in handles:
            handle.ended.wait(5)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
