"""The stage detector: its rules on constructed metric streams, then on real training runs
(grokking, the same run without weight decay, and a run far below p_crit)."""

import pytest

from li2core import RunConfig, train
from li2core.stages import StageDetector, Thresholds, claims_interactive
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
    assert {"rule", "indicators", "thresholds", "onset_step", "conclusive_step"} <= set(ev.evidence)
    assert ev.evidence["indicators"]["conc_mean"] == pytest.approx(0.2)
    assert ev.evidence["notes"] == []  # 10 components: Stage III can be told apart
    assert ev.evidence["components"] == 10  # the stage card's coverage targets need C
    assert det.update(_row(1, 0.2, 0.1, 0.2, 0)) == []


def test_grokking_stream_places_each_stage_at_its_onset():
    rows = [_row(s, min(1.0, 0.1 + s / 10), 0.0, 0.2, 0) for s in range(10)]
    rows += [_row(s, 1.0, 0.0, 0.205 + 0.01 * (s - 10), min(10, (s - 10) // 3))
             for s in range(10, 60)]
    rows += [_row(s, 1.0, min(1.0, (s - 60) / 20), 0.7, 10) for s in range(60, 90)]
    evs = _feed(StageDetector(n_components=10), rows)
    assert [e.stage for e in evs] == ["lazy", "independent", "interactive", "generalised"]
    ind, inter, gen = evs[1:]
    # conclusive: concentration 0.1 of the way to 1 (0.28) and 3 components locked, at 19;
    # onset: the foot of the climb after the fit (within 0.02 of the low 0.205 at step 10)
    assert ind.evidence["conclusive_step"] == 19 and ind.evidence["indicators"]["coverage"] >= 3
    assert ind.step == ind.evidence["onset_step"] == 11
    # coverage ≥ 5 of 10 at 25; above cover_independent (3) since step 22
    assert inter.evidence["conclusive_step"] == 25 and inter.step == 22
    assert gen.step == 79 and gen.evidence["thresholds"] == {"generalised": 0.95}
    assert [e.step for e in evs] == sorted(e.step for e in evs)
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


def test_small_groups_do_not_claim_interactive_and_say_so():
    assert not claims_interactive(4) and not claims_interactive(7) and claims_interactive(11)
    det = StageDetector(n_components=4)
    rows = [_row(s, 1.0 if s >= 5 else 0.5, 0.0, 0.1 + 0.02 * s, min(4, s // 5))
            for s in range(60)]
    evs = _feed(det, rows)
    assert [e.stage for e in evs] == ["lazy", "independent"]
    assert "Stage III is not claimed" in evs[0].evidence["notes"][0]


def test_plateau_at_chance_without_gradient_is_memorised_and_late_grokking_overturns_it():
    th = Thresholds()
    det = StageDetector(n_components=10, thresholds=th, order=23)
    rows = [_row(s, 1.0 if s >= 10 else 0.5, 0.04, 0.2 + 0.0001 * s, 0, align=0.05)
            for s in range(100)]
    evs = _feed(det, rows)
    assert [e.stage for e in evs] == ["lazy", "memorised"]
    # onset at the fit, conclusive once the fit held for two windows without features
    assert evs[1].step == 10 and evs[1].evidence["conclusive_step"] == 10 + 2 * th.window
    assert det.final_outcome() == "memorised"
    evs = _feed(det, [_row(100, 1.0, 0.3, 0.5, 6), _row(101, 1.0, 0.3, 0.6, 8),
                      _row(102, 1.0, 1.0, 0.9, 10)])
    assert [e.stage for e in evs] == ["independent", "interactive", "generalised"]
    assert det.final_outcome() == "generalised"


@pytest.mark.parametrize("test_acc,slope", [(0.33, 0.0), (0.06, 0.002)])
def test_a_run_above_chance_or_rising_is_never_memorised(test_acc, slope):
    """D13 (chance 1/26): test acc 0.33 is 8.5× chance; 0.06 rising 0.002/step is learning."""
    det = StageDetector(n_components=7, end_step=199, order=26)
    rows = [_row(s, 1.0 if s >= 10 else 0.5, min(1.0, test_acc + slope * s), 0.2, 0,
                 align=0.05, mem=80.0) for s in range(200)]
    evs = _feed(det, rows)
    assert "memorised" not in [e.stage for e in evs]
    assert det.final_outcome() == "still_learning"


def test_aligned_gradient_keeps_a_slow_learner_from_being_memorised():
    """ReLU at Z71: test at chance for 200 steps while G_F stays aligned and concentration
    creeps up; it generalises later (docs/stages.md)."""
    det = StageDetector(n_components=35, end_step=150, order=71)
    rows = [_row(s, 1.0 if s >= 30 else 0.5, 0.02, 0.1 + 0.001 * s, 0, align=0.5)
            for s in range(151)]
    assert [e.stage for e in _feed(det, rows)] == ["lazy"]
    assert det.final_outcome() == "still_learning"


def test_memorising_nodes_settle_memorisation_even_while_concentration_drifts():
    det = StageDetector(n_components=10, order=23)
    rows = [_row(s, 1.0, 0.0, 0.2 + 0.01 * s, 0, align=0.05, mem=80.0) for s in range(200)]
    evs = _feed(det, rows)
    assert [e.stage for e in evs] == ["lazy", "memorised"]
    assert evs[1].evidence["indicators"]["memorising_share"] == pytest.approx(0.8)


def test_end_of_run_without_features_is_memorised():
    det = StageDetector(n_components=10, end_step=20, order=23)
    evs = _feed(det, [_row(s, 1.0, 0.05, 0.2, 0, align=0.05) for s in range(21)])
    assert [(e.step, e.stage) for e in evs] == [(0, "lazy"), (0, "memorised")]
    assert evs[1].evidence["conclusive_step"] == 20


def test_unfitted_run_is_not_yet_fitted():
    det = StageDetector(n_components=10, end_step=20, order=23)
    _feed(det, [_row(s, 0.5, 0.05, 0.2, 0) for s in range(21)])
    assert det.final_outcome() == "not_fitted"


def test_a_fork_continues_its_parents_history_and_says_where_it_forked():
    parent = StageDetector(n_components=10, order=23)
    rows = [_row(s, 1.0 if s >= 5 else 0.5, 0.0, 0.2 + 0.01 * s, min(10, s // 4))
            for s in range(40)]
    history = [{"step": e.step, "stage": e.stage, "evidence": e.evidence}
               for e in _feed(parent, rows)]
    assert [h["stage"] for h in history] == ["lazy", "independent", "interactive"]
    fork = StageDetector(n_components=10, order=23, inherited=history,
                         fork={"run_id": "abc", "step": 40})
    evs = fork.update(_row(40, 1.0, 0.7, 0.7, 10))
    assert [e.stage for e in evs] == ["lazy", "independent", "interactive"]
    assert [e.step for e in evs] == [h["step"] for h in history]
    assert all(e.evidence["inherited"] == {"run_id": "abc", "step": 40} for e in evs)
    assert fork.stage == "interactive" and fork.t_fit == 5
    assert [e.stage for e in fork.update(_row(41, 1.0, 0.99, 0.8, 10))] == ["generalised"]


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
    # each stage at its onset: Stage II before test accuracy leaves chance
    assert steps["independent"] <= _first(rows, "test_acc", 0.1)
    assert steps["interactive"] < _first(rows, "test_acc", 0.95)
    assert all(s.evidence["conclusive_step"] >= s.step for s in stages)
    assert summary["outcome"] == "generalised"
    assert summary["coverage"] == 11 == summary["coverage_max"]  # all 11 frequencies
    assert summary["concentration"] > 0.8
    assert (summary["verdict"], summary["agreement"]) == ("generalise", "came_true")
    assert sum(summary["nodes_per_component"]) >= 22  # ≥ 2 locked nodes per frequency on average


def test_same_run_without_weight_decay_locks_no_node_and_learns_no_feature():
    rows, stages, summary = _run(weight_decay=0.0)
    names = {s.stage for s in stages}
    assert not names & {"independent", "interactive", "generalised"}
    assert summary["outcome"] == "memorised"
    assert rows[-1]["train_acc"] == 1.0 and rows[-1]["test_acc"] < 0.2
    assert summary["concentration"] < 0.5  # with weight decay it ends > 0.9
    # K = 256 < n: the theory card hedges (narrow nets under Adam can learn without decay)
    assert (summary["verdict"], summary["agreement"]) == ("uncertain", "not_committed")
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
    assert (summary["verdict"], summary["agreement"]) == ("memorise", "came_true")


@pytest.mark.slow
def test_fig3_stages_follow_the_reference_timeline():
    """li2-theory §5: train ≥ 0.99 by ~20, test 0.5 near 100, ≥ 0.99 near 140, all 35
    frequencies by ~160; the independent stage begins before test acc leaves chance (≥ 0.1)."""
    cfg = RunConfig(group="Z71", hidden=2048, train_fraction=0.4, lr=1e-3, weight_decay=2e-4,
                    steps=200, eval_every=1, snapshot_every=100)
    events = list(train(cfg))
    rows = [e.row() for e in events if e.kind == "metrics"]
    stages = [e for e in events if e.kind == "stage"]
    steps = {e.stage: e.step for e in stages}
    assert list(steps) == ["lazy", "independent", "interactive", "generalised"]
    assert [e.step for e in stages] == sorted(e.step for e in stages)
    assert _first(rows, "train_acc", 0.99) <= 30
    assert steps["independent"] <= _first(rows, "test_acc", 0.1)
    assert steps["independent"] < steps["interactive"] < _first(rows, "test_acc", 0.95)
    assert 100 <= steps["generalised"] <= 170
    assert events[-1].summary["coverage"] == 35
    assert events[-1].summary["agreement"] == "came_true"


@pytest.mark.slow
def test_fig3_without_weight_decay_is_memorised_from_the_fit():
    """At fig3 width (K = 2048 ≥ n) without weight decay G_F fades: memorised, conclusive within
    ~90 steps (docs/stages.md), and the theory card's firm "memorise" came true."""
    cfg = RunConfig(group="Z71", hidden=2048, train_fraction=0.4, lr=1e-3, weight_decay=0.0,
                    steps=120, eval_every=1, snapshot_every=1000)
    events = list(train(cfg))
    rows = [e.row() for e in events if e.kind == "metrics"]
    stages = [e for e in events if e.kind == "stage"]
    assert [e.stage for e in stages] == ["lazy", "memorised"]
    mem = stages[1]
    assert mem.step == _first(rows, "train_acc", 0.99) and mem.evidence["conclusive_step"] <= 100
    summary = events[-1].summary
    assert (summary["outcome"], summary["verdict"], summary["agreement"]) == \
        ("memorised", "memorise", "came_true")
