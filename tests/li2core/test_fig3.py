"""The paper's Fig. 3 setting at full size (about a minute on one core): marked slow."""

import pytest

from li2core import train
from li2core.presets import PRESET_OUTCOMES, get_preset
from li2core.sweep import classify_outcome


def final_summary(name):
    cfg = get_preset(name).with_(eval_every=10, snapshot_every=100_000)
    return [e for e in train(cfg, instruments=False)][-1].summary


@pytest.mark.slow
def test_fig3_groks_and_fig3_without_weight_decay_does_not():
    with_wd = final_summary("fig3")
    # li2-theory §5: train ≥ 0.99 by ~20, test ≥ 0.99 near 140
    assert with_wd["first_step"]["train_acc>=0.99"] <= 40
    assert 80 <= with_wd["first_step"]["test_acc>=0.99"] <= 250
    without = final_summary("fig3-no-wd")
    assert without["first_step"]["train_acc>=0.99"] <= 40
    assert without["first_step"]["test_acc>=0.5"] is None
    assert without["final"]["test_acc"] < 0.1
    # the presets' described outcomes (tests/li2core/test_presets.py checks the others)
    for name, summary in (("fig3", with_wd), ("fig3-no-wd", without)):
        assert classify_outcome(summary["final"], None, 71) == PRESET_OUTCOMES[name]
