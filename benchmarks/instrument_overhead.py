"""Cost of the instruments: steps/s of train() with the full probe vs instruments=False on the
fig3 config, plus each instrument group's ms per call and calls per step, on one core.

The two runs advance in lock-step (one step of each in turn, in one process), so a machine
shared with other jobs slows both alike and the ratio stays meaningful.

    .venv/bin/python benchmarks/instrument_overhead.py [--steps 400] [--snapshot-every 25]
        [--device cpu|cuda]

The 15% budget is for one CPU core (the default); on cuda each next() ends with a synchronize
so that asynchronous kernels are charged to the run that launched them.
"""

from __future__ import annotations

import argparse
import time

import torch

from li2core import RunConfig, make_dataset, train
from li2core.instruments import make_probe
from li2core.instruments.cadence import GROUPS, group_seconds, step_seconds

FIG3 = dict(group="Z71", hidden=2048, train_fraction=0.4, lr=1e-3, weight_decay=2e-4,
            steps=400, eval_every=1)


class Timed:
    """A train() generator whose time inside next() is summed, one optimizer step at a time."""

    def __init__(self, events, sync):
        self.events, self.sync = events, sync
        self.seconds, self.steps, self.done = 0.0, 0, False
        self.stages: list[tuple[int, str]] = []

    def step(self) -> None:
        """Advance to the next metrics row (one step: eval_every = 1 in this benchmark)."""
        while not self.done:
            t0 = time.perf_counter()
            try:
                ev = next(self.events)
            except StopIteration:
                self.done = True
                return
            finally:
                self.sync()
                self.seconds += time.perf_counter() - t0
            if ev.kind == "stage":
                self.stages.append((ev.step, ev.stage))
            if ev.kind == "metrics":
                self.steps += 1
                return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=FIG3["steps"])
    parser.add_argument("--snapshot-every", type=int, default=25)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = RunConfig(**{**FIG3, "steps": args.steps, "snapshot_every": args.snapshot_every,
                       "device": args.device})
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    data = make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed)
    t0 = time.perf_counter()
    probe = make_probe(cfg, data)
    setup = time.perf_counter() - t0
    bare = Timed(train(cfg, instruments=False), sync)
    probed = Timed(train(cfg, probe=probe), sync)
    while not (bare.done and probed.done):
        bare.step()
        probed.step()

    sps_bare, sps_probe = bare.steps / bare.seconds, probed.steps / probed.seconds
    print(f"config: {cfg.group} K={cfg.hidden} p={cfg.train_fraction} steps={cfg.steps} "
          f"eval_every={cfg.eval_every} snapshot_every={cfg.snapshot_every} "
          f"device={cfg.device}")
    print(f"bare (instruments=False): {sps_bare:7.2f} steps/s ({bare.seconds:.1f} s)")
    print(f"instrumented:             {sps_probe:7.2f} steps/s ({probed.seconds:.1f} s)")
    print(f"overhead: {100 * (probed.seconds / bare.seconds - 1):.1f}% of bare training time "
          f"(probe set-up {setup:.2f} s, not included)")
    n, m, k = data.n_train, data.order, cfg.hidden
    model = group_seconds(n, m, k)
    step_model = step_seconds(n, data.n_test, m, k, cfg.eval_every)
    print(f"\nmodelled bare step {1e3 * step_model:.1f} ms, measured {1e3 / sps_bare:.1f} ms")
    print(f"{'instrument':12s} {'class':9s} {'cadence':>7s} {'ms/call':>8s} {'model':>7s} "
          f"{'calls/step':>10s} {'% of bare':>9s}")
    classes = {g.name: g.cost_class for g in GROUPS} | {"snapshot": "snapshot", "stages": "rows"}
    cadence = {**probe.cadence, "snapshot": cfg.snapshot_every, "stages": cfg.eval_every}
    for name, (secs, calls) in sorted(probe.timings.items(), key=lambda t: -t[1][0]):
        share = 100 * secs / bare.seconds
        key = "gf_spectrum" if name == "snapshot" else name  # snapshot's own share of work
        mdl = f"{1e3 * model[key]:7.1f}" if key in model else "      -"
        print(f"{name:12s} {classes[name]:9s} {cadence[name]:7d} {1e3 * secs / calls:8.2f} "
              f"{mdl} {calls / probed.steps:10.3f} {share:8.1f}%")
    print("\nstages:", ", ".join(f"{s}@{t}" for t, s in probed.stages))


if __name__ == "__main__":
    main()
