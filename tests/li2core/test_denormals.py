"""Training flushes subnormal floats (li2core.denormals), changes nothing a metric shows, and
hands the caller's float mode back with every event."""

import numpy as np
import pytest
import torch

from li2core import RunConfig, train
from li2core import denormals as denormals_module
from li2core.batched import train_batched
from li2core.denormals import flushed, flushing

# a wide net on a small group: the nodes it does not need decay towards zero, and by step 2000
# thousands of their weights are subnormal unless flushed (~1 s a run)
DECAYING = RunConfig(group="Z13", hidden=128, train_fraction=0.5, lr=1e-2, weight_decay=1e-2,
                     steps=2000, eval_every=250, snapshot_every=2000)
TINY = np.finfo(np.float32).tiny


def _subnormal(a: np.ndarray) -> int:
    return int(((a != 0) & (np.abs(a) < TINY)).sum())


def _final(events) -> tuple[dict, list[dict]]:
    snap, rows = None, []
    for e in events:
        e = e[1] if isinstance(e, tuple) else e
        assert not flushing(), "the caller's mode must be back whenever an event is handed out"
        if e.kind == "snapshot" and e.step == DECAYING.steps:
            snap = e.arrays
        elif e.kind == "metrics":
            rows.append(e.row())
    return snap, rows


def test_weights_decaying_below_the_float32_range_are_flushed(monkeypatch):
    flushed_snap, flushed_rows = _final(train(DECAYING, instruments=False))
    monkeypatch.setattr(denormals_module, "_supported", False)  # the IEEE default
    kept_snap, kept_rows = _final(train(DECAYING, instruments=False))
    # the effect is real in this run: without the flush its decayed weights are subnormal
    assert _subnormal(kept_snap["W"]) > 500
    assert _subnormal(flushed_snap["W"]) == _subnormal(flushed_snap["V"]) == 0
    # and flushing them changes nothing a metric can show
    assert [r["step"] for r in flushed_rows] == [r["step"] for r in kept_rows]
    for a, b in zip(kept_rows, flushed_rows, strict=True):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc", "w_norm", "v_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), (key, a["step"])


def test_the_batched_engine_flushes_too():
    snaps = [None, None]
    for i, e in train_batched([DECAYING, DECAYING.with_(seed=1)]):
        assert not flushing()
        if e.kind == "snapshot" and e.step == DECAYING.steps:
            snaps[i] = e.arrays
    for snap in snaps:
        assert snap is not None and _subnormal(snap["W"]) == _subnormal(snap["V"]) == 0


def test_the_callers_mode_is_kept_between_events_and_after():
    assert not flushing()

    def probe():
        for _ in range(3):
            yield flushing()

    assert list(flushed(probe())) == [True, True, True]
    assert not flushing()
    # a caller that flushes already keeps flushing; the generator never turns it off
    torch.set_flush_denormal(True)
    try:
        assert list(flushed(probe())) == [True, True, True]
        assert flushing()
    finally:
        torch.set_flush_denormal(False)
    # closing early closes the inner generator (its finally runs) and restores the mode
    closed = []

    def inner():
        try:
            yield 1
            yield 2
        finally:
            closed.append(flushing())

    events = flushed(inner())
    assert next(events) == 1 and not flushing()
    events.close()
    assert closed == [False] and not flushing()


def test_torchs_worker_threads_flush_while_training_and_not_after():
    """With two torch threads half of an elementwise op runs on the OpenMP worker, which
    torch.set_flush_denormal alone does not reach."""
    x = torch.full((1 << 20,), 1e-39, dtype=torch.float32)  # subnormal
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert int((x * 1.0).count_nonzero()) == x.numel()  # IEEE: every product subnormal

        def probe():
            yield int((x * 1.0).count_nonzero())  # 0 only if both threads flush

        assert list(flushed(probe())) == [0]
        assert not flushing()
        assert int((x * 1.0).count_nonzero()) == x.numel()  # the workers are back to IEEE
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_snapshot_helper_thread_computes_in_the_loops_mode(threads):
    """Snapshot arrays handed off to li2core's helper thread see subnormals flushed, in that
    thread and (with two torch threads) in its OpenMP worker, as they would inline."""
    from li2core.train import NullProbe

    x = torch.full((1 << 20,), 1e-39, dtype=torch.float32)

    class HandOff(NullProbe):
        def arrays_job(self, state):
            return lambda: {"flushing": np.array(flushing()),
                            "nonzero": np.array(int((x * 1.0).count_nonzero()))}

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        snaps = [e.arrays for e in train(DECAYING.with_(steps=4, snapshot_every=2),
                                         probe=HandOff()) if e.kind == "snapshot"]
    finally:
        torch.set_num_threads(before)
    assert len(snaps) == 3
    for arrays in snaps:
        assert bool(arrays["flushing"]) and int(arrays["nonzero"]) == 0
