"""The batched engine against train() run one by one, autograd and torch.optim."""

import math

import pytest
import torch

from li2core import RunConfig, train
from li2core.batched import BatchedRuns, batch_key, plan_batches, train_batched
from li2core.batched_optim import make_batched_optimizer
from li2core.model import features, loss_fn
from li2core.optim import make_optimizers

BASE = dict(group="Z13", hidden=24, steps=50, snapshot_every=25)
# runs differing in p, weight decay, lr and seed: each must match its own solo run
VARIANTS = [dict(train_fraction=0.3, lr=5e-3, weight_decay=5e-5, seed=0),
            dict(train_fraction=0.5, lr=1e-2, weight_decay=1e-3, seed=1),
            dict(train_fraction=0.7, lr=2e-3, weight_decay=0.0, seed=2),
            dict(train_fraction=0.5, lr=5e-3, weight_decay=1e-4, seed=7, top_init_scale=0.5)]


def _solo(config):
    rows, snaps, summary = [], {}, None
    for e in train(config, instruments=False):
        if e.kind == "metrics":
            rows.append(e.row())
        elif e.kind == "snapshot":
            snaps[e.step] = e.arrays
        elif e.kind == "finished":
            summary = e.summary
    return rows, snaps, summary


def _batched(configs, **kw):
    rows = [[] for _ in configs]
    snaps = [{} for _ in configs]
    summaries = [None] * len(configs)
    for i, e in train_batched(configs, **kw):
        if e.kind == "metrics":
            rows[i].append(e.row())
        elif e.kind == "snapshot":
            snaps[i][e.step] = e.arrays
        elif e.kind == "finished":
            summaries[i] = e.summary
    return rows, snaps, summaries


@pytest.mark.parametrize("extra", [
    {},
    {"optimizer": "adamw"},
    {"optimizer": "sgd"},
    {"optimizer": "muon"},
    {"top_layer": "ridge"},
    {"loss": "cross_entropy", "activation": "relu"},
    {"activation": "silu", "eval_every": 3},
    {"activation": "relu_square", "top_init_scale": 0.0},
], ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "adam")
def test_same_seeds_give_the_same_numbers_as_train(extra):
    configs = [RunConfig(**{**BASE, **v, **extra}) for v in VARIANTS]
    if extra.get("optimizer") == "sgd":  # SGD needs a larger step to move in 50 steps
        configs = [c.with_(lr=c.lr * 20) for c in configs]
    got_rows, got_snaps, got_sum = _batched(configs)
    for c, rows, snaps, summary in zip(configs, got_rows, got_snaps, got_sum, strict=True):
        ref_rows, ref_snaps, ref_sum = _solo(c)
        assert [r["step"] for r in rows] == [r["step"] for r in ref_rows]
        for a, b in zip(ref_rows, rows, strict=True):
            # equal counts of correct rows (a CUDA mean may round the fraction differently)
            for key in ("train_acc", "test_acc"):
                assert b[key] == pytest.approx(a[key], abs=1e-6), (key, a["step"])
            for key in ("train_loss", "test_loss", "w_norm", "v_norm"):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), (key, a["step"])
        assert sorted(snaps) == sorted(ref_snaps) == [0, 25, 50]
        for step in snaps:  # weights: the ridge solve amplifies rounding to ~3e-5 absolute
            for name in ("W", "V"):
                torch.testing.assert_close(torch.from_numpy(snaps[step][name]),
                                           torch.from_numpy(ref_snaps[step][name]),
                                           rtol=1e-4, atol=1e-4)
        assert summary["first_step"] == ref_sum["first_step"]
        assert summary["steps_done"] == ref_sum["steps_done"] == 50
    # the runs really differ: a batch that mixed them up could not pass the checks above
    finals = {round(s["final"]["train_loss"], 6) for s in got_sum}
    assert len(finals) == len(configs)


@pytest.mark.parametrize("activation,loss,top", [
    ("square", "mse", "trained"), ("relu", "mse", "trained"), ("silu", "cross_entropy",
                                                                  "trained"),
    ("relu_square", "cross_entropy", "ridge"), ("square", "mse", "ridge")])
