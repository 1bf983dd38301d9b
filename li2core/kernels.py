"""Compiled CPU loops for the memory-bound passes of the fused step and the instruments
(numba; optional).

Eager PyTorch runs h = u_a + v_b, σ(h), σ′ and the scatter-add of ∂J/∂h onto W as one op
after another, each a full pass over the chunk's n×K activations: two gathers, an add, σ, a
multiply and two index_adds. These loops make it one pass forward (read the two rows of W,
write σ(h)) and one backward (re-form h from W, which stays in cache, multiply by σ′ and add
into both rows of ∂J/∂W): at fig3 (256-row chunks, K = 2048, one core) 70 µs against 216 µs
forward and 127 µs against 240 µs backward, with bitwise the same results as the torch ops
(same float32 operations in the same order; the scatter adds the rows in index order, as
index_add_ does).

The same idea serves the mse loss of a chunk (loss, hits and G in one pass) and the
instruments: the node energies' class sums, the spectra's component powers and per-node
reductions, and the weight motion's three sums.

Only for CPU tensors and the activations below; silu (which needs exp) and CUDA keep the
torch ops. Without numba (or with LI2_NO_KERNELS=1) everything falls back to those ops.
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


def _sigma_row(u, v, out, code):
    """out[j] ← σ(u[j] + v[j]) for one row (float32)."""
    if code == 0:
        for j in range(out.shape[0]):
            x = u[j] + v[j]
            out[j] = x * x
    elif code == 1:
        for j in range(out.shape[0]):
            x = u[j] + v[j]
            out[j] = x if x > 0 else np.float32(0.0)
    else:
        for j in range(out.shape[0]):
            x = u[j] + v[j]
            x = x if x > 0 else np.float32(0.0)
            out[j] = x * x


def _scatter_row(u, v, d, ga, gb, code):
    """ga[j] += d[j]·σ′(u[j] + v[j])/c and gb[j] += the same, for one row."""
    if code == 0:  # σ′/2 = h
        for j in range(d.shape[0]):
            s = d[j] * (u[j] + v[j])
            ga[j] += s
            gb[j] += s
    elif code == 1:  # σ′ = 1[h > 0]
        for j in range(d.shape[0]):
            s = d[j] if u[j] + v[j] > 0 else np.float32(0.0)
            ga[j] += s
            gb[j] += s
    else:  # σ′/2 = relu(h)
        for j in range(d.shape[0]):
            x = u[j] + v[j]
            s = d[j] * x if x > 0 else np.float32(0.0)
            ga[j] += s
            gb[j] += s


def _forward(w, ia, ib, f, code):
    for r in range(ia.shape[0]):
        _sigma_row(w[ia[r]], w[ib[r]], f[r], code)


def _backward(w, ia, ib, d, grad, code):
    for r in range(ia.shape[0]):
        _scatter_row(w[ia[r]], w[ib[r]], d[r], grad[ia[r]], grad[ib[r]], code)


def _round_bf16(b):
    """float32 bits → bfloat16 bits: nearest even, a NaN as 0x7FC0 (c10::BFloat16's rule)."""
    if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
        return np.uint16(0x7FC0)
    return np.uint16((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1)))
                     >> np.uint32(16))


def _forward_bf16(w, ia, ib, f_bits, row, code):
    """σ(h) rounded to bfloat16 (nearest even, as torch's cast) into f_bits (uint16); ``row``
    is a float32 scratch row, in L1 between the two loops."""
    row_bits = row.view(np.uint32)
    for r in range(ia.shape[0]):
        _sigma_row(w[ia[r]], w[ib[r]], row, code)
        out = f_bits[r]
        for j in range(row.shape[0]):
            out[j] = _round_bf16(row_bits[j])


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


def _mse_class(x, lab, c, inv_m, n_grad, scale, full, best, first, acc):
    """One class c of the batched mse pass over a run's rows, in place on its float32 outputs
    x: x[i] ← e = x + 1/M − [c = y_i], times scale[i] on the first ``n_grad`` rows; with
    ``full`` the running first largest output (best, first) and Σ e² (acc, float64)."""
    for i in range(x.shape[0]):
        v = x[i]
        if full and v > best[i]:  # strictly larger: the first index wins a tie
            best[i] = v
            first[i] = c
        e = v + inv_m
        if lab[i] == c:
            e = e - np.float32(1.0)
        if full:
            acc[i] += np.float64(e) * np.float64(e)
        x[i] = e * scale[i] if i < n_grad else e


