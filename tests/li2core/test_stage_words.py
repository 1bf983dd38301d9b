"""The stage card's "what moves the run on" is the detector's own rule: row by row, all
conditions met ⇔ the detector moves to that stage (a real run and a small-group stream)."""

from dataclasses import fields

import pytest

from li2core import RunConfig, stage_words, train, vocabulary
from li2core.stages import ORDER, StageDetector, Thresholds


def _check_rows_against_detector(rows, n_components, order):
    """Feed rows to a fresh detector; at each row, the words' verdict must equal its move."""
    det = StageDetector(n_components=n_components, order=order)
    conc0 = None
    moves = []
    for row in rows:
        if conc0 is None and row.get("conc_mean") is not None:
            conc0 = row["conc_mean"]
        stage = det.stage if det.outcome != "memorised" else "memorised"
        nxt = stage_words.next_needs(stage, n_components) if stage else None
        said = stage_words.met(stage, row, n_components, conc0) if stage else None
        names = [e.stage for e in det.update(row)]
        if nxt is not None:
            moved = nxt[0] in names
            assert said == moved, (row["step"], stage, nxt, said, names)
            if moved:
                moves.append((stage, nxt[0]))
    return moves


def test_a_real_grokking_run_moves_on_exactly_when_the_words_say():
    cfg = dict(group="Z23", hidden=256, train_fraction=0.6, lr=5e-3, weight_decay=1e-3,
               steps=100, eval_every=1, snapshot_every=100)
    rows = [e.row() for e in train(RunConfig(**cfg)) if e.kind == "metrics"]
    moves = _check_rows_against_detector(rows, n_components=11, order=23)
    # Z23 has 11 frequencies ≥ the bar for Stage III, so the whole chain is walked
    assert moves == [("lazy", "independent"), ("independent", "interactive"),
                     ("interactive", "generalised")]


def _row(step, train, test, conc, cover, align=0.6):
    return {"step": step, "train_acc": train, "test_acc": test, "conc_mean": conc,
            "coverage": cover, "gf_align": align, "gf_norm": 0.05}


def test_a_small_group_goes_from_independent_straight_to_generalised():
    c = 5  # below interactive_min_components: Stage III is not claimed
    assert c < stage_words.interactive_min_components()
    rows = [_row(s, min(1.0, s / 10), 0.2 if s < 40 else 1.0, 0.05 + s / 100, min(5, s // 8))
            for s in range(60)]
    moves = _check_rows_against_detector(rows, n_components=c, order=10)
    assert moves == [("lazy", "independent"), ("independent", "generalised")]


@pytest.mark.parametrize("c", [5, 11])
@pytest.mark.parametrize("last", ["train_acc", "gf_align", "conc_mean", "coverage"])
def test_each_condition_for_stage_two_is_one_the_detector_waits_for(last, c):
    """Every condition met from step 6 but ``last``, which crosses its bar slowly: the words
    and the detector must agree on the very row it does."""
    ready = {"train_acc": 1.0, "gf_align": 0.6, "conc_mean": 0.5, "coverage": c}
    start = {"train_acc": 0.9, "gf_align": 0.0, "conc_mean": 0.05, "coverage": 0}
    rows = []
    for s in range(60):
        ramp = min(1.0, max(0.0, (s - 6) / 40))
        vals = {k: (start[k] if s < 6 else v) for k, v in ready.items()}
        vals[last] = start[last] + ramp * (ready[last] - start[last])
        if last == "coverage":
            vals["coverage"] = float(round(vals["coverage"]))
        rows.append(_row(s, vals["train_acc"], 0.1, vals["conc_mean"], vals["coverage"],
                         vals["gf_align"]))
    moves = _check_rows_against_detector(rows, n_components=c, order=10)
    assert moves[0] == ("lazy", "independent")


def test_memorised_needs_what_stage_one_needs():
    assert stage_words.next_needs("memorised", 11) == stage_words.next_needs("lazy", 11)


def test_the_served_tables_use_the_detectors_numbers():
    th = {f.name: getattr(Thresholds(), f.name) for f in fields(Thresholds)}
    words = stage_words.vocabulary()
    big, small = words["next"], words["next_small"]
    assert big["independent"]["to"] == "interactive"
    assert small["independent"]["to"] == "generalised" and "interactive" not in small
    for table in (big, small):
        for nxt in table.values():
            assert nxt["to"] in ORDER
            for need in nxt["needs"]:
                assert need["value"] == th[need["threshold"]]
                assert need["indicator"] in vocabulary.INDICATORS


def test_every_indicator_the_detector_emits_has_words():
    det = StageDetector(n_components=11, end_step=90, order=23)
    events = []
    for s in range(91):  # fit, then a plateau at chance with G_F faded: memorised at the end
        events += det.update(_row(s, min(1.0, s / 10), 0.04, 0.05, 0, align=0.1))
    rows = [_row(s, 1.0, min(1.0, (s - 90) / 20), 0.05 + (s - 90) / 30, min(11, s - 90))
            for s in range(91, 130)]
    for r in rows:
        events += det.update(r)
    assert {"lazy", "memorised", "independent", "interactive", "generalised"} <= {
        e.stage for e in events}
    for ev in events:
        missing = set(ev.evidence["indicators"]) - set(vocabulary.INDICATORS)
        assert not missing, f"{ev.stage}: no words for {missing}"
