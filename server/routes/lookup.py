"""Shared lookup for the run-history routes: the stored record, or a 404 naming the run."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException

from ..store import RunRecord, RunStore


async def stored_run(store: RunStore, run_id: str) -> RunRecord:
    record = await asyncio.to_thread(store.get_run, run_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return record
