"""The dashboard for the room (issue 14) at 1280x720: the first view, a run from the cold
default to "generalised", fresh panels for a new run, projector mode and phones (browser)."""

from __future__ import annotations

import time

import httpx
import pytest

from .helpers import CHROMIUM_ARGS, ServerProcess, li2, set_field, wait_for

pytestmark = pytest.mark.browser

SECRET = "room-token-for-tests"
TOKEN = {"X-Instructor-Token": SECRET}
SMALL = {"group": "Z23", "hidden": 64, "train_fraction": 0.6, "steps": 60, "lr": 0.02,
         "weight_decay": 5e-4, "snapshot_every": 10}


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """A server with an instructor token (classroom on); two training slots."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LI2_INSTRUCTOR_TOKEN", SECRET)
        srv = ServerProcess(tmp_path_factory.mktemp("li2-room"),
                            args=("--max-jobs", "2", "--quota", "6")).start()
    yield srv
    srv.stop()


def new_page(browser, width: int, height: int):
    assert "--no-sandbox" in CHROMIUM_ARGS
    ctx = browser.new_context(viewport={"width": width, "height": height})
    ctx.add_init_script(f"localStorage.setItem('li2-token', '{SECRET}')")
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return ctx, page


def in_view(page, selector: str) -> bool:
    """The element's box lies inside the viewport (not merely in the document)."""
    return page.evaluate("""(sel) => { const r = document.querySelector(sel)
        .getBoundingClientRect(); return r.width > 0 && r.top >= 0 && r.left >= 0 &&
        r.bottom <= innerHeight + 1 && r.right <= innerWidth + 1; }""", selector)


def sideways(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - innerWidth")


def finished_run(url: str) -> str:
    r = httpx.post(f"{url}/api/runs", json=SMALL, headers=TOKEN)
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/api/runs/{run_id}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.3)
    return run_id


