"""The stage detector: its rules on constructed metric streams, then on real training runs
(grokking, the same run without weight decay, and a run far below p_crit)."""

import pytest

from li2core import RunConfig, train
from li2core.stages import StageDetector, Thresholds
from li2core.theory import p_crit

# Z23 (11 frequencies), 256 nodes, p = 0.6: groks near step 90 (test acc ≥ 0.99 at 88, 95, 100
# for seeds 0-2); the same run with weight_decay = 0 stays at test acc ≈ 0.07 (docs/stages.md).
GROKS = dict(group="Z23", hidden=256, train_fraction=0.6, lr=5e-3, weight_decay=1e-3,
             steps=300, eval_every=1, snapshot_every=100)


def _row(step, train, test, conc, cover, align=0.6, gf=0.05, mem=0.0, active=100.0):
    return {"step": step, "train_acc": train, "test_acc": test, "conc_mean": conc,
            "coverage": cover, "gf_align": align, "gf_norm": gf, "memorising_nodes": mem,
            "active_nodes": active}


def _feed(det, rows):
    out = []
    for r in rows:
        out += det.update(r)
    return out


def test_first_row_is_lazy_with_evidence():
    det = StageDetector(n_components=10)
    (ev,) = det.update(_row(0, 0.1, 0.1, 0.2, 0))
    assert (ev.step, ev.stage) == (0, "lazy")
    assert set(ev.evidence) == {"rule", "indicators", "thresholds"}
    assert ev.evidence["indicators"]["conc_mean"] == pytest.approx(0.2)
    assert det.update(_row(1, 0.2, 0.1, 0.2, 0)) == []


