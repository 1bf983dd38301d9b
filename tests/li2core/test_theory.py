"""Theory module: the energy and its gradient, its maxima, p_crit, verdicts, Stage II simulation."""

import numpy as np
import pytest
import torch

from li2core.config import RunConfig
from li2core.energy import SIGMA, Rows, _automorphism_classes, ascend, component_energy_star
from li2core.groups import parse_group
from li2core.irreps import component_power, concentration, isotypic_components
from li2core.model import ACTIVATIONS
from li2core.theory import (
    energy,
    energy_grad,
    energy_star,
    min_width,
    p_crit,
    predict_verdict,
    simulate_independent,
)
from li2core.train import train
from li2core.vocabulary import agreement

torch.set_num_threads(1)
ACTS = ["square", "relu", "silu", "relu_square"]


@pytest.mark.parametrize("act", ACTS)
def test_sigma_matches_the_model(act):
    z = torch.linspace(-3, 3, 101, dtype=torch.float64)
    torch.testing.assert_close(SIGMA[act][0](z), ACTIVATIONS[act](z))


def brute_energy(w, group, act, rows):
    """½‖Ỹᵀσ(Xw)‖² with dense one-hot X, Y and the centring matrix P⊥ = I − 𝟙𝟙ᵀ/n."""
    m = group.order
    a, b = rows // m, rows % m
    n = len(rows)
    x = np.zeros((n, 2 * m))
    x[np.arange(n), a] = 1
    x[np.arange(n), m + b] = 1
    y = np.zeros((n, m))
    y[np.arange(n), group.table[a, b]] = 1
    yt = (np.eye(n) - np.ones((n, n)) / n) @ y
    f = SIGMA[act][0](torch.tensor(x @ w)).numpy()
    return 0.5 * ((yt.T @ f) ** 2).sum(axis=0)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("spec", ["Z7", "S3"])
