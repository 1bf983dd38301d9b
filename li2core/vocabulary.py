"""The words a student reads: stage names, run outcomes, theory verdicts (one source for all).

Every page (stage card, theory card, run list, compare, sweeps, exports) renders these keys and
labels; none re-spells them. ``as_dict()`` is what GET /api/vocabulary serves.
"""

from __future__ import annotations

import math

# -- outcomes: how a run ended (or stands), from its metrics and the stage detector ----------
GENERALISED, MEMORISED, STILL_LEARNING, NOT_FITTED, DIVERGED = (
    "generalised", "memorised", "still_learning", "not_fitted", "diverged")

OUTCOMES: dict[str, dict[str, str]] = {
    GENERALISED: {
        "label": "generalised", "colour": "#009E73",
        "says": "Test accuracy reached the generalisation bar: the network computes the group "
                "product from features and has grokked."},
    MEMORISED: {
        "label": "memorised", "colour": "#D55E00",
        "says": "The training table is fitted, test accuracy stays near chance (1/M) and is not "
                "rising, and no features are forming: the network memorised."},
    STILL_LEARNING: {
        "label": "still learning", "colour": "#E69F00",
        "says": "The training table is fitted but the evidence is not conclusive yet: test "
                "accuracy is above chance or still rising, or features are still forming. "
                "More steps would decide."},
    NOT_FITTED: {
        "label": "not yet fitted", "colour": "#56B4E9",
        "says": "Train accuracy has not reached the fit bar yet, so no outcome can be told."},
    DIVERGED: {
        "label": "diverged", "colour": "#CC79A7",
        "says": "The loss blew up (non-finite, or far above where it started)."},
}

# Thresholds of the outcome rule (docs/stages.md); the stage detector and sweeps share them.
TRAIN_FIT = 0.99  # train accuracy at which the training table counts as fitted
GENERALISED_TEST_ACC = 0.95  # test accuracy that counts as generalised
NEAR_CHANCE = 0.1  # test accuracy within this share of the way from chance (1/M) to 1
RISING = 0.02  # lift gained over the trend window that counts as "rising"


def lift(test_acc: float, order: int) -> float:
    """(test − 1/M)/(1 − 1/M): 0 at chance, 1 at perfect test accuracy."""
    chance = 1.0 / max(order, 2)
    return (test_acc - chance) / (1.0 - chance)


def final_outcome(train_acc: float, test_acc: float, order: int,
                  test_before: float | None = None, features_forming: bool = False) -> str:
    """The outcome from final metrics: generalised, memorised, still learning or not yet fitted.

    Memorised needs test accuracy near chance (lift < NEAR_CHANCE), not rising since
    ``test_before`` (one trend window earlier, when known) and no features forming.
    """
    if not (math.isfinite(train_acc) and math.isfinite(test_acc)):
        return DIVERGED
    if test_acc >= GENERALISED_TEST_ACC:
        return GENERALISED
    if train_acc < TRAIN_FIT:
        return NOT_FITTED
    rising = test_before is not None and lift(test_acc, order) - lift(test_before, order) >= RISING
    if lift(test_acc, order) < NEAR_CHANCE and not rising and not features_forming:
        return MEMORISED
    return STILL_LEARNING


