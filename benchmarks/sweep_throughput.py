"""A 16-run sweep trained batched (li2core.batched) vs one by one (train()), in one process on
one core; prints seconds and the ratio, and checks that both give the same outcomes.

    .venv/bin/python benchmarks/sweep_throughput.py [--steps 200] [--case Z23:48 --case Z41:88]
        [--eval-every 10] [--repeat 3] [--device cuda]

Times are CPU seconds of this process (time.process_time), which other jobs on a shared
machine disturb less than wall time; the wall-time ratio is printed too. With --device cuda
both columns are wall seconds. ``--repeat N`` times each side N times, alternating, and keeps
the fastest: on a shared machine single timings of the same sweep vary by ±10%.

``--preset NAME [--set field=value …]`` instead times one named sweep (batched, as ``li2 sweep
--preset NAME`` runs it) in CPU seconds and prints its outcome counts. ``--before DIR`` (repeatable)
times it against an older li2core too, each side in its own process, alternating ``--repeat``
times:

    git archive <old commit> li2core | tar -x -C /tmp/before
    .venv/bin/python benchmarks/sweep_throughput.py --preset scaling-law --before /tmp/before \
        [--also-set precision=bf16]

``--interleave OLD/li2core/batched.py`` compares only the batched engine's step, old and new
in alternating 20-step blocks in one process (one batch per group of the preset), which a
shared machine's slow drifts disturb least.

``--keep-subnormals`` trains with IEEE subnormals instead of li2core's flush to zero
(li2core/denormals.py; with ``--before``, as one more side): on Intel CPUs that is most of the
late steps of a run whose unused nodes decay.

``--floor`` adds the preset's matrix-product floor: the three products of every training step
and the whole-table product of every evaluation, timed alone at each batch's shapes; no engine
that keeps fp32 products can run the sweep faster than that. ``--loop`` adds the engine's
training loop alone (forward, metrics, backward, optimizer; no events, no run folders).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from li2core import RunConfig, train
from li2core.sweep import SweepConfig, run_sweep


def sixteen_runs(group: str, hidden: int, steps: int, eval_every: int,
                 device: str = "cpu") -> SweepConfig:
    """4 train fractions × 4 seeds around the group's boundary, the shape of a real sweep."""
    base = RunConfig(group=group, hidden=hidden, lr=5e-3, weight_decay=1e-3, steps=steps,
                     eval_every=eval_every, snapshot_every=max(steps, 1), device=device)
    return SweepConfig(name=f"bench-{group}", base=base,
                       grid={"train_fraction": [0.2, 0.3, 0.4, 0.5], "seed": [0, 1, 2, 3]})


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def fastest(fns, repeat: int):
    """[(result, CPU s, wall s)] per function: the fastest of ``repeat`` alternating calls."""
    best = [(None, float("inf"), float("inf"))] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            out, c, w = timed(fn)
            best[i] = (out, min(c, best[i][1]), min(w, best[i][2]))
    return best


def preset_sweep(name: str, sets: list[str]):
    """The named sweep with ``field=value`` changes to its base run."""
    from li2core.sweep_presets import get_sweep_preset

    sweep = get_sweep_preset(name)
    if sets:
        changes = {}
        for pair in sets:
            key, value = pair.split("=", 1)
            changes[key] = int(value) if value.isdigit() else value
        sweep = sweep.model_copy(update={"base": sweep.base.with_(**changes)})
    return sweep


def time_preset(name: str, sets: list[str]) -> dict:
    """CPU and wall seconds of one batched run of a sweep preset, its outcomes and finals."""
    from collections import Counter

    results, cpu, wall = timed(lambda: run_sweep(preset_sweep(name, sets)))
    return {"cpu": cpu, "wall": wall, "outcomes": dict(Counter(r.outcome for r in results)),
            "final": [[r.final.get("train_acc"), r.final.get("test_acc")] for r in results]}


