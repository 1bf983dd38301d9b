"""Online detector of the Li₂ stages (li2-theory §3) from the instruments' metric rows.

The paper gives no thresholds; these rules and numbers were calibrated on real runs
(docs/stages.md, scripts/stage_calibration.py). Stages advance lazy → independent → interactive
→ generalised; ``memorised`` is an outcome that a later independent stage can still overturn.
Each event's ``step`` is the stage's onset (where the evidence says it began); the evidence
also names the step at which it became conclusive, which can be later.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .events import StageChange
from .vocabulary import (
    GENERALISED,
    GENERALISED_TEST_ACC,
    INTERACTIVE_NOT_CLAIMED,
    MEMORISED,
    NEAR_CHANCE,
    RISING,
    TRAIN_FIT,
    final_outcome,
    lift,
)

ORDER = ("lazy", "independent", "interactive", GENERALISED)


@dataclass(frozen=True)
class Thresholds:
    """The detector's numbers (docs/stages.md says where each comes from)."""

    train_fit: float = TRAIN_FIT  # Stage I is over once V fits the training set
    align: float = 0.3  # cos(G_F, ỸỸᵀF̃) that counts as "G_F carries the labels"
    rise_independent: float = 0.1  # concentration risen this far from init towards 1 ...
    cover_independent: int = 3  # ... with nodes locked on at least this many components
    cover_interactive: float = 0.5  # locked nodes cover this share of the components ...
    interactive_margin: int = 2  # ... which must exceed cover_independent by this many
    onset_rise: float = 0.02  # concentration risen this far above its post-fit low: onset
    generalised: float = GENERALISED_TEST_ACC  # test accuracy
    near_chance: float = NEAR_CHANCE  # memorised: test lift (0 = chance 1/M, 1 = perfect) below
    rising: float = RISING  # lift gained over a window that counts as "test accuracy rising"
    stall: float = 0.02  # concentration rise per window below which feature learning stalled
    window: int = 25  # steps (at least; at least the time to fit, too) of the trend window
    memorising_share: float = 0.5  # memorising nodes / active nodes that settles memorisation


def claims_interactive(n_components: int, th: Thresholds | None = None) -> bool:
    """Stage III is told apart from Stage II by coverage only when the group has enough
    components: its bar must exceed Stage II's by ``interactive_margin``."""
    th = th or Thresholds()
    need = math.ceil(th.cover_interactive * n_components)
    return need >= min(th.cover_independent, n_components) + th.interactive_margin


