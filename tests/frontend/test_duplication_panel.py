"""The duplication panel and the compare page's coverage overlay in a real browser (browser)."""

from __future__ import annotations

import re

import pytest

from .helpers import li2, open_dashboard, wait_for

pytestmark = pytest.mark.browser


def _run(page, server, preset: str) -> str:
    open_dashboard(page, server.url)
    page.select_option("#preset", preset)
    page.click("#start")
    wait_for(page, "window.__li2.drawnStep >= 2000", 240)
    return li2(page, "runId")


def test_duplication_panel_and_compare_overlay_show_both_optimizers(page, server):
    ids = []
    for preset in ("muon", "muon-adam"):
        ids.append(_run(page, server, preset))
        meta = page.locator("#panel-duplication .panel-meta")
        wait_for(page, "document.querySelector('#panel-duplication .panel-meta')"
                 ".textContent.includes('step 2000')", 30)
        m = re.search(r"covered (\d+) of 11 · ([\d.]+) locked nodes per component",
                      meta.inner_text())
        assert m and int(m.group(1)) == 11 and float(m.group(2)) >= 1.0
        traces = page.evaluate("document.querySelector('#panel-duplication .plot').data"
                               ".map(t => t.name)")
        assert traces == ["covered", "nodes per component", "update into held components"]
    page.goto(f"{server.url}/compare.html#runs={','.join(ids)}")
    wait_for(page, "(document.querySelector('#compare-coverage').data || []).length === 4", 60)
    names = page.evaluate("document.querySelector('#compare-coverage').data.map(t => t.name)")
    assert any("muon coverage" in n for n in names) and any("adam coverage" in n for n in names)
