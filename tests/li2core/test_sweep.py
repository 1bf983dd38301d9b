"""Sweep specs, outcome rule and runner (the ``li2 sweep`` command: tests/li2cli)."""

import math
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from li2core import RunConfig
from li2core.phase_boundary import fit_constant, measured_boundaries
from li2core.sweep import MAX_RUNS, SweepConfig, classify_outcome, run_sweep
from li2core.sweep_presets import SWEEP_PRESETS, get_sweep_preset
from li2core.theory import P_CRIT_CONSTANT

SMALL = RunConfig(group="Z11", hidden=32, lr=1e-2, weight_decay=1e-3, steps=300, eval_every=5)


def _error_text(exc: ValidationError) -> str:
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def test_grid_expands_to_every_combination_with_zipped_axes_together():
    sw = SweepConfig(base=SMALL, grid={"train_fraction": [0.3, 0.6], "seed": [0, 1, 2]},
                     zipped={"group": ["Z11", "Z13"], "hidden": [24, 28]})
    assert sw.run_count == 12 == len(sw.configs())
    assert sw.axis_names == ["group", "hidden", "train_fraction", "seed"]
    pts = sw.points()
    assert pts[0] == {"group": "Z11", "hidden": 24, "train_fraction": 0.3, "seed": 0}
    assert pts[-1] == {"group": "Z13", "hidden": 28, "train_fraction": 0.6, "seed": 2}
    assert {(c.group, c.hidden) for c in sw.configs()} == {("Z11", 24), ("Z13", 28)}
    assert all(c.steps == 300 for c in sw.configs())


@pytest.mark.parametrize("spec,needle", [
    ({"grid": {"steps": [10, 20]}}, "grid.steps"),  # not a sweep axis
    ({"grid": {"lr": []}}, "grid.lr"),  # empty axis
    ({"grid": {"lr": [1e-3, 1e-3]}}, "duplicate"),
    ({"zipped": {"group": ["Z11", "Z11"], "hidden": [24, 24]}}, "duplicate combinations"),
    ({"grid": {"lr": [1e-3, 5.0]}}, "lr=5.0"),  # the failing grid point is named …
    ({"grid": {"lr": [1e-3, 5.0]}}, "lr: Input should be less than or equal to 1"),  # … and why
    ({"grid": {"group": ["Z11", "Q9"]}}, "group=Q9"),
    ({"grid": {"train_fraction": [0.5], "hidden": [32, 4096]}, "base": {"group": "Z199"}},
     "hidden"),  # a combination over the memory bound
    ({"grid": {"lr": [1e-3] }, "zipped": {"lr": [1e-2]}}, "either in grid or in zipped"),
    ({"zipped": {"group": ["Z11", "Z13"], "hidden": [24]}}, "equal lengths"),
    ({"grid": {"seed": list(range(17)), "lr": [round(1e-3 * (i + 1), 4) for i in range(16)]}},
     f"exceeds the limit of {MAX_RUNS}"),
    ({"base": {"lr": 2.0}}, "base.lr"),
    ({"gird": {"lr": [1e-3]}}, "gird"),  # typo in a top-level key
])
def test_bad_specs_are_refused_with_the_field_named(spec, needle):
    with pytest.raises(ValidationError) as info:
        SweepConfig(**spec)
    assert needle in _error_text(info.value)


