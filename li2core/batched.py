"""Many runs as one tensor program: R runs sharing group, width, activation, loss, optimizer
and top layer train together on stacked weights W (R, 2M, K), V (R, K, M).

Each run keeps its own seed (init and split, exactly as ``train()`` draws them), train
fraction, lr and weight decay. A training step touches only each run's training rows (padded
to the largest n_train with zero weight), with hand-written gradients checked against autograd
in the tests; an evaluation step runs the forward pass over the whole M² table once, for the
metrics and the gradient alike.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import batched_kernels, kernels, torch_exact
from .batched_optim import make_batched_optimizer
from .config import RunConfig
from .data import make_dataset
from .denormals import flushes_denormals
from .events import Event, Finished, RunStarted, Snapshot, StepMetrics
from .fused import SIGMA_PRIME_SCALE, activate_into, mul_sigma_prime_
from .model import init_weights
from .step import RIDGE_REG
from .train import StepRate, first_steps, note_first_steps, resolve_device, run_summary

# fields each run of a batch may choose for itself; all others must be equal within a batch
PER_RUN_FIELDS = frozenset({"train_fraction", "weight_decay", "lr", "seed", "top_init_scale",
                            "eval_every", "snapshot_every"})
# R·M²·K per batch. Measured on one core (benchmarks/README.md): past a few MiB per (R, M², K)
# tensor the step waits on memory, below it on per-op overhead; 640k (Z41 × 88: 4 runs, Z23 ×
# 48: 25) measured fastest. A GPU wants as many runs per kernel as memory allows.
BATCH_ELEMENTS = {"cpu": 640_000, "cuda": 2**26}


def batch_key(config: RunConfig) -> str:
    """Runs with equal keys can share one batch."""
    shared = {k: v for k, v in config.model_dump().items() if k not in PER_RUN_FIELDS}
    return json.dumps(shared, sort_keys=True)


def plan_batches(configs: Sequence[RunConfig], max_elements: int | None = None
                 ) -> list[list[int]]:
    """Indices of ``configs`` grouped by batch key (first-seen order), split so that
    R·M²·K ≤ ``max_elements`` (default: BATCH_ELEMENTS of the runs' device).

    Within a key, runs are sorted by train fraction so a split batch pads less.
    """
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(batch_key(c), []).append(i)
    out = []
    for idx in groups.values():
        c = configs[idx[0]]
        device = resolve_device(c.device)
        budget = max_elements or BATCH_ELEMENTS[device.type]
        if max_elements is None and bf16_only(c, device):
            # the same bytes hold twice the runs (scaling-law at 1000 steps, one core:
            # 11.6–11.8 s against 12.7–14.1 s)
            budget *= 2
        size = max(1, budget // (c.group_order**2 * c.hidden))
        idx = sorted(idx, key=lambda i: configs[i].train_fraction)
        # as few batches as the budget allows, of near-equal size (no lone run at the end)
        n = -(-len(idx) // size)
        cuts = [len(idx) * j // n for j in range(n + 1)]
        out += [idx[cuts[j]:cuts[j + 1]] for j in range(n)]
    return out


def bf16_only(config: RunConfig, device: torch.device) -> bool:
    """Whether a batch of ``config`` keeps σ(h) in bfloat16 only (BatchedRuns.direct_lo):
    precision bf16 with li2core.kernels' loops, which write σ(h) straight as bfloat16 and read
    the bfloat16 G·Vᵀ; a ridge top layer solves on the float32 σ(h), so it keeps that pass."""
    return (config.precision == "bf16" and config.top_layer != "ridge"
            and kernels.usable(device, config.activation))


class _Pass:
    """Index tensors and work-buffer views for a forward pass over the first ``rows`` permuted
    rows of every run: all M² (evaluation) or the n_max training rows."""

    def __init__(self, runs: BatchedRuns, rows: int):
        r, m, k = runs.runs, runs.m, runs.k
        self.idx_a = runs.bags[:, :rows, 0].flatten()
        self.idx_b = runs.bags[:, :rows, 1].flatten()
        # the same for li2core.kernels' loops (numpy views of the tensors above)
        self.rows_np = (self.idx_a.numpy(), self.idx_b.numpy()) if runs.compiled else None
        self.out_np = None  # set below: the (R, M, rows) outputs for kernels.batched_mse
        # flat positions of the labels in out (R, M, rows): index ops on them beat scatter
        run = torch.arange(r, device=runs.device)[:, None] * m * rows
        self.label = (run + runs.label[:, :rows] * rows
                      + torch.arange(rows, device=runs.device)).flatten()
        self.classes = runs.label[:, :rows]  # (R, rows)
        self.minus_one = torch.full((r * rows,), -1.0, device=runs.device)
        self.h, self.f = runs.work("h", r, rows, k), runs.work("f", r, rows, k)
        self.scratch = runs.work("s", r, rows, k)  # sigmoid (silu) or σ′ factors
        if runs.low is not None:
            self.f_lo = runs.work("f_lo", r, rows, k)
            self.f_lo_t, self.f_lo_n = self.f_lo.mT, self.f_lo[:, :runs.n_max]
            self.out_lo = runs.work("out_lo", r, m, rows)
            # σ(h) written as bfloat16 by the compiled loop (its bits): no float32 pass
            self.f_lo_np = kernels.bf16_bits(self.f_lo).reshape(-1, k) if runs.direct_lo else None
            self.out_lo_np = kernels.bf16_bits(self.out_lo) if runs.compiled else None
        self.out, self.sq = runs.work("out", r, m, rows), runs.work("sq", r, m, rows)
        # views made once: at these sizes a step's Python and dispatch work (each slice or view
        # is a few µs) is a measurable part of it
        self.h_flat, self.f_flat, self.f_t = self.h.view(-1, k), self.f.view(-1, k), self.f.mT
        self.out_flat = self.out.view(-1)
        if runs.compiled:
            self.out_np, self.f_np = self.out.numpy(), self.f_flat.numpy()
            self.f_np3 = self.f.numpy()  # (R, rows, K): batched_kernels' products
            # rows each run's pass needs: all M² at an evaluation, its own n in training
            self.used_np = (np.full(r, rows, np.int64) if rows == m * m
                            else runs.n_train.numpy().astype(np.int64))
        n = runs.n_max  # the training rows: all of a training pass, the start of a full one
        self.g, self.h_n, self.f_n = self.out[:, :, :n], self.h[:, :n], self.f[:, :n]
        self.g_t, self.s_n = self.g.mT, self.scratch[:, :n]


class BatchedRuns:
    """Stacked state of R runs with one batch key; ``forward`` then ``metrics``/``step``.

    Parameters live in one (R, 3M, K) tensor: rows 0..2M-1 are W, rows 2M..3M-1 are Vᵀ, so
    hidden pre-activations are sums of two of its rows and the optimizer makes one pass.
    Each run's table rows are permuted to [training rows | test rows], so its training rows
    (padded to the batch's largest n with zero-weight test rows) are a slice, never a gather.
    Outputs are kept transposed, (R, M, rows): reductions over classes then run across rows.
    """

    def __init__(self, configs: Sequence[RunConfig]):
        if not configs:
            raise ValueError("a batch needs at least one run")
        keys = {batch_key(c) for c in configs}
        if len(keys) > 1:
            raise ValueError("runs in one batch must share every field except "
                             + ", ".join(sorted(PER_RUN_FIELDS)))
        c0 = configs[0]
        self.configs = list(configs)
        self.device = dev = resolve_device(c0.device)
        self.group = c0.build_group()
        self.m, self.k, self.runs = m, k, r = self.group.order, c0.hidden, len(configs)
        self.activation, self.loss, self.ridge = c0.activation, c0.loss, c0.top_layer == "ridge"
        params = torch.empty(r, 3 * m, k)
        perms, self.datasets = [], []
        for i, c in enumerate(configs):
            # the same two random streams train() uses: torch for init, numpy for the split
            w0, v0 = init_weights(m, k, c.top_init_scale, torch.Generator().manual_seed(c.seed))
            params[i, :2 * m], params[i, 2 * m:] = w0, v0.T
            data = make_dataset(self.group, c.train_fraction, c.seed)
            self.datasets.append(data)
            perms.append(torch.cat([data.train_idx, data.test_idx]))
        self.params = params.to(dev)
        self.grad = torch.zeros_like(self.params)  # ∂J/∂params after gradients(), same layout
        self.w = self.params[:, :2 * m]  # (R, 2M, K) view
        self.vt = self.params[:, 2 * m:]  # (R, M, K) view: Vᵀ
        perm = torch.stack(perms).to(dev)  # (R, M²): row i of run r is table row perm[r, i]
        self.n_train = torch.tensor([d.n_train for d in self.datasets], device=dev)
        self.n_max = n_max = int(self.n_train.max())
        base = torch.arange(r, device=dev)[:, None] * 3 * m
        # rows of params viewed as (R·3M, K): u_a and v_b of each permuted table row
        self.bags = torch.stack([perm // m + base, perm % m + m + base], dim=2)  # (R, M², 2)
        self.label = self.datasets[0].label.to(dev)[perm]  # (R, M²)
        train = torch.arange(m * m, device=dev)[None, :] < self.n_train[:, None]  # (R, M²)
        # [train, test] masks (R, 2, M²) times per-row loss and hit (R, M², 2): the four sums
        self.split = torch.stack([train, ~train], dim=1).float()
        self.counts = self.split.sum(dim=2, keepdim=True)  # (R, 2, 1): n_train, n_test
        # ∂(mean loss)/∂out per row: 2/n (mse, Σ_c e²) or 1/n (cross entropy); 0 on padding
        scale = (1.0 if self.loss == "cross_entropy" else 2.0) / self.n_train[:, None].float()
        self.row_scale = (train[:, :n_max] * scale)[:, None, :]  # (R, 1, n_max)
        if self.ridge:
            t = F.one_hot(self.label[:, :n_max], m).float() - 1.0 / m
            self.target_rows = t * train[:, :n_max, None]  # (R, n_max, M)
        # work buffers, sized for a full-table pass (a training-rows pass uses their first part):
        # fresh multi-MiB tensors every step cost page faults comparable to the arithmetic
        big, out = r * m * m * k, r * m * m * m
        self._buf = {name: torch.empty(size, device=dev) for name, size in
                     (("h", big), ("f", big), ("s", big), ("out", out), ("sq", out),
                      ("d_h", r * n_max * k))}
        # precision=bf16: the three products take bfloat16 copies (li2core.fused's policy)
        self.low = torch.bfloat16 if c0.precision == "bf16" else None
        if self.low is not None:
            for name, size in (("f_lo", big), ("out_lo", out), ("d_lo", r * n_max * k)):
                self._buf[name] = torch.empty(size, dtype=self.low, device=dev)
            # bfloat16 operands of the products: V (centred), V·σ′ scale, G and G·σ(h)
            self._vt_lo, self._vt_back_lo, self._dvt_lo = torch.empty(
                3, r, m, k, dtype=self.low, device=dev)
            self._g_lo = torch.empty(r, m, n_max, dtype=self.low, device=dev)
            self._g_lo_t, self._d_lo = self._g_lo.mT, self.work("d_lo", r, n_max, k)
        self.stats = torch.empty(r, 2, m * m, device=dev)  # per-row loss, hit (full pass)
        # gather + σ and σ′ + scatter-add as li2core.kernels' compiled loops where they serve
        self.compiled = kernels.usable(dev, self.activation)
        self.direct_lo = bf16_only(c0, dev)
        if self.compiled:
            self._np = {"params": self.params.view(-1, k).numpy(),
                        "grad": self.grad.view(-1, k).numpy(),
                        "row": np.empty(k, np.float32),  # the bf16 loops' scratch row
                        # the mse pass's operands (kernels.batched_mse)
                        "label": self.label.numpy(), "scale": self.row_scale.view(r, -1).numpy(),
                        "stats": self.stats.numpy(), "scratch": kernels.batched_scratch(m * m)}
            if self.low is not None:
                self._np["g_lo"] = kernels.bf16_bits(self._g_lo)
            if self.direct_lo:
                self._np["d_lo"] = kernels.bf16_bits(self._d_lo).reshape(-1, k)
        else:
            # dW as sums of training rows' dh: row j of params gets the rows i with a_i = j or
            # M + b_i = j, an embedding-bag sum over a fixed list (padding rows left out)
            valid = train[:, :n_max].flatten()
            dst = torch.cat([self.bags[:, :n_max, 0].flatten()[valid],
                             self.bags[:, :n_max, 1].flatten()[valid]])
            src = torch.arange(r * n_max, device=dev)[valid].repeat(2)
            self._dw_src = src[torch.argsort(dst, stable=True)]
            counts = torch.bincount(dst, minlength=r * 3 * m)
            self._dw_offsets = torch.cumsum(counts, 0) - counts
        self._passes = {True: _Pass(self, m * m), False: _Pass(self, n_max)}
        self._pass = self._passes[True]  # the last forward's
        self._d_h = self.work("d_h", r, n_max, k)
        self._d_h_flat, self._flat_params = self._d_h.view(-1, k), self.params.view(-1, k)
        if self.compiled:
            self._np["d_h"] = self._d_h_flat.numpy()
        # V centred over classes (mse) and V·σ′ scale for dh: small buffers reused every step
        self._vt_sum = torch.empty(r, 1, k, device=dev)
        self._vt_c, self._vt_back = torch.empty(2, r, m, k, device=dev)
        # fp32 mse with a trained top layer on MKL: the step as two compiled calls that run the
        # products through sgemm directly, bitwise those of torch.bmm (li2core.batched_kernels)
        self.direct = (self.compiled and self.low is None and self.loss == "mse"
                       and not self.ridge and batched_kernels.available())
        if self.direct:
            self._dvt = torch.empty(r, m, k, device=dev)
            self._direct_args()
        lr = torch.tensor([c.lr for c in configs], dtype=torch.float64, device=dev)
        wd = torch.tensor([c.weight_decay for c in configs], dtype=torch.float64, device=dev)
        self.opt = make_batched_optimizer(c0.optimizer, lr, wd)
        # set by forward(): h, σ(h) (R, rows, K); the residual e (mse) or softmax − onehot (cross
        # entropy), transposed (R, M, rows); the V actually used (centred for mse)
        self.h = self.f = self.e = self.vt_used = None
        self.evaluated = False  # stats hold the last forward's per-row loss and hits
        self._scaled = False  # e's training rows already hold G = ∂J/∂out

    def _direct_args(self) -> None:
        """The direct step's argument tuples, made once: a forward per pass kind (training,
        evaluation) and the backward. Vᵀ's centring runs inside the calls where torch_exact's
        twins serve (K ≥ 16), else as torch ops around them (_v_used, _put_dvt)."""
        k, np_ = self.k, self._np
        self._centred_inside = torch_exact.available() and k >= torch_exact.MIN_K
        centring = torch_exact.centring_scratch(k) if self._centred_inside else None
        gemm, vt_c = batched_kernels.gemm_args(), self._vt_c.numpy()
        train = self._passes[False]
        self._fwd_args = {
            full: batched_kernels.forward_args(
                np_["params"], ps.rows_np, (ps.f_np, ps.f_np3), vt_c, ps.out_np,
                self.activation, np_["label"], self.n_max, np_["scale"],
                np_["stats"] if full else None, np_["scratch"], gemm, ps.used_np, centring)
            for full, ps in self._passes.items()}
        self._bwd_args = {
            full: batched_kernels.backward_args(
                np_["params"], train.rows_np, ps.f_np3, ps.out_np, self.n_max, train.used_np,
                vt_c, self._vt_back.numpy(), SIGMA_PRIME_SCALE[self.activation],
                self._dvt.numpy(), (self._d_h.numpy(), np_["d_h"]), np_["grad"],
                self.activation, gemm, centring)
            for full, ps in self._passes.items()}

    @property
    def v(self) -> torch.Tensor:
        """V (R, K, M), a view of the parameters."""
        return self.vt.mT

    def work(self, name: str, *shape: int) -> torch.Tensor:
        """A contiguous ``shape`` view of the start of work buffer ``name``."""
        return self._buf[name][:math.prod(shape)].view(shape)

    def forward(self, full: bool = True) -> None:
        """σ(XW)V on each run's training rows, and on the whole table when ``full`` (metrics).

        h[r, i] = u_r[a_i] + v_r[b_i], two row gathers; a ridge top layer is re-solved on the
        training rows first. For mse the output is taken with V centred over classes,
        out = σ(h)·V·(I − 11ᵀ/M): the loss's centring moved onto the small matrix.
        """
        self._pass = ps = self._passes[full]
        if self.direct:
            self.vt_used = self._vt_c if self._centred_inside else self._v_used()
            batched_kernels.forward(self._fwd_args[full])
            self.h, self.f, self.e = None, ps.f, ps.out
            self.evaluated, self._scaled = full, True
            return
        flat = self._flat_params
        if self.direct_lo:  # σ(h) straight into bfloat16; no float32 σ(h) is kept
            kernels.hidden_forward_bf16(self._np["params"], *ps.rows_np, ps.f_lo_np,
                                        self._np["row"], self.activation)
            self.h = self.f = None
        elif ps.rows_np is not None:  # one compiled pass writes σ(h); h is re-formed backward
            kernels.hidden_forward(self._np["params"], *ps.rows_np, ps.f_np, self.activation)
            self.h, self.f = None, ps.f
            f = self.f
        else:
            torch.index_select(flat, 0, ps.idx_a, out=ps.h_flat)
            torch.index_select(flat, 0, ps.idx_b, out=ps.f_flat)  # f's buffer as scratch
            self.h = h = ps.h.add_(ps.f)
            self.f = f = activate_into(h, ps.f, ps.scratch, self.activation)
        if self.ridge:
            self.vt.copy_(self._ridge(f[:, :self.n_max]).mT)
        self.vt_used = vt = self._v_used()
        if self.low is None:
            self.e = out = torch.bmm(vt, ps.f_t, out=ps.out)  # (R, M, rows)
        else:
            if not self.direct_lo:
                ps.f_lo.copy_(f)
            self._vt_lo.copy_(vt)
            torch.bmm(self._vt_lo, ps.f_lo_t, out=ps.out_lo)
            if self.loss == "mse" and self.compiled:
                # the bfloat16 outputs straight to the loss, hits and a bfloat16 G
                kernels.batched_mse_bf16(ps.out_lo_np, self._np["label"], self.m, self.n_max,
                                         self._np["scale"], self._np["g_lo"],
                                         self._np["stats"] if full else None,
                                         self._np["scratch"])
                self.e, self.evaluated, self._scaled = None, full, True
                return
            self.e = out = ps.out.copy_(ps.out_lo)
        self.evaluated, self._scaled = full, False
        if self.loss == "mse" and self.compiled:
            # residual, G on the training rows and (full) each row's loss and hit: one pass
            # where the torch ops below make eight
            kernels.batched_mse(ps.out_np, self._np["label"], self.m, self.n_max,
                                self._np["scale"], self._np["stats"] if full else None,
                                self._np["scratch"])
            self._scaled = True
            return
        # mse: e = out − (e_y − 1/M), the residual, whose Σ_c e_c² is the row's loss
        flat_out = ps.out_flat
        if full:
            o_y = self._hits(out, ps, self.stats[:, 1])  # leaves −∞ at the labels
            if self.loss == "mse":
                out.add_(1.0 / self.m)
                flat_out.index_copy_(0, ps.label, o_y.add_(1.0 / self.m).sub_(1.0))
                torch.sum(torch.square(out, out=ps.sq), dim=1, out=self.stats[:, 0])
                return
            flat_out.index_copy_(0, ps.label, o_y)
        if self.loss == "mse":
            out.add_(1.0 / self.m)
            flat_out.index_add_(0, ps.label, ps.minus_one)
            return
        lse = torch.logsumexp(out, dim=1, keepdim=True)
        if full:
            torch.sub(lse[:, 0], o_y.view_as(lse[:, 0]), out=self.stats[:, 0])
        out.sub_(lse).exp_()  # softmax − e_y: the gradient per row, before 1/n
        flat_out.index_add_(0, ps.label, ps.minus_one)

    @staticmethod
    def _hits(out: torch.Tensor, ps: _Pass, into: torch.Tensor) -> torch.Tensor:
        """``into`` (R, rows) ← 1.0 where argmax over classes (dim 1 of ``out``) is the label,
        first index winning ties; returns the label outputs, leaving ``out`` −∞ there.

        One max over the other classes instead of an argmax (several times slower on CPU);
        a label that ties that max (e.g. V = 0) falls back to argmax's rule.
        """
        flat = out.view(-1)
        o_y = flat.index_select(0, ps.label)
        flat.index_fill_(0, ps.label, -math.inf)
        rival = out.amax(dim=1)
        if bool((o_y.view_as(rival) == rival).any()):
            flat.index_copy_(0, ps.label, o_y)
            torch.eq(out.argmax(dim=1), ps.classes, out=into)
            flat.index_fill_(0, ps.label, -math.inf)
        else:
            torch.gt(o_y.view_as(rival), rival, out=into)
        return o_y

    def _ridge(self, f_rows: torch.Tensor) -> torch.Tensor:
        """V* = (FᵀF + reg·I)⁻¹ Fᵀ(Y − 1/M) per run over its training rows (li2core.model)."""
        f_rows = f_rows * self.split[:, 0, :self.n_max, None]
        ft = f_rows.transpose(1, 2)
        gram = ft @ f_rows
        gram.diagonal(dim1=1, dim2=2).add_(RIDGE_REG)
        ok = torch.isfinite(gram).all(dim=2).all(dim=1)
        if not bool(ok.all()):
            # a diverged run must not make the batched solve fail for the others
            eye = torch.eye(self.k, dtype=gram.dtype, device=gram.device)
            gram = torch.where(ok[:, None, None], gram, eye)
        return torch.linalg.solve(gram, ft @ self.target_rows)

    def metrics(self) -> torch.Tensor:
        """(R, 6): train_loss, train_acc, test_loss, test_acc, ‖W‖, ‖V‖ (needs a full forward)."""
        if not self.evaluated:
            raise RuntimeError("metrics need forward(full=True)")
        # [[loss_tr, hits_tr], [loss_te, hits_te]] / [n_tr, n_te]; hit counts are exact
        means = torch.bmm(self.split, self.stats.mT).div_(self.counts)
        norms = torch.linalg.vector_norm(self.params.view(self.runs, 3, -1), dim=2)  # u, v, V
        w_norm = torch.linalg.vector_norm(norms[:, :2], dim=1, keepdim=True)
        return torch.cat([means.view(self.runs, 4), w_norm, norms[:, 2:]], dim=1)

    def gradients(self) -> list[torch.Tensor]:
        """∂J_r/∂W_r (and ∂J_r/∂V_r for a trained top layer), J_r = run r's mean training loss.

        With G = ∂J/∂out on the training rows: dV = σ(h)ᵀG (centred over classes for mse),
        dh = G·Vᵀ ⊙ σ′(h), and dW gathers dh back onto rows a and M + b.
        """
        self._gradients()
        d_w, d_vt = self.grad[:, :2 * self.m], self.grad[:, 2 * self.m:]
        return [d_w] if self.ridge else [d_w, d_vt.mT]

    def _gradients(self) -> None:
        """``self.grad`` (R, 3M, K) ← the gradients in the parameters' layout."""
        m, k, ps = self.m, self.k, self._pass
        if self.direct:
            batched_kernels.backward(self._bwd_args[self._pass is self._passes[True]])
            if not self._centred_inside:
                self._put_dvt(self._dvt)
            return
        if not self._scaled:  # G = ∂J/∂out, in place of e (the metrics are taken by now)
            ps.g.mul_(self.row_scale)
            self._scaled = True
        g, h, d_h = ps.g, ps.h_n, self._d_h
        scale = SIGMA_PRIME_SCALE[self.activation]  # exact (1 or 2), folded into V
        if self.low is None:
            g_lo = None
        else:  # G in bfloat16: written by the mse loop (e is None then) or cast here
            g_lo = self._g_lo if self.e is None else self._g_lo.copy_(g)
        d_vt = None
        if not self.ridge:  # before σ′: silu's σ′ overwrites σ(h)
            if g_lo is None:
                d_vt = torch.bmm(g, ps.f_n)  # dVᵀ (R, M, K)
            else:  # bfloat16, widened by the centring below
                d_vt = torch.bmm(g_lo, ps.f_lo_n, out=self._dvt_lo)
        if g_lo is None:
            torch.bmm(ps.g_t, torch.mul(self.vt_used, scale, out=self._vt_back), out=d_h)
        else:
            torch.bmm(self._g_lo_t, torch.mul(self._vt_lo, scale, out=self._vt_back_lo),
                      out=self._d_lo)
            if not self.direct_lo:  # else the loop below widens each bfloat16 row exactly
                d_h.copy_(self._d_lo)
        if self.direct_lo:
            self.grad.zero_()
            kernels.hidden_backward_bf16(self._np["params"], *self._passes[False].rows_np,
                                         self._np["d_lo"], self._np["row"], self._np["grad"],
                                         self.activation)
        elif self.compiled:
            # σ′ and the scatter-add onto both rows in one pass, run by run in row order (each
            # parameter row gets its rows in the order the embedding bag below sums them;
            # padding rows carry G = 0 and add zeros)
            self.grad.zero_()
            # the training pass's rows are every run's first n_max rows, d_h's rows
            kernels.hidden_backward(self._np["params"], *self._passes[False].rows_np,
                                    self._np["d_h"], self._np["grad"], self.activation)
        else:
            mul_sigma_prime_(d_h, h, ps.f_n, ps.s_n, self.activation)
            # F.embedding_bag's argument checks cost more than the sum at these sizes; mode 0
            d_w = torch.embedding_bag(self._d_h_flat, self._dw_src, self._dw_offsets, False,
                                      0)[0]
            self.grad = d_w.view(self.runs, 3 * m, k)  # rows of Vᵀ: empty bags, 0
        if d_vt is not None:
            self._put_dvt(d_vt)

    def _v_used(self) -> torch.Tensor:
        """Vᵀ as the outputs use it: centred over classes for mse (the loss is blind to V's
        class mean), else Vᵀ itself."""
        if self.loss != "mse":
            return self.vt
        return torch.sub(self.vt, torch.sum(self.vt, dim=1, keepdim=True, out=self._vt_sum),
                         alpha=1.0 / self.m, out=self._vt_c)

    def _put_dvt(self, d_vt: torch.Tensor) -> None:
        """∂J/∂Vᵀ (R, M, K) into the gradient's Vᵀ rows, centred over classes for mse
        (_vt_sum is free after forward)."""
        into = self.grad[:, 2 * self.m:]
        if self.loss != "mse":
            into.copy_(d_vt)
            return
        total = torch.sum(d_vt, dim=1, keepdim=True, dtype=torch.float32, out=self._vt_sum)
        torch.sub(d_vt, total, alpha=1.0 / self.m, out=into)

    def step(self) -> None:
        """One full-batch optimizer step for every run, from the last forward pass."""
        if self.opt.elementwise and not self.ridge:  # W and Vᵀ share one tensor: one pass
            self._gradients()
            self.opt.step([self.params], [self.grad])
            return
        grads = self.gradients()
        self.opt.step([self.w] if self.ridge else [self.w, self.v], grads)


@flushes_denormals
def train_batched(
    configs: Sequence[RunConfig],
    *,
    stop: Callable[[], bool] | None = None,
    snapshots: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, Event]]:
    """``train(config, instruments=False)`` for every config at once: yields (run index, event).

    Events, their order per run and their values match train()'s up to float rounding (no
    instrument scalars, no stages); ``steps_per_s`` is the batch's rate. ``on_step(step)`` is
    called after each optimizer step (progress bars); ``stop()`` is polled between steps.
    """
    from .theory import p_crit, predict_verdict

    batch = BatchedRuns(configs)
    group, steps = batch.group, configs[0].steps
    pc = p_crit(group)
    for i, c in enumerate(configs):
        data = batch.datasets[i]
        yield i, RunStarted(config=c.model_dump(), group={**group.describe(), "p_crit": pc},
                            n_train=data.n_train, n_test=data.n_test, p_crit=pc,
                            prediction=predict_verdict(c))
    first = [first_steps() for _ in configs]
    last: list[dict] = [{} for _ in configs]
    t_start = time.perf_counter()
    clock = StepRate(t_start)
    stopped = False
    # steps where no run evaluates or snapshots skip the per-run checks (their common period)
    eval_gcd = math.gcd(*(c.eval_every for c in configs))
    snap_gcd = math.gcd(*(c.snapshot_every for c in configs))
    for step in range(steps + 1):
        evals = [] if step % eval_gcd and step != steps else [
            i for i, c in enumerate(configs) if step % c.eval_every == 0 or step == steps]
        batch.forward(full=bool(evals))
        if evals:
            values = batch.metrics().tolist()
            for i in evals:
                tl, ta, vl, va, wn, vn = values[i]
                row = {"step": step, "train_loss": tl, "train_acc": ta, "test_loss": vl,
                       "test_acc": va, "w_norm": wn, "v_norm": vn, "steps_per_s": clock.rate}
                note_first_steps(first[i], row, step)
                last[i] = row
                yield i, StepMetrics(**row)
        if snapshots and (step % snap_gcd == 0 or step == steps):
            for i, c in enumerate(configs):
                if step % c.snapshot_every == 0 or step == steps:
                    yield i, Snapshot(step=step, arrays={
                        "W": batch.w[i].cpu().numpy().astype(np.float32, copy=True),
                        "V": batch.v[i].contiguous().cpu().numpy().astype(np.float32)})
        if step == steps:
            break
        batch.step()
        if on_step is not None:
            on_step(step + 1)
        clock.step_done()
        if stop is not None and stop():
            stopped = True
            break
    elapsed = time.perf_counter() - t_start
    for i, c in enumerate(configs):
        done = last[i].get("step", 0)
        yield i, Finished(summary={
            **run_summary(c, last[i], done, stopped, elapsed, first[i], []),
            "batch_size": len(configs)})
