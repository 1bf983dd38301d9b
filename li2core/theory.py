"""Predictions of the Li₂ theory for a group and a config (li2-theory §3).

The energy ℰ and its ascent live in li2core.energy and are re-exported here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .energy import (  # noqa: F401  (re-exported API)
    Rows,
    ascend,
    component_energy_star,
    energy,
    energy_grad,
    energy_star,
)
from .groups import Group
from .irreps import component_power, isotypic_components
from .vocabulary import GENERALISE, MEMORISE, UNCERTAIN

P_CRIT_CONSTANT = 2.7482  # the author's fit of p_crit = c·ln M / M over abelian groups
BORDERLINE = 1.25  # p within [p_crit, 1.25·p_crit): both kinds of maxima coexist (§3)
LAZY_RATIO = 4.0  # K ≥ 4·n random features fit the training set without moving W
SIM_STEPS, SIM_LR = 200, 0.1


def p_crit(group: Group) -> float:
    """p_crit ≈ 2.7482·ln M / M, scaled by max d_k / 2 for non-abelian groups."""
    m = group.order
    base = P_CRIT_CONSTANT * math.log(m) / m
    if group.is_abelian:
        return min(base, 1.0)
    from .irreps import max_irrep_dim

    return min(base * max_irrep_dim(group) / 2, 1.0)


def min_width(group: Group) -> int:
    """Hidden nodes needed to represent every component: 2M − 2 for abelian groups (li2-theory §3).

    Non-abelian groups: an estimate, not a theorem. The abelian count is 2 nodes per real
    dimension of each component (4 per frequency pair). A d-dim irrep asks for ρ(ab) = ρ(a)ρ(b),
    the d×d matrix-multiplication bilinear map, whose naive rank is d³ for d² outputs, so we
    scale the per-dimension count by d: Σ_c 2·size_c·d_c (= 2M − 2 when every d_c = 1).
    """
    if group.is_abelian:
        return 2 * group.order - 2
    comps = isotypic_components(group)
    return int(sum(2 * s * d for s, d in zip(comps.sizes, comps.dims, strict=True)))


def predict_verdict(config) -> dict:
    """What the theory expects of a RunConfig: "generalise", "memorise" or "uncertain".

    ``reasons[0]`` is the one that decided the verdict (``decided_by`` names it); the rest add
    context. The theory hedges where it does: near p_crit, for wd = 0 with an adaptive optimizer
    on a narrow net (measured: such nets can learn features, docs/stages.md), in the kernel
    regime, and outside its assumptions (ReLU, cross-entropy).
    """
    group = config.build_group()
    m = group.order
    pc, width, mw = p_crit(group), config.hidden, min_width(group)
    p = config.train_fraction
    n = round(p * m * m)
    decided: list[tuple[str, str, str]] = []  # (verdict, rule name, reason), strongest first
    notes: list[str] = []
    trained = config.top_layer == "trained"
    if p < pc / BORDERLINE:
        decided.append((MEMORISE, "below_p_crit", f"p = {p:.3g} is well below p_crit = "
                        f"{pc:.3g}: the energy's maxima on the training rows become memorising "
                        "ones (a node focuses on single pairs)."))
    if config.weight_decay == 0 and trained:
        fade = ("weight_decay = 0: once the top layer fits the random features, the "
                "backpropagated gradient G_F decays to zero, so the theory expects no features "
                "(memorisation only).")
        if config.optimizer == "sgd":
            decided.append((MEMORISE, "no_weight_decay", fade))
        elif width >= n:
            decided.append((MEMORISE, "no_weight_decay", fade + f" hidden = {width} ≥ the {n} "
                            "training rows: a wide net fits them with random features (measured "
                            "at Fig. 3 width: test accuracy stays at chance)."))
        else:
            decided.append((UNCERTAIN, "no_weight_decay_narrow", fade + f" But hidden = {width} "
                            f"< the {n} training rows and {config.optimizer} rescales each "
                            "coordinate, which keeps a fading G_F effective: narrow networks "
                            "have been measured to learn features without weight decay. Width "
                            "and learning rate decide."))
    elif config.weight_decay == 0:
        notes.append("weight_decay = 0, but the closed-form (ridge) top layer keeps its own "
                     "regulariser, so a label-carrying G_F persists; ‖W‖ is not held fixed.")
    if pc / BORDERLINE <= p < pc:
        decided.append((UNCERTAIN, "near_p_crit", f"p = {p:.3g} is just below p_crit = "
                        f"{pc:.3g}: generalising and memorising maxima coexist and p_crit "
                        "itself is a fit; the learning rate decides (a large one favours "
                        "memorising)."))
    elif pc <= p < pc * BORDERLINE:
        notes.append(f"p = {p:.3g} is just above p_crit = {pc:.3g}: generalising and "
                     "memorising maxima coexist; a large learning rate favours memorising.")
    elif p >= pc:
        notes.append(f"p = {p:.3g} ≥ p_crit = {pc:.3g}: the single-component maxima of the "
                     "energy survive subsampling, so the learned features generalise.")
    if width >= LAZY_RATIO * n:
        decided.append((UNCERTAIN, "kernel_regime", f"hidden = {width} is ≥ {LAZY_RATIO:g}× the "
                        f"{n} training rows: random features already fit the data and G_F "
                        "shrinks like 1/K (kernel regime), so W may barely move within the "
                        "run's steps."))
    elif width >= n:
        notes.append(f"hidden = {width} ≥ the {n} training rows: close to the kernel regime, "
                     "feature learning may be slow.")
    if width < mw:
        notes.append(f"hidden = {width} < min_width = {mw}: there may be too few nodes to "
                     "cover every component, so test accuracy may stay partial.")
    outside = {
        "relu": "ReLU has no quadratic term (the theorems assume σ = ax + bx², b > 0), so the "
                "theory does not cover it.",
    }
    approx = {
        "silu": "SiLU ≈ x/2 + x²/4 near 0: a quadratic term b = 1/4 > 0, so the theory applies "
                "approximately while weights are small.",
        "relu_square": "ReLU² = (x² + x|x|)/2 keeps a quadratic term; the theory applies "
                       "approximately.",
    }
    if config.activation in outside:
        decided.append((UNCERTAIN, "outside_theory", outside[config.activation]))
    if config.loss == "cross_entropy":
        decided.append((UNCERTAIN, "outside_theory", "The theory is derived for the squared "
                        "loss; cross-entropy is outside it."))
    if config.activation in approx:
        notes.append(approx[config.activation])
    notes.extend(optimizer_notes(config))
    # a firm memorise (too little data, or a wide net without decay) outranks a hedge; any
    # other hedge outranks generalise
    firm = [d for d in decided if d[0] == MEMORISE]
    hedged = [d for d in decided if d[0] == UNCERTAIN]
    chosen = firm[0] if firm else hedged[0] if hedged else None
    if chosen is None:
        verdict, rule = GENERALISE, "default"
        reasons = notes
    else:
        verdict, rule = chosen[0], chosen[1]
        reasons = [chosen[2], *(d[2] for d in decided if d is not chosen), *notes]
    return {"verdict": verdict, "decided_by": rule, "reasons": reasons, "p": p, "p_crit": pc,
            "width": width, "min_width": mw, "n_train": n}


# What li2 sweep --preset optimizers measured (docs/optimizers.md; Z23, p = 0.5, 8 seeds, each
# optimizer at its tuned lr). Kept with the numbers so the card says what was seen, not hoped.
MUON_NOTE = (
    "Muon: the theory says its orthogonalised update damps the parts of a node's gradient that "
    "duplicate components other nodes already hold, so nodes spread out and coverage gets "
    "cheaper at small K. Measured here (Z23, 8 seeds, tuned lr; docs/optimizers.md): at K = 48 "
    "Muon ends with fewer nodes per component than Adam (3.8 vs 4.2) but at K = 128 with more "
    "(6.3 vs 4.3); below the minimal width it covers no more components (e.g. 10.6 of 11 at "
    "K = 24 for both); and it reaches test accuracy 0.99 later (step ≈ 260 vs ≈ 120 at K = 48). "
    "The paper's speed-up did not appear at this size."
)


def optimizer_notes(config) -> list[str]:
    """The measured optimizer note for the theory card (empty unless the run uses Muon)."""
    return [MUON_NOTE] if config.optimizer == "muon" else []


def simulate_independent(config, steps: int = SIM_STEPS, lr: float = SIM_LR) -> dict:
    """Stage II prediction: each node of the run's own W(0) ascends ℰ on the training rows alone.

    Projected ascent on ‖w_j‖ = 1 (li2core.energy.ascend; ``lr`` = largest angular step).
    Returns float32/int arrays: "W" (2M, K) final unit directions, "spec_u", "spec_v",
    "spectrum" = spec_u + spec_v (K, C), "concentration" (K,), "dominant" (K,),
    "energy_train" (K,), "energy_full" (K,) of those directions on all M² rows (high train with
    low full energy = a memorising node), plus "labels" (C component names).
    """
    from .data import make_dataset
    from .instruments.spectra import normalised_concentration
    from .model import init_weights

    group = config.build_group()
    m, k = group.order, config.hidden
    data = make_dataset(group, config.train_fraction, config.seed)
    gen = torch.Generator().manual_seed(config.seed)  # as train.py: same W(0)
    w0, _ = init_weights(m, k, config.top_init_scale, gen)
    rows = Rows(group, data.train_idx)
    w, e = ascend(w0.double(), rows, config.activation, steps, lr)
    comps = isotypic_components(group)
    wn = w.numpy()
    spec_u, spec_v = component_power(comps, wn[:m]), component_power(comps, wn[m:])
    spec = spec_u + spec_v
    return {
        "W": wn.astype(np.float32),
        "spec_u": spec_u.astype(np.float32),
        "spec_v": spec_v.astype(np.float32),
        "spectrum": spec.astype(np.float32),
        "concentration": normalised_concentration(comps, spec).astype(np.float32),
        "dominant": spec.argmax(axis=1).astype(np.int64),
        "energy_train": e.numpy().astype(np.float32),
        "energy_full": Rows(group).energy_grad(w, config.activation, grad=False)[0]
        .numpy().astype(np.float32),
        "labels": list(comps.labels),
    }
