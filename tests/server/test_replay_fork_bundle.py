"""Runs over time on the server: forks from stored weights, snapshot series, metric exports and
run bundles that round-trip exactly or are refused whole."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest

from server.jobs import LocalProcessRunner
from server.store import MemoryRunStore

from .conftest import wait_status
from .fakes import FakeRunner

# real training, tiny: Z11, 32 nodes, 60 steps (about a second on one core)
REAL = {"group": "Z11", "hidden": 32, "steps": 60, "snapshot_every": 20, "lr": 0.01,
        "weight_decay": 5e-4, "train_fraction": 0.6}
# FakeRunner's arrays are W (6, 4) and V (4, 3): a Z3 run with 4 nodes has exactly those shapes
FAKE = {"group": "Z3", "hidden": 4, "steps": 60, "snapshot_every": 20}
TOKEN = {"X-Instructor-Token": "correct-horse-battery"}


def real_client(make_client, **changes):
    return make_client(runner=LocalProcessRunner("forkserver", grace_s=2.0), **changes)


def completed(client, body: dict, timeout: float = 60.0) -> dict:
    run = client.post("/api/runs", json=body)
    assert run.status_code == 201, run.text
    return wait_status(client, run.json()["id"], "completed", "failed", timeout=timeout)


def rows_of(client, run_id: str) -> list[dict]:
    return client.get(f"/api/runs/{run_id}/metrics").json()["rows"]


def snapshots_of(client, run_id: str) -> dict[int, dict[str, np.ndarray]]:
    out = {}
    for step in client.get(f"/api/runs/{run_id}/snapshots").json():
        r = client.get(f"/api/runs/{run_id}/snapshot", params={"step": step, "format": "npz"})
        with np.load(io.BytesIO(r.content)) as npz:
            out[step] = {k: npz[k] for k in npz.files}
    return out


def run_count(client) -> int:
    return len(client.get("/api/runs").json())


# -- fork ------------------------------------------------------------------------------------

def test_fork_continues_the_stored_weights_and_links_the_runs(make_client):
    c = real_client(make_client)
    parent = completed(c, REAL)
    assert parent["status"] == "completed", parent["error"]
    r = c.post(f"/api/runs/{parent['id']}/fork",
               json={"step": 45, "changes": {"lr": 0.02, "weight_decay": 2e-3, "seed": 0}})
    assert r.status_code == 201, r.text
    fork = r.json()
    # the nearest snapshot at or before 45 is 40; seed was "changed" to its own value: not recorded
    assert fork["parent"] == {"run_id": parent["id"], "step": 40, "changes": {
        "lr": {"from": 0.01, "to": 0.02}, "weight_decay": {"from": 5e-4, "to": 2e-3}}}
    assert fork["config"]["steps"] == 20  # the parent's remaining steps
    assert {k: v for k, v in fork["config"].items() if k not in ("lr", "weight_decay", "steps")} \
        == {k: v for k, v in parent["config"].items() if k not in ("lr", "weight_decay", "steps")}
    done = wait_status(c, fork["id"], "completed", "failed", timeout=60)
    assert done["status"] == "completed", done["error"]

    mine, theirs = rows_of(c, fork["id"]), {row["step"]: row for row in rows_of(c, parent["id"])}
    assert [row["step"] for row in mine] == list(range(40, 61))
    # step 40 is evaluated before the fork's first update: the parent's weights, bit for bit
    for key in ("train_loss", "test_loss", "train_acc", "test_acc", "w_norm", "v_norm"):
        assert mine[0][key] == theirs[40][key], key
    # afterwards the doubled lr and quadrupled weight decay take the run elsewhere
    assert mine[-1]["w_norm"] != theirs[60]["w_norm"]
    fork_snaps, parent_snaps = snapshots_of(c, fork["id"]), snapshots_of(c, parent["id"])
    assert sorted(fork_snaps) == [40, 60]
    np.testing.assert_array_equal(fork_snaps[40]["W"], parent_snaps[40]["W"])
    np.testing.assert_array_equal(fork_snaps[40]["V"], parent_snaps[40]["V"])

    # the fork continues the parent's stage history up to the fork step and says where it forked
    theirs_st = c.get(f"/api/runs/{parent['id']}/stages").json()
    mine_st = c.get(f"/api/runs/{fork['id']}/stages").json()
    known = [(s["step"], s["stage"]) for s in theirs_st
             if s["evidence"].get("conclusive_step", s["step"]) <= 40]
    assert known and known[0][1] == "lazy"
    assert [(s["step"], s["stage"]) for s in mine_st][:len(known)] == known
    assert all(s["evidence"]["inherited"] == {"run_id": parent["id"], "step": 40}
               for s in mine_st[:len(known)])
    assert all("inherited" not in s["evidence"] for s in mine_st[len(known):])

    # linked both ways, in the run resource and in the list
    assert c.get(f"/api/runs/{parent['id']}").json()["children"] == [fork["id"]]
    listed = {run["id"]: run for run in c.get("/api/runs").json()}
    assert listed[parent["id"]]["children"] == [fork["id"]]
    assert listed[fork["id"]]["parent"]["run_id"] == parent["id"]
    assert listed[fork["id"]]["children"] == []


@pytest.mark.parametrize("body, loc", [
    ({"step": 10, "changes": {"lr": -1}}, ["body", "changes", "lr"]),
    ({"step": 10, "changes": {"hidden": 64}}, ["body", "changes", "hidden"]),
    ({"step": 10, "changes": {"group": "Z5"}}, ["body", "changes", "group"]),
    ({"step": 10, "changes": {"no_such_field": 1}}, ["body", "changes", "no_such_field"]),
    ({"step": 10, "changes": {"train_fraction": 0.01}}, ["body", "changes", "train_fraction"]),
    ({"step": -1, "changes": {}}, ["body", "step"]),
    ({"step": 10, "changes": {}, "extra": 1}, ["body", "extra"]),
])
def test_bad_fork_is_a_422_naming_the_field_and_starts_nothing(make_client, body, loc):
    c = make_client()
    parent = completed(c, FAKE)
    before = run_count(c)
    r = c.post(f"/api/runs/{parent['id']}/fork", json=body)
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [loc]
    assert run_count(c) == before


def test_fork_needs_a_run_with_a_snapshot_and_the_token(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner, instructor_token=TOKEN["X-Instructor-Token"])
    assert c.post("/api/runs/nope/fork", json={"step": 0}, headers=TOKEN).status_code == 404
    run = c.post("/api/runs", json=FAKE, headers=TOKEN).json()  # nothing emitted yet
    r = c.post(f"/api/runs/{run['id']}/fork", json={"step": 5}, headers=TOKEN)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "step"]
    assert c.post(f"/api/runs/{run['id']}/fork", json={"step": 5}).status_code == 401


# -- replay series and metric exports ---------------------------------------------------------

def test_series_gives_one_array_over_all_snapshots(make_client):
    c = make_client()
    run = completed(c, FAKE)
    s = c.get(f"/api/runs/{run['id']}/series", params={"array": "W", "node": 1}).json()
    assert s["steps"] == [0, 20, 40, 60]
    assert s["values"] == [[float(step)] * 4 for step in s["steps"]]  # fake W is filled by step
    whole = c.get(f"/api/runs/{run['id']}/series", params={"array": "V"}).json()
    assert np.array_equal(whole["values"][0], np.arange(12).reshape(4, 3))
    assert c.get(f"/api/runs/{run['id']}/series", params={"array": "nope"}).json()["steps"] == []
    bad = c.get(f"/api/runs/{run['id']}/series", params={"array": "W", "node": 99})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "node"]
    assert c.get(f"/api/runs/{run['id']}/series", params={"array": "../x"}).status_code == 422
    assert c.get("/api/runs/nope/series", params={"array": "W"}).status_code == 404


def test_metrics_as_csv_and_json_match_the_stored_rows(make_client):
    c = make_client()
    run = completed(c, FAKE)
    rows = rows_of(c, run["id"])
    r = c.get(f"/api/runs/{run['id']}/metrics.csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert f'{run["id"]}-metrics.csv' in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0][0] == "step" and set(table[0]) == set().union(*rows)
    assert len(table) == len(rows) + 1
    for line, row in zip(table[1:], rows):
        for name, cell in zip(table[0], line):
            assert cell == ("" if row.get(name) is None else repr(row[name]))  # exact
    as_json = c.get(f"/api/runs/{run['id']}/metrics.json").json()
    assert as_json["rows"] == rows and as_json["columns"] == table[0]
    assert as_json["stages"] == [{"step": 10, "stage": "independent",
                                  "evidence": {"rule": "x"}, "layer": 1}]
    assert c.get("/api/runs/nope/metrics.csv").status_code == 404


# -- bundles ---------------------------------------------------------------------------------

def test_bundle_round_trip_reproduces_a_forked_run_exactly(make_client):
    here = real_client(make_client)
    parent = completed(here, REAL)
    fork = here.post(f"/api/runs/{parent['id']}/fork",
                     json={"step": 20, "changes": {"weight_decay": 0.0}}).json()
    fork = wait_status(here, fork["id"], "completed", "failed", timeout=60)
    assert fork["status"] == "completed", fork["error"]
    assert here.get(f"/api/runs/{parent['id']}/bundle").status_code == 200
    bundle = here.get(f"/api/runs/{fork['id']}/bundle")
    assert bundle.headers["content-type"] == "application/zip"

    there = make_client(store=MemoryRunStore())  # another installation
    r = there.post("/api/bundles", content=bundle.content,
                   headers={"Content-Type": "application/zip"})
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["id"] != fork["id"] and copy["imported_from"]["run_id"] == fork["id"]
    assert copy["parent"] == fork["parent"]  # the lineage travels with the run
    for key in ("status", "config", "summary", "started", "error", "last_seq"):
        assert copy[key] == fork[key], key
    assert rows_of(there, copy["id"]) == rows_of(here, fork["id"])
    assert there.get(f"/api/runs/{copy['id']}/stages").json() == \
        here.get(f"/api/runs/{fork['id']}/stages").json()
    mine, theirs = snapshots_of(there, copy["id"]), snapshots_of(here, fork["id"])
    assert sorted(mine) == sorted(theirs) and len(mine) >= 2
    for step in mine:
        assert mine[step].keys() == theirs[step].keys()
        for name in mine[step]:
            assert mine[step][name].dtype == theirs[step][name].dtype
            np.testing.assert_array_equal(mine[step][name], theirs[step][name])
    # and it replays over the websocket like a run that ended here
    with there.websocket_connect(f"/ws/runs/{copy['id']}") as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"


def test_bundle_of_an_active_run_is_refused(make_client):
    runner = FakeRunner(auto=False)
    c = make_client(runner=runner)
    run = c.post("/api/runs", json=FAKE).json()
    assert c.get(f"/api/runs/{run['id']}/bundle").status_code == 409
    assert c.get("/api/runs/nope/bundle").status_code == 404


def _rezip(data: bytes, replace: dict[str, bytes | None] = (), add: dict[str, bytes] = ()) -> bytes:
    """``data`` with some members replaced (None = removed) or added."""
    replace, add = dict(replace), dict(add)
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename in replace:
                if replace[info.filename] is not None:
                    out.writestr(info.filename, replace[info.filename])
            else:
                out.writestr(info.filename, src.read(info.filename))
        for name, raw in add.items():
            out.writestr(name, raw)
    return buf.getvalue()


def _edit_manifest(data: bytes, edit) -> bytes:
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    edit(manifest)
    return _rezip(data, {"manifest.json": json.dumps(manifest).encode()})


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _first_snapshot(data: bytes) -> str:
    return json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))["snapshots"][0][
        "file"]


def _bad_bundles(good: bytes) -> dict[str, tuple[bytes, int, str]]:
    """name → (bundle bytes, expected status, text the error must contain)."""
    snap = _first_snapshot(good)
    w_ok, v_ok = np.zeros((6, 4), np.float32), np.zeros((4, 3), np.float32)

    def config(**changes):
        return lambda m: m["run"]["config"].update(changes)

    return {
        "not a zip": (b"PK\x03\x04 certainly not a zip file", 422, "not a zip"),
        # (half a zip may still parse: as one of the npz archives stored inside it)
        "truncated": (good[: len(good) // 2], 422, "bundle"),
        "bad config": (_edit_manifest(good, config(hidden=0)), 422, "hidden"),
        "unknown config field": (_edit_manifest(good, config(colour="red")), 422, "colour"),
        "active status": (_edit_manifest(good, lambda m: m["run"].update(status="running")),
                          422, "status"),
        "other format": (_edit_manifest(good, lambda m: m.update(format="zip")), 422, "format"),
        "seq past the end": (_edit_manifest(good, lambda m: m["run"].update(last_seq=1)),
                             422, "last_seq"),
        "no metrics": (_rezip(good, {"metrics.json": None}), 422, "metrics.json"),
        "NaN in metrics": (_rezip(good, {"metrics.json": b'[{"seq": 1, "rows": '
                                         b'[{"step": 0, "train_loss": NaN}]}]'}), 422, "NaN"),
        "steps go back": (_rezip(good, {"metrics.json": b'[{"seq": 1, "rows": '
                                        b'[{"step": 3}, {"step": 2}]}]'}), 422, "increase"),
        "text value": (_rezip(good, {"metrics.json": b'[{"seq": 1, "rows": '
                                     b'[{"step": 0, "test_acc": "1.0"}]}]'}), 422, "test_acc"),
        "wrong W shape": (_rezip(good, {snap: _npz(W=np.zeros((6, 5), np.float32), V=v_ok)}),
                          422, "W"),
        "float64 weights": (_rezip(good, {snap: _npz(W=w_ok.astype(np.float64), V=v_ok)}),
                            422, "float64"),
        "no V": (_rezip(good, {snap: _npz(W=w_ok)}), 422, "V"),
        "unknown array": (_rezip(good, {snap: _npz(W=w_ok, V=v_ok, evil=w_ok)}), 422, "evil"),
        "pickled array": (_rezip(good, {snap: _npz(W=w_ok, V=v_ok,
                                                   active=np.array([{}] * 4, dtype=object))}),
                          422, "active"),
        "missing snapshot": (_rezip(good, {snap: None}), 422, "missing"),
        "stray file": (_rezip(good, add={"../../etc/passwd": b"x"}), 422, "unexpected"),
        "zip bomb": (_rezip(good, add={"snapshots/999.npz": bytes(64 << 20)}), 413, "unpacks"),
    }


def test_malformed_or_oversized_bundles_are_refused_and_change_nothing(make_client):
    c = make_client(bundle_max_bytes=1 << 20)
    good = c.get(f"/api/runs/{completed(c, FAKE)['id']}/bundle").content
    before = c.get("/api/runs").json()
    for name, (data, status, words) in _bad_bundles(good).items():
        r = c.post("/api/bundles", content=data, headers={"Content-Type": "application/zip"})
        assert r.status_code == status, (name, r.text)
        assert words in json.dumps(r.json()["detail"]), (name, r.text)
        assert c.get("/api/runs").json() == before, name
    empty = c.post("/api/bundles", content=b"")
    assert empty.status_code == 422 and c.get("/api/runs").json() == before
    form = c.post("/api/bundles", files={"file": ("b.zip", good)})
    assert form.status_code == 415
    # the same bundle is fine under the cap and refused, whole, over it
    assert c.post("/api/bundles", content=good).status_code == 201
    small = make_client(bundle_max_bytes=len(good) - 1)
    r = small.post("/api/bundles", content=good)
    assert r.status_code == 413 and "LI2_BUNDLE_MAX_BYTES" in r.text
    assert small.get("/api/runs").json() == []


def test_importing_needs_the_token_when_one_is_set(make_client):
    c = make_client(instructor_token=TOKEN["X-Instructor-Token"])
    run = c.post("/api/runs", json=FAKE, headers=TOKEN).json()
    wait_status(c, run["id"], "completed")
    good = c.get(f"/api/runs/{run['id']}/bundle").content  # reading stays open
    assert c.post("/api/bundles", content=good).status_code == 401
    assert c.post("/api/bundles", content=good, headers=TOKEN).status_code == 201


def test_a_sweep_cell_imports_as_a_plain_run(make_client):
    c = make_client()
    good = c.get(f"/api/runs/{completed(c, FAKE)['id']}/bundle").content
    cell = {"id": "sw1", "index": 3, "point": {"lr": 0.01}}
    data = _edit_manifest(good, lambda m: m["run"].update(lineage={"sweep": cell}))
    r = c.post("/api/bundles", content=data)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["sweep"] is None and run["imported_from"]["sweep"] == cell
    assert run["id"] in [listed["id"] for listed in c.get("/api/runs").json()]
