"""Admission and ordering of jobs: at most ``max_jobs`` running, FIFO queue, per-client quota."""

from __future__ import annotations

from collections import deque


class AdmissionError(Exception):
    """A run refused at submission; ``status_code`` is the HTTP answer."""

    status_code = 429


class QuotaExceeded(AdmissionError):
    status_code = 429


class QueueFull(AdmissionError):
    status_code = 503


class JobQueue:
    """Pure bookkeeping (no processes, no I/O) so its rules are easy to test."""

    def __init__(self, max_jobs: int, quota: int, max_queued: int) -> None:
        self.max_jobs, self.quota, self.max_queued = max_jobs, quota, max_queued
        self.running: set[str] = set()
        self.queued: deque[str] = deque()
        self._client: dict[str, str] = {}

    def active(self, client: str) -> int:
        return sum(1 for c in self._client.values() if c == client)

    def admit(self, run_id: str, client: str) -> None:
        """Queue ``run_id``, or raise if the client is at quota or the queue is full."""
        if self.active(client) >= self.quota:
            raise QuotaExceeded(f"quota: this client already has {self.quota} active run(s) "
                                f"(the limit); wait for one to finish or cancel it")
        if len(self.running) >= self.max_jobs and len(self.queued) >= self.max_queued:
            raise QueueFull(f"queue full: {len(self.queued)} runs are waiting; try again later")
        self._client[run_id] = client
        self.queued.append(run_id)

    def enqueue(self, job_id: str) -> None:
        """Queue a job admitted elsewhere (a sweep has its own quota and queue limit)."""
        self.queued.append(job_id)

    def next_to_start(self) -> str | None:
        """Move the head of the queue to running if a slot is free."""
        if self.queued and len(self.running) < self.max_jobs:
            run_id = self.queued.popleft()
            self.running.add(run_id)
            return run_id
        return None

    def position(self, run_id: str) -> int | None:
        """1 = next to start; None when not queued."""
        try:
            return self.queued.index(run_id) + 1
        except ValueError:
            return None

    def remove(self, run_id: str) -> None:
        """Forget a run that ended or was cancelled while queued."""
        self.running.discard(run_id)
        if run_id in self.queued:
            self.queued.remove(run_id)
        self._client.pop(run_id, None)
