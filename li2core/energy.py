"""The Stage II energy ℰ(w) = ½‖Ỹᵀσ(Xw)‖² of one hidden node (li2-theory §3) and its ascent.

Rows are indices r = a·M + b into the M² table (as in li2core.data); X = [e_a; e_b] so
Xw = u[a] + v[b]; Ỹ = P⊥Y is the one-hot label matrix centred over the chosen rows, hence
Ỹᵀf = Σ_{i: y_i=c} f_i − (n_c/n) Σ_i f_i and ∇ℰ = Xᵀ(σ′(Xw) ⊙ Ỹ Ỹᵀσ(Xw)).
Every function accepts w of shape (2M,) or (2M, K) (columns = nodes, independent).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from .groups import Group
from .irreps import isotypic_components

_CHUNK_ELEMENTS = 2**22  # rows × nodes per pass: bounds memory for K up to 4096 nodes


def _silu_grad(z):
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


# σ and σ′; σ must equal li2core.model.ACTIVATIONS (tested)
SIGMA = {
    "square": (lambda z: z * z, lambda z: 2 * z),
    "relu": (torch.relu, lambda z: (z > 0).to(z.dtype)),
    "silu": (lambda z: z * torch.sigmoid(z), _silu_grad),
    "relu_square": (lambda z: torch.relu(z).square(), lambda z: 2 * torch.relu(z)),
}


class Rows:
    """The (a, b, label) triples of a row subset, on one device, with class frequencies ȳ."""

    def __init__(self, group: Group, rows=None, device="cpu", dtype=torch.float64):
        m = group.order
        idx = (torch.arange(m * m) if rows is None
               else torch.as_tensor(np.asarray(rows.cpu() if hasattr(rows, "cpu") else rows),
                                    dtype=torch.int64))
        if idx.numel() == 0 or idx.min() < 0 or idx.max() >= m * m:
            raise ValueError(f"rows must be non-empty indices into the {m}² table")
        table = torch.as_tensor(np.asarray(group.table, dtype=np.int64))
        self.m = m
        self.a, self.b = (idx // m).to(device), (idx % m).to(device)
        self.y = table[idx // m, idx % m].to(device)
        self.freq = torch.bincount(self.y, minlength=m).to(dtype) / idx.numel()

    def energy_grad(self, w: torch.Tensor, activation: str, grad: bool = True):
        """(ℰ (K,), ∇ℰ (2M, K) or None) for w (2M, K), in chunks of nodes."""
        sigma, dsigma = SIGMA[activation]
        m, n, k = self.m, self.a.numel(), w.shape[1]
        freq = self.freq.to(dtype=w.dtype, device=w.device)
        energies, grads = [], []
        step = max(1, _CHUNK_ELEMENTS // n)
        for lo in range(0, k, step):
            wc = w[:, lo:lo + step]
            z = wc[self.a] + wc[m + self.b]  # (n, k') = Xw
            f = sigma(z)
            r = torch.zeros(m, wc.shape[1], dtype=w.dtype, device=w.device)
            r.index_add_(0, self.y, f)
            r -= freq[:, None] * f.sum(0)  # r = Ỹᵀf
            energies.append(0.5 * (r * r).sum(0))
            if grad:
                h = dsigma(z) * (r[self.y] - freq @ r)  # σ′ ⊙ Ỹr
                gc = torch.zeros_like(wc)
                gc[:m].index_add_(0, self.a, h)
                gc[m:].index_add_(0, self.b, h)
                grads.append(gc)
        return torch.cat(energies), (torch.cat(grads, dim=1) if grad else None)


def _as_batch(w):
    """w → (2M, K) float tensor, plus a function restoring the caller's type and shape."""
    is_np = not isinstance(w, torch.Tensor)
    t = torch.as_tensor(np.asarray(w, dtype=np.float64)) if is_np else w.detach()
    one = t.ndim == 1
    t = t[:, None] if one else t

    def back(x, vector: bool):
        x = x[..., 0] if one and not vector else (x[:, 0] if one else x)
        if is_np:
            return float(x) if x.ndim == 0 else x.numpy()
        return x

    return t, back


def energy(w, group: Group, activation: str = "square", rows=None):
    """ℰ(w) per node: float for w (2M,), (K,) for w (2M, K); numpy in → numpy, torch → torch."""
    t, back = _as_batch(w)
    e, _ = Rows(group, rows, t.device, t.dtype).energy_grad(t, activation, grad=False)
    return back(e, vector=False)


def energy_grad(w, group: Group, activation: str = "square", rows=None):
    """∇ℰ(w), same shape and type as w."""
    t, back = _as_batch(w)
    _, g = Rows(group, rows, t.device, t.dtype).energy_grad(t, activation)
    return back(g, vector=True)


