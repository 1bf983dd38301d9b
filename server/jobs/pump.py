"""What RunService and SweepService share about a running job: the reader thread that hands
the runner's messages to the event loop, and the wall-time limit."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from .runner import WorkerMessage


class WorkerPump:
    """Mixin for a service on the event loop with ``_loop``, ``runner``, ``live`` (job id →
    entry with ``failure`` and ``handle``), ``wall_time_limit`` and ``_on_message``."""

    _job: str  # "run" or "sweep": names the reader thread and the log line
    _lost_stream: str  # the job's error when its event stream breaks
    _log: logging.Logger  # the service's own logger
    _loop: asyncio.AbstractEventLoop | None

    def _start_pump(self, job_id: str, handle: Any) -> None:
        threading.Thread(target=self._pump, args=(job_id, handle), daemon=True,
                         name=f"{self._job}-{job_id}-events").start()

    def _pump(self, job_id: str, handle: Any) -> None:
        """Reader thread: block on the runner's events and hand each one to the loop."""
        try:
            for message in self.runner.events(handle):
                self._to_loop(job_id, message)
        except Exception as exc:  # noqa: BLE001 - a broken stream fails this job only
            self._log.exception("event stream of %s %s broke", self._job, job_id)
            self._to_loop(job_id, WorkerMessage("exit", {
                "exitcode": None, "reason": f"{self._lost_stream}: {exc}"}))

    def _to_loop(self, job_id: str, message: WorkerMessage) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_message, job_id, message)
        except RuntimeError:
            pass  # loop closed at shutdown; keep draining so the runner can reap the worker

    def _time_up(self, job_id: str) -> None:
        live = self.live.get(job_id)
        if live is not None and live.failure is None:
            live.failure = f"wall-time limit of {self.wall_time_limit:g} s exceeded"
            if live.handle is not None:
                self.runner.cancel(live.handle)
