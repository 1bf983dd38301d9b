"""GET /api/runs/{id}/series: one snapshot array across every stored snapshot, for replay.

The dashboard's replay needs a few arrays over the whole run (G_F's spectrum for its heatmap,
one node's energy for the inspector); one request beats fetching every snapshot frame.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from ..deps import StoreDep
from ..protocol import MAX_WIRE_INT, to_json
from ..store import RunStore
from .lookup import stored_run

router = APIRouter(prefix="/api/runs", tags=["replay"])


def snapshot_series(store: RunStore, run_id: str, array: str,
                    node: int | None) -> tuple[list[int], list]:
    """(steps, values) of ``array`` (row ``node`` of it if given) in every snapshot having it."""
    steps, values = [], []
    for step in store.snapshot_steps(run_id):
        snap = store.snapshot(run_id, step)
        a = None if snap is None else snap.arrays.get(array)
        if a is None:
            continue
        if node is not None:
            if a.ndim == 0 or node >= a.shape[0]:
                raise RequestValidationError([{
                    "loc": ["query", "node"], "type": "less_than",
                    "msg": f"node: {array} has {a.shape[0] if a.ndim else 0} rows"}])
            a = a[node]
        steps.append(snap.step)
        values.append(a.tolist())
    return steps, values


@router.get("/{run_id}/series")
async def run_series(
    run_id: str, store: StoreDep,
    array: Annotated[str, Query(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$",
                                description="snapshot array name, e.g. gf_spectrum")],
    node: Annotated[int | None, Query(ge=0, le=MAX_WIRE_INT,
                                      description="only this row (hidden node)")] = None,
) -> Response:
    """{run_id, array, node, steps, values}: values[i] is the array at steps[i]."""
    await stored_run(store, run_id)
    steps, values = await asyncio.to_thread(snapshot_series, store, run_id, array, node)
    body = {"run_id": run_id, "array": array, "node": node, "steps": steps, "values": values}
    return Response(to_json(body), media_type="application/json")
