"""Many runs as one tensor program: R runs sharing group, width, activation, loss, optimizer
and top layer train together on stacked weights W (R, 2M, K), V (R, K, M).

Each run keeps its own seed (init and split, exactly as ``train()`` draws them), train
fraction, lr and weight decay. The forward pass covers the whole M² table for every run, so
the batch is rectangular: h[r, a·M+b] = u_r[a] + v_r[b] is a broadcast sum, no gather. The
backward pass only touches each run's training rows (padded to the largest n_train with
zero weight), with hand-written gradients checked against autograd in the tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .batched_optim import make_batched_optimizer
from .config import RunConfig
from .data import make_dataset
from .events import Event, Finished, RunStarted, Snapshot, StepMetrics
from .model import ACTIVATIONS, init_weights
from .train import RIDGE_REG, StepRate, first_steps, note_first_steps, resolve_device, run_summary

# fields each run of a batch may choose for itself; all others must be equal within a batch
PER_RUN_FIELDS = frozenset({"train_fraction", "weight_decay", "lr", "seed", "top_init_scale",
                            "eval_every", "snapshot_every"})
# R·M²·K per batch. Measured on one core (benchmarks/README.md): the full-table step is
# memory-bound once (R, M², K) outgrows the L2 cache, so ~2 MiB tensors beat bigger batches.
# A GPU wants the opposite: as many runs per kernel as memory allows (~0.3 GiB per tensor).
BATCH_ELEMENTS = {"cpu": 2**19, "cuda": 2**26}


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
        budget = max_elements or BATCH_ELEMENTS[resolve_device(c.device).type]
        size = max(1, budget // (c.group_order**2 * c.hidden))
        idx = sorted(idx, key=lambda i: configs[i].train_fraction)
        out += [idx[s:s + size] for s in range(0, len(idx), size)]
    return out


def _activation_grad(name: str, h: torch.Tensor) -> torch.Tensor:
    """σ′(h) for the activations of li2core.model."""
    if name == "square":
        return 2 * h
    if name == "relu":
        return (h > 0).to(h.dtype)
    if name == "relu_square":
        return 2 * torch.relu(h)
    if name == "silu":
        s = torch.sigmoid(h)
        return s * (1 + h * (1 - s))
    raise ValueError(f"activation: unknown {name!r}")


class BatchedRuns:
    """Stacked state of R runs with one batch key; ``evaluate`` then ``step``, like train()."""

    def __init__(self, configs: Sequence[RunConfig]):
        if not configs:
            raise ValueError("a batch needs at least one run")
        keys = {batch_key(c) for c in configs}
        if len(keys) > 1:
            raise ValueError("runs in one batch must share every field except "
                             + ", ".join(sorted(PER_RUN_FIELDS)))
        c0 = configs[0]
        self.configs = list(configs)
        self.device = resolve_device(c0.device)
        self.group = c0.build_group()
        self.m, self.k, r = self.group.order, c0.hidden, len(configs)
        self.activation, self.loss, self.ridge = c0.activation, c0.loss, c0.top_layer == "ridge"
        ws, vs, masks, perms, self.datasets = [], [], [], [], []
        for c in configs:
            # the same two random streams train() uses: torch for init, numpy for the split
            w0, v0 = init_weights(self.m, self.k, c.top_init_scale,
                                  torch.Generator().manual_seed(c.seed))
            ws.append(w0)
            vs.append(v0)
            data = make_dataset(self.group, c.train_fraction, c.seed)
            self.datasets.append(data)
            mask = torch.zeros(self.m * self.m, dtype=torch.bool)
            mask[data.train_idx] = True
            masks.append(mask)
            perms.append(torch.cat([data.train_idx, data.test_idx]))
        dev = self.device
        self.w = torch.stack(ws).to(dev)
        self.v = torch.stack(vs).to(dev)
        self.label = self.datasets[0].label.to(dev)
        self.train_mask = torch.stack(masks).to(dev).float()
        self.test_mask = 1.0 - self.train_mask
        self.n_train = self.train_mask.sum(1)
        self.n_test = self.test_mask.sum(1)
        n_max = int(self.n_train.max())
        # training rows first, then test rows as zero-weight padding: indices stay distinct
        rows = torch.stack(perms)[:, :n_max].to(dev)
        self.row_weight = (torch.arange(n_max, device=dev)[None, :]
                           < self.n_train[:, None]).float() / self.n_train[:, None]
        run_base = torch.arange(r, device=dev)[:, None]
        # flat indices into (R·M², ·) tensors, and into W viewed as (R·2M, K): u_a and v_b
        self.flat_rows = (rows + run_base * self.m**2).flatten()
        self.flat_a = (rows // self.m + run_base * 2 * self.m).flatten()
        self.flat_b = (rows % self.m + self.m + run_base * 2 * self.m).flatten()
        self.target = F.one_hot(self.label, self.m).float() - 1.0 / self.m  # (M², M)
        self.target_rows = self.target[rows]
        lr = torch.tensor([c.lr for c in configs], dtype=torch.float64, device=dev)
        wd = torch.tensor([c.weight_decay for c in configs], dtype=torch.float64, device=dev)
        self.opt = make_batched_optimizer(c0.optimizer, lr, wd)
        self.runs = r
        self.out: torch.Tensor | None = None  # (R, M², M) after a full forward, else None
        self.h_rows = self.f_rows = self.out_rows = None  # (R, n_max, ·) training rows

    def forward(self, full: bool = True) -> None:
        """σ(XW)V on each run's training rows, and on the whole table when ``full`` (metrics).

        h[r, a·M+b] = u_r[a] + v_r[b]; a ridge top layer is re-solved on the training rows first.
        """
        m, k, r = self.m, self.k, self.runs
        act = ACTIVATIONS[self.activation]
        if full:
            u, b = self.w[:, :m], self.w[:, m:]
            h = (u[:, :, None, :] + b[:, None, :, :]).reshape(r, m * m, k)
            f = act(h)
            self.h_rows, self.f_rows = self._rows(h), self._rows(f)
        else:
            flat_w = self.w.reshape(r * 2 * m, k)
            h = flat_w.index_select(0, self.flat_a) + flat_w.index_select(0, self.flat_b)
            self.h_rows = h.view(r, -1, k)
            self.f_rows = act(self.h_rows)
            f = None
        if self.ridge:
            self.v = self._ridge(self.f_rows)
        if full:
            self.out = f @ self.v
            self.out_rows = self._rows(self.out)
        else:
            self.out = None
            self.out_rows = self.f_rows @ self.v

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """x[r, rows[r]] for x (R, M², C): each run's training rows (plus padding)."""
        c = x.shape[2]
        return x.reshape(-1, c).index_select(0, self.flat_rows).view(self.runs, -1, c)

    def _ridge(self, f_rows: torch.Tensor) -> torch.Tensor:
        """V* = (FᵀF + reg·I)⁻¹ Fᵀ(Y − 1/M) per run over its training rows (li2core.model)."""
        valid = (self.row_weight > 0)[:, :, None]
        f_rows = f_rows * valid
        ft = f_rows.transpose(1, 2)
        gram = ft @ f_rows
        gram.diagonal(dim1=1, dim2=2).add_(RIDGE_REG)
        ok = torch.isfinite(gram).all(dim=2).all(dim=1)
        if not bool(ok.all()):
            # a diverged run must not make the batched solve fail for the others
            eye = torch.eye(self.k, dtype=gram.dtype, device=gram.device)
            gram = torch.where(ok[:, None, None], gram, eye)
        return torch.linalg.solve(gram, ft @ (self.target_rows * valid))

    def row_losses(self) -> torch.Tensor:
        """Per-row loss (R, M²), the summand of li2core.model.loss_fn, from a full forward.

        mse without materialising the residual: with t = e_y − 1/M and ō the class mean,
        Σ_c (o_c − ō − t_c)² = Σ_c o_c² − M·ō² − 2(o_y − ō) + 1 − 1/M, summed in float64
        so the cancellation costs no accuracy.
        """
        out, m = self.out, self.m
        o_y = out.gather(2, self.label.expand(self.runs, -1)[:, :, None]).squeeze(2)
        if self.loss == "cross_entropy":
            return torch.logsumexp(out, dim=2) - o_y
        sq = torch.linalg.vector_norm(out, dim=2, dtype=torch.float64).square()
        mean = out.sum(dim=2, dtype=torch.float64) / m
        return (sq - m * mean.square() - 2 * (o_y.double() - mean) + 1 - 1 / m).float()

    def hits(self) -> torch.Tensor:
        """(R, M²) 1.0 where argmax of the output is the label (first index wins ties)."""
        out = self.out
        at_top = out == out.amax(dim=2, keepdim=True)
        if int(torch.count_nonzero(at_top)) > at_top.shape[0] * at_top.shape[1]:
            return (out.argmax(dim=2) == self.label).float()  # ties (e.g. V = 0): argmax's rule
        return at_top.gather(2, self.label.expand(self.runs, -1)[:, :, None]).squeeze(2).float()

    def metrics(self) -> torch.Tensor:
        """(R, 6): train_loss, train_acc, test_loss, test_acc, ‖W‖, ‖V‖ (needs a full forward)."""
        if self.out is None:
            raise RuntimeError("metrics need forward(full=True)")
        with torch.no_grad():
            loss, hit = self.row_losses(), self.hits()
            tr, te = self.train_mask, self.test_mask
            return torch.stack([
                (loss * tr).sum(1) / self.n_train, (hit * tr).sum(1) / self.n_train,
                (loss * te).sum(1) / self.n_test, (hit * te).sum(1) / self.n_test,
                self.w.flatten(1).norm(dim=1), self.v.flatten(1).norm(dim=1)], dim=1)

    def gradients(self) -> list[torch.Tensor]:
        """∂J_r/∂W_r (and ∂J_r/∂V_r for a trained top layer), J_r = run r's mean training loss."""
        out_rows = self.out_rows
        if self.loss == "cross_entropy":
            d_out = torch.softmax(out_rows, dim=2)
            d_out -= self.target_rows + 1.0 / self.m  # one-hot labels
        else:
            e = out_rows - out_rows.mean(dim=2, keepdim=True) - self.target_rows
            d_out = 2 * (e - e.mean(dim=2, keepdim=True))  # the centring's own Jacobian
        d_out *= self.row_weight[:, :, None]
        d_h = d_out @ self.v.transpose(1, 2)
        d_h *= _activation_grad(self.activation, self.h_rows)
        # XᵀdH: row (a, b) sends its gradient to u_a and to v_b
        d_h = d_h.view(-1, self.k)
        d_w = torch.zeros(self.runs * 2 * self.m, self.k, dtype=d_h.dtype, device=d_h.device)
        d_w.index_add_(0, self.flat_a, d_h)
        d_w.index_add_(0, self.flat_b, d_h)
        grads = [d_w.view_as(self.w)]
        if not self.ridge:
            grads.append(self.f_rows.transpose(1, 2) @ d_out)
        return grads

    def step(self) -> None:
        """One full-batch optimizer step for every run, from the last forward pass."""
        grads = self.gradients()
        params = [self.w] if self.ridge else [self.w, self.v]
        self.opt.step(params, grads)


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
    for step in range(steps + 1):
        evals = [i for i, c in enumerate(configs) if step % c.eval_every == 0 or step == steps]
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
        if snapshots:
            for i, c in enumerate(configs):
                if step % c.snapshot_every == 0 or step == steps:
                    yield i, Snapshot(step=step, arrays={
                        "W": batch.w[i].cpu().numpy().astype(np.float32, copy=True),
                        "V": batch.v[i].cpu().numpy().astype(np.float32, copy=True)})
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