def test_hand_written_gradients_match_autograd(activation, loss, top):
    configs = [RunConfig(**{**BASE, **v, "activation": activation, "loss": loss,
                            "top_layer": top}) for v in VARIANTS[:3]]
    batch = BatchedRuns(configs)
    batch.forward(full=True)
    grads = batch.gradients()
    for r, data in enumerate(batch.datasets):
        data = data.to(batch.device)
        w = batch.w[r].clone().requires_grad_(True)
        v = batch.v[r].clone().requires_grad_(top == "trained")
        tr = data.train_idx
        out = features(w, data.a[tr], data.b[tr], activation) @ v
        loss_fn(out, data.label[tr], loss).backward()
        torch.testing.assert_close(grads[0][r], w.grad, rtol=1e-4, atol=1e-6)
        if top == "trained":
            torch.testing.assert_close(grads[1][r], v.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss,activation,top", [
    ("mse", "square", "trained"), ("cross_entropy", "relu", "trained"),
    ("mse", "silu", "ridge")])
def test_training_rows_pass_gives_the_full_pass_gradients(loss, activation, top):
    # between evaluations only the training rows are computed; the gradient must not change
    configs = [RunConfig(**{**BASE, **v, "loss": loss, "activation": activation,
                            "top_layer": top}) for v in VARIANTS[:3]]
    batch = BatchedRuns(configs)
    batch.forward(full=True)
    full = [g.clone() for g in batch.gradients()]
    batch.forward(full=False)
    with pytest.raises(RuntimeError, match="full=True"):
        batch.metrics()
    for a, b in zip(full, batch.gradients(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name,fused", [("adam", True), ("adamw", True), ("sgd", True),
                                        ("muon", True), ("adam", False), ("adamw", False)])
