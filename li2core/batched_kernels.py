"""The batched engine's fp32 mse step as two compiled calls that run its matrix products
through MKL's sgemm directly (li2core.batched; numba, optional).

At sweep sizes (K ≤ 128, M ≤ 53, one run per batch at Z53) a step is a few hundred µs, and
each torch op around the compiled loops costs its dispatch. torch's CPU wheels export MKL's
Fortran ``sgemm_`` from libtorch_cpu, the routine torch.bmm itself calls for these fp32
products: called from compiled code with the same operands, strides and transposes it gives
bitwise the same outputs (tests/li2core/test_batched.py), without the dispatch. So the forward
pass (V's centring over classes, gather + σ, the outputs σ(h)·V_c, the mse pass) is one call,
and the backward (dVᵀ = Gᵀσ(h), ∂J/∂h = G·V_cᵀ·c, the σ′ + scatter-add onto ∂J/∂W, dV's
centring) another: 1.04–1.10× per step on the scaling-law preset's batches, ~2.5× less
Python and dispatch per step with the centring inside (benchmarks/README.md, sixth and
seventh rounds). The centring is li2core.torch_exact's twin of torch's sum and sub (K ≥ 16,
where the twins serve); otherwise the engine centres with torch ops around the calls.

Used only where torch runs on MKL, on one thread, and a one-off check of all three product
layouts against torch.bmm passes; elsewhere the engine keeps its torch products. A training
pass skips each run's padding rows (past its own n) except in dV's product, whose sum over
all n_max rows MKL would round differently if shortened.
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache

import numpy as np
import torch

from . import kernels, torch_exact

try:
    import llvmlite.binding as llvm_binding
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError:  # no numba: the engine's torch products serve
    intrinsic = None

_N, _T = ord("N"), ord("T")


def _library() -> str:
    return os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")


if intrinsic is not None:
    @intrinsic
    def _sgemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """sgemm_(…) with every argument a pointer (Fortran), given as int64 addresses. The
        call names the symbol, so numba's on-disk cache holds it (a ctypes function would be
        a pointer baked into the code, which numba refuses to cache)."""
        sig = types.void(*([types.int64] * 13))

        def codegen(context, builder, signature, args):
            ptr = ir.IntType(8).as_pointer()
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ptr] * 13), "sgemm_")
            builder.call(fn, [builder.inttoptr(x, ptr) for x in args])
            return context.get_dummy_value()

        return sig, codegen


def _gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, args):
    """Column-major C (m×n, ld ldc) ← op(A)·op(B); a, b, c: arrays whose first element is the
    matrix's; ``args``: int32 scratch (m, n, k, lda, ldb, ldc, transa, transb) and the float32
    (1, 0) of alpha and beta, kept in numpy arrays because sgemm_ takes pointers."""
    ints, scalars = args
    ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = m, n, k, lda, ldb, ldc
    ints[6], ints[7] = ta, tb
    p = ints.ctypes.data
    _sgemm(p + 24, p + 28, p, p + 4, p + 8, scalars.ctypes.data, a.ctypes.data, p + 12,
           b.ctypes.data, p + 16, scalars.ctypes.data + 4, c.ctypes.data, p + 20)


def _products_forward(f, vt_c, out, used, ints, scalars):
    """out[r][:, :used[r]] (M, rows) = V_c,r·σ(h_r)ᵀ over run r's first used[r] rows;
    f: (R, rows, K)."""
    runs, rows, k = f.shape
    m = vt_c.shape[1]
    for r in range(runs):
        # row-major out_r is column-major out_rᵀ (rows × M) = σ(h_r)·V_c,rᵀ
        _gemm(_T, _N, used[r], m, k, f[r], k, vt_c[r], k, out[r], rows, (ints, scalars))


def _products_backward(f, out, n, used, vt_back, dvt, d_h, ints, scalars):
    """dVᵀ_r = G_r·σ(h_r) over the first n rows (G = out[:, :, :n]; rows past used[r] must
    hold G = 0) and ∂J/∂h_r = G_rᵀ·V_back,r over the first used[r] rows."""
    runs, rows, k = f.shape
    m = vt_back.shape[1]
    for r in range(runs):
        # dVᵀ_r (M × K row-major) is column-major (K × M) = σ(h_r)ᵀ[:, :n]·G_rᵀ; over all n
        # rows even where used[r] < n: a shorter sum changes MKL's rounding
        _gemm(_N, _N, k, m, n, f[r], k, out[r], rows, dvt[r], k, (ints, scalars))
        # ∂J/∂h_r (n × K row-major) is column-major (K × n) = V_back,rᵀ·G_r
        _gemm(_N, _T, k, used[r], m, vt_back[r], k, out[r], rows, d_h[r], k, (ints, scalars))


def _forward_fp32(params, ia, ib, f_flat, f, vt_c, centre, neg_inv, total, c_acc, c_part,
                  out, code, label, inv_m, n_grad, scale, stats, best, first, acc, ints,
                  scalars, used):
    """With ``centre``, V_c ← Vᵀ (rows 2M…3M−1 of each run's parameters) centred over
    classes (torch_exact's twin of the torch ops); σ(h) of each run's first used[r] rows into
    f (R, rows, K; f_flat its (R·rows, K) view), their outputs, then the mse pass
    (kernels._batched_mse): residual, G on the first n_grad rows, stats. A training pass uses
    each run's own n (used[r] = n_r ≤ n_grad = n_max): its padding rows are neither formed nor
    multiplied, and their G is set to 0, which their zero scale gave before."""
    runs, rows, k = f.shape
    if centre:
        m = vt_c.shape[1]
        torch_exact._centre(params.reshape((runs, 3 * m, k))[:, 2 * m:], vt_c, neg_inv,
                            total, c_acc, c_part)
    for r in range(runs):
        lo = r * rows
        kernels._forward(params, ia[lo:lo + used[r]], ib[lo:lo + used[r]],
                         f_flat[lo:lo + used[r]], code)
    _products_forward(f, vt_c, out, used, ints, scalars)
    kernels._batched_mse(out, label, inv_m, n_grad, scale, stats, best, first, acc)
    for r in range(runs):
        out[r, :, used[r]:n_grad] = 0.0


def _backward_fp32(params, ia, ib, f, out, n, used, vt_c, vt_back, sigma_scale, dvt, d_h,
                   d_h_flat, grad, centre, neg_inv, total, c_acc, c_part, code, ints,
                   scalars):
    """V_back = V_c·c (c = 1 or 2: exact, as torch.mul), the two products, then grad ← 0, the
    σ′ + scatter-add of each run's first used[r] rows of ∂J/∂h onto both rows of ∂J/∂W
    (kernels._backward; a padding row's ∂J/∂h is 0 and would add nothing) and, with
    ``centre``, dVᵀ centred over classes into grad's Vᵀ rows."""
    flat_c, flat_b = vt_c.reshape(-1), vt_back.reshape(-1)
    for i in range(flat_c.shape[0]):
        flat_b[i] = flat_c[i] * sigma_scale
    _products_backward(f, out, n, used, vt_back, dvt, d_h, ints, scalars)
    grad[:] = 0.0
    for r in range(f.shape[0]):
        lo = r * n
        kernels._backward(params, ia[lo:lo + used[r]], ib[lo:lo + used[r]],
                          d_h_flat[lo:lo + used[r]], grad, code)
    if centre:
        runs, m, k = dvt.shape
        torch_exact._centre(dvt, grad.reshape((runs, 3 * m, k))[:, 2 * m:], neg_inv,
                            total, c_acc, c_part)


if intrinsic is not None and kernels.njit is not None:
    _gemm = kernels.njit(inline="always", fastmath=False, boundscheck=False)(_gemm)
    _products_forward, _products_backward = (kernels._jit(fn) for fn in (_products_forward,
                                                                         _products_backward))
    _forward_fp32, _backward_fp32 = kernels._jit(_forward_fp32), kernels._jit(_backward_fp32)


def _torch_uses_mkl() -> bool:
    return bool(torch.backends.mkl.is_available()) and os.path.exists(_library())


def available() -> bool:
    """Whether the direct-sgemm step serves now: torch runs on one thread (with more, torch.bmm
    and MKL share the work out differently, and the sums' rounding may differ), the compiled
    loops are on, torch runs on MKL and exports sgemm_, and the three product layouts give
    torch.bmm's bits (checked once, on one thread)."""
    return torch.get_num_threads() == 1 and _ready()


@lru_cache(maxsize=1)
def _ready() -> bool:
    if intrinsic is None or not kernels.available() or not _torch_uses_mkl():
        return False
    try:
        if not hasattr(ctypes.CDLL(_library()), "sgemm_"):
            return False
        llvm_binding.load_library_permanently(_library())
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the step serves on one thread: check the bits there
        try:
            return _matches_torch()
        finally:
            torch.set_num_threads(threads)
    except (OSError, RuntimeError):
        return False


def _matches_torch() -> bool:
    """One small batch through both: the three products must be bitwise torch.bmm's."""
    gen = torch.Generator().manual_seed(0)
    runs, m, k, rows, n = 2, 7, 24, 40, 25
    f, vt = torch.randn(runs, rows, k, generator=gen), torch.randn(runs, m, k, generator=gen)
    out, dvt, d_h = torch.empty(runs, m, rows), torch.empty(runs, m, k), torch.empty(runs, n, k)
    ints, scalars = gemm_args()
    every = np.full(runs, rows, np.int64)
    _products_forward(f.numpy(), vt.numpy(), out.numpy(), every, ints, scalars)
    same = torch.equal(out, torch.bmm(vt, f.mT))
    out.normal_(generator=gen)
    _products_backward(f.numpy(), out.numpy(), n, every.clip(max=n), vt.numpy(), dvt.numpy(),
                       d_h.numpy(), ints, scalars)
    g = out[:, :, :n]
    return same and torch.equal(dvt, torch.bmm(g, f[:, :n])) and torch.equal(
        d_h, torch.bmm(g.mT, vt))


def gemm_args() -> tuple:
    """Scratch a call passes to sgemm_: int32 (m, n, k, lda, ldb, ldc, transa, transb) and
    float32 (alpha = 1, beta = 0)."""
    return np.zeros(8, np.int32), np.array([1.0, 0.0], np.float32)


def forward_args(params: np.ndarray, rows_np: tuple, f: tuple, vt_c: np.ndarray,
                 out: np.ndarray, activation: str, label: np.ndarray,
                 n_grad: int, scale: np.ndarray, stats: np.ndarray | None, scratch: tuple,
                 args: tuple, used: np.ndarray, centring: tuple | None) -> tuple:
    """The arguments of one forward pass, made once per pass (a step's Python work is a
    measurable part of it at sweep sizes): over each run's first used[r] rows (int64, (R,)),
    σ(h) into f = ((R·rows, K), (R, rows, K) views of one buffer), the outputs into out (R, M,
    rows), then the residual, G (first n_grad rows; 0 past used[r]) and, with ``stats``, each
    row's loss and hit (kernels.batched_mse). With ``centring`` (torch_exact.centring_scratch)
    the call first centres Vᵀ (params' rows 2M…3M−1 of each run) into vt_c; without, the
    caller has."""
    m = vt_c.shape[1]
    return (params, *rows_np, *f, vt_c, centring is not None, np.float32(-1.0 / m),
            *(centring or _NO_CENTRING), out, kernels.CODES[activation], label,
            np.float32(1.0 / m), n_grad, scale,
            stats if stats is not None else kernels._NO_STATS, *scratch[:3], *args, used)


def backward_args(params: np.ndarray, rows_np: tuple, f: np.ndarray, out: np.ndarray, n: int,
                  used: np.ndarray, vt_c: np.ndarray, vt_back: np.ndarray, sigma_scale: float,
                  dvt: np.ndarray, d_h: tuple, grad: np.ndarray, activation: str,
                  args: tuple, centring: tuple | None) -> tuple:
    """The arguments of one backward pass: dVᵀ into dvt (R, M, K), ∂J/∂h into d_h = ((R, n,
    K), (R·n, K) views), ∂J/∂W into grad (the (R·3M, K) parameter rows) from each run's first
    used[r] training rows ``rows_np``; with ``centring``, dVᵀ centred over classes into
    grad's Vᵀ rows, else those rows are left 0."""
    m = vt_c.shape[1]
    return (params, *rows_np, f, out, n, used, vt_c, vt_back, np.float32(sigma_scale), dvt,
            *d_h, grad, centring is not None, np.float32(-1.0 / m),
            *(centring or _NO_CENTRING), kernels.CODES[activation], *args)


def forward(args: tuple) -> None:
    """One forward pass (see forward_args)."""
    _forward_fp32(*args)


def backward(args: tuple) -> None:
    """One backward pass (see backward_args)."""
    _backward_fp32(*args)


_NO_CENTRING = (np.zeros(1, np.float32), np.zeros((4, 1), np.float32),
                np.zeros((4, 1), np.float32))


def warm_up() -> bool:
    """Compile (or load) the two calls on tiny arrays of the types the engine passes (see
    kernels.warm_up), whatever the thread count now (the forkserver and the image build warm
    up before a job pins one thread); False where the direct sgemm cannot serve."""
    if not _ready():
        return False
    runs, m, k, rows = 1, 3, torch_exact.MIN_K, 4
    params = np.zeros((runs * 3 * m, k), np.float32)
    # row indices come contiguous, or strided where a one-run batch's are a view of its bags
    ia, ib = np.zeros(runs * rows, np.int64), np.full(runs * rows, m, np.int64)
    index_pairs = ((ia, ib), (np.zeros(2 * runs * rows, np.int64)[::2],
                              np.full(2 * runs * rows, m, np.int64)[::2]))
    f, out = np.zeros((runs, rows, k), np.float32), np.zeros((runs, m, rows), np.float32)
    vt_c, vt_back, dvt = (np.zeros((runs, m, k), np.float32) for _ in range(3))
    d_h = np.zeros((runs, rows, k), np.float32)
    label, scale = np.zeros((runs, rows), np.int64), np.ones((runs, rows), np.float32)
    scratch, args = kernels.batched_scratch(rows), gemm_args()
    used = np.full(runs, rows, np.int64)
    centring = torch_exact.centring_scratch(k) if torch_exact.available() else None
    for act in kernels.CODES:
        for rows_np in index_pairs:
            for stats in (None, np.zeros((runs, 2, rows), np.float32)):
                forward(forward_args(params, rows_np, (f.reshape(-1, k), f), vt_c, out, act,
                                     label, rows, scale, stats, scratch, args, used, centring))
            backward(backward_args(params, rows_np, f, out, rows, used, vt_c, vt_back, 2.0,
                                   dvt, (d_h, d_h.reshape(-1, k)), params, act, args,
                                   centring))
    return True