def test_grokking_stream_goes_through_the_stages_in_order():
    rows = [_row(s, min(1.0, 0.1 + s / 10), 0.0, 0.2, 0) for s in range(10)]
    rows += [_row(s, 1.0, 0.0, 0.205 + 0.01 * (s - 10), min(10, (s - 10) // 3))
             for s in range(10, 60)]
    rows += [_row(s, 1.0, min(1.0, (s - 60) / 20), 0.7, 10) for s in range(60, 90)]
    evs = _feed(StageDetector(n_components=10), rows)
    assert [e.stage for e in evs] == ["lazy", "independent", "interactive", "generalised"]
    ind, inter, gen = evs[1:]
    # independent: concentration 0.1 of the way to 1 (0.28) and 3 components locked
    assert ind.step == 19 and ind.evidence["indicators"]["coverage"] >= 3
    assert inter.step == 25  # coverage ≥ 5 of 10 components
    assert gen.step == 80 and gen.evidence["thresholds"] == {"generalised": 0.99}
    for ev in evs[1:]:
        assert ev.evidence["rule"] and ev.evidence["thresholds"]


def test_alignment_measured_before_the_fit_does_not_count():
    det = StageDetector(n_components=10)
    _feed(det, [_row(0, 0.1, 0.0, 0.2, 0, align=0.9)])
    # train fits at step 5; the gradient group last ran at step 0 (not fresh since)
    evs = []
    for s in range(1, 40):
        evs += det.update(_row(s, 1.0 if s >= 5 else 0.5, 0.0, 0.5, 5, align=0.9),
                          fresh={"conc_mean", "coverage"})
    assert [e.stage for e in evs] == []
    evs = det.update(_row(40, 1.0, 0.0, 0.5, 5, align=0.9), fresh={"gf_align"})
    assert [e.stage for e in evs] == ["independent"]


def test_plateau_without_feature_learning_is_memorised_and_late_grokking_overturns_it():
    th = Thresholds()
    det = StageDetector(n_components=10, thresholds=th)
    rows = [_row(s, 1.0 if s >= 10 else 0.5, 0.02, 0.2 + 0.0001 * s, 0, align=0.05)
            for s in range(100)]
    evs = _feed(det, rows)
    assert [e.stage for e in evs] == ["lazy", "memorised"]
    assert evs[1].step == 10 + 2 * th.window  # the fit held for two stall windows
    assert det.outcome == "memorised"
    evs = _feed(det, [_row(100, 1.0, 0.3, 0.5, 6), _row(101, 1.0, 0.3, 0.6, 8),
                      _row(102, 1.0, 1.0, 0.9, 10)])
    assert [e.stage for e in evs] == ["independent", "interactive", "generalised"]
    assert det.outcome == "generalised"


def test_memorising_nodes_settle_memorisation_even_while_concentration_drifts():
    det = StageDetector(n_components=10)
    rows = [_row(s, 1.0, 0.0, 0.2 + 0.01 * s, 0, align=0.05, mem=80.0) for s in range(200)]
    evs = _feed(det, rows)
    assert [e.stage for e in evs] == ["lazy", "memorised"]
    assert evs[1].evidence["indicators"]["memorising_share"] == pytest.approx(0.8)


def test_end_of_run_without_features_is_memorised():
    det = StageDetector(n_components=10, end_step=20)
    evs = _feed(det, [_row(s, 1.0, 0.05, 0.2 + 0.02 * s, 0, align=0.05) for s in range(21)])
    assert [(e.step, e.stage) for e in evs] == [(0, "lazy"), (20, "memorised")]


def _run(**changes):
    events = list(train(RunConfig(**{**GROKS, **changes})))
    rows = [e.row() for e in events if e.kind == "metrics"]
    stages = [e for e in events if e.kind == "stage"]
    return rows, stages, events[-1].summary


def _first(rows, key, thr):
    return next((r["step"] for r in rows if r[key] >= thr), None)


def test_grokking_run_goes_lazy_independent_interactive_generalised():
    rows, stages, summary = _run()
    names = [s.stage for s in stages]
    assert names == ["lazy", "independent", "interactive", "generalised"]
    steps = {s.stage: s.step for s in stages}
    assert steps["lazy"] < steps["independent"] < steps["interactive"] < steps["generalised"]
    assert steps["interactive"] < _first(rows, "test_acc", 0.99)
    assert summary["outcome"] == "generalised"
    assert summary["coverage"] == 11 == summary["coverage_max"]  # all 11 frequencies
    assert summary["concentration"] > 0.8
    assert sum(summary["nodes_per_component"]) >= 22  # ≥ 2 locked nodes per frequency on average


def test_same_run_without_weight_decay_locks_no_node_and_learns_no_feature():
    rows, stages, summary = _run(weight_decay=0.0)
    names = {s.stage for s in stages}
    assert not names & {"independent", "interactive", "generalised"}
    assert summary["outcome"] == "memorised"
    assert rows[-1]["train_acc"] == 1.0 and rows[-1]["test_acc"] < 0.2
    assert summary["concentration"] < 0.5  # with weight decay it ends > 0.9
    assert sum(summary["nodes_per_component"]) <= 5  # of 256 nodes


def test_run_far_below_p_crit_is_memorised_by_memorising_nodes():
    p = 0.3 * p_crit(RunConfig(**GROKS).build_group())
    rows, stages, summary = _run(train_fraction=p, steps=150)
    assert [s.stage for s in stages] == ["lazy", "memorised"]
    assert summary["outcome"] == "memorised"
    last = rows[-1]
    assert last["train_acc"] == 1.0 and last["test_acc"] < 0.1
    assert last["memorising_nodes"] >= 0.5 * last["active_nodes"]
    assert summary["coverage"] == 0


@pytest.mark.slow
def test_fig3_stages_follow_the_reference_timeline():
    """li2-theory §5: train ≥ 0.99 by ~20, test 0.5 near 100, ≥ 0.99 near 140, all 35
    frequencies by ~160; our detector: independent, then interactive before test acc 0.99."""
    cfg = RunConfig(group="Z71", hidden=2048, train_fraction=0.4, lr=1e-3, weight_decay=2e-4,
                    steps=200, eval_every=1, snapshot_every=100)
    events = list(train(cfg))
    rows = [e.row() for e in events if e.kind == "metrics"]
    steps = {e.stage: e.step for e in events if e.kind == "stage"}
    assert list(steps) == ["lazy", "independent", "interactive", "generalised"]
    assert _first(rows, "train_acc", 0.99) <= 30
    assert 60 <= steps["independent"] < steps["interactive"] < _first(rows, "test_acc", 0.99)
    assert 110 <= steps["generalised"] <= 170
    assert events[-1].summary["coverage"] == 35
