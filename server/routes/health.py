"""GET /api/health: liveness for the compose healthcheck, the runner and store in use, and
the job counts (running and queued runs and sweeps against max_jobs)."""

from __future__ import annotations

from importlib import metadata

from fastapi import APIRouter

from li2core import kernels
from li2core.fused import cpu_has_bf16_units

from ..deps import ServiceDep
from ..storage_guard import storage_health

router = APIRouter(tags=["health"])

try:
    VERSION = metadata.version("li2lab")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    VERSION = "unknown"


@router.get("/api/health")
async def health(service: ServiceDep) -> dict:
    queue = service.lifecycle.queue
    storage = storage_health(service.store)  # degraded: short of space or a write failed
    return {"status": "ok" if storage is None or storage["ok"] else "degraded",
            "storage": storage, "version": VERSION, "runner": service.runner.name,
            "store": service.settings.store, "max_jobs": queue.max_jobs,
            "running": len(queue.running), "queued": len(queue.queued),
            # precision=bf16 is only faster where the CPU multiplies bf16 in hardware
            "cpu_bf16": cpu_has_bf16_units(),
            # li2core.kernels' compiled loops (numba): without them a step runs ~1.2× slower
            "compiled_loops": kernels.available()}
