"""The sweeps page in chromium: phase layout maths, and a real smoke sweep on `li2 serve` whose
cells are coloured by outcome, carry the p_crit overlay and open their run on click."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from .helpers import ROOT

pytestmark = pytest.mark.browser

STATIC = ROOT / "frontend" / "static"
ORIGIN = "http://li2.test"
SHOTS = Path(os.environ["LI2_SHOTS"]) if os.environ.get("LI2_SHOTS") else None  # screenshots


@pytest.fixture
def module_page(page):
    def serve(route):
        path = route.request.url[len(ORIGIN):].split("?")[0]
        if path == "/":
            return route.fulfill(body="<!doctype html><title>t</title>", content_type="text/html")
        file = (STATIC / path.lstrip("/")).resolve()
        if STATIC in file.parents and file.is_file():
            ctype = "text/javascript" if file.suffix == ".js" else (
                mimetypes.guess_type(file.name)[0] or "application/octet-stream")
            return route.fulfill(body=file.read_bytes(), content_type=ctype)
        return route.fulfill(status=404, body="not found")

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")
    return page


def test_phase_layout_puts_p_on_x_and_seeds_side_by_side(module_page):
    got = module_page.evaluate("""async () => {
        const { phaseLayout, columnOf } = await import('/js/sweeps-phase.js');
        const cells = [];
        let i = 0;
        for (const g of ['Z23', 'Z41']) for (const p of [0.4, 0.2, 0.3]) for (const s of [0, 1])
            cells.push({ index: i, run_id: `r${i++}`, point: { group: g, train_fraction: p,
                         seed: s }, status: 'completed', outcome: 'memorised',
                         p_crit: g === 'Z23' ? 0.3747 : 0.2489 });
        const L = phaseLayout({ axes: ['group', 'train_fraction', 'seed'], cells });
        return { x: L.xAxis, xs: L.xValues, rows: L.rows.map((r) => r.label), pOnX: L.pOnX,
                 first: L.cells.slice(0, 2).map((c) => [c.row, c.col, c.slot, c.slots]),
                 mid: columnOf(L.xValues, 0.25), out: columnOf(L.xValues, 0.9),
                 edge: columnOf(L.xValues, 0.15) };
    }""")
    assert got["x"] == "train_fraction" and got["xs"] == [0.2, 0.3, 0.4] and got["pOnX"]
    assert got["rows"] == ["group=Z23", "group=Z41"]
    assert got["first"] == [[0, 2, 0, 2], [0, 2, 1, 2]]  # p = 0.4 is the third column
    assert got["mid"] == pytest.approx(0.5) and got["out"] is None
    assert got["edge"] == pytest.approx(-0.5)


def test_a_smoke_sweep_from_the_page(server, page):
    page.goto(f"{server.url}/sweeps.html#preset=smoke")
    page.wait_for_function("window.__sweeps && window.__sweeps.ready")
    assert '"train_fraction": [' in page.input_value("#sweep-spec")
    page.click("#sweep-start")
    page.wait_for_function("window.__sweeps.sweepId && window.__sweeps.status === 'completed'"
                           " && window.__sweeps.cellsDone === 4", timeout=120_000)
    cells = page.eval_on_selector_all(
        ".phase-cell", "els => els.map(e => [e.dataset.outcome, e.getAttribute('href')])")
    assert sorted(o for o, _ in cells) == ["generalised"] * 2 + ["memorised"] * 2
    assert all(href.startswith("/#run=") for _, href in cells)
    assert page.locator(".phase-pcrit-dot").count() == 1  # one group: one p_crit point
    assert page.locator(".phase-pstar").count() == 1
    assert "0.5991" in page.inner_text("#boundaries")  # Z11's p_crit beside measured p*
    assert page.is_disabled("#sweep-stop")
    with page.context.expect_page() as opened:
        page.click(".phase-cell >> nth=0")
    run_page = opened.value
    # the dashboard replays the stored run: a sweep's cell is an ordinary, finished run
    run_page.wait_for_function("window.__li2 && window.__li2.ready && "
                               "window.__li2.status === 'completed' && window.__li2.lastStep "
                               "=== 300", timeout=30_000)
    assert run_page.evaluate("window.__li2.runId") == cells[0][1].split("=")[1]
    assert page.errors == []


# how many of the diagram's texts reach past its drawing or the panel showing it
CLIPPED_LABELS = """(() => { const svg = document.querySelector('#phase svg');
    const W = Math.min(svg.viewBox.baseVal.width, svg.parentElement.clientWidth);
    const H = svg.viewBox.baseVal.height;
    return [...svg.querySelectorAll('text')].map((t) => t.getBBox()).filter((b) =>
      b.x < 0 || b.y < 0 || b.x + b.width > W || b.y + b.height > H).length; })()"""


def test_the_phase_diagram_fills_cell_by_cell(server, page):
    # two batches (two groups): the first batch's cells train, live, while the others wait
    # steps: each batch must train long enough (~2 s) for several 50 ms samples to see it live
    # (the live step moves in jumps of ~1000 steps; 12000 steps took under 1 s per batch once
    # the batched engine's fp32 step ran through sgemm directly)
    body = {"name": "live", "base": {"hidden": 16, "steps": 40000, "eval_every": 10,
                                     "snapshot_every": 1000},
            "zipped": {"group": ["Z5", "Z7"], "hidden": [16, 16]},
            "grid": {"train_fraction": [0.3, 0.9]}}
    page.set_viewport_size({"width": 1280, "height": 720})
    sweep = httpx.post(f"{server.url}/api/sweeps", json=body).json()
    page.goto(f"{server.url}/sweeps.html#sweep={sweep['id']}")
    page.wait_for_function("window.__sweeps && window.__sweeps.ready")
    # every 50 ms: how many cells show live progress, how many have an outcome
    page.evaluate("""() => { window.__frames = []; setInterval(() => {
        const cells = [...document.querySelectorAll('.phase-cell')];
        window.__frames.push({ live: cells.filter((c) => c.dataset.liveAcc).length,
          done: cells.filter((c) => c.dataset.outcome).length, n: cells.length,
          steps: cells.map((c) => Number(c.dataset.liveStep ?? -1)) }); }, 50); }""")
    page.wait_for_function("window.__frames.some((f) => f.live > 0)", timeout=60_000)
    if SHOTS:  # mid-sweep, the phase panel scrolled into view
        page.locator("#panel-phase").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "phase-live-1280.png"))
    page.wait_for_function("window.__sweeps.status === 'completed' && "
                           "window.__sweeps.cellsDone === 4", timeout=120_000)
    frames = page.evaluate("window.__frames")
    mid = [f for f in frames if f["n"] == 4 and f["live"] > 0 and f["done"] < 4]
    assert mid, "no moment with a live cell before every cell had finished"
    # the second batch trains, live, beside the first batch's outcomes
    assert any(0 < f["done"] < 4 for f in mid)
    # a cell's live step moves on between frames: it fills while it trains, not at the end
    assert any(a["steps"][i] >= 0 and b["steps"][i] > a["steps"][i]
               for a, b in zip(frames, frames[1:]) for i in range(min(len(a["steps"]), 4)))
    # once every cell has its outcome, nothing is drawn live (the sampler may lag one frame)
    page.wait_for_function("document.querySelectorAll('.phase-cell[data-outcome=\"\"]')"
                           ".length === 0", timeout=10_000)
    assert page.locator(".phase-cell[data-live-acc]").count() == 0
    assert page.locator(".phase-live-bar").count() == 0
    for width, height in ((1280, 720), (390, 844)):  # every label inside the drawing
        page.set_viewport_size({"width": width, "height": height})
        # the redraw follows the resize on the next frame: wait (bounded) for it to fit
        page.wait_for_function(CLIPPED_LABELS + " === 0", timeout=10_000)
        if SHOTS:
            page.locator("#panel-phase").screenshot(path=str(SHOTS / f"phase-{width}.png"))
    assert page.errors == []


def test_a_bad_spec_shows_the_field(server, page):
    page.goto(f"{server.url}/sweeps.html#preset=smoke")
    page.wait_for_function("window.__sweeps && window.__sweeps.ready")
    page.fill("#sweep-spec", '{"grid": {"lr": [0.1, 7]}}')
    page.click("#sweep-start")
    page.wait_for_function("document.getElementById('spec-error').textContent.length > 0")
    assert "grid.lr: grid point (lr=7)" in page.inner_text("#spec-error")
    page.fill("#sweep-spec", "{not json")
    assert "not JSON" in page.inner_text("#spec-error")


def test_a_running_cell_is_live_on_the_dashboard(server, page):
    # one long cell: the dashboard attaches while it trains, then the sweep is cancelled
    body = {"name": "long", "base": {"group": "Z11", "hidden": 24, "steps": 100_000,
                                     "eval_every": 10, "snapshot_every": 1000},
            "grid": {"seed": [0]}}
    sweep = httpx.post(f"{server.url}/api/sweeps", json=body).json()
    run_id = sweep["cells"][0]["run_id"]
    try:
        page.goto(f"{server.url}/#run={run_id}")
        page.wait_for_function("window.__li2 && window.__li2.ready && window.__li2.status === "
                               "'running' && window.__li2.lastStep > 0", timeout=60_000)
        first = page.evaluate("window.__li2.lastStep")
        page.wait_for_function(f"window.__li2.lastStep > {first}", timeout=30_000)  # new rows
        assert page.evaluate("window.__li2.connection") == "open"
    finally:
        httpx.post(f"{server.url}/api/sweeps/{sweep['id']}/cancel")
    page.wait_for_function("window.__li2.status === 'cancelled'", timeout=30_000)
    assert page.evaluate("window.__li2.hellos") == 1  # one connection, the final status on it
    assert page.errors == []


def test_dashboard_and_sweeps_page_link_to_each_other(server, page):
    page.goto(f"{server.url}/")
    page.wait_for_function("window.__li2 && window.__li2.ready")
    page.click("#link-sweeps")
    page.wait_for_function("window.__sweeps && window.__sweeps.ready")
    assert urlsplit(page.url).path == "/sweeps.html"
    page.click("#link-dashboard")
    page.wait_for_function("window.__li2 && window.__li2.ready")
    assert urlsplit(page.url).path == "/"
