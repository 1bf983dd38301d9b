"""Steps/s at fig3 (Z71, K=2048, p=0.4), one torch thread, every side alternated in one run:

- bare loop: an ordinary PyTorch autograd loop (gather, σ, matmul, mse, Adam), metrics every 10;
- train() as shipped: ``li2 train --preset fig3`` (instruments on, metrics every step,
  snapshots every 10), with the autograd engine (before issue 10) and the fused one, fp32/bf16;
- the same with every event written to a run folder, as ``li2 train`` does;
- the fused step alone (instruments off), fp32 and bf16;

each with the fraction of this core's matrix-product rate at the step's shapes it reaches.
Rates are steps per CPU second of this process (time.process_time), which the other jobs of a
shared machine disturb far less than wall time; a snapshot's helper thread counts too.
Then (``--grok``) fig3's first step at test accuracy 0.99 in fp32 and bf16.

    .venv/bin/python benchmarks/train_speed.py [--steps 200] [--repeats 3] [--grok]
    .venv/bin/python benchmarks/train_speed.py --profile   # per-phase profile of one step
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from li2core import RunConfig, make_dataset, train
from li2core.fused import cpu_has_bf16_units
from li2core.presets import get_preset


def bare_loop(cfg: RunConfig, eval_every: int = 10) -> float:
    """The loop a researcher writes: gather, σ, matmul, mse, Adam; test metrics every 10."""
    data = make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed)
    m, k = data.order, cfg.hidden
    w = ((torch.rand(2 * m, k) * 2 - 1) / (2 * m) ** 0.5).requires_grad_()
    v = ((torch.rand(k, m) * 2 - 1) / k ** 0.5).requires_grad_()
    opt = torch.optim.Adam([w, v], lr=cfg.lr, weight_decay=cfg.weight_decay)
    tr, te = data.train_idx, data.test_idx
    a, b, y = data.a[tr], data.b[tr], data.label[tr]
    at, bt, yt = data.a[te], data.b[te], data.label[te]
    target = F.one_hot(y, m).float() - 1.0 / m
    target_t = F.one_hot(yt, m).float() - 1.0 / m
    t0 = time.process_time()
    for step in range(cfg.steps):
        out = (w[a] + w[m + b]).square() @ v
        loss = (out - out.mean(1, keepdim=True) - target).square().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        if step % eval_every == 0:
            with torch.no_grad():
                out_t = (w[at] + w[m + bt]).square() @ v
                test_loss = (out_t - out_t.mean(1, keepdim=True) - target_t).square().sum(1)
                _ = ((out.argmax(1) == y).float().mean().item(), loss.item(),
                     (out_t.argmax(1) == yt).float().mean().item(), test_loss.mean().item(),
                     w.norm().item(), v.norm().item())
        opt.step()
    return cfg.steps / (time.process_time() - t0)


def trained(cfg: RunConfig, instruments: bool) -> float:
    """Steps per CPU second of train(), from its first metrics row to its summary (set-up
    excluded; the snapshot helper thread's CPU time included)."""
    t0 = None
    for event in train(cfg, instruments=instruments):
        if event.kind == "metrics" and t0 is None:
            t0 = time.process_time()
        if event.kind == "finished":
            return event.summary["steps_done"] / (time.process_time() - t0)
    raise RuntimeError("train() ended without a summary")


def cli_path(cfg: RunConfig) -> float:
    """Steps per CPU second of what ``li2 train`` does: train() with every event written to a
    run folder (li2core.runfolder), from the first metrics row to the summary."""
    import tempfile

    from li2core.runfolder import RunFolder

    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp) / "run")
        t0 = None
        try:
            for event in train(cfg):
                folder.write(event)
                if event.kind == "metrics" and t0 is None:
                    t0 = time.process_time()
                if event.kind == "finished":
                    return event.summary["steps_done"] / (time.process_time() - t0)
        finally:
            folder.close()
    raise RuntimeError("train() ended without a summary")


