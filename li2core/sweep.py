"""Sweeps: a base RunConfig, a grid of values, every run's outcome (li2-theory §3 "Sample size").

A sweep expands to at most ``MAX_RUNS`` RunConfigs, trains them in batches (li2core.batched)
and classifies each run with the outcome words of li2core.vocabulary (docs/sweeps.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import RunConfig
from .events import Event
from .vocabulary import (
    DIVERGED,
    GENERALISED,
    MEMORISED,
    NOT_FITTED,
    STILL_LEARNING,
    TRAIN_FIT,
    final_outcome,
)

MAX_RUNS = 256
SweepField = Literal["train_fraction", "weight_decay", "lr", "hidden", "group", "seed",
                     "optimizer", "depth"]
SWEEP_FIELDS: tuple[str, ...] = SweepField.__args__
Axis = Annotated[list[float | int | str], Field(min_length=1, max_length=MAX_RUNS)]

# outcome rule (docs/sweeps.md, li2core.vocabulary.final_outcome) on the final metrics row
OUTCOMES = (GENERALISED, MEMORISED, STILL_LEARNING, NOT_FITTED, DIVERGED)
NOT_RUN = "not_run"  # a stopped sweep's runs that never started
TREND_WINDOW = 25  # steps (at least; at least the time to fit) over which "rising" is judged
DIVERGED_LOSS_FACTOR = 10.0  # final train loss above this multiple of the step-0 loss


class SweepConfig(BaseModel):
    """A base run and the axes to vary: ``grid`` axes multiply, ``zipped`` axes move together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("sweep", max_length=64, description="label for outputs")
    base: RunConfig = Field(default_factory=RunConfig, description="fields not on an axis")
    grid: dict[SweepField, Axis] = Field(
        default_factory=dict, description="field → values; the sweep takes every combination")
    zipped: dict[SweepField, Axis] = Field(
        default_factory=dict, description="field → values of equal length, varied together "
        "(e.g. group with hidden); one more axis of the grid")

    @model_validator(mode="after")
    def _axes_valid(self) -> SweepConfig:
        both = set(self.grid) & set(self.zipped)
        if both:
            raise ValueError(f"{', '.join(sorted(both))}: an axis is either in grid or in zipped")
        lengths = {k: len(v) for k, v in self.zipped.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError("zipped: axes must have equal lengths, got "
                             + ", ".join(f"{k}={n}" for k, n in lengths.items()))
        for key, values in self.grid.items():
            if len(set(map(repr, values))) < len(values):
                raise ValueError(f"grid.{key}: duplicate values in {values}")
        tuples = list(zip(*self.zipped.values(), strict=True)) if self.zipped else []
        if len(set(map(repr, tuples))) < len(tuples):  # one zipped axis may repeat a value
            raise ValueError(f"zipped: duplicate combinations of {', '.join(self.zipped)}")
        n = self.run_count
        if n > MAX_RUNS:
            sizes = " × ".join(str(len(v)) for v in self._axes().values())
            raise ValueError(f"grid: {n} runs ({sizes}) exceeds the limit of {MAX_RUNS}; "
                             "drop values or split the sweep")
        for point in self.points():
            try:
                self.base.with_(**point)
            except ValidationError as exc:
                where = ", ".join(f"{k}={v}" for k, v in point.items())
                msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}"
                                 for e in exc.errors())
                raise ValueError(f"grid point ({where}): {msgs}") from None
        return self

    def _axes(self) -> dict[str, list]:
        axes = dict(self.grid)
        if self.zipped:
            axes["+".join(self.zipped)] = list(zip(*self.zipped.values(), strict=True))
        return axes

    @property
    def run_count(self) -> int:
        return math.prod(len(v) for v in self._axes().values())

    @property
    def axis_names(self) -> list[str]:
        """Fields that vary, zipped ones first (the columns of the outcome table)."""
        return [*self.zipped, *self.grid]

    def points(self) -> list[dict]:
        """Every grid point as {field: value}, in a fixed order (zipped axis outermost)."""
        keys = list(self.zipped)
        zipped = list(zip(*self.zipped.values(), strict=True)) if self.zipped else [()]
        out = []
        for z in zipped:
            for combo in itertools.product(*self.grid.values()):
                out.append({**dict(zip(keys, z, strict=True)),
                            **dict(zip(self.grid, combo, strict=True))})
        return out

    def configs(self) -> list[RunConfig]:
        return [self.base.with_(**p) for p in self.points()]


def classify_outcome(final: dict, initial_train_loss: float | None = None, order: int = 2,
                     test_before: float | None = None) -> str:
    """generalised / memorised / still_learning / not_fitted / diverged from the final metrics;
    ``order`` = M (chance 1/M), ``test_before`` = test acc one trend window earlier."""
    losses = (final.get("train_loss", math.nan), final.get("test_loss", math.nan))
    if not all(math.isfinite(x) for x in losses):
        return DIVERGED
    if (initial_train_loss is not None and math.isfinite(initial_train_loss)
            and losses[0] > DIVERGED_LOSS_FACTOR * initial_train_loss):
        return DIVERGED
    return final_outcome(final["train_acc"], final["test_acc"], order, test_before)


