"""Which instrument runs when: a cost model in units of one training step, from the config alone
(so the same config always yields the same rows).

Costs are modelled on one CPU thread as  flops/GEMM_RATE + element-ops/ELEM_RATE + ops·OP_COST
(constants fitted with benchmarks/instrument_overhead.py). A periodic or expensive group runs
every c steps with c the smallest multiple of eval_every whose amortised cost stays within its
share of a training step; cheap groups run at every eval row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GEMM_RATE = 5e10  # flop/s, float32 matmul
ELEM_RATE = 1.5e9  # element-ops/s for gathers, scatters and pointwise ops
OP_COST = 1.5e-5  # s of dispatch per torch op
SUBSET = 512  # nodes in the diagonality estimate when the Gram is formed in sample space

# share of one training step each group may cost on average (sum 0.08; cheap groups and the
# snapshot arrays, which run on config cadences, take the rest of the 15% budget at fig3)
SHARES = {"gradient": 0.025, "energy": 0.02, "ridge": 0.025, "duplication": 0.01}
# ... plus this many seconds per step per group, so tiny runs (steps ≪ 1 ms, all dispatch
# overhead) still get a usable resolution; negligible against fig3's ~0.1 s steps
FREE_SECONDS = 2e-4


@dataclass(frozen=True)
class InstrumentGroup:
    """A set of scalars computed together because they share intermediates."""

    name: str
    cost_class: str  # cheap | periodic | expensive
    outputs: tuple[str, ...]


GROUPS = (
    InstrumentGroup("motion", "cheap", ("w_motion", "v_motion")),
    InstrumentGroup("spectra", "cheap", ("conc_mean", "coverage", "coverage_max", "agree_frac",
                               "active_nodes")),
    InstrumentGroup("duplication", "periodic", ("duplication", "locked_nodes", "learned_share")),
    InstrumentGroup("gradient", "periodic", ("gf_norm", "gf_align")),
    InstrumentGroup("energy", "periodic", ("energy_q10", "energy_q50", "energy_q90",
                                           "memorising_nodes")),
    InstrumentGroup("ridge", "expensive", ("ridge_gap", "diag_ratio")),
)


def _t(flops: float = 0.0, elems: float = 0.0, ops: float = 0.0) -> float:
    return flops / GEMM_RATE + elems / ELEM_RATE + ops * OP_COST


def step_seconds(n: int, n_test: int, m: int, k: int, eval_every: int) -> float:
    """One optimizer step (forward, backward, Adam) plus its share of the eval forward pass."""
    step = _t(6 * n * k * m, 10 * n * k + 30 * m * k, 60)
    evaluation = _t(2 * n_test * k * m, 4 * n_test * k + 2 * n * m, 20)
    return step + evaluation / eval_every


def group_seconds(n: int, m: int, k: int) -> dict[str, float]:
    """Modelled seconds per call of each group (and of the snapshot-only gf_spectrum)."""
    r = min(n, k)
    ridge = _t(2 * n * k * r + 4 * r ** 3 / 3 + 4 * n * k * m, 8 * n * k, 40)
    if k > n:
        ridge += _t(2 * n * min(k, SUBSET) ** 2)
    return {
        "motion": _t(0, 12 * m * k, 12),
        "spectra": _t(6 * m * m * k, 16 * m * k, 40),
        "duplication": _t(4 * m * m * k, 20 * m * k, 30),
        "gradient": _t(2 * n * k * m, 4 * n * k + 4 * n * m, 40),
        "energy": _t(0, 3 * (n + m * m) * k, 30),
        "ridge": ridge,
        "gf_spectrum": _t(2 * n * k * m + 4 * m * m * k, 6 * n * k, 40),
    }


def cadences(n: int, n_test: int, m: int, k: int, eval_every: int, snapshot_every: int,
             ) -> dict[str, int]:
    """Steps between calls per group: eval_every for cheap groups, a multiple of it otherwise,
    nudged (at most 2×) onto a divisor or multiple of snapshot_every so that snapshots reuse
    the group's intermediates."""
    step = step_seconds(n, n_test, m, k, eval_every)
    cost = group_seconds(n, m, k)
    out = {}
    for g in GROUPS:
        if g.cost_class == "cheap":
            out[g.name] = eval_every
            continue
        allowed = (SHARES[g.name] * step + FREE_SECONDS) * eval_every
        least = max(1, math.ceil(cost[g.name] / allowed))
        out[g.name] = least * eval_every
        for evals in range(least, 2 * least + 1):
            c = evals * eval_every
            if snapshot_every % c == 0 or c % snapshot_every == 0:
                out[g.name] = c
                break
    return out


# depth ≥ 2: the share of the (autograd) step that the instruments, amortised, may cost; the
# snapshot arrays and the stage rows take the rest of the 15 % budget
DEEP_SHARE = 0.10
# groups the per-layer stage detector reads (they run every c steps); the others every RARER·c
DEEP_CORE = ("motion", "spectra", "gradient", "layers")
RARER = 4


def _snap(least: int, eval_every: int, snapshot_every: int) -> int:
    """The smallest multiple of eval_every from least·eval_every (at most twice that) that
    divides or is a multiple of snapshot_every, so snapshots reuse the intermediates."""
    for evals in range(least, 2 * least + 1):
        c = evals * eval_every
        if snapshot_every % c == 0 or c % snapshot_every == 0:
            return c
    return least * eval_every


def deep_cadences(n: int, n_test: int, m: int, k: int, depth: int, eval_every: int,
                  snapshot_every: int) -> dict[str, int]:
    """Cadences for a network of depth ≥ 2. At small sizes the ops' dispatch dominates and the
    cheap groups alone would cost more than a step, so every group runs on a cadence: the
    stage detector's inputs (DEEP_CORE: per-layer spectra and G_F) every c steps, the others
    every RARER·c, c the smallest multiple of eval_every within DEEP_SHARE of a step."""
    extra = depth - 1
    step = (step_seconds(n, n_test, m, k, eval_every)
            + extra * _t(6 * n * k * k + 2 * n_test * k * k / eval_every, 12 * n * k, 40))
    cost = group_seconds(n, m, k)
    cost["layers"] = extra * _t(2 * m * m * k * k + 4 * m ** 3 * k, 16 * m * m * k, 60)
    cost["gradient"] = depth * _t(6 * n * k * k + 2 * n * k * m, 12 * n * k, 40)
    core = sum(cost[g] for g in DEEP_CORE)
    rest = sum(v for g, v in cost.items() if g not in DEEP_CORE and g != "gf_spectrum")
    least = max(1, math.ceil((core + rest / RARER) / (DEEP_SHARE * step * eval_every)))
    every = _snap(least, eval_every, snapshot_every)
    rare = _snap(RARER * every // eval_every, eval_every, snapshot_every)
    base = cadences(n, n_test, m, k, eval_every, snapshot_every)
    return {**{g: max(c, every if g in DEEP_CORE else rare) for g, c in base.items()},
            "layers": every}