@pytest.mark.parametrize("final,initial,before,outcome", [
    (dict(train_loss=0.01, test_loss=0.02, train_acc=1.0, test_acc=0.97), 1.0, None,
     "generalised"),
    # Z23: chance 1/23 ≈ 0.043; 0.08 is near chance (lift 0.04) and flat
    (dict(train_loss=0.01, test_loss=3.0, train_acc=1.0, test_acc=0.08), 1.0, 0.08, "memorised"),
    # the same accuracy, rising since a window ago: still learning
    (dict(train_loss=0.01, test_loss=3.0, train_acc=1.0, test_acc=0.08), 1.0, 0.03,
     "still_learning"),
    (dict(train_loss=0.9, test_loss=0.9, train_acc=0.3, test_acc=0.05), 1.0, None, "not_fitted"),
    # test 0.93 on a fitted run is well above chance: never memorised
    (dict(train_loss=0.05, test_loss=1.0, train_acc=1.0, test_acc=0.93), 1.0, 0.93,
     "still_learning"),
    (dict(train_loss=math.nan, test_loss=math.nan, train_acc=0.0, test_acc=0.0), 1.0, None,
     "diverged"),
    (dict(train_loss=50.0, test_loss=60.0, train_acc=0.5, test_acc=0.0), 1.0, None, "diverged"),
    (dict(train_loss=50.0, test_loss=60.0, train_acc=0.5, test_acc=0.0), None, None,
     "not_fitted"),
])
def test_outcome_rule(final, initial, before, outcome):
    assert classify_outcome(final, initial, order=23, test_before=before) == outcome


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_small_sweep_memorises_below_and_generalises_above_the_boundary(precision):
    sw = SweepConfig(base=SMALL.with_(precision=precision),
                     grid={"train_fraction": [0.2, 0.8], "seed": [0, 1]})
    results = run_sweep(sw)
    by_p = {p: {r.outcome for r in results if r.point["train_fraction"] == p}
            for p in (0.2, 0.8)}
    assert by_p == {0.2: {"memorised"}, 0.8: {"generalised"}}
    for r in results:
        assert r.final["step"] == 300 and not r.stopped
        if r.outcome == "generalised":
            assert r.first_step["test_acc>=0.9"] is not None


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_batched_and_one_by_one_sweeps_agree(precision):
    # bf16: the batched products and train()'s chunked ones round differently (bfloat16
    # outputs), so the losses agree to bf16's rounding, not float32's
    sw = SweepConfig(base=SMALL.with_(steps=60, precision=precision),
                     grid={"train_fraction": [0.3, 0.7], "lr": [5e-3, 2e-2]})
    batched, solo = run_sweep(sw), run_sweep(sw, batched=False)
    for b, s in zip(batched, solo, strict=True):
        assert b.point == s.point and b.outcome == s.outcome
        if precision == "fp32":
            assert b.final["test_acc"] == s.final["test_acc"]
            assert b.final["train_loss"] == pytest.approx(s.final["train_loss"], rel=1e-4)
        else:
            assert b.final["test_acc"] == pytest.approx(s.final["test_acc"], abs=0.02)
            assert b.final["train_loss"] == pytest.approx(s.final["train_loss"], rel=5e-2)


def test_stopping_a_sweep_keeps_finished_runs_and_marks_the_rest():
    sw = SweepConfig(base=SMALL.with_(steps=40), zipped={"group": ["Z11", "Z13"],
                                                          "hidden": [24, 28]})
    seen = {"finished": 0}

    def on_event(i, event):
        if event.kind == "finished":
            seen["finished"] += 1

    results = run_sweep(sw, stop=lambda: seen["finished"] >= 1, on_event=on_event)
    assert [r.outcome for r in results][1] == "not_run" and results[1].stopped
    assert results[0].final["step"] == 40 and not results[0].stopped


def _fake(group, p, outcome):
    return SimpleNamespace(config=RunConfig(group=group, train_fraction=p, hidden=32),
                           outcome=outcome)


def test_boundary_is_the_midpoint_of_the_flip_and_the_fit_recovers_c():
    res = [_fake("Z23", p, o) for p, o in [(0.2, "memorised"), (0.3, "memorised"),
                                           (0.35, "generalised"), (0.4, "memorised"),
                                           (0.45, "generalised"), (0.5, "generalised")]]
    res += [_fake("Z41", p, "generalised") for p in (0.3, 0.4)]  # flip below the range
    bounds = {b.group: b for b in measured_boundaries(res)}
    z23 = bounds["Z23"]
    # the isolated success at 0.35 does not count: generalising must hold for every larger p
    assert (z23.p_low, z23.p_high, z23.p_star) == (0.4, 0.45, pytest.approx(0.425))
    assert bounds["Z41"].p_star is None and bounds["Z41"].p_high == 0.3
    c = fit_constant(list(bounds.values()))
    assert c == pytest.approx(0.425 / (math.log(23) / 23))
    assert fit_constant([bounds["Z41"]]) is None


def test_presets_are_valid_and_bounded():
    for name, (desc, sw) in SWEEP_PRESETS.items():
        assert desc and 1 <= sw.run_count <= MAX_RUNS, name
    law = get_sweep_preset("scaling-law")
    for c in law.configs():  # the theory's minimum width for an abelian group
        assert c.hidden >= 2 * c.group_order - 2
    with pytest.raises(KeyError, match="unknown sweep preset"):
        get_sweep_preset("nope")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_measured_boundary_follows_log_m_over_m(precision):
    """Two groups, p around p_crit: the flip lies within ±25% of 2.7482·ln M/M."""
    law = get_sweep_preset("scaling-law")
    sw = SweepConfig(base=law.base.with_(precision=precision),
                     zipped={"group": ["Z23", "Z41"], "hidden": [64, 96]},
                     grid={"train_fraction": [0.2, 0.25, 0.3, 0.35, 0.4, 0.45]})
    bounds = measured_boundaries(run_sweep(sw))
    for b in bounds:
        assert b.p_star is not None and 0.75 < b.p_star / b.p_crit < 1.25, b
    assert bounds[0].p_star > bounds[1].p_star  # larger group, smaller fraction needed
    assert 0.75 < fit_constant(bounds) / P_CRIT_CONSTANT < 1.25
