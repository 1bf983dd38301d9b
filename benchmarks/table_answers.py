"""Cost of the task table's answers (li2core.predict.table_outcome, behind GET /table): the
whole M×M table evaluated from stored W, V, against one training step's forward pass over the
same rows, measured alternately in one process on one core.

    .venv/bin/python benchmarks/table_answers.py [--repeats 5]

The ratio says how many training forwards one table costs (the server caches each snapshot's
table, so a replay slider pays it once per step it visits).
"""

from __future__ import annotations

import argparse
import time

import torch

from li2core import RunConfig, make_dataset
from li2core.model import features, init_weights
from li2core.predict import table_outcome

CASES = {
    "lecture (Z59, K=512)": dict(group="Z59", hidden=512, train_fraction=0.4),
    "Z256, K=1024 (largest allowed)": dict(group="Z256", hidden=1024, train_fraction=0.3),
    "S5, K=1024": dict(group="S5", hidden=1024, train_fraction=0.5),
}


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(fields: dict, repeats: int) -> tuple[float, float]:
    """(table seconds, training-forward seconds), each the best of ``repeats``."""
    config = RunConfig(**fields)
    m, k = config.group_order, config.hidden
    w, v = init_weights(m, k, 1.0, torch.Generator().manual_seed(0))
    data = make_dataset(config.build_group(), config.train_fraction, config.seed)

    def forward():
        with torch.no_grad():
            (features(w, data.a, data.b, config.activation) @ v).argmax(1)

    return (best(lambda: table_outcome(config, w.numpy(), v.numpy()), repeats),
            best(forward, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| case | table (ms) | training forward, all rows (ms) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, fields in CASES.items():
        t_table, t_fwd = measure(fields, args.repeats)
        print(f"| {name} | {1e3 * t_table:.1f} | {1e3 * t_fwd:.1f} | {t_table / t_fwd:.2f} |")

if __name__ == "__main__":
    main()