def window_ago_test_acc(history: list[tuple[int, float, float]]) -> float | None:
    """Test acc one trend window (max(TREND_WINDOW, fit step)) before the last of
    ``history`` = [(step, train_acc, test_acc)], None when the run is shorter than that."""
    if not history:
        return None
    fit = next((s for s, tr, _ in history if tr >= TRAIN_FIT), None)
    target = history[-1][0] - max(TREND_WINDOW, fit or 0)
    before = [te for s, _, te in history if s <= target]
    return before[-1] if before else None


@dataclass
class RunOutcome:
    """One cell of a sweep: its grid point, config, final metrics and outcome."""

    index: int
    point: dict
    config: RunConfig
    outcome: str = STILL_LEARNING
    final: dict = field(default_factory=dict)
    first_step: dict = field(default_factory=dict)
    initial_train_loss: float | None = None
    steps_done: int = 0
    stopped: bool = False
    history: list[tuple[int, float, float]] = field(default_factory=list, repr=False)
    mechanism: dict = field(default_factory=dict)  # coverage, duplication of the final W

    def row(self) -> dict:
        """The CSV/JSON row: grid values, outcome, final accuracies, first step test ≥ 0.9."""
        from .theory import p_crit

        f = self.final
        return {"run": self.index, **self.point, "outcome": self.outcome,
                "train_acc": f.get("train_acc"), "test_acc": f.get("test_acc"),
                "train_loss": f.get("train_loss"), "test_loss": f.get("test_loss"),
                "first_test_acc_0.9": self.first_step.get("test_acc>=0.9"),
                "first_test_acc_0.99": self.first_step.get("test_acc>=0.99"),
                "steps": self.steps_done, "p_crit": p_crit(self.config.build_group()),
                "coverage": self.mechanism.get("coverage"),
                "duplication": self.mechanism.get("duplication")}


def run_sweep(
    sweep: SweepConfig,
    *,
    batched: bool = True,
    stop: Callable[[], bool] | None = None,
    on_steps: Callable[[int], None] | None = None,
    on_event: Callable[[int, Event], None] | None = None,
    snapshots: bool = False,
) -> list[RunOutcome]:
    """Train every run of ``sweep`` and classify it.

    ``batched`` trains runs with a common batch key together (else one by one with train());
    the batched engine has one hidden layer, so runs of depth ≥ 2 always train one by one;
    ``on_steps(n)`` reports n more run-steps done; ``on_event(index, event)`` sees every event of
    every run (a store; Finished summaries gain "outcome"); ``stop()`` ends the sweep between
    steps: runs in progress end stopped, runs not started get outcome "not_run".
    """
    from .batched import plan_batches, train_batched
    from .instruments.duplication import final_mechanism
    from .train import train

    configs = sweep.configs()
    results = [RunOutcome(i, p, c) for i, (p, c) in enumerate(zip(sweep.points(), configs,
                                                                   strict=True))]

    def consume(index: int, event: Event) -> None:
        res = results[index]
        if event.kind == "snapshot":
            if event.step == res.config.steps:  # the final weights: coverage and duplication
                res.mechanism = final_mechanism(res.config, event.arrays["W"])
            if not snapshots:
                return
        if event.kind == "metrics":
            if res.initial_train_loss is None:
                res.initial_train_loss = event.train_loss
            res.history.append((event.step, event.train_acc, event.test_acc))
        elif event.kind == "finished":
            s = event.summary
            res.final, res.first_step = s["final"], s["first_step"]
            res.steps_done, res.stopped = s["steps_done"], s["stopped"]
            before = window_ago_test_acc(res.history)
            res.outcome = classify_outcome(res.final, res.initial_train_loss,
                                           res.config.group_order, before)
            s["outcome"] = res.outcome  # a store of sweep runs keeps it with the summary
        if on_event is not None:
            on_event(index, event)

    one_by_one = list(range(len(configs)))
    if batched:
        shallow = [i for i, c in enumerate(configs) if c.depth == 1]
        one_by_one = [i for i, c in enumerate(configs) if c.depth > 1]
        for part in plan_batches([configs[i] for i in shallow]):
            idx = [shallow[j] for j in part]
            if stop is not None and stop():
                break
            step_cb = (lambda _step, n=len(idx): on_steps(n)) if on_steps else None
            for j, event in train_batched([configs[i] for i in idx], stop=stop,
                                          snapshots=True, on_step=step_cb):
                consume(idx[j], event)
    for i in one_by_one:
        c = configs[i]
        if stop is not None and stop():
            break
        for event in train(c, stop=stop, instruments=False):
            consume(i, event)
        if on_steps is not None:
            on_steps(c.steps)
    for res in results:
        if not res.final:  # never started: the sweep was stopped first
            res.stopped, res.outcome = True, NOT_RUN
    return results

