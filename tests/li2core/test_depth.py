"""Deeper networks (li2-theory §6): config bounds, the network and its gradients, Muon on every
hidden matrix, per-layer instruments and stage events that carry their layer, and the layer
order reported as it happens (never invented)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from li2core import RunConfig, train
from li2core.config import error_field
from li2core.data import make_dataset
from li2core.deep_step import DeepStep
from li2core.groups import parse_group
from li2core.instruments.gradient import forward_sums, gradient_stats
from li2core.instruments.hidden import HiddenBlocks
from li2core.instruments.layers import layer_array_shapes, layer_gradients
from li2core.irreps import isotypic_components
from li2core.layer_stages import LayerStages, layer_order
from li2core.model import init_layers, init_weights, layer_outputs, loss_fn
from li2core.optim import Muon, make_optimizers
from li2core.vocabulary import BOTTOM_UP, NOT_BOTTOM_UP, PARTLY_BOTTOM_UP, TOGETHER

TINY = dict(group="Z7", hidden=8, activation="relu", steps=30, eval_every=1, snapshot_every=10,
            lr=1e-2, weight_decay=5e-3)


def _field_of(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return ".".join(map(str, err["loc"])) or error_field(err)


@pytest.mark.parametrize("changes, field", [
    ({"depth": 0}, "depth"), ({"depth": 5}, "depth"),
    ({"depth": 2, "top_layer": "ridge"}, "top_layer"),
    ({"depth": 3, "precision": "bf16"}, "precision"),
    ({"depth": 2, "group": "Z128", "hidden": 4096}, "hidden"),
])
def test_bad_depths_name_the_field(changes, field):
    with pytest.raises(ValidationError) as info:
        RunConfig(**changes)
    assert _field_of(info.value) == field


def test_depth_one_is_the_default_and_adds_no_weights():
    assert RunConfig().depth == 1
    assert RunConfig(group="Z128", hidden=4096).depth == 1  # the width bound is unchanged at L=1
    gen = torch.Generator().manual_seed(0)
    assert init_layers(8, 1, gen) == []


def test_added_layers_are_drawn_after_w_and_v():
    """Depth leaves W(0) and V(0) as they are: the same seed starts the same first layer."""
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    w1, v1 = init_weights(7, 8, 1.0, g1)
    w2, v2 = init_weights(7, 8, 1.0, g2)
    (extra,) = init_layers(8, 2, g2)
    assert torch.equal(w1, w2) and torch.equal(v1, v2) and extra.shape == (8, 8)
    assert float(extra.abs().max()) <= 8 ** -0.5


def test_the_network_is_the_authors_residual_form_written_out():
    """x₁ = σ(u_a + v_b), x₂ = σ(x₁ + x₁W₂), Ŷ = x₂V, computed by hand row by row."""
    gen = torch.Generator().manual_seed(1)
    m, k = 5, 4
    w, v = init_weights(m, k, 1.0, gen, torch.float64)
    (w2,) = init_layers(k, 2, gen, torch.float64)
    a, b = torch.tensor([0, 3, 4]), torch.tensor([2, 2, 1])
    xs = layer_outputs(w, [w2], a, b, "relu")
    for i in range(3):
        x1 = np.maximum(w[a[i]].numpy() + w[m + b[i]].numpy(), 0)
        x2 = np.maximum(x1 + x1 @ w2.numpy(), 0)
        np.testing.assert_allclose(xs[0][i].numpy(), x1)
        np.testing.assert_allclose((xs[1][i] @ v).numpy(), x2 @ v.numpy())


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["square", "silu"])  # smooth: finite differences hold
def test_autograd_gradients_of_the_deep_net_match_finite_differences(loss, activation):
    gen = torch.Generator().manual_seed(2)
    m, k = 5, 3
    w, v = init_weights(m, k, 1.0, gen, torch.float64)
    layers = init_layers(k, 3, gen, torch.float64)
    a, b = torch.arange(m).repeat(2), torch.arange(2 * m) % m
    y = (a + b) % m

    def j(w_, w2, w3, v_):
        return loss_fn(layer_outputs(w_, [w2, w3], a, b, activation)[-1] @ v_, y, loss)
    params = [p.clone().requires_grad_(True) for p in (w, *layers, v)]
    assert torch.autograd.gradcheck(j, params, eps=1e-6, atol=1e-6)


def test_the_deep_step_fills_every_gradient_and_muon_takes_every_hidden_matrix():
    cfg = RunConfig(**{**TINY, "depth": 3, "optimizer": "muon"})
    data = make_dataset(parse_group("Z7"), cfg.train_fraction, 0)
    gen = torch.Generator().manual_seed(0)
    w, v = init_weights(7, 8, 1.0, gen)
    layers = init_layers(8, 3, gen)
    step = DeepStep(cfg, data, layers)
    step.attach(w, v)
    step.step(w, v)
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in (w, v, *layers))
    opts = make_optimizers("muon", w, v, cfg.lr, cfg.weight_decay, layers)
    muon = [o for o in opts if isinstance(o, Muon)][0]
    assert {id(p) for p in muon.param_groups[0]["params"]} == {id(p) for p in (w, *layers)}
    before = [p.detach().clone() for p in layers]
    for o in opts:
        o.step()
    assert all(not torch.equal(p0, p) for p0, p in zip(before, layers, strict=True))


def test_layer_gradients_reduce_to_the_closed_form_at_depth_one():
    """layer_gradients (autograd through the layers) on a 1-layer net = gradient_stats (the
    closed form the 2-layer probe uses)."""
    gen = torch.Generator().manual_seed(4)
    m, k = 7, 16
    w, v = init_weights(m, k, 1.0, gen, torch.float64)
    data = make_dataset(parse_group("Z7"), 0.6, 0)
    a, b, y = (t[data.train_idx] for t in (data.a, data.b, data.label))
    got = layer_gradients(w, [], v, (a, b, y), "relu", "mse", m)
    norm, align = gradient_stats(forward_sums(HiddenBlocks(a, b, m), w, v, y, "relu"), v, y, "mse")
    assert got["gf_norm"] == pytest.approx(norm, rel=1e-9)
    assert got["gf_align"] == pytest.approx(align, abs=1e-9)


def test_a_depth_2_run_tags_every_stage_and_names_its_layer_arrays():
    cfg = RunConfig(**{**TINY, "depth": 2})
    events = list(train(cfg))
    stages = [e for e in events if e.kind == "stage"]
    assert {e.layer for e in stages} == {1, 2}
    assert [e.stage for e in stages if e.layer == 2][0] == "lazy"
    assert all(e.layer == 2 for e in stages if e.stage in ("generalised", "memorised"))
    c = isotypic_components(parse_group("Z7")).count
    snap = [e for e in events if e.kind == "snapshot"][-1]
    for name, shape in layer_array_shapes(8, c, 2).items():
        assert snap.arrays[name].shape == shape, name
    rows = [e.row() for e in events if e.kind == "metrics"]
    assert all(k in rows[-1] for k in ("conc_mean@2", "coverage@2", "gf_norm@2", "gf_align@2"))
    summary = events[-1].summary
    assert summary["engine_used"] == "autograd"
    assert [s["layer"] for s in summary["layers"]] == [1, 2]
    assert [s["layer"] for s in summary["stages"]] == [e.layer for e in stages]


def test_depth_1_events_all_carry_layer_1_and_no_layer_names():
    events = list(train(RunConfig(**TINY)))
    assert {e.layer for e in events if e.kind == "stage"} == {1}
    assert not any("@" in k for e in events if e.kind == "metrics" for k in e.values)
    assert "layers" not in events[-1].summary and events[-1].summary["engine_used"] == "fused"


@pytest.mark.parametrize("onsets, order", [
    ([10, 40, 80], BOTTOM_UP),
    ([40, 10], NOT_BOTTOM_UP),
    ([None, 30], NOT_BOTTOM_UP),  # a higher layer began while the bottom one had not
    ([10, 12], TOGETHER),
    ([10, 12, 40], PARTLY_BOTTOM_UP),
    ([30, None], None), ([None, None, None], None),
])
def test_layer_order_of_onsets(onsets, order):
    assert layer_order(onsets, tie=5) == order


def _rows(starts: list[int], steps: int = 120):
    """Metric rows of a synthetic run: fitted at step 5, layer l's focus and coverage climb from
    step ``starts[l-1]`` on (G_F aligned throughout), test accuracy near chance."""
    for s in range(steps):
        row = {"step": s, "train_acc": 1.0 if s >= 5 else 0.2, "test_acc": 0.05}
        for layer, t in enumerate(starts, 1):
            sfx = "" if layer == 1 else f"@{layer}"
            climb = max(0, s - t)
            row[f"conc_mean{sfx}"] = min(0.9, 0.02 + 0.01 * climb)
            row[f"coverage{sfx}"] = float(min(11, climb // 3))
            row[f"gf_align{sfx}"] = 0.5
            row[f"gf_norm{sfx}"] = 0.1
        yield row


@pytest.mark.parametrize("starts, order", [
    ([10, 40, 70], BOTTOM_UP),  # the bottom layer's features form first: reported
    ([70, 40, 10], NOT_BOTTOM_UP),  # the top layer's first: reported as such, not reordered
    ([30, 30, 30], TOGETHER),  # all at once: no order invented
])
def test_the_detector_reports_the_order_that_happened(starts, order):
    ls = LayerStages(3, 11, 119, 23)
    events = [e for row in _rows(starts) for e in ls.update(row)]
    onsets = ls.onsets("interactive")
    assert all(o is not None for o in onsets)
    assert ls.orders()["interactive"] == order and ls.order() == (order, "interactive")
    for layer, start in enumerate(starts, 1):
        (ev,) = [e for e in events if e.layer == layer and e.stage == "independent"]
        assert abs(ev.step - start) <= 5  # each layer's onset is its own climb's foot
    assert not [e for e in events if e.stage in ("generalised", "memorised") and e.layer != 3]


def test_answers_from_stored_weights_are_the_deep_networks():
    from li2core.predict import WeightsMismatch, snapshot_layers, table_outcome

    cfg = RunConfig(**{**TINY, "depth": 3})
    events = list(train(cfg, instruments=False))
    snap, final = events[-2].arrays, events[-1].summary["final"]
    assert events[-2].kind == "snapshot"
    out = table_outcome(cfg, snap["W"], snap["V"], snapshot_layers(cfg, snap))
    assert out.accuracies()["test_acc"] == pytest.approx(final["test_acc"], abs=1e-6)
    assert out.accuracies()["train_acc"] == pytest.approx(final["train_acc"], abs=1e-6)
    with pytest.raises(WeightsMismatch, match="depth 3"):
        table_outcome(cfg, snap["W"], snap["V"])  # without W2, W3
