"""A network of depth 2 through the real server: layer-tagged stages stored and served, the
added layer's weights in snapshots, forks and bundles; bad depth combinations refused."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from server.store import MemoryRunStore, SqliteRunStore

from .conftest import wait_status
from .test_replay_fork_bundle import completed, real_client, snapshots_of

# tiny and real: Z11, 24 nodes, 2 hidden layers, 80 steps (about a second on one core)
DEEP = {"group": "Z11", "hidden": 24, "depth": 2, "activation": "relu", "steps": 80,
        "snapshot_every": 20, "lr": 0.01, "weight_decay": 5e-3, "train_fraction": 0.6}


def test_a_depth_2_run_streams_layer_tagged_stages_and_its_layers_weights(make_client, tmp_path):
    c = real_client(make_client, store=SqliteRunStore(tmp_path / "runs.sqlite"))
    run = completed(c, DEEP)
    assert run["status"] == "completed", run["error"]
    assert run["config"]["depth"] == 2 and run["summary"]["engine_used"] == "autograd"
    stages = c.get(f"/api/runs/{run['id']}/stages").json()
    assert {s["layer"] for s in stages} == {1, 2}
    assert [s["stage"] for s in stages if s["layer"] == 2][0] == "lazy"
    assert [s["layer"] for s in run["summary"]["stages"]] == [s["layer"] for s in stages]
    assert [entry["layer"] for entry in run["summary"]["layers"]] == [1, 2]
    snaps = snapshots_of(c, run["id"])
    last = snaps[max(snaps)]
    assert last["W2"].shape == (24, 24) and last["spec@2"].shape[0] == 24
    rows = c.get(f"/api/runs/{run['id']}/metrics").json()["rows"]
    assert all("conc_mean@2" in r and "gf_align@2" in r for r in rows[1:])
    # the answers the server gives from the stored weights are those of the whole network
    table = c.get(f"/api/runs/{run['id']}/table").json()
    assert table["test_acc"] == pytest.approx(run["summary"]["final"]["test_acc"], abs=1e-6)
    assert table["train_acc"] == pytest.approx(run["summary"]["final"]["train_acc"], abs=1e-6)
    ask = c.get(f"/api/runs/{run['id']}/predict", params={"a": 3, "b": 5})
    assert ask.status_code == 200 and ask.json()["label"] == 8
    as_json = c.get(f"/api/runs/{run['id']}/metrics.json").json()
    assert {s["layer"] for s in as_json["stages"]} == {1, 2}

    fork = c.post(f"/api/runs/{run['id']}/fork", json={"step": 40, "changes": {"lr": 0.005}})
    assert fork.status_code == 201, fork.text
    fork = fork.json()
    done = wait_status(c, fork["id"], "completed", "failed", timeout=60)
    assert done["status"] == "completed", done["error"]
    inherited = [s for s in c.get(f"/api/runs/{fork['id']}/stages").json()
                 if s["evidence"].get("inherited")]
    assert {s["layer"] for s in inherited} == {1, 2}
    fork_first = snapshots_of(c, fork["id"])
    np.testing.assert_array_equal(fork_first[min(fork_first)]["W2"], snaps[40]["W2"])
    refused = c.post(f"/api/runs/{run['id']}/fork", json={"step": 40, "changes": {"depth": 3}})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "depth"

    bundle = c.get(f"/api/runs/{run['id']}/bundle")
    there = make_client(store=MemoryRunStore())
    copy = there.post("/api/bundles", content=bundle.content,
                      headers={"Content-Type": "application/zip"})
    assert copy.status_code == 201, copy.text
    assert there.get(f"/api/runs/{copy.json()['id']}/stages").json() == stages
    # a bundle written before depth existed has no "layer": its stages read as layer 1
    old = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as zin, zipfile.ZipFile(old, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                for st in manifest["stages"]:
                    st.pop("layer")
                data = json.dumps(manifest).encode()
            zout.writestr(item, data)
    older = there.post("/api/bundles", content=old.getvalue(),
                       headers={"Content-Type": "application/zip"})
    assert older.status_code == 201, older.text
    read = there.get(f"/api/runs/{older.json()['id']}/stages").json()
    assert [s["layer"] for s in read] == [1] * len(stages)


@pytest.mark.parametrize("body, field", [
    ({"depth": 5}, "depth"),
    ({"depth": 0}, "depth"),
    ({"depth": 2, "top_layer": "ridge"}, "top_layer"),
    ({"depth": 2, "precision": "bf16"}, "precision"),
])
def test_bad_depths_are_refused_naming_the_field(make_client, body, field):
    c = make_client()
    r = c.post("/api/runs", json={"group": "Z11", "hidden": 16, **body})
    assert r.status_code == 422
    assert field in [str(p) for d in r.json()["detail"] for p in d["loc"]], r.json()


def test_depth_is_a_sweep_axis_and_deeper_cells_train_one_by_one(tmp_path):
    import contextlib

    from fastapi.testclient import TestClient

    from server.app import create_app

    from .conftest import settings, wait_until
    from .fakes import FakeRunner

    body = {"name": "depths", "base": {"group": "Z7", "hidden": 8, "activation": "relu",
                                       "steps": 20, "snapshot_every": 10},
            "grid": {"depth": [1, 2, 3]}}
    app = create_app(settings(tmp_path), runner=FakeRunner(), store=MemoryRunStore())
    with contextlib.ExitStack() as stack:
        c = stack.enter_context(TestClient(app))
        bad = c.post("/api/sweeps", json={**body, "grid": {"depth": [1, 5]}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][:3] == ["body", "grid", "depth"]
        created = c.post("/api/sweeps", json=body)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        sweep = wait_until(lambda: (s := c.get(f"/api/sweeps/{sid}").json())["status"]
                           == "completed" and s, timeout=60)
        depths = [c.get(f"/api/runs/{cell['run_id']}").json()["config"]["depth"]
                  for cell in sweep["cells"]]
        assert depths == [1, 2, 3]
        assert all(cell["outcome"] != "not_run" for cell in sweep["cells"])
        rows = [c.get(f"/api/runs/{cell['run_id']}/metrics").json()["rows"]
                for cell in sweep["cells"]]
        assert [r[-1]["step"] for r in rows] == [20, 20, 20]