def gemm_rate(cfg: RunConfig, dtype: torch.dtype) -> float:
    """FLOP/s of this core on the step's three products (σ(h)V, G Vᵀ, Gᵀσ(h)), 256-row tiles."""
    m, k, rows = cfg.group_order, cfg.hidden, 256
    f, v = torch.randn(rows, k, dtype=dtype), torch.randn(k, m, dtype=dtype)
    g = torch.randn(rows, m, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(10):
            _ = f @ v, g @ v.T, g.T @ f
        best = min(best, time.process_time() - t0)
    return 10 * 3 * 2 * rows * k * m / best


def step_flops(cfg: RunConfig, eval_every: int) -> float:
    """Matrix-product FLOPs per step: 3 products over the training rows, the test forward
    pass every ``eval_every`` steps."""
    m, k = cfg.group_order, cfg.hidden
    n = round(cfg.train_fraction * m * m)
    return 2 * k * m * (3 * n + (m * m - n) / eval_every)


# torch ops of one fused step, by phase (li2core.fused)
PHASES = {
    "matrix products σ(h)V, G·Vᵀ, Gᵀσ(h) (train + test rows)": ("aten::mm", "aten::addmm_"),
    "gather h = u_a + v_b": ("aten::index_select", "aten::add_"),
    "σ(h), σ′ factor": ("aten::pow", "aten::square", "aten::clamp_min", "aten::sigmoid",
                        "aten::mul", "aten::mul_", "aten::sign", "aten::sub"),
    "loss, residual, hits": ("aten::argmax", "aten::eq", "aten::sub_", "aten::linalg_vector_norm",
                             "aten::sum", "aten::logsumexp", "aten::exp_", "aten::scatter_add_",
                             "aten::div"),
    "scatter-add of dh onto dW": ("aten::index_add_",),
    "bf16 casts": ("aten::copy_", "aten::to", "aten::_to_copy"),
    "optimizer (Adam)": ("aten::_fused_adam_", "aten::_foreach_", "aten::lerp_", "aten::addcmul_",
                         "aten::sqrt", "aten::addcdiv_"),
}


def profile_step(cfg: RunConfig, repeats: int = 5) -> None:
    """Per-phase self CPU time of one fused step with its test-row evaluation and Adam."""
    from li2core.model import init_weights
    from li2core.optim import make_optimizers
    from li2core.step import FusedEngine

    data = make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed)
    w, v = init_weights(data.order, cfg.hidden, 1.0, torch.Generator().manual_seed(0))
    engine = FusedEngine(cfg, data)
    engine.attach(w, v)
    opts = make_optimizers(cfg.optimizer, w, v, cfg.lr, cfg.weight_decay)

    def one():
        engine.step(w, v)
        engine.evaluate(w, v)
        for opt in opts:
            opt.step()
    one()
    with torch.profiler.profile() as prof:
        t0 = time.process_time()
        for _ in range(repeats):
            one()
        whole = (time.process_time() - t0) / repeats * 1e3
    totals: dict[str, float] = {}
    for ev in prof.key_averages():
        phase = next((p for p, ops in PHASES.items() if any(ev.key.startswith(o) for o in ops)),
                     "other torch ops (dispatch, views)")
        totals[phase] = totals.get(phase, 0.0) + ev.self_cpu_time_total / repeats / 1e3
    # the profiler sees torch ops only: the rest is li2core.kernels' loops (gather + σ, σ′ +
    # scatter-add, the mse pass) and Python
    totals["compiled loops (li2core.kernels) and Python"] = max(0.0, whole - sum(totals.values()))
    print(f"\none fused step + test evaluation, {cfg.precision}, chunk {engine.chunk} rows: "
          f"{whole:.1f} ms")
    for phase, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {phase} | {ms:.1f} ms | {100 * ms / whole:.0f} % |")


def first_grok_step(cfg: RunConfig) -> int | None:
    for event in train(cfg, instruments=False):
        if event.kind == "metrics" and event.test_acc >= 0.99:
            return event.step
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grok", action="store_true", help="also fig3's step to test acc 0.99")
    parser.add_argument("--profile", action="store_true", help="only a per-phase profile")
    args = parser.parse_args()
    torch.set_num_threads(1)
    fig3 = get_preset("fig3").with_(steps=args.steps)
    if args.profile:
        for precision in ("fp32", "bf16"):
            profile_step(fig3.with_(precision=precision))
        return
    sides = {
        "bare autograd loop, metrics every 10": (lambda: bare_loop(fig3), "fp32", 10),
        "train() before (engine=autograd), instruments on": (
            lambda: trained(fig3.with_(engine="autograd"), True), "fp32", 1),
        "train() as shipped (fused fp32), instruments on": (
            lambda: trained(fig3, True), "fp32", 1),
        "train() precision=bf16, instruments on": (
            lambda: trained(fig3.with_(precision="bf16"), True), "bf16", 1),
        "li2 train (run folder written), fp32": (lambda: cli_path(fig3), "fp32", 1),
        "li2 train (run folder written), bf16": (
            lambda: cli_path(fig3.with_(precision="bf16")), "bf16", 1),
        "fused fp32 step, instruments off": (lambda: trained(fig3, False), "fp32", 1),
        "fused bf16 step, instruments off": (
            lambda: trained(fig3.with_(precision="bf16"), False), "bf16", 1),
    }
    print(f"torch {torch.__version__}, 1 thread, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 units: {cpu_has_bf16_units()}")
    trained(fig3.with_(steps=3), True)  # warm up imports, allocator and kernels
    rates = {"fp32": gemm_rate(fig3, torch.float32), "bf16": gemm_rate(fig3, torch.bfloat16)}
    print(f"matrix-product rate at the step's shapes: fp32 {rates['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {rates['bf16'] / 1e9:.0f} GFLOP/s")
    # alternate the sides and keep each one's best: the machine is shared, load comes and goes
    best = dict.fromkeys(sides, 0.0)
    for _ in range(args.repeats):
        for name, (fn, _, _) in sides.items():
            best[name] = max(best[name], fn())
    bare = best["bare autograd loop, metrics every 10"]
    print(f"\nfig3, {args.steps} steps per timing, best of {args.repeats}\n")
    print(f"| {'side':50s} | steps/s | × bare loop | of matmul rate |")
    print(f"| {'-' * 50} | ---: | ---: | ---: |")
    for name, (_, precision, eval_every) in sides.items():
        frac = best[name] * step_flops(fig3, eval_every) / rates[precision]
        print(f"| {name:50s} | {best[name]:.1f} | {best[name] / bare:.2f} | {100 * frac:.0f} % |")
    if args.grok:
        for precision in ("fp32", "bf16"):
            step = first_grok_step(get_preset("fig3").with_(precision=precision))
            print(f"fig3 {precision}: test acc >= 0.99 first at step {step}")


if __name__ == "__main__":
    main()
