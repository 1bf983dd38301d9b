"""The stage card's words stay tied to the detector's real indicators and thresholds."""

from dataclasses import fields

from li2core import stage_words
from li2core.stages import ORDER, StageDetector, Thresholds


def test_every_threshold_named_is_a_detector_threshold():
    known = {f.name for f in fields(Thresholds)}
    for _, needs in stage_words.NEXT.values():
        assert {name for _, name, _ in needs} <= known


def test_every_indicator_the_detector_emits_has_words():
    det = StageDetector(n_components=5, end_step=3)
    events = []
    for step, (train, test, conc, cover) in enumerate([(0.1, 0.0, 0.1, 0), (1.0, 0.0, 0.1, 0),
                                                       (1.0, 1.0, 0.9, 5)]):
        events += det.update({"step": step, "train_acc": train, "test_acc": test,
                              "conc_mean": conc, "coverage": cover, "gf_align": 0.5})
    assert events
    for ev in events:
        missing = set(ev.evidence["indicators"]) - set(stage_words.INDICATORS)
        assert not missing, f"{ev.stage}: no words for {missing}"


def test_next_stages_follow_the_order():
    vocab = stage_words.vocabulary()
    for stage, nxt in vocab["next"].items():
        assert nxt["to"] in ORDER
        if stage in ORDER:
            assert ORDER.index(nxt["to"]) == ORDER.index(stage) + 1
        assert all(isinstance(n["value"], (int, float)) for n in nxt["needs"])
