"""The compiled loops (li2core.kernels) against the torch ops they replace: bitwise where they do
the same float32 operations in the same order, to rounding where the summation order differs;
and the fused step and the instruments with and without them."""

import numpy as np
import pytest
import torch

from li2core import RunConfig, kernels, make_dataset, train
from li2core.fused import SIGMA_PRIME_SCALE, activate_into, mul_sigma_prime_
from li2core.instruments import make_probe
from li2core.instruments.energy import node_energy
from li2core.instruments.spectra import coverage_stats, node_spectra, nodes_per_component
from li2core.model import init_weights, mse_target
from li2core.step import FusedEngine

pytest.importorskip("numba")
ACTIVATIONS = list(kernels.CODES)
M, K, ROWS = 13, 40, 30


def _rows(seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(2 * M, K, generator=gen)
    a = torch.randint(0, M, (ROWS,), generator=gen)
    b = torch.randint(0, M, (ROWS,), generator=gen) + M
    return w, a, b, gen


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_and_backward_are_the_torch_ops_bit_for_bit(activation):
    w, a, b, gen = _rows()
    h = w[a] + w[b]
    f_ref = torch.empty_like(h)
    activate_into(h, f_ref, torch.empty_like(h), activation)
    f = torch.empty_like(h)
    kernels.hidden_forward(w.numpy(), a.numpy(), b.numpy(), f.numpy(), activation)
    assert torch.equal(f, f_ref)

    d = torch.randn(ROWS, K, generator=gen)
    g_ref = torch.zeros_like(w)
    dh = mul_sigma_prime_(d.clone(), h, f_ref.clone(), torch.empty_like(h), activation)
    g_ref.index_add_(0, a, dh).index_add_(0, b, dh)
    g = torch.zeros_like(w)
    kernels.hidden_backward(w.numpy(), a.numpy(), b.numpy(), d.numpy(), g.numpy(), activation)
    assert torch.equal(g, g_ref)
    assert SIGMA_PRIME_SCALE[activation] in (1.0, 2.0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_bf16_forward_rounds_as_torch_does_and_backward_widens_exactly(activation):
    w, a, b, _ = _rows(1)
    f = torch.empty(ROWS, K)
    kernels.hidden_forward(w.numpy(), a.numpy(), b.numpy(), f.numpy(), activation)
    lo = torch.empty(ROWS, K, dtype=torch.bfloat16)
    kernels.hidden_forward_bf16(w.numpy(), a.numpy(), b.numpy(),
                                lo.view(torch.int16).numpy().view(np.uint16),
                                np.empty(K, np.float32), activation)
    assert torch.equal(lo, f.to(torch.bfloat16))

    g, g_ref = torch.zeros_like(w), torch.zeros_like(w)
    kernels.hidden_backward(w.numpy(), a.numpy(), b.numpy(), lo.float().numpy(), g_ref.numpy(),
                            activation)
    kernels.hidden_backward_bf16(w.numpy(), a.numpy(), b.numpy(),
                                 lo.view(torch.int16).numpy().view(np.uint16),
                                 np.empty(K, np.float32), g.numpy(), activation)
    assert torch.equal(g, g_ref) and float(g.abs().sum()) > 0


def test_mse_rows_loss_hits_and_residual():
    gen = torch.Generator().manual_seed(2)
    out = torch.randn(ROWS, M + 3, generator=gen)  # padded columns, as the fp32 forward's
    out[:, M:] = 0
    label = torch.randint(0, M, (ROWS,), generator=gen)
    out[0] = 0.0  # a row of ties: the first class wins, as argmax says
    target = mse_target(label, M)
    ref_loss = float((out[:, :M] - target).square().sum())
    ref_hits = int((out[:, :M].argmax(dim=1) == label).sum())
    ref_resid = (out[:, :M] - target) * 0.25
    sums = np.zeros(2)
    kernels.mse_rows(out.numpy(), M, label.numpy(), target.numpy(), 0.25, True, sums)
    assert sums[0] == pytest.approx(ref_loss, rel=1e-6)
    assert sums[1] == ref_hits
    assert torch.equal(out[:, :M], ref_resid)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_class_sums_and_energy_match_the_torch_path(activation, monkeypatch):
    w, a, b, gen = _rows(3)
    label = torch.randint(0, M, (ROWS,), generator=gen)
    ref = torch.zeros(M, K).index_add_(0, label, (lambda h: activate_into(
        h, torch.empty_like(h), torch.empty_like(h), activation))(w[a] + w[b]))
    assert torch.equal(kernels.class_sums(w, a, b, label, M, activation), ref)

    cfg = RunConfig(group="Z13", hidden=K, activation=activation, train_fraction=0.5)
    probe = make_probe(cfg, make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed))
    fast = node_energy(probe.table_rows, w, probe.label, activation)
    monkeypatch.setenv("LI2_NO_KERNELS", "1")
    slow = node_energy(probe.table_rows, w, probe.label, activation)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    assert float(fast.abs().sum()) > 0


def test_node_spectra_match_the_torch_path(monkeypatch):
    cfg = RunConfig(group="D7", hidden=64)
    probe = make_probe(cfg, make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed))
    w = torch.randn(2 * 14, 64, generator=torch.Generator().manual_seed(4))
    w[:, 0] = 0.0  # a dead node: every component ties at zero
    basis = torch.tensor(np.array(probe.comps.basis), dtype=torch.float32)
    comp = probe.comps.column_component
    for j in range(1, 9):  # nodes inside one component (locked), two per component
        i = int(np.flatnonzero(comp == j % probe.n_components)[0])
        w[:14, j], w[14:, j] = 3 * basis[:, i], -2 * basis[:, i]
    w[:, 50:] *= 0.01  # small nodes: not active
    fast = node_spectra(probe.comps, w)
    monkeypatch.setenv("LI2_NO_KERNELS", "1")
    slow = node_spectra(probe.comps, w)
    for name in ("spec_u", "spec_v", "concentration"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), rtol=1e-5,
                                   atol=1e-6)
    for name in ("dominant", "agree", "active", "locked"):
        assert torch.equal(getattr(fast, name), getattr(slow, name)), name
    # the compiled pass also counts what coverage_stats and nodes_per_component report
    assert fast.tally is not None and slow.tally is None
    assert int(fast.locked.sum()) > 0 and int((~fast.active).sum()) > 0  # both rules bite
    assert coverage_stats(fast) == pytest.approx(coverage_stats(slow), rel=1e-6)
    assert nodes_per_component(fast, probe.n_components) == nodes_per_component(
        slow, probe.n_components)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_step_with_and_without_the_loops(activation, precision, monkeypatch):
    cfg = RunConfig(group="Z13", hidden=40, train_fraction=0.5, lr=1e-2, weight_decay=1e-3,
                    activation=activation, precision=precision)
    data = make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed)
    results = []
    for compiled in (True, False):
        w, v = init_weights(data.order, cfg.hidden, 1.0, torch.Generator().manual_seed(3))
        engine = FusedEngine(cfg, data, chunk=13)
        if not compiled:
            monkeypatch.setenv("LI2_NO_KERNELS", "1")
            engine = FusedEngine(cfg, data, chunk=13)
        assert engine.compiled is compiled
        engine.attach(w, v)
        results.append((engine.step(w, v), engine.evaluate(w, v), w.grad.clone(),
                        v.grad.clone()))
    for fast, slow in zip(*results, strict=True):
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_trajectory_with_and_without_the_loops(monkeypatch):
    cfg = RunConfig(group="Z13", hidden=48, train_fraction=0.5, lr=1e-2, weight_decay=1e-3,
                    steps=50)

    def run():
        return [(e.train_loss, e.test_loss, e.test_acc)
                for e in train(cfg, instruments=False) if e.kind == "metrics"]
    fast = run()
    monkeypatch.setenv("LI2_NO_KERNELS", "1")
    np.testing.assert_allclose(fast, run(), rtol=1e-4, atol=1e-6)


def test_motion_update_matches_the_float32_difference_form():
    from li2core.instruments.gradient import motion

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(26, 40, generator=gen)
    for size in (1e-2, 1e-4):  # down to the ~1e-9 of one small step
        prev = x + size * torch.randn(26, 40, generator=gen)
        ref = motion(x, prev)
        stored = prev.clone()
        assert kernels.motion_update(x, stored) == pytest.approx(ref, rel=1e-3)
        assert torch.equal(stored, x)  # the stored copy is refreshed
    assert kernels.motion_update(torch.zeros(3), torch.ones(3)) == 0.0


def test_warm_up_compiles_every_loop():
    assert kernels.warm_up()
    assert kernels.usable(torch.device("cpu"), "square")
    assert not kernels.usable(torch.device("cpu"), "silu")  # exp: the torch ops serve
