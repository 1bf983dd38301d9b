"""HTTP API with a fake runner: happy paths, 422s naming the field, quota, queue, token."""

import numpy as np
import pytest

from li2core.config import field_bounds
from li2core.presets import PRESETS
from server.protocol import decode_snapshot

from .conftest import TINY, browser, wait_status, wait_until
from .fakes import FakeRunner


def test_health_schema_presets_groups(make_client):
    c = make_client()
    health = c.get("/api/health").json()
    assert health["status"] == "ok" and health["max_jobs"] == 1
    assert isinstance(health["cpu_bf16"], bool)  # whether precision=bf16 has hardware here
    assert health["compiled_loops"] is True  # numba is a dependency: the fused step's loops
    # one health answer carries the job counts, the store and runner, and the storage state
    assert {"runner", "store", "running", "queued", "storage", "version"} <= set(health)
    assert health["storage"]["ok"] is True
    assert c.get("/api/config/schema").json() == field_bounds()
    presets = c.get("/api/presets").json()
    assert [p["name"] for p in presets] == list(PRESETS)
    assert presets[0]["config"] == PRESETS[presets[0]["name"]][1].model_dump()
    groups = {g["spec"]: g for g in c.get("/api/groups").json()}
    assert groups["Z71"]["order"] == 71 and groups["Z71"]["min_width"] == 140
    assert groups["D5"]["abelian"] is False
    z = c.get("/api/groups/Z4xZ7").json()
    assert (z["order"], z["kind"], z["abelian"]) == (28, "abelian", True)
    assert 0 < z["p_crit"] < 1


def test_bad_group_spec_is_a_422_naming_spec(make_client):
    r = make_client().get("/api/groups/Q8")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "spec"]
    assert "Q8" in r.json()["detail"][0]["msg"]


def test_run_lifecycle_and_stored_streams(make_client):
    c = make_client()
    r = c.post("/api/runs", json=TINY, params={"max_steps_per_s": 50})
    assert r.status_code == 201
    run = r.json()
    assert set(run) >= {"id", "status", "queue_position", "config", "created_at", "summary",
                        "error"}
    assert run["config"]["hidden"] == 24 and run["max_steps_per_s"] == 50
    done = wait_status(c, run["id"], "completed")
    assert done["summary"]["final"]["step"] == 60 and done["error"] is None
    assert done["started"]["p_crit"] == 0.1
    metrics = c.get(f"/api/runs/{run['id']}/metrics").json()
    assert [row["step"] for row in metrics["rows"]] == list(range(61))
    later = c.get(f"/api/runs/{run['id']}/metrics", params={"since": metrics["seq"] - 1}).json()
    assert later["seq"] == metrics["seq"] and 0 < len(later["rows"]) < 61
    assert [s["stage"] for s in c.get(f"/api/runs/{run['id']}/stages").json()] == ["independent"]
    assert c.get(f"/api/runs/{run['id']}/snapshots").json() == [0, 20, 40, 60]
    snap = c.get(f"/api/runs/{run['id']}/snapshot", params={"step": 39})
    header, arrays = decode_snapshot(snap.content)
    assert header["step"] == 20 and snap.headers["x-snapshot-step"] == "20"
    assert arrays["W"][0, 0] == 20
    npz = c.get(f"/api/runs/{run['id']}/snapshot", params={"format": "npz"})
    import io
    assert np.load(io.BytesIO(npz.content))["W"][0, 0] == 60
    assert c.get("/api/runs").json()[0]["id"] == run["id"]
    assert c.delete(f"/api/runs/{run['id']}").status_code == 204
    assert c.get(f"/api/runs/{run['id']}").status_code == 404


def test_empty_body_means_defaults(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner)
    run = c.post("/api/runs").json()
    assert run["config"]["group"] == "Z23" and run["config"]["hidden"] == 256


@pytest.mark.parametrize("body, field", [
    ({"hidden": 0}, "hidden"),
    ({"group": "Q8"}, "group"),
    ({"lr": "fast"}, "lr"),
    ({"optimizer": "lion"}, "optimizer"),
    ({"bogus": 1}, "bogus"),
    ({"group": "Z7", "train_fraction": 0.001}, "train_fraction"),  # cross-field check
    ({"group": "Z200", "hidden": 4096}, "hidden"),  # memory bound
    ({"group": "custom"}, "group_table"),
])
def test_bad_config_is_a_422_naming_the_field(make_client, body, field):
    r = make_client().post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", field] in locs, locs


