"""The optimizers of li2core.optim as tensor ops over R stacked runs, one lr and η per run.

Parameters are (R, …) tensors; ``lr`` and ``wd`` are (R,) vectors. Each update is the
per-element formula of the torch optimizer it replaces (single-tensor code path), so run r
evolves exactly as it would alone, up to float rounding.
"""

from __future__ import annotations

import torch

from . import torch_exact
from .optim import NS_COEFFS

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam / AdamW defaults, as used by make_optimizers
ADAM_EPS = 1e-8
SGD_MOMENTUM = 0.9
MUON_MOMENTUM = 0.99


def _per_run(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(R,) → (R, 1, …, 1) broadcasting against ``like``, in ``like``'s dtype."""
    return x.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class BatchedAdam:
    """Adam with coupled L2 (g ← g + η·p) or, ``decoupled``, AdamW (p ← (1 − lr·η)·p).

    Runs sharing (lr, η) take one call of torch's fused Adam kernel (torch.optim.Adam's
    ``fused=True`` path, the same per-element formula in one pass); where that kernel is
    missing (old torch on CPU) or a run's slice is not contiguous, tensor ops do the same. On
    the CPU, float32 parameters whose per-run length suits it take li2core.torch_exact's
    compiled twin of that kernel instead: bitwise its results, one call for all runs.
    """

    elementwise = True  # the same update for every element: parameters may share a tensor

    def __init__(self, lr: torch.Tensor, wd: torch.Tensor, decoupled: bool = False,
                 fused: bool = True):
        self.lr, self.wd, self.decoupled = lr.double(), wd.double(), decoupled
        # per parameter: first and second moments and a scratch tensor (no allocation per step)
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.t = 0
        # runs sharing (lr, η), as ranges [lo, hi) of consecutive runs: one tensor each
        self.groups: dict[tuple[float, float], list[tuple[int, int]]] = {}
        for r, pair in enumerate(zip(lr.tolist(), wd.tolist(), strict=True)):
            ranges = self.groups.setdefault(pair, [])
            if ranges and ranges[-1][1] == r:
                ranges[-1] = (ranges[-1][0], r + 1)
            else:
                ranges.append((r, r + 1))
        self._fused = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_",
                              None) if fused else None
        self._t_tensor: torch.Tensor | None = None  # the step count the fused kernel reads
        self._slices: dict[tuple, tuple[list, dict]] = {}  # per parameter: see _plan
        # one thread: with more, torch's kernel shares the work out (the bits are the same)
        self._twin = (fused and lr.device.type == "cpu" and torch.get_num_threads() == 1
                      and torch_exact.available())
        self._twin_args: dict[tuple, tuple | None] = {}  # per parameter: see _twin_step
        # the last one-tensor step the twin took, (p, g, its arguments): the batched engine
        # passes the same two tensors every step, and at sweep sizes a step's Python costs
        # several times the twin's arithmetic (holding p and g keeps their storage alive)
        self._hot: tuple | None = None

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        hot = self._hot
        if hot is not None and len(params) == 1 and params[0] is hot[0] and grads[0] is hot[1]:
            self.t += 1
            torch_exact.adam(*hot[2], self.t, self.decoupled)
            return
        with torch.no_grad():
            self._step(params, grads)

    def _step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if i not in self.state:
                self.state[i] = (torch.zeros_like(p), torch.zeros_like(p), torch.empty_like(p))
            if self._twin and self._twin_step(i, p, g, *self.state[i][:2]):
                continue
            if not (self._fused is not None and self._fused_step(i, p, g, *self.state[i][:2])):
                self._tensor_step(p, g, *self.state[i])

    def _twin_step(self, i: int, p: torch.Tensor, g: torch.Tensor, m: torch.Tensor,
                   v: torch.Tensor) -> bool:
        """torch_exact.adam on (R, L) numpy views made once per parameter; False (nothing
        changed) where it does not serve: not CPU float32, not contiguous, L not whole vectors."""
        key = (i, p.data_ptr(), g.data_ptr(), p.shape, p.stride(), g.stride())
        if key not in self._twin_args:
            runs = p.shape[0]
            fits = (p.dtype == g.dtype == torch.float32 and p.device.type == "cpu"
                    and g.device.type == "cpu" and p.shape == g.shape
                    and all(x.is_contiguous() for x in (p, g, m, v))
                    and p.numel() % (runs * torch_exact.ADAM_ROW) == 0)
            self._twin_args[key] = (tuple(x.view(runs, -1).numpy() for x in (p, g, m, v))
                                    + (self.lr.numpy(), self.wd.numpy())) if fits else None
        args = self._twin_args[key]
        if args is None:
            return False
        torch_exact.adam(*args, self.t, self.decoupled)
        self._hot = (p, g, args) if i == 0 else None
        return True

    def _fused_step(self, i: int, p: torch.Tensor, g: torch.Tensor, m: torch.Tensor,
                    v: torch.Tensor) -> bool:
        """One fused-kernel call per (lr, η) group; False (nothing changed) if unsupported."""
        # each run's slice must be contiguous (a whole contiguous tensor's are)
        whole = p.is_contiguous() and g.is_contiguous()
        if not (whole or (p[0].is_contiguous() and g[0].is_contiguous())):
            return False
        # p, m, v keep their storage between steps, and so does a sweep's g: the per-group
        # slices are made once (a step's Python work is a measurable part of it at sweep sizes)
        key = (i, whole, p.data_ptr(), p.shape, p.stride())
        if key not in self._slices:
            self._slices[key] = self._plan(p, m, v, whole)
        calls, g_slices = self._slices[key]
        if g_slices.get("ptr") != (g.data_ptr(), g.stride()):
            g_slices["ptr"] = (g.data_ptr(), g.stride())
            g_slices["lists"] = [[g] if ranges == [(0, g.shape[0])] else
                                 [g[a:b] for a, b in ranges] for *_, ranges in calls]
        self._t_tensor.fill_(self.t)
        b1, b2 = ADAM_BETAS
        for j, ((ps, ms, vs, ts, lr, wd, _), gs) in enumerate(zip(calls, g_slices["lists"],
                                                                 strict=True)):
            try:
                self._fused(ps, gs, ms, vs, [], ts, lr=lr, beta1=b1, beta2=b2,
                            weight_decay=wd, eps=ADAM_EPS, amsgrad=False, maximize=False)
            except (RuntimeError, NotImplementedError):
                if self.t > 1 or j > 0:
                    raise  # the kernel ran before: this is a real error
                self._fused = None  # no fused kernel for this device in this torch
                return False
        return True

    def _plan(self, p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, whole: bool
              ) -> tuple[list[tuple], dict]:
        """The fused kernel's tensor lists for each (lr, η) group of runs (one slice per group
        of consecutive runs, or per run when ``whole`` is False), and room for g's."""
        if self._t_tensor is None or self._t_tensor.device != p.device:
            self._t_tensor = torch.zeros((), device=p.device)
        calls = []
        for (lr, wd), ranges in self.groups.items():
            if not whole:
                ranges = [(r, r + 1) for a, b in ranges for r in range(a, b)]
            calls.append(([p[a:b] for a, b in ranges], [m[a:b] for a, b in ranges],
                          [v[a:b] for a, b in ranges], [self._t_tensor] * len(ranges), lr,
                          wd, ranges))
        return calls, {}

    def _tensor_step(self, p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor,
                     tmp: torch.Tensor) -> None:
        b1, b2 = ADAM_BETAS
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        if self.decoupled:
            p.mul_(_per_run(1 - self.lr * self.wd, p))
        else:
            g = torch.mul(p, _per_run(self.wd, p), out=tmp).add_(g)
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = torch.sqrt(v, out=tmp).div_(bc2**0.5).add_(ADAM_EPS)
        p.sub_(torch.div(m, denom, out=tmp).mul_(_per_run(self.lr / bc1, p)))


class BatchedSGD:
    """SGD, momentum 0.9, coupled L2: buf ← 0.9·buf + (g + η·p) (= g at step 1); p −= lr·buf."""

    elementwise = True

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

    elementwise = False  # W is orthogonalised as a matrix

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


def make_batched_optimizer(name: str, lr: torch.Tensor, wd: torch.Tensor, fused: bool = True):
    """The batched twin of li2core.optim.make_optimizers(name, …); params are [W] or [W, V].
    ``fused=False`` keeps Adam off torch's fused kernel (tests compare both paths)."""
    if name == "adam":
        return BatchedAdam(lr, wd, fused=fused)
    if name == "adamw":
        return BatchedAdam(lr, wd, decoupled=True, fused=fused)
    if name == "sgd":
        return BatchedSGD(lr, wd)
    if name == "muon":
        return BatchedMuon(lr, wd)
    raise ValueError(f"optimizer: unknown {name!r}")