def _mse_reset(rows, best, first, acc):
    for i in range(rows):
        best[i] = -np.inf
        first[i] = 0
        acc[i] = 0.0


def _mse_stats(stats, lab, first, acc):
    """stats (2, rows) ← each row's loss and hit (the first largest output is the label)."""
    for i in range(stats.shape[1]):
        stats[0, i] = acc[i]
        stats[1, i] = 1.0 if first[i] == lab[i] else 0.0


def _batched_mse(out, label, inv_m, n_grad, scale, stats, best, first, acc):
    """li2core.batched's mse pass over outputs kept as (R, M, rows): out[r, c, i] ← the residual
    e = out + 1/M − [c = y], times scale[r, i] on the first ``n_grad`` rows (G = ∂J/∂out);
    with a non-empty ``stats`` (R, 2, rows) also the row's Σ_c e² (summed in float64) and its
    hit. Classes are the outer loop so every inner loop runs along contiguous rows; best,
    first, acc: per-row scratch."""
    runs, m, rows = out.shape
    full = stats.shape[0] > 0
    for r in range(runs):
        _mse_reset(rows, best, first, acc)
        for c in range(m):
            _mse_class(out[r, c], label[r], c, inv_m, n_grad, scale[r], full, best, first, acc)
        if full:
            _mse_stats(stats[r], label[r], first, acc)


def _batched_mse_bf16(out_bits, label, inv_m, n_grad, scale, g_bits, stats, best, first,
                      acc, row):
    """_batched_mse on bfloat16 outputs (their bits), each class's row widened exactly into
    the float32 scratch ``row``; G goes to ``g_bits`` (R, M, n_grad) as bfloat16, rounded as
    torch's cast: no float32 copy of the outputs or of G."""
    runs, m, rows = out_bits.shape
    full = stats.shape[0] > 0
    x, x_bits = row[:rows], row.view(np.uint32)[:rows]
    for r in range(runs):
        _mse_reset(rows, best, first, acc)
        for c in range(m):
            o, g = out_bits[r, c], g_bits[r, c]
            for i in range(rows):
                x_bits[i] = np.uint32(o[i]) << np.uint32(16)
            _mse_class(x, label[r], c, inv_m, n_grad, scale[r], full, best, first, acc)
            for i in range(n_grad):
                g[i] = _round_bf16(x_bits[i])
        if full:
            _mse_stats(stats[r], label[r], first, acc)


def _class_sums(w, ia, ib, label, sums, code, block):
    """sums[label[r]] += σ(w[ia[r]] + w[ib[r]]) over the rows, ``block`` columns at a time so
    that the columns of w and sums being read and written stay in L2. σ is written out here
    rather than taken from _forward through a scratch row: that version (a strided block of w
    per call) measured 3–4× slower at fig3's 5041 rows."""
    k = w.shape[1]
    for lo in range(0, k, block):
        hi = min(k, lo + block)
        for r in range(ia.shape[0]):
            u, v, out = w[ia[r], lo:hi], w[ib[r], lo:hi], sums[label[r], lo:hi]
            if code == 0:
                for j in range(hi - lo):
                    x = u[j] + v[j]
                    out[j] += x * x
            elif code == 1:
                for j in range(hi - lo):
                    x = u[j] + v[j]
                    out[j] += x if x > 0 else np.float32(0.0)
            else:
                for j in range(hi - lo):
                    x = u[j] + v[j]
                    out[j] += x * x if x > 0 else np.float32(0.0)


def _component_power(coef, comp, power):
    """power[s, c] += coef[s, i]² for every basis function i of component c = comp[i] ≥ 0,
    in order of i (power zeroed by the caller)."""
    for s in range(coef.shape[0]):
        for i in range(coef.shape[1]):
            c = comp[i]
            if c < 0:
                continue
            x, out = coef[s, i], power[s, c]
            for j in range(x.shape[0]):
                out[j] += x[j] * x[j]


