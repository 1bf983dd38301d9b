"""The gradient that reaches the hidden layer, G_F = −∂J/∂F, and what it asks for (li2-theory §3-4).

For the code's ``mse`` loss J = (1/n)·Σ_i ‖P_M ŷ_i − (e_{y_i} − 𝟙/M)‖² (P_M centres over classes):
    G_F = (2/n)·(T − F V P_M)·Vᵀ,  T = Y − 𝟙𝟙ᵀ/M.
For ``cross_entropy`` J = −(1/n)·Σ_i log softmax(ŷ_i)[y_i]:
    G_F = (1/n)·(Y − softmax(F V))·Vᵀ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .hidden import HiddenBlocks, column_norms


def output_residual(out: torch.Tensor, label: torch.Tensor, loss: str) -> torch.Tensor:
    """R = −∂J/∂Ŷ (n, M) at the outputs Ŷ = F V, so that G_F = R Vᵀ."""
    n, m = out.shape
    rows = torch.arange(n, device=out.device)
    if loss == "cross_entropy":
        resid = -torch.softmax(out, dim=1)
        resid[rows, label] += 1.0
        return resid / n
    # T − F V P_M: its rows sum to zero, so the P_M of the chain rule changes nothing
    resid = out.mean(dim=1, keepdim=True) - out
    resid[rows, label] += 1.0
    resid -= 1.0 / m
    return resid * (2.0 / n)


def hidden_gradient(f: torch.Tensor, v: torch.Tensor, label: torch.Tensor, loss: str,
                    ) -> torch.Tensor:
    """G_F = −∂J/∂F (n, K) for the run's loss, in closed form (no autograd)."""
    return output_residual(f @ v, label, loss) @ v.T


@dataclass
class ForwardSums:
    """One blocked pass over the training rows: Ŷ = F V, class sums YᵀF and column sums 𝟙ᵀF."""

    out: torch.Tensor  # (n, M)
    class_sums: torch.Tensor  # (M, K)
    col_sums: torch.Tensor  # (K,)


def forward_sums(hb: HiddenBlocks, w: torch.Tensor, v: torch.Tensor, label: torch.Tensor,
                 activation: str) -> ForwardSums:
    m, k = v.shape[1], w.shape[1]
    out = torch.zeros(hb.n, m, dtype=w.dtype, device=w.device)
    cs = torch.zeros(m, k, dtype=w.dtype, device=w.device)
    col = torch.empty(k, dtype=w.dtype, device=w.device)
    for sl, _, f in hb.blocks(w, activation):
        out.addmm_(f, v[sl])
        cs[:, sl] = torch.zeros(m, f.shape[1], dtype=f.dtype, device=f.device).index_add_(
            0, label, f)
        col[sl] = f.sum(dim=0)
    return ForwardSums(out, cs, col)


def gradient_stats(fs: ForwardSums, v: torch.Tensor, label: torch.Tensor, loss: str,
                   ) -> tuple[float, float]:
    """(‖G_F‖, cos(G_F, ỸỸᵀF̃)) without forming either n×K matrix.

    With G_F = R Vᵀ and S = Ỹ C, C = ỸᵀF̃ = YᵀF̃ (M×K):  ‖G_F‖² = ⟨RᵀR, VᵀV⟩,
    ⟨G_F, S⟩ = ⟨Vᵀ, (RᵀỸ) C⟩,  ‖S‖² = ⟨C, (ỸᵀỸ) C⟩ — all M×M or M×K products.
    """
    n, m = fs.out.shape
    r = output_residual(fs.out, label, loss)
    counts = torch.bincount(label, minlength=m).to(r.dtype)
    freq = counts / n
    c = fs.class_sums - counts[:, None] * (fs.col_sums / n)[None, :]  # class sums of F̃
    ry = torch.zeros(m, m, dtype=r.dtype, device=r.device)  # (RᵀY)ᵀ: row = class
    ry.index_add_(0, label, r)
    rty = ry.T - r.sum(dim=0)[:, None] * freq[None, :]  # RᵀỸ
    yty = torch.diag(counts) - n * freq[:, None] * freq[None, :]  # ỸᵀỸ
    g2 = float(((r.T @ r) * (v.T @ v)).sum())
    gs = float((v.T * (rty @ c)).sum())
    s2 = float((c * (yty @ c)).sum())
    norm = max(g2, 0.0) ** 0.5
    den = norm * max(s2, 0.0) ** 0.5
    return norm, gs / den if den > 0 else 0.0


