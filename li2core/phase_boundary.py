"""Where a sweep's outcome flips from memorised to generalised, and the fit p* = c·ln M / M.

li2-theory §3: the author's fit is p_crit ≈ 2.7482·ln M / M for abelian groups (× max d_k / 2
otherwise). We measure p* per group from a sweep over train_fraction and fit c the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .theory import P_CRIT_CONSTANT, p_crit

GENERALISED_SHARE = 0.5  # a train fraction counts as generalising when most of its runs do


@dataclass
class Boundary:
    """Measured boundary of one group: p_low (largest failing p below the generalising
    range), p_high (smallest p from which every larger p generalises), p_star their midpoint."""

    group: str
    order: int
    p_low: float | None
    p_high: float | None
    p_star: float | None
    p_crit: float
    scale: float  # p_crit / 2.7482: ln M / M, times max d_k / 2 for non-abelian groups

    def as_dict(self) -> dict:
        return asdict(self)


def measured_boundaries(results: Sequence) -> list[Boundary]:
    """Per group, from RunOutcome-like objects (``config``, ``outcome``) of a train_fraction sweep.

    p_star is None when the flip lies outside the swept range (every p or no p generalises).
    """
    by_group: dict[str, dict[float, list[bool]]] = defaultdict(lambda: defaultdict(list))
    configs = {}
    for res in results:
        if res.outcome == "not_run":
            continue
        c = res.config
        by_group[c.group][c.train_fraction].append(res.outcome == "generalised")
        configs[c.group] = c
    out = []
    for name, per_p in by_group.items():
        ps = sorted(per_p)
        share = {p: sum(per_p[p]) / len(per_p[p]) for p in ps}
        p_high = None
        for p in reversed(ps):
            if share[p] < GENERALISED_SHARE:
                break
            p_high = p
        below = [p for p in ps if p_high is None or p < p_high]
        p_low = below[-1] if below else None
        p_star = (p_low + p_high) / 2 if p_low is not None and p_high is not None else None
        group = configs[name].build_group()
        pc = p_crit(group)
        out.append(Boundary(name, group.order, p_low, p_high, p_star, pc, pc / P_CRIT_CONSTANT))
    return sorted(out, key=lambda b: b.order)


def fit_constant(boundaries: Sequence[Boundary]) -> float | None:
    """Least-squares c in p* = c·scale (through the origin) over groups with a measured p*."""
    pts = [(b.scale, b.p_star) for b in boundaries if b.p_star is not None]
    if not pts:
        return None
    return sum(x * y for x, y in pts) / sum(x * x for x, _ in pts)
