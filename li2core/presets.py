"""Named configurations: what the dashboard, the CLI and the tests start from.

Each description says what the run does within its own steps on one core;
tests/li2core/test_presets.py trains every preset and checks ``PRESET_OUTCOMES``.
"""

from __future__ import annotations

from .config import RunConfig
from .vocabulary import GENERALISED, MEMORISED

_FIG3 = dict(group="Z71", hidden=2048, train_fraction=0.4, activation="square", loss="mse",
             optimizer="adam", lr=1e-3, weight_decay=2e-4, top_layer="trained", steps=300,
             eval_every=1, snapshot_every=10)

_LECTURE = dict(group="Z59", hidden=512, train_fraction=0.4, lr=2e-3, weight_decay=2e-4,
                steps=400, eval_every=1, snapshot_every=5)

# matches li2core.sweep_presets "optimizers" at K = 48, seed 0 (weight decay 1e-3 for both)
_OPT_PAIR = dict(group="Z23", hidden=48, train_fraction=0.5, weight_decay=1e-3, steps=2000,
                 eval_every=2, snapshot_every=20)

# two hidden layers (li2-theory §6): ReLU, the residual K×K layer, Z23 at p = 0.5
_DEEP = dict(group="Z23", hidden=128, depth=2, activation="relu", train_fraction=0.5,
             lr=1e-2, weight_decay=5e-3, steps=800, eval_every=2, snapshot_every=80)

PRESETS: dict[str, tuple[str, RunConfig]] = {
    # Measured (bare engine, one core): train acc 0.99 at step 30, test acc 0.99 at ~210, in
    # ~4 s; the same without weight decay stays at test acc 0.07 — the lecture's contrast.
    "lecture": (
        "Z59, 512 nodes, p=0.4: fits the training table by step 30, generalises near step 200 "
        "in seconds",
        RunConfig(**_LECTURE),
    ),
    "lecture-no-wd": (
        "The lecture run without weight decay: it fits the training table and memorises (test "
        "accuracy stays near chance)",
        RunConfig(**{**_LECTURE, "weight_decay": 0.0}),
    ),
    "fig3": (
        "Paper Fig. 3: Z71, 2048 nodes, p=0.4, Adam lr 1e-3, weight decay 2e-4; generalises near "
        "step 130",
        RunConfig(**_FIG3),
    ),
    "fig3-no-wd": (
        "Fig. 3 without weight decay: fits the training table and memorises (test accuracy "
        "stays near chance)",
        RunConfig(**{**_FIG3, "weight_decay": 0.0}),
    ),
    "below-pcrit": (
        "Z71 at p=0.06, well below p_crit≈0.165: the network memorises",
        RunConfig(group="Z71", hidden=256, train_fraction=0.06, lr=5e-3, weight_decay=5e-5,
                  steps=600, eval_every=1, snapshot_every=10),
    ),
    "dihedral": (
        "D13 (order 26, 2-dim irreps): features are 2-dim irreps instead of frequencies; "
        "generalises near step 115",
        # weight decay 5e-5 reached only test acc 0.74 in 400 steps; 5e-4 generalises by ~115
        RunConfig(group="D13", hidden=256, train_fraction=0.6, lr=5e-3, weight_decay=5e-4,
                  steps=300, eval_every=1, snapshot_every=5),
    ),
    # The optimizer pair (docs/optimizers.md): Z23, K = 48, each optimizer at its tuned lr, the
    # same seed. Over 8 seeds of `li2 sweep --preset optimizers` Muon ends with fewer locked
    # nodes per component (3.84 ± 0.22 vs 4.17 ± 0.13) but reaches test acc 0.99 later
    # (step 259 ± 40 vs 121 ± 29): the mechanism shows, the speed-up does not.
    "muon": (
        "Z23, 48 nodes, Muon lr 0.07: generalises with fewer nodes per component than Adam "
        "(3.8 vs 4.2, 8 seeds) but no speed-up here: test acc 0.99 at step ~260 vs Adam's ~120",
        RunConfig(**_OPT_PAIR, optimizer="muon", lr=7e-2),
    ),
    "muon-adam": (
        "The muon preset under Adam (lr 0.03): generalises first (step ~120 vs ~260) with more "
        "duplicated nodes (4.2 vs 3.8 per component, 8 seeds)",
        RunConfig(**_OPT_PAIR, optimizer="adam", lr=3e-2),
    ),
    # Measured (bare engine, one core, seeds 0-4; docs/depth.md): test acc 0.99 at step 413 on
    # average (~1.3 s) with the default V(0), 345 with V(0) = 0; without weight decay it
    # memorises. Both layers' nodes lock onto irreps, the bottom layer's first.
    "deep": (
        "Two hidden layers (Z23, 128 nodes each, ReLU): both layers learn the group's features, "
        "the bottom one first, and the network generalises near step 410 in seconds",
        RunConfig(**_DEEP),
    ),
    "deep-zero-init": (
        "The deep preset with the top layer V zero-initialised: generalises sooner than its "
        "twin (test acc 0.99 at step ~345 vs ~413, 5 seeds)",
        RunConfig(**{**_DEEP, "top_init_scale": 0.0}),
    ),
}

# what each preset's run ends as (li2core.vocabulary outcome keys), checked by a slow test
PRESET_OUTCOMES: dict[str, str] = {
    "lecture": GENERALISED, "lecture-no-wd": MEMORISED, "fig3": GENERALISED,
    "fig3-no-wd": MEMORISED, "below-pcrit": MEMORISED, "dihedral": GENERALISED,
    "muon": GENERALISED, "muon-adam": GENERALISED, "deep": GENERALISED,
    "deep-zero-init": GENERALISED,
}


def get_preset(name: str) -> RunConfig:
    try:
        return PRESETS[name][1]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