def _node_summary(pu, pv, norms, r0, spread, kth, active_frac, lock, conc, dominant, agree,
                  active, locked, counts, stats):
    """Per node j of (C, K) powers: the largest P_u + P_v and its first component, the
    normalised concentration (top/total − r0)/spread clipped to [0, 1], whether u's and v's
    first largest components agree, active (norm ≥ active_frac × the kth smallest norm) and
    locked (active, concentration ≥ lock), as li2core.instruments.spectra's torch ops compute
    them in float32; then counts[c] += 1 per locked node dominated by c and stats = (active
    nodes, Σ concentration over them (float64), locked nodes, locked nodes that agree)."""
    c_count, k = pu.shape
    top, total = pu[0] + pv[0], pu[0] + pv[0]
    top_u, top_v = pu[0].copy(), pv[0].copy()
    dom_u, dom_v = np.zeros(k, np.int64), np.zeros(k, np.int64)
    for j in range(k):
        dominant[j] = 0
    for c in range(1, c_count):
        for j in range(k):
            x = pu[c, j] + pv[c, j]
            total[j] += x
            if x > top[j]:
                top[j], dominant[j] = x, c
            if pu[c, j] > top_u[j]:
                top_u[j], dom_u[j] = pu[c, j], c
            if pv[c, j] > top_v[j]:
                top_v[j], dom_v[j] = pv[c, j], c
    floor = active_frac * np.sort(norms)[kth - 1]
    n_act, conc_sum, n_locked, n_agree = 0, 0.0, 0, 0
    for j in range(k):
        agree[j] = dom_u[j] == dom_v[j]
        x = np.float32(0.0)
        if total[j] > 0:
            x = (top[j] / max(total[j], np.float32(1e-30)) - r0) / spread
            if x < 0:
                x = np.float32(0.0)
            elif x > 1:
                x = np.float32(1.0)
        conc[j] = x
        active[j] = norms[j] >= floor
        locked[j] = active[j] and x >= lock
        if active[j]:
            n_act += 1
            conc_sum += np.float64(x)
        if locked[j]:
            n_locked += 1
            n_agree += agree[j]
            counts[dominant[j]] += 1
    stats[0], stats[1], stats[2], stats[3] = n_act, conc_sum, n_locked, n_agree


def _backward_bf16(w, ia, ib, d_bits, row, grad, code):
    """_backward with d given as bfloat16 bits (uint16): each row widened exactly into the
    float32 scratch ``row`` first."""
    row_bits = row.view(np.uint32)
    for r in range(ia.shape[0]):
        src = d_bits[r]
        for j in range(row.shape[0]):
            row_bits[j] = np.uint32(src[j]) << np.uint32(16)
        _scatter_row(w[ia[r]], w[ib[r]], row, grad[ia[r]], grad[ib[r]], code)


def _motion_sums(x, prev):
    """(Σx², Σprev², Σx·prev) in float64 (each product exact), then prev ← x."""
    sxx = spp = sxp = 0.0
    for i in range(x.shape[0]):
        a, b = np.float64(x[i]), np.float64(prev[i])
        sxx += a * a
        spp += b * b
        sxp += a * b
        prev[i] = x[i]
    return sxx, spp, sxp


if njit is not None:
    # the per-row helpers the loops call (numba compiles a caller lazily, at its first call,
    # and inlines these into it)
    _sigma_row, _scatter_row, _mse_class, _mse_reset, _mse_stats = (
        njit(inline="always", fastmath=False, boundscheck=False)(fn)
        for fn in (_sigma_row, _scatter_row, _mse_class, _mse_reset, _mse_stats))
    _round_bf16 = _jit(_round_bf16)
    _forward, _backward = _jit(_forward), _jit(_backward)
    # reassociation lets the three float64 sums vectorise (each product is exact)
    _motion_sums = njit(cache=True, fastmath={"reassoc"}, boundscheck=False,
                        nogil=True)(_motion_sums)
    _backward_bf16 = _jit(_backward_bf16)
    _forward_bf16, _mse_rows = _jit(_forward_bf16), _jit(_mse_rows)
    _batched_mse, _batched_mse_bf16 = _jit(_batched_mse), _jit(_batched_mse_bf16)
    _class_sums, _component_power = _jit(_class_sums), _jit(_component_power)
    _node_summary = _jit(_node_summary)


def available() -> bool:
    """Whether the loops are compiled here: numba importable and LI2_NO_KERNELS not 1."""
    return njit is not None and os.environ.get("LI2_NO_KERNELS") != "1"


def usable(device: torch.device, activation: str) -> bool:
    """Whether the compiled loops serve this run (CPU, a supported σ, numba importable)."""
    return device.type == "cpu" and activation in CODES and available()


