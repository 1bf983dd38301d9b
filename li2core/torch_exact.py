"""Compiled twins of three torch CPU float32 ops the batched engine runs every step, with
bitwise their results: the sum over classes ``torch.sum(x, dim=1)`` of an (R, M, K) tensor,
the centring ``torch.sub(x, s, alpha=1/M)`` and the fused Adam / AdamW update
(``torch._fused_adam_``, ``torch._fused_adamw_``) with one lr and η per run (numba; optional).

Why: at sweep sizes (R·3M·K ≈ 20k–60k parameters) each of these is a few µs of arithmetic
behind 10–20 µs of dispatch and Python; on the scaling-law preset they were ~4.5 s of a
~40 s sweep (benchmarks/README.md, seventh round).

How the bits are kept:
- torch sums a strided dimension in cascades: columns in blocks of 64, then 32, run a
  sequential sum over chunks of 16 rows whose totals are summed on a second level; a block of
  16 sums the rows as four interleaved cascades (rows i ≡ q mod 4) plus the leftover rows;
  the last K mod 16 columns do the same one column at a time (SumKernel.cpp, as measured).
- torch's binary is built by GCC with a·b + c contracted into one FMA: the twins call
  ``llvm.fma`` exactly where that happens (the centring, η·p + g, (1 − β₂)g·g + β₂v) and the
  lerp's explicit fmadd. Adam's scalar remainder loop contracts differently, so the Adam twin
  takes rows whose length is a multiple of 16 (then every slice torch is handed is whole
  vectors); other lengths keep torch's kernel.
A one-off check against the torch ops on random data (both Adam modes, column counts that
take every summing path) decides whether the twins serve; a torch built otherwise keeps its
own ops.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from . import kernels

try:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError:  # no numba: the torch ops serve
    intrinsic = None

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # li2core.batched_optim's (torch.optim.Adam's)
MIN_K = 16  # below one vector of columns torch reduces another way: the twins do not serve
ADAM_ROW = 16  # the Adam twin's row length must be a multiple of this (see above)
_LEVEL = 16  # rows per cascade chunk (torch: 2^max(4, ⌈log2 n⌉/4), 16 below 2^20 rows)

if intrinsic is not None:
    @intrinsic
    def _fma(typingctx, a, b, c):
        """a·b + c rounded once (float32), as the FMA GCC emits for torch's a * b + c."""
        sig = types.float32(types.float32, types.float32, types.float32)

        def codegen(context, builder, signature, args):
            f32 = ir.FloatType()
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(f32, [f32] * 3), "llvm.fma.f32")
            return builder.call(fn, args)

        return sig, codegen


def _cascade(x, r0, step, size, c0, c1, acc, out):
    """out[c] ← Σ_i x[r0 + i·step, c] over i < size for columns c0 ≤ c < c1, summed as torch's
    multi_row_sum: a running sum per chunk of 16 rows, chunk totals carried up the levels."""
    for lvl in range(4):
        for c in range(c0, c1):
            acc[lvl, c] = np.float32(0.0)
    i = 0
    while i + _LEVEL <= size:
        for _ in range(_LEVEL):
            row = x[r0 + i * step]
            for c in range(c0, c1):
                acc[0, c] += row[c]
            i += 1
        for lvl in range(1, 4):
            for c in range(c0, c1):
                acc[lvl, c] += acc[lvl - 1, c]
                acc[lvl - 1, c] = np.float32(0.0)
            if i & ((_LEVEL - 1) << (4 * lvl)):
                break
    while i < size:
        row = x[r0 + i * step]
        for c in range(c0, c1):
            acc[0, c] += row[c]
        i += 1
    for c in range(c0, c1):
        total = acc[0, c]
        for lvl in range(1, 4):
            total += acc[lvl, c]
        out[c] = total


def _interleaved(x, c0, c1, acc, part, out):
    """torch's row_sum for columns [c0, c1): four cascades over the rows i ≡ q (mod 4), the
    leftover rows onto the first, then the four added in order."""
    m = x.shape[0]
    size = m // 4
    for q in range(4):
        _cascade(x, q, 4, size, c0, c1, acc, part[q])
    for i in range(4 * size, m):
        for c in range(c0, c1):
            part[0, c] += x[i, c]
    for c in range(c0, c1):
        total = part[0, c]
        for q in range(1, 4):
            total += part[q, c]
        out[c] = total