def compare_trees(name: str, sets: list[str], older: list[str], repeat: int,
                  also: list[str] | None = None, kept: bool = False) -> None:
    """Time the preset with li2core from each ``older`` tree and from this one, alternating,
    each run in a fresh process (one torch thread); keep each side's fastest. ``also``: one
    more side, this tree with these further ``field=value`` changes (e.g. precision=bf16,
    a field older trees may not have); ``kept``: one more, this tree with IEEE subnormals."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sides = [(tree, tree, sets, []) for tree in older] + [("this tree", here, sets, [])]
    if also:
        sides.append((f"this tree, {' '.join(also)}", here, [*sets, *also], []))
    if kept:
        sides.append(("this tree, subnormals kept", here, sets, ["--keep-subnormals"]))
    best: dict[str, dict] = {}
    for _ in range(repeat):
        for label, tree, side_sets, flags in sides:
            args = [sys.executable, os.path.abspath(__file__), "--preset", name, "--json",
                    *flags, *[f"--set={x}" for x in side_sets]]
            out = subprocess.run(args, env={**os.environ, "PYTHONPATH": tree}, check=True,
                                 capture_output=True, text=True).stdout
            got = json.loads(out.strip().splitlines()[-1])
            print(f"  {label}: {got['cpu']:.1f} CPU s, {got['wall']:.1f} wall s", flush=True)
            if label not in best or got["cpu"] < best[label]["cpu"]:
                best[label] = got
    after = best["this tree"]
    print(f"{name} {' '.join(sets)}, best of {repeat} per side, CPU seconds:")
    first = sides[0][0]
    for label, *_ in sides:
        b = best[label]
        drift = max(abs(x[1] - y[1]) for x, y in zip(b["final"], after["final"], strict=True))
        speed = "" if label == first else f", {best[first]['cpu'] / b['cpu']:.2f}× as fast"
        print(f"  {label}: {b['cpu']:.1f} s{speed}; {b['outcomes']}; largest final "
              f"test-acc difference from this tree {drift:.4f}")


def best_of(fn, reps: int = 20) -> float:
    """Seconds per call of ``fn``: the fastest of 3 rounds of ``reps`` calls, after a warm-up."""
    fn()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t) / reps)
    return min(times)


def product_seconds(r: int, m: int, k: int, n: int) -> tuple[float, float, float]:
    """Seconds of a batch's training-rows forward product, its two backward products and the
    whole-table forward product, each alone (the engine's layouts, random operands)."""
    vt, f = torch.randn(r, m, k), torch.randn(r, m * m, k)
    out, g, d_h = torch.empty(r, m, m * m), torch.randn(r, m, n), torch.empty(r, n, k)
    return (best_of(lambda: torch.bmm(vt, f[:, :n].mT, out=out[:, :, :n])),
            best_of(lambda: (torch.bmm(g.mT, vt, out=d_h), torch.bmm(g, f[:, :n]))),
            best_of(lambda: torch.bmm(vt, f.mT, out=out)))


def product_floor(name: str, sets: list[str]) -> float:
    """Seconds the sweep's matrix products take alone (fp32, hot caches), summed over batches."""
    from li2core.batched import BatchedRuns, plan_batches

    configs = preset_sweep(name, sets).configs()
    total = 0.0
    for part in plan_batches(configs):
        cs = [configs[i] for i in part]
        b = BatchedRuns(cs)
        forward, backward, table = product_seconds(b.runs, b.m, b.k, b.n_max)
        steps, every = cs[0].steps, min(c.eval_every for c in cs)
        evals = steps // every + 1
        total += steps * backward + (steps + 1 - evals) * forward + evals * table
    return total


def step_loop(name: str, sets: list[str], steps: int = 300) -> float:
    """Seconds the preset's training loop takes without events: per batch, ``steps`` steps of
    forward (with the metrics every eval_every), backward and optimizer, best of 3, scaled to
    the preset's steps and summed. Against ``--floor`` it shows what is not the products."""
    from li2core.batched import BatchedRuns, plan_batches

    configs = preset_sweep(name, sets).configs()
    total = 0.0
    for part in plan_batches(configs):
        cs = [configs[i] for i in part]
        batch, every = BatchedRuns(cs), min(c.eval_every for c in cs)

        def loop(b=batch, e=every):
            for s in range(steps):
                b.forward(full=s % e == 0)
                if s % e == 0:
                    b.metrics().tolist()
                b.step()

        loop()  # warm caches (and numba's first call)
        times = []
        for _ in range(3):
            t = time.process_time()
            loop()
            times.append(time.process_time() - t)
        total += min(times) * cs[0].steps / steps
    return total


def interleaved_steps(name: str, sets: list[str], old_file: str, blocks: int = 25) -> None:
    """Per-step CPU time of one batch per group of the preset, this li2core/batched.py against
    ``old_file`` (an older batched.py, importing the rest of li2core from this tree), in
    alternating 20-step blocks in one process: slow drifts of a shared machine hit both."""
    import importlib.util
    import statistics

    import li2core.batched as new

    spec = importlib.util.spec_from_file_location("li2core.batched_old", old_file)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    configs = preset_sweep(name, sets).configs()

    def block(batch, start: int, n: int = 20) -> float:
        t = time.process_time()
        for s in range(start, start + n):
            evaluate = s % configs[0].eval_every == 0
            batch.forward(full=evaluate)
            if evaluate:
                batch.metrics().tolist()
            batch.step()
        return time.process_time() - t

    largest: dict[str, list[int]] = {}  # per group, its first batch of the most runs
    for part in new.plan_batches(configs):
        group = configs[part[0]].group
        if len(part) > len(largest.get(group, [])):
            largest[group] = part
    for part in largest.values():
        cs = [configs[i] for i in part]
        a, b = old.BatchedRuns(cs), new.BatchedRuns(cs)
        block(a, 0, 40)
        block(b, 0, 40)
        times = [(block(a, 40 + 20 * i), block(b, 40 + 20 * i)) for i in range(blocks)]
        ratio = statistics.median(x / y for x, y in times)
        print(f"{cs[0].group} × {len(cs)} runs: old {min(x for x, _ in times) / 20 * 1e6:.0f} µs, "
              f"new {min(y for _, y in times) / 20 * 1e6:.0f} µs per step (fastest block); "
              f"new is {ratio:.3f}× as fast (median of {blocks} block pairs)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", help="time this sweep preset instead of the 16-run cases")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="with --preset: change a field of the sweep's base run")
    parser.add_argument("--before", metavar="DIR", action="append", default=[],
                        help="with --preset: also time li2core from DIR (repeatable), alternating")
    parser.add_argument("--also-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="with --before: one more side, this tree with these changes too")
    parser.add_argument("--floor", action="store_true",
                        help="with --preset: print the matrix-product floor too")
    parser.add_argument("--loop", action="store_true",
                        help="with --preset: print the training loop's time without events too")
    parser.add_argument("--interleave", metavar="BATCHED_PY",
                        help="with --preset: per-step time of this batched.py against an "
                        "older one, in alternating blocks in one process")
    parser.add_argument("--keep-subnormals", action="store_true",
                        help="with --preset: train with IEEE subnormals, not flushed to zero as "
                        "li2core does (what the flush saves on this CPU); with --before, one "
                        "more side")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings per side")
    parser.add_argument("--case", action="append", metavar="GROUP:HIDDEN",
                        help="default: Z23:48 and Z41:88 (M ≤ 41, hidden ≥ 2M − 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.keep_subnormals and not args.before:
        from li2core import denormals

        denormals._supported = False  # it never sets the flush
    if args.preset:
        if args.interleave:
            interleaved_steps(args.preset, args.set, args.interleave)
        elif args.before:
            compare_trees(args.preset, args.set, args.before, args.repeat, args.also_set,
                          args.keep_subnormals)
        elif args.json:
            print(json.dumps(time_preset(args.preset, args.set)))
        else:
            got = time_preset(args.preset, args.set)
            print(f"{args.preset} {' '.join(args.set)}: {got['cpu']:.1f} CPU s, "
                  f"{got['wall']:.1f} wall s, {got['outcomes']}")
        if args.floor:
            print(f"matrix products alone: {product_floor(args.preset, args.set):.1f} s")
        if args.loop:
            print(f"training loop without events: {step_loop(args.preset, args.set):.1f} s")
        return
    # the first torch.optim step imports torch._dynamo (seconds): keep it out of the timing
    list(train(RunConfig(group="Z5", hidden=8, steps=2, device=args.device), instruments=False))
    print(f"16 runs × {args.steps} steps, eval_every {args.eval_every}, 1 thread, "
          f"{args.device}, best of {args.repeat}"
          + (" (times: wall seconds)" if args.device == "cuda" else ""))
    print(f"{'case':>10} {'one-by-one':>12} {'batched':>10} {'ratio':>7} {'wall ratio':>11} "
          f"{'outcome≠':>8} {'max Δtest':>12}")
    for case in args.case or ["Z23:48", "Z41:88"]:
        group, hidden = case.split(":")
        sweep = sixteen_runs(group, int(hidden), args.steps, args.eval_every, args.device)
        (solo, c_solo, w_solo), (batched, c_bat, w_bat) = fastest(
            [lambda s=sweep: run_sweep(s, batched=False),
             lambda s=sweep: run_sweep(s, batched=True)], args.repeat)
        if args.device == "cuda":  # the host CPU mostly waits on the GPU: wall time counts
            c_solo, c_bat = w_solo, w_bat
        # float rounding differs (batched matmuls), so long runs may drift apart slightly
        flips = sum(a.outcome != b.outcome for a, b in zip(solo, batched, strict=True))
        drift = max(abs(a.final["test_acc"] - b.final["test_acc"])
                    for a, b in zip(solo, batched, strict=True))
        print(f"{case:>10} {c_solo:11.2f}s {c_bat:9.2f}s {c_solo / c_bat:6.2f}× "
              f"{w_solo / w_bat:10.2f}× {flips:>8d} {drift:12.4f}")


if __name__ == "__main__":
    main()
