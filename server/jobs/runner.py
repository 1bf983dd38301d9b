"""The Runner seam: where runs execute (local processes now, a distributed backend later)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from li2core.config import RunConfig

# kinds a worker sends; the runner itself appends one final "exit"
WORKER_KINDS = ("started", "metrics", "snapshot", "stage", "finished", "error")


class WorkerMessage(NamedTuple):
    """``kind`` with its data: started→dict, metrics→[row], snapshot→(step, {name: array}),
    stage→dict, finished→summary, error→text, exit→{"exitcode", "reason"}."""

    kind: str
    data: Any


class Runner(Protocol):
    """start(config) → handle; events(handle) blocks and ends with one "exit"; cancel(handle)."""

    def start(self, config: RunConfig, *, run_id: str, max_steps_per_s: float | None = None,
              initial: dict | None = None) -> Any:
        """``initial`` = {"W", "V", "step"}: start from stored weights (a fork)."""
        ...

    def events(self, handle: Any) -> Iterator[WorkerMessage]: ...

    def cancel(self, handle: Any) -> None:
        """Ask the run to stop cooperatively; force it after the runner's grace period."""
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
