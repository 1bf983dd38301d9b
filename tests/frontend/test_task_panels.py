"""The task panels in a real browser: the table's cells and counts agree with /table at the
live and replayed steps, hover and ask show the network's answers, names fit the group, and a
256-element table redraws fast (timings recorded in benchmarks/README.md)."""

from __future__ import annotations

import io
import json
import statistics
import time

import httpx
import numpy as np
import pytest

from .helpers import wait_for
from .test_runs_over_time import RUN, finished_run, open_run, pin

pytestmark = pytest.mark.browser

TABLE = "document.querySelector('[data-testid=table-view]')"


def panel_counts(page) -> dict:
    """The counts as the panel shows them (the numbers in its legend)."""
    return {key: int(page.locator(f"[data-testid=table-count-{key}]").inner_text())
            for key in ("train_right", "train_wrong", "test_right", "test_wrong")}


def table_at(url: str, run_id: str, step: int | None = None) -> dict:
    params = {} if step is None else {"step": step}
    r = httpx.get(f"{url}/api/runs/{run_id}/table", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def wait_table_step(page, step: int) -> None:
    wait_for(page, f"{TABLE} && {TABLE}.dataset.step === '{step}'", 20)


def test_table_counts_follow_the_replay_and_match_the_api(page, server):
    run = finished_run(server.url)
    rid = run["id"]
    open_run(page, server.url, rid)
    final = run["summary"]["final"]
    wait_table_step(page, final["step"])
    body = table_at(server.url, rid)
    assert panel_counts(page) == body["counts"]
    assert body["test_acc"] == pytest.approx(final["test_acc"], abs=1e-9)
    assert json.loads(page.evaluate(f"{TABLE}.dataset.counts")) == body["counts"]

    # an early replayed step: the network has memorised the training cells, not the rest
    rows = httpx.get(f"{server.url}/api/runs/{rid}/metrics").json()["rows"]
    steps = httpx.get(f"{server.url}/api/runs/{rid}/snapshots").json()
    early = next(s for s in steps if next(r for r in rows if r["step"] == s)["train_acc"] >= 0.95)
    pin(page, early)
    wait_table_step(page, early)
    body = table_at(server.url, rid, early)
    n = panel_counts(page)
    assert n == body["counts"]
    assert n["train_right"] >= 0.95 * (n["train_right"] + n["train_wrong"])
    assert n["test_wrong"] > 3 * n["test_right"]
    assert f"step {early}" in page.locator("#panel-table .panel-meta").inner_text()

    # hover a cell: its names, the true answer and the network's, as /table has them
    a, b = 5, 17
    canvas = page.locator(".task-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    gutter, cell = (float(canvas.get_attribute(f"data-{k}")) for k in ("gutter", "cell"))
    at = (box["x"] + gutter + (b + 0.5) * cell, box["y"] + gutter + (a + 0.5) * cell)
    page.mouse.move(*at)
    m = body["order"]
    text = page.locator(".task-readout").inner_text()
    assert text.startswith(f"{a} ∘ {b} = {(a + b) % m} · the network says")
    assert text.endswith(f"(step {early})")

    # a click on the cell asks the network about that pair, at the replayed step
    page.mouse.click(*at)
    wait_for(page, "document.querySelector('[data-testid=ask]').dataset.step", 10)
    p = httpx.get(f"{server.url}/api/runs/{rid}/predict",
                  params={"a": a, "b": b, "step": early}).json()
    ask = page.locator("[data-testid=ask]")
    assert ask.get_attribute("data-step") == str(early)
    assert ask.get_attribute("data-prediction") == str(p["prediction"])
    assert page.locator("#ask-a").input_value() == str(a)
    assert page.errors == []


def test_ask_by_name_in_s4_and_a_bad_name_is_explained(page, server):
    run = finished_run(server.url, group="S4", hidden=32, steps=20, train_fraction=0.5)
    open_run(page, server.url, run["id"])
    wait_table_step(page, 20)
    names = table_at(server.url, run["id"])["names"]
    assert names[0] == "e" and "(1 2)(3 4)" in names
    page.fill("#ask-a", "(1 2)")
    page.fill("#ask-b", "(2 3)")
    page.click("#ask-go")
    wait_for(page, "document.querySelector('[data-testid=ask-verdict]')", 10)
    a, b = names.index("(1 2)"), names.index("(2 3)")
    p = httpx.get(f"{server.url}/api/runs/{run['id']}/predict", params={"a": a, "b": b}).json()
    verdict = page.locator("[data-testid=ask-verdict]").inner_text()
    assert p["names"]["label"] == "(1 2 3)"  # (2 3) first: 1→2, 2→3, 3→1
    assert verdict.startswith("(1 2) ∘ (2 3) = (1 2 3)")
    assert page.locator("[data-testid=ask-prediction]").inner_text() == p["names"]["prediction"]
    assert len(page.locator(".ask-scores tbody tr").all()) == 5
    page.fill("#ask-a", "(1 5)")
    page.click("#ask-go")
    wait_for(page, "document.querySelector('#ask-answer .field-error')", 5)
    assert "not an element" in page.locator("#ask-answer").inner_text()
    assert page.errors == []


def test_a_256_element_table_redraws_fast(page, server):
    run = finished_run(server.url, group="Z256", hidden=8, steps=20, snapshot_every=5,
                       train_fraction=0.3, weight_decay=0.0)
    open_run(page, server.url, run["id"])
    wait_table_step(page, 20)
    timings = []
    for step in (5, 10, 15, 20, 5, 10):
        pin(page, step)
        wait_table_step(page, step)
        timings.append(float(page.evaluate(f"{TABLE}.dataset.drawMs")))
        assert panel_counts(page) == table_at(server.url, run["id"], step)["counts"]
    # hover redraws (grid blit + highlight) over the 256×256 canvas
    page.locator(".task-canvas").scroll_into_view_if_needed()
    box = page.locator(".task-canvas").bounding_box()
    hover_ms = page.evaluate("""async (box) => {
        const c = document.querySelector('.task-canvas');
        const t0 = performance.now();
        for (let i = 0; i < 100; i++) {
            c.dispatchEvent(new MouseEvent('mousemove', { bubbles: true,
              clientX: box.x + box.width * (0.3 + i / 200), clientY: box.y + box.height / 2 }));
        }
        return (performance.now() - t0) / 100; }""", box)
    print(f"\nZ256 table redraw: median {statistics.median(timings):.1f} ms, max "
          f"{max(timings):.1f} ms over {len(timings)} steps; hover {hover_ms:.2f} ms per move")
    assert statistics.median(timings) < 100 and hover_ms < 30
    assert page.errors == []


def test_inspector_draws_a_locked_node_as_a_smooth_wave_round_the_clock(page, server):
    run = finished_run(server.url)
    rid = run["id"]
    npz = httpx.get(f"{server.url}/api/runs/{rid}/snapshot", params={"format": "npz"}).content
    arrays = np.load(io.BytesIO(npz))
    node = int(np.argmax(arrays["concentration"]))  # the most locked node
    m = arrays["V"].shape[1]
    open_run(page, server.url, rid, f"&node={node}")
    circle = "document.querySelector('#panel-inspector .node-circle')"
    wait_for(page, f"{circle}.data && {circle}.data.length === 4", 20)  # u, v: first and now
    traces = page.evaluate(circle + ".data.map(t => ({name: t.name, subplot: t.subplot, "
                           "r: t.r, theta: t.theta}))")
    now = [t for t in traces if t["name"].endswith("(shown)")]
    first = [t for t in traces if t["name"] == "step 0 (first)"]
    assert len(now) == len(first) == 2
    npz0 = httpx.get(f"{server.url}/api/runs/{rid}/snapshot",
                     params={"format": "npz", "step": 0}).content
    w0 = np.load(io.BytesIO(npz0))["W"]

    def concentration(r):
        power = np.abs(np.fft.rfft(r)[1:]) ** 2
        return power.max() / power.sum()

    for t, t0, rows in zip(now, first, (slice(0, m), slice(m, 2 * m)), strict=True):
        assert t["theta"] == pytest.approx([360 * i / m for i in [*range(m), 0]])
        for trace, weights in ((t, arrays["W"]), (t0, w0)):
            w = weights[rows, node].astype(np.float64)
            r = np.array(trace["r"][:-1]) - 1.6
            np.testing.assert_allclose(r, 0.4 * w / np.abs(w).max(), atol=1e-6)
        # now a smooth wave: nearly all of the drawn curve's power in one frequency pair,
        # far more than at initialisation
        now_c = concentration(np.array(t["r"][:-1]))
        init_c = concentration(np.array(t0["r"][:-1]))
        assert now_c > 0.8 and now_c > init_c + 0.1, (now_c, init_c)
    assert page.errors == []


def test_table_follows_a_live_run(page, server):
    r = httpx.post(f"{server.url}/api/runs", json={**RUN, "steps": 200},
                   params={"max_steps_per_s": 25})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    page.goto(f"{server.url}/?run={rid}")
    wait_for(page, "window.__li2 && window.__li2.ready === true", 30)
    wait_for(page, f"{TABLE}.dataset.step !== undefined && window.__li2.status === 'running'",
             60)
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(int(page.evaluate(f"{TABLE}.dataset.step")))
        time.sleep(0.2)
    assert len(seen) >= 3, seen  # it moved on with the run, snapshot by snapshot
    assert all(s % RUN["snapshot_every"] == 0 for s in seen)
    httpx.post(f"{server.url}/api/runs/{rid}/cancel")
    assert page.errors == []
