import pytest

from server.jobs import JobQueue, Limits, QueueFull, QuotaExceeded


def test_slots_queue_positions_and_quota():
    q = JobQueue(max_jobs=2, limits={"run": Limits(2, 3)})
    for run_id, client in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "z")]:
        q.admit(run_id, client)
    assert [q.next_to_start(), q.next_to_start(), q.next_to_start()] == ["a", "b", None]
    assert (q.position("c"), q.position("d"), q.position("a")) == (1, 2, None)
    with pytest.raises(QuotaExceeded, match="2 active"):
        q.admit("e", "x")  # a running + c queued
    q.remove("a")  # finished: frees a slot and a unit of x's quota
    q.admit("e", "x")
    assert q.next_to_start() == "c"
    assert (q.position("d"), q.position("e")) == (1, 2)


def test_queue_cap():
    q = JobQueue(max_jobs=1, limits={"run": Limits(10, 1)})
    q.admit("a", "x")
    q.next_to_start()
    q.admit("b", "x")
    with pytest.raises(QueueFull):
        q.admit("c", "x")
