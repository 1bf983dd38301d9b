"""Per-node component spectra and what they say about feature learning (li2-theory §4).

P_j(c) = ‖Π_c w‖² for node j (u_j = W[:M, j], v_j = W[M:, j], and row j of V), from
li2core.irreps. The trivial component is left out, so concentration measures how much of a
node's non-constant power sits in its strongest component, normalised for component size so that
a random node reads ~0 on every group and a node inside one component reads 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .. import kernels
from ..irreps import Components, component_power
from .hidden import column_norms

ACTIVE_FRACTION = 0.2  # active: ‖w_j‖ ≥ this × the 99th percentile of ‖w_j‖ (robust "max")
CONCENTRATED = 0.75  # normalised concentration at which a node counts as locked (coverage)
BASELINE_SAMPLES, BASELINE_SEED = 20000, 7


@lru_cache(maxsize=64)
def _baseline(sizes: tuple[int, ...]) -> float:
    """E[max_c P(c)/Σ_c P(c)] for a random isotropic node (u and v): P(c) ~ χ² with 2·size_c
    degrees of freedom. Large components win the max by chance (S4: 0.47, Z71: 0.09)."""
    rng = np.random.default_rng(BASELINE_SEED)
    p = rng.chisquare(2 * np.asarray(sizes, dtype=np.float64), (BASELINE_SAMPLES, len(sizes)))
    return float((p.max(axis=1) / p.sum(axis=1)).mean())


def concentration_baseline(comps: Components) -> float:
    """The raw concentration a random node has on average for this group's component sizes."""
    return _baseline(tuple(int(s) for s in comps.sizes))


def normalised_concentration(comps: Components, spectrum):
    """(max_c P_j(c)/Σ_c P_j(c) − r₀)/(1 − r₀), clipped to [0, 1], from a (K, C) power array;
    r₀ = concentration_baseline. One lock threshold then means the same on Z_M and S_n."""
    from ..irreps import concentration

    return normalise_raw_concentration(comps, concentration(spectrum))


def normalise_raw_concentration(comps: Components, raw):
    """(raw − r₀)/(1 − r₀) clipped to [0, 1] for a raw max_c P/Σ_c P (numpy or torch)."""
    r0 = concentration_baseline(comps)
    if isinstance(raw, np.ndarray):
        return np.clip((raw - r0) / (1.0 - r0), 0.0, 1.0)
    return ((raw - r0) / (1.0 - r0)).clamp(0.0, 1.0)


@dataclass
class NodeSpectra:
    spec_u: torch.Tensor  # (K, C)
    spec_v: torch.Tensor  # (K, C)
    spec_V: torch.Tensor | None  # (K, C), only when asked for (snapshots)
    concentration: torch.Tensor  # (K,) normalised_concentration of u_j and v_j together
    dominant: torch.Tensor  # (K,) argmax_c P_j(c)
    agree: torch.Tensor  # (K,) bool: argmax of u_j's spectrum = argmax of v_j's
    active: torch.Tensor  # (K,) bool
    locked: torch.Tensor  # (K,) bool: active and concentration ≥ CONCENTRATED
    # from the compiled pass: locked nodes per dominant component (C,) and (active nodes,
    # Σ concentration over them, locked nodes, locked nodes that agree); None: count with torch
    tally: tuple[np.ndarray, np.ndarray] | None = None


def node_spectra(comps: Components, w: torch.Tensor, v: torch.Tensor | None = None,
                 ) -> NodeSpectra:
    """Spectra of u_j, v_j (and of V's rows when ``v`` is given) and the per-node summaries."""
    m, k = comps.order, w.shape[1]
    # powers computed (C, K) and read through (K, C) views: reductions then run over the
    # contiguous dim; max/argmax along the short last dim of a contiguous (K, C) array ran
    # several times slower on the CPU (fig3: node_spectra 4.8 → 2.1 ms)
    basis, ind = comps._tensors(w)
    coef = basis.T @ w.view(2, m, k)
    if kernels.instruments_usable(w) and comps.count > 0:  # squares summed in one pass
        pu, pv = kernels.component_power(coef, comps.column_component, comps.count)
    else:
        pu, pv = ind.T @ coef.square_()  # (C, K) each
    s_top = component_power(comps, v.T) if v is not None else None
    return summarise_spectra(comps, pu.T, pv.T, column_norms(w), s_top)


def summarise_spectra(comps: Components, su: torch.Tensor, sv: torch.Tensor,
                      norms: torch.Tensor, s_top: torch.Tensor | None = None) -> NodeSpectra:
    """Per-node concentration, dominant component, agreement, active and locked flags from the
    (K, C) spectra of a node's two operand sides and its (K,) size ``norms``."""
    k = su.shape[0]
    kth = max(1, math.ceil(0.99 * k))
    if kernels.instruments_usable(su) and su.shape[1] > 0:
        # one pass over the (C, K) arrays su and sv are views of, counts included (the
        # spectra group 2.1–2.3 → 1.8–1.9 ms per call at fig3, in the training loop)
        conc, dominant, agree, active, locked, counts, stats = kernels.node_summary(
            su.T, sv.T, norms, concentration_baseline(comps), kth, ACTIVE_FRACTION,
            CONCENTRATED)
        return NodeSpectra(su, sv, s_top, conc, dominant, agree, active, locked,
                           (counts, stats))
    both = su + sv
    top, dominant = both.max(dim=1)  # one max for the dominant component and the ratio
    tot = both.sum(dim=1)
    agree = su.max(dim=1).indices == sv.max(dim=1).indices  # 1.6× faster than argmax
    conc = torch.where(tot > 0, normalise_raw_concentration(comps, top / tot.clamp_min(1e-30)),
                       torch.zeros_like(top))
    ref = norms.kthvalue(kth).values
    active = norms >= ACTIVE_FRACTION * ref
    locked = active & (conc >= CONCENTRATED)
    return NodeSpectra(su, sv, s_top, conc, dominant, agree, active, locked)


def coverage_stats(ns: NodeSpectra) -> dict[str, float]:
    """conc_mean (over active nodes), coverage (distinct dominant components among locked
    nodes), agree_frac (among locked nodes), active_nodes."""
    if ns.tally is not None:
        counts, (n_act, conc_sum, n_locked, n_agree) = ns.tally
        return {"conc_mean": float(conc_sum / n_act) if n_act else 0.0,
                "coverage": float((counts > 0).sum()),
                "agree_frac": float(n_agree / n_locked) if n_locked else 0.0,
                "active_nodes": float(n_act)}
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
    if ns.tally is not None:
        return [int(x) for x in ns.tally[0]]
    counts = torch.bincount(ns.dominant[ns.locked], minlength=n_components)
    return [int(x) for x in counts]