def test_batched_optimizers_follow_torch_optim(name, fused):
    gen = torch.Generator().manual_seed(0)
    lrs, wds = [1e-2, 3e-3, 5e-2], [0.0, 1e-3, 1e-2]
    w0 = torch.randn(3, 10, 6, generator=gen)
    v0 = torch.randn(3, 6, 4, generator=gen)
    grads = [(torch.randn(3, 10, 6, generator=gen), torch.randn(3, 6, 4, generator=gen))
             for _ in range(5)]
    w, v = w0.clone(), v0.clone()
    # fused=False: the tensor-op Adam used where torch has no fused kernel (and for Muon's V)
    opt = make_batched_optimizer(name, torch.tensor(lrs), torch.tensor(wds), fused=fused)
    for gw, gv in grads:
        opt.step([w, v], [gw, gv])
    for r in range(3):
        pw, pv = w0[r].clone().requires_grad_(), v0[r].clone().requires_grad_()
        opts = make_optimizers(name, pw, pv, lrs[r], wds[r])
        for gw, gv in grads:
            pw.grad, pv.grad = gw[r].clone(), gv[r].clone()
            for o in opts:
                o.step()
        torch.testing.assert_close(w[r], pw.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(v[r], pv.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("top", ["trained", "ridge"])
def test_a_diverged_run_leaves_its_batch_mates_alone(top):
    configs = [RunConfig(**{**BASE, **v, "top_layer": top, "steps": 10})
               for v in VARIANTS[:3]]
    clean = BatchedRuns([configs[0], configs[2]])
    broken = BatchedRuns(configs)
    broken.w[1, 0, 0] = math.nan
    for _ in range(10):
        for batch in (clean, broken):
            batch.forward(full=True)
            batch.step()
    for batch in (clean, broken):
        batch.forward(full=True)
    m_clean, m_broken = clean.metrics(), broken.metrics()
    assert not torch.isfinite(m_broken[1, 0])  # run 1's train loss is NaN
    torch.testing.assert_close(m_broken[[0, 2]], m_clean, rtol=1e-5, atol=1e-7)


def test_plan_batches_groups_by_shared_fields_and_memory():
    a = [RunConfig(group="Z11", hidden=16, train_fraction=p, seed=s)
         for p in (0.7, 0.3) for s in range(3)]
    b = [RunConfig(group="Z13", hidden=16, train_fraction=0.5)]
    configs = [a[0], b[0], *a[1:]]
    plan = plan_batches(configs)
    assert plan == [[4, 5, 6, 0, 2, 3], [1]]  # first-seen key order, sorted by p inside
    assert batch_key(a[0]) == batch_key(a[4]) != batch_key(b[0])
    small = plan_batches(configs, max_elements=2 * 11 * 11 * 16)
    assert [len(x) for x in small] == [2, 2, 2, 1]


def test_runs_with_different_shared_fields_refuse_to_batch():
    with pytest.raises(ValueError, match="share every field"):
        BatchedRuns([RunConfig(group="Z11", hidden=16), RunConfig(group="Z11", hidden=24)])


def test_stop_ends_every_run_of_the_batch():
    configs = [RunConfig(**{**BASE, **v}) for v in VARIANTS[:2]]
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 5

    _, _, summaries = _batched(configs, stop=stop, snapshots=False)
    for s in summaries:
        assert s["stopped"] and s["steps_done"] == 4


@pytest.mark.parametrize("lrs,wds", [([1e-2, 1e-2, 3e-3], [1e-3, 1e-3, 0.0]),
                                     ([5e-3] * 3, [1e-3] * 3)], ids=["two-groups", "one-group"])
def test_adam_on_one_stacked_tensor_follows_torch_optim_step_after_step(lrs, wds):
    # BatchedRuns hands Adam one (R, 3M, K) tensor; runs sharing (lr, η) take one kernel call
    # through slices made at the first step, then reused while the gradient is new every step
    gen = torch.Generator().manual_seed(1)
    p0 = torch.randn(3, 9, 5, generator=gen)
    p = p0.clone()
    opt = make_batched_optimizer("adam", torch.tensor(lrs), torch.tensor(wds))
    grads = [torch.randn(3, 9, 5, generator=gen) for _ in range(6)]
    for g in grads:
        opt.step([p], [g.clone()])
    for r in range(3):
        w = p0[r].clone().requires_grad_()
        ref = torch.optim.Adam([w], lr=lrs[r], weight_decay=wds[r])
        for g in grads:
            w.grad = g[r].clone()
            ref.step()
        torch.testing.assert_close(p[r], w.detach(), rtol=1e-5, atol=1e-6)


def test_runs_with_their_own_cadences_evaluate_and_snapshot_when_train_would():
    # per-run eval_every and snapshot_every: steps no run evaluates skip the checks
    configs = [RunConfig(**{**BASE, **VARIANTS[0], "steps": 20, "eval_every": 3,
                            "snapshot_every": 4}),
               RunConfig(**{**BASE, **VARIANTS[1], "steps": 20, "eval_every": 5,
                            "snapshot_every": 6})]
    rows, snaps, _ = _batched(configs)
    for c, got_rows, got_snaps in zip(configs, rows, snaps, strict=True):
        ref_rows, ref_snaps, _ = _solo(c)
        assert [r["step"] for r in got_rows] == [r["step"] for r in ref_rows]
        assert sorted(got_snaps) == sorted(ref_snaps)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("activation,top", [("square", "trained"), ("relu", "trained"),
                                            ("relu_square", "ridge")])
def test_compiled_loops_give_the_torch_ops_gradients_bit_for_bit(activation, top, precision,
                                                                 monkeypatch):
    # li2core.kernels forms σ(h) (straight into bfloat16 with bf16), scatters σ′·dh in the
    # order the torch ops do, and takes the mse residual and hits as they do (the per-row loss
    # it sums in float64, so the loss metrics agree to rounding); the last run starts with
    # V = 0, where every class ties and the first index must win
    pytest.importorskip("numba")
    configs = [RunConfig(**{**BASE, **v, "activation": activation, "top_layer": top,
                            "precision": precision})
               for v in [*VARIANTS[:3], {**VARIANTS[0], "top_init_scale": 0.0, "seed": 5}]]
    grads, metrics = [], []
    for off in ("0", "1"):
        monkeypatch.setenv("LI2_NO_KERNELS", off)
        batch = BatchedRuns(configs)
        assert batch.compiled is (off == "0")
        got = []
        for _ in range(3):  # the training-rows pass too, and steps that move V off zero
            batch.forward(full=True)
            got += [g.clone() for g in batch.gradients()]
            metrics.append(batch.metrics())
            batch.step()
            batch.forward(full=False)
            got += [g.clone() for g in batch.gradients()]
            batch.step()
        grads.append(got)
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)
    compiled, ops = torch.stack(metrics[:3]), torch.stack(metrics[3:])
    assert torch.equal(compiled[..., [1, 3]], ops[..., [1, 3]])  # accuracies: the same hits
    torch.testing.assert_close(compiled, ops, rtol=1e-6, atol=0)


@pytest.mark.parametrize("activation", ["square", "relu", "relu_square"])
def test_direct_sgemm_step_gives_the_torch_products_bit_for_bit(activation, monkeypatch):
    # li2core.batched_kernels runs the fp32 mse step's three products through MKL's sgemm from
    # compiled code: the parameters and metrics must be bitwise those of the torch.bmm path,
    # over evaluation and training-rows passes of runs with different n (padded rows)
    from li2core import batched_kernels

    if not batched_kernels.available():
        pytest.skip("no direct sgemm here (numba missing, or torch not built on MKL)")
    configs = [RunConfig(**{**BASE, **v, "activation": activation}) for v in VARIANTS]
    results = []
    for direct in (True, False):
        if not direct:
            monkeypatch.setattr(batched_kernels, "available", lambda: False)
        batch = BatchedRuns(configs)
        assert batch.direct is direct
        metrics = []
        for step in range(12):
            batch.forward(full=step % 4 == 0)
            if step % 4 == 0:
                metrics.append(batch.metrics())
            batch.step()
        results.append((batch.params.clone(), torch.stack(metrics)))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("extra,direct", [
    ({}, True), ({"precision": "bf16"}, False), ({"top_layer": "ridge"}, False),
    ({"loss": "cross_entropy", "activation": "relu"}, False), ({"activation": "silu"}, False)])
def test_direct_sgemm_step_serves_fp32_mse_with_a_trained_top_layer_only(extra, direct):
    from li2core import batched_kernels

    if not batched_kernels.available():
        pytest.skip("no direct sgemm here (numba missing, or torch not built on MKL)")
    assert batched_kernels.warm_up()  # what the forkserver and the lab image run
    assert BatchedRuns([RunConfig(**{**BASE, **extra})]).direct is direct
    threads = torch.get_num_threads()
    try:  # with more threads torch.bmm and MKL share out the work differently: torch's path
        torch.set_num_threads(2)
        assert BatchedRuns([RunConfig(**{**BASE, **extra})]).direct is False
        # the forkserver and the image build warm up before a job pins one thread
        assert batched_kernels.warm_up() and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device here: the batched engine's GPU path is checked where "
                           "one is")
