"""Classroom mode: broadcast codes, a read-only watch link, live viewer counts."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from server.classroom import ALPHABET, CODE_LENGTH, Classroom, get_classroom

from .conftest import settings, wait_status

FAKE = {"group": "Z3", "hidden": 4, "steps": 60, "snapshot_every": 20}
SECRET = "correct-horse-battery"
TOKEN = {"X-Instructor-Token": SECRET}


@pytest.fixture
def lecture(make_client):
    """A token-protected server with one completed run, broadcast; (client, run, code)."""
    c = make_client(instructor_token=SECRET)
    run = c.post("/api/runs", json=FAKE, headers=TOKEN).json()
    wait_status(c, run["id"], "completed")
    r = c.post(f"/api/runs/{run['id']}/broadcast", headers=TOKEN)
    assert r.status_code == 201, r.text
    return c, run, r.json()["code"]


def test_broadcast_needs_a_configured_token(make_client):
    c = make_client()
    run = c.post("/api/runs", json=FAKE).json()
    r = c.post(f"/api/runs/{run['id']}/broadcast")
    assert r.status_code == 409 and "LI2_INSTRUCTOR_TOKEN" in r.json()["detail"]


def test_code_is_short_stable_and_readable(lecture):
    c, run, code = lecture
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    again = c.post(f"/api/runs/{run['id']}/broadcast", headers=TOKEN).json()
    assert again["code"] == code and again["url"] == f"/watch/{code}"
    assert c.get(f"/api/runs/{run['id']}/broadcast").json()["code"] == code
    other = c.post("/api/runs", json=FAKE, headers=TOKEN).json()
    assert c.get(f"/api/runs/{other['id']}/broadcast").json()["code"] is None
    assert c.get("/api/runs/nope/broadcast").status_code == 404
    info = c.get(f"/api/broadcasts/{code.lower()}").json()  # typed in lower case: still found
    assert info["run_id"] == run["id"] and info["run"]["status"] == "completed"
    assert c.post("/api/runs/nope/broadcast", headers=TOKEN).status_code == 404


def test_watch_link_is_read_only(lecture):
    c, run, code = lecture
    page = c.get(f"/watch/{code}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="start"' not in page.text and 'id="stop"' not in page.text
    assert 'id="viewer-count"' in page.text
    missing = c.get("/watch/ZZZZZZ")
    assert missing.status_code == 404 and "No broadcast" in missing.text
    # a viewer holds no token: every command is refused, whatever the page does
    rid = run["id"]
    assert c.post("/api/runs", json=FAKE).status_code == 401
    assert c.post(f"/api/runs/{rid}/cancel").status_code == 401
    assert c.delete(f"/api/runs/{rid}").status_code == 401
    assert c.post(f"/api/runs/{rid}/fork", json={"step": 0}).status_code == 401
    assert c.post(f"/api/runs/{rid}/broadcast").status_code == 401
    assert c.delete(f"/api/broadcasts/{code}").status_code == 401
    assert c.post("/api/bundles", content=b"x",
                  headers={"Content-Type": "application/zip"}).status_code == 401
    # while reading stays open to everyone
    assert c.get(f"/api/runs/{rid}").status_code == 200
    assert c.get(f"/api/runs/{rid}/metrics.csv").status_code == 200


def _watch(ws) -> dict:
    return json.loads(ws.receive_text())


def test_viewer_count_is_pushed_as_viewers_join_and_leave(lecture):
    c, run, code = lecture
    with c.websocket_connect(f"/ws/watch/{code}?count=0") as host:  # the instructor's page
        assert _watch(host) == {"type": "watch", "code": code, "run_id": run["id"],
                                "viewers": 0}
        with c.websocket_connect(f"/ws/watch/{code}") as first:
            assert _watch(first)["viewers"] == 1
            assert _watch(host)["viewers"] == 1
            with c.websocket_connect(f"/ws/watch/{code.lower()}") as second:
                assert _watch(second)["viewers"] == 2
                assert _watch(first)["viewers"] == 2
                assert _watch(host)["viewers"] == 2
                assert c.get(f"/api/broadcasts/{code}").json()["viewers"] == 2
            assert _watch(first)["viewers"] == 1  # the second one left
            assert _watch(host)["viewers"] == 1
        assert _watch(host)["viewers"] == 0
        assert c.delete(f"/api/broadcasts/{code}", headers=TOKEN).status_code == 204
        assert _watch(host) == {"type": "ended", "code": code}
    assert c.get(f"/watch/{code}").status_code == 404
    with c.websocket_connect(f"/ws/watch/{code}") as late:
        assert _watch(late)["type"] == "error"


def test_a_code_can_move_the_class_to_the_next_run(lecture):
    c, first_run, code = lecture
    nxt = c.post("/api/runs", json=FAKE, headers=TOKEN).json()
    with c.websocket_connect(f"/ws/watch/{code}") as viewer:
        assert _watch(viewer)["run_id"] == first_run["id"]
        r = c.post(f"/api/runs/{nxt['id']}/broadcast", json={"code": code}, headers=TOKEN)
        assert r.status_code == 201 and r.json()["code"] == code
        assert _watch(viewer) == {"type": "watch", "code": code, "run_id": nxt["id"],
                                  "viewers": 1}
    bad = c.post(f"/api/runs/{nxt['id']}/broadcast", json={"code": "NOSUCH"}, headers=TOKEN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "code"]


def test_codes_survive_a_restart_when_runs_are_on_disk(tmp_path):
    path = tmp_path / "broadcasts.json"
    code = Classroom(path).broadcast("run-1")
    assert Classroom(path).run_of(code) == "run-1"
    path.write_text("{not json")
    assert Classroom(path).codes == {}  # a damaged file is ignored, not fatal


def test_only_an_on_disk_server_keeps_codes_in_its_data_dir(tmp_path):
    def classroom_of(store: str) -> Classroom:
        state = SimpleNamespace(settings=settings(tmp_path, store=store))
        return get_classroom(SimpleNamespace(app=SimpleNamespace(state=state)))

    assert classroom_of("memory").path is None
    on_disk = classroom_of("sqlite")
    assert on_disk.path == tmp_path / "broadcasts.json"
    code = on_disk.broadcast("run-1")
    saved = json.loads(on_disk.path.read_text())["broadcasts"]
    assert list(saved) == [code] and saved[code]["run_id"] == "run-1"


def test_an_older_codes_file_still_loads(tmp_path):
    path = tmp_path / "broadcasts.json"
    path.write_text(json.dumps({"abc234": "run-7"}))  # code → run id, before listing existed
    assert Classroom(path).run_of("ABC234") == "run-7"


def test_broadcasts_are_listed_for_any_of_the_instructors_browsers(lecture):
    c, run, code = lecture
    assert c.get("/api/broadcasts").status_code == 401  # the list is the instructor's
    listing = c.get("/api/broadcasts", headers=TOKEN).json()
    assert [b["code"] for b in listing["broadcasts"]] == [code]
    item = listing["broadcasts"][0]
    assert item["run_id"] == run["id"] and item["share_url"].endswith(f"/watch/{code}")
    # a second browser reuses the open code for the next run instead of making a new one
    nxt = c.post("/api/runs", json=FAKE, headers=TOKEN).json()
    wait_status(c, nxt["id"], "completed")
    again = c.post(f"/api/runs/{nxt['id']}/broadcast", json={"code": code}, headers=TOKEN)
    assert again.json()["code"] == code
    assert c.get("/api/broadcasts", headers=TOKEN).json()["broadcasts"][0]["run_id"] == nxt["id"]
    # ended explicitly: gone from the list
    assert c.delete(f"/api/broadcasts/{code}", headers=TOKEN).status_code == 204
    assert c.get("/api/broadcasts", headers=TOKEN).json()["broadcasts"] == []


def test_share_link_uses_the_public_url_and_comes_as_a_qr_code(make_client):
    c = make_client(instructor_token=SECRET, public_url="http://10.1.2.3:8000/")
    run = c.post("/api/runs", json=FAKE, headers=TOKEN).json()
    wait_status(c, run["id"], "completed")
    info = c.post(f"/api/runs/{run['id']}/broadcast", headers=TOKEN).json()
    assert info["share_url"] == f"http://10.1.2.3:8000/watch/{info['code']}"
    qr = c.get(info["qr"])
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content and info["share_url"].encode() in qr.content  # its title
    assert c.get("/api/broadcasts/NOSUCH/qr.svg").status_code == 404


def test_the_student_page_needs_only_the_code(lecture):
    c, _, code = lecture
    page = c.get("/watch")
    assert page.status_code == 200 and 'id="join-code"' in page.text
