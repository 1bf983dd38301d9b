"""The stage detector's indicators in a student's words, and what moves a run to its next stage.

The stage card renders these (server route GET /api/theory/indicators); the names are the
keys of a StageChange's ``evidence.indicators`` and of the metrics rows. ``NEXT`` restates the
rules of ``stages.StageDetector.update`` as conditions on live values; tests check that every
threshold named here is one of ``stages.Thresholds``.
"""

from __future__ import annotations

from dataclasses import asdict

from .stages import Thresholds

# name → (label for a student, symbol as a hint, one line of help)
INDICATORS: dict[str, tuple[str, str, str]] = {
    "train_acc": ("training accuracy", "acc_train",
                  "share of the training pairs the network answers right"),
    "test_acc": ("test accuracy", "acc_test",
                 "share of the unseen pairs answered right: chance is 1/M"),
    "conc_mean": ("how focused the nodes are", "conc",
                  "mean share of a node's power in its strongest component (1 = one component)"),
    "conc_init": ("focus at the start", "conc₀", "the same at the first row, from random W"),
    "conc_rise": ("focus gained", "Δconc",
                  "how far the focus has moved from its start towards 1"),
    "coverage": ("components covered", "#covered",
                 "components that at least one locked node has learned"),
    "gf_align": ("gradient carries the labels", "cos(G_F, ỸỸᵀF̃)",
                 "alignment of the back-propagated gradient with the label structure"),
    "components": ("components of the group", "C", "irreducible pieces the features can be"),
    "t_fit": ("step the training set was fitted", "t_fit",
              "first step with training accuracy at the fit threshold"),
    "gf_peak_step": ("step of the strongest gradient", "argmax ‖G_F‖",
                     "where the back-propagated gradient peaked"),
    "rise_last_window": ("focus gained lately", "Δconc (window)",
                         "focus gained over the last window of steps"),
    "memorising_share": ("share of memorising nodes", "mem / active",
                         "nodes focused on single training pairs, over active nodes"),
    "window": ("window", "steps", "steps over which a stall is judged"),
}

# stage → (next stage, [(indicator, threshold name, how the threshold scales)]); scale
# "rise": target = conc_init + t·(1 − conc_init) on conc_mean; "share": t·C; "count": min(t, C)
NEXT: dict[str, tuple[str, list[tuple[str, str, str | None]]]] = {
    "lazy": ("independent", [("train_acc", "train_fit", None), ("gf_align", "align", None),
                             ("conc_mean", "rise_independent", "rise"),
                             ("coverage", "cover_independent", "count")]),
    "independent": ("interactive", [("coverage", "cover_interactive", "share")]),
    "interactive": ("generalised", [("test_acc", "generalised", None)]),
    "memorised": ("generalised", [("test_acc", "generalised", None)]),
}


def vocabulary() -> dict:
    """JSON for pages: indicators with label/symbol/help, and each stage's next-stage needs."""
    th = asdict(Thresholds())
    return {
        "indicators": {name: {"label": label, "symbol": symbol, "help": help_}
                       for name, (label, symbol, help_) in INDICATORS.items()},
        "next": {stage: {"to": to, "needs": [
            {"indicator": ind, "threshold": name, "value": th[name], "scale": scale}
            for ind, name, scale in needs]} for stage, (to, needs) in NEXT.items()},
    }
