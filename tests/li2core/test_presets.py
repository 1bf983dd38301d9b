"""Every preset does what its description says within its own steps, on one core (slow: the
fig3 pair, the largest, is checked in test_fig3.py with the same helper)."""

import pytest

from li2core import train
from li2core.presets import PRESET_OUTCOMES, PRESETS, get_preset
from li2core.sweep import classify_outcome, window_ago_test_acc
from li2core.vocabulary import OUTCOMES

SMALL = [name for name in PRESETS if not name.startswith("fig3")]


def preset_outcome(name: str) -> tuple[str, dict]:
    """Train the preset as configured (bare engine: outcomes need only the metric rows) and
    classify it with the sweeps' rule (li2core.vocabulary.final_outcome)."""
    cfg = get_preset(name).with_(eval_every=5, snapshot_every=100_000)  # eval: no_grad, same run
    history, first_loss, summary = [], None, None
    for ev in train(cfg, instruments=False):
        if ev.kind == "metrics":
            first_loss = ev.train_loss if first_loss is None else first_loss
            history.append((ev.step, ev.train_acc, ev.test_acc))
        elif ev.kind == "finished":
            summary = ev.summary
    outcome = classify_outcome(summary["final"], first_loss, cfg.group_order,
                               window_ago_test_acc(history))
    return outcome, summary


def test_every_preset_names_an_outcome_from_the_vocabulary():
    assert set(PRESET_OUTCOMES) == set(PRESETS)
    assert set(PRESET_OUTCOMES.values()) <= set(OUTCOMES)
    for name, (description, _) in PRESETS.items():
        word = {"generalised": "generalises", "memorised": "memorises"}[PRESET_OUTCOMES[name]]
        assert word in description, name


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_preset_does_what_its_description_says(name):
    outcome, summary = preset_outcome(name)
    assert outcome == PRESET_OUTCOMES[name], (name, summary["final"], summary["first_step"])
    if name == "lecture":  # "fits the training table by step 30, generalises near step 200"
        assert summary["first_step"]["train_acc>=0.99"] <= 30
        assert 150 <= summary["first_step"]["test_acc>=0.99"] <= 260
    if name == "dihedral":  # "generalises near step 115"
        assert summary["first_step"]["test_acc>=0.99"] <= 160
