"""Optimizers of li2-theory §2, including the author's Muon variant for W."""

from __future__ import annotations

import torch

# quintic Newton–Schulz coefficients (Keller Jordan's Muon): fast, approximate orthogonalisation
NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximate U Vᵀ of g = U S Vᵀ: normalise by ‖g‖_F, then X ← aX + (bA + cA²)X, A = XXᵀ."""
    a, b, c = NS_COEFFS
    transposed = g.shape[0] > g.shape[1]
    x = g.T if transposed else g  # rows ≤ cols keeps A = XXᵀ small
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """W ← (1 − lr·η)W; m ← βm + (1−β)g; W ← W − lr·NS(m).

    Decoupled decay and momentum 0.99, as in the author's code."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.99,
                 ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, beta = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p)
                m = state["momentum"]
                m.mul_(beta).add_(p.grad, alpha=1 - beta)
                p.mul_(1 - lr * wd)
                p.sub_(newton_schulz(m, group["ns_steps"]), alpha=lr)


def make_optimizers(name: str, w: torch.Tensor, v: torch.Tensor | None, lr: float,
                    weight_decay: float, layers: list[torch.Tensor] | tuple = (),
                    ) -> list[torch.optim.Optimizer]:
    """One optimizer per parameter role; ``v`` is None when the top layer is ridge-solved;
    ``layers`` = the added hidden matrices W_2..W_L (Muon orthogonalises each, like W)."""
    hidden = [w, *layers]
    params = hidden if v is None else [*hidden, v]
    # torch's one-pass Adam kernel: the same per-element formula, the batched engine's choice
    fused = w.device.type in ("cpu", "cuda") and w.dtype == torch.float32
    if name == "adam":
        return [torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)]
    if name == "adamw":
        return [torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)]
    if name == "sgd":
        return [torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)]
    if name == "muon":
        opts: list[torch.optim.Optimizer] = [Muon(hidden, lr=lr, weight_decay=weight_decay)]
        if v is not None:
            opts.append(torch.optim.Adam([v], lr=lr, weight_decay=weight_decay))
        return opts
    raise ValueError(f"optimizer: unknown {name!r}")
