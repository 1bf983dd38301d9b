"""Calibration table of the per-layer stage detector (docs/stages.md, "Stages per layer").

Trains each run with the instruments on one core and prints, per run, every layer's Stage II
and III onsets, its focus (conc_mean@l) at the first and last row, the order the layers began
in (li2core.layer_stages.layer_order) and the outcome.

    PYTHONPATH=$PWD .venv/bin/python scripts/layer_stage_calibration.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from li2core import train
from li2core.instruments.layers import at_layer
from li2core.presets import get_preset

# name → changes to the deep preset
RUNS = {
    "deep": {},
    "deep L=3": {"depth": 3, "steps": 1500},
    "deep wd0": {"weight_decay": 0.0, "steps": 600},
    "deep zero-init": {"top_init_scale": 0.0},
}


def run(config) -> dict:
    first, last, summary = None, None, None
    t0 = time.perf_counter()
    for ev in train(config):
        if ev.kind == "metrics":
            row = ev.row()
            first = first or row
            last = row
        elif ev.kind == "finished":
            summary = ev.summary
    return {"first": first, "last": last, "summary": summary,
            "seconds": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="*")
    args = p.parse_args()
    torch.set_num_threads(1)
    print("| run | seed | layer | Stage II onset | Stage III onset | focus first → last | "
          "order | outcome (test 0.99 at) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, changes in RUNS.items():
        if args.only and name not in args.only:
            continue
        for seed in args.seeds:
            config = get_preset("deep").with_(seed=seed, **changes)
            r = run(config)
            s = r["summary"]
            for entry in s["layers"]:
                layer = entry["layer"]
                onset = {st["stage"]: st["step"] for st in entry["stages"]}
                key = at_layer("conc_mean", layer)
                print(f"| {name} | {seed} | {layer} | {onset.get('independent', '—')} | "
                      f"{onset.get('interactive', '—')} | {r['first'].get(key, 0):.2f} → "
                      f"{r['last'].get(key, 0):.2f} | {s['layer_order'] or '—'} | "
                      f"{s['outcome']} ({s['first_step']['test_acc>=0.99']}) |", flush=True)


if __name__ == "__main__":
    main()
