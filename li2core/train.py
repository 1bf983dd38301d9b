"""Full-batch training that yields typed events (li2-theory §2).

``train(config)`` is a generator: iterate it, or stop it between steps by passing ``stop``.
Instruments plug in through the ``Probe`` seam; li2core.instruments provides the real one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from .config import RunConfig
from .data import GroupDataset, make_dataset
from .denormals import flushes_denormals
from .events import Event, Finished, RunStarted, Snapshot, StageChange, StepMetrics
from .model import init_layers, init_weights
from .optim import make_optimizers
from .step import make_step

THRESHOLDS = (("test_acc", 0.5), ("test_acc", 0.9), ("test_acc", 0.99), ("train_acc", 0.99))


@dataclass
class TrainState:
    """What a probe may read: the live tensors (do not modify) and the data."""

    config: RunConfig
    data: GroupDataset
    w: torch.Tensor  # (2M, K)
    v: torch.Tensor  # (K, M)
    step: int
    # what this step already computed at these weights, for probes to reuse (None: not kept)
    grad_w: torch.Tensor | None = None  # ∂J/∂W, (2M, K)
    forward: tuple | None = None  # training rows' (outputs, class sums YᵀF, column sums 𝟙ᵀF)
    layers: list[torch.Tensor] = field(default_factory=list)  # W_2..W_L (K, K), depth ≥ 2


class Probe(Protocol):
    """Instrumentation seam: scalars every eval, arrays every snapshot, stage changes."""

    def scalars(self, state: TrainState, row: dict[str, float]) -> dict[str, float]: ...

    def arrays(self, state: TrainState) -> dict[str, np.ndarray]: ...

    def stages(self, state: TrainState, row: dict[str, float]) -> list[StageChange]: ...

    def summary(self) -> dict: ...


class NullProbe:
    """No instruments: weights-only snapshots, no stages."""

    def scalars(self, state, row):
        return {}

    def arrays(self, state):
        return {}

    def stages(self, state, row):
        return []

    def summary(self):
        return {}


def first_steps() -> dict[str, int | None]:
    """``{"test_acc>=0.9": None, …}``, one key per THRESHOLDS entry: the first step the
    metric reached the bound, None until it does."""
    return {f"{n}>={t}": None for n, t in THRESHOLDS}


def note_first_steps(first: dict[str, int | None], row: dict, step: int) -> None:
    """Record ``step`` for every bound in ``first`` that ``row`` reaches for the first time."""
    for key in first:
        name, thr = key.split(">=")
        if first[key] is None and row[name] >= float(thr):
            first[key] = step


def run_summary(config: RunConfig, final: dict, done: int, stopped: bool, elapsed: float,
                first: dict, stages: list[dict]) -> dict:
    """The fields of a Finished summary that train() and the batched engine both report;
    each caller appends its own after them."""
    return {
        "config": config.model_dump(),
        "final": final,
        "steps_done": done,
        "stopped": stopped,
        "steps_per_s": done / elapsed if elapsed > 0 else 0.0,
        "first_step": first,
        "stages": stages,
    }


class StepRate:
    """Steps per second, re-measured over windows of at least 0.5 s (0.0 until the first one
    ends); with ``max_steps_per_s`` it also throttles, sleeping off steps that end early."""

    def __init__(self, start: float, max_steps_per_s: float | None = None) -> None:
        self.rate = 0.0
        self._t_window, self._steps_window, self._max = start, 0, max_steps_per_s

    def step_done(self) -> None:
        self._steps_window += 1
        now = time.perf_counter()
        if self._max:
            # throttle for lectures: sleep off whatever this step finished early
            ahead = self._steps_window / self._max - (now - self._t_window)
            if ahead > 0:
                time.sleep(ahead)
                now = time.perf_counter()
        if now - self._t_window >= 0.5:
            self.rate = self._steps_window / (now - self._t_window)
            self._t_window, self._steps_window = now, 0


class SnapshotHandoff:
    """Snapshots whose instrument arrays are computed on a helper thread from copies of the
    weights, so the loop trains on; ``ready()`` yields them in step order once computed."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self._pending: deque[tuple[int, dict, Future]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def add(self, state: TrainState, weights: dict) -> Iterator[Snapshot]:
        """Hand off the snapshot at ``state.step``; a probe that cannot hand off (or none)
        computes its arrays now, after the snapshots before it."""
        make_job = getattr(self.probe, "arrays_job", None)
        job = make_job(state) if make_job is not None else None
        if job is None:
            yield from self.ready(wait=True)
            yield Snapshot(step=state.step, arrays={**weights, **self.probe.arrays(state)})
            return
        if self._pool is None:
            # a new thread starts with the default intra-op thread count, not the run's own;
            # its float mode it inherits from this one, created inside the loop's flush
            # (denormals.flushed), so the arrays are computed as they would be inline
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="li2-snapshot",
                                            initializer=torch.set_num_threads,
                                            initargs=(torch.get_num_threads(),))
        self._pending.append((state.step, weights, self._pool.submit(job)))

    def ready(self, wait: bool = False) -> Iterator[Snapshot]:
        while self._pending and (wait or self._pending[0][2].done()):
            step, weights, future = self._pending.popleft()
            yield Snapshot(step=step, arrays={**weights, **future.result()})

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no CUDA device is available")
    return torch.device(name)


