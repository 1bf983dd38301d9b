"""The fused training step (li2core.fused) against the autograd reference, its bf16 mode, its
configuration errors, and the CUDA path where a GPU is present."""

import itertools
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from li2core import RunConfig, make_dataset, train
from li2core import config as config_module
from li2core import fused as fused_module
from li2core.fused import chunk_rows
from li2core.model import init_weights
from li2core.step import AutogradStep, FusedEngine

ACTIVATIONS = ["square", "relu", "silu", "relu_square"]
LOSSES = ["mse", "cross_entropy"]
OPTIMIZERS = ["adam", "adamw", "sgd", "muon"]
TINY = dict(group="Z13", hidden=40, train_fraction=0.5, lr=1e-2, weight_decay=1e-3)


def _one_step(config, engine_cls, chunk=None):
    data = make_dataset(config.build_group(), config.train_fraction, config.seed)
    w, v = init_weights(data.order, config.hidden, 1.0, torch.Generator().manual_seed(3))
    engine = engine_cls(config, data) if chunk is None else engine_cls(config, data, chunk)
    engine.attach(w, v)
    metrics = engine.step(w, v)
    test = engine.evaluate(w, v)
    grad_v = None if v.grad is None else v.grad.clone()
    return metrics, test, w.grad.clone(), grad_v, v.detach().clone()


