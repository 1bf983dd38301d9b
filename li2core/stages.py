"""Online detector of the Li₂ stages (li2-theory §3) from the instruments' metric rows.

The paper gives no thresholds; these rules and numbers were calibrated on real runs
(docs/stages.md). Stages advance lazy → independent → interactive → generalised; ``memorised``
is an outcome that a later independent stage can still overturn (a run that groks late).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from .events import StageChange

ORDER = ("lazy", "independent", "interactive", "generalised")


@dataclass(frozen=True)
class Thresholds:
    """The detector's numbers (docs/stages.md says where each comes from)."""

    train_fit: float = 0.99  # Stage I is over once V fits the training set
    align: float = 0.3  # cos(G_F, ỸỸᵀF̃) that counts as "G_F carries the labels"
    rise_independent: float = 0.1  # concentration risen this far from init towards 1 ...
    cover_independent: int = 3  # ... with nodes locked on at least this many components
    cover_interactive: float = 0.5  # locked nodes cover this share of the components
    generalised: float = 0.99  # test accuracy
    memorised_test: float = 0.5  # test accuracy below which a fitted run has not generalised
    stall: float = 0.02  # concentration rise per window below which feature learning stalled
    window: int = 25  # steps (at least; at least the time to fit, too) of the stall window
    memorising_share: float = 0.5  # memorising nodes / active nodes that settles memorisation


class StageDetector:
    """Consumes metric rows in step order; ``update`` returns the StageChange events it emits."""

    def __init__(self, n_components: int, end_step: int | None = None,
                 thresholds: Thresholds | None = None):
        self.c = max(int(n_components), 1)
        self.end = end_step
        self.th = thresholds or Thresholds()
        self.stage: str | None = None
        self.outcome: str | None = None
        self.conc0: float | None = None
        self.t_fit: int | None = None
        self.align_step: int | None = None  # step at which gf_align was last computed
        self.gf_peak: tuple[int, float] | None = None  # (step, ‖G_F‖) of the largest so far
        self.history: deque[tuple[int, float]] = deque()  # (step, conc_mean)
        self.events: list[StageChange] = []

    # -- helpers --------------------------------------------------------------------------------
    def _rise(self, conc: float) -> float:
        """How far the mean concentration has gone from its init value towards 1 (0..1)."""
        c0 = self.conc0 if self.conc0 is not None else conc
        return (conc - c0) / max(1.0 - c0, 1e-9)

    def _window(self) -> int:
        return max(self.th.window, self.t_fit or 0)

    def _rise_over_window(self, step: int, conc: float) -> float | None:
        """Rise over the last window (None until a full window has been seen since the fit)."""
        w = self._window()
        while len(self.history) > 1 and self.history[1][0] <= step - w:
            self.history.popleft()
        s0, c_old = self.history[0]
        if self.t_fit is None or step - s0 < w or s0 < self.t_fit:
            return None
        return self._rise(conc) - self._rise(c_old)

    def _emit(self, step: int, stage: str, rule: str, indicators: dict,
              thresholds: dict) -> StageChange:
        ind = {k: (None if v is None else float(v)) for k, v in indicators.items()}
        ev = StageChange(step=step, stage=stage, evidence={
            "rule": rule, "indicators": ind, "thresholds": thresholds})
        if stage in ORDER:
            self.stage = stage
        if stage in ("generalised", "memorised"):
            self.outcome = stage
        elif self.outcome == "memorised":
            self.outcome = None  # features are forming after all
        self.events.append(ev)
        return ev

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
        if conc is not None:
            if self.conc0 is None:
                self.conc0 = float(conc)
            self.history.append((step, float(conc)))
        if self.t_fit is None and train >= th.train_fit:
            self.t_fit = step
        out: list[StageChange] = []
        rise = self._rise(conc) if conc is not None else None
        slope = self._rise_over_window(step, conc) if conc is not None else None
        base = {"train_acc": train, "test_acc": test, "conc_mean": conc, "conc_init": self.conc0,
                "conc_rise": rise, "coverage": cover, "gf_align": align}

        if self.stage is None:
            out.append(self._emit(step, "lazy", "first row: W at its random init, V starts to "
                                  "fit the training set (Stage I)", base, {}))

        fitted = self.t_fit is not None
        aligned = (align is not None and self.align_step is not None and fitted
                   and self.align_step >= self.t_fit and align >= th.align)
        if (self.stage == "lazy" and fitted and aligned and rise is not None
                and cover is not None and rise >= th.rise_independent
                and cover >= min(th.cover_independent, self.c)):
            out.append(self._emit(
                step, "independent",
                "train acc ≥ train_fit, G_F measured after the fit still aligned with ỸỸᵀF̃, "
                "concentration risen ≥ rise_independent of the way to 1 with nodes locked on "
                "≥ cover_independent components (Stage II)",
                {**base, "t_fit": self.t_fit,
                 "gf_peak_step": self.gf_peak[0] if self.gf_peak else None},
                {k: asdict(th)[k] for k in ("train_fit", "align", "rise_independent",
                                            "cover_independent")}))
        elif (self.stage == "independent" and cover is not None
              and cover >= th.cover_interactive * self.c):
            out.append(self._emit(
                step, "interactive",
                "after Stage II (at an earlier row), locked nodes cover ≥ cover_interactive of "
                "the components: nodes diversify onto distinct irreps (Stage III)",
                {**base, "components": self.c}, {"cover_interactive": th.cover_interactive}))

        if self.outcome != "generalised" and test >= th.generalised:
            out.append(self._emit(step, "generalised", "test acc ≥ generalised", base,
                                  {"generalised": th.generalised}))
        elif self.outcome is None and self.stage == "lazy" and fitted and test < th.memorised_test:
            mem = row.get("memorising_nodes")
            active = row.get("active_nodes")
            mem_share = (mem / active) if mem is not None and active else None
            held = step - self.t_fit
            stalled = slope is not None and slope < th.stall
            pairs = mem_share is not None and mem_share >= th.memorising_share
            last = self.end is not None and step >= self.end
            if (held >= 2 * self._window() and (stalled or pairs)) or last:
                out.append(self._emit(
                    step, "memorised",
                    "train acc ≥ train_fit held for 2 windows, test acc < memorised_test and no "
                    "feature learning: concentration rise over the last window < stall, or "
                    "memorising nodes ≥ memorising_share of active nodes (or the run ended so)",
                    {**base, "t_fit": self.t_fit, "rise_last_window": slope,
                     "memorising_share": mem_share, "window": self._window()},
                    {k: asdict(th)[k] for k in ("train_fit", "memorised_test", "stall",
                                                "memorising_share")}))
        return out
