"""The live dashboard in a real browser against a real server (marked browser)."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from .helpers import ServerProcess, li2, measure_live, open_dashboard, set_field, wait_for

pytestmark = pytest.mark.browser

SPEED = "40"  # steps/s cap: the 300-step lecture run lasts ~8 s, long enough to watch


def start_lecture(page, server, speed: str = SPEED) -> None:
    open_dashboard(page, server.url)
    page.select_option("#preset", "lecture")
    set_field(page, "max_steps_per_s", speed)
    page.click("#start")
    wait_for(page, "window.__li2.runId !== null && window.__li2.lastStep >= 0", 180)


def test_lecture_run_is_drawn_live_and_groks(page, server):
    start_lecture(page, server)
    wait_for(page, "window.__li2.lastStep >= 5 && window.__li2.status === 'running'", 60)
    draws0 = li2(page, "panelDraws")
    step0 = li2(page, "lastStep")
    stats = measure_live(page, 2.0)
    draws1 = li2(page, "panelDraws")
    assert li2(page, "status") == "running", "the run ended before the live window closed"
    assert li2(page, "lastStep") > step0
    # both the curves and the spectrum heatmap redrew while training went on
    assert draws1["curves"] > draws0["curves"]
    assert draws1["spectrum"] > draws0.get("spectrum", 0)
    assert page.evaluate("document.querySelector('#panel-spectrum .plot').data[0].type") == \
        "heatmap"
    print(f"\nlive drawing: {stats}")
    assert stats["redraws_per_s"] >= 2.0
    assert stats["latency_median_ms"] < 250

    # a stage change is shown: in the stage panel and as a band on the curves
    wait_for(page, "window.__li2.stage !== null", 60)
    # the panel draws the stage on its next frame, and the run may move on to the next stage
    # in between: the panel must catch up with the current stage, read in one go
    wait_for(page, "document.querySelector('#panel-stage .stage-now')?.dataset.stage === "
                   "window.__li2.stage", 10)
    assert page.locator("#panel-curves .shapelayer path").count() > 0

    wait_for(page, "window.__li2.status === 'completed'", 180)
    wait_for(page, "document.querySelector('#theory-outcome') !== null", 10)
    # the run grokked, and the card says so and that the theory's prediction came true
    assert page.locator("#theory-outcome").get_attribute("data-outcome") == "generalised"
    assert "came true" in page.locator("#theory-outcome").inner_text()
    # every stage the server recorded is on the page; the last one is the stage shown now
    run_id = li2(page, "runId")
    stored = httpx.get(f"{server.url}/api/runs/{run_id}/stages").json()
    stored = stored.get("stages", stored) if isinstance(stored, dict) else stored
    chips = page.locator("#panel-stage .stage-chip").all_inner_texts()
    assert chips == [f"{s['stage']} @ {s['step']}" for s in stored]
    assert li2(page, "stage") == stored[-1]["stage"]
    if any(s["stage"] == "generalised" for s in stored):
        assert "Generalised" in page.locator("#panel-stage .stage-now").inner_text()

    # looking back: pin step 50, the array panels show the stored snapshot at or before it
    page.locator("#scrub").fill("50")
    wait_for(page, "window.__li2.pinned && window.__li2.pinned.snapshotStep !== null", 20)
    shown = li2(page, "pinned")["snapshotStep"]
    assert 40 <= shown <= 50  # the lecture preset snapshots every 5 steps
    wait_for(page, f"document.querySelector('#panel-spectrum .panel-meta').textContent"
                   f".startsWith('step {shown} ')", 10)
    assert "at=50" in page.url
    page.reload()
    page.wait_for_function("window.__li2 && window.__li2.ready === true")
    wait_for(page, "window.__li2.pinned && window.__li2.pinned.snapshotStep !== null", 20)
    assert li2(page, "pinned")["step"] == 50
    page.click("#scrub-live")
    assert li2(page, "pinned") is None and "at=" not in page.url
    assert page.errors == []


def test_reload_restores_every_setting(page, server):
    open_dashboard(page, server.url)
    page.select_option("#preset", "dihedral")
    set_field(page, "lr", "0.0025")
    set_field(page, "seed", "7")
    set_field(page, "max_steps_per_s", "15")
    page.select_option("#input-optimizer", "adamw")
    page.check("#panel-curves input[data-setting=log_steps]")
    page.check("#panel-spectrum input[value=V]")
    before = page.evaluate("window.__li2.settings")
    values = page.evaluate("Object.fromEntries([...document.querySelectorAll("
                           "'#config-form [name]')].map(e => [e.name, e.value]))")
    url = page.url
    assert "lr=0.0025" in url and "optimizer=adamw" in url

    fresh = page.context.new_page()
    open_dashboard(fresh, server.url, url.split("#", 1)[1])
    assert fresh.evaluate("window.__li2.settings") == before
    again = fresh.evaluate("Object.fromEntries([...document.querySelectorAll("
                           "'#config-form [name]')].map(e => [e.name, e.value]))")
    assert again == values
    assert fresh.locator("#panel-spectrum input[value=V]").is_checked()
    assert fresh.locator("#panel-curves input[data-setting=log_steps]").is_checked()
    # the edited lr no longer matches the preset: the picker says so
    assert fresh.locator("#preset").input_value() == ""


def test_hide_flag_hides_controls(page, server):
    open_dashboard(page, server.url, "hide=lr,optimizer,energy")
    assert not page.locator("#field-lr").is_visible()
    assert not page.locator("#field-optimizer").is_visible()
    assert not page.locator("#panel-energy").is_visible()
    assert page.locator("#field-weight_decay").is_visible()


def test_out_of_bounds_value_shows_the_servers_message(page, server):
    open_dashboard(page, server.url)
    set_field(page, "hidden", "99999")
    set_field(page, "lr", "0")
    page.click("#start")
    wait_for(page, "document.querySelector('#error-hidden').textContent !== ''", 20)
    expected = httpx.post(f"{server.url}/api/runs", json={"hidden": 99999, "lr": 0}).json()
    msgs = {d["loc"][-1]: d["msg"] for d in expected["detail"]}
    assert page.locator("#error-hidden").inner_text() == msgs["hidden"]
    assert page.locator("#error-lr").inner_text() == msgs["lr"]
    assert "invalid" in page.locator("#field-hidden").get_attribute("class")
    assert li2(page, "runId") is None
    # fixing the value clears its message
    set_field(page, "hidden", "64")
    assert page.locator("#error-hidden").inner_text() == ""


def test_queue_position_is_shown(page, server):
    # the server trains max_jobs runs at once; fill them with slow runs so the page's run waits
    slots = httpx.get(f"{server.url}/api/health").json()["max_jobs"]
    blockers = []
    try:
        for _ in range(slots):
            r = httpx.post(f"{server.url}/api/runs", params={"max_steps_per_s": 5},
                           json={"group": "Z7", "hidden": 8, "steps": 2000})
            assert r.status_code == 201, r.text
            blockers.append(r.json()["id"])
        open_dashboard(page, server.url)
        set_field(page, "group", "Z7")
        set_field(page, "hidden", "8")
        page.click("#start")
        wait_for(page, "window.__li2.status === 'queued'", 30)
        assert "in the queue" in page.locator("#status-run").inner_text()
        page.click("#stop")
        wait_for(page, "window.__li2.status === 'cancelled'", 30)
    finally:
        for run_id in blockers:
            httpx.post(f"{server.url}/api/runs/{run_id}/cancel")


def test_page_reconnects_after_server_restart(page, tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    try:
        start_lecture(page, srv, speed="15")
        wait_for(page, "window.__li2.lastStep >= 10", 60)
        hellos = li2(page, "hellos")
        seq = li2(page, "lastSeq")
        srv.stop(signal.SIGKILL)  # a crash, not a polite shutdown
        wait_for(page, "window.__li2.connection === 'retrying'", 20)
        assert "retrying" in page.locator("#status-conn").inner_text()
        time.sleep(1.0)
        srv.start()
        wait_for(page, f"window.__li2.hellos > {hellos}", 60)
        assert li2(page, "lastSeq") >= seq
        wait_for(page, "window.__li2.connection === 'open' || "
                       "['completed', 'interrupted', 'failed'].includes(window.__li2.status)", 30)
        status = li2(page, "status")
        assert status in ("running", "queued", "completed", "interrupted"), status
        assert status in page.locator("#status-run").inner_text()
        assert page.errors == []
    finally:
        srv.stop()
