"""What moves a run on to its next stage, as conditions on live values (the stage card).

Restates the chain rules of ``stages.StageDetector.update`` with the detector's own
``Thresholds`` and ``claims_interactive``; the indicator words are ``vocabulary.INDICATORS``.
tests/li2core/test_stage_words.py checks, row by row on a real run, that "all conditions met"
is exactly when the detector moves on, so the two cannot drift apart silently.
"""

from __future__ import annotations

import math
from dataclasses import asdict

from .stages import ORDER, Thresholds, claims_interactive
from .vocabulary import GENERALISED, INDICATORS, MEMORISED

# (indicator, threshold name, scale): "rise" target = conc_init + t·(1 − conc_init) on conc_mean
# (the detector's concentration rise ≥ t); "count": min(t, C); "share": t·C
_LEAVE_LAZY = ("independent", [("train_acc", "train_fit", None), ("gf_align", "align", None),
                               ("conc_mean", "rise_independent", "rise"),
                               ("coverage", "cover_independent", "count")])
_TO_INTERACTIVE = ("interactive", [("coverage", "cover_interactive", "share")])
_TO_GENERALISED = (GENERALISED, [("test_acc", "generalised", None)])


def next_needs(stage: str, n_components: int) -> tuple[str, list[tuple[str, str, str | None]]]:
    """(next stage, [(indicator, threshold, scale)]) from ``stage``; None once generalised.

    Memorised is an outcome, not a stage of the chain: the detector stays in Stage I and a
    later Stage II overturns it, so it needs what Stage I needs.
    """
    if stage in ("lazy", MEMORISED):
        return _LEAVE_LAZY
    if stage == "independent" and claims_interactive(n_components):
        return _TO_INTERACTIVE
    if stage in ("independent", "interactive"):
        return _TO_GENERALISED
    return None


def target(indicator_scale: str | None, value: float, n_components: int,
           conc_init: float | None) -> float | None:
    """The value an indicator must reach (≥), given the threshold and how it scales."""
    if indicator_scale == "rise":
        return None if conc_init is None else conc_init + value * (1.0 - conc_init)
    if indicator_scale == "count":
        return min(value, n_components)
    if indicator_scale == "share":
        return value * n_components
    return value


def interactive_min_components(limit: int = 1000) -> int:
    """The fewest components for which the detector claims Stage III (docs/stages.md)."""
    return next(c for c in range(1, limit) if claims_interactive(c))


def _table(n_components: int) -> dict:
    th = asdict(Thresholds())
    out = {}
    for stage in (*ORDER, MEMORISED):
        nxt = next_needs(stage, n_components)
        reached = stage != "interactive" or claims_interactive(n_components)
        if nxt is not None and reached:
            out[stage] = {"to": nxt[0], "needs": [
                {"indicator": ind, "threshold": name, "value": th[name], "scale": scale}
                for ind, name, scale in nxt[1]]}
    return out


def vocabulary() -> dict:
    """JSON for pages: indicator words, and each stage's next-stage needs for groups with
    Stage III claimed (``next``) and without it (``next_small``: fewer than
    ``interactive_min_components`` components)."""
    big = interactive_min_components()
    return {"indicators": INDICATORS, "next": _table(big), "next_small": _table(big - 1),
            "interactive_min_components": big}


def met(stage: str, row: dict, n_components: int, conc_init: float | None) -> bool | None:
    """Whether every condition for leaving ``stage`` holds on a metrics row (None: final)."""
    nxt = next_needs(stage, n_components)
    if nxt is None:
        return None
    th = asdict(Thresholds())
    for ind, name, scale in nxt[1]:
        value, goal = row.get(ind), target(scale, th[name], n_components, conc_init)
        if value is None or goal is None or not math.isfinite(value) or value < goal:
            return False
    return True
