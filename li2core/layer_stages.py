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
from .vocabulary import BOTTOM_UP, NOT_BOTTOM_UP, PARTLY_BOTTOM_UP, TOGETHER

# layer-1 scalars that do not describe the layers above; their rows leave them out
LAYER_ONE_ONLY = ("memorising_nodes", "coverage_max")
# onsets of adjacent layers this close (steps) count as simultaneous: the Stage II onset rule
# places every layer's onset at the foot of its climb after the fit, within a few steps of it
ORDER_TIE = 5


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


def layer_order(onsets: list[int | None], tie: int = 0) -> str | None:
    """How the layers' onsets of one stage (bottom first; None = not reached) are ordered.

    Adjacent layers whose onsets differ by at most ``tie`` steps began together. BOTTOM_UP: each
    layer began more than ``tie`` after the one below; TOGETHER: all within ``tie``;
    PARTLY_BOTTOM_UP: no layer before the one below, some together; NOT_BOTTOM_UP: a layer
    began more than ``tie`` before the one below, or while a lower layer had not begun.
    None while fewer than two layers have begun (and only the lowest, if any)."""
    seen = [s for s in onsets if s is not None]
    reached = [s is not None for s in onsets]
    if not all(reached[:len(seen)]):  # a higher layer began while a lower one had not
        return NOT_BOTTOM_UP
    if len(seen) < 2:
        return None
    gaps = [y - x for x, y in zip(seen, seen[1:])]
    if any(g < -tie for g in gaps):
        return NOT_BOTTOM_UP
    if all(g > tie for g in gaps):
        return BOTTOM_UP
    if all(abs(g) <= tie for g in gaps):
        return TOGETHER
    return PARTLY_BOTTOM_UP


class LayerStages:
    """``update(row, fresh)`` feeds every layer's detector; events carry their layer. Onsets of
    adjacent layers at most ``tie`` steps apart count as simultaneous."""

    def __init__(self, depth: int, n_components: int, end_step: int | None, order: int,
                 inherited: list[dict] | None = None, fork: dict | None = None,
                 thresholds: Thresholds | None = None, tie: int = ORDER_TIE):
        inherited = inherited or []
        self.tie = tie
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
                if ev.stage in ("independent", "interactive") and det.layer > 1:
                    # a fact for the reader, not a rule: where the layer below stood
                    ev.evidence["layer_below_onset"] = self.onsets(ev.stage)[det.layer - 2]
                out.append(ev)
        return out

    def onsets(self, stage: str = "independent") -> list[int | None]:
        """Each layer's onset step of ``stage`` (None where it has not begun)."""
        return [next((e.step for e in d.events if e.stage == stage), None)
                for d in self.detectors]

    def orders(self) -> dict[str, str | None]:
        """layer_order of the Stage II and of the Stage III onsets."""
        return {stage: layer_order(self.onsets(stage), self.tie)
                for stage in ("independent", "interactive")}

    def order(self) -> tuple[str | None, str | None]:
        """(order, stage it is read from): Stage III's onsets where two layers reached it (the
        layers' features formed), else Stage II's."""
        orders = self.orders()
        if orders["interactive"] is not None:
            return orders["interactive"], "interactive"
        return orders["independent"], "independent" if orders["independent"] else None

    def final_outcome(self) -> str | None:
        return self.top.final_outcome()

    def stages_of(self, layer: int) -> list[dict]:
        return [{"step": e.step, "stage": e.stage, "layer": layer}
                for e in self.detectors[layer - 1].events]
