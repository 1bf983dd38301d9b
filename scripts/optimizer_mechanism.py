"""Adam vs Muon on the same seeds with the instruments on: how much of each update goes into
components other nodes already hold (learned_share), duplication and coverage over time.

Usage: python scripts/optimizer_mechanism.py [--group Z23] [--hidden 24 48] [--seeds 5]
Prints one markdown row per (optimizer, K) with mean ± std over seeds (docs/optimizers.md).
"""

from __future__ import annotations

import argparse
import statistics as st

import torch

from li2core import RunConfig, train
from li2core.sweep_presets import SWEEP_PRESETS

# rows compared: half or more of the components covered, not yet all. Comparing at matched
# coverage matters: an optimizer that locks later has fewer held components early, so its
# share would be lower for that reason alone.
HALF = 0.5


def measure(config: RunConfig) -> dict:
    """Mean learned_share over rows with HALF ≤ coverage/C < 1, first step with every component
    covered, final duplication and test loss."""
    n_comp, shares, full_at, last = None, [], None, {}
    for e in train(config):
        if e.kind == "started":
            n_comp = len(e.group["components"])
        elif e.kind == "metrics":
            v = e.values
            if "learned_share" in v and HALF * n_comp <= v["coverage"] < n_comp:
                shares.append(v["learned_share"])
            if full_at is None and v.get("coverage") == n_comp:
                full_at = e.step
            last = {"duplication": v["duplication"], "test_loss": e.test_loss}
    return {"share": st.mean(shares) if shares else None, "full_at": full_at, **last}


def fmt(xs: list) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    return f"{st.mean(xs):.3g} ± {st.stdev(xs):.2g}" if len(xs) > 1 else f"{xs[0]:.3g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", default="Z23")
    p.add_argument("--hidden", type=int, nargs="+", default=[24, 48])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args()
    torch.set_num_threads(1)
    sweep = SWEEP_PRESETS["optimizers"][1]
    tuned = dict(zip(sweep.zipped["optimizer"],
                     zip(sweep.zipped["lr"], sweep.zipped["weight_decay"], strict=True),
                     strict=True))
    print("| K | optimizer | learned_share, ½ ≤ coverage/C < 1 | step all covered | "
          "final duplication | final test loss |")
    print("|---|---|---|---|---|---|")
    for k in args.hidden:
        for opt in ("adam", "muon"):
            lr, wd = tuned[opt]
            res = [measure(sweep.base.with_(group=args.group, hidden=k, optimizer=opt, lr=lr,
                                            weight_decay=wd, seed=s, steps=args.steps))
                   for s in range(args.seeds)]
            covered = sum(r["full_at"] is not None for r in res)
            print(f"| {k} | {opt} | {fmt([r['share'] for r in res])} | "
                  f"{fmt([r['full_at'] for r in res])} ({covered}/{len(res)}) | "
                  f"{fmt([r['duplication'] for r in res])} | "
                  f"{fmt([r['test_loss'] for r in res])} |")


if __name__ == "__main__":
    main()
