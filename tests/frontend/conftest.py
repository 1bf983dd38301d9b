"""Browser-test fixtures: a real `li2 serve` subprocess (so tests can kill and restart it) and
Debian chromium driven by Playwright."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest

from .helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, ServerProcess


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


STATIC = ROOT / "frontend" / "static"
ORIGIN = "http://li2.test"


@pytest.fixture
def module_page(page):
    """A page whose files Playwright serves from frontend/static (plus `extra_files`): the
    page's pure modules run without a server."""
    extra: dict[str, bytes] = {}

    def serve(route):
        path = route.request.url[len(ORIGIN):].split("?")[0]
        if path in extra:
            return route.fulfill(body=extra[path], content_type="application/octet-stream")
        if path == "/":
            return route.fulfill(body="<!doctype html><title>t</title>", content_type="text/html")
        file = (STATIC / path.lstrip("/")).resolve()
        if STATIC in file.parents and file.is_file():
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if file.suffix == ".js":
                ctype = "text/javascript"
            return route.fulfill(body=file.read_bytes(), content_type=ctype)
        return route.fulfill(status=404, body="not found")

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")
    page.extra_files = extra
    return page
