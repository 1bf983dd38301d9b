"""Run bundles: GET /api/runs/{id}/bundle downloads an ended run, POST /api/bundles imports one."""

from __future__ import annotations

import asyncio
import secrets
import time

from fastapi import APIRouter, HTTPException, Request, Response

from ..bundle import Bundle, BundleError, read_bundle, write_bundle
from ..deps import ClientDep, InstructorDep, ServiceDep, SettingsDep, StoreDep
from ..service import iso
from ..store import TERMINAL, RunRecord, RunStore
from .lookup import stored_run

router = APIRouter(tags=["bundles"])


def _collect(store: RunStore, record: RunRecord) -> bytes:
    snaps = [store.snapshot(record.id, step) for step in store.snapshot_steps(record.id)]
    return write_bundle(record, store.metric_batches(record.id), store.stages(record.id),
                        [s for s in snaps if s is not None])


@router.get("/api/runs/{run_id}/bundle", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
async def download_bundle(run_id: str, store: StoreDep) -> Response:
    """The run as a zip (layout in server/bundle.py); only ended runs (409 otherwise)."""
    record = await stored_run(store, run_id)
    if record.status not in TERMINAL:
        raise HTTPException(409, f"run {run_id} is {record.status}; bundle it once it has ended")
    data = await asyncio.to_thread(_collect, store, record)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="li2-run-{run_id}.zip"'})


async def _body(request: Request, cap: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``cap`` bytes."""
    too_big = HTTPException(413, f"bundle larger than the server's limit of {cap} bytes "
                                 "(LI2_BUNDLE_MAX_BYTES)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_big
    return bytes(body)


def _imported(bundle: Bundle, client: str) -> RunRecord:
    """A new local id; the exporter's id and times go into the lineage. A sweep's cell arrives
    as a plain run (its sweep is not here), remembering which cell it was."""
    run = bundle.run
    lineage = run.lineage.model_dump(exclude_none=True) if run.lineage else {}
    lineage["imported_from"] = {"run_id": run.id, "created_at": iso(run.created_at),
                                "exported_at": bundle.exported_at}
    if "sweep" in lineage:
        lineage["imported_from"]["sweep"] = lineage.pop("sweep")
    return RunRecord(
        id=secrets.token_hex(6), status=run.status, config=run.config.model_dump(),
        created_at=time.time(), client=client, max_steps_per_s=run.max_steps_per_s,
        started_at=run.started_at, finished_at=run.finished_at, started=run.started,
        summary=run.summary, error=run.error, last_seq=run.last_seq, lineage=lineage)


@router.post("/api/bundles", status_code=201)
async def import_bundle(request: Request, service: ServiceDep, store: StoreDep,
                        settings: SettingsDep, client: ClientDep, _: InstructorDep) -> dict:
    """Body: the bundle's bytes (application/zip). Answers the new run resource; a bad or
    oversized bundle is refused (422 / 413) and nothing is stored."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise HTTPException(415, "send the bundle file itself as the request body "
                                 "(Content-Type: application/zip), not a form")
    data = await _body(request, settings.bundle_max_bytes)
    if not data:
        raise HTTPException(422, [{"loc": ["body"], "type": "missing",
                                   "msg": "empty body: send the bundle's bytes"}])
    try:
        bundle = await asyncio.to_thread(read_bundle, data, settings.bundle_max_bytes)
    except BundleError as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    record = _imported(bundle, client)
    await asyncio.to_thread(store.import_run, record, bundle.batches, bundle.stages,
                            bundle.snapshots)
    return await service.get(record.id)