def warm_up() -> bool:
    """Compile (or load from numba's cache) every loop on tiny blocks of the argument types
    real calls use, e.g. in a server's preloaded process, so a run does not pay it; False
    without numba."""
    if not available():
        return False
    w, d = torch.zeros(4, 8), torch.zeros(2, 8)
    idx, lab = torch.zeros(2, dtype=torch.int64), torch.zeros(2, dtype=torch.int64)
    wn, ia, ib = w.numpy(), idx.numpy(), (idx + 2).numpy()
    for act in CODES:
        hidden_forward(wn, ia, ib, d.numpy(), act)
        hidden_backward(wn, ia, ib, d.numpy(), np.zeros((4, 8), np.float32), act)
        hidden_forward_bf16(wn, ia, ib, np.zeros((2, 8), np.uint16), np.zeros(8, np.float32),
                            act)
        hidden_backward_bf16(wn, ia, ib, np.zeros((2, 8), np.uint16), np.zeros(8, np.float32),
                             np.zeros((4, 8), np.float32), act)
        class_sums(w, idx, idx + 2, lab, 3, act)
    out3, scr = np.zeros((1, 3, 2), np.float32), batched_scratch(2)
    batched_mse(out3, lab[None].numpy(), 3, 1, np.ones((1, 1), np.float32), None, scr)
    batched_mse(out3, lab[None].numpy(), 3, 1, np.ones((1, 1), np.float32),
                np.zeros((1, 2, 2), np.float32), scr)
    for stats in (None, np.zeros((1, 2, 2), np.float32)):
        batched_mse_bf16(np.zeros((1, 3, 2), np.uint16), lab[None].numpy(), 3, 1,
                         np.ones((1, 1), np.float32), np.zeros((1, 3, 1), np.uint16), stats,
                         scr)
    mse_rows(np.zeros((2, 4), np.float32), 3, lab.numpy(), np.zeros((2, 3), np.float32), 1.0,
             True, np.zeros(2))
    component_power(torch.zeros(2, 3, 8), np.array([-1, 0, 0]), 1)
    motion_update(w, w.clone())
    node_summary(torch.zeros(2, 8), torch.zeros(2, 8), torch.ones(8), 0.1, 8, 0.2, 0.75)
    return True


def bf16_bits(x: torch.Tensor) -> np.ndarray:
    """A bfloat16 tensor's storage as a uint16 numpy array (no copy): how the loops read and
    write bfloat16."""
    return x.view(torch.int16).numpy().view(np.uint16)


def hidden_forward(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, f: np.ndarray,
                   activation: str) -> None:
    """f[r] ← σ(w[ia[r]] + w[ib[r]]) for the rows of the block (float32, C-contiguous)."""
    _forward(w, ia, ib, f, CODES[activation])


def hidden_forward_bf16(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, f_bits: np.ndarray,
                        row: np.ndarray, activation: str) -> None:
    """As hidden_forward, written as bfloat16 (the bits, uint16) without a float32 block;
    ``row``: a float32 scratch array of K entries."""
    _forward_bf16(w, ia, ib, f_bits, row, CODES[activation])


def hidden_backward_bf16(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, d_bits: np.ndarray,
                         row: np.ndarray, grad: np.ndarray, activation: str) -> None:
    """As hidden_backward with d in bfloat16 (its bits, uint16); ``row``: float32 scratch (K)."""
    _backward_bf16(w, ia, ib, d_bits, row, grad, CODES[activation])


def hidden_backward(w: np.ndarray, ia: np.ndarray, ib: np.ndarray, d: np.ndarray,
                    grad: np.ndarray, activation: str) -> None:
    """grad[ia[r]] += d[r]⊙σ′(h_r)/c and grad[ib[r]] += the same, h_r = w[ia[r]] + w[ib[r]],
    c = li2core.fused.SIGMA_PRIME_SCALE[activation], row by row in index order."""
    _backward(w, ia, ib, d, grad, CODES[activation])


def mse_rows(out: np.ndarray, m: int, label: np.ndarray, target: np.ndarray, scale: float,
             residual: bool, sums: np.ndarray) -> None:
    """The mse loss of a block of outputs (first ``m`` columns of ``out``) against
    ``target`` = e_y − 1/M: adds Σ‖out − t‖² and the argmax hits to ``sums`` (float64, 2) and,
    with ``residual``, leaves (out − t)·scale in ``out``. One pass instead of six torch ops."""
    _mse_rows(out, m, label, target, np.float32(scale), residual, sums)


