"""Who may command a run or a sweep: the client that created it, or whoever holds the
instructor token when one is set. Watching, reading and forking stay open to everyone."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Header, HTTPException
from fastapi.requests import HTTPConnection

from .deps import SettingsDep, StoreDep, is_instructor
from .identity import client_keys


def _refuse(kind: str, job_id: str) -> HTTPException:
    return HTTPException(403, f"{kind} {job_id} was started by another client: only its creator "
                              "(or the instructor, with the instructor token) may stop, delete "
                              "or broadcast it")


async def require_run_owner(run_id: str, conn: HTTPConnection, store: StoreDep,
                            settings: SettingsDep,
                            x_instructor_token: Annotated[str | None, Header()] = None) -> None:
    """403 unless this client created the run; a missing run is left to the route's 404."""
    if is_instructor(settings, x_instructor_token):
        return
    record = await asyncio.to_thread(store.get_run, run_id)
    if record is not None and record.client not in client_keys(conn):
        raise _refuse("run", run_id)


async def require_sweep_owner(sweep_id: str, conn: HTTPConnection, store: StoreDep,
                              settings: SettingsDep,
                              x_instructor_token: Annotated[str | None, Header()] = None) -> None:
    """403 unless this client created the sweep (sweeps live in the run store)."""
    if is_instructor(settings, x_instructor_token):
        return
    record = await asyncio.to_thread(store.get_sweep, sweep_id)
    if record is not None and record.client not in client_keys(conn):
        raise _refuse("sweep", sweep_id)


RunOwnerDep = Annotated[None, Depends(require_run_owner)]
SweepOwnerDep = Annotated[None, Depends(require_sweep_owner)]