class StageDetector:
    """Consumes metric rows in step order; ``update`` returns the StageChange events it emits.

    ``order`` = M (chance is 1/M); ``inherited`` = a fork's parent's stage events up to the fork
    step ({"step", "stage", "evidence"}), re-emitted at the first row and continued from.
    ``layer`` tags the events (li2core.layer_stages runs one detector per hidden layer); only a
    detector with ``outcomes`` says generalised/memorised, which belong to the whole network.
    """

    def __init__(self, n_components: int, end_step: int | None = None,
                 thresholds: Thresholds | None = None, order: int = 2,
                 inherited: list[dict] | None = None, fork: dict | None = None,
                 layer: int = 1, outcomes: bool = True):
        self.c = max(int(n_components), 1)
        self.m = max(int(order), 2)
        self.end = end_step
        self.th = thresholds or Thresholds()
        self.interactive = claims_interactive(self.c, self.th)
        self.stage: str | None = None
        self.outcome: str | None = None
        self.conc0: float | None = None
        self.t_fit: int | None = None
        self.onset: int | None = None  # onset of the current chain stage
        self.align_step: int | None = None  # step at which gf_align was last computed
        self.gf_peak: tuple[int, float] | None = None  # (step, ‖G_F‖) of the largest so far
        self.rows: list[tuple[int, float, float | None, float | None]] = []  # step, test, conc, cov
        self.last: dict | None = None
        self.events: list[StageChange] = []
        self._forming = False  # G_F still aligned and concentration still rising (last row)
        self._inherited = list(inherited or [])
        self._fork = fork or {}
        self.layer, self.outcomes = int(layer), outcomes

    # -- helpers --------------------------------------------------------------------------------
    def _rise(self, conc: float) -> float:
        """How far the mean concentration has gone from its init value towards 1 (0..1)."""
        c0 = self.conc0 if self.conc0 is not None else conc
        return (conc - c0) / max(1.0 - c0, 1e-9)

    def _window(self) -> int:
        return max(self.th.window, self.t_fit or 0)

    def _row_before(self, step: int, back: int):
        """The latest stored row at or before ``step − back`` (None if the history is shorter)."""
        target = step - back
        if not self.rows or self.rows[0][0] > target:
            return None
        lo, hi = 0, len(self.rows) - 1
        while lo < hi:  # binary search: rows are in step order
            mid = (lo + hi + 1) // 2
            if self.rows[mid][0] <= target:
                lo = mid
            else:
                hi = mid - 1
        return self.rows[lo]

    def _independent_onset(self, step: int) -> int:
        """Where Stage II began: the last row since the fit at which the concentration was
        still within ``onset_rise`` of its low after the fit (the foot of its final climb)."""
        start = self.t_fit if self.t_fit is not None else self.rows[0][0]
        seen = [(s, self._rise(c)) for s, _, c, _ in self.rows if s >= start and c is not None]
        if not seen:
            return step
        low = min(r for _, r in seen)
        foot = [s for s, r in seen if r <= low + self.th.onset_rise]
        return max(foot[-1], self.onset or 0)

    def _interactive_onset(self, step: int) -> int:
        """Where Stage III began: the first row of the final stretch in which coverage stayed
        above what Stage II needs."""
        need = min(self.th.cover_independent, self.c)
        onset = step
        for s, _, _, cov in reversed(self.rows):
            if cov is None or cov <= need or s < (self.onset or 0):
                break
            onset = s
        return onset

    def _emit(self, onset: int, step: int, stage: str, rule: str, indicators: dict,
              thresholds: dict, **extra) -> StageChange:
        ind = {k: (None if v is None else float(v)) for k, v in indicators.items()}
        ev = StageChange(step=onset, stage=stage, evidence={
            "rule": rule, "onset_step": onset, "conclusive_step": step,
            "indicators": ind, "thresholds": thresholds, **extra}, layer=self.layer)
        if stage in ORDER:
            self.stage, self.onset = stage, onset
        if stage in (GENERALISED, MEMORISED):
            self.outcome = stage
        elif self.outcome == MEMORISED:
            self.outcome = None  # features are forming after all
        self.events.append(ev)
        return ev

    def _start(self, step: int, base: dict) -> list[StageChange]:
        """The first row: Stage I, or a fork's inherited history."""
        notes = [] if self.interactive else [INTERACTIVE_NOT_CLAIMED.format(components=self.c)]
        if not self._inherited:
            return [self._emit(step, step, "lazy", "first row: W at its random init, V starts "
                               "to fit the training set (Stage I)", base, {}, notes=notes,
                               components=self.c)]  # the stage card scales coverage by it
        out = []
        for rec in self._inherited:
            ev = dict(rec.get("evidence") or {})
            ev["inherited"] = self._fork
            out.append(self._emit(int(rec["step"]), int(ev.get("conclusive_step", rec["step"])),
                                  rec["stage"], ev.pop("rule", "inherited from the parent run"),
                                  ev.pop("indicators", {}), ev.pop("thresholds", {}),
                                  **{k: v for k, v in ev.items()
                                     if k not in ("onset_step", "conclusive_step")}))
            ind = (rec.get("evidence") or {}).get("indicators") or {}
            if ind.get("t_fit") is not None:
                self.t_fit = int(ind["t_fit"])
            if ind.get("conc_init") is not None:
                self.conc0 = float(ind["conc_init"])
        return out

    # -- the rules ------------------------------------------------------------------------------
    def update(self, row: dict, fresh: set[str] | None = None) -> list[StageChange]:
        """Feed one metrics row (train_acc, test_acc and the instruments' scalars).

        ``fresh``: names computed at this row (cadence-bound ones are carried otherwise);
        None means every key in the row is fresh.
        """
        th = self.th
        step = int(row["step"])
        train, test = float(row["train_acc"]), float(row["test_acc"])
        conc = row.get("conc_mean")
        cover = row.get("coverage")
        align = row.get("gf_align")
        if align is not None and (fresh is None or "gf_align" in fresh):
            self.align_step = step
        gf = row.get("gf_norm")
        if gf is not None and (self.gf_peak is None or gf > self.gf_peak[1]):
            self.gf_peak = (step, float(gf))
        first = self.stage is None and not self.events
        if conc is not None and self.conc0 is None:
            self.conc0 = float(conc)
        self.rows.append((step, test, None if conc is None else float(conc),
                          None if cover is None else float(cover)))
        self.last = row
        if self.t_fit is None and train >= th.train_fit:
            self.t_fit = step
        rise = self._rise(conc) if conc is not None else None
        w = self._window()
        then = self._row_before(step, w)
        slope = (rise - self._rise(then[2]) if then is not None and then[2] is not None
                 and rise is not None and self.t_fit is not None and then[0] >= self.t_fit
                 else None)
        # trend of test accuracy over the window (over the whole history while it is shorter)
        gain = lift(test, self.m) - lift((then or self.rows[0])[1], self.m)
        base = {"train_acc": train, "test_acc": test, "test_lift": lift(test, self.m),
                "conc_mean": conc, "conc_init": self.conc0, "conc_rise": rise,
                "coverage": cover, "gf_align": align, "t_fit": self.t_fit}
        out: list[StageChange] = self._start(step, base) if first else []

        fitted = self.t_fit is not None
        aligned = (align is not None and self.align_step is not None and fitted
                   and self.align_step >= self.t_fit and align >= th.align)
        if (self.stage == "lazy" and fitted and aligned and rise is not None
                and cover is not None and rise >= th.rise_independent
                and cover >= min(th.cover_independent, self.c)):
            out.append(self._emit(
                self._independent_onset(step), step, "independent",
                "train acc ≥ train_fit, G_F measured after the fit still aligned with ỸỸᵀF̃, "
                "concentration risen ≥ rise_independent of the way to 1 with nodes locked on "
                "≥ cover_independent components (Stage II). Onset: the foot of the "
                "concentration's climb after the fit (within onset_rise of its low).",
                {**base, "gf_peak_step": self.gf_peak[0] if self.gf_peak else None},
                {k: asdict(th)[k] for k in ("train_fit", "align", "rise_independent",
                                            "cover_independent", "onset_rise")}))
        elif (self.stage == "independent" and self.interactive and cover is not None
              and cover >= th.cover_interactive * self.c):
            out.append(self._emit(
                self._interactive_onset(step), step, "interactive",
                "after Stage II, locked nodes cover ≥ cover_interactive of the components "
                "(nodes diversify onto distinct irreps: Stage III). Onset: the first row of the "
                "stretch in which coverage stayed above cover_independent.",
                {**base, "components": self.c}, {"cover_interactive": th.cover_interactive,
                                                  "cover_independent": th.cover_independent}))

        last = self.end is not None and step >= self.end
        if not self.outcomes:
            pass  # a lower layer of a deeper network: the top layer's detector says outcomes
        elif self.outcome != GENERALISED and test >= th.generalised:
            out.append(self._emit(step, step, GENERALISED, "test acc ≥ generalised", base,
                                  {"generalised": th.generalised}))
        elif self.outcome is None and self.stage == "lazy" and fitted:
            mem = row.get("memorising_nodes")
            active = row.get("active_nodes")
            mem_share = (mem / active) if mem is not None and active else None
            near = lift(test, self.m) < th.near_chance
            flat = gain < th.rising
            stalled = slope is not None and slope < th.stall
            # G_F measured within the last window still carries the labels: features may form
            carries = (align is not None and align >= th.align and self.align_step is not None
                       and self.align_step >= max(self.t_fit, step - w))
            pairs = mem_share is not None and mem_share >= th.memorising_share
            held = step - self.t_fit >= 2 * w
            self._forming = carries and not stalled
            if near and flat and ((held and (pairs or (stalled and not carries)))
                                  or (last and not self._forming)):
                out.append(self._emit(
                    self.t_fit, step, MEMORISED,
                    "train acc ≥ train_fit, test accuracy near chance (lift < near_chance) and "
                    "not rising (lift gained over the last window < rising), still in Stage I, "
                    "and either memorising nodes ≥ memorising_share of active nodes or no "
                    "feature learning (G_F no longer aligned with the labels, gf_align < align, "
                    "and concentration rise over the window < stall), 2 windows after the fit; "
                    "or the run ended so without features forming (not both G_F aligned and "
                    "concentration rising). Onset: the fit.",
                    {**base, "test_lift_gain": gain, "rise_last_window": slope,
                     "memorising_share": mem_share, "window": w},
                    {k: asdict(th)[k] for k in ("train_fit", "near_chance", "rising", "stall",
                                                "align", "memorising_share")}))
        return out

    def final_outcome(self) -> str | None:
        """The run's outcome now (vocabulary key): generalised or memorised once the detector
        said so, else judged from the last row (still learning, not yet fitted, ...)."""
        if self.outcome is not None:
            return self.outcome
        if self.last is None:
            return None
        step = int(self.last["step"])
        then = self._row_before(step, self._window())
        return final_outcome(float(self.last["train_acc"]), float(self.last["test_acc"]), self.m,
                             then[1] if then is not None else None,
                             features_forming=self.stage not in (None, "lazy") or self._forming)
