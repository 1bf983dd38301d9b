"""Compiled CPU loops for the fused step's memory-bound passes (numba; optional).

Eager PyTorch runs h = u_a + v_b, σ(h), σ′ and the scatter-add of ∂J/∂h onto W as one op
after another, each a full pass over the chunk's n×K activations: two gathers, an add, σ, a
multiply and two index_adds. These loops make it one pass forward (read the two rows of W,
write σ(h)) and one backward (re-form h from W, which stays in cache, multiply by σ′ and add
into both rows of ∂J/∂W): at fig3 (256-row chunks, K = 2048, one core) 70 µs against 216 µs
forward and 127 µs against 240 µs backward, with bitwise the same results as the torch ops
(same float32 operations in the same order; the scatter adds the rows in index order, as
index_add_ does).

Only for CPU tensors and the activations below; silu (which needs exp) and CUDA keep the
torch ops. Without numba installed everything falls back to those ops.
"""

from __future__ import annotations

import os

import numpy as np
import torch

# activation → code the loops branch on (σ′ is applied divided by li2core.fused's
# SIGMA_PRIME_SCALE, whose constant sits on V)
CODES = {"square": 0, "relu": 1, "relu_square": 2}


try:
    from numba import njit
except ImportError:  # the torch ops serve instead
    njit = None


def _jit(fn):
    # no fastmath: the loops must do exactly the float32 operations the torch ops do
    return njit(cache=True, fastmath=False, boundscheck=False, nogil=True)(fn)


def _forward(w, ia, ib, f, code):
    k = w.shape[1]
    for r in range(ia.shape[0]):
        u, v, fr = w[ia[r]], w[ib[r]], f[r]
        if code == 0:
            for j in range(k):
                x = u[j] + v[j]
                fr[j] = x * x
        elif code == 1:
            for j in range(k):
                x = u[j] + v[j]
                fr[j] = x if x > 0 else np.float32(0.0)
        else:
            for j in range(k):
                x = u[j] + v[j]
                x = x if x > 0 else np.float32(0.0)
                fr[j] = x * x


def _backward(w, ia, ib, d, grad, code):
    k = w.shape[1]
    for r in range(ia.shape[0]):
        u, v, dr, ga, gb = w[ia[r]], w[ib[r]], d[r], grad[ia[r]], grad[ib[r]]
        if code == 0:  # σ′/2 = h
            for j in range(k):
                s = dr[j] * (u[j] + v[j])
                ga[j] += s
                gb[j] += s
        elif code == 1:  # σ′ = 1[h > 0]
            for j in range(k):
                s = dr[j] if u[j] + v[j] > 0 else np.float32(0.0)
                ga[j] += s
                gb[j] += s
        else:  # σ′/2 = relu(h)
            for j in range(k):
                x = u[j] + v[j]
                s = dr[j] * x if x > 0 else np.float32(0.0)
                ga[j] += s
                gb[j] += s


def _forward_bf16(w, ia, ib, f_bits, row, code):
    """σ(h) rounded to bfloat16 (nearest even, as torch's cast) into f_bits (uint16); ``row``
    is a float32 scratch row, in L1 between the two loops."""
    row_bits = row.view(np.uint32)
    half, one, bias = np.uint32(16), np.uint32(1), np.uint32(0x7FFF)
    for r in range(ia.shape[0]):
        _forward(w, ia[r:r + 1], ib[r:r + 1], row.reshape(1, -1), code)
        out = f_bits[r]
        for j in range(row.shape[0]):
            b = row_bits[j]
            out[j] = (b + bias + ((b >> half) & one)) >> half


def _mse_rows(out, m, label, target, scale, residual, sums):
    """Per row r: hit if the first largest of out[r, :m] is label[r]; loss += ‖out − t‖²
    (float64); with ``residual``, out[r, :m] ← (out − t)·scale, as sub_ then mul_ would."""
    loss, hits = 0.0, 0
    for r in range(out.shape[0]):
        o, t = out[r], target[r]
        best = 0
        for c in range(1, m):
            if o[c] > o[best]:
                best = c
        hits += best == label[r]
        for c in range(m):
            e = o[c] - t[c]
            loss += np.float64(e) * np.float64(e)
            if residual:
                o[c] = e * scale
    sums[0] += loss
    sums[1] += hits


if njit is not None:
    _forward, _backward = _jit(_forward), _jit(_backward)
    _forward_bf16, _mse_rows = _jit(_forward_bf16), _jit(_mse_rows)


def _compiled() -> tuple | None:
    """(forward, backward, bf16 forward, mse rows) compiled, or None without numba (or with
    LI2_NO_KERNELS=1)."""
    if njit is None or os.environ.get("LI2_NO_KERNELS") == "1":
        return None
    return _forward, _backward, _forward_bf16, _mse_rows


def usable(device: torch.device, activation: str) -> bool:
    """Whether the compiled loops serve this run (CPU, a supported σ, numba importable)."""
    return device.type == "cpu" and activation in CODES and _compiled() is not None


def warm_up() -> bool:
    """Compile (or load from numba's cache) both loops on a tiny block, e.g. in a server's
    preloaded process, so a run does not pay it; False without numba."""
    fns = _compiled()
    if fns is None:
        return False
    w = np.zeros((2, 4), np.float32)
    idx = np.zeros(1, np.int64)
    fns[0](w, idx, idx + 1, np.zeros((1, 4), np.float32), 0)
    fns[1](w, idx, idx + 1, np.zeros((1, 4), np.float32), np.zeros((2, 4), np.float32), 0)
    fns[2](w, idx, idx + 1, np.zeros((1, 4), np.uint16), np.zeros(4, np.float32), 0)
    fns[3](np.zeros((1, 4), np.float32), 3, idx, np.zeros((1, 3), np.float32), np.float32(1.0),
           True, np.zeros(2))
    return True


def hidden_forward(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, f: np.ndarray,
                   activation: str) -> None:
    """f[r] ← σ(w[ia[r]] + w[ib[r]]) for the rows of the block (float32, C-contiguous)."""
    _compiled()[0](w, ia, ib, f, CODES[activation])


def hidden_forward_bf16(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, f_bits: np.ndarray,
                        row: np.ndarray, activation: str) -> None:
    """As hidden_forward, written as bfloat16 (the bits, uint16) without a float32 block;
    ``row``: a float32 scratch array of K entries."""
    _compiled()[2](w, ia, ib, f_bits, row, CODES[activation])


def hidden_backward(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, d: np.ndarray,
                    grad: np.ndarray, activation: str) -> None:
    """grad[ia[r]] += d[r]⊙σ′(h_r)/c and grad[ib[r]] += the same, h_r = w[ia[r]] + w[ib[r]],
    c = li2core.fused.SIGMA_PRIME_SCALE[activation], row by row in index order."""
    _compiled()[1](w, ia, ib, d, grad, CODES[activation])


def mse_rows(out: np.ndarray, m: int, label: np.ndarray, target: np.ndarray, scale: float,
             residual: bool, sums: np.ndarray) -> None:
    """The mse loss of a block of outputs (first ``m`` columns of ``out``) against
    ``target`` = e_y − 1/M: adds Σ‖out − t‖² and the argmax hits to ``sums`` (float64, 2) and,
    with ``residual``, leaves (out − t)·scale in ``out``. One pass instead of six torch ops."""
    _compiled()[3](out, m, label, target, np.float32(scale), residual, sums)
