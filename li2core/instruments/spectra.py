"""Per-node component spectra and what they say about feature learning (li2-theory §4).

P_j(c) = ‖Π_c w‖² for node j (u_j = W[:M, j], v_j = W[M:, j], and row j of V), from
li2core.irreps. The trivial component is left out, so concentration measures how much of a
node's non-constant power sits in its strongest component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..irreps import Components, component_power
from .hidden import column_norms

ACTIVE_FRACTION = 0.2  # active: ‖w_j‖ ≥ this × the 99th percentile of ‖w_j‖ (robust "max")
CONCENTRATED = 0.8  # a node counts for coverage once this share of its power is in one component


@dataclass
class NodeSpectra:
    spec_u: torch.Tensor  # (K, C)
    spec_v: torch.Tensor  # (K, C)
    spec_V: torch.Tensor | None  # (K, C), only when asked for (snapshots)
    concentration: torch.Tensor  # (K,) max_c P_j(c) / Σ_c P_j(c) of u_j and v_j together
    dominant: torch.Tensor  # (K,) argmax_c P_j(c)
    agree: torch.Tensor  # (K,) bool: argmax of u_j's spectrum = argmax of v_j's
    active: torch.Tensor  # (K,) bool
    locked: torch.Tensor  # (K,) bool: active and concentration ≥ CONCENTRATED


def node_spectra(comps: Components, w: torch.Tensor, v: torch.Tensor | None = None,
                 ) -> NodeSpectra:
    """Spectra of u_j, v_j (and of V's rows when ``v`` is given) and the per-node summaries."""
    m, k = comps.order, w.shape[1]
    su, sv = component_power(comps, w[:m]), component_power(comps, w[m:])
    s_top = component_power(comps, v.T) if v is not None else None
    both = su + sv
    tot = both.sum(dim=1)
    peak, dominant = both.max(dim=1)
    conc = torch.where(tot > 0, peak / tot.clamp_min(1e-30), torch.zeros_like(tot))
    agree = su.argmax(dim=1) == sv.argmax(dim=1)
    norms = column_norms(w)
    ref = norms.kthvalue(max(1, math.ceil(0.99 * k))).values
    active = norms >= ACTIVE_FRACTION * ref
    locked = active & (conc >= CONCENTRATED)
    return NodeSpectra(su, sv, s_top, conc, dominant, agree, active, locked)


def coverage_stats(ns: NodeSpectra) -> dict[str, float]:
    """conc_mean (over active nodes), coverage (distinct dominant components among locked
    nodes), agree_frac (among locked nodes), active_nodes."""
    act = ns.active
    n_act = int(act.sum())
    locked = ns.locked
    n_locked = int(locked.sum())
    return {
        "conc_mean": float(ns.concentration[act].mean()) if n_act else 0.0,
        "coverage": float(torch.unique(ns.dominant[locked]).numel()) if n_locked else 0.0,
        "agree_frac": float(ns.agree[locked].float().mean()) if n_locked else 0.0,
        "active_nodes": float(n_act),
    }


def nodes_per_component(ns: NodeSpectra, n_components: int) -> list[int]:
    """How many locked nodes have each component as their dominant one (CoGO's solution order)."""
    counts = torch.bincount(ns.dominant[ns.locked], minlength=n_components)
    return [int(x) for x in counts]
