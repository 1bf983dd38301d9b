"""Browser-test fixtures: a real `li2 serve` subprocess (so tests can kill and restart it) and
Debian chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import CHROMIUM, CHROMIUM_ARGS, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # one training slot, so a second run waits in the queue on any machine
    srv = ServerProcess(tmp_path_factory.mktemp("li2-data"),
                        args=("--max-jobs", "1", "--quota", "4")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    ctx.close()