def test_energy_matches_dense_formula_and_autograd(spec, act):
    group = parse_group(spec)
    m = group.order
    rows = np.sort(np.random.default_rng(0).choice(m * m, size=m * m // 2, replace=False))
    w = np.random.default_rng(1).standard_normal((2 * m, 5))
    np.testing.assert_allclose(energy(w, group, act, rows), brute_energy(w, group, act, rows),
                               rtol=1e-10)
    # autograd on the torch path (float64), node by node
    wt = torch.tensor(w, requires_grad=True)
    e = energy(torch.tensor(w), group, act, torch.as_tensor(rows))
    assert isinstance(e, torch.Tensor) and e.shape == (5,)
    z = wt[torch.as_tensor(rows // m)] + wt[m + torch.as_tensor(rows % m)]
    f = SIGMA[act][0](z)
    yv = torch.as_tensor(group.table[rows // m, rows % m])
    r = torch.zeros(m, 5, dtype=torch.float64).index_add(0, yv, f)
    r = r - torch.bincount(yv, minlength=m).double()[:, None] / len(rows) * f.sum(0)
    (0.5 * (r * r).sum()).backward()
    np.testing.assert_allclose(energy_grad(w, group, act, rows), wt.grad.numpy(), rtol=1e-9,
                               atol=1e-12)
    # 1-D input: float energy and (2M,) gradient
    assert isinstance(energy(w[:, 0], group, act), float)
    assert energy_grad(w[:, 0], group, act).shape == (2 * m,)


def test_single_frequency_energy_is_quarter_order():
    """u_m = cos(2πkm/M)/√M, v = u: ℰ = M/4 (derivation: the cross term 2Σ_a u_a v_{c−a} =
    cos(2πkc/M) survives centring, the squares do not), and M/2 for k = M/2."""
    for m in (11, 12):
        group = parse_group(f"Z{m}")
        t = np.arange(m)
        u = np.cos(2 * np.pi * 3 * t / m)
        w = np.concatenate([u, u]) / np.linalg.norm(np.concatenate([u, u]))
        assert energy(w, group) == pytest.approx(m / 4)
    alt = np.concatenate([(-1.0) ** t, (-1.0) ** t]) / np.sqrt(24)
    assert energy(alt, parse_group("Z12")) == pytest.approx(12 / 2)


@pytest.mark.parametrize("spec", ["Z11", "Z13", "D5"])
def test_ascent_ends_on_a_single_component(spec):
    group = parse_group(spec)
    m = group.order
    w0 = torch.randn(2 * m, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w, e = ascend(w0, Rows(group), "square", 300, 0.5)
    comps = isotypic_components(group)
    wn = w.numpy()
    spec_uv = component_power(comps, wn[:m]) + component_power(comps, wn[m:])
    assert concentration(spec_uv).min() >= 0.95
    assert torch.allclose(w.norm(dim=0), torch.ones(8, dtype=torch.float64))
    # each node ends at (nearly) the component's maximal energy
    stars = component_energy_star(group, "square")
    np.testing.assert_allclose(e.numpy(), stars[spec_uv.argmax(axis=1)], rtol=0.02)


def test_energy_star_values():
    # the random-start ascent alone (not the closed form) must find M/4 on Z11
    w0 = torch.randn(22, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, e = ascend(w0, Rows(parse_group("Z11")), "square", 200, 0.5)
    assert float(e.max()) == pytest.approx(11 / 4, rel=0.02)
    assert energy_star(parse_group("Z11"), "square") == pytest.approx(11 / 4, rel=0.02)
    assert energy_star(parse_group("Z12"), "square") == pytest.approx(12 / 2, rel=0.02)
    # D5 by ascent: its sign character behaves like k = M/2 (M/2); the two 2-dim irreps are
    # swapped by the automorphism r ↦ r², so their maxima must agree
    d5 = component_energy_star(parse_group("D5"), "square")
    assert d5[0] == pytest.approx(5.0, rel=0.02)
    assert d5[1] == pytest.approx(d5[2], rel=0.01) and d5[1] < d5[0]
    relu = component_energy_star(parse_group("Z11"), "relu")
    assert relu.shape == (5,) and np.all(relu > 0)


def test_automorphisms_leave_energy_unchanged():
    """component_energy_star computes one start per orbit of k ↦ s·k: check the premise."""
    group = parse_group("Z4xZ7")
    w = np.random.default_rng(2).standard_normal((56, 3))
    s = 3  # a unit mod 28: (a1, a2) ↦ (3·a1 mod 4, 3·a2 mod 7) is an automorphism
    idx = np.arange(28)
    perm = (s * (idx // 7) % 4) * 7 + s * (idx % 7) % 7
    moved = np.concatenate([w[:28][perm], w[28:][perm]])
    for act in ACTS:
        np.testing.assert_allclose(energy(moved, group, act), energy(w, group, act), rtol=1e-10)
    labels = isotypic_components(parse_group("Z12")).labels  # k = 1..6
    assert _automorphism_classes(parse_group("Z12"), labels) == [0, 1, 2, 3, 0, 5]


def test_p_crit_values():
    for m, want in [(23, 0.375), (41, 0.249), (71, 0.165), (127, 0.105)]:
        assert p_crit(parse_group(f"Z{m}")) == pytest.approx(want, abs=0.002)
    assert p_crit(parse_group("D5")) == pytest.approx(2.7482 * np.log(10) / 10)


def test_min_width():
    assert min_width(parse_group("Z71")) == 140
    assert min_width(parse_group("Z4xZ7")) == 54
    assert min_width(parse_group("D5")) == 2 * (1 + 4 * 2 + 4 * 2)
    assert min_width(parse_group("S4")) == 2 * (1 + 4 * 2 + 9 * 3 + 9 * 3)


def test_predict_verdict_cases():
    base = RunConfig(group="Z23", train_fraction=0.5, hidden=128)
    ok = predict_verdict(base)
    assert ok["verdict"] == "generalise" and ok["min_width"] == 44 and ok["width"] == 128
    assert ok["p_crit"] == pytest.approx(0.375, abs=0.002) and ok["p"] == 0.5
    # wd = 0: a narrow net under Adam hedges (measured to learn features); SGD or a wide net
    # (K ≥ n, Fig. 3) memorises; the ridge top layer keeps its own regulariser
    no_wd = predict_verdict(base.with_(weight_decay=0.0))
    assert no_wd["verdict"] == "uncertain" and no_wd["decided_by"] == "no_weight_decay_narrow"
    assert "G_F" in no_wd["reasons"][0] and "Width and learning rate" in no_wd["reasons"][0]
    assert predict_verdict(base.with_(weight_decay=0.0, optimizer="sgd"))["verdict"] == "memorise"
    fig3 = RunConfig(group="Z71", hidden=2048, train_fraction=0.4, weight_decay=0.0)
    assert predict_verdict(fig3)["verdict"] == "memorise"
    assert predict_verdict(base.with_(weight_decay=0.0, top_layer="ridge"))["verdict"] == \
        "generalise"
    low = predict_verdict(base.with_(train_fraction=0.1))
    assert low["verdict"] == "memorise" and "well below" in low["reasons"][0]
    just_below = predict_verdict(base.with_(train_fraction=0.35))
    assert just_below["verdict"] == "uncertain" and "just below" in just_below["reasons"][0]
    near = predict_verdict(base.with_(train_fraction=0.4))
    assert near["verdict"] == "generalise" and "just above" in " ".join(near["reasons"])
    lazy = predict_verdict(base.with_(hidden=4096))
    assert lazy["verdict"] == "uncertain" and "kernel" in lazy["reasons"][0]
    narrow = predict_verdict(base.with_(hidden=8))
    assert any("min_width" in r for r in narrow["reasons"])
    relu = predict_verdict(base.with_(activation="relu"))
    assert relu["verdict"] == "uncertain" and "quadratic" in relu["reasons"][0]
    assert predict_verdict(base.with_(loss="cross_entropy"))["verdict"] == "uncertain"
    assert predict_verdict(RunConfig(group="D5", train_fraction=0.9, hidden=64))["verdict"] == \
        "generalise"
    # a firm memorise outranks a hedge: far below p_crit with ReLU still memorises
    assert predict_verdict(base.with_(train_fraction=0.1, activation="relu"))["verdict"] == \
        "memorise"


def test_came_true_only_when_the_outcome_matches():
    assert agreement("generalise", "generalised") == "came_true"
    assert agreement("memorise", "memorised") == "came_true"
    assert agreement("generalise", "memorised") == "failed"
    assert agreement("memorise", "generalised") == "failed"
    assert agreement("generalise", "still_learning") == "undecided"
    assert agreement("uncertain", "generalised") == "not_committed"


def test_simulation_starts_from_the_runs_own_weights():
    cfg = RunConfig(group="Z11", train_fraction=0.8, hidden=16, steps=1, snapshot_every=1)
    snap = next(ev for ev in train(cfg, instruments=False) if ev.kind == "snapshot")
    w_run = snap.arrays["W"].astype(np.float64)
    sim0 = simulate_independent(cfg, steps=0)
    np.testing.assert_allclose(sim0["W"], w_run / np.linalg.norm(w_run, axis=0), atol=1e-6)


def test_simulation_predicts_single_frequencies_at_large_p_only():
    big = simulate_independent(RunConfig(group="Z23", train_fraction=0.9, hidden=32))
    assert big["spectrum"].shape == (32, 11) and big["labels"][0] == "k=1"
    assert big["concentration"].min() > 0.9
    assert len(set(big["dominant"].tolist())) >= 6  # random starts pick many frequencies
    # well below p_crit the ascent on the training rows memorises: no frequency locks, and the
    # directions carry far more energy on the training rows than they would on the full table
    small = simulate_independent(RunConfig(group="Z23", train_fraction=0.15, hidden=32))
    assert small["concentration"].mean() < 0.5
    assert np.median(small["energy_full"]) < np.median(small["energy_train"])
