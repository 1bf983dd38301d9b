"""The training step of a network with depth ≥ 2 (li2-theory §6), differentiated by autograd.

The fused engine's hand-written backward covers depth 1 only; deeper runs use this step whatever
``config.engine`` says (the summary's ``engine_used`` tells), at the cost measured in
benchmarks/README.md. Same interface as li2core.step's engines, plus the added layers W_2..W_L.
"""

from __future__ import annotations

import torch

from .config import RunConfig
from .data import GroupDataset
from .model import layer_outputs, loss_fn
from .step import AutogradStep


class DeepStep(AutogradStep):
    """step(w, v) → [train loss, train acc] with gradients in w.grad, v.grad and each W_l.grad."""

    engine_used = "autograd"

    def __init__(self, config: RunConfig, data: GroupDataset, layers: list[torch.Tensor]):
        super().__init__(config, data)
        self.layers = list(layers)
        self.collect = False  # set by train(): keep each layer's output and ∂J/∂x_l
        self._parts: tuple | None = None

    def attach(self, w: torch.Tensor, v: torch.Tensor) -> None:
        for p in (w, v, *self.layers):
            p.requires_grad_(True)

    def _top_features(self, w, a, b) -> torch.Tensor:
        return layer_outputs(w, self.layers, a, b, self.config.activation)[-1]

    def step(self, w: torch.Tensor, v: torch.Tensor, backward: bool = True) -> torch.Tensor:
        a, b, y = self.train_rows
        self._parts = None
        with torch.set_grad_enabled(backward):
            xs = layer_outputs(w, self.layers, a, b, self.config.activation)
            out = xs[-1] @ v
            loss = loss_fn(out, y, self.config.loss, self.t_tr)
        if backward:
            keep = self.collect and all(x.requires_grad for x in xs)
            if keep:  # the probe reads ∂J/∂x_l of every layer from this very backward pass
                for x in xs:
                    x.retain_grad()
            for p in (w, v, *self.layers):
                p.grad = None
            loss.backward()
            if keep:
                self._parts = tuple((x.detach(), x.grad) for x in xs)
        with torch.no_grad():
            return torch.stack([loss.detach(), (out.argmax(1) == y).float().mean()])

    def forward_parts(self) -> tuple | None:
        """((x_l, ∂J/∂x_l) per layer) on the training rows from the last step when it was asked
        to ``collect`` (None at the final step, which takes no backward pass)."""
        return self._parts
