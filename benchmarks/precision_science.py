"""fp32 vs bf16 on the science (docs/precision.md): first steps, stages, final accuracy and
coverage of the fig3, lecture and dihedral presets, every instrument on, one thread.

    .venv/bin/python benchmarks/precision_science.py [--presets fig3 lecture dihedral]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from li2core import train
from li2core.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["fig3", "lecture", "dihedral"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.presets:
        for precision in ("fp32", "bf16"):
            t0 = time.process_time()
            stages, summary = [], {}
            for event in train(get_preset(name).with_(precision=precision)):
                if event.kind == "stage":
                    stages.append((event.stage, event.step))
                elif event.kind == "finished":
                    summary = event.summary
            print(json.dumps({
                "preset": name, "precision": precision, "first": summary["first_step"],
                "stages": stages, "final_test_acc": round(summary["final"]["test_acc"], 4),
                "outcome": summary.get("outcome"), "coverage": summary.get("coverage"),
                "cpu_s": round(time.process_time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
