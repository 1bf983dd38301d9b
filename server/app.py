"""create_app(settings, runner=None, store=None): the FastAPI app; tests swap runner/store here."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import frontend

from .errors import validation_error
from .hub import Hub
from .identity import ClientIdentity, IdentityCookie, load_secret
from .jobs import LocalProcessRunner, Runner
from .openapi_errors import document_errors
from .request_guard import RequestGuard
from .routes import (
    bundles,
    classroom,
    config,
    exports,
    forks,
    groups,
    health,
    live,
    presets,
    replay,
    runs,
    sweeps,
)
from .service import RunService
from .settings import Settings
from .storage_guard import guard, stop_runs_that_lose_data, storage_full
from .store import MemoryRunStore, RunStore, SqliteRunStore
from .store.guarded import StorageFull

log = logging.getLogger(__name__)

STATIC_DIR = Path(frontend.__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(settings: Settings | None = None, runner: Runner | None = None,
               store: RunStore | None = None) -> FastAPI:
    """The app; the store opens and stale runs are marked interrupted when the lifespan starts.
    A store passed in is left open at shutdown (its owner closes it)."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        run_store = store
        if run_store is None:
            run_store = (SqliteRunStore(settings.database_path) if settings.store == "sqlite"
                         else MemoryRunStore())
        owned_store, run_store = run_store, guard(run_store, settings)
        service = RunService(
            settings, runner or LocalProcessRunner(settings.start_method, settings.cancel_grace),
            run_store, Hub(buffer_bytes=settings.replay_buffer_bytes,
                           snapshot_hz=settings.snapshot_hz, backlog=settings.viewer_backlog))
        app.state.service = service
        stop_runs_that_lose_data(service, run_store)
        interrupted = await service.start()
        if interrupted:
            log.warning("marked %d run(s) left active by the previous server as interrupted",
                        len(interrupted))
        await sweeps.start_service(app, settings, run_store)  # li2 sweeps (routes/sweeps.py)
        try:
            yield
        finally:
            await sweeps.stop_service(app)
            await service.shutdown()
            if store is None:
                owned_store.close()

    app = FastAPI(title="li2lab", lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StorageFull, storage_full)
    # outermost last: the cookie is set even on a request the guard refuses
    app.add_middleware(RequestGuard, allowed_origins=settings.allowed_origins,
                       json_max_bytes=settings.json_max_bytes,
                       raw_max_bytes=settings.bundle_max_bytes)
    app.state.identity = ClientIdentity(load_secret(settings))
    app.add_middleware(IdentityCookie, identity=app.state.identity)
    for module in (health, config, presets, groups, runs, live,
                   forks, replay, exports, bundles, classroom, sweeps):
        app.include_router(module.router)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        # served from the installed plotly package: the lab works offline, no CDN
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    document_errors(app)
    # last: the frontend owns every path the API does not
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True, check_dir=False),
              name="frontend")
    return app
