"""Instruments of the hidden layers above the first in a deeper network (li2-theory §6).

A node j of layer l ≥ 2 has no weights indexed by the group, so its spectrum is that of its
response x_l[(a, b), j] over all M² input pairs: for each b the function a ↦ x_l[(a, b), j] is
split on the isotypic components (li2core.irreps) and the powers summed over b, and likewise for
b ↦ x_l[(a, b), j]; the two sides then play the roles of u_j and v_j of the first layer.
G_F of layer l is −∂J/∂x_l on the training rows, compared with ỸỸᵀx̃_l like layer 1's.
Names: layer 1 keeps its own, layer l ≥ 2 adds ``@l`` (docs/contracts.md).
"""

from __future__ import annotations

import torch

from ..irreps import Components, pair_component_power
from ..model import layer_outputs, loss_fn
from .gradient import cosine, label_signal
from .spectra import NodeSpectra, coverage_stats, summarise_spectra

# arrays each layer l ≥ 2 adds to a snapshot (besides its weights W<l>), and scalars
LAYER_ARRAYS = ("spec", "concentration", "dominant", "active", "locked", "gf_spectrum")
LAYER_SCALARS = ("conc_mean", "coverage", "agree_frac", "active_nodes", "gf_norm", "gf_align")


def at_layer(name: str, layer: int) -> str:
    """The instrument's name for ``layer``: unchanged for layer 1, ``name@l`` above it."""
    return name if layer == 1 else f"{name}@{layer}"


def layer_array_shapes(k: int, c: int, depth: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays the layers 2..depth add to a snapshot."""
    out: dict[str, tuple[int, ...]] = {}
    for layer in range(2, depth + 1):
        out[f"W{layer}"] = (k, k)
        for name in LAYER_ARRAYS:
            out[at_layer(name, layer)] = {"spec": (k, c), "gf_spectrum": (c,)}.get(name, (k,))
    return out


def response_spectra(comps: Components, x: torch.Tensor) -> NodeSpectra:
    """Per-node spectra of a layer's response x (M², K) over the table in row order a·M + b."""
    m, k = comps.order, x.shape[1]
    s_a, s_b = pair_component_power(comps, x.reshape(m, m, k))  # rows a·M + b: [a, b, node]
    norms = (x - x.mean(dim=0, keepdim=True)).square().sum(dim=0).sqrt()
    return summarise_spectra(comps, s_a, s_b, norms)


def layer_scalars(comps: Components, xs_table: list[torch.Tensor]) -> dict[str, float]:
    """conc_mean@l, coverage@l, agree_frac@l, active_nodes@l for l = 2..L."""
    out = {}
    for layer, x in enumerate(xs_table[1:], 2):
        out.update({at_layer(k, layer): v
                    for k, v in coverage_stats(response_spectra(comps, x)).items()})
    return out


def layer_arrays(comps: Components, xs_table: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """spec@l (node × component power, normalised per node) and the per-node flags."""
    out = {}
    for layer, x in enumerate(xs_table[1:], 2):
        ns = response_spectra(comps, x)
        both = ns.spec_u + ns.spec_v
        tot = both.sum(dim=1, keepdim=True)
        parts = {"spec": torch.where(tot > 0, both / tot.clamp_min(1e-30), both),
                 "concentration": ns.concentration, "dominant": ns.dominant,
                 "active": ns.active, "locked": ns.locked}
        out.update({at_layer(k, layer): v for k, v in parts.items()})
    return out


def layer_gradients(w, layers, v, rows: tuple, activation: str, loss: str, m: int,
                    target: torch.Tensor | None = None) -> dict[str, float]:
    """gf_norm and gf_align of every layer (``@l`` above the first): ‖−∂J/∂x_l‖ and
    cos(−∂J/∂x_l, ỸỸᵀx̃_l) on the training rows ``rows`` = (a, b, label)."""
    return gradient_scalars(layer_parts(w, layers, v, rows, activation, loss, target), rows[2],
                            m)


def gradient_scalars(parts: list[tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor, m: int,
                     ) -> dict[str, float]:
    """gf_norm@l and gf_align@l from each layer's (x_l, ∂J/∂x_l) on the training rows."""
    xs, grads = [x for x, _ in parts], [g for _, g in parts]
    out = {}
    with torch.no_grad():
        for layer, (x, g) in enumerate(zip(xs, grads, strict=True), 1):
            out[at_layer("gf_norm", layer)] = float(torch.linalg.vector_norm(g))
            out[at_layer("gf_align", layer)] = cosine(-g, label_signal(x.detach(), y, m))
    return out


def first_layer_grad(w, layers, v, rows: tuple, activation: str, loss: str,
                     target: torch.Tensor | None = None) -> torch.Tensor:
    """∂J/∂W (2M, K) of the deeper network, for a snapshot the step left without one."""
    a, b, y = rows
    with torch.enable_grad():
        wl = w.detach().requires_grad_(True)
        out = layer_outputs(wl, layers, a, b, activation)[-1] @ v
        (g,) = torch.autograd.grad(loss_fn(out, y, loss, target), [wl])
    return g


def gradient_spectra(comps: Components, parts: list[tuple[torch.Tensor, torch.Tensor]],
                     a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """gf_spectrum@l (C,): what G_F asks of layer l ≥ 2. −∂J/∂x_l on the training rows, as a
    function of the pair (zero on the test rows, as ∂J/∂W sums over training rows only), split
    like the responses (pair_component_power), summed over nodes, normalised to sum 1."""
    m = comps.order
    out = {}
    for layer, (_, g) in enumerate(parts[1:], 2):
        full = torch.zeros(m * m, g.shape[1], dtype=g.dtype, device=g.device)
        full[a * m + b] = -g
        s_a, s_b = pair_component_power(comps, full.reshape(m, m, -1))
        power = (s_a + s_b).sum(dim=0)
        tot = float(power.sum())
        out[at_layer("gf_spectrum", layer)] = power / tot if tot > 0 else power
    return out


def layer_parts(w, layers, v, rows: tuple, activation: str, loss: str,
                target: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(x_l, ∂J/∂x_l)] on the training rows ``rows`` = (a, b, label), by autograd."""
    a, b, y = rows
    with torch.enable_grad():
        xs = layer_outputs(w, layers, a, b, activation, track=True)
        grads = torch.autograd.grad(loss_fn(xs[-1] @ v, y, loss, target), xs)
    return [(x.detach(), g) for x, g in zip(xs, grads, strict=True)]