def test_bad_query_is_a_422(make_client):
    r = make_client().post("/api/runs", json=TINY, params={"max_steps_per_s": -1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "max_steps_per_s"]


def test_unknown_run_is_404(make_client):
    c = make_client()
    for path in ("", "/metrics", "/stages", "/snapshots", "/snapshot"):
        assert c.get(f"/api/runs/nope{path}").status_code == 404
    assert c.post("/api/runs/nope/cancel").status_code == 404
    assert c.delete("/api/runs/nope").status_code == 404


def test_queue_positions_quota_and_cancel(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner, max_jobs=1, quota=2)
    alice, bob = browser(c, "alice"), browser(c, "bob")
    a1 = c.post("/api/runs", json=TINY, headers=alice).json()
    a2 = c.post("/api/runs", json=TINY, headers=alice).json()
    b1 = c.post("/api/runs", json=TINY, headers=bob).json()
    assert (a1["status"], a2["status"], b1["status"]) == ("running", "queued", "queued")
    assert (a1["queue_position"], a2["queue_position"], b1["queue_position"]) == (None, 1, 2)
    r = c.post("/api/runs", json=TINY, headers=alice)
    assert r.status_code == 429 and "quota" in r.json()["detail"]
    assert c.get("/api/health").json()["queued"] == 2
    # cancelling a queued run moves the one behind it up
    assert c.post(f"/api/runs/{a2['id']}/cancel", headers=alice).json()["status"] == "cancelled"
    assert c.get(f"/api/runs/{b1['id']}").json()["queue_position"] == 1
    # cancelling the running one: cooperative stop, then the next starts
    wait_until(lambda: a1["id"] in runner.handles)
    c.post(f"/api/runs/{a1['id']}/cancel", headers=alice)
    assert wait_status(c, a1["id"], "cancelled")["summary"] == {"stopped": True}
    assert wait_status(c, b1["id"], "running")["queue_position"] is None
    r = c.post(f"/api/runs/{a1['id']}/cancel", headers=alice)
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]
    r = c.delete(f"/api/runs/{b1['id']}", headers=bob)
    assert r.status_code == 409 and "cancel it" in r.json()["detail"]


def test_queue_cap_answers_503(make_client):
    c = make_client(runner=FakeRunner(auto=False), max_jobs=1, quota=10, max_queued=1)
    assert c.post("/api/runs", json=TINY).status_code == 201
    assert c.post("/api/runs", json=TINY).status_code == 201
    r = c.post("/api/runs", json=TINY)
    assert r.status_code == 503 and "queue full" in r.json()["detail"]


def test_worker_error_and_wall_time_limit_fail_the_run(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner, max_jobs=1, wall_time_limit=0.3, cancel_grace=0.1)
    bad = c.post("/api/runs", json=TINY).json()
    h = wait_until(lambda: runner.handles.get(bad["id"]))
    h.emit("error", "ValueError: device: cuda requested but no CUDA device is available")
    h.exit(0)
    failed = wait_status(c, bad["id"], "failed")
    assert failed["error"].startswith("ValueError: device: cuda")
    slow = c.post("/api/runs", json=TINY).json()
    failed = wait_status(c, slow["id"], "failed", timeout=5)
    assert failed["error"] == "wall-time limit of 0.3 s exceeded"
    assert slow["id"] in runner.cancels


def test_instructor_token(make_client):
    c = make_client(instructor_token="correct-horse-battery")
    assert c.post("/api/runs", json=TINY).status_code == 401
    r = c.post("/api/runs", json=TINY, headers={"X-Instructor-Token": "wrong-token-here"})
    assert r.status_code == 403
    good = {"X-Instructor-Token": "correct-horse-battery"}
    run = c.post("/api/runs", json=TINY, headers=good).json()
    assert c.get(f"/api/runs/{run['id']}").status_code == 200  # reading stays open
    assert c.post(f"/api/runs/{run['id']}/cancel").status_code == 401
    wait_status(c, run["id"], "completed")
    assert c.delete(f"/api/runs/{run['id']}").status_code == 401
    assert c.delete(f"/api/runs/{run['id']}", headers=good).status_code == 204


def test_bad_client_id_header(make_client):
    r = make_client().post("/api/runs", json=TINY, headers={"X-Client-Id": "a b/c"})
    assert r.status_code == 422


def test_frontend_and_vendored_plotly_are_served(make_client):
    c = make_client()
    js = c.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    page = c.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert c.get("/api/nothing-here").status_code == 404