def label_signal(f: torch.Tensor, label: torch.Tensor, m: int) -> torch.Tensor:
    """ỸỸᵀF̃ (n, K), Ỹ = P⊥Y and F̃ = P⊥F centred over samples: G_F's label-carrying part.

    ỸᵀF̃ = YᵀF̃ (since 𝟙ᵀF̃ = 0) is a per-class sum, so this costs O(nK), not O(n²K).
    """
    ft = f - f.mean(dim=0, keepdim=True)
    class_sums = torch.zeros(m, f.shape[1], dtype=f.dtype, device=f.device)
    class_sums.index_add_(0, label, ft)
    freq = torch.bincount(label, minlength=m).to(f.dtype) / f.shape[0]
    return class_sums[label] - freq @ class_sums


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """cos of the angle between two tensors seen as flat vectors (0 if either is zero)."""
    den = float(x.norm() * y.norm())
    return float((x * y).sum()) / den if den > 0 else 0.0


def activation_derivative(h: torch.Tensor, activation: str) -> torch.Tensor:
    """σ′(h) for the activations of li2core.model."""
    if activation == "square":
        return 2.0 * h
    if activation == "relu":
        return (h > 0).to(h.dtype)
    if activation == "relu_square":
        return 2.0 * torch.relu(h)
    if activation == "silu":
        s = torch.sigmoid(h)
        return s * (1.0 + h * (1.0 - s))
    raise ValueError(f"activation: unknown {activation!r}")


def weight_ascent(hb: HiddenBlocks, w: torch.Tensor, v: torch.Tensor, resid: torch.Tensor,
                  activation: str) -> torch.Tensor:
    """−∂J/∂W = Xᵀ(G_F ⊙ σ′(XW)) (2M, K), G_F = R Vᵀ; Xᵀ is two scatter-adds (X one-hot)."""
    m = w.shape[0] // 2
    out = torch.zeros(2 * m, w.shape[1], dtype=w.dtype, device=w.device)
    for sl, pre, _ in hb.blocks(w, activation, keep_preact=True):
        g = (resid @ v[sl].T).mul_(activation_derivative(pre, activation))
        out[:, sl] = torch.zeros(2 * m, g.shape[1], dtype=g.dtype, device=g.device).index_add_(
            0, hb.a, g).index_add_(0, hb.b_shift, g)
    return out


def tangential(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """g_j − (g_j·ŵ_j)ŵ_j per node: the part of an update that turns w_j rather than rescales it
    (the ascent of li2-theory §3 lives on ‖w‖ = 1)."""
    wn = w / column_norms(w).clamp_min(1e-30)
    return g - (g * wn).sum(dim=0, keepdim=True) * wn


def motion(x: torch.Tensor, prev: torch.Tensor) -> float:
    """1 − cos(x, prev) = ½‖x/‖x‖ − prev/‖prev‖‖², a form that stays ≥ 0 and accurate at the
    1e-7 angles of one small step (1 − ⟨·,·⟩ cancels catastrophically in float32)."""
    nx, npv = float(torch.linalg.vector_norm(x)), float(torch.linalg.vector_norm(prev))
    if nx == 0 or npv == 0:
        return 0.0
    diff = x.mul(1.0 / nx).sub_(prev, alpha=1.0 / npv)
    return 0.5 * float(torch.linalg.vector_norm(diff)) ** 2
