"""Admission and ordering of jobs: at most ``max_jobs`` running, one FIFO queue for runs and
sweeps together, a per-client quota and a queue cap for each kind of job."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple


class AdmissionError(Exception):
    """A job refused at submission; ``status_code`` is the HTTP answer."""

    status_code = 429


class QuotaExceeded(AdmissionError):
    status_code = 429


class QueueFull(AdmissionError):
    status_code = 503


class Limits(NamedTuple):
    """For one kind of job: active (queued + running) per client, and queued in all."""

    quota: int
    max_queued: int


class JobQueue:
    """Pure bookkeeping (no processes, no I/O) so its rules are easy to test."""

    def __init__(self, max_jobs: int, limits: dict[str, Limits]) -> None:
        self.max_jobs, self.limits = max_jobs, limits
        self.running: set[str] = set()
        self.queued: deque[str] = deque()
        self._owner: dict[str, tuple[str, str]] = {}  # job id → (client, kind)

    def active(self, client: str, kind: str) -> int:
        return sum(1 for owner in self._owner.values() if owner == (client, kind))

    def admit(self, job_id: str, client: str, kind: str = "run") -> None:
        """Reserve a place for ``job_id`` (it counts against the quota and the queue cap from
        now), or raise if the client is at quota or the queue is full; enqueue() queues it."""
        quota, max_queued = self.limits[kind]
        if self.active(client, kind) >= quota:
            raise QuotaExceeded(f"quota: this client already has {quota} active {kind}(s) "
                                f"(the limit); wait for one to finish or cancel it")
        waiting = sum(1 for j, (_, k) in self._owner.items() if k == kind
                      and j not in self.running)
        if len(self.running) >= self.max_jobs and waiting >= max_queued:
            raise QueueFull(f"queue full: {waiting} {kind}s are waiting; try again later")
        self._owner[job_id] = (client, kind)

    def enqueue(self, job_id: str) -> None:
        """Queue an admitted job (once it is persisted) at the back."""
        self.queued.append(job_id)

    def next_to_start(self) -> str | None:
        """Move the head of the queue to running if a slot is free."""
        if self.queued and len(self.running) < self.max_jobs:
            job_id = self.queued.popleft()
            self.running.add(job_id)
            return job_id
        return None

    def position(self, job_id: str) -> int | None:
        """1 = next to start; None when not queued."""
        try:
            return self.queued.index(job_id) + 1
        except ValueError:
            return None

    def remove(self, job_id: str) -> None:
        """Forget a job that ended or was cancelled while queued."""
        self.running.discard(job_id)
        if job_id in self.queued:
            self.queued.remove(job_id)
        self._owner.pop(job_id, None)
