"""The duplication instrument against a slow per-node computation with explicit projectors, and
its place in train()'s rows and in sweep rows."""

import numpy as np
import pytest
import torch

from li2core import RunConfig, train
from li2core.groups import parse_group
from li2core.instruments.duplication import (
    DuplicationTracker,
    duplication,
    final_mechanism,
    learned_share,
)
from li2core.instruments.spectra import node_spectra
from li2core.irreps import isotypic_components, projectors
from li2core.presets import get_preset
from li2core.sweep import SweepConfig, run_sweep


def _slow(comps, w, dw):
    """Per node, by loops: locks from explicit projectors, then the learned share of dw."""
    m, k = comps.order, w.shape[1]
    proj = projectors(comps)[:-1]  # non-trivial components only
    w, dw = w.numpy().astype(np.float64), dw.numpy().astype(np.float64)
    norms = np.linalg.norm(w, axis=0)
    ref = np.sort(norms)[int(np.ceil(0.99 * k)) - 1]
    dom, locked, active = [], [], []
    for j in range(k):
        p = [proj[c] @ w[:m, j] @ w[:m, j] + proj[c] @ w[m:, j] @ w[m:, j]
             for c in range(comps.count)]
        dom.append(int(np.argmax(p)))
        act = norms[j] >= 0.2 * ref
        active.append(act)
        locked.append(act and max(p) / sum(p) >= 0.8)
    held = [dom[j] for j in range(k) if locked[j]]
    dup = len(held) / len(set(held)) if held else 0.0
    num = den = 0.0
    for j in range(k):
        if not active[j]:
            continue
        wh = w[:, j] / np.linalg.norm(w[:, j])
        t = dw[:, j] - (dw[:, j] @ wh) * wh
        others = [dom[i] for i in range(k) if locked[i] and i != j]
        for c in range(comps.count):
            pc = proj[c] @ t[:m] @ t[:m] + proj[c] @ t[m:] @ t[m:]
            den += pc
            num += pc if c in others else 0.0
    return dup, len(held), num / den


def _locked_weights(m, k, gen):
    """W whose first nodes sit on single frequencies (some shared), the rest random."""
    w = torch.randn(2 * m, k, generator=gen, dtype=torch.float64) * 0.05
    x = torch.arange(m, dtype=torch.float64)
    for j, f in enumerate([1, 1, 1, 2, 3, 3]):
        w[:m, j] = torch.cos(2 * torch.pi * f * x / m + j)
        w[m:, j] = torch.sin(2 * torch.pi * f * x / m + 2 * j)
    return w


def test_duplication_and_learned_share_match_a_slow_computation():
    comps = isotypic_components(parse_group("Z11"))
    gen = torch.Generator().manual_seed(3)
    w = _locked_weights(11, 14, gen)
    dw = torch.randn(22, 14, generator=gen, dtype=torch.float64)
    ns = node_spectra(comps, w)
    slow_dup, slow_locked, slow_share = _slow(comps, w, dw)
    got = duplication(ns)
    assert got["locked_nodes"] == slow_locked == 6
    assert abs(got["duplication"] - slow_dup) < 1e-12 and abs(slow_dup - 2.0) < 1e-12
    share = learned_share(comps, ns, dw, w)
    assert abs(share - slow_share) < 1e-9
    # node 4 (frequency 2) holds its component alone: its update there counts as new
    assert 0.0 < share < 1.0


def test_learned_share_is_zero_before_anything_locks_and_one_inside_held_components():
    comps = isotypic_components(parse_group("Z11"))
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(22, 16, generator=gen, dtype=torch.float64)
    ns = node_spectra(comps, w)
    assert duplication(ns) == {"locked_nodes": 0.0, "duplication": 0.0}
    assert learned_share(comps, ns, torch.randn(22, 16, generator=gen, dtype=torch.float64),
                         w) == 0.0
    w2 = _locked_weights(11, 6, gen)  # every node locked, frequencies 1 and 3 shared
    ns2 = node_spectra(comps, w2)
    x = torch.arange(11, dtype=torch.float64)
    dw = torch.zeros(22, 6, dtype=torch.float64)
    dw[:11, 0] = torch.sin(2 * torch.pi * 3 * x / 11)  # node 0 pushed towards frequency 3
    assert abs(learned_share(comps, ns2, dw, w2) - 1.0) < 1e-12
    tracker = DuplicationTracker(comps)
    assert "learned_share" not in tracker.update(ns2, w2)
    assert "learned_share" in tracker.update(ns2, w2 + dw)


def test_train_rows_and_sweep_rows_carry_duplication():
    cfg = RunConfig(group="Z13", hidden=48, train_fraction=0.6, lr=1e-2, weight_decay=1e-3,
                    steps=60, eval_every=5, snapshot_every=30)
    rows = [e.values for e in train(cfg) if e.kind == "metrics"]
    assert "learned_share" not in rows[0] and "learned_share" in rows[1]
    assert all(r["duplication"] == 0 or r["duplication"] >= 1 for r in rows)
    sweep = SweepConfig(base=cfg, grid={"optimizer": ["adam", "muon"]})
    res = run_sweep(sweep)
    for r in res:
        row = r.row()
        final_w = None
        for e in train(r.config, instruments=False):
            if e.kind == "snapshot":
                final_w = e.arrays["W"]
        assert row["coverage"] == final_mechanism(r.config, final_w)["coverage"]
        assert row["first_test_acc_0.99"] == r.first_step["test_acc>=0.99"]
        assert row["optimizer"] == r.config.optimizer


@pytest.mark.slow
def test_muon_preset_groks_later_than_its_adam_twin_as_its_description_says():
    """The muon / muon-adam descriptions report no speed-up for Muon (8 seeds); seed 0 agrees."""
    first = {}
    for name in ("muon", "muon-adam"):
        cfg = get_preset(name).with_(eval_every=10)
        done = [e for e in train(cfg, instruments=False) if e.kind == "finished"][0]
        first[name] = done.summary["first_step"]["test_acc>=0.99"]
    assert first["muon-adam"] is not None and first["muon"] is not None
    assert first["muon"] > first["muon-adam"] + 50


def test_optimizers_preset_spans_the_minimal_width_with_tuned_settings_and_seeds():
    from li2core.sweep_presets import get_sweep_preset
    from li2core.theory import min_width

    sweep = get_sweep_preset("optimizers")
    assert sweep.zipped["optimizer"] == ["adam", "adamw", "muon"]
    assert len(set(zip(sweep.zipped["lr"], sweep.zipped["weight_decay"], strict=True))) == 3
    mw = min_width(sweep.base.build_group())
    ks = sweep.grid["hidden"]
    assert min(ks) < mw and max(ks) >= 2 * mw
    assert len(sweep.grid["seed"]) >= 5


def test_theory_card_carries_the_measured_optimizer_note_for_muon_only():
    from li2core.theory import MUON_NOTE, predict_verdict

    assert MUON_NOTE in predict_verdict(get_preset("muon"))["reasons"]
    assert MUON_NOTE not in predict_verdict(get_preset("muon-adam"))["reasons"]