def ascend(w0: torch.Tensor, rows: Rows, activation: str, steps: int, max_step: float,
           project=None, tol: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected gradient ascent of ℰ on ‖w_j‖ = 1, each node independently.

    Step: w ← normalise(w + t_j·ĝ_j), ĝ_j the unit Riemannian gradient; t_j grows ×1.2 (up to
    ``max_step``) on success and halves on failure, so ℰ never decreases and the path follows
    the gradient flow up to a time change. ``project`` keeps w inside a subspace. Stops early
    once every node's step is below ``tol`` (converged: overshoots keep halving it).
    """
    w = w0 / w0.norm(dim=0).clamp_min(1e-30)
    e, g = rows.energy_grad(w, activation)
    t = torch.full_like(e, max_step)
    for _ in range(steps):
        if float(t.max()) < tol:
            break
        gt = g - (g * w).sum(0) * w
        if project is not None:
            gt = project(gt)
        cand = w + t * gt / gt.norm(dim=0).clamp_min(1e-30)
        cand = cand / cand.norm(dim=0).clamp_min(1e-30)
        e2, g2 = rows.energy_grad(cand, activation)
        ok = e2 >= e
        w, e, g = torch.where(ok, cand, w), torch.where(ok, e2, e), torch.where(ok, g2, g)
        t = torch.where(ok, (t * 1.2).clamp_max(max_step), t * 0.5)
    return w, e


_STAR: dict[tuple, np.ndarray] = {}
STAR_STEPS, STAR_RANDOM_STARTS = 150, 6


def _automorphism_classes(group: Group, labels: list[str]) -> list[int]:
    """For Z_{m1}×…×Z_{mr}: a ↦ s·a (s a unit mod the exponent) is an automorphism and maps
    character k to s·k, leaving ℰ on the full table unchanged. Returns, per component, the
    first component of its orbit. Other groups: every component is its own class."""
    if not group.is_cyclic_product:
        return list(range(len(labels)))
    ms = group.factors
    lcm = math.lcm(*ms)
    units = [u for u in range(1, lcm) if math.gcd(u, lcm) == 1] or [1]
    first: dict[tuple, int] = {}
    out = []
    for c, lab in enumerate(labels):
        k = tuple(int(x) for x in lab.strip("k=()").split(","))
        key = min(min(tuple(u * ki % f for ki, f in zip(k, ms, strict=True)),
                      tuple(-u * ki % f for ki, f in zip(k, ms, strict=True))) for u in units)
        out.append(first.setdefault(key, c))
    return out


def component_energy_star(group: Group, activation: str = "square") -> np.ndarray:
    """(C,): max of ℰ on the full table over unit w with u, v in component c (⊕ trivial).

    σ = x² on abelian groups: exactly M/4, or M/2 for a self-conjugate character (li2-theory
    §3; derivation in tests/li2core/test_theory.py); otherwise ascent from one start per
    automorphism class of components.
    """
    key = (group.name, hashlib.sha1(group.table.tobytes()).hexdigest(), activation)
    if key in _STAR:
        return _STAR[key]
    comps = isotypic_components(group)
    m = group.order
    if activation == "square" and group.is_abelian:
        out = np.array([m / 2 if s == 1 else m / 4 for s in comps.sizes])
    else:
        rep_of = _automorphism_classes(group, comps.labels)
        reps = sorted(set(rep_of))
        basis = torch.as_tensor(np.array(comps.basis))
        owner = torch.as_tensor(np.array(comps.column_component))
        # per start j, a 0/1 mask over basis columns: component reps[j] plus the trivial column
        mask = torch.stack([((owner == c) | (owner == -1)).double() for c in reps], dim=1)

        def project(x):
            u = basis @ (mask * (basis.T @ x[:m]))
            v = basis @ (mask * (basis.T @ x[m:]))
            return torch.cat([u, v])

        gen = torch.Generator().manual_seed(0)
        w0 = project(torch.randn(2 * m, len(reps), generator=gen, dtype=torch.float64))
        _, e = ascend(w0, Rows(group), activation, STAR_STEPS, 0.5, project)
        best = dict(zip(reps, e.tolist(), strict=True))
        out = np.array([best[rep_of[c]] for c in range(comps.count)])
    out.setflags(write=False)
    _STAR[key] = out
    return out


def energy_star(group: Group, activation: str = "square") -> float:
    """ℰ* = max of ℰ over ‖w‖ = 1 on the full table: the best per-component maximum, checked
    against ascent from random starts (cached per group and activation)."""
    key = (group.name, hashlib.sha1(group.table.tobytes()).hexdigest(), activation, "all")
    if key not in _STAR:
        m = group.order
        gen = torch.Generator().manual_seed(1)
        w0 = torch.randn(2 * m, STAR_RANDOM_STARTS, generator=gen, dtype=torch.float64)
        _, e = ascend(w0, Rows(group), activation, STAR_STEPS, 0.5)
        _STAR[key] = np.array(max(float(e.max()), float(component_energy_star(group,
                                                                              activation).max())))
    return float(_STAR[key])
