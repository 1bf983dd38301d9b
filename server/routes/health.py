"""GET /api/health: liveness for the compose healthcheck, plus queue counts."""

from __future__ import annotations

from importlib import metadata

from fastapi import APIRouter

from li2core.fused import cpu_has_bf16_units

from ..deps import ServiceDep

router = APIRouter(tags=["health"])

try:
    VERSION = metadata.version("li2lab")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    VERSION = "unknown"


@router.get("/api/health")
async def health(service: ServiceDep) -> dict:
    jobs = service.jobs
    return {"status": "ok", "version": VERSION, "running": len(jobs.running),
            "queued": len(jobs.queued), "max_jobs": jobs.max_jobs,
            "store": service.settings.store,
            # precision=bf16 is only faster where the CPU multiplies bf16 in hardware
            "cpu_bf16": cpu_has_bf16_units()}
