"""The Runner seam: where jobs execute (local processes, a thread, or a Ray cluster)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

# kinds a worker sends (server/jobs/worker.py); the runner itself appends one final "exit"
WORKER_KINDS = ("started", "metrics", "snapshot", "stage", "finished", "progress", "error")


class WorkerMessage(NamedTuple):
    """``kind`` with its data: started→(cell, dict), metrics→{cell: [row]},
    snapshot→(cell, step, {name: array}), stage→(cell, dict), finished→(cell, summary),
    progress→run-steps done, error→text, exit→{"exitcode", "reason"}."""

    kind: str
    data: Any


class Runner(Protocol):
    """start(job) → handle; events(handle) blocks and ends with one "exit"; cancel(handle).
    A job is the dict server/jobs/worker.py documents (a run or a sweep)."""

    name: str  # "local", "ray", ...: reported by /api/health

    def start(self, job: dict, *, job_id: str) -> Any: ...

    def events(self, handle: Any) -> Iterator[WorkerMessage]: ...

    def cancel(self, handle: Any) -> None:
        """Ask the job to stop cooperatively; force it after the runner's grace period."""
        ...

    def cpus(self) -> int:
        """How many one-thread jobs the runner can train at once (max_jobs by default)."""
        ...

    def shutdown(self) -> None:
        """Stop every job now (server exit)."""
        ...


def exit_reason(exitcode: int | None) -> str | None:
    """Why a worker process ended, in words; None for a clean exit."""
    if exitcode == 0:
        return None
    if exitcode is None:
        return "worker process did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process was killed by {name}"
    return f"worker process exited with code {exitcode}"
