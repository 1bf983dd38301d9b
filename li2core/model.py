"""The 2-layer network Ŷ = σ(XW)V of li2-theory §2, with X one-hot so XW is a gather, and its
deeper form (§6): x₁ = σ(XW), x_l = σ(x_{l−1} + x_{l−1} W_l) for l = 2..L, Ŷ = x_L V.

W is (2M, K): rows 0..M-1 are u (operand a), rows M..2M-1 are v (operand b); column j is
hidden node j. W_l is (K, K), V is (K, M). No biases, no normalisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "square": torch.square,  # one fused op and a cheaper backward than x * x
    "relu": torch.relu,
    "silu": F.silu,
    "relu_square": lambda x: torch.relu(x).square(),
}


def init_weights(m: int, k: int, top_init_scale: float, generator: torch.Generator,
                 dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's default Linear init U(±1/√fan_in); V(0) scaled by ``top_init_scale``."""
    bw, bv = 1.0 / math.sqrt(2 * m), 1.0 / math.sqrt(k)
    w = (torch.rand(2 * m, k, generator=generator, dtype=dtype) * 2 - 1) * bw
    v = (torch.rand(k, m, generator=generator, dtype=dtype) * 2 - 1) * bv * top_init_scale
    return w, v


def init_layers(k: int, depth: int, generator: torch.Generator,
                dtype=torch.float32) -> list[torch.Tensor]:
    """W_2..W_L (K×K), U(±1/√K); drawn after W and V so depth leaves W(0), V(0) unchanged."""
    bound = 1.0 / math.sqrt(k)
    return [(torch.rand(k, k, generator=generator, dtype=dtype) * 2 - 1) * bound
            for _ in range(depth - 1)]


def layer_outputs(w, layers, a, b, activation: str, track: bool = False) -> list[torch.Tensor]:
    """[x₁, …, x_L], each (n, K): the first layer, then x ← σ(x + x W_l) (the author's
    residual form) for every added layer. ``track``: x₁ becomes a leaf that needs grad, so the
    instruments can ask autograd for ∂J/∂x_l of every layer."""
    sigma = ACTIVATIONS[activation]
    x = features(w, a, b, activation)
    xs = [x.detach().requires_grad_(True) if track else x]
    for wl in layers:
        xs.append(sigma(torch.addmm(xs[-1], xs[-1], wl)))
    return xs


def hidden_preact(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """XW for one-hot X = [e_a; e_b]: a row gather, never a dense 2M-wide matmul."""
    m = w.shape[0] // 2
    return w[a] + w[m + b]


def features(w, a, b, activation: str) -> torch.Tensor:
    """F = σ(XW), (n, K)."""
    return ACTIVATIONS[activation](hidden_preact(w, a, b))


def mse_target(label: torch.Tensor, m: int, dtype=torch.float32) -> torch.Tensor:
    """e_y − 1/M: the class-centred one-hot target of the ``mse`` loss."""
    return F.one_hot(label, m).to(dtype) - 1.0 / m


def loss_fn(out: torch.Tensor, label: torch.Tensor, loss: str,
            target: torch.Tensor | None = None) -> torch.Tensor:
    """``mse`` (the author's code): centre each output row over classes and compare it with
    e_y − 1/M, summed over classes and averaged over samples (no ½). ``cross_entropy``: mean.
    ``target`` may pass a precomputed mse_target to keep it out of the hot loop."""
    if loss == "cross_entropy":
        return F.cross_entropy(out, label)
    if target is None:
        target = mse_target(label, out.shape[1], out.dtype)
    centred = out - out.mean(dim=1, keepdim=True)
    return (centred - target).square().sum(dim=1).mean()


def ridge_top_layer(f: torch.Tensor, label: torch.Tensor, m: int, reg: float) -> torch.Tensor:
    """V* = (FᵀF + reg·I)⁻¹ Fᵀ(Y − 1/M): the top layer already converged on current features."""
    target = mse_target(label, m, f.dtype)
    gram = f.T @ f
    gram.diagonal().add_(reg)
    return torch.linalg.solve(gram, f.T @ target)
