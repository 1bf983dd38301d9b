"""Calibration table of the stage detector and the theory card (docs/stages.md).

Trains each run below with the instruments on one core, stores its metric rows (with the names
that were fresh at each row) as JSON, replays li2core.stages.StageDetector on them and prints a
markdown table: timeline, final indicators, the stages (onset, conclusive step), the outcome and
the theory card's verdict. Replaying stored rows lets a changed rule be re-checked in seconds.

    PYTHONPATH=$PWD .venv/bin/python scripts/stage_calibration.py [--only NAME ...] [--replay]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from li2core import RunConfig, train
from li2core.data import make_dataset
from li2core.instruments import make_probe
from li2core.irreps import isotypic_components
from li2core.stages import StageDetector
from li2core.theory import p_crit, predict_verdict
from li2core.vocabulary import agreement

CACHE = Path(".cache/stage_calibration")
K256 = dict(hidden=256, lr=5e-3, eval_every=1, snapshot_every=1000)
FIG3 = dict(group="Z71", hidden=2048, train_fraction=0.4, lr=1e-3, weight_decay=2e-4, steps=300,
            eval_every=1, snapshot_every=1000)

# name → RunConfig fields: Z_M, products, D_n, S_n; square and ReLU; with and without weight
# decay; above and below p_crit (p_crit: Z23 0.375, Z71 0.165, Z4xZ7 0.326, D13 0.346, S4 0.542)
RUNS: dict[str, dict] = {
    "fig3": FIG3,
    "fig3 wd0": {**FIG3, "weight_decay": 0.0},
    "Z23": dict(group="Z23", train_fraction=0.6, weight_decay=1e-3, steps=300, **K256),
    "Z23 wd0": dict(group="Z23", train_fraction=0.6, weight_decay=0.0, steps=300, **K256),
    # wider than the training rows (K ≥ n = 317): the theory card's firm "memorise" for wd = 0
    "Z23 K=512 wd0": dict(group="Z23", train_fraction=0.6, weight_decay=0.0, steps=300,
                          **{**K256, "hidden": 512}),
    "Z23 0.3·p_crit": dict(group="Z23", train_fraction=0.1125, weight_decay=1e-3, steps=300,
                           **K256),
    "Z23 relu": dict(group="Z23", train_fraction=0.6, weight_decay=1e-3, activation="relu",
                     steps=400, **K256),
    "Z41": dict(group="Z41", train_fraction=0.5, weight_decay=5e-4, steps=300, **K256),
    "Z41 wd0": dict(group="Z41", train_fraction=0.5, weight_decay=0.0, steps=300, **K256),
    "Z71": dict(group="Z71", train_fraction=0.4, weight_decay=5e-5, steps=300, **K256),
    "Z71 wd0": dict(group="Z71", train_fraction=0.4, weight_decay=0.0, steps=300, **K256),
    "Z71 relu": dict(group="Z71", train_fraction=0.4, weight_decay=5e-5, activation="relu",
                     steps=400, **K256),
    "Z71 below p_crit": dict(group="Z71", train_fraction=0.06, weight_decay=5e-5, steps=400,
                             **K256),
    "Z4xZ7": dict(group="Z4xZ7", train_fraction=0.6, weight_decay=5e-4, steps=300, **K256),
    "Z4xZ7 below p_crit": dict(group="Z4xZ7", train_fraction=0.15, weight_decay=5e-4,
                               steps=300, **K256),
    "D13": dict(group="D13", train_fraction=0.6, weight_decay=5e-5, steps=400, **K256),
    "D13 wd 5e-4": dict(group="D13", train_fraction=0.6, weight_decay=5e-4, steps=400, **K256),
    "D13 below p_crit": dict(group="D13", train_fraction=0.15, weight_decay=5e-4, steps=300,
                             **K256),
    "D13 relu": dict(group="D13", train_fraction=0.6, weight_decay=5e-4, activation="relu",
                     steps=400, **K256),
    "S4": dict(group="S4", train_fraction=0.7, weight_decay=5e-4, steps=400, **K256),
    "S4 wd0": dict(group="S4", train_fraction=0.7, weight_decay=0.0, steps=400, **K256),
    "S4 below p_crit": dict(group="S4", train_fraction=0.25, weight_decay=5e-4, steps=300,
                            **K256),
}


def record(name: str, fields: dict) -> dict:
    """Train one run with the instruments; rows carry the names fresh at that row."""
    cfg = RunConfig(**fields)
    probe = make_probe(cfg, make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed))
    rows, stages, t0 = [], [], time.perf_counter()
    for ev in train(cfg, probe=probe):
        if ev.kind == "metrics":
            rows.append({"row": ev.row(), "fresh": sorted(probe.fresh)})
        elif ev.kind == "stage":
            stages.append({"step": ev.step, "stage": ev.stage,
                           "conclusive_step": ev.evidence.get("conclusive_step")})
        elif ev.kind == "finished":
            outcome = ev.summary.get("outcome")
    return {"name": name, "config": cfg.model_dump(), "rows": rows, "live_stages": stages,
            "live_outcome": outcome, "seconds": time.perf_counter() - t0}


def replay(rec: dict) -> tuple[list, str]:
    """The detector's events and final outcome on the stored rows (what a live run reports)."""
    cfg = RunConfig(**rec["config"])
    group = cfg.build_group()
    det = StageDetector(isotypic_components(group).count, cfg.steps, order=group.order)
    events = []
    for r in rec["rows"]:
        events += det.update(r["row"], set(r["fresh"]))
    return events, det.final_outcome()


