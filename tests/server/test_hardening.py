"""Regression tests for issue 12: every hostile input answers a clear 4xx, fast, naming the
field; ownership; cross-site writes; oversized bodies while /api/health stays responsive."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time

import httpx
import pytest

from server.app import create_app

from .conftest import TINY, browser, settings, uvicorn_server, wait_status, wait_until
from .fakes import FakeRunner

FAST = 1.0  # seconds: "well under a second" for every refusal below


def _refused(response, status: int, *where) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.elapsed.total_seconds() < FAST if hasattr(response, "elapsed") else True
    body = response.json()
    if where:
        locs = [tuple(d["loc"]) for d in body["detail"]]
        assert tuple(where) in locs, locs
    assert len(response.content) < 4096  # never echoes the input back
    return body


@pytest.mark.parametrize("spec", ["Z2x" * 20 + "Z2", "Z2xZ2xZ2xZ2xZ2xZ2xZ2xZ2xZ2", "S99",
                                  "Z" + "9" * 5000, "D3x" * 6 + "D3"])
def test_group_specs_are_bounded_before_any_table_is_built(make_client, spec):
    c = make_client()
    start = time.monotonic()
    r = c.get(f"/api/groups/{spec}")
    assert time.monotonic() - start < FAST
    _refused(r, 422, "path", "spec")
    r = c.post("/api/runs", json={"group": spec})
    _refused(r, 422)


@pytest.mark.parametrize("text, field", [
    ('{"lr": NaN}', "body"), ('{"lr": Infinity}', "body"), ('{"lr": 1e400}', "body"),
    ('{"train_fraction": -Infinity}', "body"),
])
def test_non_finite_numbers_are_refused_not_crashed_on(make_client, text, field):
    r = make_client().post("/api/runs", content=text,
                           headers={"Content-Type": "application/json"})
    body = _refused(r, 422, field)
    assert "finite" in body["detail"][0]["msg"]


@pytest.mark.parametrize("config, field", [
    ({"hidden": True}, "hidden"), ({"lr": "0.01"}, "lr"), ({"hidden": "64"}, "hidden"),
    ({"seed": 1.5}, "seed"), ({"steps": 2**64}, "steps"),
    ({"group": "custom", "group_table": [[2**63, 1], [1, 0]]}, "group_table"),
    ({"group": "custom", "group_table": [[0, 1], [1, 0.0]]}, "group_table"),
])
def test_wrong_types_and_huge_integers_are_refused(make_client, config, field):
    r = make_client().post("/api/runs", json=config)
    body = _refused(r, 422)
    assert any(field in d["loc"] for d in body["detail"]), body


def test_cross_field_errors_carry_the_field_in_loc(make_client):
    r = make_client().post("/api/runs", json={"group": "Z200", "hidden": 4096})
    body = _refused(r, 422, "body", "hidden")
    assert not body["detail"][0]["msg"].startswith("Value error")
    r = make_client().post("/api/sweeps", json={"base": {"group": "Z200", "hidden": 4096}})
    _refused(r, 422, "body", "base", "hidden")


@pytest.mark.parametrize("path", ["/api/runs/{id}/metrics?since=" + str(2**63),
                                  "/api/runs/{id}/snapshot?step=" + str(2**64),
                                  "/api/runs/{id}/series?array=W&node=" + str(2**63),
                                  "/api/runs?limit=" + str(2**70)])
def test_huge_query_integers_are_refused(make_client, path):
    c = make_client()
    run = c.post("/api/runs", json=TINY).json()
    wait_status(c, run["id"], "completed")
    _refused(c.get(path.format(id=run["id"])), 422)


def test_fork_step_and_throttle_are_bounded(make_client):
    c = make_client()
    run = c.post("/api/runs", json=TINY).json()
    wait_status(c, run["id"], "completed")
    _refused(c.post(f"/api/runs/{run['id']}/fork", json={"step": 1e23}), 422, "body", "step")
    _refused(c.post(f"/api/runs/{run['id']}/fork", json={"step": 2**70}), 422, "body", "step")
    _refused(c.post("/api/runs?max_steps_per_s=1e-300", json=TINY), 422,
             "query", "max_steps_per_s")
    _refused(c.post("/api/runs?max_steps_per_s=nan", json=TINY), 422, "query", "max_steps_per_s")


def test_deep_json_is_refused_in_bodies_and_bundles(make_client):
    c = make_client()
    deep = "[" * 100_000 + "]" * 100_000
    r = c.post("/api/runs", content=deep, headers={"Content-Type": "application/json"})
    assert "nested" in _refused(r, 422, "body")["detail"][0]["msg"]
    r = c.post("/api/sweeps", content='{"grid": {"lr": ' + "[" * 50 + "]" * 50 + "}}",
               headers={"Content-Type": "application/json"})
    _refused(r, 422, "body")
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", "[" * 100_000 + "]" * 100_000)
        zf.writestr("metrics.json", "[]")
    r = c.post("/api/bundles", content=buf.getvalue(),
               headers={"Content-Type": "application/zip"})
    assert r.status_code == 422 and "nested too deeply" in r.text


def test_a_sweep_grid_with_nan_is_refused(make_client):
    r = make_client().post("/api/sweeps", content='{"grid": {"lr": [0.01, NaN]}}',
                           headers={"Content-Type": "application/json"})
    _refused(r, 422, "body")


def test_websocket_since_that_is_not_an_ascii_integer_gets_an_error_frame(make_client):
    c = make_client()
    run = c.post("/api/runs", json=TINY).json()
    for since in ("²", "9" * 5000, str(2**63), "-1"):
        with c.websocket_connect(f"/ws/runs/{run['id']}?since={since}") as ws:
            frame = json.loads(ws.receive_text())
            assert frame["type"] == "error" and "since" in frame["message"]


def test_another_clients_cancel_or_delete_is_403(make_client):
    c = make_client(runner=FakeRunner(auto=False))
    me, other = browser(c, "me"), browser(c, "other")
    run = c.post("/api/runs", json=TINY, headers=me).json()
    r = c.post(f"/api/runs/{run['id']}/cancel", headers=other)
    assert r.status_code == 403 and "another client" in r.json()["detail"]
    assert c.post(f"/api/runs/{run['id']}/cancel", headers=me).status_code == 200
    wait_status(c, run["id"], "cancelled")
    assert c.delete(f"/api/runs/{run['id']}", headers=other).status_code == 403
    assert c.get(f"/api/runs/{run['id']}", headers=other).status_code == 200  # watching: open
    assert c.delete(f"/api/runs/{run['id']}", headers=me).status_code == 204


def test_the_instructor_may_cancel_anyones_run(make_client):
    token = {"X-Instructor-Token": "a-long-enough-token"}
    c = make_client(runner=FakeRunner(auto=False), instructor_token=token["X-Instructor-Token"])
    run = c.post("/api/runs", json=TINY, headers={**browser(c, "me"), **token}).json()
    assert c.post(f"/api/runs/{run['id']}/cancel",
                  headers={**browser(c, "instr"), **token}).status_code == 200


def test_cookies_key_quotas_so_a_classroom_behind_one_nat_is_not_refused(make_client):
    c = make_client(runner=FakeRunner(auto=False), quota=1, max_jobs=1, max_queued=100)
    for student in range(30):  # one address, thirty browsers
        assert c.post("/api/runs", json=TINY,
                      headers=browser(c, f"s{student}")).status_code == 201
    r = c.post("/api/runs", json=TINY, headers=browser(c, "s0"))
    assert r.status_code == 429


def test_a_browser_gets_a_signed_cookie_and_a_forged_one_is_ignored(make_client):
    c = make_client()
    r = c.get("/api/health")
    assert "li2_client=" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    r = c.get("/api/health", headers={"Cookie": "li2_client=AAAAAAAAAAAAAAAA." + "0" * 32})
    assert "li2_client=" in r.headers.get("set-cookie", "")  # refused: a fresh one is issued


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain",
                                          "multipart/form-data; boundary=x"])
def test_form_posts_are_refused(make_client, content_type):
    c = make_client()
    r = c.post("/api/runs", content=b"group=Z7", headers={"Content-Type": content_type})
    assert r.status_code == 415
    r = c.post("/api/runs", json=TINY, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = c.post("/api/runs", json=TINY, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_a_cross_site_html_form_cannot_cancel_a_run(make_client):
    c = make_client(runner=FakeRunner(auto=False))
    run = c.post("/api/runs", json=TINY).json()
    r = c.post(f"/api/runs/{run['id']}/cancel", content=b"",
               headers={"Origin": "http://attacker.example",
                        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code in (403, 415)
    assert c.get(f"/api/runs/{run['id']}").json()["status"] == "running"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _upload(host: str, head: bytes, chunks: int, chunked: bool) -> bytes:
    """Send ``head`` then 64 kB pieces over a raw socket (the client holds one piece, so the
    process's memory measures the server); returns the start of the reply."""
    name, port = host.split(":")
    sock = socket.create_connection((name, int(port)))
    sock.settimeout(5)
    piece = b"x" * 65536
    try:
        sock.sendall(head)
        for _ in range(chunks):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    except OSError:
        pass  # the server answered and closed
    try:
        return sock.recv(4096)
    except OSError:
        return b""
    finally:
        sock.close()


def test_oversized_bodies_get_413_fast_while_health_answers(tmp_path):
    """Real uvicorn: a 27 MB body is refused from its length, a chunked one while it arrives;
    /api/health answers meanwhile and the process's peak memory does not jump."""
    app = create_app(settings(tmp_path), runner=FakeRunner())
    with uvicorn_server(app) as host:
        httpx.get(f"http://{host}/api/health")
        peak = _rss_mb()
        answers: list[float] = []

        def poll_health() -> None:
            for _ in range(20):
                t = time.monotonic()
                assert httpx.get(f"http://{host}/api/health", timeout=5).status_code == 200
                answers.append(time.monotonic() - t)
        poller = threading.Thread(target=poll_health)
        poller.start()
        start = time.monotonic()
        size = 27 << 20
        reply = _upload(host, b"POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: %d\r\n\r\n" % size,
                        size // 65536, chunked=False)
        assert reply.startswith(b"HTTP/1.1 413") and b"LI2_JSON_MAX_BYTES" in reply
        assert time.monotonic() - start < FAST
        reply = _upload(host, b"POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                        64, chunked=True)  # 4 MB offered; the cap is 1 MB
        assert reply.startswith(b"HTTP/1.1 413")
        poller.join()
        assert max(answers) < FAST
        assert _rss_mb() - peak < 20


def test_a_huge_spec_via_the_api_is_fast_on_a_real_server(tmp_path):
    app = create_app(settings(tmp_path), runner=FakeRunner())
    with uvicorn_server(app) as host:
        start = time.monotonic()
        r = httpx.get(f"http://{host}/api/groups/" + "Z2x" * 20 + "Z2")
        assert r.status_code == 422 and time.monotonic() - start < FAST
        wait_until(lambda: httpx.get(f"http://{host}/api/health").status_code == 200)


def test_another_clients_sweep_cancel_is_403(tmp_path):
    from fastapi.testclient import TestClient

    from server.store import MemoryRunStore
    app = create_app(settings(tmp_path), runner=FakeRunner(sweep_step_delay=0.05),
                     store=MemoryRunStore())
    spec = {"name": "mine", "base": {"group": "Z5", "hidden": 16, "steps": 200},
            "grid": {"seed": [0, 1]}}
    with TestClient(app) as c:
        me, other = browser(c, "me"), browser(c, "other")
        sweep = c.post("/api/sweeps", json=spec, headers=me).json()
        r = c.post(f"/api/sweeps/{sweep['id']}/cancel", headers=other)
        assert r.status_code == 403 and "another client" in r.json()["detail"]
        assert c.post(f"/api/sweeps/{sweep['id']}/cancel", headers=me).status_code == 200
