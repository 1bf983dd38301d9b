"""Predictions of the Li₂ theory for a group and a config (li2-theory §3)."""

from __future__ import annotations

import math

from .groups import Group

P_CRIT_CONSTANT = 2.7482  # the author's fit of p_crit = c·ln M / M over abelian groups


def p_crit(group: Group) -> float:
    """p_crit ≈ 2.7482·ln M / M, scaled by max d_k / 2 for non-abelian groups."""
    m = group.order
    base = P_CRIT_CONSTANT * math.log(m) / m
    if group.is_abelian:
        return min(base, 1.0)
    from .irreps import max_irrep_dim

    return min(base * max_irrep_dim(group) / 2, 1.0)


def predict_verdict(config) -> dict:
    return {}
