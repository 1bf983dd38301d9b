"""Deeper networks do what li2-theory §6 says, at small size on one core (slow): depth 2 and 3
generalise on Z23 with weight decay and memorise without it, the bottom layer's nodes lock onto
irreps, its features form first, and a zero-initialised top layer reaches test 0.99 sooner."""

from __future__ import annotations

import statistics

import pytest
import torch

from li2core import train
from li2core.presets import get_preset
from li2core.vocabulary import BOTTOM_UP

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_core():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def summary_of(config, instruments: bool = False) -> dict:
    for ev in train(config, instruments=instruments):
        if ev.kind == "finished":
            return ev.summary
    raise AssertionError("no summary")


@pytest.mark.parametrize("depth, steps", [(2, 800), (3, 1500)])
def test_depth_2_and_3_generalise_with_weight_decay_and_not_without(depth, steps):
    base = get_preset("deep").with_(depth=depth, steps=steps, eval_every=5)
    with_wd = summary_of(base)
    assert with_wd["final"]["test_acc"] >= 0.99, with_wd["first_step"]
    without = summary_of(base.with_(weight_decay=0.0, steps=600))
    assert without["final"]["train_acc"] >= 0.99 and without["final"]["test_acc"] < 0.2


def test_the_bottom_layer_locks_onto_irreps_first():
    s = summary_of(get_preset("deep"), instruments=True)
    assert s["outcome"] == "generalised"
    # no false alarm on the way: values carried between the cadence's rows are not a stall
    assert "memorised" not in [st["stage"] for st in s["stages"]]
    bottom, top = s["layers"]
    # the bottom layer's nodes concentrate on single components (init ≈ 0.02) and cover most
    assert bottom["concentration"] >= 0.5 and bottom["coverage"] >= 8  # of Z23's 11
    # its features form first: Stage III (locked nodes on half the components) bottom-up
    assert bottom["stage_iii_onset"] < top["stage_iii_onset"]
    assert s["layer_orders"]["interactive"] == BOTTOM_UP


def test_zero_init_of_the_top_layer_reaches_test_099_in_fewer_steps():
    """Same seeds, both inits (docs/depth.md has the measured table)."""
    steps = {}
    for scale in (1.0, 0.0):
        steps[scale] = [summary_of(get_preset("deep").with_(top_init_scale=scale, seed=seed,
                                                            eval_every=1))
                        ["first_step"]["test_acc>=0.99"] for seed in range(5)]
    assert None not in steps[1.0] + steps[0.0], steps
    assert statistics.mean(steps[0.0]) < statistics.mean(steps[1.0]), steps
