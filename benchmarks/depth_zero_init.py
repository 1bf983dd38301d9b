"""Zero-init of the top layer in a deeper network (li2-theory §6, paper Fig. 17): steps to test
accuracy 0.99 for the default V(0) and for top_init_scale = 0, over the same seeds, one core.

    PYTHONPATH=. .venv/bin/python benchmarks/depth_zero_init.py [--preset deep] [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from li2core.presets import get_preset
from li2core.train import train


def steps_to(config, key: str = "test_acc>=0.99") -> tuple[int | None, float]:
    """First step the run reached ``key`` (None: never) and its wall time (bare engine)."""
    t0 = time.perf_counter()
    for ev in train(config, instruments=False):
        if ev.kind == "finished":
            return ev.summary["first_step"][key], time.perf_counter() - t0
    raise RuntimeError("train() ended without a summary")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="deep")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    torch.set_num_threads(1)
    base = get_preset(args.preset)
    for item in args.set:
        key, value = item.split("=", 1)
        base = base.with_(**{key: type(getattr(base, key))(value)})
    found: dict[str, list[int | None]] = {}
    for scale in (1.0, 0.0):
        found[str(scale)] = []
        for seed in args.seeds:
            step, wall = steps_to(base.with_(top_init_scale=scale, seed=seed))
            found[str(scale)].append(step)
            print(f"top_init_scale={scale} seed={seed}: test acc 0.99 at step {step} "
                  f"({wall:.1f} s)", flush=True)
    default, zero = found["1.0"], found["0.0"]
    print(f"default V(0): {default}\nzero V(0):    {zero}")
    if all(s is not None for s in default + zero):
        ratios = [d / z for d, z in zip(default, zero, strict=True)]
        print(f"mean steps {statistics.mean(default):.0f} vs {statistics.mean(zero):.0f}; "
              f"speed-up per seed {[round(r, 2) for r in ratios]}, "
              f"mean {statistics.mean(ratios):.2f}, median {statistics.median(ratios):.2f}")
    else:
        print("some runs never reached test acc 0.99 within the preset's steps")


if __name__ == "__main__":
    main()
