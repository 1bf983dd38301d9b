"""Per-node energy ℰ(w) = ½‖Ỹᵀσ(Xw)‖² at ‖w‖ = 1 (li2-theory §3, Stage II), on the training rows
and on the full table, to tell generalising nodes from memorising ones.

A node that learned one irrep has full-table energy ≈ ℰ* (theory.energy_star); on a uniform
subsample of n of the M² rows each class sum shrinks by n/M², so its train energy is
≈ (n/M²)²·ℰ*. Both are reported divided by those references: ≈ 1 for a learned feature. A
memorising node (li2-theory §3, below p_crit) fits a few training pairs: its train energy is
high while its full-table energy stays low.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import kernels
from .hidden import HiddenBlocks, column_norms

# memorising: train/full energy ≥ 3 × a random node's ratio, and train energy ≥ 3 × a random
# node's (calibrated: docs/stages.md; generalising runs flag ≤ 1% of nodes, runs at 0.3·p_crit
# flag most of them)
MEMORISING_FACTOR = 3.0


@dataclass(frozen=True)
class RandomBaseline:
    """Median normalised train energy of random unit nodes and median train/full ratio."""

    train: float
    ratio: float


def node_energy(hb: HiddenBlocks, w: torch.Tensor, label: torch.Tensor, activation: str,
                ) -> torch.Tensor:
    """ℰ(ŵ_j) for every node, ŵ_j = w_j/‖w_j‖, on the rows of ``hb`` with labels ``label``: (K,).

    Ỹᵀσ(Xŵ) = Yᵀσ − ȳ·𝟙ᵀσ (ȳ the class frequencies), a per-class sum: O(nK).
    """
    m = w.shape[0] // 2
    wn = w / column_norms(w).clamp_min(1e-30)
    freq = torch.bincount(label, minlength=m).to(w.dtype) / hb.n
    if kernels.instruments_usable(w) and activation in kernels.CODES:
        # one pass over the rows per block of nodes (fig3's 7057 rows: 16.7 → 2.4 ms)
        sums = kernels.class_sums(wn, hb.a, hb.b_shift, label, m, activation)
        sums -= freq[:, None] * sums.sum(dim=0, keepdim=True)
        return 0.5 * sums.square().sum(dim=0)
    out = torch.empty(w.shape[1], dtype=w.dtype, device=w.device)
    for sl, _, f in hb.blocks(wn, activation):
        sums = torch.zeros(m, f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, label, f)
        sums -= freq[:, None] * f.sum(dim=0, keepdim=True)
        out[sl] = 0.5 * sums.square().sum(dim=0)
    return out


def random_baseline(train: HiddenBlocks, table: HiddenBlocks, y_train: torch.Tensor,
                    y_table: torch.Tensor, activation: str, ref_train: float, ref_full: float,
                    seed: int, nodes: int = 256) -> RandomBaseline:
    """Energies of random unit nodes (the model's init distribution) on these rows.

    A subsample gives every node a noise floor: for σ = x², ≈ n/M² of train energy against
    (n/M²)²·ℰ* for a learned feature, so at small p random nodes alone have train/full ≈ M²/n.
    """
    m = train.m
    gen = torch.Generator().manual_seed(seed)
    w = (torch.rand(2 * m, nodes, generator=gen, dtype=torch.float64) * 2 - 1).to(
        dtype=torch.float32, device=y_train.device)
    e_tr = node_energy(train, w, y_train, activation) / ref_train
    e_full = node_energy(table, w, y_table, activation) / ref_full
    return RandomBaseline(float(e_tr.median()), float((e_tr / e_full.clamp_min(1e-30)).median()))


def memorising(e_train: torch.Tensor, e_full: torch.Tensor, active: torch.Tensor,
               baseline: RandomBaseline) -> torch.Tensor:
    """Active nodes fitted to training pairs rather than to the group: train energy and the
    train/full ratio both ≥ MEMORISING_FACTOR × a random node's (a feature has ratio ≈ 1)."""
    f = MEMORISING_FACTOR
    return (active & (e_train >= f * baseline.ratio * e_full)
            & (e_train >= f * baseline.train))
