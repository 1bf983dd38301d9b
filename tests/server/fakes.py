"""A scripted Runner for tests: the same protocol as LocalProcessRunner, no processes, no torch
for runs; sweeps go to a ThreadRunner (real training, in a thread)."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from li2core.config import RunConfig
from server.jobs import ThreadRunner, WorkerMessage


class FakeHandle:
    def __init__(self, run_id: str, config, max_steps_per_s) -> None:
        self.run_id, self.config, self.max_steps_per_s = run_id, config, max_steps_per_s
        self.messages: queue.Queue = queue.Queue()
        self.cancelled = threading.Event()
        self.ended = threading.Event()

    def emit(self, kind: str, data) -> None:
        """A message as a one-run worker sends it: tests write the run's data, without the
        cell index (always 0 for a run) that the worker protocol adds."""
        if kind == "metrics":
            data = {0: data}
        elif kind == "snapshot":
            data = (0, *data)
        elif kind in ("started", "stage", "finished"):
            data = (0, data)
        self.messages.put(WorkerMessage(kind, data))

    def exit(self, exitcode: int = 0, reason: str | None = None) -> None:
        self.emit("exit", {"exitcode": exitcode, "reason": reason})


def fake_row(step: int) -> dict:
    return {"step": step, "train_loss": 1.0 / (step + 1), "train_acc": min(1.0, step / 50),
            "test_loss": 1.0, "test_acc": 0.0, "wall_time": time.time()}


def fake_arrays(step: int, k: int = 4, m: int = 3) -> dict[str, np.ndarray]:
    return {"W": np.full((2 * m, k), step, np.float32), "V": np.arange(k * m, dtype=np.float32)
            .reshape(k, m)}


class FakeRunner:
    """``auto``: each run plays config.steps rows (10 per batch), a snapshot every
    config.snapshot_every steps and a stage at step 10, ``step_delay`` seconds per batch.
    Otherwise tests drive each handle with emit()/exit()."""

    name = "fake"

    def __init__(self, auto: bool = True, step_delay: float = 0.0,
                 sweep_step_delay: float = 0.0) -> None:
        self.auto, self.step_delay = auto, step_delay
        self.sweeps = ThreadRunner(sweep_step_delay)
        self.handles: dict[str, FakeHandle] = {}
        self.started: list[str] = []
        self.cancels: list[str] = []
        self.shut_down = False

    @staticmethod
    def cpus() -> int:
        return 1

    def start(self, job: dict, *, job_id: str):
        if job["kind"] == "sweep":
            return self.sweeps.start(job, job_id=job_id)
        run_id = job_id
        handle = FakeHandle(run_id, RunConfig(**job["config"]), job.get("max_steps_per_s"))
        self.handles[run_id] = handle
        self.started.append(run_id)
        if self.auto:
            threading.Thread(target=self._play, args=(handle,), daemon=True).start()
        return handle

    def _play(self, h: FakeHandle) -> None:
        cfg = h.config
        h.emit("started", {"config": cfg.model_dump(), "group": {"name": cfg.group},
                           "n_train": 1, "n_test": 1, "p_crit": 0.1, "prediction": {}})
        rows: list[dict] = []
        for step in range(cfg.steps + 1):
            rows.append(fake_row(step))
            if step == 10:
                h.emit("metrics", rows)
                rows = []
                h.emit("stage", {"step": 10, "stage": "independent", "evidence": {"rule": "x"}})
            if step % cfg.snapshot_every == 0 or step == cfg.steps:
                if rows:
                    h.emit("metrics", rows)
                    rows = []
                h.emit("snapshot", (step, fake_arrays(step)))
            if len(rows) == 10:
                h.emit("metrics", rows)
                rows = []
                time.sleep(self.step_delay)
            if h.cancelled.is_set():
                break
        if rows:
            h.emit("metrics", rows)
        h.emit("finished", {"stopped": h.cancelled.is_set(), "final": {"step": step}})
        h.exit(0)

    def events(self, handle):
        if not isinstance(handle, FakeHandle):
            yield from self.sweeps.events(handle)
            return
        while True:
            message = handle.messages.get()
            yield message
            if message.kind == "exit":
                handle.ended.set()
                return

    def cancel(self, handle) -> None:
        if not isinstance(handle, FakeHandle):
            return self.sweeps.cancel(handle)
        self.cancels.append(handle.run_id)
        handle.cancelled.set()
        if not self.auto:
            handle.emit("finished", {"stopped": True})
            handle.exit(0)

    def shutdown(self) -> None:
        self.shut_down = True
        self.sweeps.shutdown()
        for handle in self.handles.values():
            if not handle.ended.is_set():
                handle.cancelled.set()
                handle.exit(-15, "worker process was killed by SIGTERM")