def _class_sum(x, out, acc, part):
    """out (K,) ← torch.sum(x, dim=0) of x (M, K), K ≥ 16; acc, part: (4, K) scratch."""
    m, k = x.shape
    c = 0
    while c + 64 <= k:
        _cascade(x, 0, 1, m, c, c + 64, acc, out)
        c += 64
    while c + 32 <= k:
        _cascade(x, 0, 1, m, c, c + 32, acc, out)
        c += 32
    while c + 16 <= k:
        _interleaved(x, c, c + 16, acc, part, out)
        c += 16
    while c < k:
        _interleaved(x, c, c + 1, acc, part, out)
        c += 1


def _centre(x, out, neg_inv, total, acc, part):
    """out[r] ← x[r] − Σ_classes x[r] / M per run (x, out: (R, M, K); out may be a strided
    view): torch.sub(x, x.sum(1, keepdim=True), alpha=1/M), neg_inv = float32(−1/M)."""
    runs, m, k = x.shape
    for r in range(runs):
        _class_sum(x[r], total, acc, part)
        for i in range(m):
            src, dst = x[r, i], out[r, i]
            for c in range(k):
                dst[c] = _fma(total[c], neg_inv, src[c])


def _adam(p, g, m1, m2, lr, wd, t, decoupled):
    """One Adam (AdamW if ``decoupled``) step of every run r (rows of p, g, m1, m2: (R, L))
    with its own lr[r] and η[r] (float64), step count t: torch's fused kernel per element."""
    b1, b2 = ADAM_BETAS
    # in float64 as torch computes them, then rounded to float32 where its vectors take them
    bc1 = 1.0 - b1 ** t
    bc2_sqrt = np.float32(math.sqrt(1.0 - b2 ** t))
    c1, c2, beta2 = np.float32(1.0 - b1), np.float32(1.0 - b2), np.float32(b2)
    eps = np.float32(ADAM_EPS)
    for r in range(p.shape[0]):
        neg_step = np.float32(-(lr[r] / bc1))
        # the decay's branch settled per run, so the loop below has none and vectorises;
        # p·1 and an untouched g are what torch's η = 0 gives, bit for bit
        coupled = wd[r] != 0.0 and not decoupled
        decay = np.float32(wd[r]) if coupled else np.float32(0.0)
        shrink = (np.float32(1.0 - lr[r] * wd[r]) if wd[r] != 0.0 and decoupled
                  else np.float32(1.0))
        pr, gr, ar, sr = p[r], g[r], m1[r], m2[r]
        for i in range(pr.shape[0]):
            x, d = pr[i], gr[i]
            if coupled:
                d = _fma(x, decay, d)
            else:
                x = x * shrink
            a = _fma(c1, d - ar[i], ar[i])  # exp_avg.lerp_(grad, 1 − β₁), weight < 0.5
            s = _fma(c2 * d, d, sr[i] * beta2)
            ar[i] = a
            sr[i] = s
            pr[i] = x + (neg_step * a) / (np.sqrt(s) / bc2_sqrt + eps)


if intrinsic is not None and kernels.njit is not None:
    _cascade, _interleaved, _class_sum = (
        kernels.njit(inline="always", fastmath=False, boundscheck=False)(fn)
        for fn in (_cascade, _interleaved, _class_sum))
    _centre = kernels._jit(_centre)
    # IEEE division (numba's default checks for zero, which stops the loop vectorising)
    _adam = kernels.njit(cache=True, fastmath=False, boundscheck=False, nogil=True,
                         error_model="numpy")(_adam)


def centring_scratch(k: int) -> tuple:
    """Scratch for centre: the (K,) class sums and two (4, K) cascade accumulators."""
    return np.zeros(k, np.float32), np.zeros((4, k), np.float32), np.zeros((4, k), np.float32)