def _first(rows, key, thr):
    return next((r["row"]["step"] for r in rows if r["row"][key] >= thr), None)


def table_row(rec: dict) -> str:
    cfg = RunConfig(**rec["config"])
    rows = rec["rows"]
    last = rows[-1]["row"]
    events, outcome = replay(rec)
    gf = [r["row"] for r in rows if "gf_norm" in r["row"]]
    peak = max(gf, key=lambda r: r["gf_norm"])["step"] if gf else None
    c = isotypic_components(cfg.build_group()).count
    pred = predict_verdict(cfg)
    stages = " ".join(f"{e.stage}@{e.step}" + (f"({e.evidence['conclusive_step']})"
                                               if e.evidence.get("conclusive_step") != e.step
                                               else "") for e in events)
    p = f"{cfg.train_fraction:g} ({cfg.train_fraction / p_crit(cfg.build_group()):.2f}·p_c)"
    dash = lambda v: "–" if v is None else str(v)  # noqa: E731
    return " | ".join([
        rec["name"], f"{cfg.group} K={cfg.hidden} {cfg.activation} p={p} lr={cfg.lr:g} "
        f"wd={cfg.weight_decay:g}, {cfg.steps} steps",
        dash(_first(rows, "train_acc", 0.99)), dash(_first(rows, "test_acc", 0.1)),
        dash(_first(rows, "test_acc", 0.5)), dash(_first(rows, "test_acc", 0.95)), dash(peak),
        f"{last['test_acc']:.2f}", f"{last.get('conc_mean', 0):.2f}",
        f"{int(last.get('coverage', 0))}/{c}",
        f"{int(last.get('memorising_nodes', 0))}/{int(last.get('active_nodes', 0))}",
        stages, outcome, f"{pred['verdict']} ({agreement(pred['verdict'], outcome)})",
    ])


HEAD = ("| run | config | fit | te10 | te50 | te95 | ‖G_F‖ peak | test | conc | cov | mem/act "
        "| stages: onset(conclusive) | outcome | theory card |\n" + "|---" * 14 + "|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run names (default: all)")
    ap.add_argument("--replay", action="store_true", help="only replay stored rows")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    names = args.only or list(RUNS)
    print(HEAD)
    for name in names:
        path = args.cache / (name.replace(" ", "_").replace("·", "x") + ".json")
        if args.replay and path.exists():
            rec = json.loads(path.read_text())
        else:
            rec = record(name, RUNS[name])
            path.write_text(json.dumps(rec))
        print("| " + table_row(rec) + " |", flush=True)


if __name__ == "__main__":
    main()
