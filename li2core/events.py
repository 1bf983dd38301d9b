"""Typed events yielded by ``train()``; the only thing consumers (CLI, server) ever see.

Arrays are float32 numpy, shapes documented in docs/events.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RunStarted:
    kind = "started"
    config: dict
    group: dict  # Group.describe() plus theory facts
    n_train: int
    n_test: int
    p_crit: float
    prediction: dict = field(default_factory=dict)  # theory.predict_verdict(config)


@dataclass
class StepMetrics:
    """One metrics row; ``values`` holds the instruments' scalars (name → float)."""

    kind = "metrics"
    step: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    w_norm: float
    v_norm: float
    steps_per_s: float
    values: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, float]:
        base = {k: getattr(self, k) for k in ("step", "train_loss", "train_acc", "test_loss",
                                              "test_acc", "w_norm", "v_norm", "steps_per_s")}
        return {**base, **self.values}


@dataclass
class Snapshot:
    """Weights (``W``: 2M×K, ``V``: K×M) and instrument arrays at one step."""

    kind = "snapshot"
    step: int
    arrays: dict[str, np.ndarray]


@dataclass
class StageChange:
    """A stage's onset; ``layer`` = the hidden layer it belongs to (1 = the bottom; a depth-1
    run has only layer 1; whole-network outcomes carry the top layer, docs/stages.md)."""

    kind = "stage"
    step: int
    stage: str
    evidence: dict[str, Any] = field(default_factory=dict)
    layer: int = 1


@dataclass
class Finished:
    kind = "finished"
    summary: dict[str, Any]


Event = RunStarted | StepMetrics | Snapshot | StageChange | Finished
