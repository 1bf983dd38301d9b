"""One training step of Ŷ = σ(XW)V as a fused, chunked forward + hand-written backward.

The rows of the table are processed in chunks small enough that a chunk's n×K hidden
activations stay in the core's L2 cache: per chunk, gather h = u_a + v_b, σ(h), out = σ(h)V,
the loss and its gradient G = ∂J/∂out, dV += σ(h)ᵀG, dh = (G Vᵀ) ⊙ σ′(h), and the scatter-add
of dh onto rows a and M + b of dW. Nothing of size n×K is kept between chunks, all buffers are
allocated once, and the three n·K·M products may run in bfloat16 (``precision="bf16"``) while
weights, gradients, loss and metrics stay float32. Checked against autograd in the tests.
In bf16 with the mse loss and the compiled loops (_sweep_lo) the forward pass is not chunked:
σ(h) of every row of a set is kept in bf16 and multiplied by V in one product, which the
CPU's bf16 GEMM runs faster than chunks; the backward stays chunked.

For ``mse`` the outputs are taken with V centred over classes, out = σ(h)·V·(I − 11ᵀ/M): the
loss's centring moved onto the small matrix. G's rows then sum to zero, so dV needs no centring.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from . import kernels
from .model import mse_target

SIGMA_PRIME_SCALE = {"square": 2.0, "relu_square": 2.0, "relu": 1.0, "silu": 1.0}
# Measured at fig3 (K=2048, one core, 1 MiB L2; benchmarks/README.md): chunks whose σ(h) is
# about twice the L2 size ran fastest (256 rows: bf16 28 steps/s vs 25 at 128 or 512 rows,
# fp32 flat within 5%): shorter chunks give the matrix products a poor shape, longer ones
# spill h, σ(h) and dh to L3 between the passes of a chunk.
CHUNK_L2_MULTIPLE = 2
MIN_CHUNK, MAX_CHUNK = 64, 2048
# float32 σ(h)·V runs 1.3–1.7× faster when V's M columns are padded with zeros to a multiple
# of 16 (fig3's 71 → 80: 63 → 86 GFLOP/s counting only the real columns, one core); the
# backward products are flat or slower padded, so only the forward pass pads
FORWARD_PAD = 16


@functools.lru_cache(maxsize=1)
def l2_cache_bytes() -> int:
    """The per-core L2 size from sysfs (1 MiB if it cannot be read)."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
        scale = {"K": 1024, "M": 1024**2}.get(text[-1], 1)
        return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        return 1024**2


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX-BF16 or AVX512-BF16); without
    them torch emulates bf16 matrix products, slower than float32."""
    if torch.backends.cpu.get_cpu_capability() == "AVX512_AMX":  # sapphire rapids and later
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f" {flag}" in flags for flag in ("amx_bf16", "avx512_bf16"))


def bf16_warning(precision: str, device: str) -> str | None:
    """A sentence for the user when ``precision=bf16`` will run without bf16 units, else None."""
    if precision != "bf16" or device == "cuda" or cpu_has_bf16_units():
        return None
    if device == "auto" and torch.cuda.is_available():
        return None
    return ("precision=bf16 on a CPU without bf16 units (no AMX-BF16 or AVX512-BF16): the "
            "products are emulated and run slower than fp32; use precision=fp32 here")


def activate_into(h: torch.Tensor, f: torch.Tensor, scratch: torch.Tensor,
                  activation: str) -> torch.Tensor:
    """f ← σ(h) for a block of any shape; silu leaves sigmoid(h) in ``scratch`` for σ′."""
    if activation == "square":
        return torch.square(h, out=f)
    if activation == "relu":
        return torch.clamp_min(h, 0.0, out=f)
    if activation == "relu_square":
        return torch.clamp_min(h, 0.0, out=f).square_()
    if activation == "silu":
        torch.sigmoid(h, out=scratch)
        return torch.mul(h, scratch, out=f)
    raise ValueError(f"activation: unknown {activation!r}")


def mul_sigma_prime_(d: torch.Tensor, h: torch.Tensor, f: torch.Tensor, scratch: torch.Tensor,
                     activation: str) -> torch.Tensor:
    """d ← d ⊙ σ′(h) / SIGMA_PRIME_SCALE (the constant goes on V) after activate_into;
    silu overwrites ``f``: use σ(h) before calling this."""
    if activation == "square":
        return d.mul_(h)  # σ′ = 2h
    if activation == "relu":
        return d.mul_(torch.sign(f, out=scratch))
    if activation == "relu_square":
        return d.mul_(torch.clamp_min(h, 0.0, out=scratch))  # σ′ = 2·relu(h)
    if activation == "silu":  # σ′ = s·(1 + h − σ(h)), s = sigmoid(h) left in scratch
        return d.mul_(torch.sub(h, f, out=f).add_(1.0).mul_(scratch))
    raise ValueError(f"activation: unknown {activation!r}")


def chunk_rows(k: int, device: torch.device, n: int) -> int:
    """Rows per chunk from the L2 size on a CPU; a GPU takes all rows at once (it wants
    large kernels and has no per-core cache to fit)."""
    if device.type != "cpu":
        return n
    rows = CHUNK_L2_MULTIPLE * l2_cache_bytes() // (k * 4)
    rows = max(MIN_CHUNK, min(MAX_CHUNK, rows)) // 16 * 16
    return min(rows, n)


class FusedStep:
    """Loss, gradients and metrics of one run over fixed train and test rows, chunk by chunk.

    ``step(w, v)`` fills ``grad_w`` (and ``grad_v`` for a trained top layer) and returns the
    mean train loss and accuracy; ``evaluate(w, v)`` the test set's. A ridge top layer is
    solved first (over all training rows) and written into ``v``.
    """

    def __init__(self, m: int, k: int, activation: str, loss: str, ridge: bool,
                 train_rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                 test_rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                 precision: str = "fp32", ridge_reg: float = 1e-3, chunk: int | None = None,
                 compiled: bool = True):
        a, b, y = train_rows
        self.device = dev = a.device
        self.m, self.k, self.activation, self.loss, self.ridge = m, k, activation, loss, ridge
        self.ridge_reg = ridge_reg
        self.low = torch.bfloat16 if precision == "bf16" else None
        if self.low is not None and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
            # device=auto landed on such a GPU (device=cuda is refused by RunConfig already)
            raise ValueError("precision: bf16 on a CUDA device without bfloat16 support")
        self.n = n = int(a.numel())
        self.n_test = int(test_rows[0].numel())
        self.chunk = c = chunk or chunk_rows(k, dev, max(n, self.n_test))
        # the two gathered rows of each table row, as one index list per set: [a | M + b]
        self.sets = {name: (torch.stack([ra, rb + m]), ry,
                            mse_target(ry, m) if loss == "mse" else None)
                     for name, (ra, rb, ry) in (("train", train_rows), ("test", test_rows))}
        # gather, σ, σ′ and the scatter-add as compiled loops (li2core.kernels) where they
        # serve: the same float32 results in one pass each way instead of seven torch ops
        self.compiled = compiled and kernels.usable(dev, activation)
        self.rows_np = ({name: (idx[0].numpy(), idx[1].numpy())
                         for name, (idx, _, _) in self.sets.items()} if self.compiled else {})
        self.row_np = np.empty(k, np.float32)  # the bf16 loop's scratch row
        # labels and targets for the compiled mse loss (cross entropy keeps the torch ops)
        self.mse_np = ({name: (y.numpy(), t.numpy()) for name, (_, y, t) in self.sets.items()}
                       if self.compiled and loss == "mse" else {})
        self.sums64 = torch.zeros(2, dtype=torch.float64)
        f32 = dict(dtype=torch.float32, device=dev)
        self.h, self.f, self.d = (torch.empty(c, k, **f32) for _ in range(3))
        self.scratch = torch.empty(c, k, **f32)
        padded = self.low is None and dev.type == "cpu"
        self.m_fwd = -(-m // FORWARD_PAD) * FORWARD_PAD if padded else m
        self.out = torch.empty(c, self.m_fwd, **f32)  # columns ≥ M stay 0 (V's zero padding)
        self.grad_w = torch.zeros(2 * m, k, **f32)
        # dV accumulates as dVᵀ += Gᵀσ(h) into its own contiguous (M, K) buffer and is copied
        # into V's layout after the sweep: accumulating into a transposed view of grad_v ran
        # at 45 GFLOP/s against 80 (fig3's 256-row chunks, one core), and grad_v itself must
        # stay contiguous, as torch's fused Adam kernel silently misreads a strided gradient
        self.grad_v = torch.zeros(k, m, **f32)
        self.grad_vt = torch.zeros(m, k, **f32)
        self.v_used = torch.zeros(k, self.m_fwd, **f32)  # V centred (mse) or V, zero-padded
        self.vt_back = torch.empty(m, k, **f32)  # σ′'s constant × V_usedᵀ, for dF = G·Vᵀ
        self.sums = {name: torch.zeros(2, **f32) for name in self.sets}  # Σ loss, hits
        self.mse_t: dict = {}  # set → (labels, G's scale) where _sweep_lo serves (bf16, mse)
        if self.low is not None:
            lo = dict(dtype=self.low, device=dev)
            # every training row's σ(h) and G kept in bf16 (2·n·(K + M) bytes), so dV is one
            # product over all rows after the sweep instead of one per chunk
            rows_lo = max(n, c)
            # the compiled mse path (_sweep_lo) gives every row of a set its σ(h) in f_lo and
            # keeps the outputs and G transposed, (M, rows), flat buffers viewed per set
            whole = self.compiled and loss == "mse"
            rows_f = max(rows_lo, self.n_test) if whole else rows_lo
            self.f_lo, self.g_lo = torch.empty(rows_f, k, **lo), torch.empty(rows_lo, m, **lo)
            flat = m * rows_f if whole else 0
            self.out_t_lo, self.g_t_lo = torch.empty(flat, **lo), torch.empty(flat, **lo)
            self.vt_fwd_lo = torch.empty(m, k, **lo)  # V_usedᵀ: outᵀ = V_usedᵀ·σ(h)ᵀ
            self.dvt_lo = torch.empty(m, k, **lo)
            self.stats = np.zeros((1, 2, rows_f if whole else 0), np.float32)
            self.mse_scratch = kernels.batched_scratch(rows_f) if whole else ()
            # per set: labels and G's scale 2/n per row, as the batched mse pass reads them
            self.mse_t = {name: (y[None].numpy(), np.full((1, int(y.numel())),
                                                          2.0 / max(int(y.numel()), 1),
                                                          np.float32))
                          for name, (_, y, _) in self.sets.items()} if whole else {}
            self.v_lo, self.vt_lo = torch.empty(k, m, **lo), torch.empty(m, k, **lo)
            self.d_lo = torch.empty(c, k, **lo)
        # with ``collect`` set, a step also keeps what instruments read of the forward pass:
        # outputs (n, M), class sums YᵀF (M, K) and column sums 𝟙ᵀF (K,) of σ(h)
        self.collect = False
        self.train_out = torch.empty(0, m, **f32)
        self.class_sums, self.col_sums = torch.empty(m, k, **f32), torch.empty(k, **f32)
        # numpy views of the buffers the compiled loops read and write (bfloat16 as its bits)
        self.np = {} if not self.compiled else {
            "f": self.f.numpy(), "d": self.d.numpy(), "out": self.out.numpy(),
            "grad_w": self.grad_w.numpy(), "sums": self.sums64.numpy(),
            **({"f_lo": kernels.bf16_bits(self.f_lo), "d_lo": kernels.bf16_bits(self.d_lo),
                "out_t": kernels.bf16_bits(self.out_t_lo), "g_t": kernels.bf16_bits(self.g_t_lo)}
               if self.low else {})}

    # -- public ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, w: torch.Tensor, v: torch.Tensor, backward: bool = True) -> torch.Tensor:
        """(2,) float32 [mean train loss, train accuracy] at (w, v); with ``backward`` the
        gradients of the mean train loss land in ``grad_w`` / ``grad_v``."""
        if self.ridge:
            v.copy_(self._ridge_solve(w))
        self._prepare(v)
        if backward:
            self.grad_w.zero_()
            self.grad_vt.zero_()
        if self.collect:
            if self.train_out.shape[0] != self.n:
                self.train_out = torch.empty(self.n, self.m, device=self.device)
            self.class_sums.zero_()
            self.col_sums.zero_()
        return self._sweep("train", w, backward)

    def forward_parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(outputs, class sums, column sums) of the last ``collect`` step (see __init__)."""
        return self.train_out, self.class_sums, self.col_sums

    @torch.no_grad()
    def evaluate(self, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(2,) float32 [mean test loss, test accuracy] with the V of the last ``step``."""
        return self._sweep("test", w, False)

    # -- internals ---------------------------------------------------------------------------
    def _prepare(self, v: torch.Tensor) -> None:
        used = self.v_used[:, :self.m]
        if self.loss == "mse":
            torch.sub(v, v.mean(dim=1, keepdim=True), out=used)
        else:
            used.copy_(v)
        torch.mul(used.T, SIGMA_PRIME_SCALE[self.activation], out=self.vt_back)
        if self.low is not None:
            self.v_lo.copy_(used)
            self.vt_lo.copy_(self.vt_back)
            if self.mse_t:
                self.vt_fwd_lo.copy_(used.T)

    def _loop_rows(self, name: str, w_np, lo: int, hi: int) -> tuple | None:
        """(W, rows' a indices, rows' M + b indices) of rows lo:hi of set ``name``, numpy, for
        li2core.kernels; None where the torch ops run."""
        if not self.compiled:
            return None
        ia, ib = self.rows_np[name]
        return w_np, ia[lo:hi], ib[lo:hi]

    def _hidden(self, w: torch.Tensor, idx: torch.Tensor, rows: int,
                rows_np: tuple | None = None) -> tuple:
        """h and σ(h) of ``rows`` table rows, into the chunk buffers; with the compiled loop
        (``rows_np`` = W and the rows' two index arrays, numpy) only σ(h), and h is None."""
        h, f = self.h[:rows], self.f[:rows]
        if rows_np is not None:
            kernels.hidden_forward(*rows_np, self.np["f"][:rows], self.activation)
            return None, f
        torch.index_select(w, 0, idx[0], out=h)
        torch.index_select(w, 0, idx[1], out=f)  # f's buffer as scratch
        h.add_(f)
        activate_into(h, f, self.scratch[:rows], self.activation)
        return h, f

    def _sweep(self, name: str, w: torch.Tensor, backward: bool) -> torch.Tensor:
        if self.mse_t and not (self.collect and name == "train"):
            return self._sweep_lo(name, w, backward)
        idx_all, y_all, t_all = self.sets[name]
        n = idx_all.shape[1]
        sums = self.sums[name]
        sums.zero_()
        self.sums64.zero_()
        scale = (2.0 if self.loss == "mse" else 1.0) / max(n, 1)
        w_np = w.numpy() if self.compiled else None  # numpy views made once, sliced per chunk
        for lo in range(0, n, self.chunk):
            hi = min(n, lo + self.chunk)
            rows = hi - lo
            rows_np = self._loop_rows(name, w_np, lo, hi)
            collect = self.collect and name == "train"
            if self.low is None:
                h, f = self._hidden(w, idx_all[:, lo:hi], rows, rows_np)
                out = torch.mm(f, self.v_used, out=self.out[:rows])[:, :self.m]
            else:
                # rows dV reads after the sweep keep their place; others reuse the start
                at = lo if backward and not self.ridge else 0
                f_lo = self.f_lo[at:at + rows]
                if rows_np is not None and not collect:  # σ(h) straight into bfloat16
                    h = f = None
                    kernels.hidden_forward_bf16(*rows_np, self.np["f_lo"][at:at + rows],
                                                self.row_np, self.activation)
                else:
                    h, f = self._hidden(w, idx_all[:, lo:hi], rows, rows_np)
                    f_lo.copy_(f)
                out = self.out[:rows]
                out.copy_(f_lo @ self.v_lo)
            y = y_all[lo:hi]
            if collect:
                self.train_out[lo:hi] = out
                self.class_sums.index_add_(0, y, f)
                self.col_sums.add_(f.sum(dim=0))
            if name in self.mse_np:  # loss, hits and G = ∂J/∂out in one compiled pass
                y_np, t_np = self.mse_np[name]
                kernels.mse_rows(self.np["out"][:rows], self.m, y_np[lo:hi], t_np[lo:hi],
                                 scale, backward, self.np["sums"])
            else:
                self._loss_and_residual(out, y, None if t_all is None else t_all[lo:hi], sums)
                if backward:
                    out.mul_(scale)  # G = ∂J/∂out
            if not backward:
                continue
            self._backward(w, idx_all[:, lo:hi], h, f, out, lo, hi, rows_np)
        if backward and not self.ridge:
            if self.low is not None:
                # dVᵀ = Gᵀσ(h) over all training rows: one bf16 product (Gᵀσ(h) ran at 160
                # GFLOP/s against σ(h)ᵀG's 130 at fig3)
                self.grad_vt.copy_(self.g_lo[:n].T @ self.f_lo[:n])
            self.grad_v.copy_(self.grad_vt.T)
        if name in self.mse_np:
            sums.copy_(self.sums64)
        return sums / max(n, 1)

    def _sweep_lo(self, name: str, w: torch.Tensor, backward: bool) -> torch.Tensor:
        """_sweep in bf16 with the compiled loops and the mse loss: σ(h) of every row of the
        set into f_lo in one pass; the outputs as one product over all rows, transposed,
        outᵀ = V_usedᵀ·σ(h)ᵀ (oneDNN's bf16 GEMM at fig3, one core: 169 GFLOP/s against
        113–115 for 256-row chunks of σ(h)·V and 130–153 for all rows at once); the loss,
        hits and G (as Gᵀ, bf16) in the batched engine's mse pass; dVᵀ = Gᵀσ(h) from the
        contiguous Gᵀ; the backward chunk by chunk, each chunk's G·Vᵀ in L2 for its loop."""
        idx_all = self.sets[name][0]
        n = idx_all.shape[1]
        ia, ib = self.rows_np[name]
        w_np = w.numpy()
        kernels.hidden_forward_bf16(w_np, ia, ib, self.np["f_lo"][:n], self.row_np,
                                    self.activation)
        out_t = self.out_t_lo[:self.m * n].view(self.m, n)
        torch.mm(self.vt_fwd_lo, self.f_lo[:n].T, out=out_t)
        labels, scale = self.mse_t[name]
        stats = self.stats[:, :, :n]
        n_grad = n if backward else 0
        kernels.batched_mse_bf16(self.np["out_t"][:self.m * n].reshape(1, self.m, n), labels,
                                 self.m, n_grad, scale,
                                 self.np["g_t"][:self.m * n_grad].reshape(1, self.m, n_grad),
                                 stats, self.mse_scratch)
        sums = self.sums[name]
        sums[0], sums[1] = float(stats[0, 0].sum(dtype=np.float64)), float(stats[0, 1].sum())
        if backward:
            g_t = self.g_t_lo[:self.m * n].view(self.m, n)
            for lo in range(0, n, self.chunk):
                hi = min(n, lo + self.chunk)
                torch.mm(g_t[:, lo:hi].T, self.vt_lo, out=self.d_lo[:hi - lo])
                kernels.hidden_backward_bf16(w_np, ia[lo:hi], ib[lo:hi], self.np["d_lo"][:hi - lo],
                                             self.row_np, self.np["grad_w"], self.activation)
            if not self.ridge:
                self.grad_vt.copy_(torch.mm(g_t, self.f_lo[:n], out=self.dvt_lo))
                self.grad_v.copy_(self.grad_vt.T)
        return sums / max(n, 1)

    def _loss_and_residual(self, out: torch.Tensor, y: torch.Tensor,
                           target: torch.Tensor | None, sums: torch.Tensor) -> None:
        """Add this chunk's summed loss and hits to ``sums``; leave the per-row residual in
        ``out``: out − target (mse) or softmax − onehot (cross entropy)."""
        hits = (out.argmax(dim=1) == y).sum()
        if target is not None:
            out.sub_(target)
            loss = torch.linalg.vector_norm(out).square()
        else:
            lse = torch.logsumexp(out, dim=1, keepdim=True)
            loss = (lse.squeeze(1) - out.gather(1, y[:, None]).squeeze(1)).sum()
            out.sub_(lse).exp_()
            out.scatter_add_(1, y[:, None], torch.full_like(lse, -1.0))
        sums[0] += loss
        sums[1] += hits

    def _backward(self, w, idx, h, f, g, lo: int, hi: int, rows_np: tuple | None) -> None:
        rows = hi - lo
        d = self.d[:rows]
        if self.low is None:
            if not self.ridge:
                self.grad_vt.addmm_(g.T, f)
            torch.mm(g, self.vt_back, out=d)
        else:
            g_lo = self.g_lo[lo:hi]
            g_lo.copy_(g)
            if rows_np is not None:  # the loop reads the bfloat16 product: no float32 copy
                torch.mm(g_lo, self.vt_lo, out=self.d_lo[:rows])
                kernels.hidden_backward_bf16(*rows_np, self.np["d_lo"][:rows], self.row_np,
                                             self.np["grad_w"], self.activation)
                return
            d.copy_(g_lo @ self.vt_lo)
        if rows_np is not None:
            kernels.hidden_backward(*rows_np, self.np["d"][:rows], self.np["grad_w"],
                                    self.activation)
            return
        mul_sigma_prime_(d, h, f, self.scratch[:rows], self.activation)
        self.grad_w.index_add_(0, idx[0], d)
        self.grad_w.index_add_(0, idx[1], d)

    def _ridge_solve(self, w: torch.Tensor) -> torch.Tensor:
        """V* = (FᵀF + reg·I)⁻¹ Fᵀ(Y − 1/M) over the training rows (li2core.model), with FᵀF
        and FᵀT summed chunk by chunk."""
        idx_all, y_all, _ = self.sets["train"]
        gram = torch.zeros(self.k, self.k, device=self.device)
        rhs = torch.zeros(self.k, self.m, device=self.device)
        target = mse_target(y_all, self.m)
        w_np = w.numpy() if self.compiled else None
        for lo in range(0, self.n, self.chunk):
            hi = min(self.n, lo + self.chunk)
            _, f = self._hidden(w, idx_all[:, lo:hi], hi - lo,
                                self._loop_rows("train", w_np, lo, hi))
            gram.addmm_(f.T, f)
            rhs.addmm_(f.T, target[lo:hi])
        gram.diagonal().add_(self.ridge_reg)
        return torch.linalg.solve(gram, rhs)
