"""Runs over time in a real browser against real servers: replay, compare, node inspector,
fork, classroom mode, and export → import (marked browser)."""

from __future__ import annotations

import io
import time
import zipfile

import httpx
import numpy as np
import pytest

from .helpers import ServerProcess, li2, open_dashboard, wait_for

pytestmark = pytest.mark.browser

# tiny and quick, yet it groks: Z23, 64 nodes, 120 steps, a snapshot every 10
RUN = {"group": "Z23", "hidden": 64, "train_fraction": 0.6, "steps": 120, "lr": 0.02,
       "weight_decay": 5e-4, "snapshot_every": 10}
SECRET = "correct-horse-battery"
PLOT_PANELS = ["curves", "spectrum", "inspector", "coverage", "gf", "energy"]


def finished_run(url: str, headers: dict | None = None, **changes) -> dict:
    r = httpx.post(f"{url}/api/runs", json={**RUN, **changes}, headers=headers or {})
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = httpx.get(f"{url}/api/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            assert run["status"] == "completed", run
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish")


def open_run(page, url: str, run_id: str, extra: str = "") -> None:
    """The dashboard on a stored run, by a plain ?run= link; waits until replay is possible."""
    page.goto(f"{url}/?run={run_id}{extra}")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    wait_for(page, "window.__li2.replay.available && window.__li2.status === 'completed'", 30)


def pin(page, step: int) -> None:
    # the slider's range grows when the curves panel next draws; a value set before that
    # would be clamped to the old maximum, as a browser clamps a user's drag
    wait_for(page, f"Number(document.querySelector('#scrub').max) >= {step}", 20)
    page.evaluate("""(step) => { const r = document.querySelector('#scrub');
        r.value = String(step); r.dispatchEvent(new Event('input')); }""", step)
    try:
        wait_for(page, f"window.__li2.pinned && window.__li2.pinned.snapshotStep === {step}", 20)
    except Exception:
        raise AssertionError(f"not pinned at {step}: {li2(page, 'pinned')}, run "
                             f"{li2(page, 'runId')} {li2(page, 'status')}") from None


def plot(page, panel: str) -> str:
    return f"document.querySelector('#panel-{panel} .plot')"


def shape_xs(page, panel: str) -> list:
    return page.evaluate(f"({plot(page, panel)}.layout.shapes || []).map(s => s.x0)")


def draws(page) -> dict:
    return li2(page, "panelDraws")


# -- replay ----------------------------------------------------------------------------------

def test_replay_slider_hover_and_play_move_every_panel(page, server):
    run = finished_run(server.url)
    open_run(page, server.url, run["id"], "&node=5")
    assert li2(page, "replay.steps") == list(range(0, 121, 10))
    wait_for(page, "document.querySelector('#inspector-meta').textContent.includes('node 5')")
    before = draws(page)
    pin(page, 60)
    wait_for(page, "document.querySelector('#inspector-meta').textContent.includes('step 60')")
    after = draws(page)
    for panel in [*PLOT_PANELS, "stage"]:
        assert after[panel] > before[panel], panel
    stages = httpx.get(f"{server.url}/api/runs/{run['id']}/stages").json()
    then = [s for s in stages if s["step"] <= 60][-1]
    assert then != stages[-1]  # a stage the run had left by its end
    assert page.locator("#panel-stage .stage-now").get_attribute("data-stage") == then["stage"]
    # metric panels mark the step; snapshot panels show the stored snapshot of that step
    for panel in ("curves", "gf", "energy"):
        assert 60 in shape_xs(page, panel), panel
    assert "step 60" in page.locator("#panel-spectrum .panel-meta").inner_text()
    assert "step 60" in page.locator("#panel-coverage .panel-meta").inner_text()
    assert "at=60" in page.url

    # hovering the curves previews another step everywhere; leaving goes back to 60
    box = page.locator("#panel-curves .plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    wait_for(page, "window.__li2.pinned.step < 45 && window.__li2.pinned.step > 15", 10)
    wait_for(page, "window.__li2.pinned.snapshotStep === Math.floor("
                   "window.__li2.pinned.step / 10) * 10", 10)
    page.mouse.move(5, 5)  # off the plot
    wait_for(page, "window.__li2.pinned.step === 60", 10)

    # play walks the stored snapshots to the end at the chosen speed, then stops
    page.select_option("#replay-speed", "250")
    page.click("#replay-play")
    seen = set()
    deadline = time.monotonic() + 30
    while li2(page, "replay.playing") and time.monotonic() < deadline:
        seen.add(li2(page, "pinned.snapshotStep"))
        time.sleep(0.02)
    assert li2(page, "pinned.step") == 120
    assert {70, 80, 90, 100, 110} & seen, seen  # it went through the steps in between
    assert page.errors == []


# -- compare ---------------------------------------------------------------------------------

def test_compare_overlays_runs_and_diffs_only_changed_fields(page, server):
    a = finished_run(server.url)
    b = finished_run(server.url, lr=0.01, weight_decay=0.0)
    page.goto(f"{server.url}/compare.html#runs={a['id']},{b['id']}")
    page.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
    rows = page.eval_on_selector_all("#compare-diff tr[data-field]", "rs => rs.map(r => "
                                     "[r.dataset.field, [...r.cells].slice(1).map(c => "
                                     "c.textContent)])")
    assert dict(rows) == {"lr": ["0.02", "0.01"], "weight_decay": ["0.0005", "0"]}
    groups = page.evaluate("document.querySelector('#compare-curves').data"
                           ".map(t => t.legendgroup)")
    assert groups.count(a["id"]) >= 4 and groups.count(b["id"]) >= 4
    # runs are named for people by what tells them apart, with a legend for the stage strip
    names = page.evaluate("document.querySelector('#compare-curves').data.map(t => t.name)")
    assert any(n.startswith("Z23 · lr=0.01 · η=0 (") for n in names)
    assert any(t == "stages" for t in page.evaluate(
        "document.querySelector('#compare-curves').data.map(t => t.legendgroup)"))
    test_acc = page.evaluate("document.querySelector('#compare-curves').data"
                             ".filter(t => t.name.includes('test solid')).map(t => t.y)")
    rows_a = httpx.get(f"{server.url}/api/runs/{a['id']}/metrics").json()["rows"]
    assert test_acc[0] == [r["test_acc"] for r in rows_a]  # the very numbers, overlaid
    bands = page.evaluate("document.querySelector('#compare-curves').layout.shapes"
                          ".map(s => s.name).filter(n => n && n.startsWith('stage-'))")
    assert any(a["id"] in n for n in bands) and any(b["id"] in n for n in bands)
    # spectra side by side at the shared step, which follows the slider
    assert page.evaluate("[...document.querySelectorAll('#compare-spectra .plot')]"
                         ".map(d => d.dataset.run)") == [a["id"], b["id"]]
    page.evaluate("""() => { const r = document.querySelector('#compare-step');
        r.value = '30'; r.dispatchEvent(new Event('input')); }""")
    wait_for(page, f"window.__li2.compare.spectraSteps['{a['id']}'] === 30 && "
                   f"window.__li2.compare.spectraSteps['{b['id']}'] === 30", 10)
    assert "step=30" in page.url
    assert page.errors == []


# -- node inspector --------------------------------------------------------------------------

def test_clicking_a_node_shows_its_weights_spectra_and_energy(page, server):
    run = finished_run(server.url)
    open_run(page, server.url, run["id"])
    wait_for(page, f"{plot(page, 'spectrum')}.data && {plot(page, 'spectrum')}.data.length")
    page.locator("#panel-spectrum .nsewdrag").first.click()
    wait_for(page, "Number.isInteger(window.__li2.settings.node)", 10)
    node = li2(page, "settings.node")
    wait_for(page, f"{plot(page, 'inspector')}.data && {plot(page, 'inspector')}.data.some("
                   "t => t.name === 'energy, full table')", 20)
    traces = page.evaluate(f"{plot(page, 'inspector')}.data.map(t => [t.name, t.y])")
    by_name = dict(traces)
    npz = httpx.get(f"{server.url}/api/runs/{run['id']}/snapshot",
                    params={"format": "npz"}).content
    arrays = np.load(io.BytesIO(npz))
    m = arrays["V"].shape[1]
    np.testing.assert_array_equal(np.float32(by_name["u (a)"]), arrays["W"][:m, node])
    np.testing.assert_array_equal(np.float32(by_name["v (b)"]), arrays["W"][m:, node])
    np.testing.assert_array_equal(np.float32(by_name["V row"]), arrays["V"][node])
    spec = arrays["spec_u"][node]
    np.testing.assert_allclose(by_name["u spectrum"], spec / spec.sum(), rtol=1e-5)
    energy = httpx.get(f"{server.url}/api/runs/{run['id']}/series",
                       params={"array": "energy_full", "node": node}).json()
    assert by_name["energy, full table"] == energy["values"] and len(energy["steps"]) == 13
    assert f"node={node}" in page.url
    assert page.errors == []


# -- fork ------------------------------------------------------------------------------------

def test_fork_from_a_replayed_step_links_the_runs_and_marks_the_change(page, server):
    parent = finished_run(server.url)
    open_run(page, server.url, parent["id"])
    pin(page, 60)
    page.click("#fork-open")
    assert page.locator("#fork-input-steps").input_value() == "60"  # the remaining steps
    page.fill("#fork-input-lr", "-1")
    page.click("#fork-submit")
    wait_for(page, "document.querySelector('#fork-error-lr').textContent !== ''", 10)
    assert li2(page, "runId") == parent["id"]  # refused: nothing started
    page.fill("#fork-input-lr", "0.005")
    page.fill("#fork-input-weight_decay", "0")
    page.click("#fork-submit")
    wait_for(page, f"window.__li2.runId !== '{parent['id']}'", 10)
    fork_id = li2(page, "runId")
    wait_for(page, "window.__li2.status === 'completed'", 60)
    wait_for(page, "window.__li2.runInfo && window.__li2.runInfo.id === window.__li2.runId")
    assert li2(page, "runInfo.parent") == {"run_id": parent["id"], "step": 60, "changes": {
        "lr": {"from": 0.02, "to": 0.005}, "weight_decay": {"from": 0.0005, "to": 0}}}
    text = page.locator("#lineage-parent").inner_text()
    assert parent["id"] in text and "step 60" in text and "lr 0.02 → 0.005" in text
    # the change is marked on the fork's own timeline, which starts at the fork step
    wait_for(page, f"({plot(page, 'curves')}.layout.shapes || []).some("
                   "s => s.name === 'marker-fork' && s.x0 === 60)", 10)
    assert page.evaluate(f"{plot(page, 'curves')}.data[0].x[0]") == 60
    # the fork's own step range in the status, and its settings in the controls
    wait_for(page, "document.querySelector('#status-progress').textContent"
                   ".startsWith('step 120 / 120 (forked at 60)')", 10)
    assert page.locator("#input-lr").input_value() == "0.005"
    assert page.locator("#input-weight_decay").input_value() == "0"
    # and the parent links back to it
    page.click(f"#lineage-parent a[data-run='{parent['id']}']")
    wait_for(page, f"window.__li2.runId === '{parent['id']}' && window.__li2.runInfo && "
                   f"window.__li2.runInfo.id === '{parent['id']}'", 10)
    assert fork_id in page.locator("#lineage-children").inner_text()
    assert page.errors == []


# -- classroom -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lecture_server(tmp_path_factory):
    """A server with an instructor token: classroom mode on."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LI2_INSTRUCTOR_TOKEN", SECRET)
        srv = ServerProcess(tmp_path_factory.mktemp("li2-lecture")).start()
    yield srv
    srv.stop()


def viewer_count(page) -> int | None:
    text = page.locator("#broadcast-viewers").get_attribute("data-count")
    return None if text is None else int(text)


def test_watch_page_is_read_only_and_counts_viewers(browser, page, lecture_server):
    url = lecture_server.url
    token = {"X-Instructor-Token": SECRET}
    run = finished_run(url, token)
    page.add_init_script(f"localStorage.setItem('li2-token', '{SECRET}')")
    open_run(page, url, run["id"])
    page.click("#broadcast")
    wait_for(page, "document.querySelector('#broadcast-code').textContent.length === 6", 10)
    code = page.locator("#broadcast-code").inner_text()
    wait_for(page, "document.querySelector('#broadcast-viewers').dataset.count === '0'", 10)

    viewers = []
    for n in (1, 2):
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        viewer = ctx.new_page()
        viewer.errors = []
        viewer.on("pageerror", lambda exc, v=viewer: v.errors.append(str(exc)))
        viewer.goto(f"{url}/watch/{code.lower()}?present=1&hide=energy,lr")
        viewer.wait_for_function("window.__li2 && window.__li2.ready === true", timeout=30_000)
        wait_for(viewer, f"window.__li2.runId === '{run['id']}' && "
                         "window.__li2.status === 'completed'", 20)
        viewers.append((ctx, viewer))
        wait_for(page, f"document.querySelector('#broadcast-viewers').dataset.count === '{n}'",
                 10)
        wait_for(viewer, f"window.__li2.viewers === {n}", 10)
    ctx, viewer = viewers[1]
    # read-only: no controls at all, and the server refuses commands from the page anyway
    assert viewer.locator("#start, #stop, #fork-open, #broadcast, #config-form").count() == 0
    assert viewer.evaluate("document.documentElement.classList.contains('present')")
    assert not viewer.locator("#panel-energy").is_visible()
    assert not viewer.locator("#config-summary [data-name=lr]").is_visible()
    assert viewer.locator("#config-summary [data-name=weight_decay]").is_visible()
    assert viewer.locator("#panel-curves").is_visible()
    statuses = viewer.evaluate("""async (id) => {
        const post = (path, body) => fetch(path, { method: 'POST',
            body: body && JSON.stringify(body),
            headers: { 'Content-Type': 'application/json' } }).then(r => r.status);
        return [await post('/api/runs', {}), await post(`/api/runs/${id}/cancel`),
                await post(`/api/runs/${id}/fork`, { step: 0 }),
                await post(`/api/runs/${id}/broadcast`)];
    }""", run["id"])
    assert statuses == [401, 401, 401, 401]
    assert viewer.errors == []
    ctx.close()  # a viewer leaves
    wait_for(page, "document.querySelector('#broadcast-viewers').dataset.count === '1'", 10)
    wait_for(viewers[0][1], "window.__li2.viewers === 1", 10)

    # the instructor moves the class to the next run: the viewer follows
    nxt = finished_run(url, token, weight_decay=0.0)
    page.evaluate(f"window.__li2.openRun('{nxt['id']}')")
    wait_for(page, "document.querySelector('#broadcast').textContent.includes('Switch')", 10)
    page.click("#broadcast")
    wait_for(viewers[0][1], f"window.__li2.runId === '{nxt['id']}'", 10)
    assert page.locator("#broadcast-code").inner_text() == code
    viewers[0][0].close()
    assert page.errors == []


# -- export and import -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_server(tmp_path_factory):
    """A second installation to import bundles into."""
    srv = ServerProcess(tmp_path_factory.mktemp("li2-other")).start()
    yield srv
    srv.stop()


def curves_data(page) -> list:
    return page.evaluate(f"{plot(page, 'curves')}.data.map(t => [t.name, t.x, t.y])")


def test_png_csv_and_bundle_export_then_import_elsewhere_reproduces_the_curves(
        page, server, other_server):
    run = finished_run(server.url)
    open_run(page, server.url, run["id"])
    wait_for(page, f"{plot(page, 'curves')}.data[0]?.x?.length === 121", 10)
    original = curves_data(page)
    with page.expect_download() as png:
        page.click("#panel-curves .png-button")
    assert png.value.suggested_filename == f"li2-{run['id']}-curves.png"
    assert open(png.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as csv:
        page.click("#export-csv")
    lines = open(csv.value.path()).read().splitlines()
    assert lines[0].startswith("step,") and len(lines) == 122
    with page.expect_download() as bundle:
        page.click("#export-bundle")
    path = bundle.value.path()
    assert "manifest.json" in zipfile.ZipFile(path).namelist()

    # the bundle, imported into another installation through its own page
    open_dashboard(page, other_server.url)
    page.set_input_files("#import-bundle", path)
    wait_for(page, "window.__li2.runId !== null && window.__li2.status === 'completed'", 20)
    copy_id = li2(page, "runId")
    assert copy_id != run["id"]
    assert "imported" in page.locator("#import-message").inner_text()
    wait_for(page, f"{plot(page, 'curves')}.data[0]?.x?.length === 121", 10)
    assert curves_data(page) == original  # the very same curves
    wait_for(page, "document.querySelector('#lineage-imported') !== null", 10)
    assert run["id"] in page.locator("#lineage-imported").inner_text()

    # a broken file is refused with the server's reason, and nothing opens
    broken = f"{path}.broken"
    with open(broken, "wb") as f:
        f.write(open(path, "rb").read()[:200])
    page.set_input_files("#import-bundle", broken)
    wait_for(page, "document.querySelector('#import-message').textContent.includes('not imported')",
             10)
    assert li2(page, "runId") == copy_id
    assert len(httpx.get(f"{other_server.url}/api/runs").json()) == 1
    assert page.errors == []
