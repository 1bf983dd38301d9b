import pytest

from server.jobs import JobQueue, Limits, QueueFull, QuotaExceeded


def admit(q: JobQueue, job_id: str, client: str, kind: str = "run") -> None:
    q.admit(job_id, client, kind)
    q.enqueue(job_id)


def test_slots_queue_positions_and_quota():
    q = JobQueue(max_jobs=2, limits={"run": Limits(2, 3)})
    for run_id, client in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "z")]:
        admit(q, run_id, client)
    assert [q.next_to_start(), q.next_to_start(), q.next_to_start()] == ["a", "b", None]
    assert (q.position("c"), q.position("d"), q.position("a")) == (1, 2, None)
    with pytest.raises(QuotaExceeded, match="2 active"):
        admit(q, "e", "x")  # a running + c queued
    q.remove("a")  # finished: frees a slot and a unit of x's quota
    admit(q, "e", "x")
    assert q.next_to_start() == "c"
    assert (q.position("d"), q.position("e")) == (1, 2)


def test_queue_cap():
    q = JobQueue(max_jobs=1, limits={"run": Limits(10, 1)})
    admit(q, "a", "x")
    q.next_to_start()
    admit(q, "b", "x")
    with pytest.raises(QueueFull):
        q.admit("c", "x")


def test_an_admitted_job_holds_its_quota_before_it_is_queued_and_kinds_count_apart():
    q = JobQueue(max_jobs=1, limits={"run": Limits(1, 1), "sweep": Limits(1, 0)})
    q.admit("a", "x")  # being persisted: not startable yet, but it holds x's quota
    assert q.next_to_start() is None and q.position("a") is None
    with pytest.raises(QuotaExceeded, match="1 active run"):
        q.admit("b", "x")
    q.admit("s", "x", "sweep")  # a sweep has its own quota
    q.enqueue("s")
    assert q.next_to_start() == "s"
    with pytest.raises(QueueFull, match="sweeps are waiting"):
        q.admit("t", "y", "sweep")  # no slot free and no sweep may wait
