"""li2core.torch_exact: compiled twins of torch's class sum, centring and fused Adam, bitwise."""

import platform

import numpy as np
import pytest
import torch

from li2core import kernels, torch_exact
from li2core.batched import BatchedRuns
from li2core.batched_optim import make_batched_optimizer
from li2core.config import RunConfig

# the twins themselves are compared with torch wherever numba is present: a build that rounds
# otherwise fails here (and the engine, whose one-off check fails too, keeps the torch ops)
pytestmark = pytest.mark.skipif(torch_exact.intrinsic is None or not kernels.available(),
                                reason="numba missing or LI2_NO_KERNELS=1: no compiled twins")


def test_the_twins_serve_with_the_pinned_cpu_wheel():
    # the README's install (torch 2.13 CPU wheel, x86-64): the one-off check must pass, or
    # the batched engine silently loses the twins
    if platform.machine() != "x86_64" or not torch.__version__.startswith("2.13"):
        pytest.skip(f"torch {torch.__version__} on {platform.machine()}: not the pinned wheel")
    assert torch_exact.available()


def test_warm_up_compiles_the_twins_whatever_the_thread_count():
    # the forkserver and the image build warm up before a job pins one thread; the bit check
    # runs on one thread and gives the count back
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert torch_exact.warm_up() is torch_exact.available()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("runs,m,k", [(13, 23, 64), (7, 31, 80), (3, 41, 96), (1, 53, 128),
                                      (2, 97, 48), (1, 120, 300), (2, 17, 16), (3, 300, 33)])
def test_centring_twin_gives_torch_sum_and_sub_bit_for_bit(runs, m, k):
    # every column path of torch's outer sum (blocks of 64, 32, 16 columns, single columns)
    # and the cascade past 16 and 256 rows; the output a strided view, as ∂J/∂Vᵀ's rows are
    gen = torch.Generator().manual_seed(m * k)
    x = torch.randn(runs, m, k, generator=gen) * 3
    out = torch.empty(runs, m + 2, k)[:, 2:]
    torch_exact.centre(x.numpy(), out.numpy(), m, torch_exact.centring_scratch(k))
    total = torch.sum(x, dim=1, keepdim=True)
    assert torch.equal(out, torch.sub(x, total, alpha=1.0 / m))


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_twin_gives_torch_fused_adam_bit_for_bit(decoupled):
    gen = torch.Generator().manual_seed(3)
    runs, length = 3, torch_exact.ADAM_ROW * 37
    lr, wd = np.array([5e-3, 3e-2, 1e-1]), np.array([1e-3, 0.0, 3e-1])
    p = torch.randn(runs, length, generator=gen)
    mine, ref = ([p.clone(), torch.zeros(runs, length), torch.zeros(runs, length)]
                 for _ in range(2))
    fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
    step = torch.zeros(())
    for t in range(1, 40):
        g = torch.randn(runs, length, generator=gen) * 10.0 ** float(-(t % 5))
        torch_exact.adam(mine[0].numpy(), g.numpy(), mine[1].numpy(), mine[2].numpy(), lr, wd,
                         t, decoupled)
        step.fill_(t)
        for r in range(runs):
            fused([ref[0][r]], [g[r].clone()], [ref[1][r]], [ref[2][r]], [], [step],
                  lr=float(lr[r]), beta1=0.9, beta2=0.999, weight_decay=float(wd[r]), eps=1e-8,
                  amsgrad=False, maximize=False)
    for a, b in zip(mine, ref, strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch_exact.available(), reason="the twins do not serve here")
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_batched_adam_takes_the_twin_only_where_it_is_exact(name, monkeypatch):
    # (R, L) rows of whole vectors take the twin, others torch's kernel; both give the bits
    lr = torch.tensor([5e-3, 5e-3, 2e-2], dtype=torch.float64)
    wd = torch.tensor([1e-3, 1e-3, 0.0], dtype=torch.float64)
    for length, twin in ((torch_exact.ADAM_ROW * 6, True), (torch_exact.ADAM_ROW * 6 + 3, False)):
        results = []
        for allowed in (True, False):
            if not allowed:
                monkeypatch.setattr(torch_exact, "available", lambda: False)
            opt = make_batched_optimizer(name, lr, wd)
            p = torch.linspace(-1, 1, 3 * length).view(3, length).clone()
            for t in range(5):
                opt.step([p], [torch.sin(p * (t + 1))])
            used = any(a is not None for a in opt._twin_args.values())
            assert used is (allowed and twin)
            results.append(p)
            monkeypatch.undo()
        assert torch.equal(*results)


@pytest.mark.skipif(not torch_exact.available(), reason="the twins do not serve here")
def test_the_direct_step_with_the_twins_keeps_the_torch_paths_bits(monkeypatch):
    # K = 32: the centring and Adam run compiled (3·M·K whole vectors); the parameters after
    # a dozen steps with evaluations between must be those of the torch ops' path
    from li2core import batched_kernels

    if not batched_kernels.available():
        pytest.skip("no direct sgemm here (numba missing, or torch not built on MKL)")
    configs = [RunConfig(group="Z13", hidden=32, train_fraction=p, lr=lr, weight_decay=wd,
                         seed=s, steps=12)
               for p, lr, wd, s in ((0.3, 5e-3, 1e-3, 0), (0.5, 1e-2, 0.0, 1),
                                    (0.7, 2e-3, 1e-4, 2))]
    results = []
    for twins in (True, False):
        if not twins:
            monkeypatch.setattr(torch_exact, "available", lambda: False)
        batch = BatchedRuns(configs)
        assert batch.direct and batch._centred_inside is twins and batch.opt._twin is twins
        for step in range(12):
            batch.forward(full=step % 4 == 0)
            batch.step()
        results.append(batch.params.clone())
    assert torch.equal(*results)
