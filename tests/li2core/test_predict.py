"""The table of answers from stored weights agrees with an explicit one-hot forward pass and
with the accuracies train() itself reported at the same step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from li2core import RunConfig, train
from li2core.model import ACTIVATIONS
from li2core.predict import WeightsMismatch, ask, output_scores, table_outcome

TINY = dict(group="Z11", hidden=32, train_fraction=0.6, lr=0.01, weight_decay=5e-4, steps=60,
            snapshot_every=20)


def dense_scores(config: RunConfig, w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """σ(XW)V with X the explicit (M², 2M) one-hot matrix [e_a; e_b], in float64."""
    m = config.group_order
    a, b = np.divmod(np.arange(m * m), m)
    x = np.zeros((m * m, 2 * m))
    x[np.arange(m * m), a] = 1.0
    x[np.arange(m * m), m + b] = 1.0
    h = torch.from_numpy(x @ w.astype(np.float64))
    return ACTIVATIONS[config.activation](h).numpy() @ v.astype(np.float64)


@pytest.mark.parametrize("group,activation", [("Z7", "square"), ("D4", "relu"),
                                               ("S3", "silu"), ("Z2xZ3", "relu_square")])
def test_scores_match_a_dense_one_hot_forward(group, activation):
    config = RunConfig(group=group, hidden=12, activation=activation)
    m = config.group_order
    rng = np.random.default_rng(1)
    w, v = rng.standard_normal((2 * m, 12)), rng.standard_normal((12, m))
    a, b = np.divmod(np.arange(m * m), m)
    got = output_scores(config, w, v, a, b).numpy()
    np.testing.assert_allclose(got, dense_scores(config, w, v), rtol=1e-4, atol=1e-4)
    out = table_outcome(config, w, v)
    want = dense_scores(config, w, v)
    assert (out.prediction == want.argmax(1)).mean() > 0.99  # float32 vs float64 near-ties
    assert np.array_equal(out.label, config.build_group().table.reshape(-1))
    assert np.all((out.margin > 0) == out.correct)


def test_table_accuracies_equal_what_training_reported_at_each_snapshot():
    config = RunConfig(**TINY)
    rows, snaps = {}, {}
    for event in train(config, instruments=False):
        if event.kind == "metrics":
            rows[event.step] = event
        elif event.kind == "snapshot":
            snaps[event.step] = event.arrays
    assert sorted(snaps) == [0, 20, 40, 60]
    for step, arrays in snaps.items():
        out = table_outcome(config, arrays["W"], arrays["V"])
        acc = out.accuracies()
        assert acc["train_acc"] == pytest.approx(rows[step].train_acc, abs=1e-6)
        assert acc["test_acc"] == pytest.approx(rows[step].test_acc, abs=1e-6)
        counts = out.counts()
        assert counts["train_right"] + counts["train_wrong"] == round(0.6 * 121)
        assert sum(counts.values()) == 121
    # one pair asked alone gets the table's answer
    out = table_outcome(config, snaps[60]["W"], snaps[60]["V"])
    for a, b in [(0, 0), (3, 9), (10, 10)]:
        one = ask(config, snaps[60]["W"], snaps[60]["V"], a, b)
        assert one["label"] == (a + b) % 11
        assert one["prediction"] == out.prediction[a * 11 + b]
        assert one["scores"][0]["element"] == one["prediction"]
        assert [s["score"] for s in one["scores"]] == sorted(
            (s["score"] for s in one["scores"]), reverse=True)
        assert one["margin"] == pytest.approx(float(out.margin[a * 11 + b]), abs=1e-5)


def test_weights_of_another_shape_are_refused():
    config = RunConfig(group="Z5", hidden=4)
    with pytest.raises(WeightsMismatch, match="expected"):
        table_outcome(config, np.zeros((6, 4)), np.zeros((4, 3)))
