"""The training step behind ``config.engine``: the fused kernel (li2core.fused) or autograd.

Both expose ``step(w, v, backward)`` → [mean train loss, train accuracy] (gradients in
``w.grad`` / ``v.grad``) and ``evaluate(w, v)`` → [mean test loss, test accuracy].
"""

from __future__ import annotations

import torch

from .config import RunConfig
from .data import GroupDataset
from .fused import FusedStep
from .model import features, loss_fn, mse_target, ridge_top_layer

RIDGE_REG = 1e-3  # the author's code default for the closed-form top layer


def _rows(data: GroupDataset, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return data.a[idx], data.b[idx], data.label[idx]


class AutogradStep:
    """The reference: the network of li2core.model differentiated by torch.autograd."""

    def __init__(self, config: RunConfig, data: GroupDataset):
        self.config, self.m = config, data.order
        self.train_rows, self.test_rows = _rows(data, data.train_idx), _rows(data, data.test_idx)
        self.t_tr, self.t_te = (mse_target(r[2], self.m) for r in (self.train_rows,
                                                                      self.test_rows))
        self.collect = False  # the instruments' forward parts are computed by the probe

    def attach(self, w: torch.Tensor, v: torch.Tensor) -> None:
        """Mark the parameters autograd differentiates (V only for a trained top layer)."""
        w.requires_grad_(True)
        v.requires_grad_(self.config.top_layer == "trained")

    def step(self, w: torch.Tensor, v: torch.Tensor, backward: bool = True) -> torch.Tensor:
        a, b, y = self.train_rows
        f = features(w, a, b, self.config.activation)
        if self.config.top_layer == "ridge":
            with torch.no_grad():
                v.copy_(ridge_top_layer(f.detach(), y, self.m, RIDGE_REG))
        out = f @ v
        loss = loss_fn(out, y, self.config.loss, self.t_tr)
        if backward:
            w.grad = None
            if v.requires_grad:
                v.grad = None
            loss.backward()
        with torch.no_grad():
            return torch.stack([loss.detach(), (out.argmax(1) == y).float().mean()])

    def forward_parts(self) -> None:
        return None

    def _top_features(self, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """What V reads for rows (a, b): σ(XW) here, the last layer's output in a deeper net."""
        return features(w, a, b, self.config.activation)

    @torch.no_grad()
    def evaluate(self, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a, b, y = self.test_rows
        out = self._top_features(w, a, b) @ v
        return torch.stack([loss_fn(out, y, self.config.loss, self.t_te),
                            (out.argmax(1) == y).float().mean()])


class FusedEngine(FusedStep):
    """FusedStep over a run's train and test rows; gradients handed to the optimizers as
    ``.grad`` views of its preallocated buffers."""

    def __init__(self, config: RunConfig, data: GroupDataset, chunk: int | None = None):
        super().__init__(data.order, config.hidden, config.activation, config.loss,
                         config.top_layer == "ridge", _rows(data, data.train_idx),
                         _rows(data, data.test_idx), config.precision, RIDGE_REG, chunk)

    def attach(self, w: torch.Tensor, v: torch.Tensor) -> None:
        w.grad = self.grad_w
        if not self.ridge:
            v.grad = self.grad_v


def make_step(config: RunConfig, data: GroupDataset, layers: list[torch.Tensor] | None = None,
              ) -> AutogradStep | FusedEngine:
    """The step ``config.engine`` names, over ``data`` (already on the run's device); depth ≥ 2
    (``layers`` = W_2..W_L) always trains through autograd (li2core.deep_step)."""
    if config.depth > 1:
        from .deep_step import DeepStep  # an AutogradStep: imported here, not in a cycle

        return DeepStep(config, data, layers or [])
    if config.engine == "autograd":
        return AutogradStep(config, data)
    return FusedEngine(config, data)