def _default_probe(config: RunConfig, data: GroupDataset) -> Probe:
    try:
        from .instruments import make_probe
    except ImportError:  # instruments are optional for a bare engine
        return NullProbe()
    return make_probe(config, data)


def _initial_layer(initial: dict, index: int, k: int) -> torch.Tensor:
    """W_index (K×K) from a fork's stored weights."""
    name = f"W{index}"
    if name not in initial:
        raise ValueError(f"initial weights lack {name}, which a network of this depth needs")
    x = torch.as_tensor(np.asarray(initial[name]), dtype=torch.float32).clone()
    if x.shape != (k, k):
        raise ValueError(f"initial weights: {name} has shape {tuple(x.shape)}; expected {(k, k)}")
    return x


@flushes_denormals
def train(
    config: RunConfig,
    *,
    stop: Callable[[], bool] | None = None,
    instruments: bool = True,
    initial: dict | None = None,
    max_steps_per_s: float | None = None,
    probe: Probe | None = None,
) -> Iterator[Event]:
    """Train ``config`` and yield RunStarted, StepMetrics, Snapshot, StageChange, Finished.

    ``initial`` = {"W", "V", "step"} (and "W2".. for depth ≥ 2) starts from stored weights (a
    fork; optional "stages" and "fork" = the parent's stage events up to the fork and
    {"run_id", "step"}); ``max_steps_per_s``
    throttles for lectures; ``stop()`` is polled between steps.
    """
    device = resolve_device(config.device)
    group = config.build_group()
    data = make_dataset(group, config.train_fraction, config.seed).to(device)
    m, k = group.order, config.hidden
    gen = torch.Generator().manual_seed(config.seed)
    w0, v0 = init_weights(m, k, config.top_init_scale, gen)
    extra0 = init_layers(k, config.depth, gen)
    start_step = 0
    if initial is not None:
        extra0 = [_initial_layer(initial, i, k) for i in range(2, config.depth + 1)]
        w0 = torch.as_tensor(np.asarray(initial["W"]), dtype=torch.float32).clone()
        v0 = torch.as_tensor(np.asarray(initial["V"]), dtype=torch.float32).clone()
        if w0.shape != (2 * m, k) or v0.shape != (k, m):
            raise ValueError(f"initial weights have shapes {tuple(w0.shape)}, {tuple(v0.shape)}; "
                             f"expected {(2 * m, k)}, {(k, m)}")
        start_step = int(initial.get("step", 0))
    w, v = w0.to(device), v0.to(device)
    layers = [x.to(device) for x in extra0]
    engine = make_step(config, data, layers)
    engine.attach(w, v)
    ridge = config.top_layer == "ridge"
    optimizers = make_optimizers(config.optimizer, w, None if ridge else v, config.lr,
                                 config.weight_decay, layers)
    if probe is None:
        probe = _default_probe(config, data) if instruments else NullProbe()
    if initial is not None and initial.get("stages") and hasattr(probe, "inherit"):
        # a fork continues its parent's stage history instead of starting at Stage I again
        probe.inherit(initial["stages"], initial.get("fork") or {"step": start_step})

    from .irreps import isotypic_components
    from .theory import min_width, p_crit, predict_verdict

    facts = {"p_crit": p_crit(group), "min_width": min_width(group),
             "components": isotypic_components(group).describe()}
    yield RunStarted(
        config=config.model_dump(), group={**group.describe(), **facts},
        n_train=data.n_train, n_test=data.n_test, p_crit=facts["p_crit"],
        prediction=predict_verdict(config),
    )

    state = TrainState(config, data, w, v, start_step, layers=layers)
    first = first_steps()
    stages: list[dict] = []
    last = {}
    t_start = time.perf_counter()
    clock = StepRate(t_start, max_steps_per_s)
    end = start_step + config.steps
    stopped = False

    snapshots = SnapshotHandoff(probe)
    try:
        for step in range(start_step, end + 1):
            # step == end: evaluate and snapshot the final weights without another update
            is_eval = (step - start_step) % config.eval_every == 0 or step == end
            wants_forward = getattr(probe, "wants_forward", None)
            engine.collect = bool(wants_forward and wants_forward(step))
            train_metrics = engine.step(w, v, backward=step < end)
            state.grad_w = w.grad if step < end else None
            state.forward = engine.forward_parts() if engine.collect else None
            if is_eval:
                with torch.no_grad():
                    # one host sync for the whole row
                    tl, ta, vl, va, wn, vn = torch.cat([
                        train_metrics, engine.evaluate(w, v),
                        torch.linalg.vector_norm(w.detach()).view(1),
                        torch.linalg.vector_norm(v.detach()).view(1)]).tolist()
                row = {"step": step, "train_loss": tl, "train_acc": ta, "test_loss": vl,
                       "test_acc": va, "w_norm": wn, "v_norm": vn, "steps_per_s": clock.rate}
                state.step = step
                values = probe.scalars(state, row)
                note_first_steps(first, row, step)
                last = {**row, **values}
                yield StepMetrics(**row, values=values)
                for change in probe.stages(state, last):
                    stages.append({"step": change.step, "stage": change.stage,
                                   "layer": change.layer})
                    yield change
            if step % config.snapshot_every == 0 or step == end:
                state.step = step
                weights = {"W": w.detach().cpu().numpy().astype(np.float32, copy=True),
                           "V": v.detach().cpu().numpy().astype(np.float32, copy=True)}
                for i, wl in enumerate(layers, 2):
                    weights[f"W{i}"] = wl.detach().cpu().numpy().astype(np.float32, copy=True)
                yield from snapshots.add(state, weights)
            yield from snapshots.ready(wait=step == end)
            if step == end:
                break
            for opt in optimizers:
                opt.step()
            clock.step_done()
            if stop is not None and stop():
                stopped = True
                break
        yield from snapshots.ready(wait=True)  # a stopped run still delivers its snapshots
    finally:
        snapshots.close()

    elapsed = time.perf_counter() - t_start
    done = (last.get("step", start_step) - start_step) if last else 0
    engine_used = getattr(engine, "engine_used", config.engine)
    yield Finished(summary={**run_summary(config, last, done, stopped, elapsed, first, stages),
                            "engine_used": engine_used, **probe.summary()})
