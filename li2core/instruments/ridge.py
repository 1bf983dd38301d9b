"""Top-layer convergence (ridge gap) and feature decorrelation (diagonality) — li2-theory §3-4.

Both need the K×K Gram F̃ᵀF̃ of sample-centred features F̃ = P⊥F (or the n×n one when K > n),
the most expensive thing any instrument computes.
"""

from __future__ import annotations

import torch

RIDGE_FLOOR = 1e-3  # added to η so the solve stays defined at η_code = 0 (the code's ridge reg)
GRAM_BLOCKS = 6  # row blocks of the n×n kernel: fewer waste products, more cost copies
DIAG_SUBSET = 512  # nodes sampled for the diagonality ratio when the full K×K Gram is not formed
# a refinement step this small (relative) leaves the next below float32 rounding: _solve_spd
# stops there (fig3: the first step is 2e-7–2e-6, the gap then agrees with a float64 solve
# to 1e-8)
REFINE_TOL = 1e-5


def paper_eta(config, n_train: int) -> float:
    """η_paper ≈ n·η_code/2: the code's mean loss (no ½) with coupled decay η_code has the
    stationary top layer (FᵀF + n·η_code/2·I)⁻¹FᵀT. Decoupled decay (adamw, muon) is read the
    same way, an approximation."""
    return n_train * config.weight_decay / 2.0 + RIDGE_FLOOR


def _solve_spd(a: torch.Tensor, rhs: torch.Tensor, refine: int = 2) -> torch.Tensor:
    """a⁻¹ rhs for symmetric positive definite a (float32 in, float64 out).

    Cholesky in float32 plus up to ``refine`` steps of iterative refinement with float64
    residuals (accurate to ~cond(a)·1e-7 per step, 3× cheaper than a float64 factorisation),
    stopping once a step is below REFINE_TOL; float64
    throughout if the float32 factorisation breaks down.
    """
    chol, info = torch.linalg.cholesky_ex(a)
    a64, r64 = a.double(), rhs.double()
    if int(info) != 0:
        chol64, info64 = torch.linalg.cholesky_ex(a64)
        if int(info64) == 0:
            return torch.cholesky_solve(r64, chol64)
        return torch.linalg.lstsq(a64, r64).solution
    x = torch.cholesky_solve(rhs, chol).double()
    for _ in range(refine):
        delta = torch.cholesky_solve((r64 - a64 @ x).to(a.dtype), chol).double()
        x += delta
        if float(delta.norm()) <= REFINE_TOL * float(x.norm()):
            break
    return x


def ridge_and_diagonality(f: torch.Tensor, label: torch.Tensor, v: torch.Tensor, eta: float,
                          subset: torch.Tensor | None = None) -> tuple[float, float]:
    """(‖V P_M − V*‖/‖V*‖, mean|offdiag F̃ᵀF̃| / mean|diag F̃ᵀF̃|).

    V* = (F̃ᵀF̃ + ηI)⁻¹F̃ᵀỸ (primal, K ≤ n) = F̃ᵀ(F̃F̃ᵀ + ηI)⁻¹Ỹ (dual, K > n). V* has zero class
    mean (Ỹ𝟙 = 0) and the loss is blind to V's class mean, so V is compared after centring
    over classes. ``subset``: node indices for the diagonality estimate when K > n.
    """
    n, k = f.shape
    m = v.shape[1]
    ft = f - f.mean(dim=0, keepdim=True)
    yt = torch.nn.functional.one_hot(label, m).to(f.dtype)
    yt -= yt.mean(dim=0, keepdim=True)
    if k <= n:
        gram = ft.T @ ft
        diag = _diag_ratio(gram)
        gram.diagonal().add_(eta)
        v_star = _solve_spd(gram, ft.T @ yt)
    else:
        kern = _gram_rows(ft)
        kern.diagonal().add_(eta)
        # (xᵀF̃)ᵀ, not F̃ᵀx: the product with F̃ transposed ran 8× slower (fig3)
        v_star = (_solve_spd(kern, yt).T @ ft.double()).T
        sub = ft if subset is None else ft[:, subset]
        diag = _diag_ratio(sub.T @ sub)
    vc = v.double() - v.double().mean(dim=1, keepdim=True)
    den = float(v_star.norm())
    gap = float((vc - v_star).norm()) / den if den > 0 else float("nan")
    return gap, diag


def _gram_rows(x: torch.Tensor, blocks: int = GRAM_BLOCKS) -> torch.Tensor:
    """x xᵀ (n, n) with each off-diagonal block computed once and mirrored: (blocks + 1) /
    (2·blocks) of the products of one x @ x.T (fig3: n = 2016, K = 2048: 221 → ~150 ms)."""
    n = x.shape[0]
    out = torch.empty(n, n, dtype=x.dtype, device=x.device)
    step = -(-n // blocks)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        torch.mm(x[lo:hi], x[:hi].T, out=out[lo:hi, :hi])
        out[:lo, lo:hi] = out[lo:hi, :lo].T
    return out


def _diag_ratio(gram: torch.Tensor) -> float:
    k = gram.shape[0]
    d = gram.diagonal().abs().sum()
    off = (gram.abs().sum() - d) / max(k * (k - 1), 1)
    dm = d / k
    return float(off / dm) if float(dm) > 0 else 0.0