def batched_mse(out: np.ndarray, label: np.ndarray, m: int, n_grad: int, scale: np.ndarray,
                stats: np.ndarray | None, scratch: tuple) -> None:
    """The batched engine's mse pass (see _batched_mse): residual, G on the first ``n_grad``
    rows, and with ``stats`` the per-row loss and hit; ``scratch`` from batched_scratch."""
    _batched_mse(out, label, np.float32(1.0 / m), n_grad, scale,
                 stats if stats is not None else _NO_STATS, *scratch[:3])


def batched_mse_bf16(out_bits: np.ndarray, label: np.ndarray, m: int, n_grad: int,
                     scale: np.ndarray, g_bits: np.ndarray, stats: np.ndarray | None,
                     scratch: tuple) -> None:
    """batched_mse on bfloat16 outputs (uint16 bits), writing G as bfloat16 into ``g_bits``
    (R, M, n_grad); ``scratch`` from batched_scratch."""
    _batched_mse_bf16(out_bits, label, np.float32(1.0 / m), n_grad, scale, g_bits,
                      stats if stats is not None else _NO_STATS, *scratch)


_NO_STATS = np.zeros((0, 2, 0), np.float32)


def batched_scratch(rows: int) -> tuple:
    """Per-row scratch arrays for batched_mse(_bf16) over up to ``rows`` rows."""
    return (np.empty(rows, np.float32), np.empty(rows, np.int64), np.empty(rows, np.float64),
            np.empty(rows, np.float32))


# -- instruments (li2core.instruments) -------------------------------------------------------
CLASS_SUM_BLOCK = 512  # columns per pass of class_sums: w's and the sums' columns stay in L2


def instruments_usable(x: torch.Tensor) -> bool:
    """Whether the instruments' loops serve tensors like ``x`` (CPU float32, numba present)."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and available()


def class_sums(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, label: torch.Tensor,
               m: int, activation: str) -> torch.Tensor:
    """(M, K) per-class sums Σ_{r: label r = c} σ(w[a_r] + w[b_r]) (b already shifted by M),
    float32 accumulated row by row, as index_add_ does."""
    sums = torch.zeros(m, w.shape[1], dtype=w.dtype)
    _class_sums(w.contiguous().numpy(), a.numpy(), b.numpy(), label.numpy(), sums.numpy(),
                CODES[activation], CLASS_SUM_BLOCK)
    return sums


def component_power(coef: torch.Tensor, comp: np.ndarray, count: int) -> torch.Tensor:
    """(S, C, K) powers Σ_{i in c} coef[s, i]² from (S, M, K) coefficients; ``comp`` (M,) the
    component of each basis function, −1 for the trivial one (left out)."""
    power = torch.zeros(coef.shape[0], count, coef.shape[2], dtype=coef.dtype)
    _component_power(coef.contiguous().numpy(), comp, power.numpy())
    return power


def node_summary(pu: torch.Tensor, pv: torch.Tensor, norms: torch.Tensor, r0: float, kth: int,
                 active_frac: float, lock: float) -> tuple:
    """(concentration, dominant, agree, active, locked, counts, stats) per node from two (C, K)
    power arrays (C ≥ 1) and the (K,) node norms (see _node_summary): what summarise_spectra,
    coverage_stats and nodes_per_component compute, in one pass instead of ~20 torch ops."""
    c_count, k = pu.shape
    conc = torch.empty(k, dtype=pu.dtype)
    dominant = torch.empty(k, dtype=torch.int64)
    agree, active, locked = (torch.empty(k, dtype=torch.bool) for _ in range(3))
    counts, stats = np.zeros(c_count, np.int64), np.zeros(4)
    _node_summary(pu.contiguous().numpy(), pv.contiguous().numpy(),
                  norms.contiguous().numpy(), np.float32(r0), np.float32(1.0 - r0), kth,
                  np.float32(active_frac), np.float32(lock), conc.numpy(), dominant.numpy(),
                  agree.numpy(), active.numpy(), locked.numpy(), counts, stats)
    return conc, dominant, agree, active, locked, counts, stats


def motion_update(x: torch.Tensor, prev: torch.Tensor) -> float:
    """1 − cos(x, prev) from float64 sums in one pass, and prev ← x (contiguous, same shape).
    In float64 the 1 − ⟨·,·⟩ form keeps ~1e-9 relative accuracy at the 1e-7 angles of one
    small step, where float32 would cancel catastrophically."""
    sxx, spp, sxp = _motion_sums(x.view(-1).numpy(), prev.view(-1).numpy())
    if sxx == 0 or spp == 0:
        return 0.0
    return max(0.0, 1.0 - sxp / (sxx * spp) ** 0.5)