@pytest.mark.parametrize("top", ["trained", "ridge"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_loss_and_gradients_equal_autograd(activation, loss, top):
    cfg = RunConfig(**TINY, activation=activation, loss=loss, top_layer=top)
    # 13 rows per chunk: several chunks, the last one short
    mf, tf, gwf, gvf, vf = _one_step(cfg, FusedEngine, chunk=13)
    ma, ta, gwa, gva, va = _one_step(cfg.with_(engine="autograd"), AutogradStep)
    torch.testing.assert_close(mf, ma, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tf, ta, rtol=1e-5, atol=1e-6)
    # a ridge V is a linear solve: its rounding (~1e-5 of V) reaches the W gradient
    tol = 1e-5 if top == "trained" else 1e-3
    assert float((gwf - gwa).norm()) <= tol * float(gwa.norm())
    assert float((vf - va).norm()) <= tol * float(va.norm())
    if top == "trained":
        assert float((gvf - gva).norm()) <= tol * float(gva.norm())
    assert float(gwf.abs().sum()) > 0


def _trajectory(cfg):
    return [(e.train_loss, e.test_loss, e.train_acc, e.test_acc, e.w_norm)
            for e in train(cfg, instruments=False) if e.kind == "metrics"]


@pytest.mark.parametrize("activation,loss,optimizer",
                         list(itertools.product(ACTIVATIONS, LOSSES, OPTIMIZERS)))
def test_fifty_step_trajectories_match_autograd(activation, loss, optimizer):
    cfg = RunConfig(**TINY, activation=activation, loss=loss, optimizer=optimizer, steps=50,
                    eval_every=5, snapshot_every=1000)
    fused, reference = _trajectory(cfg), _trajectory(cfg.with_(engine="autograd"))
    assert len(fused) == len(reference) == 11
    for f_row, a_row in zip(fused, reference, strict=True):
        assert f_row[0] == pytest.approx(a_row[0], rel=1e-3, abs=1e-5)
        assert f_row[1] == pytest.approx(a_row[1], rel=1e-3, abs=1e-5)
        assert abs(f_row[2] - a_row[2]) <= 2 / 85 and abs(f_row[3] - a_row[3]) <= 2 / 84
        assert f_row[4] == pytest.approx(a_row[4], rel=1e-4)


def test_ridge_top_layer_trajectory_matches_autograd():
    cfg = RunConfig(**TINY, top_layer="ridge", steps=50, eval_every=5, snapshot_every=1000)
    for f_row, a_row in zip(_trajectory(cfg), _trajectory(cfg.with_(engine="autograd")),
                            strict=True):
        assert f_row[0] == pytest.approx(a_row[0], rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_bf16_gradients_are_close_to_fp32(activation):
    cfg = RunConfig(**{**TINY, "hidden": 64}, activation=activation)
    m32, _, g32, v32, _ = _one_step(cfg, FusedEngine, chunk=32)
    m16, _, g16, v16, _ = _one_step(cfg.with_(precision="bf16"), FusedEngine, chunk=32)
    assert float(m16[0]) == pytest.approx(float(m32[0]), rel=2e-2)
    for a, b in ((g16, g32), (v16, v32)):
        cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
        assert float(cos) > 0.999
        assert float((a - b).norm() / b.norm()) < 3e-2


def test_buffers_are_reused_between_steps():
    cfg = RunConfig(**TINY)
    data = make_dataset(cfg.build_group(), cfg.train_fraction, cfg.seed)
    w, v = init_weights(data.order, cfg.hidden, 1.0, torch.Generator().manual_seed(0))
    engine = FusedEngine(cfg, data)
    engine.attach(w, v)
    ptrs = (w.grad.data_ptr(), v.grad.data_ptr(), engine.h.data_ptr())
    for _ in range(3):
        engine.step(w, v)
        engine.evaluate(w, v)
    assert (w.grad.data_ptr(), v.grad.data_ptr(), engine.h.data_ptr()) == ptrs


def test_chunk_size_follows_the_cache_on_cpu_and_takes_all_rows_on_a_gpu(monkeypatch):
    fused_module.l2_cache_bytes.cache_clear()
    monkeypatch.setattr(fused_module, "l2_cache_bytes", lambda: 1024**2)
    assert chunk_rows(2048, torch.device("cpu"), 5000) == 256
    assert chunk_rows(512, torch.device("cpu"), 5000) == 1024
    assert chunk_rows(512, torch.device("cpu"), 300) == 300  # never more than the rows
    assert chunk_rows(2048, torch.device("cuda"), 5000) == 5000


def test_unknown_engine_and_bf16_without_support_name_the_field(monkeypatch):
    with pytest.raises(ValidationError) as exc:
        RunConfig(engine="jit")
    assert exc.value.errors()[0]["loc"] == ("engine",)
    with pytest.raises(ValidationError) as exc:
        RunConfig(engine="autograd", precision="bf16")
    assert exc.value.errors()[0]["loc"] == ("precision",)
    monkeypatch.setattr(config_module, "cuda_has_bf16", lambda: False)
    with pytest.raises(ValidationError) as exc:
        RunConfig(device="cuda", precision="bf16")
    err = exc.value.errors()[0]
    assert err["loc"] == ("precision",) and "bfloat16" in err["msg"]
    assert RunConfig(device="cuda", precision="fp32").precision == "fp32"


def test_bf16_without_units_warns(monkeypatch):
    monkeypatch.setattr(fused_module, "cpu_has_bf16_units", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "slower than fp32" in fused_module.bf16_warning("bf16", "cpu")
    assert fused_module.bf16_warning("fp32", "cpu") is None
    monkeypatch.setattr(fused_module, "cpu_has_bf16_units", lambda: True)
    assert fused_module.bf16_warning("bf16", "cpu") is None


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device here: the fused step's GPU path is checked where one is")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_fused_step_matches_the_cpu(precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    cfg = RunConfig(**TINY, steps=30, eval_every=5, snapshot_every=1000, precision=precision)
    cpu, gpu = _trajectory(cfg.with_(device="cpu")), _trajectory(cfg.with_(device="cuda"))
    for c_row, g_row in zip(cpu, gpu, strict=True):
        assert g_row[0] == pytest.approx(c_row[0], rel=3e-2 if precision == "bf16" else 1e-3,
                                         abs=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device here: the instruments' GPU path is checked where one is")
def test_cuda_run_with_instruments_reads_what_the_cpu_reads():
    """Every instrument on a GPU run (spectra, G_F, energies, stage) against the same run on the
    CPU: the numbers to float32 rounding, the snapshots' arrays likewise."""
    cfg = RunConfig(**TINY, steps=24, eval_every=2, snapshot_every=8)

    def instrumented(c):
        events = list(train(c))
        return ([e.values for e in events if e.kind == "metrics"],
                [e.arrays for e in events if e.kind == "snapshot"])

    (rows_c, snaps_c), (rows_g, snaps_g) = instrumented(cfg), instrumented(
        cfg.with_(device="cuda"))
    assert len(rows_c) == len(rows_g) and len(snaps_c) == len(snaps_g) == 4
    for rc, rg in zip(rows_c, rows_g, strict=True):
        assert sorted(rc) == sorted(rg)
        for key, value in rc.items():
            if isinstance(value, float) and math.isfinite(value):
                assert rg[key] == pytest.approx(value, rel=2e-3, abs=1e-4), key
            else:
                assert rg[key] == value or (value != value and rg[key] != rg[key]), key
    for sc, sg in zip(snaps_c, snaps_g, strict=True):
        assert sorted(sc) == sorted(sg)
        for name in ("W", "V", "gf_spectrum"):
            np.testing.assert_allclose(sg[name], sc[name], rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("loss", LOSSES)
def test_instruments_reusing_the_fused_step_read_what_their_own_pass_reads(loss):
    """The probe takes G_F's forward sums and the ascent −∂J/∂W from the fused step; the
    autograd engine hands neither, so the probe computes both itself."""
    cfg = RunConfig(**TINY, loss=loss, steps=12, eval_every=1, snapshot_every=4)

    def instrumented(c):
        events = list(train(c))
        rows = [e.values for e in events if e.kind == "metrics"]
        snaps = [e.arrays for e in events if e.kind == "snapshot"]
        return rows, snaps

    (rows_f, snaps_f), (rows_a, snaps_a) = instrumented(cfg), instrumented(
        cfg.with_(engine="autograd"))
    assert len(snaps_f) == len(snaps_a) == 4
    for rf, ra in zip(rows_f, rows_a, strict=True):
        assert rf["gf_norm"] == pytest.approx(ra["gf_norm"], rel=1e-3)
        assert rf["gf_align"] == pytest.approx(ra["gf_align"], rel=1e-3, abs=1e-5)
    for sf, sa in zip(snaps_f, snaps_a, strict=True):
        np.testing.assert_allclose(sf["gf_spectrum"], sa["gf_spectrum"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("activation", ["square", "silu"])
def test_batched_sweep_engine_in_bf16_follows_train(activation):
    """The batched engine shares σ, σ′ and the bf16 policy with the fused step."""
    from li2core.batched import train_batched

    configs = [RunConfig(**TINY, activation=activation, precision="bf16", seed=s, steps=40,
                         eval_every=10, snapshot_every=1000) for s in (0, 1)]
    batched = {}
    for i, event in train_batched(configs, snapshots=False):
        if event.kind == "metrics":
            batched.setdefault(i, []).append(event.train_loss)
    for i, cfg in enumerate(configs):
        alone = [e.train_loss for e in train(cfg, instruments=False) if e.kind == "metrics"]
        assert batched[i] == pytest.approx(alone, rel=3e-2)
        assert alone[-1] < 0.8 * alone[0]
