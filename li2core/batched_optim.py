"""The optimizers of li2core.optim as tensor ops over R stacked runs, one lr and η per run.

Parameters are (R, …) tensors; ``lr`` and ``wd`` are (R,) vectors. Each update is the
per-element formula of the torch optimizer it replaces (single-tensor code path), so run r
evolves exactly as it would alone, up to float rounding.
"""

from __future__ import annotations

import torch

from .optim import NS_COEFFS

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam / AdamW defaults, as used by make_optimizers
ADAM_EPS = 1e-8
SGD_MOMENTUM = 0.9
MUON_MOMENTUM = 0.99


def _per_run(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(R,) → (R, 1, …, 1) broadcasting against ``like``, in ``like``'s dtype."""
    return x.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class BatchedAdam:
    """Adam with coupled L2 (g ← g + η·p) or, ``decoupled``, AdamW (p ← (1 − lr·η)·p)."""

    def __init__(self, lr: torch.Tensor, wd: torch.Tensor, decoupled: bool = False):
        self.lr, self.wd, self.decoupled = lr.double(), wd.double(), decoupled
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.t = 0

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        self.t += 1
        b1, b2 = ADAM_BETAS
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.decoupled:
                p.mul_(_per_run(1 - self.lr * self.wd, p))
            else:
                g = g + _per_run(self.wd, p) * p
            if i not in self.state:
                self.state[i] = (torch.zeros_like(p), torch.zeros_like(p))
            m, v = self.state[i]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2**0.5).add_(ADAM_EPS)
            p.sub_(_per_run(self.lr / bc1, p) * (m / denom))


class BatchedSGD:
    """SGD, momentum 0.9, coupled L2: buf ← 0.9·buf + (g + η·p) (= g at step 1); p −= lr·buf."""

    def __init__(self, lr: torch.Tensor, wd: torch.Tensor):
        self.lr, self.wd = lr.double(), wd.double()
        self.state: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + _per_run(self.wd, p) * p
            if i not in self.state:
                self.state[i] = g.clone()
            else:
                self.state[i].mul_(SGD_MOMENTUM).add_(g)
            p.sub_(_per_run(self.lr, p) * self.state[i])


def batched_newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """li2core.optim.newton_schulz applied to each matrix of g (R, rows, cols) separately."""
    a, b, c = NS_COEFFS
    transposed = g.shape[1] > g.shape[2]
    x = g.transpose(1, 2) if transposed else g
    x = x / (torch.linalg.matrix_norm(x).view(-1, 1, 1) + 1e-7)
    for _ in range(steps):
        s = x @ x.transpose(1, 2)
        x = a * x + (b * s + c * s @ s) @ x
    return x.transpose(1, 2) if transposed else x


class BatchedMuon:
    """The author's Muon on W (li2core.optim.Muon), Adam with coupled L2 on V if it is trained."""

    def __init__(self, lr: torch.Tensor, wd: torch.Tensor):
        self.lr, self.wd = lr.double(), wd.double()
        self.momentum: torch.Tensor | None = None
        self.top = BatchedAdam(lr, wd)

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        w, g = params[0], grads[0]
        if self.momentum is None:
            self.momentum = torch.zeros_like(w)
        self.momentum.mul_(MUON_MOMENTUM).add_(g, alpha=1 - MUON_MOMENTUM)
        w.mul_(_per_run(1 - self.lr * self.wd, w))
        w.sub_(_per_run(self.lr, w) * batched_newton_schulz(self.momentum))
        if len(params) > 1:
            self.top.step(params[1:], grads[1:])


def make_batched_optimizer(name: str, lr: torch.Tensor, wd: torch.Tensor):
    """The batched twin of li2core.optim.make_optimizers(name, …); params are [W] or [W, V]."""
    if name == "adam":
        return BatchedAdam(lr, wd)
    if name == "adamw":
        return BatchedAdam(lr, wd, decoupled=True)
    if name == "sgd":
        return BatchedSGD(lr, wd)
    if name == "muon":
        return BatchedMuon(lr, wd)
    raise ValueError(f"optimizer: unknown {name!r}")
