"""create_app(settings, runner=None, store=None): the FastAPI app; tests swap runner/store here."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import frontend

from .errors import validation_error
from .hub import Hub
from .identity import ClientIdentity, IdentityCookie, load_secret
from .jobs import JobLifecycle, Limits, Runner
from .jobs.lifecycle import JobConflict, JobNotFound
from .jobs.runners import make_runner
from .jobs.sweep_service import SweepService
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
    predict,
    presets,
    replay,
    runs,
    sweeps,
    theory,
    vocabulary,
)
from .service import RunService
from .settings import Settings
from .storage_guard import guard, stop_runs_that_lose_data, storage_full
from .store import RunStore, open_store
from .store.guarded import StorageFull

log = logging.getLogger(__name__)

STATIC_DIR = Path(frontend.__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


async def _job_not_found(request: Request, exc: JobNotFound) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _job_conflict(request: Request, exc: JobConflict) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


def create_app(settings: Settings | None = None, runner: Runner | None = None,
               store: RunStore | None = None) -> FastAPI:
    """The app; the store opens, the runner starts (local processes or Ray) and stale runs are
    marked interrupted when the lifespan starts. A store passed in is left open at shutdown (its
    owner closes it); a runner passed in is shut down with the server."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned_store = store if store is not None else await asyncio.to_thread(open_store,
                                                                               settings)
        run_store = guard(owned_store, settings)
        job_runner = runner or await asyncio.to_thread(make_runner, settings)
        lifecycle = JobLifecycle(settings, job_runner, {
            "run": Limits(settings.quota, settings.max_queued),
            "sweep": Limits(settings.sweep_quota, settings.max_queued_sweeps)})
        service = RunService(lifecycle, run_store, Hub(
            buffer_bytes=settings.replay_buffer_bytes, snapshot_hz=settings.snapshot_hz,
            backlog=settings.viewer_backlog))
        app.state.service = service
        app.state.sweeps = SweepService(service)
        stop_runs_that_lose_data(lifecycle, run_store)
        interrupted = await service.start()
        interrupted += await app.state.sweeps.start()
        if interrupted:
            log.warning("marked %d run(s) and sweep(s) left active by the previous server as "
                        "interrupted", len(interrupted))
        log.info("runner %s, %d job(s) at once, %s store", job_runner.name, lifecycle.max_jobs,
                 settings.store)
        try:
            yield
        finally:
            await service.shutdown()
            if store is None:
                owned_store.close()

    app = FastAPI(title="li2lab", lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(JobNotFound, _job_not_found)
    app.add_exception_handler(JobConflict, _job_conflict)
    app.add_exception_handler(StorageFull, storage_full)
    # outermost last: the cookie is set even on a request the guard refuses
    app.add_middleware(RequestGuard, allowed_origins=settings.allowed_origins,
                       json_max_bytes=settings.json_max_bytes,
                       raw_max_bytes=settings.bundle_max_bytes)
    app.state.identity = ClientIdentity(load_secret(settings))
    app.add_middleware(IdentityCookie, identity=app.state.identity)
    for module in (health, config, presets, groups, runs, live,
                   forks, replay, predict, exports, bundles, classroom, sweeps,
                   theory, vocabulary):
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