def centre(x: np.ndarray, out: np.ndarray, m: int, scratch: tuple) -> None:
    """out ← x centred over classes (dim 1), bitwise torch.sub(x, x.sum(1, keepdim=True),
    alpha=1/m); x (R, M, K) float32, out the same shape (a strided view is fine)."""
    _centre(x, out, np.float32(-1.0 / m), *scratch)


def adam(p: np.ndarray, g: np.ndarray, m1: np.ndarray, m2: np.ndarray, lr: np.ndarray,
         wd: np.ndarray, t: int, decoupled: bool) -> None:
    """Adam step ``t`` in place on (R, L) float32 parameters and moments, lr and wd (R,)
    float64, L a multiple of ADAM_ROW: bitwise torch._fused_adam_ (_fused_adamw_ if
    ``decoupled``) run by run."""
    _adam(p, g, m1, m2, lr, wd, float(t), decoupled)


def available() -> bool:
    """Whether the twins serve: numba present, kernels on, and the one-off bit check passed."""
    return intrinsic is not None and kernels.available() and _ready()


@lru_cache(maxsize=1)
def _ready() -> bool:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ops' single-thread code paths, which the engine runs on
    try:
        return _centring_matches() and all(_adam_matches(d) for d in (False, True))
    finally:
        torch.set_num_threads(threads)


def _centring_matches() -> bool:
    """Both the forward's and the gradient's centring (into a strided view) on shapes that
    take every column path: blocks of 64, 32 and 16 columns and single columns."""
    gen = torch.Generator().manual_seed(0)
    for runs, m, k in ((2, 23, 64 + 32 + 16 + 3), (1, 53, 48), (2, 37, 16)):
        x = torch.randn(runs, m, k, generator=gen) * 3
        out, ref = torch.empty(2, runs, m + 3, k)[:, :, 3:]  # strided, as ∂J/∂Vᵀ's rows
        centre(x.numpy(), out.numpy(), m, centring_scratch(k))
        total = torch.sum(x, dim=1, keepdim=True, dtype=torch.float32)
        if not (torch.equal(out, torch.sub(x, total, alpha=1.0 / m, out=ref))
                and torch.equal(out, torch.sub(x, total, alpha=1.0 / m))):
            return False
    return True


def _adam_matches(decoupled: bool) -> bool:
    """Ten steps of both on two runs with different (lr, η), one of them η = 0."""
    gen = torch.Generator().manual_seed(1)
    runs, length = 2, ADAM_ROW * 5
    lr, wd = np.array([5e-3, 3e-2]), np.array([1e-3, 0.0])
    p = torch.randn(runs, length, generator=gen)
    mine = [p.clone(), torch.zeros(runs, length), torch.zeros(runs, length)]
    ref = [p.clone(), torch.zeros(runs, length), torch.zeros(runs, length)]
    step = torch.zeros(())
    fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
    for t in range(1, 11):
        g = torch.randn(runs, length, generator=gen) * 0.1
        adam(*(x.numpy() for x in mine[:1] + [g] + mine[1:]), lr, wd, t, decoupled)
        step.fill_(t)
        for r in range(runs):
            fused([ref[0][r]], [g[r].clone()], [ref[1][r]], [ref[2][r]], [], [step],
                  lr=float(lr[r]), beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1],
                  weight_decay=float(wd[r]), eps=ADAM_EPS, amsgrad=False, maximize=False)
    return all(torch.equal(a, b) for a, b in zip(mine, ref, strict=True))


def warm_up() -> bool:
    """Compile (or load) both twins on the argument types the engine passes; False where
    they do not serve."""
    if not available():
        return False
    x = np.zeros((1, 2, MIN_K), np.float32)
    centre(x, x.copy(), 2, centring_scratch(MIN_K))
    centre(x, np.zeros((1, 3, MIN_K), np.float32)[:, 1:], 2, centring_scratch(MIN_K))
    a = np.zeros((1, ADAM_ROW), np.float32)
    for decoupled in (False, True):
        adam(a, a.copy(), a.copy(), a.copy(), np.ones(1), np.zeros(1), 1, decoupled)
    return True
