"""Real isotypic components of the regular representation ℝ[H] of a finite group (li2-theory §4).

A function u: H → ℝ (a node's weights u_j = W[:M, j]) splits as u = Σ_c Π_c u, one term per
real isotypic component c. The component of a complex irrep χ of dimension d has real dimension
d² when χ is self-conjugate (real or quaternionic type) and merges with χ̄ into 2·d² otherwise.
Since d² is a perfect square and 2·d² never is, the size alone tells the two cases apart.

Reporting convention: ``dims[c]`` is the complex irrep dimension d, ``sizes[c]`` the projector
rank (d² or 2·d²). Z_M and products of cyclic groups use exact cos/sin characters; every other
group uses the class-sum eigen-method below.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .groups import Group

EIG_SEED = 12345  # fixed seed of the generic combination of class sums: results are reproducible
_CLUSTER_TOL = 1e-6  # eigenvalues of normalised class sums are Re χ(g)/d ∈ [-1, 1]


@dataclass(eq=False)
class Components:
    """Non-trivial real isotypic components (the trivial one only lives in ``basis``)."""

    group_name: str
    labels: list[str]
    dims: list[int]
    sizes: list[int]
    basis: np.ndarray  # (M, M) orthonormal columns, grouped by component
    column_component: np.ndarray  # (M,) component index per column; -1 = trivial
    _torch: dict = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.labels)

    @property
    def order(self) -> int:
        return int(self.basis.shape[0])

    @property
    def indicator(self) -> np.ndarray:
        """(M, C) 0/1: column i of ``basis`` belongs to component c."""
        ind = np.zeros((self.order, self.count))
        cols = np.flatnonzero(self.column_component >= 0)
        ind[cols, self.column_component[cols]] = 1.0
        return ind

    def describe(self) -> list[dict]:
        """[{"label", "dim", "size"}] as carried by RunStarted.group["components"]."""
        return [{"label": lab, "dim": d, "size": s}
                for lab, d, s in zip(self.labels, self.dims, self.sizes, strict=True)]

    def _tensors(self, like):
        import torch

        key = (like.dtype, like.device)
        if key not in self._torch:
            # copy: the cached basis is read-only and torch wants writable memory
            self._torch[key] = (torch.tensor(np.array(self.basis), dtype=like.dtype,
                                             device=like.device),
                                torch.tensor(self.indicator, dtype=like.dtype, device=like.device))
        return self._torch[key]


def component_power(comps: Components, x):
    """‖Π_c x_j‖² for x (M, K) (columns = nodes) → (K, C); x (M,) → (C,).

    numpy in → numpy out, torch in → torch out (same dtype and device). For Z_M the entry for
    k equals |x̂[k]|² + |x̂[M−k]|² with the unitary DFT x̂[k] = M^{-1/2} Σ_m x_m e^{-2πikm/M}.
    """
    if isinstance(x, np.ndarray) or not hasattr(x, "dtype") or not hasattr(x, "device"):
        arr = np.asarray(x, dtype=np.float64)
        coef = comps.basis.T @ arr
        return (coef * coef).T @ comps.indicator
    basis, ind = comps._tensors(x)
    coef = basis.T @ x
    return (coef * coef).T @ ind


def pair_component_power(comps: Components, r):
    """For responses r (M, M, K) to the input pairs, r[a, b, j]: the (K, C) powers of the
    functions a ↦ r[a, b, j] summed over b, and of b ↦ r[a, b, j] summed over a (torch)."""
    basis, ind = comps._tensors(r)
    bt = basis.T
    side_b = (bt @ r).square().sum(dim=0)  # batched over a: coefficients along b
    side_a = (bt @ r.transpose(0, 1)).square().sum(dim=0)
    return side_a.T @ ind, side_b.T @ ind


def concentration(power):
    """max_c P[j, c] / Σ_c P[j, c] per node from a (K, C) power array (0 for a zero node)."""
    if isinstance(power, np.ndarray):
        tot = power.sum(axis=-1)
        return np.where(tot > 0, power.max(axis=-1) / np.where(tot > 0, tot, 1.0), 0.0)
    tot = power.sum(dim=-1)
    return power.max(dim=-1).values / tot.clamp_min(1e-30)


def projectors(comps: Components) -> np.ndarray:
    """(C+1, M, M): Π_c for c = 0..C-1 in label order, then the trivial projector last."""
    out = []
    for c in [*range(comps.count), -1]:
        b = comps.basis[:, comps.column_component == c]
        out.append(b @ b.T)
    return np.stack(out)


def max_irrep_dim(group: Group) -> int:
    """Largest complex irrep dimension d (1 for abelian groups)."""
    comps = isotypic_components(group)
    return max([1, *comps.dims])


_CACHE: dict[tuple[str, str], Components] = {}


def isotypic_components(group: Group) -> Components:
    """The real isotypic decomposition of ℝ[H], cached per group name and table."""
    key = (group.name, hashlib.sha1(np.ascontiguousarray(group.table).tobytes()).hexdigest())
    if key not in _CACHE:
        comps = _characters(group) if group.is_cyclic_product else _eigen(group)
        comps.basis.setflags(write=False)
        comps.column_component.setflags(write=False)
        _CACHE[key] = comps
    return _CACHE[key]


def _characters(group: Group) -> Components:
    """Abelian Z_{m1}×…×Z_{mr}: columns √(2/M)·cos θ_k, √(2/M)·sin θ_k, θ_k(a) = 2π Σ k_i a_i/m_i.

    One component per pair {k, −k}; a self-conjugate k (2k ≡ 0) has the single column cos θ_k/√M.
    """
    ms = group.factors
    m = group.order
    lcm = math.lcm(*ms)
    # mixed-radix digits of each element index, last factor fastest (groups.direct_product)
    digits = np.array(list(itertools.product(*[range(f) for f in ms])), dtype=np.int64)
    cols, owner, labels, sizes = [np.full(m, 1 / math.sqrt(m))], [-1], [], []
    seen = {tuple([0] * len(ms))}
    for k in itertools.product(*[range(f) for f in ms]):
        if k in seen:
            continue
        neg = tuple((-ki) % f for ki, f in zip(k, ms, strict=True))
        seen.update({k, neg})
        # exact integer phase modulo lcm, then one float conversion
        phase = (digits @ np.array([ki * (lcm // f) for ki, f in zip(k, ms, strict=True)])) % lcm
        theta = 2 * np.pi * phase / lcm
        c = len(labels)
        if neg == k:
            cols.append(np.cos(theta) / math.sqrt(m))
            owner.append(c)
            sizes.append(1)
        else:
            cols += [np.cos(theta) * math.sqrt(2 / m), np.sin(theta) * math.sqrt(2 / m)]
            owner += [c, c]
            sizes.append(2)
        labels.append(f"k={k[0]}" if len(ms) == 1 else "(" + ",".join(map(str, k)) + ")")
    return Components(group.name, labels, [1] * len(labels), sizes, np.stack(cols, axis=1),
                      np.array(owner, dtype=np.int64))


def _class_operator(group: Group, cls: list[int]) -> np.ndarray:
    """S_C = (L_C + L_Cᵀ)/(2|C|), L_C = Σ_{g∈C} L_g, (L_g)[g·h, h] = 1; eigenvalues Re χ(g)/d."""
    m = group.order
    op = np.zeros((m, m))
    cols = np.arange(m)
    for g in cls:
        op[group.table[g], cols] += 1.0
    return (op + op.T) / (2 * len(cls))


def _split(values: np.ndarray, tol: float) -> list[np.ndarray]:
    """Indices of sorted ``values`` grouped where consecutive gaps exceed ``tol``."""
    order = np.argsort(values, kind="stable")
    breaks = np.flatnonzero(np.diff(values[order]) > tol) + 1
    return np.split(order, breaks)


def _eigen(group: Group) -> Components:
    """Joint eigenspaces of the normalised class sums S_C (they commute, li2-theory §4).

    One eigendecomposition of a random combination Σ r_C S_C gives candidate clusters; each
    cluster is then refined class by class (restricted S_C must be scalar), so an accidental
    eigenvalue coincidence cannot merge two components.
    """
    m = group.order
    classes = group.conjugacy_classes
    ops = [_class_operator(group, c) for c in classes]
    r = np.random.default_rng(EIG_SEED).standard_normal(len(ops))
    vals, vecs = np.linalg.eigh(sum(ri * op for ri, op in zip(r, ops, strict=True)))
    blocks = [vecs[:, idx] for idx in _split(vals, _CLUSTER_TOL * max(1.0, np.abs(r).sum()))]
    for op in ops:
        refined = []
        for b in blocks:
            red = b.T @ op @ b
            red = (red + red.T) / 2
            if np.ptp(np.diag(red)) < _CLUSTER_TOL and np.abs(red - np.diag(np.diag(red))).max(
                    initial=0.0) < _CLUSTER_TOL:
                refined.append(b)
                continue
            v2, q2 = np.linalg.eigh(red)
            refined += [b @ q2[:, idx] for idx in _split(v2, _CLUSTER_TOL)]
        blocks = refined
    # signature of each block: Re χ(g_C)/d per class, used for a seed-independent order
    sigs = [tuple(round(float(np.trace(b.T @ op @ b)) / b.shape[1], 6) for op in ops)
            for b in blocks]
    ones = np.full(m, 1 / math.sqrt(m))
    info = []
    n_irreps = 0
    for b, sig in zip(blocks, sigs, strict=True):
        s = b.shape[1]
        d, pair = _dim_from_size(s, group.name)
        n_irreps += 2 if pair else 1
        trivial = s == 1 and abs(float(ones @ b[:, 0])) > 0.5
        info.append((trivial, d, s, tuple(-x for x in sig), b))
    if n_irreps != len(classes):
        raise RuntimeError(f"{group.name}: found {n_irreps} irreps for {len(classes)} classes")
    info.sort(key=lambda t: (not t[0], t[1], t[2], t[3]))
    if not info[0][0]:
        raise RuntimeError(f"{group.name}: trivial component not found")
    cols, owner, labels, dims, sizes = [ones[:, None]], [-1], [], [], []
    counter: dict[int, int] = {}
    for _, d, s, _, b in info[1:]:
        counter[d] = counter.get(d, 0) + 1
        labels.append(f"d={d} #{counter[d]}")
        dims.append(d)
        sizes.append(s)
        cols.append(b)
        owner += [len(labels) - 1] * s
    return Components(group.name, labels, dims, sizes, np.concatenate(cols, axis=1),
                      np.array(owner, dtype=np.int64))


def _dim_from_size(s: int, name: str) -> tuple[int, bool]:
    """size d² → (d, False); size 2·d² → (d, True) for a merged conjugate pair."""
    d = math.isqrt(s)
    if d * d == s:
        return d, False
    d = math.isqrt(s // 2)
    if s % 2 == 0 and 2 * d * d == s:
        return d, True
    raise RuntimeError(f"{name}: isotypic component of size {s} is neither d² nor 2·d²")