# -- stages of the Li2 theory (li2-theory §3); generalised / memorised close the timeline ----
STAGES: dict[str, dict[str, str]] = {
    "lazy": {
        "label": "Stage I · lazy learning", "short": "lazy", "colour": "#56B4E9",
        "says": "The hidden weights W barely move while the top layer V fits the random "
                "features: train accuracy climbs, test accuracy stays at chance. Meanwhile the "
                "gradient reaching the hidden layer, G_F, starts to carry the labels, as long as "
                "something keeps it from fading (weight decay η > 0, or Adam on a narrow net)."},
    "independent": {
        "label": "Stage II · independent feature learning", "short": "independent",
        "colour": "#E69F00",
        "says": "Each hidden node climbs its own energy ℰ(w) = ½‖Ỹᵀσ(Xw)‖², on its own. Its "
                "local maxima are single irreducible representations (one frequency for Z_M), "
                "so spectrum rows concentrate on one component each."},
    "interactive": {
        "label": "Stage III · interactive feature learning", "short": "interactive",
        "colour": "#CC79A7",
        "says": "Nodes now feel each other: similar nodes repel and diversify, and G_F shifts "
                "to the components nobody covers yet. Coverage fills up and test accuracy "
                "rises."},
    GENERALISED: {"label": "Generalised", "short": "generalised",
                  "colour": OUTCOMES[GENERALISED]["colour"],
                  "says": OUTCOMES[GENERALISED]["says"]},
    MEMORISED: {"label": "Memorised", "short": "memorised",
                "colour": OUTCOMES[MEMORISED]["colour"],
                "says": OUTCOMES[MEMORISED]["says"] + " Nodes that focus on single (h₁, h₂) "
                "pairs (too little data) or a G_F that faded (no weight decay) are the usual "
                "reasons; a later Stage II can still overturn it."},
}

INTERACTIVE_NOT_CLAIMED = (
    "Stage III is not claimed for this group: with only {components} components, the coverage "
    "that marks it is no more than Stage II already needs, so the instruments cannot tell the "
    "two stages apart.")

# -- the theory card's verdicts ------------------------------------------------------------
GENERALISE, MEMORISE, UNCERTAIN = "generalise", "memorise", "uncertain"
VERDICTS: dict[str, dict] = {
    GENERALISE: {"label": "generalise", "expects": GENERALISED,
                 "says": "The theory expects features that generalise."},
    MEMORISE: {"label": "memorise", "expects": MEMORISED,
               "says": "The theory expects memorisation without the group's features."},
    UNCERTAIN: {"label": "uncertain", "expects": None,
                "says": "The theory does not commit for this setup; the reasons say why."},
}

# how a verdict compares with a run's outcome: key → sentence
AGREEMENT: dict[str, str] = {
    "came_true": "the prediction came true",
    "failed": "the prediction failed",
    "undecided": "the run has no final outcome yet, so the prediction is neither confirmed nor "
                 "refuted",
    "not_committed": "the theory made no firm prediction here",
}


def agreement(verdict: str | None, outcome: str | None) -> str:
    """came_true only when the outcome is the one the verdict expects (AGREEMENT keys)."""
    expects = VERDICTS.get(verdict or "", {}).get("expects")
    if expects is None:
        return "not_committed"
    if outcome not in (GENERALISED, MEMORISED):
        return "undecided"
    return "came_true" if outcome == expects else "failed"


# -- the stage detector's indicators in a student's words (stage card; li2core.stage_words) ---
# name (a key of a StageChange's evidence.indicators, or a metrics column) → label, symbol as a
# hint, one line of help
INDICATORS: dict[str, dict[str, str]] = {
    name: {"label": label, "symbol": symbol, "help": help_}
    for name, (label, symbol, help_) in {
        "train_acc": ("training accuracy", "acc_train",
                      "share of the training pairs the network answers right"),
        "test_acc": ("test accuracy", "acc_test",
                     "share of the unseen pairs answered right: chance is 1/M"),
        "test_lift": ("test accuracy above chance", "lift",
                      "(acc_test − 1/M)/(1 − 1/M): 0 at chance, 1 when every unseen pair is right"),
        "test_lift_gain": ("lift gained lately", "Δlift (window)",
                           "how much the lift rose over the last window of steps"),
        "conc_mean": ("how focused the nodes are", "conc",
                      "mean focus of a node on its strongest component, normalised for the "
                      "component sizes: 0 = random, 1 = one component"),
        "conc_init": ("focus at the start", "conc₀", "the same at the first row, from random W"),
        "conc_rise": ("focus gained", "Δconc",
                      "how far the focus has moved from its start towards 1"),
        "coverage": ("components covered", "#covered",
                     "components that at least one locked node has learned"),
        "gf_align": ("gradient carries the labels", "cos(G_F, ỸỸᵀF̃)",
                     "alignment of the back-propagated gradient with the label structure"),
        "components": ("components of the group", "C",
                       "irreducible pieces the features can be"),
        "t_fit": ("step the training set was fitted", "t_fit",
                  "first step with training accuracy at the fit threshold"),
        "gf_peak_step": ("step of the strongest gradient", "argmax ‖G_F‖",
                         "where the back-propagated gradient peaked"),
        "rise_last_window": ("focus gained lately", "Δconc (window)",
                             "focus gained over the last window of steps"),
        "memorising_share": ("share of memorising nodes", "mem / active",
                             "nodes focused on single training pairs, over active nodes"),
        "window": ("window", "steps", "steps over which a trend or a stall is judged"),
    }.items()
}


