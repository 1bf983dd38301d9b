"""Steps/s of li2core.train() (instruments off) vs a bare minimal torch loop on the same
config, measured in one run on one core; then the fig3 preset's wall time to test acc 0.99.

    .venv/bin/python benchmarks/train_speed.py [--steps 200] [--skip-fig3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from li2core import RunConfig, make_dataset, train
from li2core.presets import get_preset


def bare_loop(cfg: RunConfig) -> float:
    """The least a full-batch trainer can do: gather, σ, matmul, mse, Adam, test eval."""
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
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        out = (w[a] + w[m + b]).square() @ v
        loss = (out - out.mean(1, keepdim=True) - target).square().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        if step % cfg.eval_every == 0:
            with torch.no_grad():
                # the same row train() reports: losses, accuracies, weight norms
                out_t = (w[at] + w[m + bt]).square() @ v
                test_loss = (out_t - out_t.mean(1, keepdim=True) - target_t).square().sum(1)
                _ = ((out.argmax(1) == y).float().mean().item(), loss.item(),
                     (out_t.argmax(1) == yt).float().mean().item(), test_loss.mean().item(),
                     w.norm().item(), v.norm().item())
        opt.step()
    return cfg.steps / (time.perf_counter() - t0)


def ours(cfg: RunConfig) -> float:
    for event in train(cfg, instruments=False):
        if event.kind == "finished":
            return event.summary["steps_per_s"]
    raise RuntimeError("train() ended without a summary")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-fig3", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread")
    for name in ("lecture", "fig3"):
        cfg = get_preset(name).with_(steps=args.steps, snapshot_every=100_000)
        ours(cfg.with_(steps=10))  # warm up allocator and kernels
        # alternate and keep each side's best: the machine is shared, load comes and goes
        bare, mine = 0.0, 0.0
        for _ in range(args.repeats):
            bare, mine = max(bare, bare_loop(cfg)), max(mine, ours(cfg))
        print(f"{name:8s} ({cfg.group}, K={cfg.hidden}, eval every {cfg.eval_every}): "
              f"train() {mine:7.1f} steps/s, bare loop {bare:7.1f} steps/s, "
              f"ratio {mine / bare:.2f}")
    if not args.skip_fig3:
        cfg = get_preset("fig3")
        t0 = time.perf_counter()
        hit = None
        for event in train(cfg, instruments=False):
            if event.kind == "metrics" and event.test_acc >= 0.99:
                hit = (event.step, time.perf_counter() - t0)
                break
        if hit:
            print(f"fig3: test acc >= 0.99 at step {hit[0]}, wall {hit[1]:.1f} s on one core")
        else:
            print("fig3: test acc 0.99 not reached within the preset's steps")


if __name__ == "__main__":
    main()
