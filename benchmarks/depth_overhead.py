"""Deeper networks' costs at the ``deep`` preset, on one core:

1. the instruments (layer 1's and every added layer's): train() with the full probe vs
   instruments=False. The two runs advance in lock-step (one metrics row of each in turn) and
   each is charged the CPU time of its own thread inside next() (time.thread_time), so other
   jobs on a shared machine do not enter the ratio; the snapshot arrays, computed on a helper
   thread, are added from the probe's own timer;
2. the autograd step that depth ≥ 2 trains through vs the fused engine, both at depth 1 with the
   same shapes, and the depth-2 step itself (bare runs, the same lock-step CPU clock).

    PYTHONPATH=. .venv/bin/python benchmarks/depth_overhead.py [--steps 800]
"""

from __future__ import annotations

import argparse
import time

import torch

from li2core import make_dataset, train
from li2core.instruments import make_probe
from li2core.presets import get_preset


class Clocked:
    """A train() generator charged with its thread's CPU time inside next(), a row at a time."""

    def __init__(self, events):
        self.events, self.seconds, self.rows, self.done = events, 0.0, 0, False

    def row(self) -> None:
        while not self.done:
            t0 = time.thread_time()
            try:
                ev = next(self.events)
            except StopIteration:
                self.done = True
                return
            finally:
                self.seconds += time.thread_time() - t0
            if ev.kind == "metrics":
                self.rows += 1
                return


def lockstep(*runs: Clocked) -> None:
    while not all(r.done for r in runs):
        for r in runs:
            r.row()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="default: the preset's")
    args = p.parse_args()
    torch.set_num_threads(1)
    deep = get_preset("deep")
    if args.steps:
        deep = deep.with_(steps=args.steps)
    for warm in (False, True):  # first calls pay for lazy set-up (kernels, caches, pools)
        for _ in train(deep.with_(steps=50), instruments=warm):
            pass
    data = make_dataset(deep.build_group(), deep.train_fraction, deep.seed)
    probe = make_probe(deep, data)
    bare, probed = Clocked(train(deep, instruments=False)), Clocked(train(deep, probe=probe))
    lockstep(bare, probed)
    helper = probe.timings.get("snapshot", [0.0, 0])[0]  # the snapshot thread's work
    extra = probed.seconds + helper - bare.seconds
    print(f"deep preset: {deep.group} K={deep.hidden} depth={deep.depth} {deep.activation} "
          f"steps={deep.steps} eval_every={deep.eval_every} snapshot_every={deep.snapshot_every}"
          f"; cadences {probe.cadence}")
    print(f"bare (instruments=False): {bare.seconds:.3f} CPU s "
          f"({1e3 * bare.seconds / deep.steps:.3f} ms/step)")
    print(f"instrumented:             {probed.seconds:.3f} CPU s on the training thread "
          f"+ {helper:.3f} s of snapshot arrays on the helper thread")
    print(f"instrument overhead: {100 * extra / bare.seconds:.1f} % of the bare step time "
          "(target ≤ 15 %)")
    print(f"{'group':12s} {'ms/call':>8s} {'calls':>6s} {'% of bare':>9s}")
    for name, (secs, calls) in sorted(probe.timings.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:12s} {1e3 * secs / calls:8.3f} {calls:6d} "
              f"{100 * secs / bare.seconds:8.1f}%")

    shallow = deep.with_(depth=1)
    runs = {"fused": Clocked(train(shallow.with_(engine="fused"), instruments=False)),
            "autograd": Clocked(train(shallow.with_(engine="autograd"), instruments=False)),
            "depth2": Clocked(train(deep, instruments=False))}
    lockstep(*runs.values())
    ms = {k: 1e3 * r.seconds / deep.steps for k, r in runs.items()}
    print(f"\nengines at depth 1, same shapes ({deep.steps} steps, bare):")
    print(f"fused    {ms['fused']:.3f} ms/step")
    print(f"autograd {ms['autograd']:.3f} ms/step ({ms['autograd'] / ms['fused']:.2f}× the "
          "fused step: the fallback's cost)")
    print(f"depth {deep.depth} (autograd, the preset) {ms['depth2']:.3f} ms/step "
          f"({ms['depth2'] / ms['fused']:.2f}× the fused depth-1 step)")


if __name__ == "__main__":
    main()