@pytest.mark.parametrize("extra", [
    {}, {"optimizer": "muon"}, {"top_layer": "ridge"},
    {"loss": "cross_entropy", "activation": "relu"}, {"precision": "bf16"},
], ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "adam")
def test_batched_engine_on_cuda_follows_train_on_the_cpu(extra):
    """A sweep with device=cuda runs the same batched step on the GPU (cuBLAS products, torch
    ops for what the CPU does in compiled loops): each run's trajectory follows its solo CPU
    run to float32 rounding (bf16: to the rounding of its products)."""
    configs = [RunConfig(**{**BASE, **v, **extra}) for v in VARIANTS]
    got_rows, _, got_sum = _batched([c.with_(device="cuda") for c in configs])
    rel = 3e-2 if extra.get("precision") == "bf16" else 1e-3
    for c, rows, summary in zip(configs, got_rows, got_sum, strict=True):
        ref_rows, _, ref_sum = _solo(c)
        assert [r["step"] for r in rows] == [r["step"] for r in ref_rows]
        for a, b in zip(ref_rows, rows, strict=True):
            for key in ("train_loss", "test_loss", "w_norm", "v_norm"):
                assert b[key] == pytest.approx(a[key], rel=rel, abs=1e-5), (key, a["step"])
        assert summary["steps_done"] == ref_sum["steps_done"] == 50
