"""ThreadRunner: each job in a thread of this process (tests, and servers that must not spawn).

The same worker code as the process runners (worker.execute_job); ``step_delay`` seconds are
slept at every stop check, so a test can act mid-job.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .runner import WorkerMessage
from .worker import execute_job


@dataclass(eq=False)
class ThreadHandle:
    job_id: str
    messages: queue.Queue = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)


class ThreadRunner:
    name = "thread"

    def __init__(self, step_delay: float = 0.0) -> None:
        self.step_delay = step_delay
        self._handles: list[ThreadHandle] = []

    @staticmethod
    def cpus() -> int:
        return os.cpu_count() or 1

    def start(self, job: dict, *, job_id: str) -> ThreadHandle:
        handle = ThreadHandle(job_id)
        self._handles.append(handle)

        def stop() -> bool:
            if self.step_delay:
                time.sleep(self.step_delay)
            return handle.stop.is_set()

        def body() -> None:
            try:
                execute_job(job, lambda m: handle.messages.put(WorkerMessage(*m)), stop)
            finally:
                handle.messages.put(WorkerMessage("exit", {"exitcode": 0, "reason": None}))

        threading.Thread(target=body, name=f"job-{job_id}", daemon=True).start()
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
