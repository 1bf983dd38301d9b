"""A run's metrics as files: GET /api/runs/{id}/metrics.csv and /metrics.json."""

from __future__ import annotations

import asyncio
import csv
import io

from fastapi import APIRouter, Response

from ..deps import StoreDep
from ..protocol import to_json
from .lookup import stored_run

router = APIRouter(prefix="/api/runs", tags=["exports"])


def metric_columns(rows: list[dict]) -> list[str]:
    """``step`` first, then every other key in the order it first appears."""
    cols = {"step": None}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def metrics_csv(rows: list[dict], cols: list[str]) -> str:
    """One line per row; an absent or null value is an empty cell. Floats are written with
    repr, which round-trips exactly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in cols])
    return buf.getvalue()


def _attachment(name: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


async def _rows(store, run_id: str) -> list[dict]:
    batches = await asyncio.to_thread(store.metric_batches, run_id)
    return [row for batch in batches for row in batch.rows]


@router.get("/{run_id}/metrics.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def metrics_as_csv(run_id: str, store: StoreDep) -> Response:
    await stored_run(store, run_id)
    rows = await _rows(store, run_id)
    return Response(metrics_csv(rows, metric_columns(rows)), media_type="text/csv",
                    headers=_attachment(f"{run_id}-metrics.csv"))


@router.get("/{run_id}/metrics.json")
async def metrics_as_json(run_id: str, store: StoreDep) -> Response:
    """{run_id, config, columns, rows, stages}."""
    record = await stored_run(store, run_id)
    rows = await _rows(store, run_id)
    stages = await asyncio.to_thread(store.stages, run_id)
    body = {"run_id": run_id, "config": record.config, "columns": metric_columns(rows),
            "rows": rows, "stages": [s.as_dict(seq=False) for s in stages]}
    return Response(to_json(body), media_type="application/json",
                    headers=_attachment(f"{run_id}-metrics.json"))
