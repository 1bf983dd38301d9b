"""RunStream: the one place where a run's worker messages become published frames and stored
rows, for a run of its own and for each cell of a sweep alike.

Each frame is published first (the hub numbers it), then stored with that seq, so a viewer
that reconnects with ``since`` and the store agree on every number.
"""

from __future__ import annotations

import time
from typing import Any

from ..hub import Hub
from ..store import RunRecord, RunStore, StageRecord


class RunStream:
    """A live run's record, its hub channel and its rows in the store."""

    def __init__(self, record: RunRecord, hub: Hub, store: RunStore) -> None:
        self.record, self.hub, self.store = record, hub, store
        hub.open(record.id)

    @property
    def ended(self) -> bool:
        return self.record.status not in ("queued", "running")

    def _publish(self, message: dict) -> int:
        channel = self.hub.get(self.record.id)
        return channel.publish(message) if channel else 0

    def _update(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self.record, name, value)
        self.store.update_run(self.record.id, **fields)

    def queued(self, position: int) -> None:
        self._publish({"type": "status", "status": "queued", "queue_position": position})

    def running(self) -> None:
        """The job got its slot (a sweep's cells wait for their own ``started``)."""
        self._update(status="running", started_at=time.time())
        self._publish({"type": "status", "status": "running", "queue_position": None})

    def started(self, started: dict) -> None:
        if self.record.status != "running":
            self._update(status="running", started_at=time.time())
        self._update(started=started)
        self._publish({"type": "status", "status": "running", "queue_position": None,
                       "started": started})

    def metrics(self, rows: list[dict]) -> None:
        self.store.add_metrics(self.record.id, self._publish({"type": "metrics", "rows": rows}),
                               rows)

    def snapshot(self, step: int, arrays: dict) -> None:
        channel = self.hub.get(self.record.id)
        if channel is not None:
            self.store.add_snapshot(self.record.id, channel.publish_snapshot(step, arrays), step,
                                    arrays)

    def stage(self, data: dict) -> None:
        seq = self._publish({"type": "stage", **data})
        self.store.add_stage(self.record.id, StageRecord(seq, data["step"], data["stage"],
                                                         data.get("evidence", {}),
                                                         int(data.get("layer", 1))))

    def finished(self, summary: dict) -> None:
        self.record.summary = summary  # stored with the terminal state in end()

    def end(self, status: str, error: str | None) -> None:
        """Persist the terminal state, tell viewers and close the channel."""
        rec = self.record
        self._publish({"type": "status", "status": status, "queue_position": None,
                       "error": error})
        last_seq = self._publish({"type": "finished", "status": status,
                                  "summary": rec.summary, "error": error})
        self._update(status=status, error=error, finished_at=time.time(), summary=rec.summary,
                     last_seq=last_seq or rec.last_seq)
        self.hub.close(rec.id)
