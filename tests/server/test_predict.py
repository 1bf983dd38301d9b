"""/api/runs/{id}/predict and /table: the network's answers from stored weights, for stored and
live runs, every group kind, and clear 422/404s naming the field."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest

from li2core import RunConfig, train
from li2core.element_names import element_names
from li2core.presets import get_preset
from server.jobs import LocalProcessRunner
from server.store import MemoryRunStore, RunRecord, StoredSnapshot
from server.store.base import MetricBatch

from .conftest import wait_status, wait_until

REAL = {"group": "Z11", "hidden": 32, "steps": 60, "snapshot_every": 20, "lr": 0.01,
        "weight_decay": 5e-4, "train_fraction": 0.6}


def stored(store: MemoryRunStore, config: RunConfig, run_id: str) -> dict:
    """Train ``config`` in this process and import it as a completed run; its summary."""
    seq, batches, snaps, summary = 0, [], [], {}
    for event in train(config, instruments=False):
        seq += 1
        if event.kind == "metrics":
            batches.append(MetricBatch(seq, [event.row()]))
        elif event.kind == "snapshot":
            snaps.append(StoredSnapshot(seq, event.step, event.arrays))
        elif event.kind == "finished":
            summary = event.summary
    store.import_run(RunRecord(id=run_id, status="completed", config=config.model_dump(),
                               created_at=time.time(), summary=summary, last_seq=seq),
                     batches, [], snaps)
    return summary


def decode_table(body: dict) -> dict[str, np.ndarray]:
    raw = {k: base64.b64decode(body[k]) for k in ("cells", "label", "prediction", "margin")}
    flags = np.frombuffer(raw["cells"], np.uint8)
    return {"train": (flags & 1).astype(bool), "correct": (flags & 2).astype(bool),
            "label": np.frombuffer(raw["label"], body["prediction_dtype"]),
            "prediction": np.frombuffer(raw["prediction"], body["prediction_dtype"]),
            "margin": np.frombuffer(raw["margin"], "<f4")}


def test_live_run_tables_match_the_metrics_at_every_snapshot(make_client):
    c = make_client(runner=LocalProcessRunner("forkserver", grace_s=2.0))
    run_id = c.post("/api/runs", json=REAL).json()["id"]
    # while it trains: the newest stored weights answer (or a 404 before the first snapshot)
    first = wait_until(lambda: (r := c.get(f"/api/runs/{run_id}/table")).status_code == 200
                       and r.json(), timeout=60)
    assert first["order"] == 11 and len(first["names"]) == 11
    run = wait_status(c, run_id, "completed", "failed", timeout=60)
    assert run["status"] == "completed", run["error"]
    rows = {r["step"]: r for r in c.get(f"/api/runs/{run_id}/metrics").json()["rows"]}
    for step in c.get(f"/api/runs/{run_id}/snapshots").json():
        body = c.get(f"/api/runs/{run_id}/table", params={"step": step}).json()
        assert body["step"] == step
        assert body["test_acc"] == pytest.approx(rows[step]["test_acc"], abs=1e-6)
        assert body["train_acc"] == pytest.approx(rows[step]["train_acc"], abs=1e-6)
        t = decode_table(body)
        n = body["counts"]
        assert t["train"].sum() == n["train_right"] + n["train_wrong"] == round(0.6 * 121)
        assert (t["correct"] & ~t["train"]).sum() == n["test_right"]
        assert np.all((t["margin"] > 0) == t["correct"])
        assert np.all((t["prediction"] == t["label"]) == t["correct"])
        assert np.array_equal(t["label"], (np.arange(121) // 11 + np.arange(121) % 11) % 11)
    # a step between snapshots answers from the one at or before it; omitted → the newest
    assert c.get(f"/api/runs/{run_id}/table", params={"step": 35}).json()["step"] == 20
    assert c.get(f"/api/runs/{run_id}/predict", params={"a": 3, "b": 4}).json()["step"] == 60
    latest = decode_table(c.get(f"/api/runs/{run_id}/table").json())
    for a, b in [(0, 0), (3, 4), (10, 9), (7, 7)]:
        p = c.get(f"/api/runs/{run_id}/predict", params={"a": a, "b": b}).json()
        assert (p["a"], p["b"], p["label"]) == (a, b, (a + b) % 11)
        assert p["prediction"] == latest["prediction"][a * 11 + b]
        assert p["correct"] == (p["prediction"] == p["label"])
        assert p["train"] == bool(latest["train"][a * 11 + b])
        assert p["scores"][0]["element"] == p["prediction"] and len(p["scores"]) == 5
        assert p["names"] == {"a": str(a), "b": str(b), "label": str((a + b) % 11),
                              "prediction": str(p["prediction"])}


@pytest.mark.parametrize("params,status,loc", [
    ({"a": 11, "b": 0}, 422, ["query", "a"]),
    ({"a": 0, "b": 99}, 422, ["query", "b"]),
    ({"a": -1, "b": 0}, 422, ["query", "a"]),
    ({"a": 0}, 422, ["query", "b"]),
    ({"a": "r", "b": 0}, 422, ["query", "a"]),
    ({"a": 1, "b": 1, "step": -5}, 422, ["query", "step"]),
    ({"a": 1, "b": 1, "step": 61}, 404, ["query", "step"]),
])
def test_bad_pairs_and_steps_name_the_field(make_client, params, status, loc):
    store = MemoryRunStore()
    stored(store, RunConfig(**{**REAL, "steps": 20}), "r1")
    c = make_client(store=store)
    for path in ("predict", "table"):
        if path == "table" and set(params) != {"a", "b", "step"}:
            continue
        r = c.get(f"/api/runs/r1/{path}", params=params if path == "predict" else
                  {"step": params["step"]})
        assert r.status_code == status, r.text
        assert r.json()["detail"][0]["loc"] == loc
        if status == 404:  # ours, not pydantic's: the message names the field too
            assert r.json()["detail"][0]["msg"].startswith("step:")


def test_unknown_run_and_run_without_weights_are_404(make_client):
    store = MemoryRunStore()
    store.create_run(RunRecord(id="empty", status="queued", created_at=time.time(),
                               config=RunConfig(group="Z5").model_dump()))
    c = make_client(store=store)
    assert c.get("/api/runs/nope/table").status_code == 404
    assert c.get("/api/runs/nope/predict", params={"a": 0, "b": 0}).status_code == 404
    r = c.get("/api/runs/empty/table")
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["query", "step"]


@pytest.mark.parametrize("spec,hidden", [("Z7", 16), ("Z2xZ3", 16), ("D4", 16), ("S4", 24)])
def test_every_group_kind_names_its_elements(make_client, spec, hidden):
    store = MemoryRunStore()
    config = RunConfig(group=spec, hidden=hidden, steps=5, snapshot_every=5, train_fraction=0.5)
    stored(store, config, "g")
    c = make_client(store=store)
    group = config.build_group()
    names = element_names(group)
    body = c.get("/api/runs/g/table").json()
    assert body["names"] == names and body["order"] == group.order
    a, b = group.order - 1, 1
    p = c.get("/api/runs/g/predict", params={"a": a, "b": b}).json()
    assert p["label"] == group.table[a, b]
    assert p["names"]["label"] == names[group.table[a, b]]
    assert p["names"]["a"] == names[a] and p["scores"][0]["name"] == names[p["prediction"]]


@pytest.mark.slow
def test_grokked_lecture_run_answers_every_test_pair_and_early_steps_only_train(make_client):
    store = MemoryRunStore()
    config = get_preset("lecture")
    summary = stored(store, config, "lecture")
    final = summary["final"]
    assert final["test_acc"] >= 0.99  # the run grokked
    c = make_client(store=store)
    body = c.get("/api/runs/lecture/table").json()
    assert body["step"] == config.steps
    assert body["test_acc"] == pytest.approx(final["test_acc"], abs=1e-9)
    t = decode_table(body)
    m = body["order"]
    test_cells = np.flatnonzero(~t["train"])
    rng = np.random.default_rng(0)
    for cell in rng.choice(test_cells, 60, replace=False):
        a, b = divmod(int(cell), m)
        p = c.get("/api/runs/lecture/predict", params={"a": a, "b": b}).json()
        assert p["train"] is False
        assert p["prediction"] == p["label"] == (a + b) % m, (a, b, p)
    # before grokking: the training cells are right and the test cells mostly wrong
    early = c.get("/api/runs/lecture/table", params={"step": 50}).json()
    n = early["counts"]
    assert early["train_acc"] >= 0.95, n
    assert early["test_acc"] <= 0.3, n
