"""Stages per hidden layer of a deeper network (li2-theory §6): one StageDetector per layer.

Layer l's detector reads layer l's instruments (conc_mean@l, coverage@l, gf_align@l, …; layer 1
its own names) with the shared train/test accuracy; only the top layer's detector says the
whole network's outcome (generalised/memorised). The order in which the layers reach Stage II
is reported as it happened (``layer_order``), never assumed: docs/stages.md.
"""

from __future__ import annotations

from .events import StageChange
from .instruments.layers import LAYER_SCALARS, at_layer
from .stages import StageDetector, Thresholds
from .vocabulary import BOTTOM_UP, NOT_BOTTOM_UP, TOGETHER

# layer-1 scalars that do not describe the layers above; their rows leave them out
LAYER_ONE_ONLY = ("memorising_nodes", "coverage_max")


def layer_row(row: dict, layer: int) -> dict:
    """The metrics row as layer ``layer``'s detector reads it (its instruments under the base
    names)."""
    if layer == 1:
        return row
    out = {k: v for k, v in row.items() if k not in LAYER_ONE_ONLY}
    for name in LAYER_SCALARS:
        out[name] = row.get(at_layer(name, layer))
    return out


def layer_fresh(fresh: set[str] | None, layer: int) -> set[str] | None:
    if fresh is None or layer == 1:
        return fresh
    return {name for name in LAYER_SCALARS if at_layer(name, layer) in fresh} | set(fresh)


def layer_order(onsets: list[int | None]) -> str | None:
    """How the layers' Stage II onsets (bottom first; None = not reached) are ordered:
    BOTTOM_UP when each layer began strictly after the one below, TOGETHER when all began at
    the same step, NOT_BOTTOM_UP otherwise; None while fewer than two layers have begun."""
    seen = [s for s in onsets if s is not None]
    if len(seen) < 2:
        return None
    reached = [s is not None for s in onsets]
    prefix = all(reached[:sum(reached)])  # the layers that began are the lowest ones
    if prefix and all(x < y for x, y in zip(seen, seen[1:])):
        return BOTTOM_UP
    if len(set(seen)) == 1 and all(reached):
        return TOGETHER
    return NOT_BOTTOM_UP


class LayerStages:
    """``update(row, fresh)`` feeds every layer's detector; events carry their layer."""

    def __init__(self, depth: int, n_components: int, end_step: int | None, order: int,
                 inherited: list[dict] | None = None, fork: dict | None = None,
                 thresholds: Thresholds | None = None):
        inherited = inherited or []
        self.detectors = [
            StageDetector(n_components, end_step, thresholds, order,
                          [s for s in inherited if int(s.get("layer", 1)) == layer], fork,
                          layer=layer, outcomes=layer == depth)
            for layer in range(1, depth + 1)]

    @property
    def top(self) -> StageDetector:
        return self.detectors[-1]

    def update(self, row: dict, fresh: set[str] | None = None) -> list[StageChange]:
        out: list[StageChange] = []
        for det in self.detectors:
            for ev in det.update(layer_row(row, det.layer), layer_fresh(fresh, det.layer)):
                if ev.stage == "independent" and det.layer > 1:
                    # a fact for the reader, not a rule: where the layer below stood
                    ev.evidence["layer_below_onset"] = self.onsets()[det.layer - 2]
                out.append(ev)
        return out

    def onsets(self) -> list[int | None]:
        """Each layer's Stage II onset step (None where it has not begun)."""
        return [next((e.step for e in d.events if e.stage == "independent"), None)
                for d in self.detectors]

    def final_outcome(self) -> str | None:
        return self.top.final_outcome()

    def stages_of(self, layer: int) -> list[dict]:
        return [{"step": e.step, "stage": e.stage, "layer": layer}
                for e in self.detectors[layer - 1].events]
