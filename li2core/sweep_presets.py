"""Named sweeps for ``li2 sweep --preset`` and the dashboard (measurements in docs/sweeps.md)."""

from __future__ import annotations

from .config import RunConfig
from .sweep import SweepConfig

# Adam lr 5e-3 with coupled decay 1e-3 puts the measured boundary within ~10% of the theory's
# p_crit for M = 23…53 in 3000 steps; weaker decay needs many more steps near the boundary,
# 1e-2 stops the network from fitting at all (docs/sweeps.md).
_SCALING_BASE = RunConfig(hidden=64, lr=5e-3, weight_decay=1e-3, steps=3000, eval_every=10,
                          snapshot_every=500)

# tuned (lr, weight decay) of adam, adamw, muon on Z23 (docs/optimizers.md "How tuned")
OPTIMIZER_LR = [3e-2, 1e-1, 7e-2]
OPTIMIZER_WD = [1e-3, 3e-1, 1e-3]

SWEEP_PRESETS: dict[str, tuple[str, SweepConfig]] = {
    "scaling-law": (
        "Z23/Z31/Z41/Z53 × p = 0.15…0.45: the memorise→generalise boundary vs 2.7482·ln M/M",
        SweepConfig(
            name="scaling-law", base=_SCALING_BASE,
            zipped={"group": ["Z23", "Z31", "Z41", "Z53"], "hidden": [64, 80, 96, 128]},
            grid={"train_fraction": [round(0.15 + 0.025 * i, 3) for i in range(13)]}),
    ),
    "wd-lr": (
        "Z23, p = 0.5: weight decay × Adam lr; no decay memorises, too much never fits",
        SweepConfig(
            name="wd-lr",
            base=RunConfig(group="Z23", hidden=64, train_fraction=0.5, steps=1500,
                           eval_every=10, snapshot_every=500),
            grid={"weight_decay": [0.0, 1e-4, 1e-3, 1e-2], "lr": [1e-3, 1e-2, 1e-1, 1.0]}),
    ),
    "optimizers": (
        "Z23, p = 0.5: Adam vs AdamW vs Muon, each at its tuned lr, K = 8…128 × 8 seeds "
        "(steps to test 0.99, coverage, duplication; docs/optimizers.md)",
        SweepConfig(
            name="optimizers",
            base=RunConfig(group="Z23", train_fraction=0.5, steps=2000, eval_every=10,
                           snapshot_every=500),
            # (lr, decay) per optimizer: the fastest setting whose K = 32 and 96 runs (seeds
            # 0, 1) all end generalised, from the lr × decay scan in docs/optimizers.md
            zipped={"optimizer": ["adam", "adamw", "muon"], "lr": OPTIMIZER_LR,
                    "weight_decay": OPTIMIZER_WD},
            grid={"hidden": [8, 16, 24, 32, 40, 48, 128], "seed": list(range(8))}),
    ),
    "smoke": (
        "Z11, 4 runs, 300 steps: a few seconds, for checking an installation",
        SweepConfig(
            name="smoke",
            base=RunConfig(group="Z11", hidden=32, lr=1e-2, weight_decay=1e-3, steps=300,
                           eval_every=5, snapshot_every=100),
            grid={"train_fraction": [0.2, 0.8], "seed": [0, 1]}),
    ),
}


def get_sweep_preset(name: str) -> SweepConfig:
    try:
        return SWEEP_PRESETS[name][1]
    except KeyError:
        raise KeyError(f"unknown sweep preset {name!r}; choose from "
                       f"{', '.join(SWEEP_PRESETS)}") from None