GF_SCALE = (
    "‖G_F‖ here is the gradient of the code's loss (mean over the n training rows, no ½), so it "
    "is 2/n times the paper's G_F = P⊥(Y − FV)Vᵀ for J = ½‖·‖²: multiply by n/2 = {factor} "
    "for the paper's scale.")


# -- deeper networks (issue 15; li2-theory §6): the theory card's note for depth ≥ 2 ---------
# (added by the frontend helper; rendered by frontend/static/js/panels/theory.js)
DEPTH_NOTE: dict[str, object] = {
    "title": "A deeper network: {depth} hidden layers",
    "covers": [
        "The top layer V still fits the random top features first (Stage I), and with weight "
        "decay the gradient that reaches every hidden layer carries the labels.",
        "The bottom layer sees both the clean input and a label-carrying gradient, so it learns "
        "features first; each layer above starts once its input (the layer below) has become "
        "meaningful.",
        "The bottom layer still shows the group's Fourier/irrep features, though distorted "
        "compared with a single hidden layer.",
        "Zero-initialising the top layer (top init scale 0) speeds multi-layer runs up, by up "
        "to ~10× in the paper's MSE runs; with Adam here the deep presets measured only ~1.2× "
        "(test accuracy 0.99 at step ~349 vs ~415, 5 seeds).",
    ],
    "open": "Open in the paper: Stage III across layers (how nodes of different layers interact "
            "and diversify). The layers strip shows what happens in this run, without a theory "
            "for it; the verdict above is the single-hidden-layer one.",
}


# -- the order in which the layers of a deeper network began a stage (li2core.layer_stages) ---
BOTTOM_UP, TOGETHER, PARTLY_BOTTOM_UP, NOT_BOTTOM_UP = (
    "bottom_up", "together", "partly_bottom_up", "not_bottom_up")
LAYER_ORDERS: dict[str, dict[str, str]] = {
    BOTTOM_UP: {"label": "bottom-up",
                "says": "Each layer reached the stage after the layer below it, as the theory "
                        "expects (li2-theory §6): bottom-up feature learning."},
    TOGETHER: {"label": "together",
               "says": "The layers reached the stage within a few steps of each other: no "
                       "order can be told at this resolution."},
    PARTLY_BOTTOM_UP: {"label": "partly bottom-up",
                       "says": "No layer reached the stage before the layer below it, but some "
                               "adjacent layers reached it within a few steps of each other."},
    NOT_BOTTOM_UP: {"label": "not bottom-up",
                    "says": "A layer reached the stage before the layer below it, or a higher "
                            "layer reached it while a lower one has not."},
}


def as_dict() -> dict:
    """Everything above as JSON for the frontend."""
    return {"outcomes": OUTCOMES, "stages": STAGES, "verdicts": VERDICTS,
            "agreement": AGREEMENT, "interactive_not_claimed": INTERACTIVE_NOT_CLAIMED,
            "gf_scale": GF_SCALE, "indicators": INDICATORS, "depth_note": DEPTH_NOTE,
            "layer_orders": LAYER_ORDERS,
            "rule": {"train_fit": TRAIN_FIT, "generalised_test_acc": GENERALISED_TEST_ACC,
                     "near_chance": NEAR_CHANCE, "rising": RISING}}
