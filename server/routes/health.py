"""GET /api/health: liveness for the compose healthcheck, plus queue counts."""

from __future__ import annotations

from importlib import metadata

from fastapi import APIRouter

from ..deps import ServiceDep
from ..storage_guard import storage_health

router = APIRouter(tags=["health"])

try:
    VERSION = metadata.version("li2lab")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    VERSION = "unknown"


@router.get("/api/health")
async def health(service: ServiceDep) -> dict:
    jobs = service.jobs
    storage = storage_health(service.store)  # degraded: short of space or a write failed
    return {"status": "ok" if storage is None or storage["ok"] else "degraded",
            "storage": storage, "version": VERSION, "running": len(jobs.running),
            "queued": len(jobs.queued), "max_jobs": jobs.max_jobs,
            "store": service.settings.store}