def test_first_view_then_the_default_run_groks_and_a_new_run_starts_clean(browser, room):
    ctx, page = new_page(browser, 1280, 720)
    page.goto(f"{room.url}/")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    # on load: Start, the preset pills and the theory card's prediction, all in the first view
    assert in_view(page, "[data-testid=start]")
    assert page.locator("#preset-pills [aria-checked=true]").inner_text() == "lecture"
    wait_for(page, "document.querySelector('#theory-verdict') !== null", 20)
    assert in_view(page, "#theory-verdict")
    assert page.locator("#theory-verdict").inner_text().startswith("Prediction:")
    before = li2(page, "prediction")["facts"]["prediction"]["verdict"]
    # the prediction follows the controls: too little data changes the verdict
    set_field(page, "train_fraction", "0.05")
    wait_for(page, "window.__li2.prediction.facts.prediction.p === 0.05", 20)
    assert li2(page, "prediction")["facts"]["prediction"]["verdict"] != before
    page.click("#preset-pills [data-preset=lecture]")
    wait_for(page, "window.__li2.prediction.facts.prediction.p === 0.4", 20)
    assert sideways(page) <= 0

    # Start is reached early from the keyboard (from a fresh load: focus at the top)
    page.reload()
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    page.keyboard.press("Tab")
    tabs = 1
    while page.evaluate("document.activeElement.id") != "start" and tabs < 5:
        page.keyboard.press("Tab")
        tabs += 1
    assert page.evaluate("document.activeElement.id") == "start"
    page.keyboard.press("Enter")
    # "starting…" until the first row, and the curves and the stage card in view
    wait_for(page, "window.__li2.runId !== null", 20)
    first = page.locator("#status-run").inner_text()
    wait_for(page, "window.__li2.lastStep >= 0", 180)
    assert "starting…" in first or li2(page, "lastStep") >= 0
    assert in_view(page, "[data-testid=curves]") and in_view(page, "[data-testid=stage-now]")
    # the cold default groks: its stage card reaches "generalised"
    wait_for(page, "document.querySelector('[data-testid=stage-now] .stage-now')"
                   ".dataset.stage === 'generalised'", 300)
    assert in_view(page, "[data-testid=stage-now] .stage-now")
    first_run = li2(page, "runId")
    wait_for(page, "window.__li2.status === 'completed'", 120)
    wait_for(page, "document.querySelector('#panel-coverage .panel-meta')"
                   ".textContent.startsWith('step ')", 20)

    # what every plot shows of the first run (x and y of each trace), to tell stale from new
    signature = """() => [...document.querySelectorAll('#panels .plot')].map((div, i) => ({
        i, id: div.closest('.panel').id,
        sig: (div.data || []).length ? JSON.stringify((div.data || []).map((t) => [
          Array.from(t.x || []), Array.from(t.y || []), t.z ? t.z.length : 0])) : '' }))"""
    before = page.evaluate(signature)
    old_meta = page.locator("#panel-coverage .panel-meta").inner_text()

    # a new run whose stream is held back until we have looked: a run starts within a second,
    # so without holding it its first snapshot could be drawn before we look
    held = []
    page.route_web_socket("**/ws/**", lambda ws: held.append(ws))
    set_field(page, "max_steps_per_s", "1")
    page.click("[data-testid=start]")
    wait_for(page, f"window.__li2.runId !== null && window.__li2.runId !== '{first_run}'", 20)
    page.wait_for_timeout(400)  # a few frames for every panel to redraw
    after = page.evaluate(signature)
    stale = [a["id"] for a, b in zip(after, before, strict=True)
             if a["sig"] and a["sig"] == b["sig"]]
    assert stale == [], f"panels still show the previous run: {stale}"
    assert page.locator("#panel-coverage .panel-meta").inner_text() != old_meta
    chips = page.locator("#panel-stage .stage-chip").all_inner_texts()
    assert all(c.endswith(" 0") for c in chips), chips  # only this run's first stage, if any
    assert page.locator("#theory-outcome").count() == 0
    assert held, "the new run's stream was not held back"
    for ws in held:
        ws.connect_to_server()  # let the stream through (forwarded both ways)
    page.click("#stop")
    wait_for(page, "['cancelled', 'completed'].includes(window.__li2.status)", 60)
    assert page.errors == []
    ctx.close()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_projector_mode_fits_without_sideways_scroll(browser, room, size):
    run_id = finished_run(room.url)
    ctx, page = new_page(browser, *size)
    page.goto(f"{room.url}/?present=1&run={run_id}")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    wait_for(page, "window.__li2.status === 'completed' && window.__li2.stage !== null", 30)
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.classList.contains('present')")
    assert sideways(page) <= 0
    for sel in ("[data-testid=start]", "[data-testid=curves]", "[data-testid=stage-now]",
                "[data-testid=theory-card]"):
        assert in_view(page, sel), f"{sel} is not in the first view at {size}"
    # projector type: band labels and axes larger than on the desktop page
    band = page.evaluate("document.querySelector('#panel-curves .plot').layout"
                         ".annotations[0].font.size")
    assert band >= 18
    assert page.errors == []
    ctx.close()


def test_phone_dashboard_and_watch_page_have_no_sideways_scroll(browser, room):
    run_id = finished_run(room.url)
    code = httpx.post(f"{room.url}/api/runs/{run_id}/broadcast", headers=TOKEN).json()["code"]
    ctx, page = new_page(browser, 390, 844)
    page.goto(f"{room.url}/?run={run_id}")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    wait_for(page, "window.__li2.status === 'completed'", 30)
    page.wait_for_timeout(500)
    assert sideways(page) <= 0
    assert in_view(page, "[data-testid=start]")
    page.goto(f"{room.url}/watch/{code}")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    wait_for(page, f"window.__li2.runId === '{run_id}' && window.__li2.status === 'completed'",
             30)
    page.wait_for_timeout(500)
    assert sideways(page) <= 0
    assert page.errors == []
    # the student page needs only the code
    page.goto(f"{room.url}/watch")
    page.fill("#join-code", code.lower())
    page.click("#join-go")
    page.wait_for_url(f"**/watch/{code}")
    ctx.close()
