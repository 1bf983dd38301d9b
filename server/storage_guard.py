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


def stop_runs_that_lose_data(service, store: GuardedStore) -> None:
    """The store calls back (from any thread) with a run whose data is incomplete; the run is
    cancelled with that reason, so it ends ``failed`` saying storage was the cause."""
    loop = asyncio.get_running_loop()

    def stop(run_id: str, reason: str) -> None:
        live = service.live.get(run_id)
        if live is not None and live.failure is None:
            live.failure = reason
            if live.handle is not None:  # else the worker is cancelled once it starts
                service.runner.cancel(live.handle)

    store.on_failure = lambda run_id, reason: loop.call_soon_threadsafe(stop, run_id, reason)


async def storage_full(request: Request, exc: StorageFull) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


def storage_health(store) -> dict | None:
    """The guarded store's {ok, free_bytes, reserve_bytes, last_write_error}, else None."""
    health = getattr(store, "health", None)
    return health() if callable(health) else None
