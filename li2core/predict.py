"""What the network answers for each cell of the group's table, from stored weights W and V
(and W2..W_L of a deeper network).

The same forward pass as training (model.layer_outputs, then ·V) on rows (a, b); the prediction is
the arg-max class, and the margin is the label's score minus the best other class's score
(> 0 exactly when the answer is right, and how confidently).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import RunConfig
from .data import make_dataset
from .model import layer_outputs

# rows per forward chunk: bounds the (rows, K) feature block to ~64 MiB of float32
_CHUNK_FLOATS = 1 << 24


class WeightsMismatch(ValueError):
    """W and V do not have the shapes the run's group and width require."""


@dataclass
class TableOutcome:
    """Per cell of the M×M table, row-major (index a·M + b)."""

    order: int
    label: np.ndarray  # (M²,) int64, a·b
    prediction: np.ndarray  # (M²,) int64, arg-max class
    margin: np.ndarray  # (M²,) float32, score(label) − max other score
    train: np.ndarray  # (M²,) bool, the pair is a training row

    @property
    def correct(self) -> np.ndarray:
        return self.prediction == self.label

    def counts(self) -> dict[str, int]:
        right, train = self.correct, self.train
        return {"train_right": int((right & train).sum()),
                "train_wrong": int((~right & train).sum()),
                "test_right": int((right & ~train).sum()),
                "test_wrong": int((~right & ~train).sum())}

    def accuracies(self) -> dict[str, float]:
        c = self.counts()
        n_train, n_test = c["train_right"] + c["train_wrong"], c["test_right"] + c["test_wrong"]
        return {"train_acc": c["train_right"] / n_train if n_train else 0.0,
                "test_acc": c["test_right"] / n_test if n_test else 0.0}


def _weights(config: RunConfig, w, v) -> tuple[torch.Tensor, torch.Tensor]:
    m, k = config.group_order, config.hidden
    w = torch.as_tensor(np.asarray(w, dtype=np.float32))
    v = torch.as_tensor(np.asarray(v, dtype=np.float32))
    if tuple(w.shape) != (2 * m, k) or tuple(v.shape) != (k, m):
        raise WeightsMismatch(f"weights of shapes {tuple(w.shape)}, {tuple(v.shape)} do not fit "
                              f"a run on {m} elements with {k} nodes: expected {(2 * m, k)}, "
                              f"{(k, m)}")
    return w, v


def _layers(config: RunConfig, layers) -> list[torch.Tensor]:
    k = config.hidden
    out = [torch.as_tensor(np.asarray(x, dtype=np.float32)) for x in (layers or [])]
    if len(out) != config.depth - 1 or any(tuple(x.shape) != (k, k) for x in out):
        raise WeightsMismatch(f"a run of depth {config.depth} needs {config.depth - 1} added "
                              f"layers of shape {(k, k)}; got "
                              f"{[tuple(x.shape) for x in out]}")
    return out


def snapshot_layers(config: RunConfig, arrays: dict) -> list:
    """W2..W_L from a snapshot's arrays (empty for depth 1)."""
    return [arrays.get(f"W{i}") for i in range(2, config.depth + 1)
            if arrays.get(f"W{i}") is not None]


@torch.no_grad()
def output_scores(config: RunConfig, w, v, a, b, layers=None) -> torch.Tensor:
    """Ŷ = x_L V for the rows (a, b): (n, M) float32, computed in bounded chunks."""
    w, v = _weights(config, w, v)
    extra = _layers(config, layers)
    a, b = torch.as_tensor(a, dtype=torch.int64), torch.as_tensor(b, dtype=torch.int64)
    step = max(1, _CHUNK_FLOATS // config.hidden)
    return torch.cat([layer_outputs(w, extra, a[i:i + step], b[i:i + step],
                                    config.activation)[-1] @ v
                      for i in range(0, len(a), step)]) if len(a) else torch.zeros(0, v.shape[1])


def _margins(scores: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    own = scores.gather(1, label[:, None])[:, 0]
    others = scores.scatter(1, label[:, None], float("-inf"))
    return own - others.max(dim=1).values


def table_outcome(config: RunConfig, w, v, layers=None) -> TableOutcome:
    """The network's answer on all M² cells, with the run's own train/test split."""
    data = make_dataset(config.build_group(), config.train_fraction, config.seed)
    scores = output_scores(config, w, v, data.a, data.b, layers)
    train = np.zeros(data.a.numel(), dtype=bool)
    train[data.train_idx.numpy()] = True
    return TableOutcome(order=data.order, label=data.label.numpy(),
                        prediction=scores.argmax(1).numpy(),
                        margin=_margins(scores, data.label).numpy().astype(np.float32),
                        train=train)


def ask(config: RunConfig, w, v, a: int, b: int, top: int = 5, layers=None) -> dict:
    """The network's answer for one pair: label, prediction, margin and the ``top`` classes."""
    group = config.build_group()
    scores = output_scores(config, w, v, [a], [b], layers)
    label = int(group.table[a, b])
    order = torch.argsort(scores[0], descending=True)[:top]
    return {"label": label, "prediction": int(scores[0].argmax()),
            "margin": float(_margins(scores, torch.tensor([label]))[0]),
            "scores": [{"element": int(c), "score": float(scores[0, c])} for c in order]}


def is_training_pair(config: RunConfig, a: int, b: int) -> bool:
    data = make_dataset(config.build_group(), config.train_fraction, config.seed)
    row = a * data.order + b
    return bool(torch.isin(torch.tensor([row]), data.train_idx).item())
