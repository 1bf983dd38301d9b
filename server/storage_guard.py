"""Wires a GuardedStore to the app: a run that lost data is stopped (as by its wall-time limit)
and a full disk answers 503; health reads the store's state (docs/security.md)."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import JSONResponse

from .settings import Settings
from .store import RunStore
from .store.guarded import GuardedStore, StorageFull


def guard(store: RunStore, settings: Settings) -> GuardedStore:
    """``store`` behind the per-run budget and the free-space reserve of ``settings``."""
    disk = settings.data_dir if settings.store == "sqlite" else None
    return GuardedStore(store, data_dir=disk, reserve_bytes=settings.storage_reserve_bytes,
                        snapshot_budget=settings.run_snapshot_bytes)


def stop_runs_that_lose_data(lifecycle, store: GuardedStore) -> None:
    """The store calls back (from any thread) with a run whose data is incomplete; its job (the
    run, or the sweep holding it as a cell) is stopped with that reason, as by the wall-time
    limit, so it ends ``failed`` saying storage was the cause."""
    loop = asyncio.get_running_loop()

    def stop(run_id: str, reason: str) -> None:
        job = lifecycle.jobs.get(run_id) or next(
            (j for j in lifecycle.jobs.values()
             if any(s.record.id == run_id for s in j.streams)), None)
        if job is not None and job.failure is None:
            job.failure = reason
            if job.handle is not None:  # else the lifecycle cancels it once it has one
                lifecycle.runner.cancel(job.handle)

    store.on_failure = lambda run_id, reason: loop.call_soon_threadsafe(stop, run_id, reason)


async def storage_full(request: Request, exc: StorageFull) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


def storage_health(store) -> dict | None:
    """The guarded store's {ok, free_bytes, reserve_bytes, last_write_error}, else None."""
    health = getattr(store, "health", None)
    return health() if callable(health) else None
