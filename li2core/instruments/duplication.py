"""Duplication, and how much of each update goes where other nodes already are (li2-theory §2).

The paper's account of Muon: an orthogonalised update damps the parts of a node's gradient that
duplicate directions other nodes have already learned, so nodes spread over missing components.
Two measurements make that visible on any run:

* ``duplication`` = locked nodes / covered components (1 = every locked node on its own
  component; 3 = three nodes per component on average).
* ``learned_share`` = the share of the tangential update's non-constant power, summed over active
  nodes, that lies in components which *other* locked nodes already hold. Node j's own component
  counts as "learned" only if another locked node also holds it.
"""

from __future__ import annotations

import torch

from ..irreps import Components, component_power
from .gradient import tangential
from .spectra import NodeSpectra


def duplication(ns: NodeSpectra) -> dict[str, float]:
    """Locked nodes and locked nodes per covered component (0 when nothing is locked)."""
    doms = ns.dominant[ns.locked]
    n_locked = int(doms.numel())
    covered = int(torch.unique(doms).numel()) if n_locked else 0
    return {"locked_nodes": float(n_locked),
            "duplication": n_locked / covered if covered else 0.0}


def learned_mask(ns: NodeSpectra, n_components: int) -> torch.Tensor:
    """(K, C) bool: component c is held by a locked node other than j."""
    counts = torch.bincount(ns.dominant[ns.locked], minlength=n_components)
    own = torch.zeros(ns.dominant.numel(), n_components, dtype=counts.dtype,
                      device=counts.device)
    own[torch.arange(ns.dominant.numel(), device=own.device), ns.dominant] = ns.locked.to(
        counts.dtype)
    return (counts[None, :] - own) > 0


def update_power(comps: Components, dw: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(K, C) component power of the update's tangential part (u and v halves summed)."""
    t = tangential(dw, w)
    m = comps.order
    return component_power(comps, t[:m]) + component_power(comps, t[m:])


def learned_share(comps: Components, ns: NodeSpectra, dw: torch.Tensor, w: torch.Tensor,
                  ) -> float:
    """Share of the active nodes' update power that lies in components others already hold."""
    power = update_power(comps, dw, w)[ns.active]
    mask = learned_mask(ns, comps.count)[ns.active]
    total = float(power.sum())
    return float((power * mask).sum()) / total if total > 0 else 0.0


class DuplicationTracker:
    """Keeps the previous eval's W so each call measures the update since then."""

    def __init__(self, comps: Components):
        self.comps = comps
        self._prev: torch.Tensor | None = None

    def update(self, ns: NodeSpectra, w: torch.Tensor) -> dict[str, float]:
        out = duplication(ns)
        if self._prev is not None and self._prev.shape == w.shape:
            # the update measured against the *current* locks: the directions it now duplicates
            out["learned_share"] = learned_share(self.comps, ns, w - self._prev, self._prev)
        self._prev = w.clone()
        return out


def final_mechanism(config, w) -> dict[str, float]:
    """coverage and duplication of a run's weights W (2M, K), for sweep rows."""
    from ..irreps import isotypic_components
    from .spectra import coverage_stats, node_spectra

    comps = isotypic_components(config.build_group())
    ns = node_spectra(comps, torch.as_tensor(w, dtype=torch.float32))
    return {"coverage": coverage_stats(ns)["coverage"], **duplication(ns)}
